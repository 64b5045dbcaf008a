"""Write-side services for organizations, members and official accounts (logo, fixed menu).

Views parse input and call these; every rule (last owner, logo bytes, menu limits) lives here.
"""

from __future__ import annotations

import copy
import io
import logging
import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from accounts.fixed_menu import validate_fixed_menu
from accounts.models import (
    FREQUENCY_CAP_COUNT_MAX,
    FREQUENCY_CAP_COUNT_MIN,
    FREQUENCY_CAP_DAYS_MAX,
    FREQUENCY_CAP_DAYS_MIN,
    RETENTION_CONSENT_YEARS_MAX,
    RETENTION_CONSENT_YEARS_MIN,
    RETENTION_MESSAGE_DAYS_MAX,
    RETENTION_MESSAGE_DAYS_MIN,
    ApiKey,
    Membership,
    OfficialAccount,
    Organization,
    Role,
    SecondApprover,
)
from accounts.sessions import user_sessions_end_all
from audit.services import audit_record
from core.short_links import base_problem

security_log = logging.getLogger("console.security")

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 2048  # per side
LOGO_MIN_PIXELS = 64
LOGO_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}


# --- data retention -----------------------------------------------------------------------------


def retention_problems(message_days, consent_years) -> dict[str, list]:
    """Why these retention settings cannot be saved ({field: [message]}); empty when they can."""
    problems = {}
    if not isinstance(message_days, int) or not RETENTION_MESSAGE_DAYS_MIN <= message_days <= RETENTION_MESSAGE_DAYS_MAX:
        problems["message_days"] = [_("Keep message bodies and conversations between %(min)d and %(max)d days.")
                                    % {"min": RETENTION_MESSAGE_DAYS_MIN, "max": RETENTION_MESSAGE_DAYS_MAX}]
    if not isinstance(consent_years, int) or consent_years < RETENTION_CONSENT_YEARS_MIN:
        problems["consent_years"] = [_("Consent and opt-out history must be kept at least %(min)d years.")
                                     % {"min": RETENTION_CONSENT_YEARS_MIN}]
    elif consent_years > RETENTION_CONSENT_YEARS_MAX:
        problems["consent_years"] = [_("Keep consent and opt-out history at most %(max)d years.")
                                     % {"max": RETENTION_CONSENT_YEARS_MAX}]
    return problems


def organization_retention_update(organization: Organization, *, message_days: int, consent_years: int,
                                  request=None, actor=None) -> Organization:
    """Save the organization's retention settings (messaging.retention applies them daily); audited."""
    problems = retention_problems(message_days, consent_years)
    if problems:
        raise ValidationError(problems)
    before = {"message_days": organization.retention_message_days, "consent_years": organization.retention_consent_years}
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(
            retention_message_days=message_days, retention_consent_years=consent_years
        )
        organization.retention_message_days, organization.retention_consent_years = message_days, consent_years
        audit_record("settings.retention", request=request, actor=actor, organization=organization, target=organization,
                     details={"before": before, "after": {"message_days": message_days, "consent_years": consent_years}})
    return organization


# --- frequency cap -----------------------------------------------------------------------------


def frequency_cap_problems(count, days) -> dict[str, list]:
    """Why this frequency cap cannot be saved ({field: [message]}); empty when it can. ``count``
    None switches the cap off (``days`` is then kept as it is)."""
    problems = {}
    if count is not None and (not isinstance(count, int) or not FREQUENCY_CAP_COUNT_MIN <= count
                              <= FREQUENCY_CAP_COUNT_MAX):
        problems["count"] = [_("Allow between %(min)d and %(max)d promotions, or leave it empty to switch the cap off.")
                             % {"min": FREQUENCY_CAP_COUNT_MIN, "max": FREQUENCY_CAP_COUNT_MAX}]
    if not isinstance(days, int) or not FREQUENCY_CAP_DAYS_MIN <= days <= FREQUENCY_CAP_DAYS_MAX:
        problems["days"] = [_("Count over between %(min)d and %(max)d days.")
                            % {"min": FREQUENCY_CAP_DAYS_MIN, "max": FREQUENCY_CAP_DAYS_MAX}]
    return problems


