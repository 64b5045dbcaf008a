"""Opt-out and the consent ledger (特定電子メール法): services the inbox, the opt-out link page, the
contact pages and the API call.

- ``is_opt_out_keyword`` / ``is_opt_out_postback``: 配信停止, 停止, ストップ, STOP, 解除, UNSUBSCRIBE in
  full-width or half-width form, any case, surrounding spaces (NFKC + casefold + strip); the
  opt-out postback is ``optout``.
- ``contact_opt_out``: effective at once for every later send (the engine re-reads
  ``Contact.opted_out_at`` when it claims each delivery), revokes every active consent, writes the
  audit log, and sends ``signals.contact_opted_out``, on which messaging sends the person one short
  transactional confirmation — once (campaigns never imports messaging).
- ``is_opt_in_keyword`` / ``contact_opt_in_by_keyword``: the organization's opt-in keyword (set by
  admins through ``opt_in_keyword_set``, e.g. 登録; compared like the opt-out keywords, and never one
  of them). A person who texts it gets a consent record with method "reply keyword" whose evidence is
  the inbound message; messaging then sends ``OPT_IN_CONFIRMATION_TEXT``. Someone who already has an
  active consent gets neither a second record nor a second confirmation.
- ``consent_grant``: a new consent record; it is also the only way back after an opt-out
  (re-subscribing needs new consent given after the opt-out).
- ``contact_erase``: what replaces deletion while the consent history must be kept (3 years):
  name, attributes and list memberships go, the number and the consent / opt-out history stay,
  and the person is opted out; ``signals.contact_erased`` lets messaging remove the person's inbox
  (texts, files and their stored bytes, locations) in the same transaction. Deleting a contact (or a consent) whose history is younger than the
  retention period is refused (see ``refuse_early_deletion``, connected in CampaignsConfig.ready).
- ``consent_ledger_lines``: the per-contact ledger as CSV lines (``consent_history_events``: its
  audit events, which the disclosure export reads too); ``consent_ledger_export_record`` audits each
  time it is handed out.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, ProtectedError
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization
from audit.models import AuditEvent
from audit.services import audit_record
from campaigns.models import Consent, ConsentMethod, Contact, ContactListMembership
from campaigns.signals import contact_erased, contact_opted_out
from core.csv import csv_safe, phone_cell

OPT_OUT_KEYWORDS = ("配信停止", "停止", "ストップ", "stop", "解除", "unsubscribe")
OPT_OUT_POSTBACKS = ("optout", "opt_out", "opt-out")
OPT_IN_KEYWORD_MAX = 20
# What the person receives after texting the opt-in keyword (customer-facing, always Japanese), and the
# version of that wording kept on the consent record; change both together.
OPT_IN_CONFIRMATION_TEXT = "【{name}】配信登録を受け付けました。配信停止は「停止」と返信してください。"
OPT_IN_WORDING_VERSION = "reply-keyword-1"
RETENTION = timedelta(days=3 * 365 + 1)  # consent and opt-out history is kept at least 3 years


class OptOutMethod:
    KEYWORD = "keyword"
    POSTBACK = "postback"
    LINK = "link"
    CONSOLE = "console"
    API = "api"
    ERASURE = "erasure"


def normalize_keyword(text: str) -> str:
    """How every reply keyword is compared (opt-out, opt-in, the inbox's keyword rules): full- and
    half-width folded (NFKC), case folded, surrounding spaces dropped."""
    return unicodedata.normalize("NFKC", text or "").casefold().strip()


def is_opt_out_keyword(text: str) -> bool:
    return normalize_keyword(text) in OPT_OUT_KEYWORDS


def is_opt_out_postback(postback: str) -> bool:
    value = normalize_keyword(postback)
    return value in OPT_OUT_POSTBACKS or value in OPT_OUT_KEYWORDS


def opt_in_keyword_set(organization: Organization, keyword: str, *, request=None, actor=None) -> str:
    """Admins set (or clear, with an empty value) the organization's opt-in keyword; audited."""
    keyword = unicodedata.normalize("NFKC", keyword or "").strip()
    if len(keyword) > OPT_IN_KEYWORD_MAX:
        raise ValidationError({"keyword": [
            _("The opt-in keyword can be at most %(max)d characters.") % {"max": OPT_IN_KEYWORD_MAX}]})
    if is_opt_out_postback(keyword):
        raise ValidationError({"keyword": [_("An opt-out keyword cannot be the opt-in keyword.")]})
    before = organization.opt_in_keyword
    with transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(opt_in_keyword=keyword)
        organization.opt_in_keyword = keyword
        audit_record("settings.opt_in_keyword", request=request, organization=organization, actor=actor,
                     target=organization, details={"before": before, "after": keyword})
    return keyword


def is_opt_in_keyword(organization: Organization, text: str) -> bool:
    keyword = normalize_keyword(organization.opt_in_keyword)
    return bool(keyword) and normalize_keyword(text) == keyword


def contact_opt_in_by_keyword(contact: Contact, *, source: str, evidence: str, granted_at=None) -> Consent | None:
    """The person texted the opt-in keyword: a consent record (method "reply keyword", the inbound
    message as evidence). None when they already have an active consent (nothing recorded)."""
    with transaction.atomic():
        # The contact's row is locked, so two keyword messages applied at once record one consent.
        contact.opted_out_at = Contact.objects.select_for_update().values_list("opted_out_at", flat=True).get(
            pk=contact.pk)
        if contact.opted_out_at is None and Consent.objects.filter(contact_id=contact.pk,
                                                                   revoked_at__isnull=True).exists():
            return None
        return consent_grant(contact, method=ConsentMethod.KEYWORD, source=source,
                             wording_version=OPT_IN_WORDING_VERSION, evidence=evidence, granted_at=granted_at)


def contact_opt_out(
    contact: Contact,
    method: str,
    source: str = "",
    *,
    official_account=None,
    actor=None,
    request=None,
    confirm: bool = True,
) -> bool:
    """Opt the person out now. Returns True if this call opted them out (False: already out).

    ``source`` says where (the keyword text, the link, the console page). With ``confirm``, the
    person gets a confirmation (sent by messaging on ``signals.contact_opted_out``) through
    ``official_account`` (the account the person answered), or the organization's account that last
    wrote to them.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Contact.objects.filter(pk=contact.pk, opted_out_at__isnull=True).update(
            opted_out_at=now, opt_out_method=method[:32], updated_at=now
        )
        revoked = Consent.objects.filter(contact_id=contact.pk, revoked_at__isnull=True).update(
            revoked_at=Greatest(F("granted_at"), now), revoke_method=method[:32]
        )
        if not changed:
            return False
        contact.opted_out_at, contact.opt_out_method = now, method[:32]
        audit_record(
            "contact.opted_out",
            request=request,
            organization=contact.organization_id,
            actor=actor,
            actor_label="" if actor or request else contact.phone,
            target=contact,
            target_label=contact.phone,
            details={"method": method, "source": str(source)[:300], "consents_revoked": revoked},
        )
        contact_opted_out.send(
            sender=Contact, contact=contact, official_account=official_account, confirm=confirm
        )
    return True


def consent_grant(
    contact: Contact,
    *,
    method: str,
    source: str,
    wording_version: str,
    evidence: str = "",
    granted_at=None,
    actor=None,
    request=None,
) -> Consent:
    """Record a new consent. After an opt-out, only a consent given after it re-subscribes."""
    granted_at = granted_at or timezone.now()
    if method not in ConsentMethod.values:
        raise ValidationError({"method": [_("Unknown consent method.")]})
    if not source or not wording_version:
        raise ValidationError(_("A consent needs its source and the version of the wording shown."))
    with transaction.atomic():
        consent = Consent.objects.create(
            organization_id=contact.organization_id,
            contact=contact,
            granted_at=granted_at,
            method=method,
            source=source[:300],
            wording_version=wording_version[:50],
            evidence=evidence,
        )
        resubscribed = bool(contact.opted_out_at and granted_at > contact.opted_out_at)
        if resubscribed:
            Contact.objects.filter(pk=contact.pk).update(opted_out_at=None, opt_out_method="", updated_at=timezone.now())
            contact.opted_out_at, contact.opt_out_method = None, ""
        audit_record(
            "consent.granted",
            request=request,
            organization=contact.organization_id,
            actor=actor,
            target=contact,
            target_label=contact.phone,
            details={"consent_id": consent.pk, "method": method, "source": source[:300],
                     "wording_version": wording_version, "resubscribed": resubscribed},
        )
    return consent


def consent_revoke(consent: Consent, method: str, *, actor=None, request=None) -> bool:
    now = timezone.now()
    with transaction.atomic():
        changed = Consent.objects.filter(pk=consent.pk, revoked_at__isnull=True).update(
            revoked_at=Greatest(F("granted_at"), now), revoke_method=method[:32]
        )
        if changed:
            audit_record("consent.revoked", request=request, organization=consent.organization_id, actor=actor,
                         target=consent.contact, target_label=consent.contact.phone,
                         details={"consent_id": consent.pk, "method": method})
    return bool(changed)


def contact_erase(contact: Contact, *, actor=None, request=None) -> Contact:
    """Erase a person's data but keep what the law asks us to keep (number, consent and opt-out
    history, for 3 years): the replacement for deleting a contact."""
    with transaction.atomic():
        contact_opt_out(contact, OptOutMethod.ERASURE, "erasure", actor=actor, request=request, confirm=False)
        ContactListMembership.objects.filter(contact_id=contact.pk).delete()
        now = timezone.now()
        Contact.objects.filter(pk=contact.pk).update(name="", attributes={}, erased_at=now, updated_at=now)
        contact.name, contact.attributes, contact.erased_at = "", {}, now
        removed = {}
        for _receiver, response in contact_erased.send(sender=Contact, contact=contact):
            removed.update(response or {})
        audit_record("contact.erased", request=request, organization=contact.organization_id, actor=actor,
                     target=contact, target_label=contact.phone, details=removed)
    return contact


def history_is_retained(contact: Contact, now=None) -> bool:
    """Whether the contact holds consent or opt-out history younger than the retention period."""
    cutoff = (now or timezone.now()) - RETENTION
    if contact.opted_out_at and contact.opted_out_at > cutoff:
        return True
    consents = Consent.objects.filter(contact_id=contact.pk)
    return consents.filter(granted_at__gt=cutoff).exists() or consents.filter(revoked_at__gt=cutoff).exists() or \
        consents.filter(revoked_at__isnull=True).exists()


def refuse_early_deletion(sender, instance, origin=None, **kwargs):
    """pre_delete of a Contact: a contact delete must not silently destroy consent history: erase
    instead (contact_erase). Connected in CampaignsConfig.ready.

    Deleting a whole organization (the tenant leaves; its contract governs the hand-over of the
    ledger) is the one path that is not refused here.
    """
    if isinstance(origin, Organization):
        return
    if history_is_retained(instance):
        raise ProtectedError(
            _("This contact's consent and opt-out history must be kept for 3 years: erase the contact instead."),
            {instance},
        )


def refuse_consent_deletion(sender, instance, origin=None, **kwargs):
    """pre_delete of a Consent: kept 3 years after it ends (connected in CampaignsConfig.ready)."""
    if isinstance(origin, Organization):
        return
    cutoff = timezone.now() - RETENTION
    if instance.revoked_at is None or instance.revoked_at > cutoff or instance.granted_at > cutoff:
        raise ProtectedError(_("A consent record must be kept for 3 years after it ends."), {instance})


def consent_history_events(contact: Contact):
    """The audit events of the person's consent and opt-out history, oldest first."""
    return AuditEvent.objects.filter(
        organization_id=contact.organization_id, target_type=Contact._meta.label_lower, target_id=str(contact.pk),
        action__in=["contact.opted_out", "consent.granted", "consent.revoked", "contact.erased"],
    ).order_by("occurred_at", "id")


