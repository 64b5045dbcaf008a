"""The fan-out engine: freeze a campaign's audience, then claim, check, send and record in batches.

How one delivery flows (design.md §5):

1. ``audience_freeze`` inserts one QUEUED Delivery per (campaign, contact) with keyset-paged
   INSERT … SELECT chunks; the cursor moves in the same transaction, so a crash resumes.
2. ``dispatch_batch`` claims up to N claimable rows with a lease (SKIP LOCKED on PostgreSQL).
   In the claim transaction each fresh row's channel is decided and written — RCS if the number is
   RCS-capable (batch capability check, cached in Redis), otherwise SMS with a fallback reason — so
   a re-claim after a crash can never switch a row to the other channel.
3. Sends go out concurrently, each at its slot from the account's global token bucket. The delivery
   UUID is the RBM messageId and the CM reference (+"-sms" for the SMS leg) on every attempt, so a
   retry after a crash or a timeout is deduplicated by the carrier.
4. Results are recorded in bulk: sent; not reachable → SMS now; retryable → back off (the lease);
   permanent → failed. Counter deltas go in with the same transaction.
5. RCS accepted but not delivered within the TTL → ``ttl_sweep`` revokes it; only a confirmed revoke
   (or a TTL_EXPIRATION_REVOKED event) marks it ``pending_fallback`` for the SMS leg. Never both.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import aiohttp
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.models import GatewayAccount
from campaigns.models import Campaign, CampaignStatus, Classification, Contact
from campaigns.status import TransitionError, campaign_transition
from core import throttle
from core.personalize import personalize_content, personalize_text
from core.signed_links import PLACEHOLDER_KEY as OPT_OUT_KEY
from core.signed_links import opt_out_url
from core.sql import among
from messaging.counters import counters_add
from messaging.gateways import GatewayError, NotReachable, OutboundMessage, Permanent, Retryable, gateway_for
from messaging.gateways.base import sms_leg_id
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, Metric
from messaging.signals import delivery_status_changed

logger = logging.getLogger(__name__)

FREEZE_CHUNK = 10_000
FREEZE_LOCK = 0x46524545  # advisory lock namespace of audience freezing ("FREE")
BATCH_SIZE = 500
SINGLE_BATCH = 50  # single messages sent together by one priority task
MAX_IN_FLIGHT = 64
KEEPALIVE_SECONDS = 4.0
REVOKE_NOT_FOUND = "revoke_not_found"

D = DeliveryStatus


# ---------------------------------------------------------------------------------------------
# 1. Freezing the audience


def _audience_sql(campaign: Campaign):
    """SQL and params selecting (contact id, opted out, has consent) of the campaign's candidates."""
    from campaigns.audience import annotated_candidates

    include = list(campaign.audience_lists.values_list("id", flat=True))
    exclude = list(campaign.exclusion_lists.values_list("id", flat=True))
    queryset = annotated_candidates(campaign.organization_id, include, exclude).values_list(
        "id", "opted_out_at", "has_consent", "active_consent_id"
    )
    return queryset.query.sql_with_params()


