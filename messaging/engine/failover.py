"""Gateway failover for SMS legs: which gateway account each SMS leg goes through, and the audit
of the switches.

An official account may name a backup SMS gateway. While its SMS gateway is down
(``core.gateway_health``: too many failed requests in a row), SMS legs go through the backup; once
per cool-off one batch probes the primary, and the first success brings it back.

At most once per delivery — the rule every SMS leg follows:
- Before an SMS leg is sent, the gateway it goes through is written on the delivery
  (``Delivery.sms_gateway``), in the claim's transaction's wake and before any request leaves, so a
  worker that dies mid-send leaves the row pinned to that gateway.
- A pinned row is only ever retried through the same gateway: the carrier deduplicates on the
  reference, but only within one gateway account. A timeout or a broken answer (``outcome_unknown``)
  may mean the primary accepted it, so the row stays pinned, even while the primary is down.
- Only a leg the gateway definitely did not accept — connection refused or timed out while
  connecting, a 5xx or 429 answer (CM answers those for the whole request, accepting nothing) — is
  unpinned when its result is recorded, and may then go through the backup.
- Provider-side fallback legs (allowedChannels RCS+SMS) are RCS messages at the primary and never
  switch.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

from accounts.models import GatewayAccount, OfficialAccount
from audit.services import audit_record
from core import gateway_health
from core.sql import among
from messaging.engine.context import Row, SendContext
from messaging.models import Delivery

SYSTEM_ACTOR = "system"
PROBE_SIZE = 10  # SMS legs that try a down primary again, once per cool-off: one small request


def sms_gateways_choose(legs: list[tuple[SendContext, list[Row]]]) -> None:
    """Pin each SMS leg not pinned yet to the gateway it goes through now — the primary, or the
    backup while the primary is down — and write it before anything is sent. One health lookup per
    primary gateway; when it answers "probe", up to PROBE_SIZE legs on their first attempt try the
    primary and the rest still go through the backup, so a probe in vain delays only those few, and
    never the same leg twice (a leg already tried is not a probe again)."""
    routes: dict[int, str] = {}
    probes: dict[int, int] = {}  # primary gateway id → probe legs still to take
    chosen: dict[int, list[Row]] = {}
    for ctx, rows in legs:
        primary, backup = ctx.sms_gateway, ctx.backup_sms_gateway
        if primary is None:
            continue
        fresh = [row for row in rows if row.sms_gateway_id is None]
        if not fresh:
            continue
        if backup is None:
            chosen.setdefault(primary.pk, []).extend(fresh)
            continue
        if primary.pk not in routes:
            routes[primary.pk] = gateway_health.route(primary.pk)
            probes[primary.pk] = PROBE_SIZE if routes[primary.pk] == gateway_health.PROBE else 0
        if routes[primary.pk] == gateway_health.PRIMARY:
            chosen.setdefault(primary.pk, []).extend(fresh)
            continue
        for row in fresh:
            if probes[primary.pk] > 0 and row.attempts <= 1:
                probes[primary.pk] -= 1
                chosen.setdefault(primary.pk, []).append(row)
            else:
                chosen.setdefault(backup.pk, []).append(row)
    for gateway_id, rows in chosen.items():
        for row in rows:
            row.sms_gateway_id = gateway_id
        matching, params = among("id", [row.id for row in rows])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Delivery._meta.db_table} SET sms_gateway_id = %s WHERE {matching} AND sms_gateway_id IS NULL",
                [gateway_id, *params],
            )


def sms_gateways_unpin(ids) -> None:
    """Legs the gateway definitely did not accept may go through another one next time."""
    if ids:
        Delivery.objects.filter(id__in=list(ids)).update(sms_gateway=None)


def gateway_switches_audit(switches: list[tuple[int, str]]) -> None:
    """Record each switch (a gateway down, or recovered) in the audit log, by the system."""
    if not switches:
        return
    gateways = GatewayAccount.objects.in_bulk([gateway_id for gateway_id, _change in switches])
    for gateway_id, change in switches:
        gateway = gateways.get(gateway_id)
        if gateway is None:
            continue
        audit_record(
            f"gateway.{change}",
            organization=gateway.organization_id,
            actor_label=SYSTEM_ACTOR,
            target=gateway,
            details={"change": change},
        )


def sms_failover_state(account: OfficialAccount | None) -> dict | None:
    """What the official account page and the campaign monitor show while the account's SMS goes
    through its backup: ``{"since": datetime, "backup": GatewayAccount}``; None otherwise."""
    if account is None or not account.sms_gateway_id or not account.backup_sms_gateway_id:
        return None
    since = gateway_health.down_since(account.sms_gateway_id)
    if since is None:
        return None
    return {"since": datetime.fromtimestamp(since, tz=UTC), "backup": account.backup_sms_gateway}
