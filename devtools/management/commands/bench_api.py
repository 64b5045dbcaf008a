"""Benchmark the transactional API while a large campaign is sending; prints one JSON line.

It starts what it needs on the configured DATABASE_URL and REDIS_URL (PostgreSQL and Redis): the
sandbox carrier, two web servers (uvicorn: the API on ``config.wsgi``, the sandbox's receipts on
``config.asgi``), one bulk Celery worker (queue ``celery``) and one for the priority lane (queue ``priority``). It
creates a throwaway organization with a 100,000-recipient campaign, launches it, and once the
campaign is sending, posts transactional messages to POST /api/v1/messages from concurrent clients,
timing each request. Figures: ``sends_per_s`` (API requests answered 201 per second), ``p50_ms`` and
``p99_ms`` (request latency), how far the campaign moved meanwhile, and how many of the API's messages
had reached the carrier by the end (the priority lane at work). ``cpu`` gives the CPU seconds per
1,000 messages over the timed run — API messages and the campaign's sends together — of the web,
receipt and worker processes and the PostgreSQL backends serving them, by role and by engine stage
(devtools/cpu.py). Everything it started is stopped and
its data removed (unless --keep).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time

import aiohttp
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import ApiKey, ApiScope
from core import stage_cpu
from devtools.cpu import CpuMeter, cpu_report
from devtools.harness import Processes, SandboxAdmin, bench_campaign, bench_cleanup, child_env, database_url
from messaging.counters import counters_fold
from messaging.models import Delivery, DeliveryStatus
from messaging.runs import campaign_start
from messaging.stats import campaign_stats

BULK_DB_APPLICATION = "bench-api-bulk"  # the application_name of the bulk side's database sessions
COUNTED = ("web", "hooks", "bulk", "priority")  # the product's processes (not the sandbox carrier)
MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def bulk_env(name: str) -> dict:
    """A bulk-side process's database sessions are named, so that they can be found and niced too."""
    return {"DATABASE_URL": database_url(f"{BULK_DB_APPLICATION}-{name}")}