def organization_frequency_cap_update(organization: Organization, *, count, days: int, request=None,
                                      actor=None) -> Organization:
    """Save "at most ``count`` promotions per person in ``days`` days" (``count`` None: off); audited.
    The freeze of each campaign's audience applies it (messaging.engine.freeze)."""
    problems = frequency_cap_problems(count, days)
    if problems:
        raise ValidationError(problems)
    before = {"count": organization.frequency_cap_count, "days": organization.frequency_cap_days}
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(frequency_cap_count=count, frequency_cap_days=days)
        organization.frequency_cap_count, organization.frequency_cap_days = count, days
        audit_record("settings.frequency_cap", request=request, actor=actor, organization=organization,
                     target=organization, details={"before": before, "after": {"count": count, "days": days}})
    return organization


def organization_short_link_base_set(organization: Organization, value: str, *, request=None, actor=None) -> str:
    """Set where the tracked links of SMS texts point (core.short_links); empty = the console's own
    ``/s/``. Audited. Campaigns already sent keep working: their tokens are checked wherever they land."""
    value = (value or "").strip()
    problem = base_problem(value)
    if problem:
        raise ValidationError({"short_link_base": [problem]})
    if value and not value.endswith("/"):
        value += "/"
    before = organization.short_link_base
    Organization.objects.filter(pk=organization.pk).update(short_link_base=value)
    organization.short_link_base = value
    audit_record("settings.short_link_base", request=request, actor=actor, organization=organization,
                 target=organization, details={"before": before, "after": value})
    return value


# --- members ------------------------------------------------------------------------------------


def organization_business_hours_set(organization: Organization, *, start, end, days: str, request=None,
                                    actor=None) -> Organization:
    """Set (or clear, with no times) when the organization answers the inbox; audited."""
    def label(value):
        return value.strftime("%H:%M") if value else ""

    before = {"start": label(organization.business_hours_start), "end": label(organization.business_hours_end),
              "days": organization.business_days}
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(
            business_hours_start=start, business_hours_end=end, business_days=days)
        organization.business_hours_start, organization.business_hours_end = start, end
        organization.business_days = days
        audit_record("settings.business_hours", request=request, organization=organization, actor=actor,
                     target=organization, details={"before": before, "after": {
                         "start": label(start), "end": label(end), "days": days}})
    return organization


def _owner_count(organization) -> int:
    """Owners who can still sign in: a deactivated owner does not keep the organization run."""
    return Membership.objects.filter(organization=organization, role=Role.OWNER, user__is_active=True).count()


# Higher is more power; "nobody raises themselves" compares these.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.MARKETER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def _membership_audit(action: str, membership: Membership, actor, request, **details) -> None:
    audit_record(action, request=request, organization=membership.organization_id, actor=actor,
                 target=membership, target_label=membership.user.get_username(), details=details)


def membership_add(organization, identifier: str, role: str, *, acting_role: str, actor=None, request=None) -> Membership:
    """Add an existing user (found by username or e-mail) to ``organization`` with ``role``."""
    identifier = (identifier or "").strip()
    if role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError({"role": [_("Only an owner can make someone an owner.")]})
    user_model = get_user_model()
    users = list(user_model.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier), is_active=True)[:2])
    if not identifier or not users:
        raise ValidationError({"identifier": [_("No user with this username or e-mail address.")]})
    if len(users) > 1:
        raise ValidationError({"identifier": [_("Several users share this e-mail address; use the username.")]})
    user = users[0]
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError({"identifier": [_("This user is already a member.")]})
    membership = Membership.objects.create(organization=organization, user=user, role=role)
    _membership_audit("member.added", membership, actor, request, role=role)
    security_log.info("member added: org=%s user=%s role=%s", organization.pk, user.pk, role)
    return membership


