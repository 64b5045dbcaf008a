"""The Celery application shared by every worker and beat process."""

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs):
    """Keep a worker's database connection across tasks, up to CONN_MAX_AGE, as a web request does.

    Celery's Django fixup closes it around every task unless CELERY_DB_REUSE_MAX is set (settings.py
    sets it): every task then paid a new PostgreSQL session, a forked backend, before its first query.
    Django's own check still closes a connection that has expired or broken."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
