"""Celery tasks of the accounts app. Each loads by id and calls a service; nothing else.

Names are pinned (see messaging.tasks and tests/messaging/test_task_names.py).
"""

from celery import shared_task
from django.db import OperationalError

# A database hiccup or an unreachable mail server must delay the e-mail, not drop it.
RETRY = {"autoretry_for": (OperationalError, OSError), "retry_backoff": 5, "retry_backoff_max": 600,
         "retry_jitter": True, "max_retries": 8}


@shared_task(name="accounts.tasks.send_notification_email", acks_late=True, **RETRY)
def send_notification_email(notification_id: int) -> bool:
    from accounts.notifications import notification_email_send

    return notification_email_send(notification_id)
