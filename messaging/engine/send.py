"""Stage 3, sending: the legs of a batch go out concurrently (aiohttp, on uvloop when installed),
each at its slot from the account's token bucket in Redis, and come back as an ``Outcome``.

The delivery's UUID is the RBM messageId and the CM reference (+"-sms" for the SMS leg) on every
attempt, so a retry after a crash or a timeout is deduplicated by the carrier. Nothing here writes
to the database: each worker process keeps one event loop and HTTP session (``process_sender``), and
the dispatch stage writes between its ``run`` calls."""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from dataclasses import dataclass, field

import aiohttp
import uvloop
from django.conf import settings

from accounts.models import GatewayAccount
from core import gateway_health, throttle
from core.sms_text import measure_sms
from messaging import gateway_metrics
from messaging.engine.context import Row, SendContext, content_for, sms_text_for
from messaging.gateways import GatewayError, NotReachable, OutboundMessage, Permanent, Retryable, gateway_for
from messaging.gateways.base import sms_leg_id

MAX_IN_FLIGHT = 64
KEEPALIVE_SECONDS = 4.0


@dataclass
class Outcome:
    """What the sends of a batch came to, for the record stage."""

    rcs_sent: list[Row] = field(default_factory=list)
    sms_sent: list[Row] = field(default_factory=list)
    fallback_sms_sent: list[Row] = field(default_factory=list)  # SMS legs after a revoked RCS
    retry: dict[int, float] = field(default_factory=dict)  # delivery id → seconds to wait
    throttled: set[int] = field(default_factory=set)  # retried at the carrier's request: not an attempt
    failed: list[tuple[Row, str, str]] = field(default_factory=list)
    gateway_errors: int = 0
    sms_unpinned: set[int] = field(default_factory=set)  # SMS legs the gateway definitely refused
    gateway_switches: list[tuple[int, str]] = field(default_factory=list)  # (gateway id, "down"/"recovered")


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
            gateway_metrics.throttle_wait_observed(gateway.kind, delay)
            await asyncio.sleep(delay)
        if not strict or time.time() - slot <= tolerance:
            return
        slot = throttle.reserve(gateway.pk, gateway.rate_per_second, 1, lane)[0]


async def _check_capabilities(session, ctx: SendContext, rows: list[Row]) -> dict[str, tuple[bool, str]]:
    """Each number's answer: (RCS-capable, its carrier as the gateway reported it, or "")."""
    gateway_id = ctx.rcs_gateway.pk
    phones = sorted({row.phone for row in rows})
    known = throttle.cached_capability_answers(gateway_id, phones)
    unknown = [phone for phone in phones if phone not in known]
    if unknown:
        adapter = gateway_for(ctx.rcs_gateway)
        capable = await adapter.capability_answers(session, unknown)
        answers = {phone: (phone in capable, capable.get(phone, "")) for phone in unknown}
        throttle.cache_capabilities(gateway_id, answers)
        known.update(answers)
    return known


async def capabilities_or_error(
    session, ctx: SendContext, rows: list[Row]
) -> dict[str, tuple[bool, str]] | Retryable:
    """The RCS gateway's capability answers for the rows' numbers, or the Retryable it raised."""
    try:
        return await _check_capabilities(session, ctx, rows)
    except Retryable as error:
        return error


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
                content=content_for(ctx, row),
                traffic_type=ctx.traffic_type,
                ttl_seconds=ctx.ttl_seconds,
            )
            try:
                await adapter.send(session, message)
                outcome.rcs_sent.append(row)
            except NotReachable:
                not_reachable.append(row)
            except Retryable as error:
                note_retry(ctx.rcs_gateway, row, error, outcome)
            except Permanent as error:
                outcome.gateway_errors += 1
                outcome.failed.append((row, error.code or "permanent", error.reason[:500]))

    await asyncio.gather(*(one(row, slot) for row, slot in zip(rows, slots, strict=True)))
    return not_reachable


