"""Benchmark the transactional API while a large campaign is sending; prints one JSON line.

It starts what it needs on the configured DATABASE_URL and REDIS_URL (PostgreSQL and Redis): the
sandbox carrier, the web server (uvicorn ``console.asgi``, which also takes the sandbox's receipts),
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
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import time as dtime
from pathlib import Path

import aiohttp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

BASE_DIR = Path(settings.BASE_DIR)
MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sandbox_call(url: str, method: str, path: str, payload=None, timeout=120):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{url}/_sandbox/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"{url}: the process exited (see var/bench-api-*.log)")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"{url} did not answer")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


class Command(BaseCommand):
    help = "Send transactional messages through the API while a 100,000-recipient campaign runs; print JSON."

    def add_arguments(self, parser):
        parser.add_argument("--recipients", type=int, default=100_000)
        parser.add_argument("--rate", type=int, default=2_000, help="the campaign gateways' sends per second")
        parser.add_argument("--messages", type=int, default=2_000, help="API messages to send")
        parser.add_argument("--concurrency", type=int, default=4, help="concurrent API clients")
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
        env.update({
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "console.settings"),
            "DATABASE_URL": f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:"
            f"{db.get('PORT') or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECURE_SSL_REDIRECT": "0",
            "AUTO_PAUSE_ERROR_RATE": "0",
            "CONN_MAX_AGE": "60",
            "API_KEY_RATE": "100000/second",
        })
        return env

    def _spawn(self, name: str, args: list[str], nice: int = 0, **env) -> subprocess.Popen:
        log = open(Path(settings.VAR_DIR) / f"bench-api-{name}.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            args, cwd=BASE_DIR, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,  # noqa: PLW1509 - no threads started yet
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

    def _worker(self, name: str, queue: str, nice: int = 0) -> subprocess.Popen:
        return self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", queue, "-c", "2",
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
        # connection). The receipt server stays on ASGI (console.asgi's batching receiver).
        web_proc = self._spawn("web", [
            sys.executable, "-m", "uvicorn", "console.wsgi:application", "--interface", "wsgi", "--port",
            str(web_port), "--workers", str(options["web_workers"]), "--http", "httptools", "--no-access-log",
            "--log-level", "warning",
        ])
        hooks_proc = self._spawn("hooks", [
            sys.executable, "-m", "uvicorn", "console.asgi:application", "--port", str(hooks_port),
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ], nice=bulk_nice, CONN_MAX_AGE="0")
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
        time.sleep(3)  # let the workers connect

        from campaigns.services import campaign_start
        from campaigns.stats import campaign_stats
        from messaging.counters import counters_fold

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
        counter = iter(range(total))

        async def client(session):
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
                if response.status == 201:
                    latencies.append(elapsed)
                    ids.append(json.loads(payload)["id"])
                else:
                    errors += 1

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            # Warm the web workers' connections first (not timed).
            for _ in range(options["web_workers"] * 2):
                async with session.get(f"{web}/api/v1/messages/?page_size=1") as response:
                    await response.read()
            started = time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(concurrency)))
            seconds = time.perf_counter() - started
        return latencies, errors, seconds, ids

    def _setup(self, options, sandbox: str, web: str):
        from accounts.models import (
            ApiKey,
            ApiScope,
            Carrier,
            CarrierReview,
            GatewayAccount,
            GatewayKind,
            Membership,
            OfficialAccount,
            Organization,
            Role,
        )
        from campaigns.models import Campaign, CampaignStatus, ContactList

        n, rate = options["recipients"], options["rate"]
        stamp = int(time.time())
        organization = Organization.objects.create(
            name=f"bench api {stamp}", slug=f"bench-api-{stamp}", quiet_hours_start=dtime(0, 0),
            quiet_hours_end=dtime(0, 0),
        )
        user, _created = get_user_model().objects.get_or_create(username="bench-api")
        Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": Role.OWNER})
        gateways = {}
        for kind, name in ((GatewayKind.RBM, "rbm"), (GatewayKind.CM, "cm")):
            credentials = (
                {"agent_id": f"bench-api-{stamp}", "bearer_token": f"b-{stamp}", "client_token": f"c-{stamp}"}
                if kind == GatewayKind.RBM else {"product_token": f"p-{stamp}", "callback_secret": f"s-{stamp}"}
            )
            gateway = GatewayAccount.objects.create(organization=organization, name=name, kind=kind, base_url=sandbox,
                                                    rate_per_second=rate, credentials=credentials)
            hook = (f"{web}/messaging/webhooks/rbm/{gateway.pk}/" if kind == GatewayKind.RBM
                    else f"{web}/messaging/webhooks/cm/{gateway.pk}/s-{stamp}/")
            sandbox_call(sandbox, "POST", "gateways", {"kind": kind, "gateway_id": gateway.pk, **credentials,
                                                       "webhook_url": hook})
            gateways[name] = gateway
        account = OfficialAccount.objects.create(
            organization=organization, display_name="bench", legal_name="株式会社ベンチ", sms_sender_id="BENCH",
            rcs_gateway=gateways["rbm"], sms_gateway=gateways["cm"],
        )
        CarrierReview.objects.create(account=account, carrier=Carrier.DOCOMO, status="approved", decided_at=timezone.now())
        audience = ContactList.objects.create(organization=organization, name="bench")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_contact (organization_id, phone, name, attributes, opted_out_at, "
                "opt_out_method, created_at, updated_at) SELECT %s, '+8190' || lpad((40000000 + g)::text, 8, '0'), "
                "'ベンチ', '{}'::jsonb, NULL, '', now(), now() FROM generate_series(0, %s - 1) AS g",
                [organization.pk, n],
            )
            cursor.execute(
                "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
                "SELECT %s, id, now() FROM campaigns_contact WHERE organization_id = %s",
                [audience.pk, organization.pk],
            )
        campaign = Campaign.objects.create(
            organization=organization, official_account=account, name="bench", classification="transaction",
            content={"text": "{{name}}様 ご注文の商品を発送しました。"}, sms_text="{{name}}様 ご注文の商品を発送しました。",
            ttl_seconds=3600, created_by=user, status=CampaignStatus.APPROVED, approved_by=user,
            approved_at=timezone.now(),
        )
        campaign.audience_lists.add(audience)
        _key, secret = ApiKey.generate(organization, "bench", [ApiScope.SEND], created_by=user)
        return campaign, organization, account, secret

    def _cleanup(self, organization) -> None:
        from accounts.services_cleanup import delete_organization

        gateway_ids = [str(pk) for pk in organization.gateways.values_list("pk", flat=True)]
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM messaging_providerevent WHERE payload->>'gateway_id' = ANY(%s)", [gateway_ids])
            for sql in (
                "DELETE FROM messaging_counterdelta WHERE campaign_id IN "
                "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)",
                "DELETE FROM messaging_campaigncounter WHERE campaign_id IN "
                "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)",
                "DELETE FROM messaging_delivery WHERE organization_id = %s",
                "DELETE FROM campaigns_contactlistmembership WHERE contact_list_id IN "
                "(SELECT id FROM campaigns_contactlist WHERE organization_id = %s)",
            ):
                cursor.execute(sql, [organization.pk])
        delete_organization(organization)
