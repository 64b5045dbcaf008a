"""The inbox's Celery tasks live in messaging/tasks.py under the names they were first queued with."""

import pytest

from config.celery import app
from messaging import tasks


def test_inbox_tasks_keep_their_celery_names():
    for task, name in [(tasks.fetch_inbound_media, "messaging.inbox.fetch_inbound_media"),
                       (tasks.send_read_receipts, "messaging.inbox.send_read_receipts")]:
        assert task.name == name
        assert app.tasks[name].run.__module__ == "messaging.tasks"


@pytest.mark.django_db
def test_a_message_queued_under_the_old_name_still_runs():
    # what a worker does with a message queued before the move: look the task up by name, run it
    result = app.tasks["messaging.inbox.fetch_inbound_media"].apply(args=(0,))
    assert result.get() == "nothing"  # no such message: nothing to fetch
