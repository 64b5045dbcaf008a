"""The soak benchmark's shop (``bench_soak``): the embedded default run as ``make run`` runs it, used
for N minutes as a shop would, and the figures that tell whether it held.

``ShopSoak.run()`` expects to run on the embedded default (SQLite and the filesystem broker under a
VAR_DIR of its own); ``bench_soak`` re-executes itself that way. It

1. migrates the database and creates the shop: an organization on the sandbox carrier, an owner
   and a marketer, a promotional member list and an API key;
2. starts every process of the Procfile under ``devtools.supervisor`` (as ``make run`` does), so a
   process that dies is restarted and counted, exactly as an operator would see it;
3. repeats, until the time is up, a cycle: import a Shift_JIS CSV of members (10,000 rows the first
   time, a few hundred new ones after), then compose, submit, approve (a second person) and launch
   a promotion to the whole list, timing how fast its recipients are sent; meanwhile transactional
   messages arrive through the REST API and people answer on their handsets (a few with 停止);
4. lets everything settle, then compares what the console says it sent with what the sandbox's
   handsets received (lost and duplicated), and reports process restarts and memory.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Count

from accounts.models import ApiKey, ApiScope, Membership, Role
from campaigns.imports import import_job_create, import_job_set_mapping
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Classification,
    ContactList,
    ImportJob,
    ImportStatus,
    ListPurpose,
)
from campaigns.services import campaign_approve, campaign_submit
from campaigns.tasks import import_contacts
from devtools.harness import SandboxAdmin, free_port, wait_http
from devtools.sandbox_setup import sandbox_organization
from messaging.models import Delivery, DeliveryStatus
from messaging.runs import campaign_launch

BASE_DIR = Path(settings.BASE_DIR)
LEGAL_NAME = "株式会社ソーク商店"
PROMOTION_TEXT = (
    "【" + LEGAL_NAME + "】{{name}}様 今週末限定10%OFFクーポン https://shop.example.jp/coupon "
    "配信停止は「停止」と返信してください"
)
# What the handsets are like: most read +Message, some only take SMS (the sandbox's profiles).
PROFILE_MIX = {"android_plus_message": 70, "iphone_no_app": 15, "rakuten_sms_only": 10, "never_reads": 5}
SAMPLE_SECONDS = 5.0
SETTLE_SECONDS = 300.0
REPLY_TEXTS = ["ありがとうございます", "クーポン使いました", "営業時間を教えてください", "了解です"]
OPT_OUT_SHARE = 0.02  # of replies: 停止 (they leave every later promotion)


@dataclass
class Options:
    minutes: float = 30.0
    cycle_minutes: float = 5.0
    recipients: int = 10_000
    new_per_cycle: int = 500
    rate: int = 1_000
    api_per_second: float = 2.0
    replies_per_second: float = 1.0


@dataclass
class Tally:
    """Counters the load threads share with the main one."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    api_sent: int = 0
    api_errors: int = 0
    api_error_examples: list = field(default_factory=list)
    replies: int = 0
    opt_outs: int = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)


def member_phone(index: int) -> str:
    return f"+8190{30000000 + index:08d}"


def japanese_format(phone: str, index: int) -> str:
    """How a shop's spreadsheet writes the number: 090-1234-5678, 09012345678 or +81 90 1234 5678."""
    national = "0" + phone[3:]
    if index % 3 == 0:
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    if index % 3 == 1:
        return national
    return f"+81 {national[1:3]} {national[3:7]} {national[7:]}"


def members_csv(first: int, count: int) -> bytes:
    """Members ``first`` .. ``first + count - 1`` as a Shift_JIS CSV with their consent."""
    lines = ["電話番号,氏名,同意日,同意方法,同意文言バージョン"]
    for index in range(first, first + count):
        lines.append(f"{japanese_format(member_phone(index), index)},会員{index:05d},2026/04/01,ウェブ,2026-04")
    return ("\r\n".join(lines) + "\r\n").encode("shift_jis")


