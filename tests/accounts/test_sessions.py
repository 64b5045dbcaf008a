"""Sign-in sessions (accounts.sessions, accounts.middleware, the Sessions page): recorded at sign-in,
listed with device, address and last activity, ended on request, when the password changes and when a
member is deactivated (then their API keys stop too)."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, MemberSession, Membership, Role
from audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, OrganizationFactory, member

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 19_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture
def org():
    return OrganizationFactory()


def browser(user, agent, address, password=PASSWORD):
    """A separate browser (its own cookies) that signs in through the login form."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 302, response.content[:500]
    return client


def signed_in(client) -> bool:
    return client.get(reverse("accounts:sessions")).status_code == 200


def test_sessions_recorded_at_sign_in_and_listed(org):
    user = member(org, Role.MARKETER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    browser(user, IPHONE, "198.51.100.20")
    records = MemberSession.objects.filter(user=user)
    assert records.count() == 2
    laptop_record = records.get(user_agent=FIREFOX)
    assert laptop_record.ip_address == "203.0.113.7"
    assert laptop_record.session_key == laptop.session.session_key
    page = laptop.get(reverse("accounts:sessions")).content.decode()
    assert "Firefox/140.0" in page and "iPhone" in page and "198.51.100.20" in page
    assert page.count("This browser") == 1
    assert "Sign out all other sessions" in page


def test_sessions_end_others_signs_out_every_other_browser(org):
    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    phone = browser(user, IPHONE, "198.51.100.20")
    tablet = browser(user, IPHONE, "198.51.100.21")
    other_user_phone = browser(member(org, Role.VIEWER), IPHONE, "198.51.100.30")
    response = laptop.post(reverse("accounts:sessions_end_others"), follow=True)
    assert "Signed out of 2 other sessions." in response.content.decode()
    assert signed_in(laptop)
    assert not signed_in(phone) and not signed_in(tablet)
    assert signed_in(other_user_phone)
    assert list(MemberSession.objects.filter(user=user).values_list("session_key", flat=True)) == [
        laptop.session.session_key
    ]
    event = AuditEvent.objects.get(action="session.ended")
    assert event.actor_id == user.pk and event.details == {"sessions": 2, "reason": "requested"}


def test_sessions_end_one_of_mine_but_not_someone_elses(org):
    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    phone = browser(user, IPHONE, "198.51.100.20")
    someone = member(org, Role.VIEWER)
    browser(someone, FIREFOX, "203.0.113.9")
    phone_record = MemberSession.objects.get(user=user, user_agent=IPHONE)
    theirs = MemberSession.objects.get(user=someone)
    assert laptop.post(reverse("accounts:session_end", args=[theirs.pk])).status_code == 404
    assert MemberSession.objects.filter(pk=theirs.pk).exists()
    assert laptop.post(reverse("accounts:session_end", args=[phone_record.pk])).status_code == 302
    assert not signed_in(phone) and signed_in(laptop)


def test_sessions_password_change_ends_the_others(org):
    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    phone = browser(user, IPHONE, "198.51.100.20")
    new_password = "Hoshi-zora-2026-kansoku"
    response = laptop.post(reverse("password_change"), {
        "old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302
    assert signed_in(laptop)
    assert not signed_in(phone)
    phone_key = phone.cookies["sessionid"].value
    assert not Session.objects.filter(session_key=phone_key).exists()  # deleted, not only made invalid
    assert MemberSession.objects.filter(user=user).count() == 1
    event = AuditEvent.objects.get(action="password.changed")
    assert event.details == {"other_sessions_ended": 1}


def test_sessions_password_change_refuses_a_common_password(org):
    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    response = laptop.post(reverse("password_change"), {
        "old_password": PASSWORD, "new_password1": "password1234", "new_password2": "password1234"})
    assert response.status_code == 200 and "This password is too common." in response.content.decode()


def test_sessions_sign_out_forgets_the_record_and_last_activity_is_kept(org, monkeypatch):
    from accounts import middleware

    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    record = MemberSession.objects.get(user=user)
    long_ago = timezone.now() - timedelta(minutes=30)
    MemberSession.objects.filter(pk=record.pk).update(last_activity_at=long_ago)
    later = middleware.time.monotonic() + 120  # this process last wrote it over a minute ago
    monkeypatch.setattr(middleware.time, "monotonic", lambda: later)
    laptop.get(reverse("dashboard"))
    record.refresh_from_db()
    assert record.last_activity_at > long_ago + timedelta(minutes=29)
    laptop.post(reverse("logout"))
    assert not MemberSession.objects.filter(user=user).exists()


def test_sessions_whose_session_expired_are_not_listed(org):
    user = member(org, Role.VIEWER)
    laptop = browser(user, FIREFOX, "203.0.113.7")
    phone = browser(user, IPHONE, "198.51.100.20")
    Session.objects.filter(session_key=phone.session.session_key).delete()  # expired and cleared
    page = laptop.get(reverse("accounts:sessions")).content.decode()
    assert "iPhone" not in page and "You are signed in only here." in page
    assert MemberSession.objects.filter(user=user).count() == 1


def test_sessions_of_a_deactivated_member_end_at_once_and_their_api_keys_stop(org):
    owner = member(org, Role.OWNER)
    marketer = member(org, Role.MARKETER)
    phone = browser(marketer, IPHONE, "198.51.100.20")
    laptop = browser(marketer, FIREFOX, "203.0.113.7")
    key, _secret = ApiKey.generate(org, "CRM", ["send"], created_by=marketer)
    membership = Membership.objects.get(organization=org, user=marketer)
    owner_client = browser(owner, FIREFOX, "203.0.113.1")
    response = owner_client.post(reverse("accounts:member_deactivate", args=[membership.pk]), follow=True)
    assert "was deactivated" in response.content.decode()
    marketer.refresh_from_db()
    assert not marketer.is_active
    assert not signed_in(phone) and not signed_in(laptop)
    assert not MemberSession.objects.filter(user=marketer).exists()
    assert not ApiKey.objects.with_creator_membership().get(pk=key.pk).works
    event = AuditEvent.objects.get(action="member.deactivated")
    assert event.details["sessions_ended"] == 2 and event.details["api_keys_stopped"] == [key.pk]
    refused = Client().post(reverse("login"), {"username": marketer.username, "password": PASSWORD})
    assert refused.status_code == 200  # cannot sign in
    page = owner_client.get(reverse("accounts:members")).content.decode()
    assert "Deactivated" in page and "Reactivate" in page
    owner_client.post(reverse("accounts:member_reactivate", args=[membership.pk]))
    marketer.refresh_from_db()
    assert marketer.is_active
    assert ApiKey.objects.with_creator_membership().get(pk=key.pk).works
    assert AuditEvent.objects.filter(action="member.reactivated").count() == 1
