"""Stage 5, dispatch: the unit of work of a Celery task. ``dispatch_batch`` runs one batch of a
campaign through the earlier stages — claim, decide each fresh row's channel, send, record — and
says what its chain should do next; ``send_single`` does the same for the priority lane's single
messages. Also here: how big a batch is, the automatic pause on a storm of gateway errors, whether
a campaign has work left, and enqueueing what sends (the chains, the SMS legs after a revoke).

A fresh row's channel is decided and *written* in the claim's batch before anything is sent — RCS
if the number is RCS-capable (batch capability check, cached in Redis) and the carrier the gateway
reported for it approved the official account, otherwise SMS with a fallback reason (not_capable,
carrier_not_approved) — so a re-claim after a crash can never switch a row to the other channel.
The carrier is written on the delivery and, as the last known one, on the contact."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.compliance import quiet_hours_held_reason, quiet_hours_hold
from campaigns.models import Campaign, CampaignStatus, Classification, Contact
from campaigns.status import TransitionError, campaign_transition
from core import stage_cpu, throttle
from core.sql import among
from messaging import tasks
from messaging.engine.claim import deliveries_claim
from messaging.engine.context import Row, SendContext, context_for_campaign, context_for_single
from messaging.engine.failover import sms_gateways_choose
from messaging.engine.freeze import audience_freeze_chunk
from messaging.engine.record import record_outcome
from messaging.engine.send import (
    Outcome,
    Sender,
    capabilities_or_error,
    gather,
    note_retry,
    process_sender,
    send_planned,
    send_sms,
)
from messaging.gateways import Retryable
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
SINGLE_BATCH = 50  # single messages sent together by one priority task

D = DeliveryStatus


def audience_freeze_and_dispatch(campaign: Campaign) -> None:
    """A launched campaign's first work: freeze its audience chunk by chunk, and start the dispatch
    chains as soon as the first chunk is frozen, so sending starts before the whole audience is in."""
    started = False
    while not audience_freeze_chunk(campaign):
        if not started:
            dispatch_chains_start(campaign.pk)
            started = True
    if not started:
        dispatch_chains_start(campaign.pk)


def dispatch_chains_start(campaign_id: int) -> None:
    """Start the campaign's parallel dispatch chains (each claims its own batches)."""
    for _ in range(settings.DISPATCH_CHAINS):
        tasks.dispatch_campaign.delay(campaign_id)


def dispatch_batch(campaign_id: int, batch_size: int = BATCH_SIZE) -> str:
    """Send one batch of a running campaign. Returns "more", "wait", "quiet", "idle", "done" or
    "stopped".

    "quiet": a promotion with sending left inside its organization's quiet hours claims nothing —
    not its queued rows, retries or SMS fallback legs — and says until when it is held
    (``status_reason``); its chain looks again later (``quiet_recheck_seconds``) and goes on by
    itself once the window has ended."""
    campaign = (
        Campaign.objects.select_related(
            "organization", "official_account__rcs_gateway", "official_account__sms_gateway",
            "official_account__backup_sms_gateway",
        )
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None or campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.COMPLETED):
        return "stopped"  # paused, cancelled — or deleted while its chain was queued
    Campaign.objects.filter(pk=campaign_id).update(last_dispatch_at=timezone.now())
    opens = quiet_hours_hold(campaign.organization, campaign.classification)
    if opens is None:
        ctx = context_for_campaign(campaign)
        with stage_cpu.stage("claim"), transaction.atomic():
            # A completed campaign has nothing queued left; what it can still have is the SMS leg of an
            # RCS message whose expiry was reported late. That leg is sent all the same.
            rows = deliveries_claim(_batch_size_for(ctx, batch_size), campaign_id=campaign_id)
        if rows:
            _hold_lifted(campaign)
            outcome = _process(ctx, rows)
            if campaign.status == CampaignStatus.RUNNING:
                _maybe_auto_pause(campaign, len(rows), outcome.gateway_errors)
            return "more"
    if campaign.status != CampaignStatus.RUNNING:
        # A completed promotion's late SMS leg waits for the window like everything else.
        return "quiet" if opens is not None and unfinished_work(campaign)[0] else "stopped"
    if not campaign.audience_frozen_at:
        # Nothing claimable yet: help freeze the audience (this also resumes a launch whose task died).
        audience_freeze_chunk(campaign)
        return "more"
    unsent, awaiting_receipts = unfinished_work(campaign)
    if unsent:
        if opens is not None:
            _hold_for_quiet_hours(campaign, opens)
            return "quiet"
        return "wait"  # leased by another chain, or backing off after a retryable error
    if awaiting_receipts:
        # Everything is out, but RCS messages may still expire into SMS: look again in a while.
        return "idle"
    try:
        campaign_transition(campaign, CampaignStatus.COMPLETED)
    except TransitionError:
        pass
    return "done"


