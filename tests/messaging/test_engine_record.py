"""The record stage keeps each SMS leg's segments (as sent) on its delivery, for costs."""

import pytest

from messaging.engine.context import Row
from messaging.engine.record import record_outcome
from messaging.engine.send import Outcome
from messaging.models import Channel, Delivery, DeliveryStatus
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def row(delivery, segments=None):
    return Row(id=delivery.id, uuid=str(delivery.uuid), contact_id=delivery.contact_id, phone=delivery.contact.phone,
               name="", attributes={}, opted_out=False, channel=delivery.channel,
               pending_fallback=delivery.pending_fallback, sms_segments=segments)


def test_sent_sms_legs_keep_their_segments_and_rcs_sends_none():
    one, three, rcs = (DeliveryFactory(channel=Channel.SMS), DeliveryFactory(channel=Channel.SMS),
                       DeliveryFactory(channel=Channel.RCS))
    same_campaign = DeliveryFactory(channel=Channel.SMS, campaign=one.campaign)
    outcome = Outcome(sms_sent=[row(one, 1), row(three, 3), row(same_campaign, 1)], rcs_sent=[row(rcs)])
    record_outcome(one.campaign_id, outcome, [])
    found = dict(Delivery.objects.values_list("id", "sms_segments"))
    assert found == {one.id: 1, three.id: 3, same_campaign.id: 1, rcs.id: 0}
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_the_sms_leg_after_a_revoked_rcs_message_keeps_its_segments():
    delivery = DeliveryFactory(channel=Channel.SMS, status=DeliveryStatus.SENT, pending_fallback=True,
                               fallback_reason="ttl_expired")
    record_outcome(delivery.campaign_id, Outcome(fallback_sms_sent=[row(delivery, 2)]), [])
    delivery.refresh_from_db()
    assert (delivery.sms_segments, delivery.pending_fallback) == (2, False)

