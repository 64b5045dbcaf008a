"""The Celery application shared by every worker and beat process."""

import inspect
import logging.config
import os

from celery import Celery, signals
from django.conf import settings
from django.db import close_old_connections, reset_queries

from core import stage_cpu
from core.logs import bind, log_context, replace_context, unbind

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
        # With DEBUG on (the embedded default runs so) Django keeps every query a connection ran,
        # up to 9,000 each; a request starts afresh, a long-lived worker must be told to.
        reset_queries()


@signals.task_postrun.connect
def _flush_stage_cpu(**kwargs):
    """A task's CPU time by stage, when a benchmark measures it (nothing otherwise: core.stage_cpu)."""
    stage_cpu.flush()


# --- structured logs (core.logs) ------------------------------------------------------------------

LOG_CONTEXT_HEADER = "log_context"
# The ids a task carries from whoever enqueued it (the task's own name and id are its own).
CARRIED_KEYS = ("request_id", "organization_id", "campaign_id", "delivery_id")
# Task arguments that name a campaign or a message delivery, bound into the task's log context.
ARGUMENT_IDS = {"campaign_id": "campaign_id", "parent_id": "campaign_id", "delivery_id": "delivery_id"}
# Tasks whose ``delivery_id`` is something else (an outbound webhook delivery).
NOT_MESSAGE_DELIVERIES = {"messaging.tasks.deliver_webhook"}


@signals.setup_logging.connect
def _use_django_logging(loglevel=None, **kwargs):
    """Workers and beat keep settings.LOGGING (one structured line per record on stderr) instead of
    Celery's own handlers; ``-l LEVEL`` still sets the level of Celery's own loggers. Python
    warnings (Celery warns about running as root) become log records too."""
    logging.config.dictConfig(settings.LOGGING)
    logging.captureWarnings(True)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)


@signals.before_task_publish.connect
def _carry_log_context(headers=None, **kwargs):
    """A task enqueued while handling a request (or another task) carries that work's ids."""
    carried = {key: value for key, value in log_context().items() if key in CARRIED_KEYS}
    if headers is not None and carried:
        headers[LOG_CONTEXT_HEADER] = carried


def _argument_ids(task, args, kwargs) -> dict:
    if task.name in NOT_MESSAGE_DELIVERIES:
        return {}
    try:
        arguments = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {})).arguments
    except (TypeError, ValueError):
        return {}
    return {key: arguments[name] for name, key in ARGUMENT_IDS.items() if isinstance(arguments.get(name), int | str)}


@signals.task_prerun.connect
def _bind_task_log_context(task_id=None, task=None, args=None, kwargs=None, **extra):
    """A task's log lines carry the ids it was enqueued with, its campaign or delivery, its name and id."""
    request = task.request
    carried = getattr(request, LOG_CONTEXT_HEADER, None) or (request.headers or {}).get(LOG_CONTEXT_HEADER) or {}
    ids = {key: value for key, value in dict(carried).items() if key in CARRIED_KEYS and isinstance(value, int | str)}
    ids.update(_argument_ids(task, args, kwargs), task=task.name, task_id=task_id)
    # An eager task runs inside its caller and keeps the caller's ids.
    request.log_context_token = bind(**ids) if request.is_eager else replace_context(ids)


@signals.task_postrun.connect
def _unbind_task_log_context(task=None, **extra):
    token = getattr(task.request, "log_context_token", None)
    if token is not None:
        try:
            unbind(token)
        except ValueError:  # bound in another context (a task run in a thread of its own)
            replace_context({})