def audience_freeze_chunk(campaign: Campaign, chunk: int = FREEZE_CHUNK) -> bool:
    """Insert the next chunk of deliveries. Returns True when the whole audience is frozen."""
    delivery = Delivery._meta.db_table
    inner_sql, inner_params = _audience_sql(campaign)
    promotion = campaign.classification == Classification.PROMOTION
    uuid_sql = "gen_random_uuid()" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"
    with transaction.atomic():
        # One freezer at a time per campaign (the launch task, and dispatch chains helping). Not a
        # lock on the campaign's row: dispatch updates that row at every batch and must not wait.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [FREEZE_LOCK, campaign.pk])
        locked = Campaign.objects.only("audience_cursor", "audience_frozen_at").get(pk=campaign.pk)
        if locked.audience_frozen_at:
            return True
        cursor_id = locked.audience_cursor
        # The page is a range of contact ids found first with the (organization, id) index, so that
        # each chunk reads only its own contacts, however the planner joins the audience query.
        upper_id = (
            Contact.objects.filter(organization_id=campaign.organization_id, id__gt=cursor_id)
            .order_by("id")
            .values_list("id", flat=True)[chunk - 1 : chunk]
            .first()
        )
        bounded = "a.id > %s AND a.id <= %s" if upper_id is not None else "a.id > %s"
        page = f"SELECT a.* FROM ({inner_sql}) AS a WHERE {bounded} ORDER BY a.id LIMIT %s"
        page_params = [*inner_params, cursor_id, *([upper_id] if upper_id is not None else []), chunk]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*), MAX(p.id), "
                f"SUM(CASE WHEN p.opted_out_at IS NOT NULL THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN p.opted_out_at IS NULL AND NOT p.has_consent THEN 1 ELSE 0 END) "
                f"FROM ({page}) AS p",
                page_params,
            )
            count, last_id, opted_out, no_consent = cursor.fetchone()
            if not count and upper_id is None:
                Campaign.objects.filter(pk=campaign.pk).update(audience_frozen_at=timezone.now())
                return True
            last_id = upper_id if upper_id is not None else last_id
            eligible = "p.opted_out_at IS NULL AND p.has_consent" if promotion else "1=1"
            cursor.execute(
                f"INSERT INTO {delivery} (uuid, organization_id, campaign_id, contact_id, channel, status, "
                f"rcs_provider_id, sms_provider_id, error_code, error_reason, fallback_reason, pending_fallback, "
                f"attempts, created_at, sms_text, classification, client_reference, consent_id) "
                f"SELECT {uuid_sql}, %s, %s, p.id, '', 0, '', '', '', '', '', FALSE, 0, %s, '', '', '', p.active_consent_id "
                f"FROM ({page}) AS p WHERE {eligible} "
                f"ON CONFLICT (campaign_id, contact_id) WHERE campaign_id IS NOT NULL DO NOTHING",
                [campaign.organization_id, campaign.pk, timezone.now(), *page_params],
            )
            inserted = cursor.rowcount
        Campaign.objects.filter(pk=campaign.pk).update(audience_cursor=last_id)
        increments = Counter({(campaign.pk, "", Metric.TARGETED, ""): inserted})
        if promotion:
            increments[(campaign.pk, "", Metric.SKIPPED, "opted_out")] += opted_out or 0
            increments[(campaign.pk, "", Metric.SKIPPED, "no_consent")] += no_consent or 0
        counters_add(increments)
    return False


def audience_freeze(campaign: Campaign) -> None:
    while not audience_freeze_chunk(campaign):
        pass


# ---------------------------------------------------------------------------------------------
# 2. Claiming


@dataclass
class Row:
    id: int
    uuid: str  # canonical, dashed: the id the carriers see
    contact_id: int
    phone: str
    name: str
    attributes: dict
    opted_out: bool
    channel: str
    pending_fallback: bool
    fallback_reason: str = ""
    attempts: int = 1


@dataclass
class SendContext:
    """What a batch needs to know about its campaign (or its single message)."""

    campaign_id: int | None
    organization_id: int
    content: dict
    sms_text: str
    sms_sender: str
    classification: str
    ttl_seconds: int
    rcs_gateway: GatewayAccount | None
    sms_gateway: GatewayAccount | None
    lane: str = throttle.BULK

    @property
    def traffic_type(self) -> str:
        return "PROMOTION" if self.classification == Classification.PROMOTION else "TRANSACTION"

    @functools.cached_property
    def has_links(self) -> bool:
        from core.rich_content import iter_urls

        return any(True for _ in iter_urls(self.content or {}))

    @functools.cached_property
    def personalised(self) -> bool:
        """Whether the rich content has placeholders (otherwise everyone gets the same document)."""
        return "{{" in json.dumps(self.content or {}, ensure_ascii=False)

    @functools.cached_property
    def uses_opt_out_link(self) -> bool:
        return OPT_OUT_KEY in json.dumps(self.content or {}, ensure_ascii=False) or OPT_OUT_KEY in (self.sms_text or "")

    @property
    def provider_fallback(self) -> bool:
        return bool(self.sms_gateway and self.sms_gateway.provider_fallback)


def _context_for_campaign(campaign: Campaign) -> SendContext:
    account = campaign.official_account
    return SendContext(
        campaign_id=campaign.pk,
        organization_id=campaign.organization_id,
        content=campaign.content,
        sms_text=campaign.sms_text,
        sms_sender=account.sms_sender_id,
        classification=campaign.classification,
        ttl_seconds=campaign.ttl_seconds,
        rcs_gateway=account.rcs_gateway,
        sms_gateway=account.sms_gateway,
    )


