"""Outbound webhooks: a queue of signed callbacks posted by a pool of workers, with "hold" mode.

In hold mode every callback that falls due is kept back (counted, not posted); ``release()`` then
posts all of them as fast as the console accepts them, and ``release_stats`` tells how many were
sent and acknowledged and how long it took — the fan-out benchmark's second phase.
A callback answered 5xx or not at all is retried with back-off (as Pub/Sub does); a 4xx is final.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Webhook:
    url: str
    body: bytes
    headers: dict[str, str]
    label: str = ""
    attempts: int = 0


@dataclass
class ReleaseStats:
    started_at: float | None = None
    finished_at: float | None = None
    target: int = 0
    done_at_start: int = 0
    acknowledged_at_start: int = 0
    extra: dict = field(default_factory=dict)


class WebhookPoster:
    def __init__(self, concurrency: int = 32, max_attempts: int = 5, timeout: float = 10.0):
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.hold = False
        self.held: list[Webhook] = []
        self.tallies: Counter = Counter()
        self.release = ReleaseStats()
        self.queue: asyncio.Queue[Webhook] | None = None
        self.session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task] = []

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
        )
        self.set_concurrency(self.concurrency)

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        self._workers.clear()
        if self.session is not None:
            await self.session.close()

    def set_concurrency(self, concurrency: int) -> None:
        concurrency = max(1, int(concurrency))
        if self.queue is None:  # not started yet: start() spawns the workers
            self.concurrency = concurrency
            return
        while len(self._workers) < concurrency:
            self._workers.append(asyncio.ensure_future(self._worker()))
        while len(self._workers) > concurrency:
            self._workers.pop().cancel()
        self.concurrency = concurrency

    # -- submitting ------------------------------------------------------------------------------
    def submit(self, hook: Webhook) -> None:
        if not hook.url:
            self.tallies["dropped_no_target"] += 1
            return
        self.tallies["created"] += 1
        if self.hold:
            self.held.append(hook)
            return
        self.queue.put_nowait(hook)

    def do_release(self, concurrency: int | None = None) -> int:
        """Post every held callback now; returns how many were released. Hold mode ends."""
        if concurrency:
            self.set_concurrency(concurrency)
        held, self.held = self.held, []
        self.hold = False
        self.release = ReleaseStats(
            started_at=time.monotonic(),
            target=len(held),
            done_at_start=self._done(),
            acknowledged_at_start=self.tallies["acknowledged"],
        )
        for hook in held:
            self.queue.put_nowait(hook)
        if not held:
            self.release.finished_at = self.release.started_at
        return len(held)

    def clear(self) -> None:
        self.held.clear()
        if self.queue is not None:
            while not self.queue.empty():
                self.queue.get_nowait()
                self.queue.task_done()
        self.tallies.clear()
        self.release = ReleaseStats()
        self.hold = False

    async def drain(self, timeout: float = 60.0) -> bool:
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
            return True
        except TimeoutError:
            return False

    # -- reporting -------------------------------------------------------------------------------
    def _done(self) -> int:
        return self.tallies["acknowledged"] + self.tallies["rejected"] + self.tallies["failed"]

    def stats(self) -> dict:
        release = self.release
        released_done = self._done() - release.done_at_start if release.started_at else 0
        if release.started_at and release.finished_at is None and released_done >= release.target:
            release.finished_at = time.monotonic()
        elapsed = None
        if release.started_at is not None:
            elapsed = (release.finished_at or time.monotonic()) - release.started_at
        acknowledged = self.tallies["acknowledged"] - release.acknowledged_at_start if release.started_at else 0
        return {
            "hold": self.hold,
            "held": len(self.held),
            "queued": self.queue.qsize() if self.queue is not None else 0,
            "created": self.tallies["created"],
            "posted": self.tallies["posted"],
            "acknowledged": self.tallies["acknowledged"],
            "rejected": self.tallies["rejected"],
            "retried": self.tallies["retried"],
            "failed": self.tallies["failed"],
            "dropped_no_target": self.tallies["dropped_no_target"],
            "concurrency": self.concurrency,
            "release": {
                "released": release.target,
                "done": released_done,
                "acknowledged": acknowledged,
                "finished": release.finished_at is not None,
                "elapsed_s": round(elapsed, 4) if elapsed is not None else None,
                "acknowledged_per_s": round(acknowledged / elapsed, 1) if elapsed else None,
            },
        }

    # -- posting ---------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            hook = await self.queue.get()
            try:
                await self._post(hook)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must survive anything one callback does
                self.tallies["failed"] += 1
            finally:
                self.queue.task_done()

    async def _post(self, hook: Webhook) -> None:
        while True:
            hook.attempts += 1
            self.tallies["posted"] += 1
            status = 0
            try:
                async with self.session.post(hook.url, data=hook.body, headers=hook.headers) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError):
                status = 0
            if 200 <= status < 300:
                self.tallies["acknowledged"] += 1
                return
            if 400 <= status < 500:
                self.tallies["rejected"] += 1
                self.tallies[f"rejected_{status}"] += 1
                return
            if hook.attempts >= self.max_attempts:
                self.tallies["failed"] += 1
                return
            self.tallies["retried"] += 1
            await asyncio.sleep(min(5.0, 0.1 * 2 ** (hook.attempts - 1)))