def consent_ledger_export_record(contact: Contact, *, actor=None, request=None, api_key=None) -> None:
    """Record that one person's consent and opt-out history was handed out (``export.consent``).
    Every path that hands it out calls this: the console's CSV and the API's list of consents."""
    details = {"api_key_id": api_key.pk, "api_key_prefix": api_key.prefix} if api_key is not None else {}
    audit_record("export.consent", request=request, organization=contact.organization_id, actor=actor,
                 target=contact, target_label=contact.phone, details=details)


def consent_ledger_lines(contact: Contact):
    """The person's consent and opt-out history as CSV lines (UTF-8 with BOM), formula cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush():
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    def when(moment):
        return timezone.localtime(moment).isoformat() if moment else ""

    yield "\ufeff"
    writer.writerow([_("Mobile number"), _("Record"), _("At"), _("Method"), _("Source"), _("Wording version"),
                     _("Evidence"), _("Revoked at"), _("Revoked how"), _("Recorded at")])
    yield flush()
    for consent in contact.consents.order_by("granted_at", "id"):
        writer.writerow([csv_safe(phone_cell(contact.phone)), "consent", when(consent.granted_at), consent.method,
                         csv_safe(consent.source), csv_safe(consent.wording_version), csv_safe(consent.evidence),
                         when(consent.revoked_at), csv_safe(consent.revoke_method), when(consent.created_at)])
        yield flush()
    for event in consent_history_events(contact):
        details = event.details or {}
        writer.writerow([csv_safe(phone_cell(contact.phone)), event.action, when(event.occurred_at),
                         csv_safe(str(details.get("method", ""))), csv_safe(str(details.get("source", ""))),
                         csv_safe(str(details.get("wording_version", ""))), "", "", "", when(event.occurred_at)])
        yield flush()
