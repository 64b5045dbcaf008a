"""No production start on a published key: with DEBUG off, config.settings refuses a missing, short,
low-variety, "django-insecure" or development-default SECRET_KEY with ImproperlyConfigured.

Each case starts a fresh Python process with a controlled environment, since settings are read
once per process.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
DEV_DEFAULT = "django-insecure-dev-only-key-set-SECRET_KEY-in-production"
SETUP = "import django; django.setup(); from django.conf import settings; print('started', settings.DEBUG)"


def start(tmp_path, module="config.settings", args=("-c", SETUP), **variables):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": module,
        "VAR_DIR": str(tmp_path / "var"),
        "ALLOWED_HOSTS": "console.example.jp",
    }
    env.update({name: value for name, value in variables.items() if value is not None})
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def assert_refused(result, why):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ImproperlyConfigured" in output
    assert why in output
    assert "set SECRET_KEY in the environment" in output and "token_urlsafe" in output
    assert "started" not in result.stdout


@pytest.mark.parametrize("debug", [None, "0", "False"])
def test_secret_key_missing_refuses_to_start(tmp_path, debug):
    assert_refused(start(tmp_path, DEBUG=debug), "SECRET_KEY is missing")


def test_secret_key_empty_refuses_to_start(tmp_path):
    assert_refused(start(tmp_path, SECRET_KEY=""), "SECRET_KEY is missing")


def test_secret_key_development_default_refuses_to_start(tmp_path):
    assert_refused(start(tmp_path, SECRET_KEY=DEV_DEFAULT), "development default")


def test_secret_key_short_refuses_to_start(tmp_path):
    assert_refused(start(tmp_path, SECRET_KEY=secrets.token_urlsafe(30)[:49]), "too short")


def test_secret_key_django_insecure_prefix_refuses_to_start(tmp_path):
    key = "django-insecure-" + secrets.token_urlsafe(48)
    assert_refused(start(tmp_path, SECRET_KEY=key), "django-insecure")


def test_secret_key_low_variety_refuses_to_start(tmp_path):
    assert_refused(start(tmp_path, SECRET_KEY="abcd" * 20), "fewer than 5 different characters")


def test_secret_key_refused_by_manage_py_too(tmp_path):
    result = start(tmp_path, args=("manage.py", "check"), SECRET_KEY="short-key")
    assert_refused(result, "too short")


def test_secret_key_strong_starts(tmp_path):
    result = start(tmp_path, SECRET_KEY=secrets.token_urlsafe(64))
    assert result.returncode == 0, result.stderr
    assert "started False" in result.stdout


@pytest.mark.parametrize("key", [None, DEV_DEFAULT, "short-key"])
def test_secret_key_debug_keeps_the_development_default(tmp_path, key):
    result = start(tmp_path, DEBUG="1", SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    assert "started True" in result.stdout


def test_secret_key_test_settings_still_load(tmp_path):
    """tests.settings (DEBUG off) brings its own strong key when the environment has none."""
    probe = "import django; django.setup(); from django.conf import settings; print('started', len(settings.SECRET_KEY))"
    result = start(tmp_path, module="tests.settings", args=("-c", probe))
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout
