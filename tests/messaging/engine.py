"""Fixtures for engine tests on the real parts: a Celery worker process on the test database and a
Redis broker, the sandbox carrier over HTTP, and the console's webhook endpoints on a live server.

Import the fixtures into a test module with ``from tests.messaging.engine import *``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import time as dtime
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import GatewayAccount, GatewayKind
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Classification,
    Consent,
    ConsentMethod,
    Contact,
    ContactList,
    ContactListMembership,
)
from core import throttle
from tests.accounts.factories import OrganizationFactory, UserFactory, approved_account

BASE_DIR = Path(__file__).resolve().parents[2]

__all__ = ["beat", "engine", "receiver", "worker", "Engine", "WorkerProcess"]


def _test_database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{db.get('USER') or 'postgres'}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` process; can be killed with SIGKILL and started again."""

    def __init__(self, env: dict, queues="celery,priority", concurrency=2, name="w1"):
        self.env, self.queues, self.concurrency, self.name = env, queues, concurrency, name
        self.process: subprocess.Popen | None = None
        self.log_path = BASE_DIR / "var" / "test" / f"worker-{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def start(self):
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues,
                "-c", str(self.concurrency), "-n", f"{self.name}@%h", "-l", "warning",
                "--without-mingle", "--without-gossip", "--without-heartbeat", "--prefetch-multiplier", "1",
            ],
            cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    def kill(self):
        """SIGKILL the whole process group: the main process and every pool child, mid-work."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self, timeout: float = 15.0) -> float:
        """SIGTERM to the main process, as a supervisor stops it (a warm shutdown: the batch in hand
        is finished, the rest handed back); SIGKILL after ``timeout``. Returns the seconds it took."""
        started = time.monotonic()
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return time.monotonic() - started

    def stop(self):
        self.terminate()


def worker_env(**overrides) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DELIVERY_LEASE_SECONDS": "10",
            "DISPATCH_STALE_SECONDS": "5",
            "TTL_GRACE_SECONDS": "5",
        }
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def flush_redis():
    for url in {settings.REDIS_URL, settings.CELERY_BROKER_URL}:
        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def worker(transactional_db):
    """Start workers with ``worker()`` / ``worker(AUTO_PAUSE_ERROR_RATE=0, name="w2")``."""
    flush_redis()
    started: list[WorkerProcess] = []

    def start(name="w1", queues="celery,priority", concurrency=2, **overrides):
        process = WorkerProcess(worker_env(**overrides), queues=queues, concurrency=concurrency, name=name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    flush_redis()


@pytest.fixture
def beat(transactional_db):
    """A real ``celery beat`` process with django-celery-beat's database scheduler."""
    log_path = BASE_DIR / "var" / "test" / "beat.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info", "--max-interval", "1",
             "-S", "config.beat:Scheduler", "--pidfile="],
            cwd=BASE_DIR, env=worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Receiver:
    """The production webhook receiver, ``uvicorn config.asgi:application``, as its own process on
    the test database. It listens on a socket bound here first (port 0, so no port is guessed and
    no connection is refused while it starts): the carrier's receipts then go through the same
    batching receiver as in production, not through a thread of the test process that competes
    with the test for the interpreter."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.log_path = BASE_DIR / "var" / "test" / "receiver.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = self.socket.fileno()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application", "--fd", str(fd),
                 "--log-level", "warning", "--no-access-log"],
                cwd=BASE_DIR, env=worker_env(), stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(fd,), start_new_session=True,
            )
        self.wait_answering()

    def wait_answering(self, timeout=90.0):
        """Return once /healthz answers: a carrier gives up on a callback after a few timeouts, so
        none may be posted while the process is still importing Django."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the receiver exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the receiver did not answer in {timeout:.0f} s: see {self.log_path}")
            time.sleep(0.2)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.socket.close()


@pytest.fixture
def receiver(transactional_db):
    process = Receiver()
    yield process
    process.stop()


