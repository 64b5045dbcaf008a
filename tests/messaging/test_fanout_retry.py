"""How a send that the carrier refuses for now is retried: a 429 waits its Retry-After and is not
counted as an attempt; a 5xx backs off exponentially in the attempts.

In-process dispatch against the sandbox carrier over HTTP; no worker, so each step is the test's own.
"""

import pytest
from django.utils import timezone

from campaigns.models import CampaignStatus
from campaigns.status import campaign_transition
from core import throttle
from messaging.engine.dispatch import dispatch_batch
from messaging.engine.freeze import audience_freeze_chunk
from messaging.models import Delivery, DeliveryStatus
from tests.messaging.engine import engine, receiver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def wait_left(delivery) -> float:
    delivery.refresh_from_db()
    return (delivery.lease_until - timezone.now()).total_seconds()


def test_a_throttled_send_waits_its_retry_after_and_is_not_counted_as_an_attempt(engine):  # noqa: F811
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(2)
    phones = list(audience.contacts.values_list("phone", flat=True))
    throttle.cache_capabilities(engine.rbm.pk, dict.fromkeys(phones, True))  # no capability request
    campaign = campaign_transition(engine.campaign(audience), CampaignStatus.RUNNING)
    while not audience_freeze_chunk(campaign):
        pass
    engine.sandbox.configure(rate_limit={"rate": 0.2, "burst": 1})  # one send, then 429 for 5 s

    assert dispatch_batch(campaign.pk) == "more"
    throttled = Delivery.objects.get(campaign=campaign, status=DeliveryStatus.QUEUED)
    assert Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.SENT).count() == 1
    assert throttled.attempts == 0
    assert 3 < wait_left(throttled) <= 5

    # The next refusal is a failure: its wait doubles from the first attempt, not from the second.
    engine.sandbox.configure(rate_limit=None, faults={"fail_next": 1, "error_status": 503})
    throttle.reset(engine.rbm.pk)  # the 429 paused the account's sends for 5 s
    Delivery.objects.filter(pk=throttled.pk).update(lease_until=None)
    assert dispatch_batch(campaign.pk) == "more"
    throttled.refresh_from_db()
    assert (throttled.status, throttled.attempts) == (DeliveryStatus.QUEUED, 1)
    assert 1 < wait_left(throttled) <= 2

    Delivery.objects.filter(pk=throttled.pk).update(lease_until=None)
    assert dispatch_batch(campaign.pk) == "more"
    throttled.refresh_from_db()
    assert throttled.status == DeliveryStatus.SENT