def quiet_recheck_seconds(campaign_id: int) -> float:
    """How long a held chain waits before it looks again: until the window ends, but at most
    QUIET_HOURS_RECHECK_SECONDS (so a changed setting takes effect soon) and less than the time after
    which the sweeper would take the chain for dead and start more."""
    campaign = Campaign.objects.select_related("organization").filter(pk=campaign_id).first()
    opens = quiet_hours_hold(campaign.organization, campaign.classification) if campaign else None
    left = (opens - timezone.now()).total_seconds() if opens else 0.0
    cap = min(settings.QUIET_HOURS_RECHECK_SECONDS, settings.DISPATCH_STALE_SECONDS / 2)
    return max(1.0, min(left, cap))


def _hold_for_quiet_hours(campaign: Campaign, opens) -> None:
    """Say on the running campaign that it is held, and until when (shown by its monitor)."""
    reason = quiet_hours_held_reason(opens)
    if campaign.status_reason != reason:
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(status_reason=reason)


def _hold_lifted(campaign: Campaign) -> None:
    """A running campaign has no other reason than a quiet-hours hold (every transition resets it)."""
    if campaign.status == CampaignStatus.RUNNING and campaign.status_reason:
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(status_reason="")


def unfinished_work(campaign: Campaign) -> tuple[bool, bool]:
    """(anything unsent, any RCS message awaiting its receipts) — in one statement, so one snapshot.

    Unsent: a queued row or an SMS leg waiting to go. Awaiting receipts: RCS sent but neither
    delivered nor past its TTL (plus the grace and a margin). A revoke moves a row from the second
    kind to the first; asked in two statements, a move between them would show neither, and the
    campaign would complete with its SMS leg never sent.
    """
    horizon = timezone.now() - timedelta(seconds=campaign.ttl_seconds + settings.TTL_GRACE_SECONDS + 300)
    deliveries = Delivery.objects.filter(campaign_id=OuterRef("pk"))
    queued, legs, awaiting = (
        Campaign.objects.filter(pk=campaign.pk)
        .annotate(
            queued=Exists(deliveries.filter(status=D.QUEUED)),
            legs=Exists(deliveries.filter(pending_fallback=True)),
            awaiting=Exists(deliveries.filter(status=D.SENT, channel=Channel.RCS, sent_at__gt=horizon)),
        )
        .values_list("queued", "legs", "awaiting")
        .get()
    )
    return queued or legs, awaiting


def _batch_size_for(ctx: SendContext, batch_size: int) -> int:
    """About one second of sending per chain: a batch is sent well within its lease, and an opt-out
    (checked at claim time) takes effect within about a second."""
    rate = _slowest_rate(ctx)
    if rate is None:
        return batch_size
    per_chain = int(rate / max(settings.DISPATCH_CHAINS, 1))
    return max(10, min(batch_size, per_chain))


def _slowest_rate(ctx: SendContext) -> int | None:
    """Sends per second of the slower of the context's gateways; None without any."""
    rates = [g.rate_per_second for g in (ctx.rcs_gateway, ctx.sms_gateway) if g is not None]
    return min(rates) if rates else None


def _maybe_auto_pause(campaign: Campaign, attempted: int, errors: int) -> None:
    threshold = settings.AUTO_PAUSE_ERROR_RATE
    if attempted < settings.AUTO_PAUSE_MIN_BATCH or not threshold or errors / attempted < threshold:
        return
    reason = gettext("Paused automatically: %(errors)d of %(attempted)d sends failed at the gateway.") % {
        "errors": errors,
        "attempted": attempted,
    }
    try:
        campaign_transition(campaign, CampaignStatus.PAUSED, reason=reason)
        logger.warning("campaign %s auto-paused: %s", campaign.pk, reason)
    except TransitionError:
        pass


