"""The sandbox's ASGI application: the RBM and CM.com endpoints plus the loopback-only admin API.

A bare ASGI callable (no framework) keeps the per-request work small: the sandbox must never be
the bottleneck of a benchmark. Carrier endpoints:

    GET    /v1/phones/{e164}/capabilities
    POST   /v1/users:batchGet
    POST   /v1/phones/{e164}/agentMessages?messageId=…&agentId=…
    DELETE /v1/phones/{e164}/agentMessages/{messageId}?agentId=…
    POST   /v1/phones/{e164}/agentEvents?eventId=…&agentId=…   (READ receipts for user messages)
    POST   /v1.0/message                                   (CM.com Business Messaging)

Admin endpoints (127.0.0.1 / ::1 only) live under /_sandbox/ — see ``ADMIN_HELP``.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs, unquote

from sandbox.carrier import RBM_FEATURES, Carrier, Registration
from sandbox.profiles import PROFILES
from sandbox.webhooks import WebhookPoster
from sandbox.wire import (
    CM_BATCH_MAX,
    E164,
    cm_canonical,
    cm_message_problems,
    rbm_agent_message_problems,
    rbm_ttl_seconds,
)

LOOPBACK = {"127.0.0.1", "::1"}
JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]

ADMIN_HELP = {
    "GET /_sandbox/health": "liveness",
    "GET /_sandbox/config": "current mix, overrides, latencies, faults, rate limit, hold",
    "POST /_sandbox/config": "{profile_mix?, profile_overrides?, carrier_overrides?, latencies_ms?, faults?, rate_limit?: {rate, burst}, "
    "hold?, webhook_concurrency?}",
    "POST /_sandbox/gateways": "{kind: rbm, gateway_id?, agent_id, bearer_token, client_token, webhook_url} or "
    "{kind: cm, gateway_id?, product_token, callback_secret?, webhook_url}",
    "GET /_sandbox/gateways": "registered gateways (no secrets)",
    "GET /_sandbox/profiles/{e164}": "the handset's profile and carrier (ported or not)",
    "GET /_sandbox/inbox/{e164}": "what the person received: message_id, channel, count",
    "GET /_sandbox/inboxes": "exactly-once summary over every handset",
    "GET /_sandbox/message-ids": "every message id a handset received, once each (an SMS leg's without -sms)",
    "POST /_sandbox/replies": "{phone, trigger: delivered|read|now, reply: {type: text|postback|location|file, …}}",
    "GET /_sandbox/tallies": "counters of the carrier and of the webhooks",
    "GET /_sandbox/agent-events/{e164}": "agent events (READ receipts) the handset received",
    "POST /_sandbox/hold": "{hold: true|false}",
    "POST /_sandbox/release": "{concurrency?, wait?: bool, timeout?} post every held webhook now",
    "GET /_sandbox/webhooks": "webhook counters and the last release's progress",
    "POST /_sandbox/reset": "{registrations?: bool} forget messages, inboxes, tallies, faults, held webhooks",
}


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _google_error(status: int, state: str, message: str) -> bytes:
    return _dumps({"error": {"code": status, "message": message, "status": state}})


class SandboxApp:
    def __init__(self, carrier: Carrier | None = None, poster: WebhookPoster | None = None):
        self.poster = poster or WebhookPoster()
        self.carrier = carrier or Carrier(self.poster)
        self.pending_registrations: list[Registration] = []
        # Optional: a blocking callable that returns registrations (runsandbox reads the gateway
        # accounts from the database), tried again when an unknown token shows up.
        self.reloader = None
        self._reloaded_at = 0.0

    # -- ASGI plumbing ---------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.poster.start()
                for registration in self.pending_registrations:
                    self.carrier.register(registration)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.poster.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope, receive, send):
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, payload, headers = await self.route(scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def route(self, scope, body: bytes):
        path = scope["path"]
        method = scope["method"]
        try:
            if path.startswith("/v1/phones/"):
                return await self.rbm_phone(scope, method, unquote(path[len("/v1/phones/") :]), body)
            if path == "/v1/users:batchGet" and method == "POST":
                return await self.rbm_batch_get(scope, body)
            if path == "/v1.0/message" and method == "POST":
                return await self.cm_message(scope, body)
            if path.startswith("/_sandbox/"):
                client = scope.get("client")
                if not client or client[0] not in LOOPBACK:
                    return 403, _dumps({"error": "the admin API answers loopback peers only"}), JSON_HEADERS
                return await self.admin(scope, method, path[len("/_sandbox/") :].strip("/"), body)
        except _BadRequest as error:
            return error.status, error.body, error.headers
        return 404, _google_error(404, "NOT_FOUND", "no such endpoint"), JSON_HEADERS

    # -- shared checks ---------------------------------------------------------------------------
    async def reload_registrations(self) -> None:
        """Pick up gateway accounts created after start-up (at most once every 2 seconds)."""
        if self.reloader is None or time.monotonic() - self._reloaded_at < 2.0:
            return
        self._reloaded_at = time.monotonic()
        try:
            registrations = await asyncio.to_thread(self.reloader)
        except Exception:  # the database is optional for the sandbox
            return
        for registration in registrations:
            self.carrier.register(registration)

    async def _rbm_registration(self, scope) -> Registration:
        authorization = _header(scope, b"authorization")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        registration = self.carrier.rbm_by_token.get(token)
        if registration is None and token:
            await self.reload_registrations()
            registration = self.carrier.rbm_by_token.get(token)
        if registration is None:
            raise _BadRequest(401, _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."))
        query = _query(scope)
        agent = query.get("agentId")
        if agent is not None and registration.agent_id and agent != registration.agent_id:
            raise _BadRequest(401, _google_error(401, "UNAUTHENTICATED", "The token does not belong to this agent."))
        return registration

    async def _guard(self, key: str, amount: float = 1.0, *, google: bool = True):
        """Rate limit and injected faults shared by every carrier endpoint. Returns the fault to
        apply after processing ("timeout" in after_accept mode) or None."""
        wait = self.carrier.throttle(key, amount)
        if wait:
            body = (
                _google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.")
                if google
                else _dumps({"details": "Too many requests", "errorCode": 429, "messages": []})
            )
            raise _BadRequest(429, body, [*JSON_HEADERS, (b"retry-after", str(wait).encode())])
        fault = self.carrier.fault(key)
        if fault == "error":
            status = int(self.carrier.faults["error_status"])
            body = _google_error(status, "UNAVAILABLE", "The service is currently unavailable.") if google else _dumps(
                {"details": "Internal error", "errorCode": 999, "messages": []}
            )
            raise _BadRequest(status, body)
        if fault == "timeout":
            if self.carrier.faults["timeout_mode"] != "after_accept":
                await asyncio.sleep(self.carrier.faults["timeout_seconds"])
                raise _BadRequest(504, _google_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded."))
            return "timeout"
        return None

    async def _after(self, fault):
        if fault == "timeout":
            await asyncio.sleep(self.carrier.faults["timeout_seconds"])

    # -- RBM -------------------------------------------------------------------------------------
    async def rbm_phone(self, scope, method, rest: str, body: bytes):
        phone, _, tail = rest.partition("/")
        registration = await self._rbm_registration(scope)
        if not E164.match(phone):
            raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "The phone number must be E.164."))
        fault = await self._guard(registration.bearer_token)
        if tail == "capabilities" and method == "GET":
            capable = self.carrier.rbm_capable(phone)
            await self._after(fault)
            if not capable:
                return 404, _google_error(404, "NOT_FOUND", "Requested entity was not found."), JSON_HEADERS
            return 200, _dumps({"features": RBM_FEATURES, "operator": self.carrier.mix.operator_for(phone)}), JSON_HEADERS
        if tail == "agentMessages" and method == "POST":
            return await self.rbm_send(scope, registration, phone, body, fault)
        if tail == "agentEvents" and method == "POST":
            try:
                event = json.loads(body)
            except ValueError:
                raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload.")) from None
            if not isinstance(event, dict) or event.get("eventType") not in ("READ", "IS_TYPING"):
                raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "eventType must be READ or IS_TYPING."))
            if event["eventType"] == "READ" and not event.get("messageId"):
                raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "messageId is required for READ."))
            self.carrier.rbm_agent_event(registration, phone, event, _query(scope).get("eventId", ""))
            await self._after(fault)
            return 200, _dumps({"name": f"phones/{phone}/agentEvents/{_query(scope).get('eventId', '')}"}), JSON_HEADERS
        if tail.startswith("agentMessages/") and method == "DELETE":
            message_id = tail[len("agentMessages/") :]
            revoked = self.carrier.rbm_revoke(registration, message_id)
            await self._after(fault)
            if revoked:
                return 200, b"{}", JSON_HEADERS
            return 404, _google_error(404, "NOT_FOUND", "Requested entity was not found."), JSON_HEADERS
        return 404, _google_error(404, "NOT_FOUND", "no such endpoint"), JSON_HEADERS

    async def rbm_send(self, scope, registration, phone, body: bytes, fault):
        message_id = _query(scope).get("messageId")
        if not message_id:
            raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "messageId is required."))
        try:
            document = json.loads(body)
        except ValueError:
            raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload.")) from None
        problems = rbm_agent_message_problems(document)
        if problems:
            self.carrier.tallies["rbm_invalid"] += 1
            raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", problems[0]))
        outcome = self.carrier.rbm_accept(registration, phone, message_id, document, rbm_ttl_seconds(document))
        await self._after(fault)
        if outcome == "not_reachable":
            return 404, _google_error(404, "NOT_FOUND", "Requested entity was not found."), JSON_HEADERS
        if outcome == "duplicate":
            return 409, _google_error(409, "ALREADY_EXISTS", "Requested entity already exists"), JSON_HEADERS
        return 200, _dumps({"name": f"phones/{phone}/agentMessages/{message_id}"}), JSON_HEADERS

    async def rbm_batch_get(self, scope, body: bytes):
        registration = await self._rbm_registration(scope)
        try:
            users = json.loads(body).get("users")
        except (ValueError, AttributeError):
            users = None
        if not isinstance(users, list) or len(users) > 10_000:
            raise _BadRequest(400, _google_error(400, "INVALID_ARGUMENT", "users: a list of at most 10,000 numbers."))
        fault = await self._guard(registration.bearer_token)
        reachable = [phone for phone in users if isinstance(phone, str) and self.carrier.rbm_capable(phone)]
        await self._after(fault)
        payload = {
            "reachableUsers": reachable,
            # Not in Google's published response: the network of each reachable number, as an
            # MCC-MNC code (see design.md, wire formats, notes).
            "reachableUserOperators": {phone: self.carrier.mix.operator_for(phone) for phone in reachable},
            "totalRandomSampleUserCount": len(users),
            "reachableRandomSampleUserCount": len(reachable),
        }
        return 200, _dumps(payload), JSON_HEADERS

    # -- CM.com ----------------------------------------------------------------------------------
    async def cm_message(self, scope, body: bytes):
        try:
            document = cm_canonical(json.loads(body))
            messages = document["messages"]
            token = _header(scope, b"x-cm-producttoken") or (messages.get("authentication") or {}).get("producttoken", "")
            msgs = messages["msg"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _BadRequest(400, _dumps({"details": "Invalid request", "errorCode": 201, "messages": []})) from None
        self.carrier.tallies["cm_requests"] += 1
        registration = self.carrier.cm_by_token.get(str(token))
        if registration is None and token:
            await self.reload_registrations()
            registration = self.carrier.cm_by_token.get(str(token))
        if registration is None:
            raise _BadRequest(
                401, _dumps({"details": "No account found for the given authentication", "errorCode": 101, "messages": []})
            )
        if not isinstance(msgs, list) or not msgs or len(msgs) > CM_BATCH_MAX:
            raise _BadRequest(
                400, _dumps({"details": f"1 to {CM_BATCH_MAX} messages per request", "errorCode": 201, "messages": []})
            )
        # Messages per request, by answer: shows a sender shrinking its batches after a 429.
        self.carrier.tallies[f"cm_batch:{len(msgs)}"] += 1
        try:
            fault = await self._guard(registration.product_token, len(msgs), google=False)
        except _BadRequest as refused:
            self.carrier.tallies[f"cm_batch_refused_{refused.status}:{len(msgs)}"] += 1
            raise
        results = []
        accepted = 0
        for msg in msgs:
            problems = cm_message_problems(msg)
            recipients = msg.get("to") if isinstance(msg, dict) and isinstance(msg.get("to"), list) else [{}]
            reference = msg.get("reference") if isinstance(msg, dict) else None
            for recipient in recipients:
                number = recipient.get("number", "") if isinstance(recipient, dict) else ""
                if problems:
                    self.carrier.tallies["cm_invalid"] += 1
                    results.append(
                        {
                            "to": number,
                            "status": "Rejected",
                            "reference": reference,
                            "parts": 0,
                            "messageDetails": problems[0],
                            "messageErrorCode": 304,
                        }
                    )
                    continue
                self.carrier.cm_accept(registration, msg, number)
                accepted += 1
                results.append(
                    {
                        "to": number,
                        "status": "Accepted",
                        "reference": reference,
                        "parts": 1,
                        "messageDetails": None,
                        "messageErrorCode": 0,
                    }
                )
        await self._after(fault)
        status = 200 if accepted else 400
        payload = {
            "details": f"Created {accepted} message(s)" if accepted else "No messages accepted",
            "errorCode": 0 if accepted else 201,
            "messages": results,
        }
        return status, _dumps(payload), JSON_HEADERS

    # -- admin -----------------------------------------------------------------------------------
    async def admin(self, scope, method, path: str, body: bytes):
        carrier = self.carrier
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise _BadRequest(400, _dumps({"error": "invalid JSON"})) from None
        try:
            if path in ("", "help"):
                return _ok(ADMIN_HELP)
            if path == "health":
                return _ok({"ok": True})
            if path == "config" and method == "GET":
                return _ok(self._config())
            if path == "config" and method == "POST":
                self._apply_config(data)
                return _ok(self._config())
            if path == "gateways" and method == "GET":
                return _ok({"gateways": [r.public() for r in carrier.registrations]})
            if path == "gateways" and method == "POST":
                fields = {k: data[k] for k in Registration.__dataclass_fields__ if k in data}
                carrier.register(Registration(**fields))
                return _ok({"gateways": [r.public() for r in carrier.registrations]})
            if path.startswith("profiles/"):
                phone = unquote(path[len("profiles/") :])
                profile = carrier.mix.profile_for(phone)
                return _ok(
                    {
                        "phone": phone,
                        "profile": profile.name,
                        "rcs_capable": profile.rcs,
                        "carrier": carrier.mix.carrier_for(phone),
                        "ported": carrier.mix.ported(phone),
                    }
                )
            if path.startswith("inbox/"):
                return _ok(carrier.inbox(unquote(path[len("inbox/") :])))
            if path == "inboxes":
                summary = carrier.inbox_summary()
                summary["profiles"] = carrier.profile_counts()
                return _ok(summary)
            if path == "replies" and method == "POST":
                phone = data.get("phone", "")
                trigger = data.get("trigger", "read")
                if trigger == "now":
                    if not carrier.user_reply(phone, data.get("reply") or {}):
                        return 404, _dumps({"error": "nothing was ever sent to this phone"}), JSON_HEADERS
                else:
                    carrier.add_script(phone, trigger, data.get("reply") or {})
                return _ok({"ok": True})
            if path.startswith("agent-events/"):
                phone = unquote(path[len("agent-events/") :])
                return _ok({"phone": phone, "events": carrier.agent_events.get(phone, [])})
            if path == "message-ids":
                return _ok({"message_ids": carrier.message_ids()})
            if path == "tallies":
                return _ok({"carrier": dict(carrier.tallies), "webhooks": self.poster.stats()})
            if path == "webhooks":
                return _ok(self.poster.stats())
            if path == "hold" and method == "POST":
                self.poster.hold = bool(data.get("hold", True))
                return _ok(self.poster.stats())
            if path == "release" and method == "POST":
                released = self.poster.do_release(data.get("concurrency"))
                if data.get("wait"):
                    await self.poster.drain(float(data.get("timeout", 120)))
                stats = self.poster.stats()
                stats["released_now"] = released
                return _ok(stats)
            if path == "reset" and method == "POST":
                carrier.reset()
                if data.get("registrations"):
                    carrier.registrations.clear()
                    carrier.rbm_by_token.clear()
                    carrier.cm_by_token.clear()
                return _ok({"ok": True})
        except (ValueError, TypeError, KeyError) as error:
            return 400, _dumps({"error": str(error)}), JSON_HEADERS
        return 404, _dumps({"error": "no such admin endpoint", "endpoints": ADMIN_HELP}), JSON_HEADERS

    def _config(self) -> dict:
        carrier = self.carrier
        return {
            "profiles": sorted(PROFILES),
            "profile_mix": carrier.mix.mix,
            "profile_overrides": carrier.mix.overrides,
            "carrier_overrides": carrier.mix.carrier_overrides,
            "latencies_ms": carrier.latencies,
            "faults": carrier.faults,
            "rate_limit": {"rate": carrier.rate, "burst": carrier.burst},
            "hold": self.poster.hold,
            "webhook_concurrency": self.poster.concurrency,
        }

    def _apply_config(self, data: dict) -> None:
        carrier = self.carrier
        if "profile_mix" in data:
            carrier.mix.set_mix(data["profile_mix"])
        if "profile_overrides" in data:
            carrier.mix.set_overrides(data["profile_overrides"])
        if "carrier_overrides" in data:
            carrier.mix.set_carrier_overrides(data["carrier_overrides"])
        if "latencies_ms" in data:
            carrier.set_latencies(data["latencies_ms"])
        if "faults" in data:
            carrier.set_faults(data["faults"])
        if "rate_limit" in data:
            limit = data["rate_limit"] or {}
            carrier.set_rate_limit(limit.get("rate"), limit.get("burst"))
        if "hold" in data:
            self.poster.hold = bool(data["hold"])
        if "webhook_concurrency" in data:
            self.poster.set_concurrency(int(data["webhook_concurrency"]))


class _BadRequest(Exception):
    def __init__(self, status: int, body: bytes, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or JSON_HEADERS


def _ok(value):
    return 200, _dumps(value), JSON_HEADERS


def _header(scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _query(scope) -> dict[str, str]:
    raw = scope.get("query_string") or b""
    if not raw:
        return {}
    return {key: values[0] for key, values in parse_qs(raw.decode("latin-1")).items()}
