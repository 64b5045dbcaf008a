"""Two-factor sign-in: TOTP enrolment (django-otp) with a QR code, recovery codes kept hashed, the
second step of signing in, and the organization setting that makes it mandatory.

Every path goes through these functions: the sign-in views (accounts.views.two_factor), the
member's security page and the console's guard (accounts.decorators.member_required). The API
authenticates with API keys and never comes here.

Audit actions: two_factor.enrolled, two_factor.removed, two_factor.recovery_code_used,
two_factor.recovery_codes_regenerated, two_factor.reset, settings.two_factor — a member's events are recorded once
for each organization they belong to, so each organization's audit page shows them.
"""

from __future__ import annotations

import secrets
from base64 import b32encode
from dataclasses import dataclass

import segno
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Organization, RecoveryCode, RecoveryCodeDevice, Role
from accounts.tenancy import ROLE_PERMISSIONS, user_role
from audit.services import audit_record

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "authenticator"


# --- reads -----------------------------------------------------------------------------------


def two_factor_enabled(user) -> bool:
    """Whether the member has a confirmed authenticator app."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_required(user) -> bool:
    """Whether one of the member's organizations makes two-factor sign-in mandatory."""
    return Membership.objects.filter(user=user, organization__two_factor_required=True).exists()


def two_factor_satisfied(user) -> bool:
    """Whether this session may be used: verified by a second factor (django-otp's middleware), or
    the member neither has one nor is required to."""
    is_verified = getattr(user, "is_verified", None)
    if is_verified is not None and is_verified():
        return True
    return not two_factor_enabled(user) and not two_factor_required(user)


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(device__user=user).count()


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret as base32 in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[index:index + 4] for index in range(0, len(secret), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// address as an inline SVG QR code (drawn here, no request leaves the server)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, title="QR")


# --- writes ----------------------------------------------------------------------------------


def _audit_for_member(action: str, user, *, request=None, actor=None, details: dict | None = None) -> None:
    org_ids = list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
    for org_id in org_ids or [None]:
        audit_record(action, request=request, organization=org_id, actor=actor or user,
                     target=user, target_label=user.get_username(), details=details)


def totp_device_pending(user) -> TOTPDevice:
    """The unconfirmed authenticator the member is setting up (a new secret on first call)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def _new_recovery_codes(user) -> list[str]:
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = []
    while len(codes) < RECOVERY_CODE_COUNT:
        raw = b32encode(secrets.token_bytes(10)).decode().lower()  # 80 random bits, 16 characters
        code = "-".join(raw[index:index + 4] for index in range(0, 16, 4))
        if code not in codes:
            codes.append(code)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=RecoveryCodeDevice.hash_code(code)) for code in codes
    )
    return codes


def totp_enrol(user, device: TOTPDevice, token: str, *, request=None) -> list[str]:
    """Confirm the authenticator with a code from the app; it replaces any earlier one, and a new
    set of recovery codes is made. Returns the codes in clear — shown once, stored hashed."""
    if device.user_id != user.pk or device.confirmed:
        raise ValidationError(_("This set-up has expired. Start again."), code="stale")
    token = "".join(str(token or "").split())
    if not (token.isdigit() and len(token) == device.digits) or not device.verify_token(token):
        raise ValidationError(_("That code is not right. Enter the 6-digit code your app shows now."), code="token")
    with transaction.atomic():
        replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()[0] > 0
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        codes = _new_recovery_codes(user)
        _audit_for_member("two_factor.enrolled", user, request=request,
                          details={"method": "totp", "replaced": replaced, "recovery_codes": len(codes)})
    return codes


def recovery_codes_regenerate(user, *, request=None) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    if not two_factor_enabled(user):
        raise ValidationError(_("Set up two-factor sign-in first."), code="not_enabled")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        _audit_for_member("two_factor.recovery_codes_regenerated", user, request=request,
                          details={"recovery_codes": len(codes)})
    return codes


def two_factor_remove(user, *, actor=None, request=None) -> None:
    """Turn two-factor sign-in off for the member (their authenticator and recovery codes go).

    Refused while one of their organizations makes it mandatory: they may set up a new
    authenticator instead, which replaces the old one.
    """
    if two_factor_required(user):
        raise ValidationError(
            _("Your organization requires two-factor sign-in, so it cannot be turned off. "
              "You can set up a new authenticator instead."),
            code="required",
        )
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0]
        RecoveryCodeDevice.objects.filter(user=user).delete()
        if removed:
            _audit_for_member("two_factor.removed", user, request=request, actor=actor)


def two_factor_reset_member(organization: Organization, member, *, actor, request=None) -> None:
    """An owner or admin resets a member who lost their authenticator and recovery codes: the
    member signs in with the password again and, where it is mandatory, sets up a new one.

    Owners and admins may reset others (admins not an owner); one's own goes through
    ``two_factor_remove``, which keeps the mandatory rule.
    """
    actor_role = user_role(actor, organization.pk)
    member_role = user_role(member, organization.pk)
    if actor_role is None or "manage" not in ROLE_PERMISSIONS[actor_role] or member_role is None:
        raise ValidationError(_("You cannot reset this member's two-factor sign-in."), code="forbidden")
    if member.pk == actor.pk:
        raise ValidationError(_("Use your own two-factor page for your own sign-in."), code="self")
    if member_role == Role.OWNER and actor_role != Role.OWNER:
        raise ValidationError(_("Only an owner can reset an owner's two-factor sign-in."), code="owner")
    # The second factor is the person's, not this organization's: resetting it here would open every
    # other organization (and the platform admin) of theirs to whoever knows the password.
    if member.is_superuser or Membership.objects.filter(user=member).exclude(organization=organization).exists():
        raise ValidationError(
            _("This person also signs in to another organization, so their two-factor sign-in cannot be reset "
              "from here. They can set up a new authenticator with a recovery code."),
            code="elsewhere",
        )
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=member).delete()[0]
        RecoveryCodeDevice.objects.filter(user=member).delete()
        if removed:
            _audit_for_member("two_factor.reset", member, request=request, actor=actor)


@dataclass
class SecondStep:
    """The result of a second-step attempt: the device that accepted the code, or how long to wait."""

    device: object | None = None
    wait_seconds: int = 0


def second_step_verify(user, token: str, *, request=None) -> SecondStep:
    """Check a code from the authenticator app (6 digits) or a recovery code (used up at once).

    django-otp throttles each device after a failure (1, 2, 4 … seconds); a throttled device
    answers ``wait_seconds``. Using a recovery code is audited with how many are left.
    """
    text = "".join(str(token or "").split())
    if text.isdigit() and len(text) <= 8:
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        devices = list(RecoveryCodeDevice.objects.filter(user=user, confirmed=True))
    wait = 0
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed:
            locked_until = (info or {}).get("locked_until")
            if locked_until:
                wait = max(wait, int((locked_until - timezone.now()).total_seconds()) + 1)
            continue
        with transaction.atomic():
            device = type(device).objects.select_for_update().get(pk=device.pk)
            accepted = device.verify_token(text)
        if accepted:
            if isinstance(device, RecoveryCodeDevice):
                _audit_for_member("two_factor.recovery_code_used", user, request=request,
                                  details={"recovery_codes_left": device.codes.count()})
            return SecondStep(device=device)
    return SecondStep(wait_seconds=wait)


def organization_two_factor_set(organization: Organization, required: bool, *, request=None, actor=None) -> None:
    """Make two-factor sign-in mandatory (or not) for the organization's members.

    Whoever switches it on must use it already, so they are not shut out of the console by
    their own change.
    """
    actor = actor or getattr(request, "user", None)
    if required and actor is not None and not two_factor_enabled(actor):
        raise ValidationError(
            _("Set up two-factor sign-in for yourself before making it mandatory."), code="actor_without"
        )
    before = organization.two_factor_required
    Organization.objects.filter(pk=organization.pk).update(two_factor_required=required)
    organization.two_factor_required = required
    if before != required:
        audit_record("settings.two_factor", request=request, organization=organization, actor=actor,
                     target=organization, details={"before": before, "after": required})
