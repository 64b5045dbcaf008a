"""Benchmark the transactional API while a large campaign is sending; prints one JSON line.

It starts what it needs on the configured DATABASE_URL and REDIS_URL (PostgreSQL and Redis): the
sandbox carrier, the web server (uvicorn ``config.asgi``, which also takes the sandbox's receipts),
one bulk Celery worker (queue ``celery``) and one for the priority lane (queue ``priority``). It
creates a throwaway organization with a 100,000-recipient campaign, launches it, and once the
campaign is sending, posts transactional messages to POST /api/v1/messages from concurrent clients,
timing each request. Figures: ``sends_per_s`` (API requests answered 201 per second), ``p50_ms`` and
``p99_ms`` (request latency), how far the campaign moved meanwhile, and how many of the API's messages
had reached the carrier by the end (the priority lane at work). Everything it started is stopped and
its data removed (unless --keep).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from devtools.harness import bench_campaign, bench_cleanup, free_port, sandbox_call, wait_http

BASE_DIR = Path(settings.BASE_DIR)
BULK_DB_APPLICATION = "bench-api-bulk"  # the application_name of the bulk side's database sessions
MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def lower_priority(nice: int) -> None:
    """Run this (new) process, and what it forks, at the given niceness.

    Where the kernel groups processes by session for scheduling (autogroup, the default on desktop and
    many server kernels), a process's own niceness only counts against processes of its session; each
    child here has a session of its own, so its whole group is niced too, else the bulk side would
    still get as much CPU as the API."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:  # no autogroup here: niceness alone does it
        pass


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
        self.processes: list[subprocess.Popen] = []
        self.env = self._child_env()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop what we started
        organization = None
        try:
            result, organization = self._run(options)
        finally:
            for process in reversed(self.processes):
                self._stop(process)
            if organization is not None and not options["keep"]:
                self._cleanup(organization)
        self.stdout.write(json.dumps(result))

    # -- processes -------------------------------------------------------------------------------
    def _child_env(self) -> dict:
        db = connection.settings_dict
        env = dict(os.environ)
        self.database_url = (
            f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
        env.update({
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECURE_SSL_REDIRECT": "0",
            "AUTO_PAUSE_ERROR_RATE": "0",
            "CONN_MAX_AGE": "60",
            "API_KEY_RATE": "100000/second",
        })
        return env

    def _spawn(self, name: str, args: list[str], nice: int = 0, **env) -> subprocess.Popen:
        if nice:  # so that its database sessions can be found, and niced too
            env.setdefault("DATABASE_URL", f"{self.database_url}?application_name={BULK_DB_APPLICATION}-{name}")
        log = open(Path(settings.VAR_DIR) / f"bench-api-{name}.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            args, cwd=BASE_DIR, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=(lambda: lower_priority(nice)) if nice else None,  # noqa: PLW1509 - no threads started yet
        )
        log.close()
        self.processes.append(process)
        return process

    def _stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _nice_bulk_database_sessions(self, nice: int, stop: threading.Event) -> None:
        """Give the PostgreSQL backends serving the bulk side the bulk side's niceness.

        Each session is a process of its own, forked by the postmaster at normal priority: the niced
        bulk side's queries would otherwise compete with the API's as equals. This works where
        PostgreSQL runs on this machine and we may renice its processes (as root); elsewhere nothing
        is reniced and the result says so (``bulk_database_sessions_niced``: 0)."""
        import psycopg

        reniced: set[int] = set()
        with psycopg.connect(self.database_url, autocommit=True) as database:
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

    def _worker(self, name: str, queue: str, nice: int = 0) -> subprocess.Popen:
        return self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "2",
            "-n", f"bench-api-{name}-{os.getpid()}@%h", "-l", "warning", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "--prefetch-multiplier", "1",
        ], nice=nice, DISPATCH_CHAINS="2")

    # -- the run ---------------------------------------------------------------------------------
    def _run(self, options):
        sandbox_port, web_port, hooks_port = free_port(), free_port(), free_port()
        bulk_nice = options["bulk_nice"]
        sandbox_proc = self._spawn("sandbox", [
            sys.executable, "manage.py", "runsandbox", "--port", str(sandbox_port), "--no-db"], nice=bulk_nice)
        # The API and the carriers' receipt webhooks on separate web processes, as in production: a
        # campaign's receipt storm (two or more callbacks per message) must not queue API requests.
        # The API's sync Django views under uvicorn's WSGI interface: a pool of threads per process, each
        # keeping its database connection (under ASGI every request gets a new thread, and so a new
        # connection). The receipt server stays on ASGI (config.asgi's batching receiver).
        web_proc = self._spawn("web", [
            sys.executable, "-m", "uvicorn", "config.wsgi:application", "--interface", "wsgi", "--port",
            str(web_port), "--workers", str(options["web_workers"]), "--http", "httptools", "--no-access-log",
            "--log-level", "warning",
        ])
        hooks_proc = self._spawn("hooks", [
            sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(hooks_port),
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ], nice=bulk_nice)
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        web = f"http://127.0.0.1:{web_port}"
        hooks = f"http://127.0.0.1:{hooks_port}"
        wait_http(f"{sandbox}/_sandbox/health", sandbox_proc)
        wait_http(f"{web}/api/v1/schema/", web_proc)
        wait_http(f"{hooks}/messaging/webhooks/", hooks_proc)
        sandbox_call(sandbox, "POST", "config", {
            "profile_mix": MIX, "latencies_ms": {"delivered": [5, 50], "read": [50, 500], "sms_delivered": [5, 50]},
        })
        campaign, organization, account, secret = self._setup(options, sandbox, hooks)
        self._worker("bulk", "celery", nice=bulk_nice)
        priority = self._worker("priority", "priority")
        self.bulk_sessions_niced = 0
        stop_renicing = threading.Event()
        renicer = threading.Thread(target=self._nice_bulk_database_sessions, args=(bulk_nice, stop_renicing), daemon=True)
        if bulk_nice:
            renicer.start()
        time.sleep(3)  # let the workers connect

        from messaging.counters import counters_fold
        from messaging.runs import campaign_start
        from messaging.stats import campaign_stats

        campaign_start(campaign)
        started = time.monotonic()
        while self._carrier_accepted(sandbox) < min(2_000, options["recipients"] // 10):
            if time.monotonic() - started > 120:
                raise CommandError("the campaign did not start sending within 2 minutes (see var/bench-api-*.log)")
            time.sleep(0.2)
        accepted_before = self._carrier_accepted(sandbox)

        load_before = os.getloadavg()[0]
        latencies, errors, seconds, ids = asyncio.run(self._send(web, secret, account.pk, options))
        load_after = os.getloadavg()[0]
        stop_renicing.set()
        if renicer.is_alive():
            renicer.join()

        accepted_after = self._carrier_accepted(sandbox)
        counters_fold()
        campaign.refresh_from_db()
        stats = campaign_stats(campaign)
        # How many of the API's messages the priority lane got to the carrier (waiting up to 30 s).
        from messaging.models import Delivery, DeliveryStatus

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
        }
        return result, organization

    @staticmethod
    def _carrier_accepted(sandbox: str) -> int:
        tallies = sandbox_call(sandbox, "GET", "tallies")["carrier"]
        return tallies.get("rbm_accepted", 0) + tallies.get("cm_accepted", 0)

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

    def _setup(self, options, sandbox: str, web: str):
        from accounts.models import ApiKey, ApiScope

        organization, account, campaign, user = bench_campaign(
            "bench-api", options["recipients"], options["rate"], sandbox, web
        )
        _key, secret = ApiKey.generate(organization, "bench", [ApiScope.SEND], created_by=user)
        return campaign, organization, account, secret

    def _cleanup(self, organization) -> None:
        bench_cleanup(organization)
