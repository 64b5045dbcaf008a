"""The simulated network: registrations, accepted messages, handsets' inboxes, timers and tallies.

Everything is in memory and driven by the event loop: a send schedules its delivery (and read, or
TTL expiry) with ``loop.call_later``; each state change records what the handset received and
emits signed callbacks through the ``WebhookPoster``. Idempotency keys are (agent, messageId) for
RBM and (product token, reference, number) for CM: a resend never reaches a handset twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandbox.profiles import PROFILES, ProfileMix
from sandbox.webhooks import Webhook, WebhookPoster

DEFAULT_LATENCIES_MS = {
    "delivered": [20, 80],  # RCS accepted → DELIVERED
    "read": [100, 300],  # DELIVERED → READ
    "sms_delivered": [30, 120],  # SMS accepted → status report "delivered"
    "reply": [50, 150],  # trigger → scripted reply
}

DEFAULT_FAULTS = {
    "error_rate": 0.0,  # share of carrier API calls answered with error_status
    "error_status": 503,
    "fail_next": 0,  # the next N carrier API calls are answered with error_status
    "timeout_rate": 0.0,  # share of carrier API calls that hang for timeout_seconds
    "timeout_next": 0,  # the next N carrier API calls hang
    "timeout_seconds": 30.0,
    "timeout_mode": "after_accept",  # "after_accept": the send is processed, then the answer hangs
    "duplicate_webhook_rate": 0.0,  # share of callbacks posted twice
    "out_of_order_rate": 0.0,  # share of messages whose READ is posted before DELIVERED
    "ttl_revoke_fail_rate": 0.0,  # share of TTL expiries that fail to revoke (delivered instead)
    "down_tokens": [],  # gateway accounts (RBM bearer or CM product token) answering error_status to every call
}

RBM_FEATURES = [
    "RICHCARD_STANDALONE",
    "RICHCARD_CAROUSEL",
    "ACTION_CREATE_CALENDAR_EVENT",
    "ACTION_DIAL",
    "ACTION_OPEN_URL",
    "ACTION_SHARE_LOCATION",
    "ACTION_VIEW_LOCATION",
]


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def rbm_signature(client_token: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(client_token.encode(), data, hashlib.sha512).digest()).decode()


def e164_from_cm(number: str) -> str:
    return "+" + number[2:] if number.startswith("00") else number


@dataclass
class Registration:
    kind: str  # "rbm" or "cm"
    webhook_url: str = ""
    gateway_id: int | None = None
    agent_id: str = ""
    bearer_token: str = ""
    client_token: str = ""
    product_token: str = ""
    callback_secret: str = ""

    def public(self) -> dict:
        """What the admin API shows: never a token, and the CM callback secret masked in the URL."""
        url = self.webhook_url
        if self.callback_secret and self.callback_secret in url:
            url = url.replace(self.callback_secret, "••••" + self.callback_secret[-4:])
        return {"kind": self.kind, "gateway_id": self.gateway_id, "agent_id": self.agent_id, "webhook_url": url}


@dataclass(slots=True)
class SentMessage:
    registration: Registration
    phone: str  # E.164
    message_id: str  # RBM messageId or CM reference
    channel: str  # "rcs" or "sms": what the handset gets (CM may fall back)
    state: str = "pending"  # pending, delivered, revoked, expired, failed
    content: dict | None = None
    text: str = ""
    cm_number: str = ""
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class InboxEntry:
    message_id: str
    channel: str
    gateway: str
    count: int = 0
    first_at: str = ""
    last_at: str = ""
    text: str = ""
    content: dict | None = None
    gateway_id: int | None = None  # the registration's gateway account (the first that delivered it)

    def public(self) -> dict:
        return {
            "message_id": self.message_id,
            "channel": self.channel,
            "gateway": self.gateway,
            "gateway_id": self.gateway_id,
            "count": self.count,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "text": self.text,
            "content": self.content,
        }


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def take(self, amount: float = 1.0) -> float:
        """0 if ``amount`` tokens were taken, else the seconds to wait before they would be."""
        current = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (current - self.updated) * self.rate)
        self.updated = current
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate


class Carrier:
    def __init__(self, poster: WebhookPoster, seed: int = 7):
        self.poster = poster
        self.seed = seed
        self.registrations: list[Registration] = []
        self.rbm_by_token: dict[str, Registration] = {}
        self.cm_by_token: dict[str, Registration] = {}
        self.reset()

    # -- configuration ---------------------------------------------------------------------------
    def reset(self) -> None:
        for message in getattr(self, "messages", {}).values():
            if message.timer is not None:
                message.timer.cancel()
        for handle in getattr(self, "_timers", set()):
            handle.cancel()
        self._timers: set[asyncio.TimerHandle] = set()
        self.mix = ProfileMix()
        self.latencies = {key: list(value) for key, value in DEFAULT_LATENCIES_MS.items()}
        self.faults = dict(DEFAULT_FAULTS)
        self.rate: float | None = None
        self.burst: float | None = None
        self.buckets: dict[str, TokenBucket] = {}
        self.messages: dict[tuple, SentMessage] = {}
        self.inboxes: dict[str, dict[tuple[str, str], InboxEntry]] = defaultdict(dict)
        self.scripts: dict[str, list[dict]] = defaultdict(list)
        self.agent_events: dict[str, list[dict]] = defaultdict(list)
        self.last_message: dict[str, SentMessage] = {}
        self.tallies: Counter = Counter()
        self.rng = random.Random(self.seed)
        self.poster.clear()

    def register(self, registration: Registration) -> None:
        if registration.kind == "rbm":
            if not registration.bearer_token or not registration.client_token:
                raise ValueError("an RBM registration needs bearer_token and client_token")
            self.rbm_by_token[registration.bearer_token] = registration
        elif registration.kind == "cm":
            if not registration.product_token:
                raise ValueError("a CM registration needs product_token")
            self.cm_by_token[registration.product_token] = registration
        else:
            raise ValueError("kind must be rbm or cm")
        self.registrations = [
            r
            for r in self.registrations
            if not (r.kind == registration.kind and _token(r) == _token(registration))
        ] + [registration]

    def set_latencies(self, latencies: dict) -> None:
        for key, value in latencies.items():
            if key not in self.latencies:
                raise ValueError(f"unknown latency {key}")
            if isinstance(value, (int, float)):
                value = [value, value]
            low, high = float(value[0]), float(value[1])
            if low < 0 or high < low:
                raise ValueError(f"latency {key}: [min, max] in milliseconds")
            self.latencies[key] = [low, high]

    def set_faults(self, faults: dict) -> None:
        for key, value in faults.items():
            if key not in DEFAULT_FAULTS:
                raise ValueError(f"unknown fault {key}")
            self.faults[key] = type(DEFAULT_FAULTS[key])(value)

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = float(rate) if rate else None
        self.burst = float(burst) if burst else (max(1.0, self.rate) if self.rate else None)
        self.buckets.clear()

    # -- helpers used by the endpoints -----------------------------------------------------------
    def throttle(self, key: str, amount: float = 1.0) -> int:
        """0 when allowed; else the Retry-After seconds (a 429)."""
        if not self.rate:
            return 0
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, tokens=self.burst)
        wait = bucket.take(amount)
        if wait:
            self.tallies["throttled"] += 1
            return max(1, math.ceil(wait))
        return 0

    def fault(self, key: str = "") -> str | None:
        """Which fault to inject into this carrier API call of the account ``key``: "error",
        "timeout" or None."""
        faults = self.faults
        if key and key in faults["down_tokens"]:
            self.tallies["injected_errors"] += 1
            return "error"
        if faults["fail_next"] > 0:
            faults["fail_next"] -= 1
            self.tallies["injected_errors"] += 1
            return "error"
        if faults["timeout_next"] > 0:
            faults["timeout_next"] -= 1
            self.tallies["injected_timeouts"] += 1
            return "timeout"
        if faults["error_rate"] and self.rng.random() < faults["error_rate"]:
            self.tallies["injected_errors"] += 1
            return "error"
        if faults["timeout_rate"] and self.rng.random() < faults["timeout_rate"]:
            self.tallies["injected_timeouts"] += 1
            return "timeout"
        return None

    def _delay(self, name: str) -> float:
        low, high = self.latencies[name]
        return (low if low == high else self.rng.uniform(low, high)) / 1000.0

    def _later(self, delay: float, callback, *args) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        handle = None

        def run():
            self._timers.discard(handle)
            callback(*args)

        handle = loop.call_later(delay, run)
        self._timers.add(handle)
        return handle

    def _receive(self, message: SentMessage, channel: str) -> None:
        """The handset shows the message: what tests read back to prove exactly-once delivery."""
        stamp = now_rfc3339()
        inbox = self.inboxes[message.phone]
        entry = inbox.get((channel, message.message_id))
        if entry is None:
            entry = inbox[(channel, message.message_id)] = InboxEntry(
                message_id=message.message_id,
                channel=channel,
                gateway=message.registration.kind,
                gateway_id=message.registration.gateway_id,
                first_at=stamp,
                text=message.text,
                content=message.content,
            )
        else:
            self.tallies["handset_duplicates"] += 1
        entry.count += 1
        entry.last_at = stamp
        self.tallies[f"received_{channel}"] += 1

    # -- RBM -------------------------------------------------------------------------------------
    def rbm_capable(self, phone: str) -> bool:
        self.tallies["rbm_capability_checks"] += 1
        return self.mix.profile_for(phone).rcs

    def rbm_accept(self, registration: Registration, phone: str, message_id: str, body: dict, ttl: float | None) -> str:
        """Returns "accepted", "duplicate" or "not_reachable"."""
        key = ("rbm", registration.agent_id, message_id)
        if key in self.messages:
            self.tallies["rbm_duplicates"] += 1
            return "duplicate"
        profile = self.mix.profile_for(phone)
        if not profile.rcs:
            self.tallies["rbm_not_reachable"] += 1
            return "not_reachable"
        content = body.get("contentMessage") or {}
        message = SentMessage(
            registration=registration,
            phone=phone,
            message_id=message_id,
            channel="rcs",
            content=content,
            text=content.get("text", "") if isinstance(content.get("text"), str) else "",
        )
        self.messages[key] = message
        self.last_message[phone] = message
        self.tallies["rbm_accepted"] += 1
        if profile.online:
            message.timer = self._later(self._delay("delivered"), self._rbm_deliver, message)
        elif ttl is not None:
            message.timer = self._later(ttl, self._rbm_expire, message)
        return "accepted"

    def rbm_revoke(self, registration: Registration, message_id: str) -> bool:
        message = self.messages.get(("rbm", registration.agent_id, message_id))
        if message is None or message.state != "pending":
            self.tallies["rbm_revoke_too_late"] += 1
            return False
        if message.timer is not None:
            message.timer.cancel()
            self._timers.discard(message.timer)
        message.state = "revoked"
        self.tallies["rbm_revoked"] += 1
        return True

    def _rbm_deliver(self, message: SentMessage) -> None:
        message.timer = None
        if message.state != "pending":
            return
        message.state = "delivered"
        self._receive(message, "rcs")
        profile = self.mix.profile_for(message.phone)
        reads = profile.reads
        out_of_order = reads and self.faults["out_of_order_rate"] and self.rng.random() < self.faults["out_of_order_rate"]
        if out_of_order:
            self.tallies["out_of_order"] += 1
            self._rbm_read(message)
            self._later(self._delay("read"), self._rbm_user_event, message, "DELIVERED")
        else:
            self._rbm_user_event(message, "DELIVERED")
            if reads:
                self._later(self._delay("read"), self._rbm_read, message)
        self._script(message.phone, "delivered", message)

    def _rbm_read(self, message: SentMessage) -> None:
        self._rbm_user_event(message, "READ")
        self._script(message.phone, "read", message)

    def _rbm_expire(self, message: SentMessage) -> None:
        message.timer = None
        if message.state != "pending":
            return
        rate = self.faults["ttl_revoke_fail_rate"]
        if rate and self.rng.random() < rate:
            self._rbm_server_event(message, "TTL_EXPIRATION_REVOKE_FAILED")
            self._rbm_deliver(message)
            return
        message.state = "expired"
        self.tallies["rbm_ttl_revoked"] += 1
        self._rbm_server_event(message, "TTL_EXPIRATION_REVOKED")

    def _rbm_user_event(self, message: SentMessage, event_type: str) -> None:
        self.tallies[f"rbm_event_{event_type.lower()}"] += 1
        self._rbm_post(
            message.registration,
            {
                "senderPhoneNumber": message.phone,
                "eventType": event_type,
                "eventId": "MxE" + uuid.uuid4().hex,
                "messageId": message.message_id,
                "sendTime": now_rfc3339(),
                "agentId": message.registration.agent_id,
            },
            event_type,
        )

    def _rbm_server_event(self, message: SentMessage, event_type: str) -> None:
        self.tallies[f"rbm_event_{event_type.lower()}"] += 1
        self._rbm_post(
            message.registration,
            {
                "phoneNumber": message.phone,
                "messageId": message.message_id,
                "agentId": message.registration.agent_id,
                "eventType": event_type,
                "eventId": "MxS" + uuid.uuid4().hex,
                "sendTime": now_rfc3339(),
            },
            event_type,
        )

    def _rbm_post(self, registration: Registration, payload: dict, label: str) -> None:
        if not registration.webhook_url:  # nowhere to post (benchmarks): skip the signing work
            self.poster.tallies["dropped_no_target"] += 1
            return
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        envelope = {
            "message": {
                "attributes": {"product": "RBM"},
                "data": base64.b64encode(data).decode(),
                "messageId": str(self.rng.getrandbits(60)),
                "publishTime": now_rfc3339(),
            },
            "subscription": f"projects/rbm-{registration.agent_id or 'agent'}/subscriptions/rbm-agent-subscription",
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Goog-Signature": rbm_signature(registration.client_token, data),
        }
        self._submit(Webhook(registration.webhook_url, body, headers, label))

    def _submit(self, hook: Webhook) -> None:
        self.poster.submit(hook)
        rate = self.faults["duplicate_webhook_rate"]
        if rate and self.rng.random() < rate:
            self.tallies["duplicate_webhooks"] += 1
            self.poster.submit(Webhook(hook.url, hook.body, dict(hook.headers), hook.label))

    # -- CM --------------------------------------------------------------------------------------
    def cm_accept(self, registration: Registration, msg: dict, number: str) -> str:
        """Returns "accepted" or "duplicate"."""
        reference = msg.get("reference") or uuid.uuid4().hex
        key = ("cm", registration.product_token, reference, number)
        if key in self.messages:
            self.tallies["cm_duplicates"] += 1
            return "duplicate"
        phone = e164_from_cm(number)
        profile = self.mix.profile_for(phone)
        channels = msg.get("allowedChannels") or ["SMS"]
        rich = msg.get("richContent")
        text = (msg.get("body") or {}).get("content", "")
        if "RCS" in channels and profile.rcs and profile.online:
            channel = "rcs"
        elif "SMS" in channels and profile.sms:
            channel = "sms"
        else:
            channel = "none"
        message = SentMessage(
            registration=registration,
            phone=phone,
            message_id=reference,
            channel=channel,
            content=rich if channel == "rcs" else None,
            text=text,
            cm_number=number,
        )
        self.messages[key] = message
        self.last_message[phone] = message
        self.tallies["cm_accepted"] += 1
        if channel == "rcs":
            message.timer = self._later(self._delay("delivered"), self._cm_deliver, message)
        else:
            message.timer = self._later(self._delay("sms_delivered"), self._cm_deliver, message)
        return "accepted"

    def _cm_deliver(self, message: SentMessage) -> None:
        message.timer = None
        if message.state != "pending":
            return
        if message.channel == "none":
            message.state = "failed"
            self.tallies["cm_failed"] += 1
            self._cm_status(message, 3, "SMS", error_code=8, error="Unknown subscriber")
            return
        message.state = "delivered"
        self._receive(message, message.channel)
        channel = "RCS" if message.channel == "rcs" else "SMS"
        self._cm_status(message, 2, channel)
        self._script(message.phone, "delivered", message)
        if message.channel == "rcs" and self.mix.profile_for(message.phone).reads:
            self._later(self._delay("read"), self._cm_read, message)

    def _cm_read(self, message: SentMessage) -> None:
        self._cm_status(message, 4, "RCS")
        self._script(message.phone, "read", message)

    def _cm_status(self, message: SentMessage, code: int, channel: str, error_code=None, error=None) -> None:
        self.tallies[f"cm_status_{code}"] += 1
        registration = message.registration
        report = {
            "messages": {
                "msg": [
                    {
                        "received": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "to": message.cm_number,
                        "reference": message.message_id,
                        "status": {"code": code, "errorCode": error_code, "errorDescription": error},
                        "operator": self.mix.operator_for(message.phone),
                        "channel": channel,
                        "standardErrorText": error,
                    }
                ]
            }
        }
        body = json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode()
        self._submit(Webhook(registration.webhook_url, body, {"Content-Type": "application/json"}, f"cm_{code}"))

    # -- agent events (read receipts the agent sends for the person's messages) ------------------
    def rbm_agent_event(self, registration: Registration, phone: str, event: dict, event_id: str) -> None:
        events = self.agent_events[phone]
        if event_id and any(seen.get("event_id") == event_id for seen in events):
            self.tallies["rbm_agent_event_duplicates"] += 1
            return
        events.append({"event_id": event_id, "event_type": event.get("eventType"),
                       "message_id": event.get("messageId", ""), "agent_id": registration.agent_id})
        self.tallies[f"rbm_agent_event_{str(event.get('eventType', '')).lower()}"] += 1

    # -- scripted replies ------------------------------------------------------------------------
    def add_script(self, phone: str, trigger: str, reply: dict) -> None:
        if trigger not in ("delivered", "read"):
            raise ValueError("trigger must be delivered or read")
        _check_reply(reply)
        self.scripts[phone].append({"trigger": trigger, "reply": reply})

    def _script(self, phone: str, trigger: str, message: SentMessage) -> None:
        scripts = self.scripts.get(phone)
        if not scripts:
            return
        for index, script in enumerate(scripts):
            if script["trigger"] == trigger:
                scripts.pop(index)
                self._later(self._delay("reply"), self.user_reply, phone, script["reply"], message)
                return

    def user_reply(self, phone: str, reply: dict, message: SentMessage | None = None) -> bool:
        """The person answers (text, postback, location or file) on the channel last used."""
        _check_reply(reply)
        message = message or self.last_message.get(phone)
        if message is None:
            return False
        self.tallies[f"reply_{reply['type']}"] += 1
        if message.registration.kind == "rbm":
            payload = {
                "senderPhoneNumber": phone,
                "messageId": "MxU" + uuid.uuid4().hex,
                "sendTime": now_rfc3339(),
                "agentId": message.registration.agent_id,
            }
            kind = reply["type"]
            if kind == "text":
                payload["text"] = reply["text"]
            elif kind == "postback":
                payload["suggestionResponse"] = {
                    "postbackData": reply["postback"],
                    "text": reply.get("text", reply["postback"]),
                    "type": "REPLY",
                }
            elif kind == "location":
                payload["location"] = {"latitude": reply["latitude"], "longitude": reply["longitude"]}
            else:
                payload["userFile"] = {
                    "payload": {
                        "mimeType": reply.get("mime", "image/jpeg"),
                        "fileSizeBytes": reply.get("size", 1024),
                        "fileUri": reply["url"],
                        "fileName": reply.get("name", "file"),
                    }
                }
            self._rbm_post(message.registration, payload, "user_message")
            return True
        inbound = {
            "reference": str(uuid.uuid4()),
            "messageContext": "",
            "from": {"number": message.cm_number or "00" + phone.lstrip("+"), "name": ""},
            "to": {"number": "TESTSHOP"},
            "message": {},
            "groupings": [],
            "time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "timeUtc": now_rfc3339(),
            "channel": "RCS" if message.channel == "rcs" else "SMS",
        }
        kind = reply["type"]
        if kind == "text":
            inbound["message"]["text"] = reply["text"]
        elif kind == "postback":
            # CM.com sends the postback data of a tapped chip as the text of the MO.
            inbound["message"]["text"] = reply["postback"]
            inbound["message"]["custom"] = {"postbackdata": reply["postback"]}
        elif kind == "location":
            inbound["message"]["location"] = {"latitude": reply["latitude"], "longitude": reply["longitude"]}
        else:
            inbound["message"]["media"] = {"mediaUri": reply["url"], "contentType": reply.get("mime", "image/jpeg")}
        body = json.dumps(inbound, ensure_ascii=False, separators=(",", ":")).encode()
        self._submit(Webhook(message.registration.webhook_url, body, {"Content-Type": "application/json"}, "cm_mo"))
        return True

    # -- reading back ----------------------------------------------------------------------------
    def inbox(self, phone: str) -> dict:
        profile = self.mix.profile_for(phone)
        entries = sorted(self.inboxes.get(phone, {}).values(), key=lambda e: e.first_at)
        return {"phone": phone, "profile": profile.name, "messages": [e.public() for e in entries]}

    def inbox_summary(self) -> dict:
        """Exactly-once evidence at scale: handsets that got a message twice, or on both channels."""
        duplicates, both = [], []
        messages = 0
        for phone, inbox in self.inboxes.items():
            seen: dict[str, set] = defaultdict(set)
            for (channel, message_id), entry in inbox.items():
                messages += 1
                if entry.count > 1:
                    duplicates.append({"phone": phone, "message_id": message_id, "count": entry.count})
                base = _base_id(message_id)
                seen[base].add(channel)
            for base, channels in seen.items():
                if len(channels) > 1:
                    both.append({"phone": phone, "message_id": base})
        return {
            "handsets": len(self.inboxes),
            "messages": messages,
            "duplicates": duplicates[:100],
            "duplicate_count": len(duplicates),
            "both_channels": both[:100],
            "both_channels_count": len(both),
        }

    def message_ids(self) -> list[str]:
        """Every message id a handset received, once each; an SMS leg counts as its message."""
        return sorted({_base_id(message_id) for inbox in self.inboxes.values() for _channel, message_id in inbox})

    def profile_counts(self) -> dict:
        return dict(Counter(self.mix.profile_for(phone).name for phone in self.inboxes))


def _base_id(message_id: str) -> str:
    """The message an id belongs to: an SMS leg's id is the message's with "-sms" appended."""
    return message_id[:-4] if message_id.endswith("-sms") else message_id


def _token(registration: Registration) -> str:
    return registration.bearer_token if registration.kind == "rbm" else registration.product_token


def _check_reply(reply: dict) -> None:
    kind = reply.get("type") if isinstance(reply, dict) else None
    required = {"text": ("text",), "postback": ("postback",), "location": ("latitude", "longitude"), "file": ("url",)}
    if kind not in required:
        raise ValueError("reply type must be text, postback, location or file")
    for key in required[kind]:
        if reply.get(key) in (None, ""):
            raise ValueError(f"reply.{key} is required")


__all__ = ["Carrier", "Registration", "PROFILES", "rbm_signature"]