def _context_for_single(delivery: Delivery) -> SendContext:
    account = delivery.official_account
    return SendContext(
        campaign_id=None,
        organization_id=delivery.organization_id,
        content=delivery.content or {},
        sms_text=delivery.sms_text,
        sms_sender=account.sms_sender_id,
        classification=delivery.classification or Classification.TRANSACTION,
        ttl_seconds=delivery.ttl_seconds or 3600,
        rcs_gateway=account.rcs_gateway,
        sms_gateway=account.sms_gateway,
    )


def _claim(
    limit: int,
    *,
    campaign_id: int | None = None,
    delivery_id: int | None = None,
    singles_beside: tuple[int, int] | None = None,
) -> list[Row]:
    """Lease up to ``limit`` queued rows of a campaign (or the one delivery, or an official account's
    single messages but the given one: ``(account id, delivery id)``), and as many SMS legs waiting
    after a revoke; returns them with their contact."""
    delivery = Delivery._meta.db_table
    contact = "campaigns_contact"
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    if campaign_id is not None:
        # Each kind is read in order from its partial index (delivery_queued, delivery_pending_fallback),
        # which holds nothing already sent. The campaign is a range, not "=", on purpose: with "="
        # PostgreSQL reduces ORDER BY campaign_id, id to ORDER BY id, which the primary key serves
        # too, and on statistics that lag behind the sending it may then walk the primary key past
        # every row already sent — at each claim, late in a million-recipient campaign.
        scope, scope_params, order = "campaign_id BETWEEN %s AND %s", [campaign_id, campaign_id], "campaign_id, id"
    elif singles_beside is not None:
        scope, scope_params, order = "official_account_id = %s AND campaign_id IS NULL AND id <> %s", [*singles_beside], "id"
    else:
        scope, scope_params, order = "id = %s", [delivery_id], "id"
    skip_locked = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    free = "(lease_until IS NULL OR lease_until < %s)"
    sql = (
        f"WITH fallback_legs AS (SELECT id FROM {delivery} WHERE {scope} AND pending_fallback AND {free} "
        f"ORDER BY {order} LIMIT %s {skip_locked}), "
        f"queued AS (SELECT id FROM {delivery} WHERE {scope} AND status = {D.QUEUED} AND {free} "
        f"ORDER BY {order} LIMIT %s {skip_locked}) "
        f"UPDATE {delivery} SET lease_until = %s, attempts = attempts + 1 "
        f"WHERE id IN (SELECT id FROM fallback_legs UNION ALL SELECT id FROM queued) "
        f"RETURNING id, uuid, contact_id, channel, pending_fallback, fallback_reason, attempts"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*scope_params, now, limit, *scope_params, now, limit, lease_until])
        claimed = cursor.fetchall()
        if not claimed:
            return []
        contact_ids, params = among("id", [row[2] for row in claimed])
        cursor.execute(f"SELECT id, phone, name, attributes, opted_out_at FROM {contact} WHERE {contact_ids}", params)
        contacts = {row[0]: row for row in cursor.fetchall()}
    rows = []
    for delivery_id, uuid, contact_id, channel, pending_fallback, fallback_reason, attempts in claimed:
        _, phone, name, attributes, opted_out_at = contacts[contact_id]
        if isinstance(attributes, str):
            attributes = json.loads(attributes or "{}")
        rows.append(
            Row(
                id=delivery_id,
                uuid=str(uuid if isinstance(uuid, UUID) else UUID(uuid)),  # SQLite gives the bare hex
                contact_id=contact_id,
                phone=phone,
                name=name,
                attributes=attributes or {},
                opted_out=opted_out_at is not None,
                channel=channel,
                pending_fallback=bool(pending_fallback),
                fallback_reason=fallback_reason,
                attempts=attempts,
            )
        )
    rows.sort(key=lambda r: r.id)
    return rows


def _extras(ctx: SendContext, row: Row) -> dict | None:
    """Per-person values beyond the contact's own: the signed opt-out link, made only when used."""
    return {OPT_OUT_KEY: opt_out_url(ctx.organization_id, row.contact_id)} if ctx.uses_opt_out_link else None


