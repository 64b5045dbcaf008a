"""Outbound webhooks: tell an organization's own systems what happened, signed, retried and logged.

Events: message.sent / delivered / read / failed / fell_back (only for messages sent on their own —
``Delivery.campaign`` is NULL — so a million-recipient campaign never produces a million webhooks),
inbound.received and contact.opted_out.

- **Recording**: the receivers of ``messaging.signals`` run inside the transaction that made the
  change; they write one ``WebhookDelivery`` per subscribed endpoint and enqueue its first attempt on
  commit. For a batch of campaign deliveries they return before touching the database.
- **Signing**: ``X-PlusMessage-Signature: t=<unix time>,v1=<hex>`` where ``hex`` is
  HMAC-SHA256(secret, "<t>." + raw body). While a rotated secret is still accepted, a second ``v1=``
  signed with the previous secret follows, so a receiver holding either secret verifies.
- **Retries**: exponential back-off with jitter (10 s doubling up to 1 h, each wait drawn from its
  upper half), until an answer 2xx or ``WEBHOOK_RETRY_WINDOW_SECONDS`` (25 h) after the event.
  Every attempt is logged (``WebhookAttempt``) with the status and the start of the response.
- **Egress**: every attempt goes through the egress guard (``core.egress.fetch``): http(s) only, no
  internal address, no redirect followed (a 3xx is a failed attempt like any other non-2xx answer),
  connect and total timeouts, and only the first ``RESPONSE_KEPT`` bytes of the answer read. A URL
  the guard refuses and an address it cannot reach fail the attempt with one short message each,
  without status, excerpt or timing, so the log cannot be used to scan a network. The console
  checks the URL when the endpoint is saved (``accounts.forms.WebhookEndpointForm``) and
  ``endpoint_create`` refuses a refused address again.
- **Disabling**: an endpoint failing without a single success for ``WEBHOOK_DISABLE_AFTER_SECONDS``
  (3 days) and at least ``WEBHOOK_DISABLE_MIN_FAILURES`` attempts is disabled; its organization's
  owners and admins get an e-mail and the console shows the notice until someone re-enables it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.db.models.signals import post_save
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import (
    GatewayAccount,
    Membership,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from audit.models import AuditEvent
from audit.services import audit_record
from core.egress import EgressError, EgressProblem, check_url, fetch
from messaging import tasks
from messaging.models import Delivery, DeliveryStatus
from messaging.signals import delivery_status_changed, inbound_received

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-PlusMessage-Signature"
EVENT_HEADER = "X-PlusMessage-Event"
DELIVERY_HEADER = "X-PlusMessage-Delivery"
RESPONSE_KEPT = 512  # bytes of an answer kept for the delivery log (an excerpt, escaped when shown)
CLAIM_SECONDS = 60

EVENT_FOR_CHANGE = {
    "sent": WebhookEvent.MESSAGE_SENT,
    "delivered": WebhookEvent.MESSAGE_DELIVERED,
    "read": WebhookEvent.MESSAGE_READ,
    "failed": WebhookEvent.MESSAGE_FAILED,
    "fell_back": WebhookEvent.MESSAGE_FELL_BACK,
}

# The public name of each delivery status ("queued", "sent", …): in webhook payloads and in the API's
# messages (api.messages), which must spell them alike.
DELIVERY_STATUS_NAMES = {value: DeliveryStatus(value).name.lower() for value in DeliveryStatus.values}


def _setting(name: str, default):
    return getattr(settings, name, default)


def retry_window() -> timedelta:
    return timedelta(seconds=_setting("WEBHOOK_RETRY_WINDOW_SECONDS", 25 * 3600))


def backoff_seconds(attempts: int) -> float:
    """The wait after the ``attempts``-th failure: doubling from 10 s up to 1 h, in its upper half."""
    base = _setting("WEBHOOK_BACKOFF_BASE_SECONDS", 10.0)
    cap = _setting("WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0)
    ceiling = min(base * (2 ** max(attempts - 1, 0)), cap)
    return random.uniform(ceiling / 2, ceiling)


# --- signing ------------------------------------------------------------------------------------


def signature_header(secrets: list[str], body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}" for secret in secrets]
    return ",".join(parts)


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (the README shows the same few lines): constant-time, with a time window."""
    try:
        fields = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(next(value for key, value in fields if key == "t"))
        candidates = [value for key, value in fields if key == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def encode_body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# --- endpoints ----------------------------------------------------------------------------------


def _endpoint_audit(action: str, endpoint: WebhookEndpoint, actor, request, **details) -> None:
    """Every change of an endpoint (where the organization's data goes, and how it is signed) is audited;
    a change made by the system (disabled after failing) has no actor."""
    audit_record(action, request=request, organization=endpoint.organization_id, actor=actor,
                 actor_label="" if actor is not None else "system", target=endpoint, target_label=endpoint.url,
                 details=details)


def endpoint_create(organization, url: str, events: list[str], description: str = "", user=None,
                    request=None) -> WebhookEndpoint:
    """A new endpoint. Raises EgressRefused for a URL the egress guard refuses; a host that does not
    resolve now is the form's to refuse (its deliveries would fail, retried, until it does)."""
    try:
        check_url(url)
    except EgressError:
        pass
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=url, events=sorted(set(events)), description=description,
        secret=WebhookEndpoint.new_secret(), created_by=user,
    )
    _endpoint_audit("webhook.created", endpoint, user, request, url=url, events=endpoint.events)
    return endpoint


