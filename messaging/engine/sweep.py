"""Stage 6, the sweepers: what the periodic sweep task does, and cancelling a campaign's rest.

RCS accepted but not delivered within its TTL is revoked (``ttl_sweep``); only a confirmed revoke
(or a TTL_EXPIRATION_REVOKED event) marks it ``pending_fallback`` for the SMS leg — never both.
A dispatch chain whose worker died is restarted; a cancelled campaign's rows still leased by a
batch in flight are cancelled once no batch holds them."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import aiohttp
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from messaging.counters import counters_add
from messaging.engine.dispatch import dispatch_chains_start, dispatch_fallbacks
from messaging.gateways import GatewayError, gateway_for
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, Metric

REVOKE_NOT_FOUND = "revoke_not_found"

D = DeliveryStatus


def sweep_once() -> dict:
    """The periodic sweep: restart dead dispatch chains, revoke RCS past its TTL (its SMS leg then
    goes) and cancel what cancelled campaigns left behind."""
    stale = campaigns_needing_dispatch()
    for campaign_id in stale:
        dispatch_chains_start(campaign_id)
    revoked = ttl_sweep()
    cancel_orphans()
    return {"restarted": len(stale), "revoked": revoked}


def campaigns_needing_dispatch() -> list[int]:
    """Campaigns with sending left whose dispatch chain looks dead (a worker was killed): running
    ones, and completed ones with an SMS leg waiting that no chain has taken (an expiry reported
    late, or a revoke that raced the completion)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.DISPATCH_STALE_SECONDS)
    stale = Q(last_dispatch_at__isnull=True) | Q(last_dispatch_at__lt=cutoff)
    waiting_legs = Delivery.objects.filter(campaign_id=OuterRef("pk"), pending_fallback=True).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    left_behind = Q(status=CampaignStatus.COMPLETED, finished_at__gte=now - timedelta(days=1)) & Exists(waiting_legs)
    return list(
        Campaign.objects.filter(stale)
        .filter(Q(status=CampaignStatus.RUNNING) | left_behind)
        .values_list("id", flat=True)
    )


def ttl_expired_rcs(limit: int = 1000):
    """RCS messages accepted but not delivered within their TTL (plus a grace period)."""
    grace = settings.TTL_GRACE_SECONDS
    now = timezone.now()
    sql = (
        f"SELECT d.id FROM {Delivery._meta.db_table} d "
        f"LEFT JOIN campaigns_campaign c ON c.id = d.campaign_id "
        f"WHERE d.status = {D.SENT} AND d.channel = 'rcs' AND NOT d.pending_fallback "
        f"AND d.error_code <> '{REVOKE_NOT_FOUND}' AND d.sent_at < %s - (COALESCE(c.ttl_seconds, d.ttl_seconds, 3600) + %s) * INTERVAL '1 second' "
        f"ORDER BY d.id LIMIT %s"
    )
    if connection.vendor == "sqlite":
        sql = (
            f"SELECT d.id FROM {Delivery._meta.db_table} d "
            f"LEFT JOIN campaigns_campaign c ON c.id = d.campaign_id "
            f"WHERE d.status = {D.SENT} AND d.channel = 'rcs' AND NOT d.pending_fallback "
            f"AND d.error_code <> '{REVOKE_NOT_FOUND}' AND julianday(d.sent_at) < julianday(%s) - (COALESCE(c.ttl_seconds, d.ttl_seconds, 3600) + %s) / 86400.0 "
            f"ORDER BY d.id LIMIT %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, grace, limit])
        return [row[0] for row in cursor.fetchall()]


def ttl_sweep(limit: int = 1000) -> int:
    """Revoke RCS messages past their TTL; a confirmed revoke queues the SMS leg."""
    ids = ttl_expired_rcs(limit)
    if not ids:
        return 0
    deliveries = list(
        Delivery.objects.filter(id__in=ids).select_related(
            "contact", "campaign__official_account__rcs_gateway", "official_account__rcs_gateway"
        )
    )

    async def revoke_all():
        timeout = aiohttp.ClientTimeout(total=settings.GATEWAY_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def one(delivery):
                account = delivery.campaign.official_account if delivery.campaign_id else delivery.official_account
                try:
                    revoked = await gateway_for(account.rcs_gateway).revoke(
                        session, delivery.contact.phone, str(delivery.uuid)
                    )
                except GatewayError:
                    return delivery, None
                return delivery, revoked

            return await asyncio.gather(*(one(d) for d in deliveries))

    results = asyncio.run(revoke_all())
    revoked = [d.id for d, ok in results if ok is True]
    # 404: the platform no longer holds the message — delivered, or revoked by its own TTL. Which
    # one, only the receipts tell (DELIVERED or TTL_EXPIRATION_REVOKED), so we wait for them and
    # do not ask again.
    not_held = [d.id for d, ok in results if ok is False]
    if not_held:
        Delivery.objects.filter(id__in=not_held, status=D.SENT).update(error_code=REVOKE_NOT_FOUND)
    queue_sms_fallback(revoked)
    return len(revoked)


def queue_sms_fallback(delivery_ids: list[int]) -> int:
    """After a confirmed revoke: the SMS leg is queued. Only rows still RCS-and-undelivered move."""
    if not delivery_ids:
        return 0
    with transaction.atomic():
        rows = list(
            Delivery.objects.filter(id__in=delivery_ids, status=D.SENT, channel=Channel.RCS).values_list(
                "id", "campaign_id"
            )
        )
        updated = Delivery.objects.filter(
            id__in=[r[0] for r in rows], status=D.SENT, channel=Channel.RCS
        ).update(
            channel=Channel.SMS,
            fallback_reason=FallbackReason.TTL_EXPIRED,
            pending_fallback=True,
            lease_until=None,
        )
        dispatch_fallbacks(rows)
    return updated


def cancel_remaining(campaign: Campaign) -> int:
    """Mark every delivery not yet sent as cancelled (campaign cancel).

    Rows leased by a batch in flight are left to that batch, which records what it really sent;
    ``cancel_orphans`` later cancels any whose batch died.
    """
    now = timezone.now()
    not_in_flight = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    with transaction.atomic():
        updated = Delivery.objects.filter(not_in_flight, campaign=campaign, status=D.QUEUED).update(
            status=D.CANCELLED, error_code="campaign_cancelled", lease_until=None
        )
        pending = Delivery.objects.filter(not_in_flight, campaign=campaign, pending_fallback=True).update(
            status=D.CANCELLED, error_code="campaign_cancelled", pending_fallback=False, lease_until=None
        )
        counters_add(Counter({(campaign.pk, "", Metric.CANCELLED, "campaign_cancelled"): updated + pending}))
    return updated + pending


def cancel_orphans() -> int:
    """Cancel what is left of cancelled campaigns once no batch holds it any more."""
    recently = timezone.now() - timedelta(days=1)
    cancelled = Campaign.objects.filter(status=CampaignStatus.CANCELLED, finished_at__gte=recently)
    left = [
        campaign
        for campaign in cancelled
        if Delivery.objects.filter(Q(status=D.QUEUED) | Q(pending_fallback=True), campaign=campaign).exists()
    ]
    return sum(cancel_remaining(campaign) for campaign in left)
