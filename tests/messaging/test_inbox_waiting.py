"""The team inbox's services: how long a person has waited for an answer (set by their first
unanswered message, kept by the next ones, ended by a member's reply or "done", never started by
what the product answers itself), the oldest wait, and the notification of a newly assigned member."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from accounts.models import Membership, Notification, Role
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import (
    conversation_assign,
    conversation_set_status,
    inbound_apply,
    inbox_reply,
    oldest_waiting,
)
from messaging.models import Conversation, ConversationMessage
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    organization = OrganizationFactory()
    rbm = GatewayAccountFactory(organization=organization)
    account = approved_account(organization, rcs_gateway=rbm, sms_gateway=None)
    return {"organization": organization, "account": account, "rbm": rbm,
            "owner": member(organization, Role.OWNER, username="hanako"),
            "operator": member(organization, Role.OPERATOR, username="taro")}


def _say(world, text, at, phone="+819012345678", event_id=None, kind="inbound_text", **extra):
    event = NormalizedEvent(provider="rbm", event_id=event_id or f"msg:{phone}:{text}:{at.timestamp()}", kind=kind,
                            channel="rcs", phone=phone, text=text, gateway_id=world["rbm"].pk, occurred_at=at,
                            raw={}, **extra)
    inbound_apply([event])
    return Conversation.objects.get(contact__phone=phone)


def test_inbox_waiting_starts_with_the_first_unanswered_message_and_ends_with_a_reply(
    world, django_capture_on_commit_callbacks
):
    start = timezone.now() - timedelta(hours=3)
    conversation = _say(world, "予約できますか", start)
    assert conversation.waiting_since == start
    conversation = _say(world, "明日です", start + timedelta(hours=1))
    assert conversation.waiting_since == start  # the wait began with the first question
    with django_capture_on_commit_callbacks(execute=False):
        inbox_reply(conversation, world["operator"], "はい、承ります")
    conversation.refresh_from_db()
    assert conversation.waiting_since is None
    later = timezone.now() - timedelta(minutes=5)
    conversation = _say(world, "ありがとう", later)
    assert conversation.waiting_since == later
    conversation_set_status(conversation, "done")
    conversation.refresh_from_db()
    assert conversation.waiting_since is None


def test_inbox_waiting_is_not_started_by_what_the_product_answers_itself(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        conversation = _say(world, "配信停止", timezone.now())
    conversation.contact.refresh_from_db()
    assert conversation.contact.opted_out_at is not None and conversation.waiting_since is None
    world["organization"].opt_in_keyword = "登録"
    world["organization"].save()
    with django_capture_on_commit_callbacks(execute=False):
        conversation = _say(world, "登録", timezone.now(), phone="+819011112222")
    assert conversation.waiting_since is None


def test_inbox_oldest_waiting_is_the_longest_open_wait_of_the_organization(world):
    now = timezone.now()
    assert oldest_waiting(world["organization"]) is None
    _say(world, "a", now - timedelta(minutes=10), phone="+819011110001")
    oldest = _say(world, "b", now - timedelta(hours=2), phone="+819011110002")
    done = _say(world, "c", now - timedelta(days=1), phone="+819011110003")
    conversation_set_status(done, "done")
    other = OrganizationFactory()
    other_rbm = GatewayAccountFactory(organization=other)
    approved_account(other, rcs_gateway=other_rbm, sms_gateway=None)
    inbound_apply([NormalizedEvent(provider="rbm", event_id="msg:other", kind="inbound_text", channel="rcs",
                                   phone="+819011110004", text="x", gateway_id=other_rbm.pk,
                                   occurred_at=now - timedelta(days=3), raw={})])
    assert oldest_waiting(world["organization"]).pk == oldest.pk


def test_inbox_assign_notifies_the_member_it_is_newly_assigned_to(world):
    contact = ContactFactory(organization=world["organization"], phone="+819012345678", name="山田花子")
    conversation = Conversation.objects.create(organization=world["organization"], official_account=world["account"],
                                               contact=contact)
    conversation_assign(conversation, world["operator"], actor=world["owner"])
    [notification] = Notification.objects.filter(recipient=world["operator"])
    assert notification.actor == world["owner"] and notification.subject == "山田花子"
    assert notification.url == f"/messaging/inbox/{conversation.pk}/"
    conversation_assign(conversation, world["operator"], actor=world["owner"])  # already theirs
    conversation_assign(conversation, world["owner"], actor=world["owner"])  # took it themselves
    assert Notification.objects.count() == 1
    conversation_assign(conversation, None, actor=world["owner"])
    conversation_assign(conversation, world["operator"])  # by the product (a rule): no actor
    assert Notification.objects.filter(recipient=world["operator"], actor__isnull=True).count() == 1


def test_inbox_assign_emails_a_member_who_chose_it(world, django_capture_on_commit_callbacks):
    Membership.objects.filter(user=world["operator"]).update(notify_by_email=True)
    contact = ContactFactory(organization=world["organization"], phone="+819012345678")
    conversation = Conversation.objects.create(organization=world["organization"], official_account=world["account"],
                                               contact=contact)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        conversation_assign(conversation, world["operator"], actor=world["owner"])
    assert len(callbacks) == 1  # the e-mail task, after commit


def test_inbox_waiting_backfill_of_existing_conversations(world, django_capture_on_commit_callbacks):
    """The migration that adds the field starts each open wait at the first message after the team's
    last answer (an automatic message is no answer); done conversations wait for nothing."""
    backfill = importlib.import_module("messaging.migrations.0020_conversation_waiting_since").backfill_waiting_since
    now = timezone.now()
    answered = _say(world, "a", now - timedelta(hours=5), phone="+819011110001")
    with django_capture_on_commit_callbacks(execute=False):
        inbox_reply(answered, world["operator"], "はい")
    ConversationMessage.objects.filter(conversation=answered, direction="out").update(created_at=now - timedelta(hours=4))
    _say(world, "b", now - timedelta(hours=3), phone="+819011110001")
    _say(world, "c", now - timedelta(hours=2), phone="+819011110001")
    waiting = _say(world, "d", now - timedelta(hours=6), phone="+819011110002")
    done = _say(world, "e", now - timedelta(hours=7), phone="+819011110003")
    Conversation.objects.filter(pk=done.pk).update(status="done")
    Conversation.objects.update(waiting_since=None)  # as before the migration
    backfill(django_apps, None)
    assert Conversation.objects.get(pk=answered.pk).waiting_since == now - timedelta(hours=3)
    assert Conversation.objects.get(pk=waiting.pk).waiting_since == now - timedelta(hours=6)
    assert Conversation.objects.get(pk=done.pk).waiting_since is None