def endpoint_rotate_secret(endpoint: WebhookEndpoint, grace: timedelta | None = None, *, actor=None,
                           request=None) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for ``grace`` (24 h by default)."""
    grace = grace if grace is not None else timedelta(seconds=_setting("WEBHOOK_ROTATION_GRACE_SECONDS", 24 * 3600))
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + grace
    endpoint.secret = WebhookEndpoint.new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    _endpoint_audit("webhook.secret_rotated", endpoint, actor, request,
                    previous_valid_until=endpoint.previous_secret_expires_at.isoformat())
    return endpoint


def endpoint_enable(endpoint: WebhookEndpoint, *, actor=None, request=None) -> WebhookEndpoint:
    endpoint.is_active = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.consecutive_failures = 0
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "failing_since", "consecutive_failures"])
    _endpoint_audit("webhook.enabled", endpoint, actor, request)
    return endpoint


def endpoint_pause(endpoint: WebhookEndpoint, *, actor=None, request=None) -> None:
    """A member stops deliveries to the endpoint until it is enabled again."""
    if WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(is_active=False):
        endpoint.is_active = False
        _endpoint_audit("webhook.paused", endpoint, actor, request)


def endpoint_delete(endpoint: WebhookEndpoint, *, actor=None, request=None) -> None:
    _endpoint_audit("webhook.deleted", endpoint, actor, request, url=endpoint.url, events=endpoint.events)
    endpoint.delete()


def endpoint_disable(endpoint: WebhookEndpoint, reason: str) -> None:
    now = timezone.now()
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    )
    if not updated:
        return
    _endpoint_audit("webhook.disabled", endpoint, None, None, reason=reason[:300])
    logger.warning("webhook endpoint %s of organization %s disabled: %s", endpoint.pk, endpoint.organization_id, reason)
    _tell_organization(endpoint, reason)


def _tell_organization(endpoint: WebhookEndpoint, reason: str) -> None:
    recipients = list(
        Membership.objects.filter(organization_id=endpoint.organization_id, role__in=[Role.OWNER, Role.ADMIN])
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not recipients:
        return
    subject = _("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url}
    message = _(
        "We stopped sending events to %(url)s because it kept failing: %(reason)s\n"
        "Fix the endpoint, then enable it again on the Webhooks page of the console."
    ) % {"url": endpoint.url, "reason": reason}
    try:
        send_mail(subject, message, None, recipients, fail_silently=True)
    except Exception:  # noqa: BLE001 - telling people must never break the worker
        logger.exception("could not e-mail about disabled webhook endpoint %s", endpoint.pk)


def disabled_endpoints(organization):
    return WebhookEndpoint.objects.filter(organization=organization, disabled_at__isnull=False)


# --- recording events ---------------------------------------------------------------------------


def events_record(organization_id: int, event_type: str, items: list[dict]) -> int:
    """One WebhookDelivery per (item, subscribed active endpoint); first attempts enqueued on commit."""
    endpoints = [
        endpoint for endpoint in WebhookEndpoint.objects.filter(organization_id=organization_id, is_active=True)
        if event_type in (endpoint.events or [])
    ]
    if not endpoints or not items:
        return 0
    now = timezone.now()
    rows = []
    for item in items:
        for endpoint in endpoints:
            row = WebhookDelivery(endpoint=endpoint, event_type=event_type, created_at=now, next_attempt_at=now)
            row.payload = {"id": str(row.event_id), "type": event_type, "created_at": now.isoformat(), "data": item}
            rows.append(row)
    WebhookDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in rows if row.pk]
    if not ids:  # backends that do not return ids from a bulk insert
        ids = list(
            WebhookDelivery.objects.filter(event_id__in=[row.event_id for row in rows]).values_list("pk", flat=True)
        )
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def _enqueue(ids: list[int]) -> None:
    for delivery_id in ids:
        tasks.deliver_webhook.delay(delivery_id)


def message_payload(row: dict) -> dict:
    return {
        "message": {
            "id": str(row["uuid"]),
            "to": row["contact__phone"],
            "official_account": row["official_account_id"],
            "client_reference": row["client_reference"],
            "status": DELIVERY_STATUS_NAMES.get(row["status"], str(row["status"])),
            "channel": row["channel"] or None,
            "fallback_reason": row["fallback_reason"] or None,
            "error": {"code": row["error_code"], "reason": row["error_reason"]} if row["error_code"] else None,
        }
    }


def on_delivery_status_changed(sender, change, deliveries, **kwargs):
    """message.* events for messages sent on their own; campaign batches cost nothing here."""
    event = EVENT_FOR_CHANGE.get(change)
    if event is None:
        return
    ids = [delivery_id for delivery_id, campaign_id, _channel in deliveries if campaign_id is None]
    if not ids:
        return
    rows = list(
        Delivery.objects.filter(id__in=ids, campaign__isnull=True).values(
            "id", "uuid", "organization_id", "official_account_id", "client_reference", "status", "channel",
            "fallback_reason", "error_code", "error_reason", "contact__phone",
        )
    )
    by_org: dict[int, list[dict]] = {}
    for row in rows:
        by_org.setdefault(row["organization_id"], []).append(message_payload(row))
    for organization_id, items in by_org.items():
        events_record(organization_id, event, items)


def on_inbound_received(sender, events, **kwargs):
    gateway_ids = {event.gateway_id for event in events if event.gateway_id}
    if not gateway_ids:
        return
    orgs = dict(GatewayAccount.objects.filter(pk__in=gateway_ids).values_list("pk", "organization_id"))
    by_org: dict[int, list[dict]] = {}
    for event in events:
        organization_id = orgs.get(event.gateway_id)
        if organization_id is None:
            continue
        item = {
            "from": event.phone,
            "kind": event.kind.removeprefix("inbound_"),
            "channel": event.channel,
            "text": event.text,
            "postback": event.postback or None,
            "location": {"latitude": event.latitude, "longitude": event.longitude}
            if event.latitude is not None else None,
            "file": {"url": event.file_url, "mime_type": event.file_mime} if event.file_url else None,
            "received_at": event.occurred_at.isoformat() if event.occurred_at else timezone.now().isoformat(),
            "provider_event_id": event.event_id,
        }
        by_org.setdefault(organization_id, []).append({"inbound": item})
    for organization_id, items in by_org.items():
        events_record(organization_id, WebhookEvent.INBOUND_RECEIVED, items)


def contacts_opted_out(organization_id: int, contacts: list[dict]) -> int:
    """contact.opted_out for contacts given as {id, phone, opted_out_at, opt_out_method}."""
    items = [
        {
            "contact": {
                "id": contact["id"],
                "phone": contact["phone"],
                "opted_out_at": contact["opted_out_at"].isoformat() if contact.get("opted_out_at") else None,
                "method": contact.get("opt_out_method") or "",
            }
        }
        for contact in contacts
    ]
    return events_record(organization_id, WebhookEvent.CONTACT_OPTED_OUT, items)


def _audit_post_save(sender, instance, created, **kwargs):
    """Every opt-out (reply keyword, postback, link, console, API, erasure) is written to the audit log
    by ``campaigns.optout.contact_opt_out``, once: that row is our cue for contact.opted_out."""
    if not created or instance.action != "contact.opted_out" or not instance.organization_id:
        return
    try:
        contact_id = int(instance.target_id)
    except (TypeError, ValueError):
        return
    contacts_opted_out(
        instance.organization_id,
        [{"id": contact_id, "phone": instance.target_label, "opted_out_at": instance.occurred_at,
          "opt_out_method": (instance.details or {}).get("method", "")}],
    )


def connect_receivers() -> None:
    """Called by MessagingConfig.ready (and by tests that disconnected them)."""
    delivery_status_changed.connect(on_delivery_status_changed, dispatch_uid="outbound_webhooks.status")
    inbound_received.connect(on_inbound_received, dispatch_uid="outbound_webhooks.inbound")
    post_save.connect(_audit_post_save, sender=AuditEvent, dispatch_uid="outbound_webhooks.opted_out")


# --- sending ------------------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int | None, str, str]:
    """(status, start of the response body, error) of one POST through the egress guard.

    The error is the guard's message untranslated (the console translates it when showing it):
    "The address is not allowed." or "Could not connect to the address.", nothing more.
    """
    try:
        response = fetch("POST", url, headers=headers, body=body, timeout=timeout, max_bytes=RESPONSE_KEPT)
    except EgressProblem as error:
        with translation.override(None):
            return None, "", str(error)
    return response.status, response.body.decode("utf-8", "replace"), ""


def webhook_attempt(delivery_id: int) -> str:
    """Make one attempt if it is due and ours: "succeeded", "retry", "failed" or "skipped"."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=delivery_id, status=WebhookDeliveryStatus.PENDING,
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDeliveryStatus.FAILED, finished_at=now, next_attempt_at=None
        )
        return "failed"
    body = encode_body(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PlusMessageConsole-Webhooks/1",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.event_id),
        SIGNATURE_HEADER: signature_header(endpoint.signing_secrets(now), body),
    }
    started = time.monotonic()
    status_code, text, error = _post(endpoint.url, body, headers, _setting("WEBHOOK_TIMEOUT_SECONDS", 10.0))
    # No timing for an attempt that got no answer: how long a refused or silent port takes is a scan.
    duration = int((time.monotonic() - started) * 1000) if status_code is not None else 0
    now = timezone.now()
    ok = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, attempted_at=now, status_code=status_code, response_body=text, error=error,
            duration_ms=duration,
        )
        attempts = delivery.attempts + 1
        if ok:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDeliveryStatus.SUCCEEDED, attempts=attempts, last_status_code=status_code,
                finished_at=now, next_attempt_at=None,
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None, consecutive_failures=0)
            return "succeeded"
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        if now - delivery.created_at >= retry_window():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDeliveryStatus.FAILED, attempts=attempts, last_status_code=status_code,
                finished_at=now, next_attempt_at=None,
            )
            result = "failed"
            wait = None
        else:
            wait = backoff_seconds(attempts)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                attempts=attempts, last_status_code=status_code, next_attempt_at=now + timedelta(seconds=wait)
            )
            result = "retry"
    endpoint.refresh_from_db(fields=["failing_since", "consecutive_failures", "is_active"])
    if (
        endpoint.is_active
        and endpoint.failing_since
        and now - endpoint.failing_since >= timedelta(seconds=_setting("WEBHOOK_DISABLE_AFTER_SECONDS", 3 * 86400))
        and endpoint.consecutive_failures >= _setting("WEBHOOK_DISABLE_MIN_FAILURES", 20)
    ):
        endpoint_disable(
            endpoint,
            _("%(count)d failed attempts in a row since %(since)s.")
            % {
                "count": endpoint.consecutive_failures,
                "since": timezone.localtime(endpoint.failing_since).strftime("%Y-%m-%d %H:%M"),
            },
        )
    if wait is not None:
        tasks.deliver_webhook.apply_async((delivery.pk,), countdown=wait)
    return result


def due_delivery_ids(limit: int = 1000) -> list[int]:
    """Pending deliveries whose attempt is overdue (a lost task, a restarted broker): the sweeper's work."""
    overdue = timezone.now() - timedelta(seconds=CLAIM_SECONDS)
    return list(
        WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=overdue)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def delivery_resend(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a logged event again (from the console), as a new pending delivery of the same event."""
    copy = WebhookDelivery.objects.create(
        endpoint=delivery.endpoint, event_id=delivery.event_id, event_type=delivery.event_type,
        payload=delivery.payload, next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _enqueue([copy.pk]))
    return copy
