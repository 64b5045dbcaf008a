"""Recording the audit log (audit.models.AuditEvent, append-only at the database level).

``audit_record(action, ...)`` is the one function every part of the product calls: views pass the
request (the actor, the organization and the client's address come from it), services pass the
user and organization they act for. Sign-ins, failures and lock-outs come from the
django.contrib.auth and django-axes signals (audit/receivers.py).

Actions in use (keep the names stable, the audit page filters on them):
  auth.login, auth.login_failed, auth.locked_out, auth.logout, permission.refused,
  consent.granted, consent.imported, consent.revoked, contact.opted_out, contact.erased, campaign.submitted,
  campaign.approved, campaign.sent_back, campaign.launched, campaign.paused, campaign.resumed,
  campaign.cancelled, export.contacts, export.recipients, export.consent, export.disclosure, export.audit,
  api_key.created, api_key.revoked, api_key.used, settings.quiet_hours, settings.retention, inbox.replied,
  member.added, member.role_changed, member.removed, webhook.created, webhook.secret_rotated,
  webhook.enabled, webhook.paused, webhook.disabled, webhook.deleted, media.uploaded,
  export.import_errors, admin.added, admin.changed, admin.deleted, admin.action,
  settings.opt_in_keyword, settings.second_approver, campaign.test_sent, campaign.test_refused,
  test_number.registered, test_number.code_sent, test_number.confirmed, test_number.removed,
  gateway.down, gateway.recovered, invitation.sent, invitation.revoked, invitation.accepted,
  member.deactivated, member.reactivated, session.ended, password.changed, password.reset_requested,
  password.reset_refused, password.reset, two_factor.enrolled, two_factor.removed,
  two_factor.recovery_code_used, two_factor.recovery_codes_regenerated, two_factor.reset,
  settings.two_factor, settings.business_hours, settings.frequency_cap, template.created,
  template.renamed, template.deleted, campaign.cloned, settings.short_link_base, gateway.prices_changed,
  export.usage

Each has a translated label in ACTION_LABELS (``action_label``), which the audit page and its
export show instead of the code.

Changes made in the Django admin (platform superusers only; gateway accounts are edited there) are
``admin.*`` events recorded by config/admin_site.py; a campaign approved or launched through the
API names the key in its details.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent

logger = logging.getLogger("console.security")

# The one mapping from an action code (stored, stable, filtered on) to the words people read: the
# audit page, its filter and its CSV export all go through ``action_label``. A code missing here
# (an old event, a new action not yet named) shows as the code itself.
ACTION_LABELS = {
    "auth.login": _("Signed in"),
    "auth.login_failed": _("Sign-in failed"),
    "auth.locked_out": _("Locked out after failed sign-ins"),
    "auth.logout": _("Signed out"),
    "permission.refused": _("Permission refused"),
    "consent.granted": _("Consent recorded"),
    "consent.imported": _("Consent imported"),
    "consent.revoked": _("Consent withdrawn"),
    "contact.opted_out": _("Person opted out"),
    "contact.erased": _("Personal data erased"),
    "campaign.submitted": _("Campaign submitted for approval"),
    "campaign.approved": _("Campaign approved"),
    "campaign.sent_back": _("Campaign sent back"),
    "campaign.launched": _("Campaign launched"),
    "campaign.paused": _("Campaign paused"),
    "campaign.resumed": _("Campaign resumed"),
    "campaign.cancelled": _("Campaign cancelled"),
    "campaign.test_sent": _("Test message sent"),
    "campaign.test_refused": _("Test message refused"),
    "export.contacts": _("Contacts exported"),
    "export.recipients": _("Recipients exported"),
    "export.consent": _("Consent history exported"),
    "export.disclosure": _("Disclosure export"),
    "export.audit": _("Audit log exported"),
    "export.import_errors": _("Import error report downloaded"),
    "api_key.created": _("API key created"),
    "api_key.revoked": _("API key revoked"),
    "api_key.used": _("API key used"),
    "settings.quiet_hours": _("Quiet hours changed"),
    "settings.retention": _("Data retention changed"),
    "settings.opt_in_keyword": _("Opt-in keyword changed"),
    "settings.second_approver": _("Second approver setting changed"),
    "inbox.replied": _("Reply sent"),
    "member.added": _("Member added"),
    "member.role_changed": _("Member role changed"),
    "member.removed": _("Member removed"),
    "webhook.created": _("Webhook created"),
    "webhook.secret_rotated": _("Webhook secret rotated"),
    "webhook.enabled": _("Webhook enabled"),
    "webhook.paused": _("Webhook paused"),
    "webhook.disabled": _("Webhook disabled"),
    "webhook.deleted": _("Webhook deleted"),
    "media.uploaded": _("Media uploaded"),
    "gateway.down": _("Gateway down, switched to the backup"),
    "gateway.recovered": _("Gateway recovered"),
    "test_number.registered": _("Test number registered"),
    "test_number.code_sent": _("Test number code sent"),
    "test_number.confirmed": _("Test number confirmed"),
    "test_number.removed": _("Test number removed"),
    "admin.added": _("Added in the platform admin"),
    "admin.changed": _("Changed in the platform admin"),
    "admin.deleted": _("Deleted in the platform admin"),
    "admin.action": _("Platform admin action"),
    "invitation.sent": _("Invitation sent"),
    "invitation.revoked": _("Invitation revoked"),
    "invitation.accepted": _("Invitation accepted"),
    "member.deactivated": _("Member deactivated"),
    "member.reactivated": _("Member reactivated"),
    "session.ended": _("Sign-in session ended"),
    "password.changed": _("Password changed"),
    "password.reset_requested": _("Password reset requested"),
    "password.reset_refused": _("Password reset refused"),
    "password.reset": _("Password reset"),
    "two_factor.enrolled": _("Two-factor sign-in set up"),
    "two_factor.removed": _("Two-factor sign-in turned off"),
    "two_factor.recovery_code_used": _("Recovery code used"),
    "two_factor.recovery_codes_regenerated": _("New recovery codes made"),
    "two_factor.reset": _("Member's two-factor sign-in reset"),
    "settings.two_factor": _("Two-factor policy changed"),
    "settings.business_hours": _("Business hours changed"),
    "settings.frequency_cap": _("Frequency cap changed"),
    "template.created": _("Template saved"),
    "template.renamed": _("Template renamed"),
    "template.deleted": _("Template deleted"),
    "campaign.cloned": _("Campaign cloned"),
    "settings.short_link_base": _("Short-link base changed"),
    "gateway.prices_changed": _("Gateway prices changed"),
    "export.usage": _("Usage exported"),
}
ACTIONS = tuple(ACTION_LABELS)

# The groups the audit page filters by (``auth.`` matches every ``auth.*`` action).
ACTION_GROUP_LABELS = {
    "auth.": _("Sign-ins"),
    "permission.": _("Permissions"),
    "consent.": _("Consent"),
    "contact.": _("Contacts"),
    "campaign.": _("Campaigns"),
    "export.": _("Exports"),
    "api_key.": _("API keys"),
    "settings.": _("Settings"),
    "inbox.": _("Inbox"),
    "member.": _("Members"),
    "webhook.": _("Webhooks"),
    "media.": _("Media"),
    "gateway.": _("Gateways"),
    "test_number.": _("Test numbers"),
    "admin.": _("Platform admin"),
    "invitation.": _("Invitations"),
    "session.": _("Sessions"),
    "password.": _("Passwords"),
    "two_factor.": _("Two-factor sign-in"),
    "template.": _("Templates"),
}


def action_label(action: str) -> str:
    """The action in the reader's language (「キャンペーン開始」 for ``campaign.launched``); unknown codes as they are."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def client_ip(request) -> str | None:
    if request is None:
        return None
    address = (request.META.get("REMOTE_ADDR") or "").strip()
    return address or None


def _label(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return user.get_username()


def audit_record(
    action: str,
    *,
    request=None,
    organization=None,
    actor=None,
    actor_label: str = "",
    target=None,
    target_type: str = "",
    target_id="",
    target_label: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Append one audit event. ``target`` may be a model instance (its type, id and str are kept).

    Safe to call inside a transaction: the row commits or rolls back with the change it records.
    """
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if organization is None and request is not None:
        organization = getattr(request, "organization", None)
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_label = target_label or str(target)
    return AuditEvent.objects.create(
        action=action[:64],
        organization_id=getattr(organization, "pk", organization),
        actor_id=getattr(actor, "pk", None) if actor is not None and getattr(actor, "pk", None) else None,
        actor_label=(actor_label or _label(actor))[:150],
        target_type=str(target_type)[:64],
        target_id=str(target_id if target_id is not None else "")[:64],
        target_label=str(target_label)[:300],
        ip_address=client_ip(request),
        details=details or {},
    )
