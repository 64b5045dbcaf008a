"""Celery tasks of the messaging app. Each loads by id and calls a service; nothing else.

A task body imports its service inside the function, and the services import this module at the top
and enqueue on commit: so this module imports no service at import time, and there is no cycle.

Queues: ``priority`` for single messages (API, test sends, inbox replies) served by their own worker
processes, so a million-recipient campaign on the default queue never delays them.

Every task's name is pinned (``name="messaging.tasks.…"``): django-celery-beat rows and messages
waiting in the broker store it, so moving or renaming a function must never change it
(tests/messaging/test_task_names.py lists them all).
"""

from celery import shared_task
from django.db import OperationalError

from campaigns.models import Campaign, CampaignStatus

# A database or broker hiccup must delay work, never drop it: these retry with backoff.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": 1, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": None}


@shared_task(name="messaging.tasks.launch_campaign", acks_late=True, **RETRY)
def launch_campaign(campaign_id: int) -> None:
    from messaging.engine.dispatch import audience_freeze_and_dispatch

    audience_freeze_and_dispatch(Campaign.objects.get(pk=campaign_id))


@shared_task(name="messaging.tasks.dispatch_campaign", acks_late=True, **RETRY)
def dispatch_campaign(campaign_id: int) -> str:
    from messaging.engine.dispatch import dispatch_batch

    result = dispatch_batch(campaign_id)
    if result == "more":
        dispatch_campaign.delay(campaign_id)
    elif result == "wait":
        dispatch_campaign.apply_async((campaign_id,), countdown=1)
    elif result == "quiet":  # a promotion held by quiet hours: look again, until the window has ended
        from messaging.engine.dispatch import quiet_recheck_seconds

        dispatch_campaign.apply_async((campaign_id,), countdown=quiet_recheck_seconds(campaign_id))
    elif result == "idle":  # all sent; RCS may still expire into SMS, and the campaign then completes
        dispatch_campaign.apply_async((campaign_id,), countdown=5)
    return result


@shared_task(name="messaging.tasks.send_message", acks_late=True, **RETRY)
def send_message(delivery_id: int) -> str:
    from messaging.engine.dispatch import send_single

    return send_single(delivery_id)  # re-enqueues what must be tried again


@shared_task(name="messaging.tasks.start_scheduled_campaign", acks_late=True)
def start_scheduled_campaign(campaign_id: int) -> None:
    from messaging.runs import campaign_start

    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status == CampaignStatus.SCHEDULED:
        campaign_start(campaign)


@shared_task(name="messaging.tasks.start_recurring_run", acks_late=True)
def start_recurring_run(parent_id: int) -> None:
    from messaging.runs import campaign_new_run, campaign_start

    parent = Campaign.objects.get(pk=parent_id)
    if parent.status == CampaignStatus.SCHEDULED:
        campaign_start(campaign_new_run(parent))


@shared_task(name="messaging.tasks.sweep")
def sweep() -> dict:
    """Periodic: restart dead dispatch chains, revoke RCS past its TTL, apply stray events."""
    from messaging.engine.sweep import sweep_once
    from messaging.receipts import stray_events_apply

    return {**sweep_once(), "events": stray_events_apply()}


@shared_task(name="messaging.tasks.heartbeat")
def heartbeat(queue: str) -> None:
    """Periodic, on each queue: a worker of ``queue`` is alive (read by /readyz)."""
    from messaging.health import heartbeat_record, worker_heartbeat_name

    heartbeat_record(worker_heartbeat_name(queue), detail=heartbeat.request.hostname or "")


@shared_task(name="messaging.tasks.fold_counters")
def fold_counters() -> int:
    from messaging.counters import counters_fold

    return counters_fold()


@shared_task(name="messaging.tasks.apply_provider_events", acks_late=True, **RETRY)
def apply_provider_events(event_ids: list[int]) -> int:
    from messaging.receipts import events_apply

    return events_apply(event_ids)


@shared_task(name="messaging.tasks.apply_retention")
def apply_retention() -> dict:
    """Daily: delete or blank what the organizations' retention settings no longer keep."""
    from messaging.retention import retention_apply

    return retention_apply()


# --- outbound webhooks (the REST API's event deliveries) ----------------------------------------
# Their signal receivers are connected in MessagingConfig.ready(), which runs in workers too.


@shared_task(name="messaging.tasks.deliver_webhook", acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    from messaging.outbound_webhooks import webhook_attempt

    return webhook_attempt(delivery_id)


@shared_task(name="messaging.tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Periodic: re-enqueue webhook deliveries whose attempt is overdue (a lost task)."""
    from messaging.outbound_webhooks import due_delivery_ids

    due = due_delivery_ids()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)


# --- inbox
# Celery names pinned: queued messages name the task by where it was first defined (messaging/inbox.py).


@shared_task(name="messaging.inbox.fetch_inbound_media", acks_late=True)
def fetch_inbound_media(message_id: int) -> str:
    from messaging.inbound_media import inbound_media_fetch

    return inbound_media_fetch(message_id)


@shared_task(name="messaging.inbox.send_read_receipts", acks_late=True)
def send_read_receipts(conversation_id: int) -> int:
    from messaging.inbox import read_receipts_send

    return read_receipts_send(conversation_id)
