"""RCS over Google's RCS Business Messaging (RBM) REST v1.

Outbound: capabilities (single and ``users:batchGet``), ``agentMessages`` with our id as the
``messageId`` (the platform refuses a reused id with 409 ALREADY_EXISTS, which we treat as success:
that is our idempotency), revoke by DELETE. Inbound: the Pub/Sub push envelope, signed in
``X-Goog-Signature`` = base64(HMAC-SHA512(client token, decoded ``message.data``)), and the
webhook registration handshake that echoes ``secret`` when ``clientToken`` matches.

Credentials: ``{"agent_id", "bearer_token", "client_token"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import quote

import aiohttp
from django.core.exceptions import ValidationError
from yarl import URL

from core.carriers import carrier_for_operator
from core.rich_content import validate_rich_content
from messaging import gateway_metrics
from messaging.gateways.base import (
    Gateway,
    NormalizedEvent,
    NotReachable,
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

USER_EVENT_KINDS = {"DELIVERED": "delivered", "READ": "read", "IS_TYPING": "is_typing"}
SERVER_EVENT_KINDS = {"TTL_EXPIRATION_REVOKED": "ttl_revoked", "TTL_EXPIRATION_REVOKE_FAILED": "ttl_revoke_failed"}


# -- rendering our rich-content document into an RBM AgentContentMessage ---------------------------
def render_suggestion(item: dict) -> dict:
    kind = item["type"]
    label = item["label"]
    if kind == "reply":
        return {"reply": {"text": label, "postbackData": item["postback"]}}
    action: dict = {"text": label, "postbackData": item.get("postback") or f"{kind}:{label}"[:2048]}
    if kind == "open_url":
        action["openUrlAction"] = {"url": item["url"]}
    elif kind == "dial":
        phone = item["phone"].replace("-", "")
        if not phone.startswith("+"):
            phone = "+81" + phone.lstrip("0")  # a Japanese number written nationally
        action["dialAction"] = {"phoneNumber": phone}
    elif kind == "location":
        view: dict = {"latLong": {"latitude": item["latitude"], "longitude": item["longitude"]}}
        if item.get("query"):
            view["label"] = item["query"]
        action["viewLocationAction"] = view
    elif kind == "calendar":
        event = {
            "startTime": calendar_time_rfc3339(item["start"]),
            "endTime": calendar_time_rfc3339(item["end"]),
            "title": item["title"],
        }
        if item.get("description"):
            event["description"] = item["description"]
        action["createCalendarEventAction"] = event
    return {"action": action}


def _render_card(card: dict) -> dict:
    content: dict = {}
    if card.get("title"):
        content["title"] = card["title"]
    if card.get("description"):
        content["description"] = card["description"]
    media = card.get("media")
    if media:
        info = {"fileUrl": media["url"], "forceRefresh": False}
        if media.get("thumbnail_url"):
            info["thumbnailUrl"] = media["thumbnail_url"]
        content["media"] = {"height": media.get("height", "MEDIUM"), "contentInfo": info}
    if card.get("buttons"):
        content["suggestions"] = [render_suggestion(button) for button in card["buttons"]]
    return content


def render_content_message(document: dict) -> dict:
    """Our validated rich-content document as an RBM ``AgentContentMessage``."""
    message: dict = {}
    if document.get("text"):
        message["text"] = document["text"]
    elif document.get("media"):
        media = document["media"]
        info = {"fileUrl": media["url"], "forceRefresh": False}
        if media.get("thumbnail_url"):
            info["thumbnailUrl"] = media["thumbnail_url"]
        message["contentInfo"] = info
    elif document.get("card"):
        message["richCard"] = {
            "standaloneCard": {
                "cardOrientation": "VERTICAL",
                "thumbnailImageAlignment": "LEFT",
                "cardContent": _render_card(document["card"]),
            }
        }
    elif document.get("carousel"):
        carousel = document["carousel"]
        message["richCard"] = {
            "carouselCard": {
                "cardWidth": carousel.get("width", "MEDIUM"),
                "cardContents": [_render_card(card) for card in carousel["cards"]],
            }
        }
    if document.get("chips"):
        message["suggestions"] = [render_suggestion(chip) for chip in document["chips"]]
    return message


def agent_message_body(message: OutboundMessage) -> dict:
    """The request body of phones.agentMessages.create; raises Permanent if the content is invalid."""
    try:
        validate_rich_content(message.content)
    except ValidationError as error:
        raise Permanent(first_validation_error(error), code="invalid_content") from None
    body: dict = {
        "contentMessage": render_content_message(message.content),
        "messageTrafficType": message.traffic_type or "TRANSACTION",
    }
    if message.ttl_seconds:
        body["ttl"] = f"{int(message.ttl_seconds)}s"
    return body


# -- inbound helpers ------------------------------------------------------------------------------
def header(headers, name: str) -> str:
    """A request header from Django's ``request.headers``, aiohttp's or a plain dict."""
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    return value or ""


def decode_envelope(body: bytes) -> tuple[dict, bytes]:
    """(the Pub/Sub envelope, the decoded ``message.data`` bytes); ValueError when malformed."""
    try:
        envelope = json.loads(body)
        data = base64.b64decode(envelope["message"]["data"], validate=True)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError("not a Pub/Sub push envelope") from error
    return envelope, data


def signature_for(client_token: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(client_token.encode(), data, hashlib.sha512).digest()).decode()


class RbmGateway(Gateway):
    kind = "rbm"
    max_capability_batch = 10_000
    max_send_batch = 1
    timeout_seconds = 10.0  # total per request; instances may lower it (tests do)
    connect_timeout_seconds = 3.0

    def __init__(self, account):
        super().__init__(account)
        self.agent_id = str(self.credentials.get("agent_id", ""))
        self._agent_query = quote(self.agent_id, safe="")
        self._headers = {
            "Authorization": f"Bearer {self.credentials.get('bearer_token', '')}",
            "Content-Type": "application/json",
        }

    # -- transport -------------------------------------------------------------------------------
    async def _request(self, session, operation: str, method: str, url: str, body: dict | None = None):
        """(status, headers, body) of one request; its duration and outcome go to the gateway metrics."""
        started = time.monotonic()
        try:
            status, headers, payload = await self._exchange(session, method, url, body)
        except Retryable as error:
            gateway_metrics.request_observed(
                self.kind, operation, time.monotonic() - started, gateway_metrics.outcome_label(error=error.code)
            )
            raise
        gateway_metrics.request_observed(
            self.kind, operation, time.monotonic() - started, gateway_metrics.outcome_label(status)
        )
        return status, headers, payload

    async def _exchange(self, session, method: str, url: str, body: dict | None):
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds, sock_connect=self.connect_timeout_seconds)
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        try:
            async with session.request(
                method, URL(url, encoded=True), data=data, headers=self._headers, timeout=timeout
            ) as response:
                payload = await response.read()
                return response.status, response.headers, payload
        except aiohttp.ConnectionTimeoutError:
            raise Retryable("connection timed out", code="connect_timeout") from None
        except aiohttp.ClientConnectorError:
            raise Retryable("connection refused", code="connect_error") from None
        except TimeoutError:  # aiohttp's read timeouts subclass it
            raise Retryable("no answer in time", code="timeout", outcome_unknown=True) from None
        except aiohttp.ClientError as error:
            raise Retryable(error.__class__.__name__, code="transport", outcome_unknown=True) from None

    @staticmethod
    def _error(status: int, headers, payload: bytes, *, on_not_found=None):
        reason = ""
        try:
            reason = json.loads(payload)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            reason = payload[:200].decode("utf-8", "replace")
        if status == 429:
            return Retryable(reason, code="429", retry_after=retry_after_seconds(headers))
        if status >= 500 or status == 408:
            return Retryable(reason, code=str(status), retry_after=retry_after_seconds(headers))
        if status in (403, 404) and on_not_found is not None:
            return on_not_found(reason, code=str(status))
        return Permanent(reason, code=str(status))

    def _url(self, path: str, **query) -> str:
        params = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in query.items() if value)
        url = f"{self.base_url}/v1/{path}"
        return f"{url}?{params}" if params else url

    # -- outbound --------------------------------------------------------------------------------
    async def capability(self, session, phone: str) -> bool:
        status, headers, payload = await self._request(
            session, "capability", "GET", self._url(f"phones/{phone}/capabilities", agentId=self.agent_id)
        )
        if status == 200:
            return True
        if status == 404:
            return False
        raise self._error(status, headers, payload)

    async def capabilities(self, session, phones: list[str]) -> set[str]:
        return set(await self.capability_answers(session, phones))

    async def capability_answers(self, session, phones: list[str]) -> dict[str, str]:
        """``users:batchGet``: the reachable numbers, with the network of each where the platform
        gives it in ``reachableUserOperators`` (number → MCC-MNC; see design.md's notes)."""
        reachable: dict[str, str] = {}
        for start in range(0, len(phones), self.max_capability_batch):
            chunk = phones[start : start + self.max_capability_batch]
            status, headers, payload = await self._request(
                session, "capabilities", "POST", self._url("users:batchGet", agentId=self.agent_id), {"users": chunk}
            )
            if status != 200:
                raise self._error(status, headers, payload)
            answer = json.loads(payload)
            operators = answer.get("reachableUserOperators")
            operators = operators if isinstance(operators, dict) else {}
            for phone in answer.get("reachableUsers") or []:
                reachable[phone] = carrier_for_operator(operators.get(phone))
        return reachable

    async def send(self, session, message: OutboundMessage) -> SendResult:
        body = agent_message_body(message)
        url = (
            f"{self.base_url}/v1/phones/{message.phone}/agentMessages"
            f"?messageId={quote(message.message_id, safe='')}&agentId={self._agent_query}"
        )
        status, headers, payload = await self._request(session, "send", "POST", url, body)
        if status == 200:
            return SendResult(message.message_id, f"phones/{message.phone}/agentMessages/{message.message_id}")
        if status == 409:  # ALREADY_EXISTS: an earlier attempt with this id got through
            return SendResult(message.message_id, f"phones/{message.phone}/agentMessages/{message.message_id}")
        raise self._error(status, headers, payload, on_not_found=NotReachable)

    async def revoke(self, session, phone: str, message_id: str) -> bool:
        url = self._url(f"phones/{phone}/agentMessages/{quote(message_id, safe='')}", agentId=self.agent_id)
        status, headers, payload = await self._request(session, "revoke", "DELETE", url)
        if status == 200:
            return True
        if status == 404:
            return False
        raise self._error(status, headers, payload)

    async def send_read_receipt(self, session, phone: str, message_id: str) -> bool:
        """Tell the person we read their message (``agentEvents`` with eventType READ).

        The event id is derived from the user's message id, so a repeated call is one event.
        """
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"rbm-read:{self.agent_id}:{message_id}"))
        url = self._url(f"phones/{phone}/agentEvents", eventId=event_id, agentId=self.agent_id)
        status, headers, payload = await self._request(
            session, "read_receipt", "POST", url, {"eventType": "READ", "messageId": message_id}
        )
        if status in (200, 409):
            return True
        if status == 404:
            return False
        raise self._error(status, headers, payload)

    # -- inbound ---------------------------------------------------------------------------------
    def verify_webhook(self, headers, body: bytes, url_secret: str = "") -> bool:
        client_token = str(self.credentials.get("client_token", ""))
        signature = header(headers, "X-Goog-Signature")
        if not client_token or not signature:
            return False
        try:
            _, data = decode_envelope(body)
        except ValueError:
            return False
        expected = signature_for(client_token, data)
        return hmac.compare_digest(expected.encode(), signature.encode("latin-1"))

    def handshake(self, body: bytes) -> dict | None:
        try:
            document = json.loads(body)
        except ValueError:
            return None
        if not isinstance(document, dict) or "message" in document:
            return None
        token, secret = document.get("clientToken"), document.get("secret")
        expected = str(self.credentials.get("client_token", ""))
        if not isinstance(token, str) or not isinstance(secret, str) or not expected:
            return None
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return {"secret": secret}

    def parse_events(self, body: bytes) -> list[NormalizedEvent]:
        envelope, data = decode_envelope(body)
        try:
            event = json.loads(data)
        except ValueError as error:
            raise ValueError("message.data is not JSON") from error
        if not isinstance(event, dict):
            raise ValueError("message.data is not an object")
        parsed = parse_rbm_event(event)
        if parsed is None:
            return []
        if not parsed.event_id:
            parsed.event_id = "pubsub:" + str(envelope["message"].get("messageId", ""))
        return [parsed]