def _content_for(ctx: SendContext, row: Row) -> dict:
    """The rich content as this person gets it: personalised, and for a campaign with links, each
    link going through the console's click tracking."""
    content = ctx.content
    if ctx.personalised:
        content = personalize_content(content, row.name, row.attributes, _extras(ctx, row))
    if ctx.campaign_id and ctx.has_links:
        from messaging.links import rewrite_tracked_links

        content = rewrite_tracked_links(content, ctx.campaign_id, row.contact_id)
    return content


# ---------------------------------------------------------------------------------------------
# 3. Sending


@dataclass
class Outcome:
    rcs_sent: list[Row] = field(default_factory=list)
    sms_sent: list[Row] = field(default_factory=list)
    fallback_sms_sent: list[Row] = field(default_factory=list)  # SMS legs after a revoked RCS
    retry: dict[int, float] = field(default_factory=dict)  # delivery id → seconds to wait
    throttled: set[int] = field(default_factory=set)  # retried at the carrier's request: not an attempt
    failed: list[tuple[Row, str, str]] = field(default_factory=list)
    gateway_errors: int = 0


async def _at_slot(slot: float, gateway: GatewayAccount, lane: str):
    """Wait for a reserved send slot. At carrier limits up to STRICT_RATE_BELOW per second, a sender
    that wakes too late (the machine was busy) takes a new slot instead of going out together with
    the sends due after it, so lateness never turns into a burst above the limit. Above that, slots
    are microseconds apart and bunching is bounded by the MAX_IN_FLIGHT concurrent requests anyway;
    a new slot per late send would only cost a Redis round trip per message."""
    strict = gateway.rate_per_second <= settings.STRICT_RATE_BELOW
    tolerance = max(1.0 / gateway.rate_per_second, 0.005)
    for _ in range(3 if strict else 1):
        delay = slot - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not strict or time.time() - slot <= tolerance:
            return
        slot = throttle.reserve(gateway.pk, gateway.rate_per_second, 1, lane)[0]


async def _check_capabilities(session, ctx: SendContext, rows: list[Row]) -> dict[str, bool]:
    gateway_id = ctx.rcs_gateway.pk
    phones = sorted({row.phone for row in rows})
    known = throttle.cached_capabilities(gateway_id, phones)
    unknown = [phone for phone in phones if phone not in known]
    if unknown:
        adapter = gateway_for(ctx.rcs_gateway)
        capable = await adapter.capabilities(session, unknown)
        answers = {phone: phone in capable for phone in unknown}
        throttle.cache_capabilities(gateway_id, answers)
        known.update(answers)
    return known


async def _send_rcs(session, ctx: SendContext, rows: list[Row], outcome: Outcome) -> list[Row]:
    """Send the RCS leg; returns rows that turned out not reachable (to go by SMS now)."""
    adapter = gateway_for(ctx.rcs_gateway)
    slots = throttle.reserve(ctx.rcs_gateway.pk, ctx.rcs_gateway.rate_per_second, len(rows), ctx.lane)
    limiter = asyncio.Semaphore(MAX_IN_FLIGHT)
    not_reachable: list[Row] = []

    async def one(row: Row, slot: float):
        async with limiter:
            await _at_slot(slot, ctx.rcs_gateway, ctx.lane)
            message = OutboundMessage(
                message_id=row.uuid,
                phone=row.phone,
                content=_content_for(ctx, row),
                traffic_type=ctx.traffic_type,
                ttl_seconds=ctx.ttl_seconds,
            )
            try:
                await adapter.send(session, message)
                outcome.rcs_sent.append(row)
            except NotReachable:
                not_reachable.append(row)
            except Retryable as error:
                _note_retry(ctx.rcs_gateway, row, error, outcome)
            except Permanent as error:
                outcome.gateway_errors += 1
                outcome.failed.append((row, error.code or "permanent", error.reason[:500]))

    await asyncio.gather(*(one(row, slot) for row, slot in zip(rows, slots, strict=True)))
    return not_reachable


def _note_retry(gateway: GatewayAccount, row: Row, error: GatewayError, outcome: Outcome):
    """Back off exponentially in the number of failed attempts. A 429 is the carrier pacing the
    account, not a failure of this message: it waits the Retry-After and does not count, or a storm
    of 429s would make the next 5xx's wait a minute."""
    if error.retry_after:  # the carrier asked the whole account to slow down
        throttle.pause(gateway.pk, error.retry_after)
        outcome.throttled.add(row.id)
    else:
        outcome.gateway_errors += 1
    outcome.retry[row.id] = error.retry_after or min(60.0, 2.0 ** min(row.attempts, 6))


