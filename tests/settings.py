"""Settings for the test suite: the production settings on PostgreSQL and Redis, plus speed-ups.

Every value can still be overridden from the environment; these are only the defaults.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/plusmessage")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("TESTING", "1")
# The sandbox carrier and the tests' own webhook receivers listen on 127.0.0.1.
os.environ.setdefault("EGRESS_ALLOW_LOOPBACK", "1")
os.environ.setdefault("SECRET_KEY", "tests-only-key-never-used-in-production-7Qf2xLp9Zr4Wm8Kd3Nv6Bh1Tj5Yc0Sg")
os.environ.setdefault("VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = True

# Live-server and webhook threads each open a connection; persistent ones would pile up per thread.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
