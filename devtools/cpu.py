"""CPU time of a benchmark's processes by role, for figures that the machine's load does not move.

Wall-clock rates on a shared machine move with whatever else runs; CPU seconds spent per 1,000
messages do not (much). Every sending benchmark samples a ``CpuMeter`` before and after what it
times and reports ``cpu_report(before, after, messages, counted)``:

- each process it started, with everything that process forked (user + system time from
  ``/proc/<pid>/stat``: utime + stime of every living descendant, plus cutime + cstime, the time of
  children already ended and reaped, so a recycled Celery child is not lost);
- the PostgreSQL backends serving them, found in ``pg_stat_activity`` by ``application_name``
  (``harness.database_url(application_name)``; parallel-query workers by their leader's), read from
  ``/proc`` too (the database must be on this machine), polled every ``interval`` seconds because a
  session that ends takes its counters with it: a session that ends loses at most its last interval;
- with ``stages``, the per-stage CPU the processes flushed to Redis (``core.stage_cpu``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psycopg

from core import stage_cpu

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): index 0 is
    field 3 (state), so field n is at n - 3. None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int, *, reaped_children: bool = True) -> float | None:
    """User + system seconds of one process (and, with ``reaped_children``, of its ended and reaped
    children); None once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


def _start_time(fields: list[str]) -> int:
    return int(fields[19])  # starttime: with the pid, names one process even after pid reuse


def descendants(pid: int) -> list[int]:
    """``pid`` and every living process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system seconds of a process and everything it forked, living or ended and reaped."""
    return sum(process_cpu_seconds(process) or 0.0 for process in descendants(pid))


@dataclass
class CpuSample:
    """Cumulative CPU seconds at one moment: by process role, by the role of the PostgreSQL
    sessions' client, and by stage (role → stage → seconds)."""

    processes: dict[str, float]
    postgres: dict[str, float]
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    postgres_sessions: int = 0
    postgres_unreadable: int = 0
    at: float = field(default_factory=time.monotonic)


class CpuMeter:
    """Samples the CPU of a benchmark's processes. ``roots``: role → pid of a process it started
    (read at each sample, so processes started later count from then); ``sessions``:
    application_name → role of the process whose database sessions carry it; ``dsn``: where to
    find pg_stat_activity (None: no database figures); ``own_role``: the role of this process itself
    (its own CPU, without its children). Use it as a context manager: the PostgreSQL
    poller runs in a thread between enter and exit."""

    def __init__(
        self,
        roots: Mapping[str, int],
        sessions: Mapping[str, str] | None = None,
        *,
        dsn: str | None = None,
        stages: bool = False,
        interval: float = 0.5,
        own_role: str = "bench",
    ):
        self.roots, self.sessions, self.dsn, self.own_role = roots, sessions or {}, dsn, own_role
        self.stages, self.interval = stages, interval
        self._backends: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, start) → (role, seconds)
        self._unreadable: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._database = None

    def __enter__(self) -> CpuMeter:
        if self.dsn:
            self._database = psycopg.connect(self.dsn, autocommit=True)
            self._thread = threading.Thread(target=self._poll_forever, daemon=True, name="cpu-meter")
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._database is not None:
            self._database.close()

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_postgres()

    def poll_postgres(self) -> None:
        """Read the CPU of every backend serving one of our sessions now."""
        names = list(self.sessions)
        if self._database is None or not names:
            return
        with self._lock:
            rows = self._database.execute(
                "SELECT a.pid, coalesce(l.application_name, a.application_name) FROM pg_stat_activity a "
                "LEFT JOIN pg_stat_activity l ON l.pid = a.leader_pid "
                "WHERE coalesce(l.application_name, a.application_name) = ANY(%s)",
                [names],
            ).fetchall()
            for pid, name in rows:
                fields = _stat_fields(pid)
                if fields is None:
                    self._unreadable.add(pid)  # ended just now, or the database is on another machine
                    continue
                seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                self._backends[(pid, _start_time(fields))] = (self.sessions[name], seconds)

    def sample(self) -> CpuSample:
        self.poll_postgres()
        processes = {role: tree_cpu_seconds(pid) for role, pid in dict(self.roots).items()}
        if self.own_role:  # this process alone: its children are the roles above
            processes[self.own_role] = process_cpu_seconds(os.getpid(), reaped_children=False) or 0.0
        postgres: dict[str, float] = {}
        with self._lock:
            for role, seconds in self._backends.values():
                postgres[role] = postgres.get(role, 0.0) + seconds
            sessions, unreadable = len(self._backends), len(self._unreadable)
        stages = {}
        if self.stages:
            stages = {
                role: {name: values["seconds"] for name, values in by_stage.items()}
                for role, by_stage in stage_cpu.read().items()
            }
        return CpuSample(processes, postgres, stages, sessions, unreadable)


def _per_thousand(seconds: float, messages: int) -> float:
    return round(seconds * 1000 / messages, 4) if messages else 0.0


def cpu_report(before: CpuSample, after: CpuSample, messages: int, counted: Iterable[str]) -> dict:
    """CPU seconds per 1,000 ``messages`` between two samples. ``total`` adds the ``counted``
    process roles and every PostgreSQL role (the system under test); the other roles (the sandbox
    carrier, the benchmark itself) are shown apart. ``stages``: role → stage → seconds per 1,000,
    ``other`` being the role's CPU outside any stage (task overhead, Celery, HTTP parsing)."""
    counted = set(counted)

    def delta(new: Mapping[str, float], old: Mapping[str, float]) -> dict[str, float]:
        return {role: max(0.0, value - old.get(role, 0.0)) for role, value in new.items()}

    processes = delta(after.processes, before.processes)
    postgres = delta(after.postgres, before.postgres)
    stages: dict[str, dict[str, float]] = {}
    for role, by_stage in after.stages.items():
        spent = delta(by_stage, before.stages.get(role, {}))
        if not any(spent.values()):
            continue
        report = {name: _per_thousand(value, messages) for name, value in spent.items()}
        if role in processes:
            report["other"] = _per_thousand(max(0.0, processes[role] - sum(spent.values())), messages)
        stages[role] = report
    total = sum(value for role, value in processes.items() if role in counted) + sum(postgres.values())
    return {
        "messages": messages,
        "seconds": round(after.at - before.at, 2),
        "cpu_s_per_1000": _per_thousand(total, messages),
        "by_role": {
            role: _per_thousand(value, messages) for role, value in processes.items() if role in counted
        },
        "postgres_by_role": {role: _per_thousand(value, messages) for role, value in postgres.items()},
        "not_counted": {
            role: _per_thousand(value, messages) for role, value in processes.items() if role not in counted
        },
        "stages": stages,
        "postgres_sessions": after.postgres_sessions,
        "postgres_sessions_unreadable": after.postgres_unreadable,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