@transaction.atomic
def membership_change_role(membership: Membership, role: str, *, acting_role: str, actor=None, request=None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": [_("Unknown role.")]})
    if Role.OWNER in (role, membership.role) and acting_role != Role.OWNER:
        raise ValidationError({"role": [_("Only an owner can grant or take away the owner role.")]})
    if actor is not None and membership.user_id == actor.pk and role != membership.role and (
        ROLE_RANK[role] >= ROLE_RANK[membership.role]
    ):
        raise ValidationError({"role": [_("You cannot raise your own role. Ask another owner or admin.")]})
    # Lock the organization's owners so two admins cannot demote the last two owners at once.
    list(Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER))
    if (membership.role == Role.OWNER and role != Role.OWNER and membership.user.is_active
            and _owner_count(membership.organization) <= 1):
        raise ValidationError({"role": [_("The last owner cannot be demoted. Make someone else an owner first.")]})
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    _membership_audit("member.role_changed", membership, actor, request, before=before, after=role)
    security_log.info("member role changed: org=%s user=%s role=%s", membership.organization_id, membership.user_id, role)
    return membership


@transaction.atomic
def membership_remove(membership: Membership, *, acting_role: str, actor=None, request=None) -> None:
    if membership.role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError(_("Only an owner can remove an owner."))
    list(Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER))
    if membership.role == Role.OWNER and membership.user.is_active and _owner_count(membership.organization) <= 1:
        raise ValidationError(_("The last owner cannot be removed. Make someone else an owner first."))
    security_log.info("member removed: org=%s user=%s", membership.organization_id, membership.user_id)
    _membership_audit("member.removed", membership, actor, request, role=membership.role)
    membership.delete()


def _sole_organization_check(membership: Membership) -> None:
    """Deactivation stops the person's account, so it is allowed only for someone who belongs to this
    organization alone: another organization's members are not ours to lock out (remove them instead)."""
    if Membership.objects.filter(user_id=membership.user_id).exclude(organization_id=membership.organization_id).exists():
        raise ValidationError(_("This person is also a member of another organization, so their account cannot be "
                                "deactivated from here. Remove them from this organization instead."))


@transaction.atomic
def membership_deactivate(membership: Membership, *, acting_role: str, actor=None, request=None) -> Membership:
    """Deactivate a member: they cannot sign in, every session of theirs ends at once, and their API
    keys stop (``ApiKey.works``: a key works only while its creator is an active user). Reversible."""
    user = membership.user
    if actor is not None and user.pk == actor.pk:
        raise ValidationError(_("You cannot deactivate yourself."))
    if membership.role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError(_("Only an owner can deactivate an owner."))
    if user.is_superuser:
        raise ValidationError(_("A platform administrator cannot be deactivated here."))
    _sole_organization_check(membership)
    list(Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER))
    if membership.role == Role.OWNER and user.is_active and _owner_count(membership.organization) <= 1:
        raise ValidationError(_("The last owner cannot be deactivated. Make someone else an owner first."))
    if user.is_active:
        type(user).objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        ended = user_sessions_end_all(user, reason="deactivated")
        stopped_keys = list(ApiKey.objects.filter(created_by=user, revoked_at__isnull=True).values_list("pk", flat=True))
        _membership_audit("member.deactivated", membership, actor, request, role=membership.role,
                          sessions_ended=ended, api_keys_stopped=stopped_keys)
        security_log.info("member deactivated: org=%s user=%s", membership.organization_id, user.pk)
    return membership


@transaction.atomic
def membership_reactivate(membership: Membership, *, acting_role: str, actor=None, request=None) -> Membership:
    """Let a deactivated member sign in again (their API keys work again too)."""
    user = membership.user
    if membership.role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError(_("Only an owner can reactivate an owner."))
    _sole_organization_check(membership)
    if not user.is_active:
        type(user).objects.filter(pk=user.pk).update(is_active=True)
        user.is_active = True
        _membership_audit("member.reactivated", membership, actor, request, role=membership.role)
        security_log.info("member reactivated: org=%s user=%s", membership.organization_id, user.pk)
    return membership


