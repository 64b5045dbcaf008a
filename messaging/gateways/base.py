"""The gateway interface every adapter implements, and the types it speaks in.

Adapters are asynchronous (aiohttp): the fan-out engine sends many messages concurrently from one
Celery task through one shared ``aiohttp.ClientSession``. Each adapter lives in its own module and
imports only this one; ``messaging.gateways`` maps each kind to its adapter class. The wire-format
helpers that more than one adapter needs (times, Retry-After, validation messages) live here too.

Errors come in three kinds, and the engine acts on the kind only:
- ``NotReachable``: the person cannot get this channel; fall back to SMS.
- ``Retryable``: try again later (429 with Retry-After, 5xx, timeouts); ``retry_after`` in seconds.
  ``outcome_unknown`` is set when the request may have reached the carrier (a timeout after
  sending): the engine then re-sends with the same id, which the carrier deduplicates.
- ``Permanent``: the request itself is wrong (validation); retrying cannot help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

LOCAL_TZ = ZoneInfo("Asia/Tokyo")  # naive calendar times in a document are Japan time
_FRACTION = re.compile(r"(\.\d{6})\d+")


class GatewayError(Exception):
    kind = "error"

    def __init__(self, reason: str = "", *, code: str = "", retry_after: float | None = None, outcome_unknown=False):
        super().__init__(reason or code or self.kind)
        self.reason = reason
        self.code = code
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class NotReachable(GatewayError):
    kind = "not_reachable"


class Retryable(GatewayError):
    kind = "retryable"


class Permanent(GatewayError):
    kind = "permanent"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one person. ``message_id`` is our idempotency key (RBM messageId, CM reference)."""

    message_id: str
    phone: str  # E.164
    content: dict | None = None  # the rich-content document (RCS)
    sms_text: str = ""  # the SMS text (SMS leg, or CM provider-side fallback)
    sms_sender: str = ""
    traffic_type: str = "TRANSACTION"  # RBM messageTrafficType: PROMOTION or TRANSACTION
    ttl_seconds: int | None = None
    allowed_channels: tuple[str, ...] = ("SMS",)  # CM only: ("SMS",) or ("RCS", "SMS")


@dataclass(frozen=True)
class SendResult:
    message_id: str
    provider_id: str = ""


@dataclass
class NormalizedEvent:
    """One status callback or inbound message, whatever the wire format.

    kind is one of: delivered, read, failed, ttl_revoked, ttl_revoke_failed, is_typing,
    inbound_text, inbound_postback, inbound_location, inbound_file.
    """

    provider: str  # "rbm" or "cm"
    event_id: str  # unique per provider: the store's deduplication key
    kind: str
    channel: str  # "rcs" or "sms"
    message_id: str = ""  # our id for status events (with the "-sms" suffix for SMS legs)
    phone: str = ""  # E.164
    occurred_at: datetime | None = None
    text: str = ""
    postback: str = ""
    latitude: float | None = None
    longitude: float | None = None
    file_url: str = ""
    file_mime: str = ""
    error_code: str = ""
    error_reason: str = ""
    carrier: str = ""  # the network the report names (``core.carriers``), "" when it does not
    raw: dict[str, Any] = field(default_factory=dict)
    gateway_id: int | None = None  # the GatewayAccount the callback arrived for (set on receipt)


SMS_LEG_SUFFIX = "-sms"


def sms_leg_id(message_id: str) -> str:
    return f"{message_id}{SMS_LEG_SUFFIX}"


class Gateway:
    """Base class. Subclasses set ``kind`` and implement what their wire format supports."""

    kind = ""
    max_capability_batch = 10_000
    max_send_batch = 1

    def __init__(self, account):
        self.account = account  # accounts.GatewayAccount
        self.base_url = account.base_url.rstrip("/")
        self.credentials = dict(account.credentials or {})

    # -- outbound --------------------------------------------------------------------------------
    async def capability(self, session, phone: str) -> bool:
        """True if ``phone`` can receive RCS now."""
        raise NotImplementedError

    async def capabilities(self, session, phones: list[str]) -> set[str]:
        """The subset of ``phones`` (≤ max_capability_batch) that can receive RCS."""
        raise NotImplementedError

    async def capability_answers(self, session, phones: list[str]) -> dict[str, str]:
        """The numbers of ``phones`` that can receive RCS, each with its carrier (``core.carriers``
        name; "" when the provider does not say). A gateway that reports the network overrides this."""
        return dict.fromkeys(await self.capabilities(session, phones), "")

    async def send(self, session, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    async def send_batch(self, session, messages: list[OutboundMessage]) -> list[SendResult | GatewayError]:
        """Send up to ``max_send_batch`` messages; one result or error per message, in order."""
        results: list[SendResult | GatewayError] = []
        for message in messages:
            try:
                results.append(await self.send(session, message))
            except GatewayError as error:
                results.append(error)
        return results

    async def revoke(self, session, phone: str, message_id: str) -> bool:
        """True if revoked before delivery; False if it was already delivered."""
        raise NotImplementedError

    # -- inbound ---------------------------------------------------------------------------------
    def verify_webhook(self, headers, body: bytes, url_secret: str = "") -> bool:
        """Constant-time check that a callback really comes from this gateway."""
        raise NotImplementedError

    def handshake(self, body: bytes) -> dict | None:
        """The answer to a registration handshake, or None if ``body`` is not one."""
        return None

    def parse_events(self, body: bytes) -> list[NormalizedEvent]:
        raise NotImplementedError


# -- wire-format helpers shared by the adapters ---------------------------------------------------
def calendar_time_rfc3339(value: str) -> str:
    """A document's calendar time (ISO 8601; naive means Japan time) as RFC 3339 in UTC."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value) -> datetime | None:
    """A carrier's RFC 3339 timestamp (nanoseconds allowed) as a datetime; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None


def first_validation_error(error: ValidationError) -> str:
    """The first message of a rich-content ValidationError, prefixed with its field when it has one."""
    if hasattr(error, "message_dict"):
        for field_name, messages in error.message_dict.items():
            return f"{field_name}: {messages[0]}"
    return str(error.messages[0]) if error.messages else "invalid content"


def float_or_none(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def retry_after_seconds(headers) -> float | None:
    """The Retry-After header in seconds (never negative); None when absent or not a number."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
