"""Two-factor sign-in services (accounts.two_factor): TOTP enrolment, recovery codes kept hashed
and used once, removal, the organization's mandatory setting, and their audit events."""

import time

import pytest
from django.core.exceptions import ValidationError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import RecoveryCode, RecoveryCodeDevice, Role
from accounts.two_factor import (
    RECOVERY_CODE_COUNT,
    organization_two_factor_set,
    recovery_codes_left,
    recovery_codes_regenerate,
    second_step_verify,
    totp_device_pending,
    totp_enrol,
    totp_qr_svg,
    totp_secret_text,
    two_factor_enabled,
    two_factor_remove,
    two_factor_required,
)
from audit.models import AuditEvent
from tests.accounts.factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db


def totp_code(device, offset_seconds=0) -> str:
    """The code an authenticator app shows for ``device`` (RFC 6238), computed independently."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time() + offset_seconds
    return f"{totp.token():0{device.digits}d}"


def enrolled(user):
    device = totp_device_pending(user)
    codes = totp_enrol(user, device, totp_code(device))
    return device, codes


@pytest.fixture
def org():
    return OrganizationFactory()


def test_two_factor_enrolment_confirms_the_app_and_gives_recovery_codes_stored_hashed(org):
    user = member(org, Role.MARKETER)
    device = totp_device_pending(user)
    assert not device.confirmed and not two_factor_enabled(user)
    assert totp_device_pending(user).pk == device.pk  # reloading the set-up page keeps the same secret
    assert "<svg" in totp_qr_svg(device)
    assert len(totp_secret_text(device).replace(" ", "")) == 32

    codes = totp_enrol(user, device, totp_code(device))

    assert two_factor_enabled(user)
    assert len(codes) == len(set(codes)) == RECOVERY_CODE_COUNT
    stored = set(RecoveryCode.objects.filter(device__user=user).values_list("code_hash", flat=True))
    assert stored == {RecoveryCodeDevice.hash_code(code) for code in codes}
    assert not stored & set(codes) and not stored & {code.replace("-", "") for code in codes}
    event = AuditEvent.objects.get(action="two_factor.enrolled")
    assert event.organization_id == org.pk and event.actor_id == user.pk
    assert event.details["recovery_codes"] == RECOVERY_CODE_COUNT


def test_two_factor_enrolment_refuses_a_wrong_code_and_stays_off(org):
    user = member(org)
    device = totp_device_pending(user)
    good = totp_code(device)
    with pytest.raises(ValidationError) as error:
        totp_enrol(user, device, "000000" if good != "000000" else "111111")
    assert error.value.code == "token"
    assert not two_factor_enabled(user)
    assert not RecoveryCode.objects.exists()
    assert not AuditEvent.objects.filter(action="two_factor.enrolled").exists()


def test_two_factor_new_authenticator_replaces_the_old_one(org):
    user = member(org)
    first, _codes = enrolled(user)
    second = totp_device_pending(user)
    assert second.pk != first.pk
    totp_enrol(user, second, totp_code(second))
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [second.pk]
    assert AuditEvent.objects.filter(action="two_factor.enrolled").order_by("id").last().details["replaced"] is True


def test_two_factor_recovery_code_works_once_and_its_use_is_audited(org):
    user = member(org)
    _device, codes = enrolled(user)

    result = second_step_verify(user, codes[3].upper().replace("-", " "))  # read back from paper

    assert isinstance(result.device, RecoveryCodeDevice)
    assert recovery_codes_left(user) == RECOVERY_CODE_COUNT - 1
    event = AuditEvent.objects.get(action="two_factor.recovery_code_used")
    assert event.organization_id == org.pk and event.details == {"recovery_codes_left": RECOVERY_CODE_COUNT - 1}
    # A success resets django-otp's throttling, so the next attempt is checked at once: used up.
    assert second_step_verify(user, codes[3]).device is None


def test_two_factor_second_step_accepts_the_app_code_and_throttles_after_a_wrong_one(org):
    user = member(org)
    device, _codes = enrolled(user)
    assert second_step_verify(user, totp_code(device, 30)).device == device
    assert second_step_verify(user, "123456x").device is None  # not a recovery code either
    wrong = second_step_verify(user, "000000" if totp_code(device, 60) != "000000" else "111111")
    assert wrong.device is None
    throttled = second_step_verify(user, totp_code(device, 60))
    assert throttled.device is None and throttled.wait_seconds >= 1


def test_two_factor_new_recovery_codes_replace_the_old_ones(org):
    user = member(org)
    _device, old = enrolled(user)
    new = recovery_codes_regenerate(user)
    assert not set(old) & set(new)
    assert second_step_verify(user, old[0]).device is None
    time.sleep(1.1)  # django-otp throttles the recovery device for a second after the failure
    assert second_step_verify(user, new[0]).device is not None
    assert AuditEvent.objects.filter(action="two_factor.recovery_codes_regenerated").count() == 1


def test_two_factor_removal_is_audited_and_refused_while_the_organization_requires_it(org):
    owner = member(org, Role.OWNER)
    enrolled(owner)
    organization_two_factor_set(org, True, actor=owner)
    assert two_factor_required(owner)
    with pytest.raises(ValidationError):
        two_factor_remove(owner)
    assert two_factor_enabled(owner)

    organization_two_factor_set(org, False, actor=owner)
    two_factor_remove(owner)
    assert not two_factor_enabled(owner)
    assert not RecoveryCodeDevice.objects.filter(user=owner).exists()
    assert AuditEvent.objects.filter(action="two_factor.removed", organization=org).count() == 1


def test_two_factor_mandatory_setting_needs_the_actor_enrolled_and_is_audited(org):
    owner = member(org, Role.OWNER)
    with pytest.raises(ValidationError) as error:
        organization_two_factor_set(org, True, actor=owner)
    assert error.value.code == "actor_without"
    org.refresh_from_db()
    assert not org.two_factor_required

    enrolled(owner)
    organization_two_factor_set(org, True, actor=owner)
    org.refresh_from_db()
    assert org.two_factor_required
    event = AuditEvent.objects.get(action="settings.two_factor")
    assert event.details == {"before": False, "after": True}
    assert two_factor_required(member(org, Role.VIEWER))
    assert not two_factor_required(member(OrganizationFactory(), Role.VIEWER))


def test_two_factor_reset_of_a_member_by_owners_and_admins(org):
    from accounts.two_factor import two_factor_reset_member

    owner, admin, marketer = member(org, Role.OWNER), member(org, Role.ADMIN), member(org, Role.MARKETER)
    for user in (owner, admin, marketer):
        enrolled(user)
    outsider = member(OrganizationFactory(), Role.OWNER)

    for actor, target, code in ((marketer, admin, "forbidden"), (admin, owner, "owner"), (admin, admin, "self"),
                                (outsider, marketer, "forbidden")):
        with pytest.raises(ValidationError) as error:
            two_factor_reset_member(org, target, actor=actor)
        assert error.value.code == code
    assert all(two_factor_enabled(user) for user in (owner, admin, marketer))

    two_factor_reset_member(org, marketer, actor=admin)
    two_factor_reset_member(org, admin, actor=owner)
    assert not two_factor_enabled(marketer) and not two_factor_enabled(admin)
    assert not RecoveryCodeDevice.objects.filter(user__in=[marketer, admin]).exists()
    events = AuditEvent.objects.filter(action="two_factor.reset", organization=org).order_by("id")
    assert [(event.actor_id, event.target_label) for event in events] == [
        (admin.pk, marketer.username), (owner.pk, admin.username)]


def test_two_factor_reset_refuses_someone_who_also_belongs_elsewhere_or_a_superuser(org):
    """An admin who adds an outsider's account to their own organization must not strip its second factor."""
    from accounts.models import Membership
    from accounts.two_factor import two_factor_reset_member

    admin = member(org, Role.ADMIN)
    elsewhere_owner = member(OrganizationFactory(), Role.OWNER)
    Membership.objects.create(organization=org, user=elsewhere_owner, role=Role.VIEWER)
    superuser = member(org, Role.VIEWER)
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    for target in (elsewhere_owner, superuser):
        enrolled(target)
        with pytest.raises(ValidationError) as error:
            two_factor_reset_member(org, target, actor=admin)
        assert error.value.code == "elsewhere"
        assert two_factor_enabled(target)
