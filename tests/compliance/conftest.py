"""A person with something of everything the product holds about them: contact, attributes, a list,
a consent, an opt-out history, deliveries (a campaign's and single messages) and a conversation with
a text, a location and a stored file, plus the carrier payload the text came in."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from campaigns.models import ContactListMembership
from messaging.models import (
    Conversation,
    ConversationMessage,
    Delivery,
    DeliveryStatus,
    MessageKind,
    ProviderEvent,
)
from tests.accounts.factories import OfficialAccountFactory
from tests.campaigns.factories import ConsentFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory


class Person:
    def __init__(self, organization=None, tag="a"):
        kwargs = {"organization": organization} if organization else {}
        self.contact = ContactFactory(name=f"山田 花子 {tag}", attributes={"rank": "gold", "memo": "=HYPERLINK()"}, **kwargs)
        self.organization = self.contact.organization
        self.account = OfficialAccountFactory(organization=self.organization, display_name=f"公式 {tag}")
        self.contact_list = ContactListFactory(organization=self.organization, name=f"会員 {tag}")
        ContactListMembership.objects.create(contact_list=self.contact_list, contact=self.contact)
        self.consent = ConsentFactory(contact=self.contact, source="https://shop.example.jp/signup", wording_version="2024-04")
        self.campaign_delivery = DeliveryFactory(
            organization=self.organization, contact=self.contact, campaign__organization=self.organization,
            campaign__official_account=self.account, channel="rcs", status=DeliveryStatus.READ,
            sent_at=timezone.now(), read_at=timezone.now(),
        )
        self.single_done = Delivery.objects.create(
            organization=self.organization, contact=self.contact, official_account=self.account, channel="sms",
            content={"text": f"ご予約の確認 {tag}"}, sms_text=f"ご予約の確認 {tag}", status=DeliveryStatus.DELIVERED,
            sent_at=timezone.now(), delivered_at=timezone.now(),
        )
        self.single_queued = Delivery.objects.create(
            organization=self.organization, contact=self.contact, official_account=self.account,
            content={"text": f"まだ送信前 {tag}"}, sms_text=f"まだ送信前 {tag}",
        )
        self.conversation = Conversation.objects.create(
            organization=self.organization, official_account=self.account, contact=self.contact
        )
        self.event = ProviderEvent.objects.create(
            provider="rbm", event_id=f"evt-{tag}", payload={"text": f"明日の予約を変更したい {tag}"},
            applied_at=timezone.now(),
        )
        self.text = ConversationMessage.objects.create(
            conversation=self.conversation, direction="in", text=f"明日の予約を変更したい {tag}",
            provider="rbm", provider_event_id=f"evt-{tag}",
        )
        self.location = ConversationMessage.objects.create(
            conversation=self.conversation, direction="in", kind=MessageKind.LOCATION, latitude=35.6895,
            longitude=139.6917,
        )
        self.file_message = ConversationMessage.objects.create(
            conversation=self.conversation, direction="in", kind=MessageKind.FILE, file_mime="image/png",
            file_url="https://media.example.jp/x.png", media_status="stored",
        )
        self.file_message.file.save(f"erasure-{tag}.png", ContentFile(b"\x89PNG fake bytes"), save=True)
        self.reply = ConversationMessage.objects.create(
            conversation=self.conversation, direction="out", text=f"承知しました {tag}", delivery=self.single_done,
        )

    @property
    def file_name(self):
        return self.file_message.file.name

    @property
    def storage(self):
        return self.file_message.file.storage


@pytest.fixture
def person(db):
    found = Person(tag="a")
    yield found
    found.storage.delete(found.file_name)


@pytest.fixture
def bystander(person):
    """Someone else in the same organization, whose data must not be touched."""
    found = Person(person.organization, tag="b")
    yield found
    found.storage.delete(found.file_name)
