"""The webhook receiver for high receipt rates: an ASGI app that commits concurrent requests together.

Every message brings two or more callbacks (delivered, read), one per HTTP request in the Pub/Sub
push format, so the receipt path must do little per request while still storing each event durably
before it answers 200. Here each request is verified and parsed on the event loop; its events join
a queue; one writer drains the queue and stores everything waiting in one INSERT (one commit) on a
dedicated database thread, then answers all those requests at once. Under load a commit carries
hundreds of events; when idle it carries one, with no added wait.

It shares verification, parsing and storage with the Django views in messaging/webhooks.py (both
use messaging/webhook_intake.py), and answers exactly as they do: 403 and nothing stored on a bad signature, the RBM handshake echoed,
200 once stored. config/asgi.py routes /messaging/webhooks/ here and everything else to Django.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, reset_queries

from core import stage_cpu
from messaging.webhook_intake import cached_gateway, enqueue_buffer, gateway_adapter, provider_events_store

logger = logging.getLogger(__name__)

# As messaging/urls.py routes them: RBM by gateway id; CM by gateway id and the callback secret.
PATH = re.compile(r"^/messaging/webhooks/(?:(?P<kind>rbm)/(?P<gateway_id>\d+)/|(?P<cm>cm)/(?P<cm_id>\d+)/(?P<secret>[^/]+)/)$")
MAX_BODY = 1024 * 1024
MAX_BATCH = 1000


class Headers:
    """Case-insensitive header access, as the adapters expect (``headers.get(name)``)."""

    def __init__(self, raw):
        self._headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}

    def get(self, name, default=None):
        return self._headers.get(name.lower(), default)

    def __getitem__(self, name):
        return self._headers[name.lower()]

    def __contains__(self, name):
        return name.lower() in self._headers


class ReceiptReceiver:
    def __init__(self):
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="receipts-db")
        self._queue: asyncio.Queue | None = None
        self._writer: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        match = PATH.match(scope["path"])
        if scope["method"] != "POST" or not match:
            await _answer(send, 404)
            return
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413)
            return
        kind = match["kind"] or match["cm"]
        loop = asyncio.get_running_loop()
        gateway = await self._gateway(loop, int(match["gateway_id"] or match["cm_id"]), kind)
        if gateway is None:
            await _answer(send, 404)
            return
        if kind == "rbm":
            answer = gateway.handshake(body)
            if answer is not None:
                await _answer(send, 200, json.dumps(answer).encode(), b"application/json")
                return
        with stage_cpu.stage("receipt_store"):  # no await inside: this request's own CPU
            verified = gateway.verify_webhook(Headers(scope["headers"]), body, match["secret"] or "")
            try:
                events = gateway.parse_events(body) if verified else []
            except ValueError:
                events = None
        if not verified:
            await _answer(send, 403)
            return
        if events is None:
            await _answer(send, 400)
            return
        for event in events:
            event.gateway_id = gateway.account.pk
        if events:
            stored = loop.create_future()
            self._ensure_writer()
            await self._queue.put((gateway.kind, events, stored))
            try:
                await stored
            except Exception:
                logger.exception("storing provider events failed")
                await _answer(send, 503)
                return
        await _answer(send, 200)

    async def _gateway(self, loop, gateway_id: int, kind: str):
        """The gateway's adapter: from the cache on the event loop, from the database thread on a miss."""
        found, gateway = cached_gateway(gateway_id, kind)
        if found:
            return gateway
        return await loop.run_in_executor(self._db, _gateway, gateway_id, kind)

    def _ensure_writer(self):
        if self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    async def _write_forever(self):
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await loop.run_in_executor(self._db, _store_and_enqueue, [(k, e) for k, e, _ in batch])
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)


def _gateway(gateway_id: int, kind: str):
    close_old_connections()
    return gateway_adapter(gateway_id, kind)


def _store_and_enqueue(items) -> None:
    """One INSERT per provider for everything waiting, committed before any request is answered."""
    close_old_connections()
    # This thread never starts a request, so with DEBUG on (the embedded default) nothing else would
    # empty the query log, which keeps up to 9,000 of these large INSERTs.
    reset_queries()
    with stage_cpu.stage("receipt_store"):
        by_provider = defaultdict(list)
        for kind, events in items:
            by_provider[kind].extend(events)
        new_ids: list[int] = []
        for provider, events in by_provider.items():
            new_ids.extend(provider_events_store(provider, events))
        if new_ids:
            enqueue_buffer.add(new_ids)  # one apply task per ~50 ms, not one per commit
    stage_cpu.flush()


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send, status: int, body: bytes = b"", content_type: bytes = b"text/plain"):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


receipt_receiver = ReceiptReceiver()