# --- processes and their memory ---------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int, tree: dict[int, list[int]]) -> float:
    """Resident memory of ``pid`` and everything it forked (a Celery worker's pool children)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_kb(current)
        stack.extend(tree.get(current, []))
    return total / 1024


class Supervised:
    """The Procfile's processes under ``devtools.supervisor``, their restarts and their memory."""

    def __init__(self, env: dict):
        self.var_dir = Path(env["VAR_DIR"])
        log = open(self.var_dir / "supervisor.out", "wb")  # noqa: SIM115 - the child keeps its own copy
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "devtools.supervisor", "Procfile"], cwd=BASE_DIR, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.samples: list[tuple[float, dict[str, float]]] = []

    def status(self) -> dict:
        try:
            return json.loads((self.var_dir / "run" / "processes.json").read_text())
        except (OSError, ValueError):
            return {}

    def restarts(self) -> dict[str, int]:
        return {name: state["restarts"] for name, state in self.status().items()}

    def sample(self, elapsed: float) -> None:
        tree = _children()
        memory = {name: round(tree_rss_mb(state["pid"], tree), 1)
                  for name, state in self.status().items() if state.get("pid")}
        self.samples.append((elapsed, memory))

    def memory(self, flat_after: float) -> dict:
        """Per process: the peak, the figure once ``flat_after`` seconds had passed, and the last."""
        report = {}
        names = sorted({name for _elapsed, memory in self.samples for name in memory})
        for name in names:
            series = [(elapsed, memory[name]) for elapsed, memory in self.samples if name in memory]
            settled = [mb for elapsed, mb in series if elapsed >= flat_after] or [series[-1][1]]
            per_minute = {int(elapsed // 60): mb for elapsed, mb in series}  # the last sample of each minute
            report[name] = {
                "rss_mb_by_minute": [per_minute[minute] for minute in sorted(per_minute)],
                "peak_rss_mb": max(mb for _elapsed, mb in series),
                "rss_after_warm_up_mb": settled[0],
                "rss_last_mb": series[-1][1],
                "growth_after_warm_up_mb": round(series[-1][1] - settled[0], 1),
            }
        return report

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)  # the supervisor stops its processes gracefully
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


# --- the shop -----------------------------------------------------------------------------------


class ShopSoak:
    def __init__(self, options: Options, out=sys.stderr):
        self.options = options
        self.out = out
        self.tally = Tally()
        self.stop_load = threading.Event()
        self.promotions: list[dict] = []
        self.imports: list[dict] = []
        self.imported = 0
        self.sandbox: SandboxAdmin | None = None

    def say(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} soak: {message}", file=self.out, flush=True)

    # -- setup ---------------------------------------------------------------------------------------
    def _shop(self, sandbox_url: str) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        setup = sandbox_organization(
            slug="soak", name="ソーク商店", sandbox_url=sandbox_url, rate=self.options.rate, token_prefix="soak",
            account_name="ソーク商店", account_fields={"legal_name": LEGAL_NAME, "sms_sender_id": "SOAKSHOP"},
            quiet_hours=(dtime(0, 0), dtime(0, 0)),
        )
        self.organization, self.account = setup.organization, setup.account
        users = get_user_model().objects
        self.owner, _created = users.get_or_create(username="soak-owner")
        self.marketer, _created = users.get_or_create(username="soak-marketer")
        Membership.objects.get_or_create(organization=self.organization, user=self.owner, defaults={"role": Role.OWNER})
        Membership.objects.get_or_create(organization=self.organization, user=self.marketer,
                                         defaults={"role": Role.MARKETER})
        self.members, _created = ContactList.objects.get_or_create(
            organization=self.organization, name="会員（販促同意あり）", defaults={"purpose": ListPurpose.PROMOTION})
        _key, self.api_secret = ApiKey.generate(self.organization, "soak", [ApiScope.SEND], created_by=self.owner)

    def child_env(self, web_port: int, sandbox_port: int) -> dict:
        env = dict(os.environ)
        env.update({
            "PORT": str(web_port), "SANDBOX_PORT": str(sandbox_port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}", "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
            "EGRESS_ALLOW_LOOPBACK": "1",
        })
        return env

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> dict:
        web_port, sandbox_port = free_port(), free_port()
        self.web = f"http://127.0.0.1:{web_port}"
        self._shop(f"http://127.0.0.1:{sandbox_port}")
        processes = Supervised(self.child_env(web_port, sandbox_port))
        try:
            return self._run(processes, sandbox_port)
        finally:
            self.stop_load.set()
            processes.stop()

    def _run(self, processes: Supervised, sandbox_port: int) -> dict:
        self.sandbox = SandboxAdmin(f"http://127.0.0.1:{sandbox_port}")
        wait_http(f"{self.sandbox.url}/_sandbox/health", processes.popen, timeout=120)
        wait_http(f"{self.web}/healthz", processes.popen, timeout=120)
        self.sandbox.call("POST", "config", {
            "profile_mix": PROFILE_MIX,
            "latencies_ms": {"delivered": [5, 200], "read": [200, 3000], "sms_delivered": [5, 200]},
        })
        self.say(f"console {self.web}, sandbox {self.sandbox.url}, files under {processes.var_dir}")
        started = time.monotonic()
        end = started + self.options.minutes * 60
        sampler = threading.Thread(target=self._sample, args=(processes, started), daemon=True)
        loaders = [threading.Thread(target=self._api_sends, daemon=True),
                   threading.Thread(target=self._replies, daemon=True)]
        sampler.start()
        cycle = 0
        while cycle == 0 or time.monotonic() < end:
            cycle_started = time.monotonic()
            count = self.options.recipients if cycle == 0 else self.options.new_per_cycle
            self._import(count)
            if cycle == 0:
                for loader in loaders:
                    loader.start()
            self._promotion(cycle)
            cycle += 1
            next_cycle = min(end, cycle_started + self.options.cycle_minutes * 60)
            while time.monotonic() < next_cycle:
                time.sleep(1)
        self.stop_load.set()
        for loader in loaders:
            loader.join()
        load_seconds = time.monotonic() - started
        self.say("load stopped; waiting for every send and receipt to settle")
        settled = self._settle()
        receipts = self.sandbox.call("GET", "webhooks")
        sampler_stop = time.monotonic()
        processes.sample(sampler_stop - started)
        return self._result(processes, load_seconds, settled, receipts)

    def _sample(self, processes: Supervised, started: float) -> None:
        while not self.stop_load.is_set():
            processes.sample(time.monotonic() - started)
            self.stop_load.wait(SAMPLE_SECONDS)

    # -- a shop's day --------------------------------------------------------------------------------
    def _import(self, count: int) -> None:
        begun = time.monotonic()
        upload = SimpleUploadedFile("会員リスト.csv", members_csv(self.imported, count), content_type="text/csv")
        job = import_job_create(self.organization, self.marketer, upload, self.members)
        job = import_job_set_mapping(job, job.mapping, {})
        import_contacts.delay(job.pk)
        while job.status not in (ImportStatus.DONE, ImportStatus.FAILED):
            time.sleep(0.5)
            job = ImportJob.objects.get(pk=job.pk)
        self.imported += count
        figures = {"rows": count, "status": job.status, "seconds": round(time.monotonic() - begun, 1),
                   "created": job.created_count, "updated": job.updated_count, "refused": job.error_count}
        self.imports.append(figures)
        self.say(f"imported {count} members: {figures}")

    def _promotion(self, cycle: int) -> None:
        campaign = Campaign.objects.create(
            organization=self.organization, official_account=self.account, name=f"週末クーポン {cycle + 1}",
            classification=Classification.PROMOTION, content={"text": PROMOTION_TEXT}, sms_text=PROMOTION_TEXT,
            ttl_seconds=600, created_by=self.marketer,
        )
        campaign.audience_lists.add(self.members)
        campaign = campaign_submit(campaign, self.marketer)
        campaign = campaign_approve(campaign, self.owner)
        launched = time.monotonic()
        campaign = campaign_launch(campaign, self.owner)
        first_sent = None
        while True:
            time.sleep(0.5)
            campaign.refresh_from_db(fields=["status"])
            sent = Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.SENT).count()
            if first_sent is None and sent:
                first_sent = time.monotonic()
            if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED):
                break
            if time.monotonic() - launched > 1800:
                break
        finished = time.monotonic()
        recipients = Delivery.objects.filter(campaign=campaign).count()
        figures = {
            "recipients": recipients,
            "status": campaign.status,
            "seconds_from_launch": round(finished - launched, 1),
            "sends_per_s": round(recipients / (finished - launched), 1),
            "sends_per_s_after_freeze": round(recipients / (finished - first_sent), 1) if first_sent else None,
        }
        self.promotions.append(figures)
        self.say(f"promotion {cycle + 1}: {figures}")

    def _api_sends(self) -> None:
        """Fraud alerts and shipping notices from the shop's own systems, at a steady pace."""
        index = 0
        while not self.stop_load.wait(1 / self.options.api_per_second):
            index += 1
            body = json.dumps({
                "to": f"+8180{70000000 + index % 2000:08d}", "official_account": self.account.pk,
                "content": {"text": f"【{LEGAL_NAME}】ご注文{index}番を発送しました。"},
                "sms_text": f"【{LEGAL_NAME}】ご注文{index}番を発送しました。",
                "classification": "transaction", "ttl_seconds": 600,
            }).encode()
            request = urllib.request.Request(f"{self.web}/api/v1/messages/", data=body, method="POST", headers={
                "Authorization": f"Bearer {self.api_secret}", "Content-Type": "application/json",
                "Idempotency-Key": f"soak-{os.getpid()}-{index}",
            })
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    ok = response.status == 201
            except urllib.error.HTTPError as error:
                ok = False
                self._api_error(f"{error.code} {error.read()[:200]!r}")
            except OSError as error:
                ok = False
                self._api_error(repr(error))
            if ok:
                self.tally.add("api_sent")

    def _api_error(self, text: str) -> None:
        self.tally.add("api_errors")
        with self.tally.lock:
            if len(self.tally.api_error_examples) < 5:
                self.tally.api_error_examples.append(text)

    def _replies(self) -> None:
        """Members answer on their handsets; a few of them ask to stop."""
        chooser = random.Random(7)
        while not self.stop_load.wait(1 / self.options.replies_per_second):
            phone = member_phone(chooser.randrange(max(1, self.imported)))
            opting_out = chooser.random() < OPT_OUT_SHARE
            reply = {"type": "text", "text": "停止" if opting_out else chooser.choice(REPLY_TEXTS)}
            try:
                self.sandbox.call("POST", "replies", {"phone": phone, "trigger": "now", "reply": reply}, timeout=30)
            except urllib.error.HTTPError:  # nothing was sent to this handset yet
                continue
            except OSError:
                continue
            self.tally.add("replies")
            if opting_out:
                self.tally.add("opt_outs")

    # -- the end -------------------------------------------------------------------------------------
    def _settle(self) -> bool:
        """Wait until no campaign runs, no delivery waits and the sandbox has posted every webhook."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            running = Campaign.objects.filter(organization=self.organization, status=CampaignStatus.RUNNING).exists()
            queued = Delivery.objects.filter(organization=self.organization, status=DeliveryStatus.QUEUED).exists()
            hooks = self.sandbox.call("GET", "webhooks")
            pending = hooks["queued"] + hooks["held"] + hooks["created"] - hooks["acknowledged"] - hooks["failed"]
            if not running and not queued and pending <= 0:
                return True
            time.sleep(2)
        return False

    def _result(self, processes: Supervised, load_seconds: float, settled: bool, receipts: dict) -> dict:
        deliveries = Delivery.objects.filter(organization=self.organization)
        believed_sent = {str(uuid) for uuid in deliveries.filter(
            status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ]).values_list("uuid", flat=True)}
        at_carrier = set(self.sandbox.call("GET", "message-ids")["message_ids"])
        queued_left = deliveries.filter(status=DeliveryStatus.QUEUED).count()
        summary = self.sandbox.call("GET", "inboxes")
        by_status = {DeliveryStatus(row["status"]).name.lower(): row["n"]
                     for row in deliveries.values("status").annotate(n=Count("id"))}
        failed_reasons = {row["error_code"] or "unknown": row["n"] for row in deliveries.filter(
            status=DeliveryStatus.FAILED).values("error_code").annotate(n=Count("id"))}
        first = self.promotions[0] if self.promotions else {}
        rates = [p["sends_per_s"] for p in self.promotions]
        restarts = processes.restarts()
        return {
            "minutes": round(load_seconds / 60, 1),
            "settled": settled,
            "first_promotion_recipients": first.get("recipients"),
            "first_promotion_sends_per_s": first.get("sends_per_s"),
            "promotion_sends_per_s_median": round(statistics.median(rates), 1) if rates else None,
            "promotion_sends_per_s_min": min(rates) if rates else None,
            "receipts_per_s": round(receipts["acknowledged"] / load_seconds, 1),
            "webhooks_acknowledged": receipts["acknowledged"],
            "webhooks_failed": receipts["failed"],
            "deliveries": deliveries.count(),
            "deliveries_by_status": by_status,
            "failed_by_reason": failed_reasons,
            "lost": len(believed_sent - at_carrier) + queued_left,
            "duplicated": summary["duplicate_count"] + summary["both_channels_count"],
            "at_carrier_not_marked_sent": len(at_carrier - believed_sent),
            "restarts": sum(restarts.values()),
            "restarts_by_process": restarts,
            "memory": processes.memory(flat_after=min(300.0, load_seconds / 2)),
            "promotions": self.promotions,
            "imports": self.imports,
            "api_sent": self.tally.api_sent,
            "api_errors": self.tally.api_errors,
            "api_error_examples": self.tally.api_error_examples,
            "replies": self.tally.replies,
            "opt_outs": self.tally.opt_outs,
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
        }
