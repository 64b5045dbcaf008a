"""Two-factor sign-in pages (accounts.views.two_factor) and the console's guard: the step after
the password, mandatory set-up, django-axes counting second-step failures, the member's page, the
organization's policy, and the API left alone."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey, ApiScope, Role
from accounts.two_factor import organization_two_factor_set, recovery_codes_left, two_factor_enabled
from audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, OrganizationFactory, member
from tests.accounts.test_two_factor import enrolled, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


def password_step(client, user, password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": user.username, "password": password}, **extra)


def wrong_code(device):
    return "000000" if totp_code(device) != "000000" and totp_code(device, 30) != "000000" else "111111"


def test_two_factor_member_is_not_signed_in_until_the_second_step(client, org):
    user = member(org, Role.MARKETER)
    device, _codes = enrolled(user)

    response = password_step(client, user)
    assert response.status_code == 302 and response["Location"] == reverse("two_factor_verify")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard")).status_code == 302  # still signed out
    page = client.get(reverse("two_factor_verify"))
    assert page.status_code == 200 and b'name="otp_code"' in page.content

    response = client.post(reverse("two_factor_verify"), {"otp_code": totp_code(device, 30)})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", actor=user).count() == 1


def test_two_factor_member_without_it_signs_in_with_the_password_alone(client, org):
    user = member(org, Role.VIEWER)
    response = password_step(client, user)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200


def test_two_factor_second_step_without_a_password_step_goes_back_to_sign_in(client):
    response = client.get(reverse("two_factor_verify"))
    assert response.status_code == 302 and response["Location"] == reverse("login")


def test_two_factor_second_step_failures_count_with_wrong_passwords_in_axes(client, org, settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = member(org, Role.OPERATOR)
    device, _codes = enrolled(user)
    assert password_step(client, user, password="wrong").status_code == 200  # failure 1
    password_step(client, user)
    response = client.post(reverse("two_factor_verify"), {"otp_code": wrong_code(device)})  # failure 2
    assert response.status_code == 200 and b"That code is not right" in response.content
    assert AccessAttempt.objects.get(username=user.username).failures_since_start == 2
    stored = AccessAttempt.objects.get(username=user.username).post_data
    assert wrong_code(device) not in stored  # the code is masked like the password

    response = client.post(reverse("two_factor_verify"), {"otp_code": totp_code(device, 30)})  # failure 3
    assert response.status_code == 429 and b"Account temporarily locked" in response.content
    assert AccessAttempt.objects.get(username=user.username).failures_since_start == 3
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_failed", actor_label=user.username).count() == 3
    assert AuditEvent.objects.filter(action="auth.locked_out", actor_label=user.username).exists()
    # The right password and the right code no longer get in while the lock lasts.
    assert password_step(client, user).status_code == 429
    assert client.get(reverse("two_factor_verify")).status_code == 302


def test_two_factor_recovery_code_signs_in_once(client, org):
    user = member(org, Role.VIEWER)
    _device, codes = enrolled(user)
    password_step(client, user)
    response = client.post(reverse("two_factor_verify"), {"otp_code": codes[0]}, follow=True)
    assert response.status_code == 200 and b"recovery code" in response.content
    assert recovery_codes_left(user) == 9
    assert AuditEvent.objects.filter(action="two_factor.recovery_code_used", organization=org).count() == 1

    client.post(reverse("logout"))
    password_step(client, user)
    response = client.post(reverse("two_factor_verify"), {"otp_code": codes[0]})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_two_factor_mandatory_member_sets_it_up_after_the_password_step(client, org):
    owner = member(org, Role.OWNER)
    enrolled(owner)
    organization_two_factor_set(org, True, actor=owner)
    user = member(org, Role.MARKETER)

    response = password_step(client, user)
    assert response.status_code == 302 and response["Location"] == reverse("accounts:two_factor_setup")
    assert "_auth_user_id" not in client.session
    page = client.get(reverse("accounts:two_factor_setup"))
    assert page.status_code == 200 and b"<svg" in page.content and b'id="two-factor-secret"' in page.content
    assert client.get(reverse("campaigns:list")).status_code == 302  # no console before enrolment

    device = user.totpdevice_set.get()
    response = client.post(reverse("accounts:two_factor_setup"), {"otp_code": totp_code(device)})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response.content.count(b"<li><code>") == 10
    assert two_factor_enabled(user)
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="two_factor.enrolled", actor=user, organization=org).exists()


def test_two_factor_pending_member_with_an_app_cannot_replace_it_from_set_up(client, org):
    user = member(org, Role.VIEWER)
    enrolled(user)
    password_step(client, user)
    response = client.get(reverse("accounts:two_factor_setup"))
    assert response.status_code == 302 and response["Location"] == reverse("two_factor_verify")


def test_two_factor_signed_in_member_is_taken_to_set_up_when_it_becomes_mandatory(client, org):
    owner = member(org, Role.OWNER)
    enrolled(owner)
    user = member(org, Role.MARKETER)
    client.force_login(user)
    assert client.get(reverse("campaigns:list")).status_code == 200
    organization_two_factor_set(org, True, actor=owner)
    response = client.get(reverse("campaigns:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor_setup") + "?next=")


def test_two_factor_unverified_session_of_an_enrolled_member_is_ended(client, org):
    user = member(org, Role.VIEWER)
    enrolled(user)
    client.force_login(user)  # a session that never passed the second step
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert "_auth_user_id" not in client.session


def signed_in_with_two_factor(client, user):
    device, codes = enrolled(user)
    password_step(client, user)
    client.post(reverse("two_factor_verify"), {"otp_code": totp_code(device, 30)})
    return device, codes


def test_two_factor_page_policy_and_removal(client, org):
    owner = member(org, Role.OWNER)
    marketer = member(org, Role.MARKETER, username="no-2fa-marketer")
    client.force_login(owner)
    page = client.get(reverse("accounts:two_factor"))
    assert page.status_code == 200 and b"Set up two-factor sign-in" in page.content
    response = client.post(reverse("accounts:two_factor_policy"), {"required": "on"}, follow=True)
    assert b"before making it mandatory" in response.content
    org.refresh_from_db()
    assert not org.two_factor_required

    client.post(reverse("logout"))
    signed_in_with_two_factor(client, owner)
    client.post(reverse("accounts:two_factor_policy"), {"required": "on"})
    org.refresh_from_db()
    assert org.two_factor_required
    page = client.get(reverse("accounts:two_factor"))
    assert b"no-2fa-marketer" in page.content
    assert b"cannot be turned off" in page.content
    client.post(reverse("accounts:two_factor_disable"))
    assert two_factor_enabled(owner)

    codes = client.post(reverse("accounts:two_factor_recovery_codes"))
    assert codes.status_code == 200 and codes.content.count(b"<li><code>") == 10

    client.post(reverse("accounts:two_factor_policy"), {})
    client.post(reverse("accounts:two_factor_disable"))
    assert not two_factor_enabled(owner)
    assert AuditEvent.objects.filter(action="two_factor.removed", organization=org).count() == 1
    assert AuditEvent.objects.filter(action="settings.two_factor", organization=org).count() == 2
    assert marketer  # listed above as a member without two-factor sign-in


def test_two_factor_owner_resets_a_member_who_lost_the_phone(client, org):
    owner = member(org, Role.OWNER)
    marketer = member(org, Role.MARKETER)
    enrolled(marketer)
    signed_in_with_two_factor(client, owner)
    page = client.get(reverse("accounts:two_factor"))
    membership = marketer.memberships.get()
    assert reverse("accounts:two_factor_member_reset", args=[membership.pk]).encode() in page.content
    response = client.post(reverse("accounts:two_factor_member_reset", args=[membership.pk]))
    assert response.status_code == 302
    assert not two_factor_enabled(marketer)
    stranger = member(OrganizationFactory(), Role.VIEWER)
    enrolled(stranger)
    elsewhere = stranger.memberships.get()
    assert client.post(reverse("accounts:two_factor_member_reset", args=[elsewhere.pk])).status_code == 404
    assert two_factor_enabled(stranger)


def test_two_factor_policy_is_for_owners_and_admins(client, org):
    marketer = member(org, Role.MARKETER)
    signed_in_with_two_factor(client, marketer)
    assert b"two-factor-policy" not in client.get(reverse("accounts:two_factor")).content
    assert client.post(reverse("accounts:two_factor_policy"), {"required": "on"}).status_code == 403


def test_two_factor_does_not_touch_the_api(org):
    owner = member(org, Role.OWNER)
    enrolled(owner)
    organization_two_factor_set(org, True, actor=owner)
    marketer = member(org, Role.MARKETER)  # mandatory, never enrolled
    _key, secret = ApiKey.generate(org, "backend", [ApiScope.CONTACTS], created_by=marketer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/contacts/").status_code == 200


def test_two_factor_second_step_page_in_japanese(client, org):
    user = member(org, Role.VIEWER)
    enrolled(user)
    password_step(client, user)
    page = client.get(reverse("two_factor_verify"), HTTP_ACCEPT_LANGUAGE="ja")
    assert "二要素認証".encode() in page.content


def test_two_factor_second_step_expires(client, org, settings):
    user = member(org, Role.VIEWER)
    device, _codes = enrolled(user)
    password_step(client, user)
    settings.TWO_FACTOR_PENDING_SECONDS = -1
    response = client.post(reverse("two_factor_verify"), {"otp_code": totp_code(device, 30)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert b"Your sign-in expired" in response.content
    assert "_auth_user_id" not in client.session