def send_single(delivery_id: int) -> str:
    """Send one message on its own (API, test send, inbox reply): the priority lane's unit of work.

    Other single messages of the same official account waiting at that moment go out with it, each
    with its own content, as many as the lane sends in about a second (at most SINGLE_BATCH): one
    claim, one capability check and one record for all of them instead of a task's worth of work for
    each. Their own tasks then find them sent, or leased and look again when the lease ends, so a
    batch lost with its worker is still sent. Whatever must be tried again is re-enqueued here.
    Returns "sent", "retry", "leased" (another task holds it), "quiet" (a promotion inside its
    organization's quiet hours: its task looks again when they end, or in QUIET_HOURS_RECHECK_SECONDS
    at most) or "nothing". Inside quiet hours, no promotional message goes out with another either."""
    opens = _single_hold(delivery_id)
    if opens is not None:
        _send_later({delivery_id: _single_recheck_seconds(opens)})
        return "quiet"
    with stage_cpu.stage("claim"), transaction.atomic():
        own = deliveries_claim(1, delivery_id=delivery_id)
        if own:
            delivery = _singles_loaded([delivery_id])[delivery_id]
            ctx = _single_context(delivery)
            more = _single_batch_size(ctx) - 1
            promotions_held = quiet_hours_hold(delivery.organization, Classification.PROMOTION) is not None
            others = (
                deliveries_claim(
                    more, singles_beside=(delivery.official_account_id, delivery_id), transactional_only=promotions_held
                )
                if more > 0 and delivery.official_account_id
                else []
            )
    if not own:
        lease_left = _lease_left(delivery_id)
        if lease_left is None:
            return "nothing"
        _send_later({delivery_id: lease_left})
        return "leased"
    loaded = _singles_loaded([row.id for row in others])
    batches = [(ctx, own)] + [(_single_context(loaded[row.id]), [row]) for row in others]
    retry = {}
    for outcome in _process_jobs(batches):
        retry.update(outcome.retry)
    _send_later(retry)
    return "retry" if delivery_id in retry else "sent"


def _single_hold(delivery_id: int):
    """When the single message may go (None: now), by its classification — its campaign's, for a
    campaign's row sent on its own."""
    delivery = Delivery.objects.select_related("organization", "campaign").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    classification = delivery.campaign.classification if delivery.campaign_id else delivery.classification
    return quiet_hours_hold(delivery.organization, classification or Classification.TRANSACTION)


def _single_recheck_seconds(opens) -> float:
    left = (opens - timezone.now()).total_seconds()
    return min(left, settings.QUIET_HOURS_RECHECK_SECONDS)


def _singles_loaded(ids: list[int]) -> dict[int, Delivery]:
    if not ids:
        return {}
    return (
        Delivery.objects.select_related(
            "organization",
            "campaign__official_account__rcs_gateway",
            "campaign__official_account__sms_gateway",
            "official_account__rcs_gateway",
            "official_account__sms_gateway",
            "official_account__backup_sms_gateway",
        )
        .prefetch_related("official_account__reviews", "campaign__official_account__reviews")
        .in_bulk(ids)
    )


def _single_context(delivery: Delivery) -> SendContext:
    ctx = context_for_campaign(delivery.campaign) if delivery.campaign_id else context_for_single(delivery)
    ctx.lane = throttle.PRIORITY
    return ctx


def _single_batch_size(ctx: SendContext) -> int:
    """About a second of the priority lane's share of the slowest gateway: the batch is sent well
    within its lease even while a campaign takes the rest of the rate."""
    rate = _slowest_rate(ctx)
    if rate is None:
        return 1
    return max(1, min(SINGLE_BATCH, int(rate * settings.PRIORITY_RATE_SHARE)))


def _lease_left(delivery_id: int) -> float | None:
    """Seconds until another task's lease on this unsent message ends; None when nothing of it is
    left to send (it went out, failed or was cancelled)."""
    found = (
        Delivery.objects.filter(Q(status=D.QUEUED) | Q(pending_fallback=True), pk=delivery_id)
        .values_list("lease_until")
        .first()
    )
    if found is None:
        return None
    lease_until = found[0]
    return max(0.0, (lease_until - timezone.now()).total_seconds()) if lease_until else 0.0


