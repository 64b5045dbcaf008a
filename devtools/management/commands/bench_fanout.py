"""Benchmark the fan-out engine end to end against the sandbox carrier; prints one JSON line.

Phase one (sends; the sandbox holds every receipt back): launch → last send, compared with a bare
aiohttp client against the same sandbox in the same run, plus exactly-once evidence read from the
sandbox's handset inboxes and the bulk worker processes' peak resident memory.
Phase two (receipts): the sandbox posts every held DELIVERED/READ/status webhook, signed, as fast
as the console (uvicorn config.asgi, the batching receipt receiver) accepts them; we measure until
the counters hold them all.

It starts what it needs — the sandbox, the web server, Celery workers — on the configured
DATABASE_URL and REDIS_URL (PostgreSQL and Redis; the embedded default is not a benchmark target),
and removes its data afterwards unless --keep.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import aiohttp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from devtools.harness import Processes, SandboxAdmin, bench_campaign, bench_cleanup, child_env
from messaging.counters import counters_fold
from messaging.runs import campaign_start
from messaging.stats import campaign_stats

BENCH_MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) among a process and its descendants."""
    peak = 0
    for process in descendants(pid):
        try:
            with open(f"/proc/{process}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return round(peak / 1024, 1)


class Command(BaseCommand):
    help = "Run a campaign end to end against the sandbox and print sends and receipts figures as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--recipients", type=int, default=100_000)
        parser.add_argument("--rate", type=int, default=50_000, help="the gateway accounts' sends per second")
        parser.add_argument("--raw-messages", type=int, default=20_000)
        parser.add_argument("--web-workers", type=int, default=2)
        # A dispatch process waits on the carrier or the database about half the time: two per core.
        parser.add_argument("--worker-processes", type=int, default=4, help="the bulk worker's -c")
        parser.add_argument("--chains", type=int, default=8, help="DISPATCH_CHAINS: batches of one campaign in flight")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's data")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("bench_fanout needs DATABASE_URL (PostgreSQL) and REDIS_URL (Redis).")
        with Processes("bench-fanout", child_env()) as processes:
            result = self._run(processes, options)
        self.stdout.write(json.dumps(result))

    def _run(self, processes: Processes, options):
        n = options["recipients"]
        sandbox = processes.sandbox()
        # The baseline runs while nothing else does: one run to warm the sandbox up, then the median of three.
        count = options["raw_messages"]
        self._raw_baseline(sandbox, count)
        raw_runs = [self._raw_baseline(sandbox, count, first=count * run) for run in (1, 2, 3)]
        raw = statistics.median(raw_runs)
        web = processes.web("web", "config.asgi:application", "/messaging/webhooks/", workers=options["web_workers"])
        sandbox.call("POST", "reset", {"registrations": True})
        sandbox.call("POST", "config", {"profile_mix": BENCH_MIX, "hold": True, "webhook_concurrency": 64,
                                        "latencies_ms": {"delivered": [0, 5], "read": [0, 5], "sms_delivered": [0, 5]}})

        organization, _account, campaign, _user = bench_campaign("bench-fanout", n, options["rate"], sandbox, web)
        worker = processes.celery_worker("worker", "celery,priority", concurrency=options["worker_processes"],
                                         env={"DISPATCH_CHAINS": str(options["chains"])})
        processes.celery_beat()
        time.sleep(3)  # let the worker connect

        started = time.monotonic()
        campaign_start(campaign)
        accepted = 0
        while accepted < n:
            tallies = sandbox.call("GET", "tallies")["carrier"]
            accepted = tallies.get("rbm_accepted", 0) + tallies.get("cm_accepted", 0)
            if time.monotonic() - started > 3600:
                break
            time.sleep(0.2)
        send_seconds = time.monotonic() - started
        summary = sandbox.call("GET", "inboxes")
        worker_rss = peak_rss_mb(worker.pid)

        # Phase two: every held receipt, as fast as the console takes them.
        posted_events = tallies.get("rbm_event_delivered", 0) + tallies.get("rbm_event_read", 0) + tallies.get(
            "cm_status_2", 0
        )
        receipts_started = time.monotonic()
        sandbox.call("POST", "release", {"concurrency": 128, "wait": False})
        applied = self._wait_counters(campaign, posted_events, receipts_started)
        receipts_seconds = time.monotonic() - receipts_started
        release = sandbox.call("GET", "webhooks")

        result = {
            "recipients": n,
            "sends_per_s": round(n / send_seconds, 1),
            "raw_sends_per_s": raw,
            "raw_runs": raw_runs,
            "ratio": round((n / send_seconds) / raw, 3) if raw else None,
            "duplicates": summary["duplicate_count"] + summary["both_channels_count"],
            "missing": n - summary["handsets"],
            "worker_peak_rss_mb": worker_rss,
            "seconds": round(send_seconds, 2),
            "receipts": posted_events,
            "receipts_per_s": round(applied / receipts_seconds, 1) if receipts_seconds else None,
            "receipts_lost": posted_events - applied,
            "receipts_http_acknowledged": release.get("acknowledged"),
        }
        if not options["keep"]:
            bench_cleanup(organization)
        return result

    def _raw_baseline(self, sandbox: SandboxAdmin, count: int, first: int = 0) -> float:
        """A bare aiohttp client posting RBM sends straight to the sandbox: the ceiling we compare with."""
        sandbox.call("POST", "gateways", {"kind": "rbm", "agent_id": "raw", "bearer_token": "raw-bearer",
                                          "client_token": "raw-client", "webhook_url": ""})
        sandbox.call("POST", "config", {"profile_mix": {"android_plus_message": 1}, "hold": True})
        body = json.dumps({"contentMessage": {"text": "raw baseline"}, "messageTrafficType": "TRANSACTION"})

        async def run():
            connector = aiohttp.TCPConnector(limit=64)
            headers = {"Authorization": "Bearer raw-bearer", "Content-Type": "application/json"}
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                limiter = asyncio.Semaphore(64)

                async def one(i):
                    async with limiter:
                        url = (f"{sandbox.url}/v1/phones/%2B8180{50000000 + i:08d}/agentMessages"
                               f"?messageId=raw-{i}&agentId=raw")
                        async with session.post(url, data=body) as response:
                            await response.read()

                started = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(first, first + count)))
                return count / (time.perf_counter() - started)

        return round(asyncio.run(run()), 1)

    def _wait_counters(self, campaign, expected, started, timeout=1800) -> int:
        applied, last_change, previous = 0, time.monotonic(), -1
        while applied < expected:
            stats = campaign_stats(campaign)
            applied = stats["delivered"] + stats["read"]
            if applied != previous:
                previous, last_change = applied, time.monotonic()
            if time.monotonic() - last_change > 60 or time.monotonic() - started > timeout:
                break  # nothing moved for a minute: what is missing is lost
            time.sleep(0.1)
        counters_fold()
        return applied
