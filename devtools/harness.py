"""What the benchmark commands share: their child processes (``Processes``: the sandbox, web servers,
Celery workers and beat, logged under var/ and stopped on the way out whatever happens), the
sandbox's admin API (``SandboxAdmin``), a throwaway organization wired to the sandbox with a large
approved campaign (``bench_campaign``), and its removal (``bench_cleanup``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import time as dtime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import GatewayAccount, Membership, Role
from campaigns.models import Campaign, CampaignStatus, ContactList
from devtools.cleanup import delete_organization
from devtools.sandbox_setup import sandbox_organization, sandbox_webhook_url

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(application_name: str = "") -> str:
    """The configured PostgreSQL database as a URL for a child process; ``application_name`` marks
    the child's sessions in pg_stat_activity."""
    db = connection.settings_dict
    url = f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"{url}?application_name={application_name}" if application_name else url


def child_env(**overrides: str) -> dict:
    """The environment of a benchmark's child processes: this process's database, Redis and broker,
    plain HTTP, and no automatic pause of a campaign that fails (the sandbox's faults are wanted)."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECURE_SSL_REDIRECT": "0",
        "AUTO_PAUSE_ERROR_RATE": "0",
        "CONN_MAX_AGE": "60",
        **overrides,
    })
    return env


def lower_priority(nice: int) -> None:
    """Run this (new) process, and what it forks, at the given niceness.

    Where the kernel groups processes by session for scheduling (autogroup, the default on desktop and
    many server kernels), a process's own niceness only counts against processes of its session; each
    child here has a session of its own, so its whole group is niced too, else a niced child would
    still get as much CPU as the others."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:  # no autogroup here: niceness alone does it
        pass


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``url`` answers anything at all (an HTTP error is an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"{url}: the process exited")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"{url} did not answer")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _with_application_name(url: str, application_name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={application_name}"


class SandboxAdmin:
    """The sandbox carrier's admin API (loopback only), as the benchmarks use it."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, payload=None, timeout: float = 600):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def register(self, gateway: GatewayAccount, console_url: str) -> None:
        """Tell the sandbox about ``gateway``, its callbacks going to the console at ``console_url``."""
        self.call("POST", "gateways", {
            "kind": gateway.kind, "gateway_id": gateway.pk, **gateway.credentials,
            "webhook_url": sandbox_webhook_url(gateway, console_url),
        })

    def carrier_accepted(self) -> int:
        """Sends the carrier has accepted so far, RBM and CM together."""
        tallies = self.call("GET", "tallies")["carrier"]
        return tallies.get("rbm_accepted", 0) + tallies.get("cm_accepted", 0)


class Processes:
    """A benchmark's child processes, as a context manager: each is started in a session of its own
    (so that stopping it stops what it forked), logs to ``var/<log_prefix>-<name>.log``, and every one
    still running is stopped on exit, on an error or on SIGTERM too."""

    def __init__(self, log_prefix: str, env: dict, *, stage_cpu: bool = False):
        self.log_prefix, self.env, self.stage_cpu = log_prefix, env, stage_cpu
        self.running: list[subprocess.Popen] = []
        # For devtools.cpu: each process's pid by name, and the name behind each application_name.
        self.pids: dict[str, int] = {}
        self.sessions: dict[str, str] = {}
        self._previous_sigterm = None

    def __enter__(self) -> Processes:
        # SIGTERM would end this process at once; as an exception it unwinds through __exit__.
        self._previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()
        signal.signal(signal.SIGTERM, self._previous_sigterm)

    def log_path(self, name: str) -> Path:
        return Path(settings.VAR_DIR) / f"{self.log_prefix}-{name}.log"

    def start(self, name: str, argv: list[str], *, env: dict | None = None, nice: int = 0) -> subprocess.Popen:
        """Start ``argv`` in the project directory with the shared environment plus ``env``, at
        niceness ``nice``. Its database sessions are named ``<log_prefix>-<name>`` (unless ``env``
        names them otherwise), and with ``stage_cpu`` it reports its CPU by stage as ``name``."""
        path = self.log_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        child_env = {**self.env, **(env or {})}
        url = child_env.get("DATABASE_URL", "")
        if url.startswith("postgres") and "application_name=" not in url:
            child_env["DATABASE_URL"] = _with_application_name(child_env["DATABASE_URL"], f"{self.log_prefix}-{name}")
        session_name = parse_qs(urlsplit(child_env.get("DATABASE_URL", "")).query).get("application_name")
        if session_name:
            self.sessions[session_name[0]] = name
        if self.stage_cpu:
            child_env["STAGE_CPU"] = name
        log = open(path, "wb")  # noqa: SIM115 - the child has its own copy; ours is closed below
        process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=child_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: lower_priority(nice)) if nice else None,  # noqa: PLW1509 - no threads started yet
        )
        log.close()
        self.running.append(process)
        self.pids[name] = process.pid
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """Stop one process started here (and what it forked)."""
        if process in self.running:
            self.running.remove(process)
        for name in [name for name, pid in self.pids.items() if pid == process.pid]:
            del self.pids[name]  # in place: a CpuMeter holds this mapping
        _stop(process)

    def stop_all(self) -> None:
        """Stop every process started here, the last started first (workers before the sandbox)."""
        while self.running:
            _stop(self.running.pop())
        self.pids.clear()

    def sandbox(self, nice: int = 0) -> SandboxAdmin:
        """The sandbox carrier on a free port, without the database (gateways are registered through
        its admin API), once it answers."""
        port = free_port()
        process = self.start(
            "sandbox", [sys.executable, "manage.py", "runsandbox", "--port", str(port), "--no-db"], nice=nice
        )
        sandbox = SandboxAdmin(f"http://127.0.0.1:{port}")
        wait_http(f"{sandbox.url}/_sandbox/health", process)
        return sandbox

    def web(self, name: str, application: str, ready_path: str, *, workers: int = 1, wsgi: bool = False,
            nice: int = 0, env: dict | None = None) -> str:
        """uvicorn serving ``application`` (``config.asgi:application``, or ``config.wsgi:application``
        with ``wsgi``) on a free port; its base URL once ``ready_path`` answers."""
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", application, "--port", str(port), "--workers", str(workers)]
        if wsgi:
            argv += ["--interface", "wsgi"]
        argv += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
        process = self.start(name, argv, env=env, nice=nice)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}{ready_path}", process)
        return url

    def celery_worker(self, name: str, queues: str, *, concurrency: int, nice: int = 0,
                      env: dict | None = None) -> subprocess.Popen:
        """A Celery worker on ``queues`` with ``concurrency`` processes, one task prefetched at a time."""
        return self.start(name, [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", str(concurrency),
            "-n", f"{self.log_prefix}-{name}-{os.getpid()}@%h", "-l", "warning", "--without-mingle",
            "--without-gossip", "--without-heartbeat", "--prefetch-multiplier", "1",
        ], env=env, nice=nice)

    def celery_beat(self) -> subprocess.Popen:
        return self.start("beat", [
            sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "warning", "--pidfile=",
            "-S", "config.beat:Scheduler",
        ])


def bench_campaign(label: str, recipients: int, rate: int, sandbox: SandboxAdmin, console_url: str):
    """An organization whose RBM and CM gateways point at the sandbox (registered there with
    webhooks to ``console_url``), an approved official account, ``recipients`` contacts in one list
    (inserted by the database itself), and an approved transactional campaign to them.

    Returns (organization, account, campaign, user)."""
    stamp = int(time.time())
    setup = sandbox_organization(
        slug=f"{label}-{stamp}", name=f"{label} {stamp}", sandbox_url=sandbox.url, rate=rate,
        token_prefix=f"{label}-{stamp}", account_name="bench",
        account_fields={"legal_name": "株式会社ベンチ", "sms_sender_id": "BENCH"},
        quiet_hours=(dtime(0, 0), dtime(0, 0)),
    )
    organization, account = setup.organization, setup.account
    user, _created = get_user_model().objects.get_or_create(username=label)
    Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": Role.OWNER})
    for gateway in (setup.rbm, setup.cm):
        sandbox.register(gateway, console_url)
    audience = ContactList.objects.create(organization=organization, name="bench")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_contact (organization_id, phone, name, attributes, opted_out_at, "
            "opt_out_method, created_at, updated_at) SELECT %s, '+8190' || lpad((40000000 + g)::text, 8, '0'), "
            "'ベンチ', '{}'::jsonb, NULL, '', now(), now() FROM generate_series(0, %s - 1) AS g",
            [organization.pk, recipients],
        )
        cursor.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
            "SELECT %s, id, now() FROM campaigns_contact WHERE organization_id = %s",
            [audience.pk, organization.pk],
        )
    vacuum_analyze(["campaigns_contact", "campaigns_contactlistmembership"], analyze_only=True)
    campaign = Campaign.objects.create(
        organization=organization, official_account=account, name="bench", classification="transaction",
        content={"text": "{{name}}様 ご注文の商品を発送しました。"}, sms_text="{{name}}様 ご注文の商品を発送しました。",
        ttl_seconds=3600, created_by=user, status=CampaignStatus.APPROVED, approved_by=user,
        approved_at=timezone.now(),
    )
    campaign.audience_lists.add(audience)
    return organization, account, campaign, user


def bench_cleanup(organization) -> None:
    """Remove a benchmark's organization and everything it made, big tables first with plain SQL."""
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
    vacuum_analyze(BENCH_TABLES)


# The tables a benchmark fills and empties again.
BENCH_TABLES = (
    "messaging_providerevent", "messaging_delivery", "messaging_counterdelta", "campaigns_contact",
    "campaigns_contactlistmembership", "accounts_idempotencyrecord",
)


def vacuum_analyze(tables, analyze_only: bool = False) -> None:
    """What autovacuum would do between runs, done now: a server may run with it off (this machine's
    CI configuration does), and then every run would leave millions of dead rows and stale statistics
    to the next one, each run slower than the last."""
    if connection.vendor != "postgresql":
        return
    command = "ANALYZE" if analyze_only else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{command} {table}")
