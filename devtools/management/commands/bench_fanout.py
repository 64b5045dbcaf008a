"""Benchmark the fan-out engine end to end against the sandbox carrier; prints one JSON line.

Phase one (sends; the sandbox holds every receipt back): launch → last send, compared with a bare
aiohttp client against the same sandbox in the same run, plus exactly-once evidence read from the
sandbox's handset inboxes and the bulk worker processes' peak resident memory.
Phase two (receipts): the sandbox posts every held DELIVERED/READ/status webhook, signed, as fast
as the console (uvicorn config.asgi, the batching receipt receiver) accepts them; we measure until
the counters hold them all.

Both phases also report CPU seconds per 1,000 messages (``cpu_sends``, ``cpu_receipts``: the
worker, web and beat processes and the PostgreSQL backends serving them, by role and by engine stage;
devtools/cpu.py), a figure the machine's load moves far less than the rates.

``--workers 1,2 --chains 1,2,4`` sweeps: one run per combination (the bulk worker's processes, the
campaign's dispatch chains), one JSON line each, then a summary line with each combination's rate
against the first one's.

It starts what it needs — the sandbox, the web server, Celery workers — on the configured
DATABASE_URL and REDIS_URL (PostgreSQL and Redis; the embedded default is not a benchmark target),
and removes its data afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import aiohttp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core import stage_cpu
from devtools.cpu import CpuMeter, cpu_report, descendants
from devtools.harness import Processes, SandboxAdmin, bench_campaign, bench_cleanup, child_env, database_url
from messaging.counters import counters_fold
from messaging.runs import campaign_start
from messaging.stats import campaign_stats

BENCH_MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}


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


# The roles whose CPU is the product's (the sandbox carrier and this process are shown apart).
COUNTED = ("worker", "web", "beat")


def counts(value: str) -> list[int]:
    """A comma-separated list of positive integers (``1,2,4``), as the sweep's options take."""
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {value!r}") from error
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"need numbers of at least 1: {value!r}")
    return numbers


def sweep_combinations(options) -> list[tuple[int, int]]:
    """(worker processes, chains) for every run, fewest processes first."""
    return [(workers, chains) for workers in options["workers"] for chains in options["chains"]]


def sweep_summary(results: list[dict]) -> dict:
    """How the send rate grows with processes: each run's rate against the first run's."""
    base = results[0]["sends_per_s"] or 1.0
    return {
        "sweep": [
            {
                "workers": result["workers"], "chains": result["chains"], "sends_per_s": result["sends_per_s"],
                "ratio": result["ratio"], "speedup": round(result["sends_per_s"] / base, 2),
                "sends_per_s_per_process": round(result["sends_per_s"] / result["workers"], 1),
                "cpu_s_per_1000": result["cpu_sends"]["cpu_s_per_1000"],
            }
            for result in results
        ],
        "best": max(results, key=lambda result: result["sends_per_s"])["workers_chains"],
        "cpus": os.cpu_count(),
    }


class Command(BaseCommand):
    help = "Run a campaign end to end against the sandbox and print sends and receipts figures as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--recipients", type=int, default=100_000)
        parser.add_argument("--rate", type=int, default=50_000, help="the gateway accounts' sends per second")
        parser.add_argument("--raw-messages", type=int, default=20_000)
        parser.add_argument("--web-workers", type=int, default=2)
        # A dispatch process waits on the carrier or the database about half the time: two per core.
        parser.add_argument("--workers", type=counts, default=[4],
                            help="the bulk worker's -c; a comma-separated list sweeps (1,2,4)")
        parser.add_argument("--chains", type=counts, default=[8],
                            help="DISPATCH_CHAINS: batches of one campaign in flight; a list sweeps (1,2,4)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's data")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("bench_fanout needs DATABASE_URL (PostgreSQL) and REDIS_URL (Redis).")
        combinations = sweep_combinations(options)
        results = []
        with Processes("bench-fanout", child_env(), stage_cpu=True) as processes:
            sandbox = processes.sandbox()
            # The baseline runs while nothing else does: one run to warm the sandbox up, then the median of three.
            count = options["raw_messages"]
            self._raw_baseline(sandbox, count)
            raw_runs = [self._raw_baseline(sandbox, count, first=count * run) for run in (1, 2, 3)]
            web = processes.web("web", "config.asgi:application", "/messaging/webhooks/",
                                workers=options["web_workers"])
            with CpuMeter(processes.pids, processes.sessions, dsn=database_url(), stages=True) as meter:
                for workers, chains in combinations:
                    result = self._run(processes, meter, sandbox, web, raw_runs, workers, chains, options)
                    results.append(result)
                    self.stdout.write(json.dumps(result))
                    self.stdout.flush()
        if len(results) > 1:
            self.stdout.write(json.dumps(sweep_summary(results)))

    def _run(self, processes: Processes, meter: CpuMeter, sandbox: SandboxAdmin, web: str, raw_runs: list,
             workers: int, chains: int, options) -> dict:
        n = options["recipients"]
        raw = statistics.median(raw_runs)
        sandbox.call("POST", "reset", {"registrations": True})
        stage_cpu.reset()
        sandbox.call("POST", "config", {"profile_mix": BENCH_MIX, "hold": True, "webhook_concurrency": 64,
                                        "latencies_ms": {"delivered": [0, 5], "read": [0, 5], "sms_delivered": [0, 5]}})

        organization, _account, campaign, _user = bench_campaign("bench-fanout", n, options["rate"], sandbox, web)
        worker = processes.celery_worker("worker", "celery,priority", concurrency=workers,
                                         env={"DISPATCH_CHAINS": str(chains)})
        beat = processes.celery_beat()
        time.sleep(3)  # let the worker connect

        sends_before = meter.sample()
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
        cpu_sends = cpu_report(sends_before, meter.sample(), n, COUNTED)
        summary = sandbox.call("GET", "inboxes")
        worker_rss = peak_rss_mb(worker.pid)

        # Phase two: every held receipt, as fast as the console takes them (counted once the carrier
        # has made them all: the last sends' events may be tallied a moment after the sends).
        time.sleep(0.5)
        tallies = sandbox.call("GET", "tallies")["carrier"]
        posted_events = tallies.get("rbm_event_delivered", 0) + tallies.get("rbm_event_read", 0) + tallies.get(
            "cm_status_2", 0
        )
        receipts_before = meter.sample()
        receipts_started = time.monotonic()
        sandbox.call("POST", "release", {"concurrency": 128, "wait": False})
        applied = self._wait_counters(campaign, posted_events, receipts_started)
        receipts_seconds = time.monotonic() - receipts_started
        time.sleep(0.5)  # the last apply task's stage figures are flushed as it ends
        receipts_after = meter.sample()
        cpu_receipts = cpu_report(receipts_before, receipts_after, applied, COUNTED)
        cpu_all = cpu_report(sends_before, receipts_after, n, COUNTED)
        release = sandbox.call("GET", "webhooks")
        processes.stop(beat)
        processes.stop(worker)

        result = {
            "workers_chains": f"{workers}x{chains}",
            "workers": workers,
            "chains": chains,
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
            # CPU seconds per 1,000 messages sent (sends), per 1,000 receipts applied (receipts), and
            # per 1,000 messages for both phases together (cpu_s_per_1000_messages).
            "cpu_s_per_1000_messages": cpu_all["cpu_s_per_1000"],
            "cpu_sends": cpu_sends,
            "cpu_receipts": cpu_receipts,
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