def _send_later(waits: dict[int, float]) -> None:
    """Enqueue single messages again, each after its wait (and at least a second)."""
    for delivery_id, wait in waits.items():
        tasks.send_message.apply_async((delivery_id,), countdown=max(1.0, wait), queue="priority")


def dispatch_fallbacks(rows: list[tuple[int, int | None]]) -> None:
    """Enqueue, after commit, whatever sends the SMS legs just queued: the campaign's chain, or the
    priority lane for a message sent on its own."""
    campaign_ids = {campaign_id for _id, campaign_id in rows if campaign_id}
    singles = [delivery_id for delivery_id, campaign_id in rows if not campaign_id]
    for campaign_id in campaign_ids:
        transaction.on_commit(lambda c=campaign_id: tasks.dispatch_campaign.delay(c))
    for delivery_id in singles:
        transaction.on_commit(lambda d=delivery_id: tasks.send_message.delay(d))


# ---------------------------------------------------------------------------------------------
# One batch: plan the legs, decide fresh rows' channel, send, record


@dataclass
class _Job:
    """Rows that share one send context (a campaign's batch, or one single message), planned by leg."""

    ctx: SendContext
    plan: dict[str, list[Row]]
    cancelled: list[Row]
    outcome: Outcome = field(default_factory=Outcome)


def _plan(ctx: SendContext, rows: list[Row]) -> _Job:
    promotion = ctx.classification == Classification.PROMOTION
    cancelled = [row for row in rows if promotion and row.opted_out]
    rows = [row for row in rows if not (promotion and row.opted_out)]
    rcs_path = "provider" if ctx.provider_fallback else "rcs"
    plan = {"fresh": [], "rcs": [], "provider": [], "sms": [], "fallback": []}
    for row in rows:
        if row.pending_fallback:
            plan["fallback"].append(row)
        elif not row.channel:
            plan["fresh"].append(row)
        elif row.channel == Channel.RCS:
            plan[rcs_path].append(row)
        else:
            plan["sms"].append(row)
    return _Job(ctx, plan, cancelled)


def _process(ctx: SendContext, rows: list[Row]) -> Outcome:
    return _process_jobs([(ctx, rows)])[0]


def _process_jobs(batches: list[tuple[SendContext, list[Row]]]) -> list[Outcome]:
    """Send batches of rows, each with its own context, together: one capability check per gateway,
    every leg of every batch concurrently, one record per campaign (or for all single messages)."""
    jobs = [_plan(ctx, rows) for ctx, rows in batches]
    sender = process_sender.open()
    if any(job.plan["fresh"] for job in jobs):
        with stage_cpu.stage("capability"):
            _decide_fresh(sender, jobs)
    with stage_cpu.stage("send"):
        sms_gateways_choose([(job.ctx, job.plan["sms"] + job.plan["fallback"]) for job in jobs])
        not_reachable = sender.run(
            gather(send_planned(sender.session, job.ctx, job.plan, job.outcome) for job in jobs)
        )
        bounced = [(job, rows) for job, rows in zip(jobs, not_reachable, strict=True) if rows]
        if bounced:
            _switch_to_sms([row for _job, rows in bounced for row in rows], FallbackReason.NOT_REACHABLE)
            sms_gateways_choose([(job.ctx, rows) for job, rows in bounced])
            sender.run(gather(send_sms(sender.session, job.ctx, rows, job.outcome) for job, rows in bounced))
    by_campaign = defaultdict(list)
    for job in jobs:
        by_campaign[job.ctx.campaign_id].append(job)
    with stage_cpu.stage("record"):
        for campaign_id, group in by_campaign.items():
            record_outcome(
                campaign_id, _merged([job.outcome for job in group]), [row for job in group for row in job.cancelled]
            )
    return [job.outcome for job in jobs]