def organization_second_approver_set(organization: Organization, value: str, *, request=None) -> Organization:
    """Set whether a second person must approve campaigns (``SecondApprover``), recorded in the audit log."""
    if value not in SecondApprover.values:
        raise ValidationError({"second_approver": [_("Choose one of the options.")]})
    before = organization.second_approver
    Organization.objects.filter(pk=organization.pk).update(second_approver=value)
    organization.second_approver = value
    audit_record("settings.second_approver", request=request, organization=organization.pk, target=organization,
                 details={"before": before, "after": value})
    return organization


# --- official account: logo ---------------------------------------------------------------------


def logo_to_png(uploaded) -> ContentFile:
    """Check an uploaded logo by its bytes and return it re-encoded as PNG.

    The name and the Content-Type are ignored: Pillow must recognise the bytes as a raster image
    (PNG, JPEG, GIF, WebP). SVG, which can carry scripts, is refused. Re-encoding drops metadata
    and anything appended to the image.
    """
    size = getattr(uploaded, "size", None)
    if size is not None and size > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo is larger than 2 MB."), code="too_large")
    data = uploaded.read(LOGO_MAX_BYTES + 1)
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo is larger than 2 MB."), code="too_large")
    if not data:
        raise ValidationError(_("The file is empty."), code="empty")
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<") or b"<svg" in head:
        raise ValidationError(_("SVG and other vector or text files are not accepted; upload a PNG or JPEG."), code="svg")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            image_format = probe.format
            width, height = probe.size
            if image_format not in LOGO_FORMATS:
                raise ValidationError(_("Upload a PNG, JPEG, GIF or WebP image."), code="format")
            if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
                raise ValidationError(
                    _("The logo is %(w)d×%(h)d pixels; the limit is %(max)d×%(max)d.")
                    % {"w": width, "h": height, "max": LOGO_MAX_PIXELS},
                    code="dimensions",
                )
            if width < LOGO_MIN_PIXELS or height < LOGO_MIN_PIXELS:
                raise ValidationError(
                    _("The logo is %(w)d×%(h)d pixels; use at least %(min)d×%(min)d.")
                    % {"w": width, "h": height, "min": LOGO_MIN_PIXELS},
                    code="dimensions",
                )
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            converted = image.convert("RGBA")
    except ValidationError:
        raise
    except Image.DecompressionBombError:  # Pillow's pixel limit, met before anything is decoded
        raise ValidationError(
            _("The image declares far more pixels than a logo may have; the limit is %(max)d×%(max)d.")
            % {"max": LOGO_MAX_PIXELS},
            code="dimensions",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(_("This file is not an image we can read. Upload a PNG or JPEG."), code="not_image") from None
    out = io.BytesIO()
    converted.save(out, format="PNG", optimize=True)
    return ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.png")


def official_account_set_logo(account: OfficialAccount, uploaded, *, actor=None, request=None) -> OfficialAccount:
    png = logo_to_png(uploaded)
    old_name = account.logo.name if account.logo else ""
    account.logo.save(png.name, png, save=False)
    account.save(update_fields=["logo"])
    audit_record("media.uploaded", request=request, organization=account.organization_id, actor=actor, target=account,
                 details={"purpose": "logo", "name": account.logo.name, "size": png.size,
                          "original_name": str(getattr(uploaded, "name", ""))[:200]})
    if old_name and old_name != account.logo.name:
        account.logo.storage.delete(old_name)
    return account


def official_account_update(account: OfficialAccount, **fields) -> OfficialAccount:
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    account.save()
    return account


# --- official account: fixed menu ---------------------------------------------------------------
#
# An item is addressed by a path: "2" is the third top-level item, "2.0" the first entry of that
# item's submenu. Each operation builds the new menu, validates the whole of it with
# accounts.fixed_menu.validate_fixed_menu, and saves only if it is valid.


class MenuPathError(ValidationError):
    pass


def parse_menu_path(path: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(part) for part in str(path).split("."))
    except ValueError:
        raise MenuPathError(_("Unknown menu item.")) from None
    if not 1 <= len(parts) <= 2 or any(part < 0 for part in parts):
        raise MenuPathError(_("Unknown menu item."))
    return parts


def _siblings(menu: dict, path: tuple[int, ...]) -> list:
    """The list that holds the item at ``path`` (the top-level list, or a submenu's list)."""
    items = menu.setdefault("items", [])
    if len(path) == 1:
        return items
    parent_index = path[0]
    if parent_index >= len(items) or "items" not in items[parent_index]:
        raise MenuPathError(_("Unknown menu item."))
    return items[parent_index]["items"]


def menu_item_at(menu: dict, path: str) -> dict:
    parts = parse_menu_path(path)
    siblings = _siblings(copy.deepcopy(menu), parts)
    if parts[-1] >= len(siblings):
        raise MenuPathError(_("Unknown menu item."))
    return siblings[parts[-1]]


def _save_menu(account: OfficialAccount, menu: dict) -> OfficialAccount:
    validate_fixed_menu(menu)
    account.fixed_menu = menu
    account.save(update_fields=["fixed_menu"])
    return account


def fixed_menu_put_item(account: OfficialAccount, item: dict, *, path: str | None = None, parent: str | None = None):
    """Replace the item at ``path``, or append ``item`` to the top level (or to submenu ``parent``).

    Returns (account, path of the item). Raises ValidationError keyed by the menu field path.
    """
    menu = copy.deepcopy(account.fixed_menu or {"items": []})
    menu.setdefault("items", [])
    if path is not None:
        parts = parse_menu_path(path)
        siblings = _siblings(menu, parts)
        if parts[-1] >= len(siblings):
            raise MenuPathError(_("Unknown menu item."))
        existing = siblings[parts[-1]]
        if "items" in existing and "items" in item:
            item = {**item, "items": existing["items"]}  # editing a submenu's label keeps its entries
        siblings[parts[-1]] = item
        new_path = parts
    elif parent is not None:
        parent_parts = parse_menu_path(parent)
        if len(parent_parts) != 1 or parent_parts[0] >= len(menu["items"]) or "items" not in menu["items"][parent_parts[0]]:
            raise MenuPathError(_("Submenus can only be nested one level deep."))
        submenu = menu["items"][parent_parts[0]]["items"]
        submenu.append(item)
        new_path = (parent_parts[0], len(submenu) - 1)
    else:
        menu["items"].append(item)
        new_path = (len(menu["items"]) - 1,)
    _save_menu(account, menu)
    return account, ".".join(map(str, new_path))


def fixed_menu_move_item(account: OfficialAccount, path: str, direction: str) -> OfficialAccount:
    parts = parse_menu_path(path)
    menu = copy.deepcopy(account.fixed_menu or {"items": []})
    siblings = _siblings(menu, parts)
    index = parts[-1]
    target = index - 1 if direction == "up" else index + 1
    if index >= len(siblings):
        raise MenuPathError(_("Unknown menu item."))
    if 0 <= target < len(siblings):
        siblings[index], siblings[target] = siblings[target], siblings[index]
        _save_menu(account, menu)
    return account


def fixed_menu_delete_item(account: OfficialAccount, path: str) -> OfficialAccount:
    parts = parse_menu_path(path)
    menu = copy.deepcopy(account.fixed_menu or {"items": []})
    siblings = _siblings(menu, parts)
    if parts[-1] >= len(siblings):
        raise MenuPathError(_("Unknown menu item."))
    del siblings[parts[-1]]
    if len(parts) == 2 and not siblings:
        # An empty submenu is invalid; deleting its last entry deletes the submenu.
        del menu["items"][parts[0]]
    _save_menu(account, menu)
    return account
