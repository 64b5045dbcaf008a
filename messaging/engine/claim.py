"""Stage 2, claiming: lease a batch of queued deliveries (and SMS legs waiting after a revoke) with
one conditional UPDATE — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL — so that a row is only ever sent
by the batch that really holds it; a lease that runs out makes the row claimable again."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Classification
from core.sql import among
from messaging.engine.context import Row
from messaging.models import Delivery, DeliveryStatus

D = DeliveryStatus


def deliveries_claim(
    limit: int,
    *,
    campaign_id: int | None = None,
    delivery_id: int | None = None,
    singles_beside: tuple[int, int] | None = None,
    transactional_only: bool = False,
) -> list[Row]:
    """Lease up to ``limit`` queued rows of a campaign (or the one delivery, or an official account's
    single messages but the given one: ``(account id, delivery id)``, without promotions when
    ``transactional_only`` — inside quiet hours), and as many SMS legs waiting after a revoke;
    returns them with their contact."""
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
        if transactional_only:
            scope += " AND classification <> %s"
            scope_params.append(Classification.PROMOTION)
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
        f"RETURNING id, uuid, contact_id, channel, pending_fallback, fallback_reason, attempts, sms_gateway_id"
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
    for delivery_id, uuid, contact_id, channel, pending_fallback, fallback_reason, attempts, sms_gateway_id in claimed:
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
                sms_gateway_id=sms_gateway_id,
            )
        )
    rows.sort(key=lambda r: r.id)
    return rows