def _merged(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    merged = Outcome()
    for outcome in outcomes:
        for name in ("rcs_sent", "sms_sent", "fallback_sms_sent", "failed"):
            getattr(merged, name).extend(getattr(outcome, name))
        merged.retry.update(outcome.retry)
        merged.throttled |= outcome.throttled
        merged.sms_unpinned |= outcome.sms_unpinned
        merged.gateway_switches.extend(outcome.gateway_switches)
        merged.gateway_errors += outcome.gateway_errors
    return merged


def _decide_fresh(sender: Sender, jobs: list[_Job]) -> None:
    """Choose and write the channel of rows never tried before: one capability check per RCS gateway
    for all the jobs that use it, then one UPDATE per decision. This is the one place where the
    engine chooses between +Message and SMS for a message, whichever path it came by (campaign, API,
    inbox reply): +Message only to a capable number whose carrier approved the account."""
    decided = defaultdict(list)  # (channel, fallback reason) → rows
    by_gateway = defaultdict(list)
    for job in jobs:
        fresh, job.plan["fresh"] = job.plan["fresh"], []
        if not fresh:
            continue
        if job.ctx.provider_fallback:
            decided[(Channel.RCS, "")].extend(fresh)
            job.plan["provider"].extend(fresh)
        elif job.ctx.rcs_gateway is None:
            # Provider fallback set up, but not every carrier approved the account: SMS only.
            reason = FallbackReason.CARRIER_NOT_APPROVED if job.ctx.provider_fallback_configured else ""
            decided[(Channel.SMS, reason)].extend(fresh)
            job.plan["sms"].extend(fresh)
        else:
            by_gateway[job.ctx.rcs_gateway.pk].append((job, fresh))
    groups = list(by_gateway.values())
    answers = sender.run(
        gather(
            capabilities_or_error(sender.session, group[0][0].ctx, [row for _job, rows in group for row in rows])
            for group in groups
        )
    )
    for group, known in zip(groups, answers, strict=True):
        for job, fresh in group:
            if isinstance(known, Retryable):
                for row in fresh:
                    note_retry(job.ctx.rcs_gateway, row, known, job.outcome)
                continue
            for row in fresh:
                capable, row.carrier = known.get(row.phone, (False, ""))
                if not capable:
                    decided[(Channel.SMS, FallbackReason.NOT_CAPABLE)].append(row)
                    job.plan["sms"].append(row)
                elif not job.ctx.rcs_allowed(row.carrier):
                    decided[(Channel.SMS, FallbackReason.CARRIER_NOT_APPROVED)].append(row)
                    job.plan["sms"].append(row)
                else:
                    decided[(Channel.RCS, "")].append(row)
                    job.plan["rcs"].append(row)
    for (channel, reason), rows in decided.items():
        _write_channel(rows, channel, reason)
    _contacts_carrier_write([row for rows in decided.values() for row in rows])


def _write_channel(rows: list[Row], channel: str, reason: str) -> None:
    """One UPDATE per carrier (at most a handful) for the rows given one decision."""
    by_carrier = defaultdict(list)
    for row in rows:
        row.channel, row.fallback_reason = channel, reason
        by_carrier[row.carrier].append(row.id)
    for carrier, ids in by_carrier.items():
        matching, params = among("id", ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Delivery._meta.db_table} SET channel = %s, fallback_reason = %s, carrier = %s "
                f"WHERE {matching} AND status = {D.QUEUED} AND channel = ''",
                [channel, reason, carrier, *params],
            )


def _contacts_carrier_write(rows: list[Row]) -> None:
    """Keep the carrier each number was last reported on with its contact: one UPDATE per carrier,
    writing only contacts whose carrier changed (a ported number)."""
    by_carrier = defaultdict(set)
    for row in rows:
        if row.carrier:
            by_carrier[row.carrier].add(row.contact_id)
    for carrier, ids in by_carrier.items():
        matching, params = among("id", sorted(ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Contact._meta.db_table} SET carrier = %s WHERE {matching} AND carrier <> %s",
                [carrier, *params, carrier],
            )


def _switch_to_sms(rows: list[Row], reason: str) -> None:
    """Write the channel decision before the SMS goes out, so a re-claim never tries RCS again."""
    for row in rows:
        row.channel, row.fallback_reason = Channel.SMS, reason
    by_reason = defaultdict(list)
    for row in rows:
        by_reason[row.fallback_reason].append(row.id)
    for fallback_reason, ids in by_reason.items():
        Delivery.objects.filter(id__in=ids, status=D.QUEUED).update(channel=Channel.SMS, fallback_reason=fallback_reason)