async def _send_sms(
    session, ctx: SendContext, rows: list[Row], outcome: Outcome, *, fallback_leg=False, provider_path=False
):
    """Send SMS through the CM-format gateway, up to 100 per request.

    ``provider_path``: the account lets the provider fall back (allowedChannels RCS+SMS): the
    message goes once, under the delivery's own id, with both the rich content and the SMS text.
    """
    gateway = ctx.sms_gateway
    if gateway is None:
        for row in rows:
            outcome.failed.append((row, "no_sms_gateway", "The official account has no SMS gateway."))
        return
    adapter = gateway_for(gateway)
    channels = ("RCS", "SMS") if provider_path else ("SMS",)
    messages = [
        OutboundMessage(
            message_id=row.uuid if provider_path else sms_leg_id(row.uuid),
            phone=row.phone,
            content=_content_for(ctx, row) if provider_path else None,
            sms_text=personalize_text(ctx.sms_text, row.name, row.attributes, _extras(ctx, row)),
            sms_sender=ctx.sms_sender,
            traffic_type=ctx.traffic_type,
            ttl_seconds=ctx.ttl_seconds,
            allowed_channels=channels,
        )
        for row in rows
    ]
    size = max(1, min(adapter.max_send_batch, 100))
    chunks = [list(range(i, min(i + size, len(rows)))) for i in range(0, len(rows), size)]
    slots = throttle.reserve(gateway.pk, gateway.rate_per_second, len(rows), ctx.lane)
    limiter = asyncio.Semaphore(max(1, MAX_IN_FLIGHT // size))

    async def one(indexes: list[int]):
        async with limiter:
            await _at_slot(slots[indexes[-1]], gateway, ctx.lane)
            try:
                results = await adapter.send_batch(session, [messages[i] for i in indexes])
            except GatewayError as error:
                results = [error] * len(indexes)
            for i, result in zip(indexes, results, strict=True):
                row = rows[i]
                if isinstance(result, Retryable):
                    _note_retry(gateway, row, result, outcome)
                elif isinstance(result, GatewayError):
                    outcome.gateway_errors += 1
                    outcome.failed.append((row, result.code or result.kind, result.reason[:500]))
                elif fallback_leg:
                    outcome.fallback_sms_sent.append(row)
                elif provider_path:
                    outcome.rcs_sent.append(row)
                else:
                    outcome.sms_sent.append(row)

    await asyncio.gather(*(one(indexes) for indexes in chunks))


def _new_session():
    timeout = aiohttp.ClientTimeout(total=settings.GATEWAY_TIMEOUT_SECONDS)
    # Idle connections are dropped before a server's usual keep-alive limit (5 s for uvicorn) would
    # close them under a request.
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Sender:
    """This process's event loop and HTTP session, kept from one batch to the next so that the
    connections to the gateways stay open (opening them per batch cost the worker and the carrier a
    TCP handshake for every few messages). Made anew in a forked child; when a step fails midway,
    whatever it left running is cancelled, so that nothing of it runs on into the next step.

    Database writes happen between ``run`` calls, never inside them."""

    def __init__(self):
        self.pid = None
        self.loop = None
        self.session = None

    def open(self) -> _Sender:
        if self.pid != os.getpid():
            self.loop = _new_loop()
            self.session = self.loop.run_until_complete(_open(_new_session))
            self.pid = os.getpid()
        return self

    def run(self, coroutine):
        self.open()
        try:
            return self.loop.run_until_complete(_after_pending_io(coroutine))
        except BaseException:
            self._cancel_pending()
            raise

    def _cancel_pending(self) -> None:
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending))

    def close(self) -> None:
        if self.loop is None or self.pid != os.getpid():
            return  # nothing open here (a parent's loop is left to the parent)
        try:
            self._cancel_pending()
            self.loop.run_until_complete(self.session.close())
        finally:
            self.loop.close()
            self.loop = self.session = self.pid = None


_sender = _Sender()
atexit.register(_sender.close)


async def _after_pending_io(coroutine):
    """Let the loop first take in what happened while it was stopped (a server closing a kept-alive
    connection), so that no request is written into a connection already closed."""
    await asyncio.sleep(0)
    return await coroutine


