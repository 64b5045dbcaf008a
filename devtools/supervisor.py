"""Run every process of a Procfile and keep them running: ``python -m devtools.supervisor Procfile``.

The embedded default (`make run`) starts the web server, both Celery workers, beat and the sandbox
carrier from the project's Procfile through this supervisor. Unlike honcho or foreman, which stop
everything as soon as one process exits, a process that exits here is started again after a
back-off (1 s, doubling up to 30 s, back to 1 s once it has run for a minute), so one failing
process never takes the web console down. Every start, exit and restart is printed on the terminal
and appended to ``var/log/supervisor.log``; ``var/run/processes.json`` holds each process's pid,
state and restart count for the operator. Ctrl-C (or SIGTERM) stops them all.

Plain Python: it imports nothing of the product, so it runs before Django is set up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a process that ran this long starts its next back-off from the beginning
STOP_GRACE = 10.0
POLL = 0.2

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def parse_procfile(text: str) -> dict[str, str]:
    """``name: command`` lines; blank lines and ``#`` comments are skipped."""
    processes = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        if match is None:
            raise ValueError(f"Procfile line {number} is not 'name: command': {line!r}")
        processes[match.group(1)] = match.group(2)
    return processes


@dataclass
class Process:
    name: str
    command: str
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    last_exit: int | None = None
    history: list = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.popen is not None and self.popen.poll() is None:
            return "running"
        return "waiting" if self.restart_at is not None else "stopped"


class Supervisor:
    def __init__(self, processes: dict[str, str], var_dir: Path, out=sys.stdout):
        self.processes = [Process(name, command) for name, command in processes.items()]
        self.log_dir = var_dir / "log"
        self.run_dir = var_dir / "run"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.stopping = False

    def say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} supervisor: {message}"
        print(line, file=self.out, flush=True)
        with open(self.log_dir / "supervisor.log", "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def start(self, process: Process) -> None:
        with open(self.log_dir / f"{process.name}.log", "ab") as log:
            process.popen = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {process.command}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        process.started_at = time.monotonic()
        process.restart_at = None
        self.say(f"started {process.name} (pid {process.popen.pid})")

    def check(self, process: Process, now: float) -> None:
        """Notice an exit and plan the restart; start it when its back-off is over."""
        if process.restart_at is not None:
            if now >= process.restart_at:
                process.restarts += 1
                self.start(process)
            return
        code = process.popen.poll() if process.popen is not None else None
        if code is None:
            return
        ran = now - process.started_at
        if ran >= STABLE_AFTER:
            process.backoff = BACKOFF_FIRST
        process.last_exit = code
        process.restart_at = now + process.backoff
        self.say(f"{process.name} exited with code {code} after {ran:.1f} s; restarting in {process.backoff:.0f} s "
                 f"(see var/log/{process.name}.log)")
        process.backoff = min(process.backoff * 2, BACKOFF_MAX)

    def write_status(self) -> None:
        status = {
            process.name: {
                "state": process.state,
                "pid": process.popen.pid if process.popen is not None and process.state == "running" else None,
                "restarts": process.restarts,
                "last_exit": process.last_exit,
            }
            for process in self.processes
        }
        temporary = self.run_dir / ".processes.json.tmp"
        temporary.write_text(json.dumps(status, indent=2))
        os.replace(temporary, self.run_dir / "processes.json")

    def stop_all(self) -> None:
        running = [p for p in self.processes if p.popen is not None and p.popen.poll() is None]
        for process in running:
            # The leader only: a Celery worker then finishes the batch in hand and hands back what it
            # had not started (a warm shutdown); signalled too, its pool children would die mid-batch.
            _signal_leader(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.popen, signal.SIGKILL)
                process.popen.wait()
        for process in self.processes:
            process.restart_at = None
        self.write_status()
        self.say("stopped every process")

    def run(self) -> None:
        def stop(signum, frame):
            self.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for process in self.processes:
            self.start(process)
        try:
            while not self.stopping:
                now = time.monotonic()
                for process in self.processes:
                    self.check(process, now)
                self.write_status()
                time.sleep(POLL)
        finally:
            self.stop_all()


def _signal_leader(popen: subprocess.Popen, signum: int) -> None:
    try:
        os.kill(popen.pid, signum)
    except ProcessLookupError:
        pass


def _signal_group(popen: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(popen.pid, signum)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile")
    var_dir = Path(os.environ.get("VAR_DIR", "var"))
    Supervisor(parse_procfile(procfile.read_text()), var_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
