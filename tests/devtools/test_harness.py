"""devtools.harness.Processes: each child's PostgreSQL sessions carry its name, so devtools.cpu finds them."""

import sys

from devtools.harness import Processes


def test_children_name_their_database_sessions_and_report_stages_under_their_name(tmp_path, settings):
    settings.VAR_DIR = str(tmp_path)
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/db", "PATH": "/usr/bin:/bin"}
    probe = "import os; print(os.environ['DATABASE_URL'], os.environ.get('STAGE_CPU', ''))"
    with Processes("bench-x", env, stage_cpu=True) as processes:
        worker = processes.start("worker", [sys.executable, "-c", probe])
        worker.wait()
        named = processes.start(
            "hooks",
            [sys.executable, "-c", probe],
            env={"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/db?application_name=mine"},
        )
        named.wait()
        assert processes.pids == {"worker": worker.pid, "hooks": named.pid}
        processes.stop(worker)
        assert processes.pids == {"hooks": named.pid}

    assert processes.sessions == {"bench-x-worker": "worker", "mine": "hooks"}
    output = (tmp_path / "bench-x-worker.log").read_text().split()
    assert output == ["postgres://postgres@127.0.0.1:5432/db?application_name=bench-x-worker", "worker"]


def test_a_sqlite_database_url_is_left_alone(tmp_path, settings):
    settings.VAR_DIR = str(tmp_path)
    with Processes(
        "bench-x", {"DATABASE_URL": "sqlite:////tmp/x.sqlite3", "PATH": "/usr/bin:/bin"}
    ) as processes:
        processes.start("web", [sys.executable, "-c", "import os; print(os.environ['DATABASE_URL'])"]).wait()

    assert processes.sessions == {}
    assert (tmp_path / "bench-x-web.log").read_text().strip() == "sqlite:////tmp/x.sqlite3"
