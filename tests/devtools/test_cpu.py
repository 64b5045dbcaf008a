"""devtools.cpu: CPU time read from /proc for a process tree and for PostgreSQL backends by session name.

Timing is compared loosely (at least half of what was burnt): the machine is shared."""

import subprocess
import sys
import time

import psycopg
import pytest

from devtools.cpu import CpuMeter, cpu_report, process_cpu_seconds, tree_cpu_seconds
from devtools.harness import database_url

BURN = 0.4  # CPU seconds each burner spends

# Burns BURN seconds of its own CPU, says so, then waits to be stopped.
BURNER = f"""
import sys, time
while time.process_time() < {BURN}:
    pass
print("burnt", flush=True)
time.sleep(60)
"""

# Starts a child that burns BURN seconds and ends; waits for (reaps) it, then says so and waits.
PARENT = f"""
import subprocess, sys, time
subprocess.run([sys.executable, "-c", "import time\\nwhile time.process_time() < {BURN}: pass"], check=True)
print("burnt", flush=True)
time.sleep(60)
"""


def _started(code: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "burnt"
    return process


@pytest.fixture
def burner():
    process = _started(BURNER)
    yield process
    process.kill()
    process.wait()


def test_process_cpu_seconds_reads_what_a_child_burnt(burner):
    seconds = process_cpu_seconds(burner.pid)

    assert seconds >= BURN * 0.5
    assert seconds < 30  # it was sleeping since


def test_a_gone_process_reads_none():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()

    assert process_cpu_seconds(process.pid) is None


def test_tree_cpu_counts_a_child_that_ended_and_was_reaped():
    parent = _started(PARENT)
    try:
        own = process_cpu_seconds(parent.pid, reaped_children=False)
        tree = tree_cpu_seconds(parent.pid)
    finally:
        parent.kill()
        parent.wait()

    assert tree - own >= BURN * 0.5


def test_meter_reports_roles_per_thousand_messages(burner):
    meter = CpuMeter({"worker": burner.pid, "sandbox": burner.pid})
    before = meter.sample()
    before.processes["worker"] = 0.0  # as if sampled before the burn
    report = cpu_report(before, meter.sample(), messages=1000, counted=["worker"])

    assert report["by_role"]["worker"] >= BURN * 0.5
    assert report["cpu_s_per_1000"] == pytest.approx(report["by_role"]["worker"], abs=0.01)
    assert "sandbox" in report["not_counted"] and "bench" in report["not_counted"]


@pytest.mark.django_db(transaction=True)
def test_meter_reads_postgres_backends_by_application_name():
    name = "cpu-test-session"
    dsn = database_url(name)
    with (
        CpuMeter({}, {name: "worker"}, dsn=database_url(), interval=0.1) as meter,
        psycopg.connect(dsn) as session,
    ):
        before = meter.sample()
        started = time.process_time()
        # Work done by the backend, not by this process.
        session.execute("SELECT count(*) FROM generate_series(1, 3000000) AS g WHERE g % 7 = 0").fetchone()
        after = meter.sample()
        spent_here = time.process_time() - started

    assert after.postgres_sessions == 1
    assert after.postgres.get("worker", 0.0) - before.postgres.get("worker", 0.0) > 0.05
    assert spent_here < 0.2  # the query's CPU was the backend's
