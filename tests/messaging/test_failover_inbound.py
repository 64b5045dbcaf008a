"""A reply to an SMS sent through the backup gateway comes in through the backup: it still reaches
the official account's inbox (an opt-out keyword too)."""

import pytest
from django.utils import timezone

from messaging.gateways import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.models import ConversationMessage
from tests.accounts.factories import GatewayAccountFactory, OfficialAccountFactory

pytestmark = pytest.mark.django_db


def test_a_reply_through_the_backup_gateway_reaches_the_account():
    cm = GatewayAccountFactory(kind="cm")
    backup = GatewayAccountFactory(organization=cm.organization, kind="cm")
    account = OfficialAccountFactory(organization=cm.organization, sms_gateway=cm, backup_sms_gateway=backup)
    event = NormalizedEvent(provider="cm", event_id="mo:backup-1", kind="inbound_text", channel="sms",
                            phone="+819012345678", text="ありがとう", occurred_at=timezone.now(), gateway_id=backup.pk)

    stored = inbound_apply([event])

    assert len(stored) == 1
    assert ConversationMessage.objects.get().conversation.official_account == account
