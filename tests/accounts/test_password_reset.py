"""Password reset by e-mail (accounts.views.passwords): Django's flow, the same answer whether or not
the address has an account, rate-limited per client address and per e-mail address, the password
policy on the new password, and every session of the account ended when it is set."""

import re

import pytest
import redis
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import MemberSession, Role
from audit.models import AuditEvent
from core import throttle
from tests.accounts.factories import PASSWORD, OrganizationFactory, member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Yama-no-hi-2026-tozan"


@pytest.fixture(autouse=True)
def _fresh_counters():
    """The hourly counters live in Redis (or the process): start every test from zero."""
    if django_settings.REDIS_URL:
        redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    throttle._local_counts.clear()
    yield


@pytest.fixture
def org():
    return OrganizationFactory()


def request_reset(client, email, **extra):
    return client.post(reverse("password_reset"), {"email": email}, **extra)


def link_in(message) -> str:
    return re.search(r"https?://testserver(/password/reset/[^/\s]+/[^/\s]+/)", message.body).group(1)


def test_password_reset_same_answer_whether_or_not_the_address_exists(client, org):
    user = member(org, Role.VIEWER, email="sachiko@example.jp")
    known = request_reset(client, "SACHIKO@example.jp")
    unknown = request_reset(client, "nobody@example.jp")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]
    done = client.get(reverse("password_reset_done")).content.decode()
    assert "If an account uses this address" in done
    events = AuditEvent.objects.filter(action="password.reset_requested")
    assert events.count() == 2 and all(event.details == {} for event in events)


def test_password_reset_link_sets_a_new_password_and_ends_every_session(client, org):
    user = member(org, Role.VIEWER, email="ichiro@example.jp")
    elsewhere = Client(HTTP_USER_AGENT="Firefox")
    elsewhere.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert MemberSession.objects.filter(user=user).count() == 1
    request_reset(client, "ichiro@example.jp")
    message = mail.outbox[0]
    assert "パスワード" in message.subject and "password" in message.subject
    link = link_in(message)
    page = client.get(link, follow=True)
    assert page.status_code == 200 and 'name="new_password1"' in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    weak = client.post(form_url, {"new_password1": "password1234", "new_password2": "password1234"})
    assert "This password is too common." in weak.content.decode()
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert elsewhere.get(reverse("dashboard")).status_code == 302  # signed out
    assert not MemberSession.objects.filter(user=user).exists()
    assert AuditEvent.objects.get(action="password.reset").details == {"sessions_ended": 1}
    # The link works once.
    again = client.get(link, follow=True)
    assert "This link does not work" in again.content.decode()


def test_password_reset_is_rate_limited_per_address(client, org, settings):
    settings.PASSWORD_RESET_LIMIT_PER_ADDRESS = 2
    member(org, Role.VIEWER, email="limit@example.jp")
    for _ in range(2):
        assert request_reset(client, "limit@example.jp").status_code == 302
    refused = request_reset(client, "Limit@example.jp")
    assert refused.status_code == 429
    assert "Too many password reset requests" in refused.content.decode()
    assert len(mail.outbox) == 2
    # An address without an account is limited the same way: the limit answers nothing about it.
    for _ in range(2):
        request_reset(client, "ghost@example.jp")
    assert request_reset(client, "ghost@example.jp").status_code == 429
    assert AuditEvent.objects.filter(action="password.reset_refused").count() == 2


def test_password_reset_is_rate_limited_per_client_address(org, settings):
    settings.PASSWORD_RESET_LIMIT_PER_IP = 3
    client = Client(REMOTE_ADDR="192.0.2.44")
    for number in range(3):
        assert request_reset(client, f"someone{number}@example.jp").status_code == 302
    assert request_reset(client, "someone9@example.jp").status_code == 429
    assert request_reset(Client(REMOTE_ADDR="192.0.2.45"), "someone9@example.jp").status_code == 302


def test_password_reset_pages_in_japanese_and_linked_from_sign_in(client, org):
    sign_in = client.get(reverse("login")).content.decode()
    assert reverse("password_reset") in sign_in
    with translation.override("ja"):
        page = client.get(reverse("password_reset"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "パスワードの再設定" in page
