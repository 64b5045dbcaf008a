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
  settings.opt_in_keyword, campaign.test_sent, campaign.test_refused, test_number.registered,
  test_number.code_sent, test_number.confirmed, test_number.removed, settings.short_link_base

Changes made in the Django admin (platform superusers only; gateway accounts are edited there) are
``admin.*`` events recorded by config/admin_site.py; a campaign approved or launched through the
API names the key in its details.
"""

from __future__ import annotations

import logging

from audit.models import AuditEvent

logger = logging.getLogger("console.security")

ACTIONS = (
    "auth.login", "auth.login_failed", "auth.locked_out", "auth.logout", "permission.refused",
    "consent.granted", "consent.imported", "consent.revoked", "contact.opted_out", "contact.erased",
    "campaign.submitted", "campaign.approved", "campaign.sent_back", "campaign.launched", "campaign.paused",
    "campaign.resumed", "campaign.cancelled", "export.contacts", "export.recipients", "export.consent",
    "export.disclosure", "export.audit", "api_key.created", "api_key.revoked", "api_key.used",
    "settings.quiet_hours", "settings.retention", "inbox.replied",
    "member.added", "member.role_changed", "member.removed", "webhook.created", "webhook.secret_rotated",
    "webhook.enabled", "webhook.paused", "webhook.disabled", "webhook.deleted", "media.uploaded",
    "export.import_errors", "admin.added", "admin.changed", "admin.deleted", "admin.action",
    "settings.opt_in_keyword", "campaign.test_sent", "campaign.test_refused", "test_number.registered",
    "test_number.code_sent", "test_number.confirmed", "test_number.removed", "settings.short_link_base",
)


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