def note_retry(gateway: GatewayAccount, row: Row, error: GatewayError, outcome: Outcome, *, count_error=True):
    """Back off exponentially in the number of failed attempts. A 429 is the carrier pacing the
    account, not a failure of this message: it waits the Retry-After and does not count, or a storm
    of 429s would make the next 5xx's wait a minute. Nor does an error the failover takes care of
    (``count_error``): it must not auto-pause the campaign before the backup takes over."""
    if error.retry_after:  # the carrier asked the whole account to slow down
        throttle.pause(gateway.pk, error.retry_after)
        outcome.throttled.add(row.id)
    elif count_error:
        outcome.gateway_errors += 1
    outcome.retry[row.id] = error.retry_after or min(60.0, 2.0 ** min(row.attempts, 6))


async def send_sms(
    session, ctx: SendContext, rows: list[Row], outcome: Outcome, *, fallback_leg=False, provider_path=False
):
    """Send SMS through the CM-format gateways, up to 100 per request (fewer after a 429).

    Each SMS leg goes through the gateway it is pinned to (``Row.sms_gateway_id``, written by
    ``messaging.engine.failover`` before the send): the official account's SMS gateway or its
    backup. ``provider_path``: the account lets the provider fall back (allowedChannels RCS+SMS):
    the message goes once, under the delivery's own id, with both the rich content and the SMS
    text, always through the SMS gateway.
    """
    if ctx.sms_gateway is None:
        for row in rows:
            outcome.failed.append((row, "no_sms_gateway", "The official account has no SMS gateway."))
        return
    gateways = {g.pk: g for g in (ctx.sms_gateway, ctx.backup_sms_gateway) if g is not None}
    by_gateway: dict[int, list[Row]] = {}
    for row in rows:
        gateway_id = ctx.sms_gateway.pk if provider_path or row.sms_gateway_id is None else row.sms_gateway_id
        if gateway_id not in gateways:
            # Pinned to a gateway the account no longer uses: another one could deliver it twice.
            outcome.failed.append((row, "sms_gateway_changed", "The SMS gateway this message went to is no longer the official account's."))
            continue
        by_gateway.setdefault(gateway_id, []).append(row)
    await asyncio.gather(
        *(
            _send_sms_through(session, ctx, gateways[gateway_id], legs, outcome, fallback_leg, provider_path)
            for gateway_id, legs in by_gateway.items()
        )
    )


# A request that failed this way was not accepted, and says the gateway is in trouble.
_GATEWAY_FAILURE_CODES = {"connect_error", "connect_timeout", "timeout", "transport"}


def _gateway_failed(error: GatewayError) -> bool:
    return isinstance(error, Retryable) and (error.code in _GATEWAY_FAILURE_CODES or error.code.startswith("5"))


