"""Inviting people by e-mail: owners and admins invite with a role, the invitee accepts through the
link by choosing a username and a password (Django's password validators), or — when they already
have an account — by signing in and joining.

The rules live here and nowhere else: who may invite with which role (only owners make owners), one
open invitation per address and organization (inviting again replaces it), expiry
(``INVITATION_MAX_AGE_DAYS``), revocation, and acceptance exactly once (the invitation row is locked).
Each act is in the audit log: ``invitation.sent``, ``invitation.revoked``, ``invitation.accepted``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.models import Invitation, Membership, Role
from audit.services import audit_record

logger = logging.getLogger("console.security")

EMAIL_LANGUAGES = ("ja", "en")  # the invitee's language is unknown: Japanese first, then English


class InvitationInvalid(Exception):
    """The link does not lead to an open invitation; ``reason`` is one of unknown, expired, revoked,
    accepted."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def invitation_accept_url(token: str, request=None) -> str:
    path = reverse("accounts:invitation_accept", args=[token])
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def _send_invitation_email(invitation: Invitation, url: str) -> None:
    context = {
        "organization": invitation.organization.name,
        "role": invitation.role,
        "inviter": invitation.invited_by.get_username() if invitation.invited_by else "",
        "url": url,
        "expires_at": invitation.expires_at,
    }
    subjects, bodies = [], []
    for language in EMAIL_LANGUAGES:
        with translation.override(language):
            context["role_label"] = Role(invitation.role).label
            subjects.append(render_to_string("accounts/email/invitation_subject.txt", context).strip())
            bodies.append(render_to_string("accounts/email/invitation_body.txt", context).strip())
    send_mail(" / ".join(subjects), "\n\n----------------------------------------\n\n".join(bodies), None,
              [invitation.email])


def _send_or_report(invitation: Invitation, url: str) -> None:
    try:
        _send_invitation_email(invitation, url)
    except Exception:  # noqa: BLE001 - an SMTP or network error must not turn into a server error
        logger.exception("invitation e-mail failed: org=%s invitation=%s", invitation.organization_id, invitation.pk)
        invitation.email_sent = False
    else:
        invitation.email_sent = True


def invitation_create(organization, email: str, role: str, *, acting_role: str, actor=None, request=None):
    """Invite ``email`` to ``organization`` with ``role`` and e-mail the link; returns (invitation, token).

    Refused (ValidationError keyed by field) for an unknown role, an owner invitation by a non-owner,
    and an address that already belongs to a member. An open invitation to the same address is revoked
    and replaced (that is how an invitation is sent again).
    """
    email = (email or "").strip()
    if role not in Role.values:
        raise ValidationError({"role": [_("Unknown role.")]})
    if role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError({"role": [_("Only an owner can make someone an owner.")]})
    if not email:
        raise ValidationError({"email": [_("Enter the person's e-mail address.")]})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": [_("Someone with this e-mail address is already a member.")]})
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        replaced = list(
            Invitation.objects.select_for_update().filter(
                organization=organization, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
            )
        )
        for old in replaced:
            old.revoked_at = now
            old.save(update_fields=["revoked_at"])
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=Invitation.hash_token(token),
            invited_by=actor if actor is not None and actor.is_authenticated else None,
            created_at=now,
            expires_at=now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
        )
        audit_record("invitation.sent", request=request, actor=actor, organization=organization, target=invitation,
                     target_label=email, details={"role": role, "replaced": [old.pk for old in replaced],
                                                  "expires_at": invitation.expires_at.isoformat()})
        url = invitation_accept_url(token, request)
        # Sent after commit: a failed transaction sends nothing, and a mail server error does not undo
        # the invitation. ``email_sent`` tells the caller how it went (None while the commit is pending).
        invitation.email_sent = None
        transaction.on_commit(lambda: _send_or_report(invitation, url))
    logger.info("invitation sent: org=%s invitation=%s role=%s", organization.pk, invitation.pk, role)
    return invitation, token


def invitation_revoke(invitation: Invitation, *, acting_role: str, actor=None, request=None) -> Invitation:
    """Revoke an open invitation: its link stops working at once."""
    if invitation.role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError(_("Only an owner can revoke an invitation to become an owner."))
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.accepted_at is not None:
            raise ValidationError(_("This invitation was already accepted."))
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
            audit_record("invitation.revoked", request=request, actor=actor, organization=locked.organization_id,
                         target=locked, target_label=locked.email, details={"role": locked.role})
    return locked


def invitation_from_token(token: str) -> Invitation:
    """The open invitation a link's token belongs to; InvitationInvalid with the reason otherwise."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=Invitation.hash_token(token or ""))
        .first()
    )
    if invitation is None:
        raise InvitationInvalid("unknown")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("accepted")
    if invitation.revoked_at is not None:
        raise InvitationInvalid("revoked")
    if invitation.is_expired:
        raise InvitationInvalid("expired")
    return invitation


def existing_account_for(invitation: Invitation):
    """The account that already uses the invitation's address (it joins by signing in), or None."""
    return get_user_model().objects.filter(email__iexact=invitation.email).order_by("pk").first()


def invitation_password_problems(username: str, email: str, password: str) -> list:
    """Django's password validators (AUTH_PASSWORD_VALIDATORS) for a new account; [] when it passes."""
    candidate = get_user_model()(username=username, email=email)
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as error:
        return list(error.messages)
    return []


def _accept(token: str, user_for, *, request=None):
    with transaction.atomic():
        invitation = invitation_from_token(token)  # raises for a dead link
        invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
        if invitation.accepted_at is not None or invitation.revoked_at is not None or invitation.is_expired:
            raise InvitationInvalid("accepted" if invitation.accepted_at else "revoked")
        user = user_for(invitation)
        membership, created = Membership.objects.get_or_create(
            organization=invitation.organization, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record("invitation.accepted", request=request, actor=user, organization=invitation.organization,
                     target=membership, target_label=user.get_username(),
                     details={"invitation": invitation.pk, "role": membership.role, "email": invitation.email,
                              "new_account": getattr(user, "_created_by_invitation", False),
                              "already_member": not created})
    logger.info("invitation accepted: org=%s invitation=%s user=%s", invitation.organization_id, invitation.pk, user.pk)
    return membership


def invitation_accept_new_account(token: str, username: str, password: str, *, request=None) -> Membership:
    """Accept by creating the account: ``username`` (unique) and ``password`` (the validators)."""
    user_model = get_user_model()
    username = (username or "").strip()

    def _create(invitation):
        if existing_account_for(invitation) is not None:
            raise ValidationError({"username": [_("You already have an account: sign in to accept.")]})
        problems = {}
        username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        try:
            username_field.clean(username, None)
        except ValidationError as error:
            problems["username"] = list(error.messages)
        if not problems and user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__iexact": username}).exists():
            problems["username"] = [_("This username is taken. Choose another.")]
        password_problems = invitation_password_problems(username, invitation.email, password)
        if password_problems:
            problems["password1"] = password_problems
        if problems:
            raise ValidationError(problems)
        user = user_model.objects.create_user(username=username, email=invitation.email, password=password)
        user._created_by_invitation = True
        return user

    return _accept(token, _create, request=request)


def invitation_accept_signed_in(token: str, user, *, request=None) -> Membership:
    """Accept with the account that is signed in; its e-mail address must be the invited one."""

    def _existing(invitation):
        if (user.email or "").strip().lower() != invitation.email.strip().lower():
            raise ValidationError(_("This invitation was sent to another e-mail address. Sign in with the "
                                    "account that uses it, or ask for an invitation to your address."))
        return user

    return _accept(token, _existing, request=request)
