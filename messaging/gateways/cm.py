"""SMS — and provider-side RCS→SMS — over CM.com's Business Messaging JSON API.

``POST {base}/v1.0/message`` takes up to 100 messages in ``messages.msg[]``; each carries our id as
``reference`` (CM deduplicates on it), the SMS text in ``body.content``, ``allowedChannels``
(``["SMS"]``, or ``["RCS", "SMS"]`` to let CM fall back itself) and, for RCS, ``richContent``.
The answer lists one result per recipient, which ``send_batch`` maps back to each message.

Callbacks (status reports and inbound MO messages) carry no signature: they are authenticated by a
per-account secret in the callback URL, compared in constant time.

Credentials: ``{"product_token", "callback_secret"}`` (optionally ``"sender"``).
Status report codes: 0 accepted by the operator, 1 rejected, 2 delivered, 3 failed, 4 read.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import time
from datetime import UTC, datetime

import aiohttp
from django.core.exceptions import ValidationError

from core.carriers import carrier_for_operator
from core.phone import to_cm_number
from core.rich_content import validate_rich_content
from core.sms_text import measure_sms
from messaging import gateway_metrics
from messaging.gateways.base import (
    Gateway,
    GatewayError,
    NormalizedEvent,
    OutboundMessage,
    Permanent,
    Retryable,
    SendResult,
    calendar_time_rfc3339,
    first_validation_error,
    float_or_none,
    parse_rfc3339,
    retry_after_seconds,
)

STATUS_KINDS = {1: "failed", 2: "delivered", 3: "failed", 4: "read"}
DEFAULT_MIME = {"image": "image/jpeg", "video": "video/mp4", "file": "application/pdf"}


# -- rendering our rich-content document into CM.com's richContent -------------------------------
def render_cm_suggestion(item: dict) -> dict:
    kind = item["type"]
    suggestion: dict = {"label": item["label"]}
    if item.get("postback"):
        suggestion["postbackdata"] = item["postback"]
    if kind == "reply":
        suggestion["action"] = "Reply"
    elif kind == "open_url":
        suggestion.update(action="OpenUrl", url=item["url"])
    elif kind == "dial":
        suggestion.update(action="Dial", dial={"phoneNumber": item["phone"]})
    elif kind == "location":
        view = {"latitude": str(item["latitude"]), "longitude": str(item["longitude"])}
        if item.get("query"):
            view["label"] = item["query"]
        suggestion.update(action="ViewLocation", viewLocation=view)
    elif kind == "calendar":
        calendar = {
            "startTime": calendar_time_rfc3339(item["start"]),
            "endTime": calendar_time_rfc3339(item["end"]),
            "title": item["title"],
        }
        if item.get("description"):
            calendar["description"] = item["description"]
        suggestion.update(action="CreateCalendarEvent", calendar=calendar)
    return suggestion


def _media(media: dict, kind: str = "image") -> dict:
    url = media["url"]
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or DEFAULT_MIME.get(media.get("kind", kind), "image/jpeg")
    return {"mediaName": url.rsplit("/", 1)[-1].split("?", 1)[0] or "media", "mediaUri": url, "mimeType": mime}


def _card(card: dict) -> dict:
    part: dict = {}
    if card.get("title"):
        part["header"] = card["title"]
    part["text"] = card.get("description", "")
    if card.get("media"):
        part["media"] = _media(card["media"])
    if card.get("buttons"):
        part["suggestions"] = [render_cm_suggestion(button) for button in card["buttons"]]
    return part


def render_rich_content(document: dict) -> dict:
    """Our validated rich-content document as CM.com ``richContent``."""
    conversation: list[dict] = []
    if document.get("text"):
        conversation.append({"text": document["text"]})
    elif document.get("media"):
        conversation.append({"media": _media(document["media"])})
    elif document.get("card"):
        conversation.append(_card(document["card"]))
    elif document.get("carousel"):
        carousel = document["carousel"]
        width = "Small" if carousel.get("width") == "SMALL" else "Medium"
        conversation.append({"carousel": {"cardWidth": width, "cards": [_card(c) for c in carousel["cards"]]}})
    rich: dict = {"conversation": conversation}
    if document.get("chips"):
        rich["suggestions"] = [render_cm_suggestion(chip) for chip in document["chips"]]
    return rich


def _phone_from_cm(number: str) -> str:
    number = str(number or "").strip()
    if number.startswith("00"):
        return "+" + number[2:]
    if number and not number.startswith("+") and number.isdigit():
        return "+" + number
    return number


def _parse_time(value) -> datetime | None:
    moment = parse_rfc3339(value) if isinstance(value, str) else None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class CmGateway(Gateway):
    kind = "cm"
    max_send_batch = 100
    timeout_seconds = 15.0
    connect_timeout_seconds = 3.0

    def __init__(self, account):
        super().__init__(account)
        self.product_token = str(self.credentials.get("product_token", ""))
        self.sender = str(self.credentials.get("sender", ""))
        self.sms_char_limit = getattr(account, "sms_char_limit", 660) or 660

    # -- outbound --------------------------------------------------------------------------------
    async def capability(self, session, phone: str) -> bool:
        """CM.com has no capability API: with provider fallback, CM decides at send time."""
        return False

    async def capabilities(self, session, phones: list[str]) -> set[str]:
        return set()

    async def revoke(self, session, phone: str, message_id: str) -> bool:
        """CM.com cannot revoke a message once accepted."""
        return False

    def build_msg(self, message: OutboundMessage) -> dict:
        """One element of ``messages.msg[]``; raises Permanent if the message cannot be sent."""
        channels = list(message.allowed_channels or ("SMS",))
        text = message.sms_text or ""
        if "SMS" in channels:
            if not text:
                raise Permanent("the SMS text is empty", code="empty_sms")
            if len(text) > self.sms_char_limit:
                raise Permanent(f"the SMS text is longer than {self.sms_char_limit} characters", code="sms_too_long")
        msg: dict = {
            "from": message.sms_sender or self.sender or "INFO",
            "to": [{"number": to_cm_number(message.phone)}],
            "body": {"type": "auto", "content": text},
            "allowedChannels": channels,
            "reference": message.message_id,
        }
        if text:
            segments = measure_sms(text).segments
            msg["minimumNumberOfMessageParts"] = 1
            msg["maximumNumberOfMessageParts"] = max(1, segments)
        if "RCS" in channels and message.content:
            try:
                validate_rich_content(message.content)
            except ValidationError as error:
                raise Permanent(first_validation_error(error), code="invalid_content") from None
            msg["richContent"] = render_rich_content(message.content)
        return msg

    async def send(self, session, message: OutboundMessage) -> SendResult:
        result = (await self.send_batch(session, [message]))[0]
        if isinstance(result, GatewayError):
            raise result
        return result

    async def send_batch(self, session, messages: list[OutboundMessage]) -> list[SendResult | GatewayError]:
        results: list[SendResult | GatewayError] = []
        for start in range(0, len(messages), self.max_send_batch):
            results.extend(await self._send_chunk(session, messages[start : start + self.max_send_batch]))
        return results

    async def _send_chunk(self, session, messages: list[OutboundMessage]) -> list[SendResult | GatewayError]:
        results: list[SendResult | GatewayError | None] = [None] * len(messages)
        msgs, positions = [], []
        for index, message in enumerate(messages):
            try:
                msgs.append(self.build_msg(message))
                positions.append(index)
            except GatewayError as error:
                results[index] = error
        if msgs:
            outcome = await self._post(session, msgs)
            for index in positions:
                message = messages[index]
                if isinstance(outcome, GatewayError):
                    results[index] = _copy_error(outcome)
                    continue
                answer = outcome.get((message.message_id, to_cm_number(message.phone)))
                if answer is None:
                    results[index] = Retryable("no result for this message", code="missing", outcome_unknown=True)
                elif answer.get("status") == "Accepted":
                    results[index] = SendResult(message.message_id, message.message_id)
                else:
                    results[index] = Permanent(
                        str(answer.get("messageDetails") or "rejected"), code=str(answer.get("messageErrorCode", ""))
                    )
        return results

    def _observed(self, started: float, error: Retryable) -> Retryable:
        """A request that got no answer: its duration and transport error go to the gateway metrics."""
        gateway_metrics.request_observed(
            self.kind, "send_batch", time.monotonic() - started, gateway_metrics.outcome_label(error=error.code)
        )
        return error

    async def _post(self, session, msgs: list[dict]):
        """{(reference, number): result} or one GatewayError for the whole request."""
        body = {"messages": {"authentication": {"producttoken": self.product_token}, "msg": msgs}}
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds, sock_connect=self.connect_timeout_seconds)
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            async with session.post(
                f"{self.base_url}/v1.0/message",
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            ) as response:
                status, headers, payload = response.status, response.headers, await response.read()
        except aiohttp.ConnectionTimeoutError:
            return self._observed(started, Retryable("connection timed out", code="connect_timeout"))
        except aiohttp.ClientConnectorError:
            return self._observed(started, Retryable("connection refused", code="connect_error"))
        except TimeoutError:
            return self._observed(started, Retryable("no answer in time", code="timeout", outcome_unknown=True))
        except aiohttp.ClientError as error:
            return self._observed(
                started, Retryable(error.__class__.__name__, code="transport", outcome_unknown=True)
            )
        gateway_metrics.request_observed(
            self.kind, "send_batch", time.monotonic() - started, gateway_metrics.outcome_label(status)
        )
        try:
            document = json.loads(payload)
        except ValueError:
            document = {}
        details = str(document.get("details", "")) if isinstance(document, dict) else ""
        if status == 429:
            return Retryable(details or "too many requests", code="429", retry_after=retry_after_seconds(headers))
        if status >= 500:
            return Retryable(details or "server error", code=str(status), retry_after=retry_after_seconds(headers))
        answers = document.get("messages") if isinstance(document, dict) else None
        if status in (200, 400) and isinstance(answers, list) and answers:
            return {(str(a.get("reference")), str(a.get("to"))): a for a in answers if isinstance(a, dict)}
        return Permanent(details or f"HTTP {status}", code=str(document.get("errorCode", status)))

    # -- inbound ---------------------------------------------------------------------------------
    def verify_webhook(self, headers, body: bytes, url_secret: str = "") -> bool:
        secret = str(self.credentials.get("callback_secret", ""))
        if not secret or not url_secret:
            return False
        return hmac.compare_digest(secret.encode(), str(url_secret).encode())

    def parse_events(self, body: bytes) -> list[NormalizedEvent]:
        try:
            document = json.loads(body)
        except ValueError as error:
            raise ValueError("not JSON") from error
        items = document if isinstance(document, list) else [document]
        events: list[NormalizedEvent] = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("not a CM.com callback")
            if "messages" in item:
                events.extend(_status_reports(item["messages"]))
            elif "from" in item and "message" in item:
                event = _inbound(item)
                if event is not None:
                    events.append(event)
            else:
                raise ValueError("not a CM.com callback")
        return events


def _status_reports(messages) -> list[NormalizedEvent]:
    reports = messages.get("msg") if isinstance(messages, dict) else None
    if isinstance(reports, dict):
        reports = [reports]
    if not isinstance(reports, list):
        raise ValueError("messages.msg is missing")
    events = []
    for report in reports:
        status = report.get("status") or {}
        try:
            code = int(status.get("code"))
        except (TypeError, ValueError):
            raise ValueError("status.code is missing") from None
        kind = STATUS_KINDS.get(code)
        if kind is None:
            continue  # 0: accepted by the operator, nothing to apply
        reference = str(report.get("reference") or "")
        number = str(report.get("to") or "")
        channel = str(report.get("channel") or "SMS")
        events.append(
            NormalizedEvent(
                provider="cm",
                event_id=f"sr:{reference}:{number}:{channel}:{code}",
                kind=kind,
                channel="rcs" if channel.upper() == "RCS" else "sms",
                message_id=reference,
                phone=_phone_from_cm(number),
                occurred_at=_parse_time(report.get("received")),
                error_code=str(status.get("errorCode") or "") if kind == "failed" else "",
                error_reason=str(status.get("errorDescription") or report.get("standardErrorText") or "")
                if kind == "failed"
                else "",
                carrier=carrier_for_operator(report.get("operator")),
                raw=report,
            )
        )
    return events


def _inbound(item: dict) -> NormalizedEvent | None:
    message = item.get("message") or {}
    sender = item.get("from") or {}
    common = {
        "provider": "cm",
        "event_id": f"mo:{item.get('reference', '')}",
        "channel": "rcs" if str(item.get("channel", "")).upper() == "RCS" else "sms",
        "phone": _phone_from_cm(sender.get("number", "") if isinstance(sender, dict) else sender),
        "occurred_at": _parse_time(item.get("timeUtc") or item.get("time")),
        "raw": item,
    }
    if not item.get("reference"):
        raise ValueError("an inbound message needs its reference")
    custom = message.get("custom") or {}
    if isinstance(custom, dict) and custom.get("postbackdata"):
        return NormalizedEvent(
            kind="inbound_postback", postback=str(custom["postbackdata"]), text=str(message.get("text", "")), **common
        )
    if message.get("location"):
        location = message["location"]
        return NormalizedEvent(
            kind="inbound_location",
            latitude=float_or_none(location.get("latitude")),
            longitude=float_or_none(location.get("longitude")),
            **common,
        )
    if message.get("media"):
        media = message["media"]
        return NormalizedEvent(
            kind="inbound_file",
            file_url=str(media.get("mediaUri", "")),
            file_mime=str(media.get("contentType") or media.get("mimeType") or ""),
            **common,
        )
    if "text" in message:
        return NormalizedEvent(kind="inbound_text", text=str(message.get("text", "")), **common)
    return None


def _copy_error(error: GatewayError) -> GatewayError:
    return type(error)(
        error.reason, code=error.code, retry_after=error.retry_after, outcome_unknown=error.outcome_unknown
    )