async def _send_sms_through(session, ctx, gateway: GatewayAccount, rows, outcome: Outcome, fallback_leg, provider_path):
    adapter = gateway_for(gateway)
    channels = ("RCS", "SMS") if provider_path else ("SMS",)
    messages = []
    for row in rows:
        text = sms_text_for(ctx, row)
        row.sms_segments = measure_sms(text).segments  # what the SMS leg costs (messaging.costs)
        messages.append(
            OutboundMessage(
                message_id=row.uuid if provider_path else sms_leg_id(row.uuid),
                phone=row.phone,
                content=content_for(ctx, row) if provider_path else None,
                sms_text=text,
                sms_sender=ctx.sms_sender,
                traffic_type=ctx.traffic_type,
                ttl_seconds=ctx.ttl_seconds,
                allowed_channels=channels,
            )
        )
    largest = max(1, min(adapter.max_send_batch, 100))
    size = gateway_health.batch_size(gateway.pk, largest)
    chunks = [list(range(i, min(i + size, len(rows)))) for i in range(0, len(rows), size)]
    slots = throttle.reserve(gateway.pk, gateway.rate_per_second, len(rows), ctx.lane)
    limiter = asyncio.Semaphore(max(1, MAX_IN_FLIGHT // size))
    # Errors on a primary that has a backup are the failover's business, not the auto-pause's.
    has_backup = ctx.backup_sms_gateway is not None and gateway.pk == ctx.sms_gateway.pk and not provider_path

    async def one(indexes: list[int]):
        async with limiter:
            await _at_slot(slots[indexes[-1]], gateway, ctx.lane)
            try:
                results = await adapter.send_batch(session, [messages[i] for i in indexes])
            except GatewayError as error:
                results = [error] * len(indexes)
            _note_health(gateway, size < largest, largest, results, outcome)
            for i, result in zip(indexes, results, strict=True):
                row = rows[i]
                if isinstance(result, Retryable):
                    if not result.outcome_unknown and not provider_path:
                        outcome.sms_unpinned.add(row.id)
                    # A refusal the backup takes over is not an error of the campaign; a timeout,
                    # whose leg must wait for this gateway, still is.
                    taken_over = has_backup and _gateway_failed(result) and not result.outcome_unknown
                    note_retry(gateway, row, result, outcome, count_error=not taken_over)
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


def _note_health(gateway: GatewayAccount, shrunk: bool, largest: int, results: list, outcome: Outcome) -> None:
    """One request's answer, for the gateway's health (failover) and its batch size (429s)."""
    if any(not isinstance(result, GatewayError) for result in results):
        if gateway_health.record_success(gateway.pk) == gateway_health.RECOVERED:
            outcome.gateway_switches.append((gateway.pk, gateway_health.RECOVERED))
        if shrunk:
            gateway_health.batch_resize(gateway.pk, largest, shrink=False)
    elif any(isinstance(result, Retryable) and result.code == "429" for result in results):
        gateway_health.batch_resize(gateway.pk, largest, shrink=True)
    elif results and all(isinstance(result, GatewayError) and _gateway_failed(result) for result in results):
        if gateway_health.record_failure(gateway.pk) == gateway_health.DOWN:
            outcome.gateway_switches.append((gateway.pk, gateway_health.DOWN))


def _new_session():
    timeout = aiohttp.ClientTimeout(total=settings.GATEWAY_TIMEOUT_SECONDS)
    # Idle connections are dropped before a server's usual keep-alive limit (5 s for uvicorn) would
    # close them under a request.
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop()


class Sender:
    """This process's event loop and HTTP session, kept from one batch to the next so that the
    connections to the gateways stay open (opening them per batch cost the worker and the carrier a
    TCP handshake for every few messages). Made anew in a forked child; when a step fails midway,
    whatever it left running is cancelled, so that nothing of it runs on into the next step.

    Database writes happen between ``run`` calls, never inside them."""

    def __init__(self):
        self.pid = None
        self.loop = None
        self.session = None

    def open(self) -> Sender:
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
        finally:
            gateway_metrics.flush()  # a step's requests are visible to the next scrape

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


process_sender = Sender()
atexit.register(process_sender.close)


async def _after_pending_io(coroutine):
    """Let the loop first take in what happened while it was stopped (a server closing a kept-alive
    connection), so that no request is written into a connection already closed."""
    await asyncio.sleep(0)
    return await coroutine


async def _open(factory):
    return factory()


async def gather(coroutines):
    return await asyncio.gather(*coroutines)


async def send_planned(session, ctx: SendContext, plan: dict[str, list[Row]], outcome: Outcome) -> list[Row]:
    """Send every planned leg concurrently; returns the RCS rows that turned out not reachable."""
    tasks = []
    if plan["rcs"]:
        tasks.append(_send_rcs(session, ctx, plan["rcs"], outcome))
    if plan["sms"]:
        tasks.append(send_sms(session, ctx, plan["sms"], outcome))
    if plan["provider"]:
        tasks.append(send_sms(session, ctx, plan["provider"], outcome, provider_path=True))
    if plan["fallback"]:
        tasks.append(send_sms(session, ctx, plan["fallback"], outcome, fallback_leg=True))
    results = await asyncio.gather(*tasks)
    return [row for result in results if isinstance(result, list) for row in result]
