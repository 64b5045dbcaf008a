"""Notifications to members: written for the member and organization, e-mailed once through Django's
e-mail backend when the member chose it (and never otherwise), read when opened or marked read."""

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings
from django.utils import translation

from accounts.models import Membership, Notification, NotificationKind, Role
from accounts.notifications import (
    notification_create,
    notification_email_send,
    notification_open,
    notification_text,
    notifications_mark_read,
    unread_count,
)
from accounts.tasks import send_notification_email
from tests.accounts.factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db


class RefusingBackend(BaseEmailBackend):
    """A mail server that cannot be reached."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server")


@pytest.fixture
def team():
    organization = OrganizationFactory()
    return {
        "organization": organization,
        "owner": member(organization, Role.OWNER, username="hanako"),
        "operator": member(organization, Role.OPERATOR, username="taro", email="taro@example.jp"),
    }


def _assign(team, **extra):
    return notification_create(
        team["organization"], team["operator"], NotificationKind.CONVERSATION_ASSIGNED,
        subject="090-1234-5678", url="/messaging/inbox/1/", actor=team["owner"], **extra,
    )


def test_notification_is_written_for_the_member_in_the_current_language(team):
    notification = _assign(team)
    assert unread_count(team["operator"], team["organization"]) == 1
    assert unread_count(team["owner"], team["organization"]) == 0
    assert unread_count(team["operator"], OrganizationFactory()) == 0
    with translation.override("en"):
        assert notification_text(notification) == "hanako assigned you the conversation with 090-1234-5678."
    with translation.override("ja"):
        text = notification_text(notification)
    assert "hanako" in text and "090-1234-5678" in text and "担当" in text


def test_notification_email_only_when_the_member_chose_it(team, django_capture_on_commit_callbacks, settings):
    settings.LANGUAGE_CODE = "ja"  # the product's default (the suite itself reads English)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _assign(team)
    assert callbacks == []  # the default: the console only
    Membership.objects.filter(user=team["operator"]).update(notify_by_email=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notification = _assign(team)
    assert len(callbacks) == 1
    assert send_notification_email.apply(args=(notification.pk,)).get() is True
    assert send_notification_email.apply(args=(notification.pk,)).get() is False  # once
    [message] = mail.outbox
    assert message.to == ["taro@example.jp"]
    assert "090-1234-5678" in message.body and "http://127.0.0.1:8000/messaging/inbox/1/" in message.body
    assert "担当" in message.subject  # written in the console's first language
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_notification_email_needs_an_address(team, django_capture_on_commit_callbacks):
    nobody = member(team["organization"], Role.OPERATOR, email="")
    Membership.objects.filter(user=nobody).update(notify_by_email=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notification_create(team["organization"], nobody, NotificationKind.CONVERSATION_ASSIGNED,
                            subject="x", url="/messaging/inbox/1/")
    assert callbacks == [] and mail.outbox == []


@override_settings(EMAIL_BACKEND="tests.accounts.test_notifications.RefusingBackend")
def test_notification_email_is_given_back_for_the_retry_when_the_server_refuses(team):
    notification = _assign(team)
    with pytest.raises(ConnectionRefusedError):
        notification_email_send(notification.pk)
    notification.refresh_from_db()
    assert notification.emailed_at is None  # the task's retry sends it


def test_notification_links_only_inside_the_console(team):
    for url in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        with pytest.raises(ValueError):
            notification_create(team["organization"], team["operator"], NotificationKind.CONVERSATION_ASSIGNED,
                                subject="x", url=url)
    assert not Notification.objects.exists()


def test_notification_open_and_mark_read_are_the_members_own(team):
    first, second = _assign(team), _assign(team)
    assert notification_open(team["owner"], team["organization"], first.pk) is None
    assert notification_open(team["operator"], team["organization"], first.pk).read_at is not None
    assert unread_count(team["operator"], team["organization"]) == 1
    assert notifications_mark_read(team["operator"], team["organization"]) == 1
    second.refresh_from_db()
    assert second.read_at is not None and unread_count(team["operator"], team["organization"]) == 0
