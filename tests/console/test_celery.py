"""A Celery worker keeps its database connection across tasks, as long as CONN_MAX_AGE allows."""

import time
from types import SimpleNamespace

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class Task:
    def __init__(self, eager: bool = False):
        self.request = SimpleNamespace(is_eager=eager)


def _run_task_signals():
    task = Task()
    signals.task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")


@pytest.fixture
def worker_fixup():
    fixup = DjangoWorkerFixup(app)
    fixup.install()
    yield fixup
    signals.task_prerun.disconnect(fixup.on_task_prerun)
    signals.task_postrun.disconnect(fixup.on_task_postrun)
    signals.worker_process_init.disconnect(fixup.on_worker_process_init)
    signals.beat_embedded_init.disconnect(fixup.close_database)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_tasks_reuse_the_connection_until_it_is_too_old(worker_fixup, settings):
    assert worker_fixup.db_reuse_max == settings.CELERY_DB_REUSE_MAX
    first = _backend_pid()
    connection.close_at = time.monotonic() + 60  # as CONN_MAX_AGE = 60 sets it on connect
    for _ in range(5):
        _run_task_signals()
        assert _backend_pid() == first  # the same PostgreSQL session: no new backend per task

    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    _run_task_signals()
    assert connection.connection is None
    assert _backend_pid() != first


def test_an_eager_task_does_not_close_the_connection(worker_fixup):
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    task = Task(eager=True)
    signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert connection.connection is not None
