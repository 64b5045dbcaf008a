"""Celery tasks of the messaging app. Each loads by id and calls a service; nothing else.

Queues: ``priority`` for single messages (API, test sends, inbox replies) served by their own worker
processes, so a million-recipient campaign on the default queue never delays them.

Every task's name is pinned (``name="messaging.tasks.…"``): django-celery-beat rows and messages
waiting in the broker store it, so moving or renaming a function must never change it
(tests/messaging/test_task_names.py lists them all).
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from campaigns.models import Campaign
from messaging import receipts
from messaging.counters import counters_fold
from messaging.engine import fanout


def start_dispatch(campaign_id: int) -> None:
    """Start the campaign's parallel dispatch chains (each claims its own batches)."""
    for _ in range(settings.DISPATCH_CHAINS):
        dispatch_campaign.delay(campaign_id)


# A database or broker hiccup must delay work, never drop it: these retry with backoff.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": 1, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": None}


@shared_task(name="messaging.tasks.launch_campaign", acks_late=True, **RETRY)
def launch_campaign(campaign_id: int) -> None:
    campaign = Campaign.objects.get(pk=campaign_id)
    started = False
    while not fanout.audience_freeze_chunk(campaign):
        if not started:  # start sending as soon as the first chunk is frozen
            start_dispatch(campaign_id)
            started = True
    if not started:
        start_dispatch(campaign_id)


@shared_task(name="messaging.tasks.dispatch_campaign", acks_late=True, **RETRY)
def dispatch_campaign(campaign_id: int) -> str:
    result = fanout.dispatch_batch(campaign_id)
    if result == "more":
        dispatch_campaign.delay(campaign_id)
    elif result == "wait":
        dispatch_campaign.apply_async((campaign_id,), countdown=1)
    elif result == "idle":  # all sent; RCS may still expire into SMS, and the campaign then completes
        dispatch_campaign.apply_async((campaign_id,), countdown=5)
    return result


@shared_task(name="messaging.tasks.send_message", acks_late=True, **RETRY)
def send_message(delivery_id: int) -> str:
    return fanout.send_single(delivery_id)  # re-enqueues what must be tried again


@shared_task(name="messaging.tasks.start_scheduled_campaign", acks_late=True)
def start_scheduled_campaign(campaign_id: int) -> None:
    from campaigns.models import CampaignStatus
    from campaigns.services import campaign_start

    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status == CampaignStatus.SCHEDULED:
        campaign_start(campaign)


@shared_task(name="messaging.tasks.start_recurring_run", acks_late=True)
def start_recurring_run(parent_id: int) -> None:
    from campaigns.models import CampaignStatus
    from campaigns.services import campaign_new_run, campaign_start

    parent = Campaign.objects.get(pk=parent_id)
    if parent.status == CampaignStatus.SCHEDULED:
        campaign_start(campaign_new_run(parent))


@shared_task(name="messaging.tasks.sweep")
def sweep() -> dict:
    """Periodic: restart dead dispatch chains, revoke RCS past its TTL, apply stray events."""
    stale = fanout.campaigns_needing_dispatch()
    for campaign_id in stale:
        start_dispatch(campaign_id)
    revoked = fanout.ttl_sweep()
    fanout.cancel_orphans()
    pending = receipts.pending_event_ids()
    applied = receipts.events_apply(pending) if pending else 0
    return {"restarted": len(stale), "revoked": revoked, "events": applied}


@shared_task(name="messaging.tasks.fold_counters")
def fold_counters() -> int:
    return counters_fold()


@shared_task(name="messaging.tasks.apply_provider_events", acks_late=True, **RETRY)
def apply_provider_events(event_ids: list[int]) -> int:
    return receipts.events_apply(event_ids)


# --- outbound webhooks (REST API issue) ---------------------------------------------------------

from messaging import outbound_webhooks  # noqa: E402 - connects the webhook receivers in worker processes

outbound_webhooks.connect_receivers()


@shared_task(name="messaging.tasks.deliver_webhook", acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    return outbound_webhooks.webhook_attempt(delivery_id)


@shared_task(name="messaging.tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Periodic: re-enqueue webhook deliveries whose attempt is overdue (a lost task)."""
    due = outbound_webhooks.due_delivery_ids()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)