def parse_rbm_event(event: dict) -> NormalizedEvent | None:
    """One decoded RBM payload (UserEvent, UserMessage or server event) as a NormalizedEvent."""
    occurred = parse_rfc3339(event.get("sendTime"))
    event_type = event.get("eventType")
    if event_type in SERVER_EVENT_KINDS and "phoneNumber" in event:
        return NormalizedEvent(
            provider="rbm",
            event_id=str(event.get("eventId") or ""),
            kind=SERVER_EVENT_KINDS[event_type],
            channel="rcs",
            message_id=str(event.get("messageId", "")),
            phone=str(event.get("phoneNumber", "")),
            occurred_at=occurred,
            raw=event,
        )
    phone = str(event.get("senderPhoneNumber", ""))
    if event_type is not None:
        kind = USER_EVENT_KINDS.get(event_type)
        if kind is None:
            return None  # an event type we do not act on
        return NormalizedEvent(
            provider="rbm",
            event_id=str(event.get("eventId") or ""),
            kind=kind,
            channel="rcs",
            message_id=str(event.get("messageId", "")) if kind != "is_typing" else "",
            phone=phone,
            occurred_at=occurred,
            raw=event,
        )
    # A user message: its own messageId is the deduplication key.
    common = {
        "provider": "rbm",
        "event_id": f"msg:{event.get('messageId', '')}" if event.get("messageId") else "",
        "channel": "rcs",
        "phone": phone,
        "occurred_at": occurred,
        "raw": event,
    }
    if "suggestionResponse" in event:
        response = event["suggestionResponse"] or {}
        return NormalizedEvent(
            kind="inbound_postback", postback=str(response.get("postbackData", "")), text=str(response.get("text", "")),
            **common,
        )
    if "location" in event:
        location = event["location"] or {}
        return NormalizedEvent(
            kind="inbound_location",
            latitude=float_or_none(location.get("latitude")),
            longitude=float_or_none(location.get("longitude")),
            **common,
        )
    if "userFile" in event:
        payload = (event["userFile"] or {}).get("payload") or {}
        return NormalizedEvent(
            kind="inbound_file", file_url=str(payload.get("fileUri", "")), file_mime=str(payload.get("mimeType", "")),
            **common,
        )
    if "text" in event:
        return NormalizedEvent(kind="inbound_text", text=str(event["text"]), **common)
    return None