async def _send_planned(session, ctx: SendContext, plan: dict[str, list[Row]], outcome: Outcome) -> list[Row]:
    """Send every planned leg concurrently; returns the RCS rows that turned out not reachable."""
    tasks = []
    if plan["rcs"]:
        tasks.append(_send_rcs(session, ctx, plan["rcs"], outcome))
    if plan["sms"]:
        tasks.append(_send_sms(session, ctx, plan["sms"], outcome))
    if plan["provider"]:
        tasks.append(_send_sms(session, ctx, plan["provider"], outcome, provider_path=True))
    if plan["fallback"]:
        tasks.append(_send_sms(session, ctx, plan["fallback"], outcome, fallback_leg=True))
    results = await asyncio.gather(*tasks)
    return [row for result in results if isinstance(result, list) for row in result]


def _switch_to_sms(rows: list[Row], reason: str) -> None:
    """Write the channel decision before the SMS goes out, so a re-claim never tries RCS again."""
    for row in rows:
        row.channel, row.fallback_reason = Channel.SMS, reason
    by_reason = defaultdict(list)
    for row in rows:
        by_reason[row.fallback_reason].append(row.id)
    for fallback_reason, ids in by_reason.items():
        Delivery.objects.filter(id__in=ids, status=D.QUEUED).update(channel=Channel.SMS, fallback_reason=fallback_reason)


# ---------------------------------------------------------------------------------------------
# 4. Recording


def _record(cid: int | None, outcome: Outcome, cancelled: list[Row]) -> None:
    now = timezone.now()
    increments: Counter = Counter()
    with transaction.atomic():
        for rows, channel in ((outcome.rcs_sent, Channel.RCS), (outcome.sms_sent, Channel.SMS)):
            if rows:
                mark_sent("id", [r.id for r in rows], channel, now, increments)
        if outcome.fallback_sms_sent:
            mark_fallback_leg_sent("id", [r.id for r in outcome.fallback_sms_sent], now, increments)
        for row, code, reason in outcome.failed:
            updated = Delivery.objects.filter(id=row.id, status__lt=D.FAILED).update(
                status=D.FAILED, error_code=code[:50], error_reason=reason, failed_at=now, lease_until=None,
                pending_fallback=False,
            )
            increments[(cid, row.channel, Metric.FAILED, code[:50])] += updated
            if updated:
                _announce("failed", [row], cid, row.channel)
        by_wait = defaultdict(list)
        for delivery_id, wait in outcome.retry.items():
            by_wait[round(wait, 1)].append(delivery_id)
        for wait, ids in by_wait.items():
            Delivery.objects.filter(id__in=ids).update(lease_until=now + timedelta(seconds=wait))
        if outcome.throttled:
            Delivery.objects.filter(id__in=outcome.throttled, attempts__gt=0).update(attempts=F("attempts") - 1)
        if cancelled:
            updated = Delivery.objects.filter(id__in=[r.id for r in cancelled], status__lt=D.CANCELLED).update(
                status=D.CANCELLED, error_code="opted_out", lease_until=None, pending_fallback=False
            )
            increments[(cid, "", Metric.CANCELLED, "opted_out")] += updated
        if cid:
            counters_add(increments, now.replace(second=0, microsecond=0))


def _update_returning(set_sql: str, set_params: list, key: str, keys: list, where_sql: str) -> list[tuple]:
    """UPDATE deliveries matched by ``key`` (id or uuid) IN ``keys``; returns the rows that changed
    as (id, campaign id, channel, fallback reason)."""
    if not keys:
        return []
    matching, params = among(key, keys, "uuid[]" if key == "uuid" else "")
    sql = (
        f"UPDATE {Delivery._meta.db_table} SET {set_sql} WHERE {matching} AND {where_sql} "
        f"RETURNING id, campaign_id, channel, fallback_reason"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *params])
        return cursor.fetchall()


def mark_sent(key: str, keys: list, channel: str, now, increments: Counter) -> list[tuple]:
    """QUEUED → SENT on ``channel``, counted once whoever gets there first: the send's own record or
    a receipt that arrived before it (a worker died between the carrier's answer and the record)."""
    rows = _update_returning(
        "status = %s, sent_at = COALESCE(sent_at, %s), lease_until = NULL",
        [D.SENT, now],
        key,
        keys,
        f"status = {D.QUEUED} AND channel = '{channel}'",
    )
    fell_back = [row for row in rows if row[3] and row[2] == Channel.SMS]
    for _id, campaign_id, row_channel, _reason in rows:
        increments[(campaign_id, row_channel, Metric.SENT, "")] += 1
    for _id, campaign_id, _channel, reason in fell_back:
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK, reason)] += 1
    _announce_rows("sent", rows)
    _announce_rows("fell_back", fell_back)
    return rows