class Command(BaseCommand):
    help = "Send transactional messages through the API while a 100,000-recipient campaign runs; print JSON."

    def add_arguments(self, parser):
        parser.add_argument("--recipients", type=int, default=100_000)
        parser.add_argument("--rate", type=int, default=2_000, help="the campaign gateways' sends per second")
        parser.add_argument("--messages", type=int, default=2_000, help="API messages to send")
        parser.add_argument("--concurrency", type=int, default=4, help="concurrent API clients")
        parser.add_argument("--warm-up", type=int, default=100, help="untimed API messages sent first")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--bulk-nice", type=int, default=10,
            help="CPU niceness of the bulk side (bulk worker, sandbox, receipt server); 0 to share the CPU equally",
        )
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's data")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("bench_api needs DATABASE_URL (PostgreSQL) and REDIS_URL (Redis).")
        organization = None
        try:
            with Processes("bench-api", child_env(API_KEY_RATE="100000/second"), stage_cpu=True) as processes:
                result, organization = self._run(processes, options)
        finally:
            if organization is not None and not options["keep"]:
                bench_cleanup(organization)
        self.stdout.write(json.dumps(result))

    def _nice_bulk_database_sessions(self, nice: int, stop: threading.Event) -> None:
        """Give the PostgreSQL backends serving the bulk side the bulk side's niceness.

        Each session is a process of its own, forked by the postmaster at normal priority: the niced
        bulk side's queries would otherwise compete with the API's as equals. This works where
        PostgreSQL runs on this machine and we may renice its processes (as root); elsewhere nothing
        is reniced and the result says so (``bulk_database_sessions_niced``: 0)."""
        reniced: set[int] = set()
        with psycopg.connect(database_url(), autocommit=True) as database:
            while not stop.wait(0.2):
                pids = [row[0] for row in database.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s", [f"{BULK_DB_APPLICATION}-%"])]
                for pid in set(pids) - reniced:
                    try:
                        os.setpriority(os.PRIO_PROCESS, pid, nice)
                    except (PermissionError, ProcessLookupError):
                        continue
                    reniced.add(pid)
        self.bulk_sessions_niced = len(reniced)

    # -- the run ---------------------------------------------------------------------------------
    def _run(self, processes: Processes, options):
        bulk_nice = options["bulk_nice"]
        sandbox = processes.sandbox(nice=bulk_nice)
        # The API and the carriers' receipt webhooks on separate web processes, as in production: a
        # campaign's receipt storm (two or more callbacks per message) must not queue API requests.
        # The API's sync Django views under uvicorn's WSGI interface: a pool of threads per process, each
        # keeping its database connection (under ASGI every request gets a new thread, and so a new
        # connection). The receipt server stays on ASGI (config.asgi's batching receiver).
        web = processes.web("web", "config.wsgi:application", "/api/v1/schema/", workers=options["web_workers"],
                            wsgi=True)
        hooks = processes.web("hooks", "config.asgi:application", "/messaging/webhooks/", nice=bulk_nice,
                              env=bulk_env("hooks") if bulk_nice else None)
        sandbox.call("POST", "config", {
            "profile_mix": MIX, "latencies_ms": {"delivered": [5, 50], "read": [50, 500], "sms_delivered": [5, 50]},
        })
        campaign, organization, account, secret = self._setup(options, sandbox, hooks)
        processes.celery_worker("bulk", "celery", concurrency=2, nice=bulk_nice,
                                env={"DISPATCH_CHAINS": "2", **(bulk_env("bulk") if bulk_nice else {})})
        priority = processes.celery_worker("priority", "priority", concurrency=2, env={"DISPATCH_CHAINS": "2"})
        self.bulk_sessions_niced = 0
        stop_renicing = threading.Event()
        renicer = threading.Thread(target=self._nice_bulk_database_sessions, args=(bulk_nice, stop_renicing), daemon=True)
        if bulk_nice:
            renicer.start()
        time.sleep(3)  # let the workers connect

        campaign_start(campaign)
        started = time.monotonic()
        while sandbox.carrier_accepted() < min(2_000, options["recipients"] // 10):
            if time.monotonic() - started > 120:
                raise CommandError("the campaign did not start sending within 2 minutes (see var/bench-api-*.log)")
            time.sleep(0.2)
        accepted_before = sandbox.carrier_accepted()

        stage_cpu.reset()
        with CpuMeter(processes.pids, processes.sessions, dsn=database_url(), stages=True) as meter:
            cpu_before = meter.sample()
            load_before = os.getloadavg()[0]
            latencies, errors, seconds, ids = asyncio.run(self._send(web, secret, account.pk, options))
            load_after = os.getloadavg()[0]
            accepted_after = sandbox.carrier_accepted()
            time.sleep(0.5)  # the running tasks' stage figures are flushed as each ends
            cpu = cpu_report(cpu_before, meter.sample(), len(latencies) + accepted_after - accepted_before, COUNTED)
        stop_renicing.set()
        if renicer.is_alive():
            renicer.join()

        counters_fold()
        campaign.refresh_from_db()
        stats = campaign_stats(campaign)
        # How many of the API's messages the priority lane got to the carrier (waiting up to 30 s).
        deadline = time.monotonic() + 30
        while True:
            sent = Delivery.objects.filter(uuid__in=ids, status__gte=DeliveryStatus.SENT).count()
            if sent >= len(ids) or time.monotonic() > deadline or priority.poll() is not None:
                break
            time.sleep(0.5)
        result = {
            "sends_per_s": round(len(latencies) / seconds, 1) if seconds else 0.0,
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "requests": len(latencies) + errors,
            "errors": errors,
            "concurrency": options["concurrency"],
            "campaign_rate_per_s": options["rate"],
            "cpus": os.cpu_count(),
            "bulk_nice": options["bulk_nice"],
            "bulk_database_sessions_niced": self.bulk_sessions_niced,
            "load_average_1m": [round(load_before, 1), round(load_after, 1)],
            "campaign_recipients": options["recipients"],
            "campaign_status": campaign.status,
            "campaign_carrier_accepted_during_api_run": accepted_after - accepted_before,
            "campaign_sent_by_end": stats["sent"],
            "api_messages_at_carrier": sent,
            "cpu": cpu,
        }
        return result, organization

    async def _send(self, web: str, secret: str, account_id: int, options) -> tuple[list[float], int, float, list]:
        total, concurrency = options["messages"], options["concurrency"]
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        latencies: list[float] = []
        ids: list[str] = []
        errors = 0

        async def client(session, counter, timed: bool):
            nonlocal errors
            for index in counter:
                body = json.dumps({
                    "to": f"+8180{60000000 + index:08d}", "official_account": account_id,
                    "content": {"text": f"【カード利用確認】{index}円のご利用がありました。"},
                    "sms_text": f"【カード利用確認】{index}円のご利用がありました。",
                    "classification": "transaction", "ttl_seconds": 600, "client_reference": f"bench-{index}",
                })
                begun = time.perf_counter()
                async with session.post(f"{web}/api/v1/messages/", data=body,
                                        headers={"Idempotency-Key": f"bench-{os.getpid()}-{index}"}) as response:
                    payload = await response.read()
                elapsed = (time.perf_counter() - begun) * 1000
                if not timed:
                    continue
                if response.status == 201:
                    latencies.append(elapsed)
                    ids.append(json.loads(payload)["id"])
                else:
                    errors += 1

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            # Warm up first, untimed: each server thread's first send opens its connections to
            # PostgreSQL and Redis and loads the code the send path needs.
            warm_up = iter(range(total, total + options["warm_up"]))
            await asyncio.gather(*(client(session, warm_up, timed=False) for _ in range(concurrency)))
            counter = iter(range(total))
            started = time.perf_counter()
            await asyncio.gather(*(client(session, counter, timed=True) for _ in range(concurrency)))
            seconds = time.perf_counter() - started
        return latencies, errors, seconds, ids

    def _setup(self, options, sandbox: SandboxAdmin, console_url: str):
        organization, account, campaign, user = bench_campaign(
            "bench-api", options["recipients"], options["rate"], sandbox, console_url
        )
        _key, secret = ApiKey.generate(organization, "bench", [ApiScope.SEND], created_by=user)
        return campaign, organization, account, secret
