"""The embedded default's supervisor: a process that exits is restarted with back-off, the others
keep running, and stopping the supervisor stops every process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.supervisor import parse_procfile

BASE_DIR = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().split(")")[-1].split()[0] != "Z"


def status(var_dir: Path) -> dict:
    try:
        return json.loads((var_dir / "run" / "processes.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_a_crashing_process_is_restarted_and_the_others_keep_running(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"steady: {sys.executable} -c 'import time; time.sleep(600)'\n"
        f"flaky: {sys.executable} -c 'import sys, time; time.sleep(0.2); sys.exit(3)'\n"
    )
    var_dir = tmp_path / "var"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "devtools.supervisor", str(procfile)],
        cwd=BASE_DIR, env={**os.environ, "VAR_DIR": str(var_dir)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        steady_pid = wait_for(lambda: status(var_dir).get("steady", {}).get("pid"), what="steady to start")
        flaky = wait_for(lambda: (s := status(var_dir).get("flaky", {})).get("restarts", 0) >= 2 and s,
                         what="two restarts of the crashing process")
        assert flaky["last_exit"] == 3
        assert status(var_dir)["steady"]["pid"] == steady_pid and alive(steady_pid)
        log = (var_dir / "log" / "supervisor.log").read_text()
        assert "flaky exited with code 3" in log and "restarting in 1 s" in log and "restarting in 2 s" in log
    finally:
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, output
    assert "stopped every process" in output
    assert not alive(steady_pid)
    assert status(var_dir)["steady"]["state"] == "stopped"


def test_procfile_lines_and_a_clear_error_for_a_bad_one():
    assert parse_procfile("# comment\n\nweb: uvicorn app --port ${PORT:-8000}\nbeat: celery beat\n") == {
        "web": "uvicorn app --port ${PORT:-8000}",
        "beat": "celery beat",
    }
    with pytest.raises(ValueError, match="line 2"):
        parse_procfile("web: ok\nnot a process line\n")


def test_the_projects_procfile_runs_every_process_of_the_embedded_default():
    processes = parse_procfile((BASE_DIR / "Procfile").read_text())
    assert set(processes) == {"web", "bulk", "priority", "beat", "sandbox"}
    assert "uvicorn config.asgi:application" in processes["web"]  # a production server, not runserver
