"""Invitations by e-mail (accounts.invitations and the members page): who may invite with which role,
the e-mailed link, expiry, revocation, acceptance exactly once with Django's password validators, and
an existing account joining by signing in. Each act is in the audit log."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from accounts.invitations import InvitationInvalid, invitation_accept_new_account, invitation_create
from accounts.models import Invitation, Membership, Role
from audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, OrganizationFactory, UserFactory, member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Umi-no-hi-2026-kaigan"


@pytest.fixture
def org():
    return OrganizationFactory(name="株式会社うみ")


def link_from(message) -> str:
    return re.search(r"https?://\S+/accounts/invitations/\S+/", message.body).group(0)


def invite(client, email, role=Role.MARKETER):
    return client.post(reverse("accounts:member_invite"), {"email": email, "role": role})


def test_invitation_is_sent_by_an_admin_and_listed_as_pending(client, org, django_capture_on_commit_callbacks):
    admin = member(org, Role.ADMIN)
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, "hanako@example.jp")
    assert response.status_code == 302
    invitation = Invitation.objects.get(organization=org)
    assert invitation.role == Role.MARKETER and invitation.invited_by == admin
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["hanako@example.jp"]
    assert "株式会社うみ" in message.subject
    assert "招待" in message.body and "invites you" in message.body  # Japanese first, then English
    url = link_from(message)
    assert url.startswith("http://testserver/accounts/invitations/")
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert token not in invitation.token_hash and invitation.token_hash == Invitation.hash_token(token)
    page = client.get(reverse("accounts:members")).content.decode()
    assert "hanako@example.jp" in page and 'id="invitation-' in page
    assert AuditEvent.objects.filter(action="invitation.sent", organization=org, target_label="hanako@example.jp").exists()


def test_invitation_rules_owner_role_member_address_and_bad_email(client, org):
    admin = member(org, Role.ADMIN)
    existing = member(org, Role.VIEWER, email="taken@example.jp")
    client.force_login(admin)
    response = invite(client, "boss@example.jp", Role.OWNER)
    assert response.status_code == 400 and "Only an owner can make someone an owner" in response.content.decode()
    response = invite(client, existing.email.upper())
    assert "already a member" in response.content.decode()
    response = invite(client, "not-an-address")
    assert response.status_code == 400 and "Enter a valid email address" in response.content.decode()
    assert 'value="not-an-address"' in response.content.decode()
    assert not Invitation.objects.exists()
    viewer = member(org, Role.VIEWER)
    client.force_login(viewer)
    assert invite(client, "x@example.jp").status_code == 403


def test_invitation_again_replaces_the_open_one(org):
    owner = member(org, Role.OWNER)
    first, first_token = invitation_create(org, "again@example.jp", Role.VIEWER, acting_role=Role.OWNER, actor=owner)
    second, second_token = invitation_create(org, "AGAIN@example.jp", Role.OPERATOR, acting_role=Role.OWNER, actor=owner)
    first.refresh_from_db()
    assert first.revoked_at is not None and second.revoked_at is None
    with pytest.raises(InvitationInvalid) as dead:
        invitation_accept_new_account(first_token, "again", NEW_PASSWORD)
    assert dead.value.reason == "revoked"
    membership = invitation_accept_new_account(second_token, "again", NEW_PASSWORD)
    assert membership.role == Role.OPERATOR


def test_invitation_accepted_with_a_password_creates_the_member_once(client, org):
    owner = member(org, Role.OWNER)
    invitation, token = invitation_create(org, "jiro@example.jp", Role.MARKETER, acting_role=Role.OWNER, actor=owner)
    url = reverse("accounts:invitation_accept", args=[token])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "株式会社うみ" in body and 'value="jiro"' in body  # the username is suggested from the address
    response = client.post(url, {"username": "jiro", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    user = get_user_model().objects.get(username="jiro")
    assert user.email == "jiro@example.jp" and user.check_password(NEW_PASSWORD)
    assert Membership.objects.get(organization=org, user=user).role == Role.MARKETER
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    event = AuditEvent.objects.get(action="invitation.accepted")
    assert event.actor_id == user.pk and event.details["new_account"] is True
    # The link is spent: a second use says so, and creates nothing.
    again = client.post(url, {"username": "jiro2", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert again.status_code == 410 and "already used" in again.content.decode()
    assert not get_user_model().objects.filter(username="jiro2").exists()
    # And the person signs in with what they chose.
    signed_in = client.post(reverse("login"), {"username": "jiro", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password1234", "This password is too common."),
        ("short-1", "This password is too short."),
        ("48213957260481", "This password is entirely numeric."),
        ("kaito-yamada-example", "too similar"),
    ],
)
def test_invitation_password_policy_uses_django_validators(client, org, password, message):
    owner = member(org, Role.OWNER)
    _invitation, token = invitation_create(org, "kaito-yamada@example.jp", Role.VIEWER, acting_role=Role.OWNER,
                                           actor=owner)
    url = reverse("accounts:invitation_accept", args=[token])
    response = client.post(url, {"username": "kaito-yamada", "password1": password, "password2": password})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'id="id_password1_errors"' in response.content.decode()  # beside the field
    assert not get_user_model().objects.filter(username="kaito-yamada").exists()


def test_invitation_password_errors_are_in_japanese(client, org):
    owner = member(org, Role.OWNER)
    _invitation, token = invitation_create(org, "ja@example.jp", Role.VIEWER, acting_role=Role.OWNER, actor=owner)
    url = reverse("accounts:invitation_accept", args=[token])
    with translation.override("ja"):
        common = client.post(url, {"username": "ja-user", "password1": "password1234", "password2": "password1234"},
                             HTTP_ACCEPT_LANGUAGE="ja").content.decode()
        differ = client.post(url, {"username": "ja-user", "password1": NEW_PASSWORD, "password2": "x"},
                             HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "チームに参加" in common
    assert "このパスワードは一般的すぎます" in common  # Django's own Japanese (CommonPasswordValidator)
    assert "2つのパスワードが一致しません" in differ


def test_invitation_username_taken_and_mismatch(client, org):
    owner = member(org, Role.OWNER)
    UserFactory(username="taken")
    _invitation, token = invitation_create(org, "new@example.jp", Role.VIEWER, acting_role=Role.OWNER, actor=owner)
    url = reverse("accounts:invitation_accept", args=[token])
    response = client.post(url, {"username": "TAKEN", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert "This username is taken" in response.content.decode()
    response = client.post(url, {"username": "fresh", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"})
    assert "The two passwords differ" in response.content.decode()


def test_invitation_expired_or_revoked_or_unknown_link(client, org):
    owner = member(org, Role.OWNER)
    invitation, token = invitation_create(org, "late@example.jp", Role.VIEWER, acting_role=Role.OWNER, actor=owner)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("accounts:invitation_accept", args=[token]))
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert client.get(reverse("accounts:invitation_accept", args=["nope"])).status_code == 404
    # Expired invitations are not listed as pending.
    client.force_login(owner)
    assert "late@example.jp" not in client.get(reverse("accounts:members")).content.decode()


def test_invitation_revoked_by_an_admin_stops_the_link(client, org):
    admin = member(org, Role.ADMIN)
    owner = member(org, Role.OWNER)
    invitation, token = invitation_create(org, "gone@example.jp", Role.VIEWER, acting_role=Role.ADMIN, actor=admin)
    owner_invitation, _token = invitation_create(org, "boss@example.jp", Role.OWNER, acting_role=Role.OWNER, actor=owner)
    client.force_login(admin)
    client.post(reverse("accounts:invitation_revoke", args=[invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    response = client.post(reverse("accounts:invitation_revoke", args=[owner_invitation.pk]), follow=True)
    assert "Only an owner can revoke" in response.content.decode()
    owner_invitation.refresh_from_db()
    assert owner_invitation.revoked_at is None
    assert client.get(reverse("accounts:invitation_accept", args=[token])).status_code == 410
    assert AuditEvent.objects.filter(action="invitation.revoked", target_label="gone@example.jp").count() == 1
    other = Invitation.objects.create(organization=OrganizationFactory(), email="x@example.jp",
                                      token_hash="x" * 64, expires_at=timezone.now() + timedelta(days=1))
    assert client.post(reverse("accounts:invitation_revoke", args=[other.pk])).status_code == 404


def test_invitation_for_an_existing_account_joins_by_signing_in(client, org):
    owner = member(org, Role.OWNER)
    elsewhere = member(OrganizationFactory(), Role.OWNER, email="known@example.jp")
    _invitation, token = invitation_create(org, "Known@example.jp", Role.OPERATOR, acting_role=Role.OWNER,
                                           actor=owner)
    url = reverse("accounts:invitation_accept", args=[token])
    page = client.get(url).content.decode()
    assert "already has an account" in page and 'name="password1"' not in page
    with pytest.raises(ValidationError):  # no new password for an address that has an account
        invitation_accept_new_account(token, "other-name", NEW_PASSWORD)
    stranger = member(OrganizationFactory(), Role.OWNER, email="stranger@example.jp")
    client.force_login(stranger)
    response = client.post(url)
    assert response.status_code == 400 and "another e-mail address" in response.content.decode()
    client.force_login(elsewhere)
    response = client.post(url)
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=elsewhere).role == Role.OPERATOR
    assert elsewhere.check_password(PASSWORD)


def test_invitation_link_works_only_once(org):
    owner = member(org, Role.OWNER)
    _invitation, token = invitation_create(org, "race@example.jp", Role.VIEWER, acting_role=Role.OWNER, actor=owner)
    invitation_accept_new_account(token, "race", NEW_PASSWORD)
    with pytest.raises(InvitationInvalid):
        invitation_accept_new_account(token, "race-2", NEW_PASSWORD)
    assert Membership.objects.filter(organization=org).count() == 2


@pytest.mark.django_db(transaction=True)  # the e-mail goes on commit, as in production (no test transaction)
def test_invitation_saved_with_a_warning_when_the_mail_server_fails(client, org, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    client.force_login(member(org, Role.OWNER))
    response = invite(client, "offline@example.jp")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "could not be sent" in page
    assert Invitation.objects.pending().filter(email="offline@example.jp").exists()
