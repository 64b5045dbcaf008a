"""Settings from the environment: production settings pass ``check --deploy``; with no environment
the console runs on the embedded default (SQLite in WAL mode with IMMEDIATE transactions, Celery's
filesystem transport), everything under VAR_DIR.

Each case runs in a subprocess with a clean environment, since settings are read once per process.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
POSTGRES_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/plusmessage")


def run(args, env, timeout=120):
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=timeout
    )


def production_env(tmp_path, **overrides):
    env = {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(64),  # 86 random characters
        "ALLOWED_HOSTS": "console.example.jp",
        "DATABASE_URL": POSTGRES_URL,
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/6",
        "VAR_DIR": str(tmp_path / "var"),
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def check_deploy(env):
    return run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_with_the_dev_default_key(tmp_path):
    result = check_deploy(production_env(tmp_path, SECRET_KEY=None))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stdout + result.stderr


def test_check_deploy_fails_with_a_short_key(tmp_path):
    result = check_deploy(production_env(tmp_path, SECRET_KEY="short-key"))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stdout + result.stderr


def test_check_deploy_fails_with_debug_on(tmp_path):
    result = check_deploy(production_env(tmp_path, DEBUG="True"))
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr


PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.db import connection
from config.celery import app as celery_app
journal_mode = busy_timeout = None
if connection.vendor == "sqlite":
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_timeout = cursor.fetchone()[0]
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "name": str(db["NAME"]),
    "journal_mode": journal_mode,
    "busy_timeout": busy_timeout,
    "transaction_mode": db["OPTIONS"].get("transaction_mode"),
    "wrapper_transaction_mode": getattr(connection, "transaction_mode", None),
    "broker": settings.CELERY_BROKER_URL,
    "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "transport_class": type(celery_app.connection_for_write().transport).__module__,
    "redis": settings.REDIS_URL,
    "embedded": settings.EMBEDDED,
    "time_zone": settings.TIME_ZONE,
    "language": settings.LANGUAGE_CODE,
    "languages": [code for code, _ in settings.LANGUAGES],
}))
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("embedded") / "var"
    result = run(["-c", PROBE], {"VAR_DIR": str(var_dir), "SECRET_KEY": secrets.token_urlsafe(64)})
    assert result.returncode == 0, result.stderr
    return var_dir, json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_default_is_sqlite_under_var_dir(embedded):
    var_dir, probe = embedded
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["embedded"] is True
    assert Path(probe["name"]).parent == var_dir
    assert Path(probe["name"]).exists()


def test_embedded_sqlite_uses_wal_and_immediate_transactions(embedded):
    _, probe = embedded
    assert probe["journal_mode"].lower() == "wal"
    assert probe["transaction_mode"] == "IMMEDIATE"
    assert probe["wrapper_transaction_mode"] == "IMMEDIATE"
    assert probe["busy_timeout"] >= 5000  # a generous wait instead of "database is locked"


def test_embedded_celery_uses_the_filesystem_transport_under_var_dir(embedded):
    var_dir, probe = embedded
    assert probe["broker"] == "filesystem://"
    transport = probe["transport"]
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        folder = Path(transport[key])
        assert var_dir in folder.parents
        assert folder.is_dir()
    assert transport["polling_interval"] <= 0.1  # a short interval: docs/architecture.md, "Two ways to run"
    assert probe["transport_class"] == "config.broker"  # not kombu's own, which can lose a message
    assert probe["redis"] == ""


def test_language_and_time_zone(embedded):
    _, probe = embedded
    assert probe["time_zone"] == "Asia/Tokyo"
    assert probe["language"] == "ja"
    assert set(probe["languages"]) == {"ja", "en"}


def test_environment_selects_postgres_and_redis(tmp_path):
    result = run(["-c", PROBE], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["embedded"] is False
    assert probe["broker"] == "redis://127.0.0.1:6379/6"
    assert probe["redis"] == "redis://127.0.0.1:6379/5"
    assert probe["transport"]["visibility_timeout"] >= 3600