def mark_fallback_leg_sent(key: str, keys: list, now, increments: Counter) -> list[tuple]:
    """The SMS leg after a revoked RCS message went out: it moves from the RCS to the SMS tally."""
    rows = _update_returning(
        "pending_fallback = %s, lease_until = NULL, sent_at = %s",
        [False, now],
        key,
        keys,
        f"pending_fallback AND channel = '{Channel.SMS}'",
    )
    for _id, campaign_id, _channel, _reason in rows:
        increments[(campaign_id, Channel.RCS, Metric.SENT, "")] -= 1
        increments[(campaign_id, Channel.SMS, Metric.SENT, "")] += 1
        increments[(campaign_id, Channel.SMS, Metric.FELL_BACK, FallbackReason.TTL_EXPIRED)] += 1
    _announce_rows("fell_back", rows)
    return rows


def _announce_rows(change: str, rows: list[tuple]) -> None:
    if rows:
        delivery_status_changed.send(
            sender=dispatch_batch, change=change, deliveries=[(r[0], r[1], r[2]) for r in rows]
        )


def _announce(change: str, rows: list[Row], campaign_id, channel: str) -> None:
    if rows:
        delivery_status_changed.send(
            sender=dispatch_batch, change=change, deliveries=[(row.id, campaign_id, channel) for row in rows]
        )


# ---------------------------------------------------------------------------------------------
# The batch


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
    sender = _sender.open()
    if any(job.plan["fresh"] for job in jobs):
        _decide_fresh(sender, jobs)
    not_reachable = sender.run(
        _gather(_send_planned(sender.session, job.ctx, job.plan, job.outcome) for job in jobs)
    )
    bounced = [(job, rows) for job, rows in zip(jobs, not_reachable, strict=True) if rows]
    if bounced:
        _switch_to_sms([row for _job, rows in bounced for row in rows], FallbackReason.NOT_REACHABLE)
        sender.run(_gather(_send_sms(sender.session, job.ctx, rows, job.outcome) for job, rows in bounced))
    by_campaign = defaultdict(list)
    for job in jobs:
        by_campaign[job.ctx.campaign_id].append(job)
    for campaign_id, group in by_campaign.items():
        _record(campaign_id, _merged([job.outcome for job in group]), [row for job in group for row in job.cancelled])
    return [job.outcome for job in jobs]


async def _gather(coroutines):
    return await asyncio.gather(*coroutines)


def _merged(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    merged = Outcome()
    for outcome in outcomes:
        for name in ("rcs_sent", "sms_sent", "fallback_sms_sent", "failed"):
            getattr(merged, name).extend(getattr(outcome, name))
        merged.retry.update(outcome.retry)
        merged.throttled |= outcome.throttled
        merged.gateway_errors += outcome.gateway_errors
    return merged


async def _open(factory):
    return factory()


def _decide_fresh(sender: _Sender, jobs: list[_Job]) -> None:
    """Choose and write the channel of rows never tried before: one capability check per RCS gateway
    for all the jobs that use it, then one UPDATE per decision."""
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
            decided[(Channel.SMS, "")].extend(fresh)
            job.plan["sms"].extend(fresh)
        else:
            by_gateway[job.ctx.rcs_gateway.pk].append((job, fresh))
    groups = list(by_gateway.values())
    answers = sender.run(_gather(_capabilities_or_error(sender.session, group) for group in groups))
    for group, capable in zip(groups, answers, strict=True):
        for job, fresh in group:
            if isinstance(capable, Retryable):
                for row in fresh:
                    _note_retry(job.ctx.rcs_gateway, row, capable, job.outcome)
                continue
            rcs_rows = [r for r in fresh if capable.get(r.phone)]
            sms_rows = [r for r in fresh if not capable.get(r.phone)]
            decided[(Channel.RCS, "")].extend(rcs_rows)
            decided[(Channel.SMS, FallbackReason.NOT_CAPABLE)].extend(sms_rows)
            job.plan["rcs"].extend(rcs_rows)
            job.plan["sms"].extend(sms_rows)
    for (channel, reason), rows in decided.items():
        _write_channel(rows, channel, reason)


async def _capabilities_or_error(session, group: list[tuple[_Job, list[Row]]]):
    """One gateway's capability answers for every row of the group, or the Retryable it raised."""
    try:
        return await _check_capabilities(session, group[0][0].ctx, [row for _job, rows in group for row in rows])
    except Retryable as error:
        return error


def _write_channel(rows: list[Row], channel: str, reason: str) -> None:
    for row in rows:
        row.channel, row.fallback_reason = channel, reason
    if rows:
        matching, params = among("id", [r.id for r in rows])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Delivery._meta.db_table} SET channel = %s, fallback_reason = %s "
                f"WHERE {matching} AND status = {D.QUEUED} AND channel = ''",
                [channel, reason, *params],
            )