class Engine:
    """An organization wired to the sandbox: gateways registered there with webhooks to the receiver."""

    def __init__(self, sandbox, receiver, rate=2000):
        self.sandbox = sandbox
        self.organization = OrganizationFactory(quiet_hours_start=dtime(0, 0), quiet_hours_end=dtime(0, 0))
        self.user = UserFactory()
        rbm = GatewayAccount.objects.create(
            organization=self.organization, name="rbm", kind=GatewayKind.RBM, base_url=sandbox.url,
            credentials={"agent_id": f"agent-{self.organization.pk}", "bearer_token": f"bearer-{self.organization.pk}",
                         "client_token": f"client-{self.organization.pk}"},
            rate_per_second=rate,
        )
        cm = GatewayAccount.objects.create(
            organization=self.organization, name="cm", kind=GatewayKind.CM, base_url=sandbox.url,
            credentials={"product_token": f"product-{self.organization.pk}", "callback_secret": f"cb-{self.organization.pk}"},
            rate_per_second=rate,
        )
        # A second CM account at the sandbox: the backup SMS gateway of failover tests (not set on
        # the official account unless a test does).
        cm_backup = GatewayAccount.objects.create(
            organization=self.organization, name="cm-backup", kind=GatewayKind.CM, base_url=sandbox.url,
            credentials={"product_token": f"product-backup-{self.organization.pk}",
                         "callback_secret": f"cb-backup-{self.organization.pk}"},
            rate_per_second=rate,
        )
        self.rbm, self.cm, self.cm_backup = rbm, cm, cm_backup
        sandbox.register_rbm(
            agent_id=rbm.credentials["agent_id"], bearer_token=rbm.credentials["bearer_token"],
            client_token=rbm.credentials["client_token"], gateway_id=rbm.pk,
            webhook_url=f"{receiver.url}/messaging/webhooks/rbm/{rbm.pk}/",
        )
        sandbox.register_cm(
            product_token=cm.credentials["product_token"], callback_secret=cm.credentials["callback_secret"],
            gateway_id=cm.pk, webhook_url=f"{receiver.url}/messaging/webhooks/cm/{cm.pk}/{cm.credentials['callback_secret']}/",
        )
        sandbox.register_cm(
            product_token=cm_backup.credentials["product_token"], callback_secret=cm_backup.credentials["callback_secret"],
            gateway_id=cm_backup.pk,
            webhook_url=f"{receiver.url}/messaging/webhooks/cm/{cm_backup.pk}/{cm_backup.credentials['callback_secret']}/",
        )
        for gateway in (rbm, cm, cm_backup):
            throttle.reset(gateway.pk)
        self.account = approved_account(self.organization, rcs_gateway=rbm, sms_gateway=cm)

    def audience(self, count: int, first: int = 0, name="audience", consent=True) -> ContactList:
        contact_list = ContactList.objects.create(organization=self.organization, name=f"{name}-{first}")
        contacts = Contact.objects.bulk_create(
            [Contact(organization=self.organization, phone=f"+8190{30000000 + first + i:08d}", name=f"客{i}")
             for i in range(count)]
        )
        ContactListMembership.objects.bulk_create(
            [ContactListMembership(contact_list=contact_list, contact=c) for c in contacts]
        )
        if consent:
            Consent.objects.bulk_create(
                [Consent(organization=self.organization, contact=c, granted_at=timezone.now(), method=ConsentMethod.WEB_FORM,
                         source="https://example.jp/form", wording_version="v1") for c in contacts]
            )
        return contact_list

    def campaign(self, audience: ContactList, classification=Classification.TRANSACTION, ttl=60, **fields) -> Campaign:
        campaign = Campaign.objects.create(
            organization=self.organization, official_account=self.account, name="engine test",
            classification=classification,
            content={"text": "{{name}}様、ご予約を承りました。【株式会社テスト】配信停止は「停止」と返信"},
            sms_text="{{name}}様、ご予約を承りました。【株式会社テスト】配信停止は「停止」と返信",
            ttl_seconds=ttl, created_by=self.user, status=CampaignStatus.APPROVED, approved_by=self.user,
            approved_at=timezone.now(), **fields,
        )
        campaign.audience_lists.add(audience)
        return campaign


@pytest.fixture
def engine(sandbox, receiver, transactional_db):
    sandbox.configure(latencies_ms={"delivered": [5, 20], "read": [10, 40], "sms_delivered": [5, 30]})
    return Engine(sandbox, receiver)


def wait_until(predicate, timeout: float, interval: float = 0.5, on_tick=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        if on_tick:
            on_tick()
        time.sleep(interval)