def dispatch_batch(campaign_id: int, batch_size: int = BATCH_SIZE) -> str:
    """Send one batch of a running campaign. Returns "more", "wait", "idle", "done" or "stopped"."""
    campaign = (
        Campaign.objects.select_related("official_account__rcs_gateway", "official_account__sms_gateway")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None or campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.COMPLETED):
        return "stopped"  # paused, cancelled — or deleted while its chain was queued
    Campaign.objects.filter(pk=campaign_id).update(last_dispatch_at=timezone.now())
    ctx = _context_for_campaign(campaign)
    with transaction.atomic():
        # A completed campaign has nothing queued left; what it can still have is the SMS leg of an
        # RCS message whose expiry was reported late. That leg is sent all the same.
        rows = _claim(_batch_size_for(ctx, batch_size), campaign_id=campaign_id)
    if rows:
        outcome = _process(ctx, rows)
        if campaign.status == CampaignStatus.RUNNING:
            _maybe_auto_pause(campaign, len(rows), outcome.gateway_errors)
        return "more"
    if campaign.status != CampaignStatus.RUNNING:
        return "stopped"
    if not campaign.audience_frozen_at:
        # Nothing claimable yet: help freeze the audience (this also resumes a launch whose task died).
        audience_freeze_chunk(campaign)
        return "more"
    unsent, awaiting_receipts = unfinished_work(campaign)
    if unsent:
        return "wait"  # leased by another chain, or backing off after a retryable error
    if awaiting_receipts:
        # Everything is out, but RCS messages may still expire into SMS: look again in a while.
        return "idle"
    try:
        campaign_transition(campaign, CampaignStatus.COMPLETED)
    except TransitionError:
        pass
    return "done"


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
    from django.utils.translation import gettext

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
    Returns "sent", "retry", "leased" (another task holds it) or "nothing"."""
    with transaction.atomic():
        own = _claim(1, delivery_id=delivery_id)
        if own:
            delivery = _singles_loaded([delivery_id])[delivery_id]
            ctx = _single_context(delivery)
            more = _single_batch_size(ctx) - 1
            others = (
                _claim(more, singles_beside=(delivery.official_account_id, delivery_id))
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


def _singles_loaded(ids: list[int]) -> dict[int, Delivery]:
    if not ids:
        return {}
    return Delivery.objects.select_related(
        "campaign", "official_account__rcs_gateway", "official_account__sms_gateway"
    ).in_bulk(ids)


def _single_context(delivery: Delivery) -> SendContext:
    ctx = _context_for_campaign(delivery.campaign) if delivery.campaign_id else _context_for_single(delivery)
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
    from messaging.tasks import send_message

    for delivery_id, wait in waits.items():
        send_message.apply_async((delivery_id,), countdown=max(1.0, wait), queue="priority")


# ---------------------------------------------------------------------------------------------
# 5. Sweepers


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


def dispatch_fallbacks(rows: list[tuple[int, int | None]]) -> None:
    """Enqueue, after commit, whatever sends the SMS legs just queued: the campaign's chain, or the
    priority lane for a message sent on its own."""
    from messaging.tasks import dispatch_campaign, send_message

    campaign_ids = {campaign_id for _id, campaign_id in rows if campaign_id}
    singles = [delivery_id for delivery_id, campaign_id in rows if not campaign_id]
    for campaign_id in campaign_ids:
        transaction.on_commit(lambda c=campaign_id: dispatch_campaign.delay(c))
    for delivery_id in singles:
        transaction.on_commit(lambda d=delivery_id: send_message.delay(d))


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
