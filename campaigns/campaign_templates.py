"""Campaign templates and cloning: keep a campaign's content and SMS text under a name for the whole
organization (a template), start a draft from one, and copy a campaign into a new draft.

A clone takes what the campaign says and to whom (content, SMS text, audience and exclusion lists,
official account, classification, TTL) and never how far it went (schedule, recurrence, approval,
status, cursor, counters): it is a new draft that goes through approval again. Every step is in the
audit log."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import audit_record
from campaigns.models import Campaign, CampaignTemplate
from campaigns.services import campaign_audit_record

NAME_MAX = CampaignTemplate._meta.get_field("name").max_length


def _clean_name(organization_id, name: str, *, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Give the template a name.")]})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": [_("A name has at most %(max)d characters.") % {"max": NAME_MAX}]})
    taken = CampaignTemplate.objects.filter(organization_id=organization_id, name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"name": [_("A template named “%(name)s” already exists.") % {"name": name}]})
    return name


def _template_audit(action: str, template: CampaignTemplate, user, **details) -> None:
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    audit_record(action, organization=template.organization_id, actor=actor, actor_label="" if actor else "system",
                 target=template, details=details)


def template_create_from_campaign(campaign: Campaign, name: str, user) -> CampaignTemplate:
    """Save the campaign's content and SMS text as an organization-wide template named ``name``."""
    name = _clean_name(campaign.organization_id, name)
    with transaction.atomic():
        template = CampaignTemplate.objects.create(
            organization_id=campaign.organization_id, name=name, content=copy.deepcopy(campaign.content or {}),
            sms_text=campaign.sms_text or "", created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        _template_audit("template.created", template, user, campaign_id=campaign.pk, campaign_name=campaign.name)
    return template


def template_rename(template: CampaignTemplate, name: str, user) -> CampaignTemplate:
    name = _clean_name(template.organization_id, name, exclude_pk=template.pk)
    before = template.name
    if name == before:
        return template
    with transaction.atomic():
        template.name = name
        template.save(update_fields=["name", "updated_at"])
        _template_audit("template.renamed", template, user, before=before, after=name)
    return template


def template_delete(template: CampaignTemplate, user) -> None:
    """Delete a template; campaigns started from it keep their own copy of its content."""
    with transaction.atomic():
        _template_audit("template.deleted", template, user, name=template.name)
        template.delete()


def campaign_clone(campaign: Campaign, user) -> Campaign:
    """A new draft with the campaign's content, SMS text, audience and exclusion lists and segments, and settings
    (official account, classification, TTL); never its schedule, recurrence, approval, status or
    counters."""
    name = _("%(name)s (copy)") % {"name": campaign.name}
    field_max = Campaign._meta.get_field("name").max_length
    with transaction.atomic():
        clone = Campaign.objects.create(
            organization_id=campaign.organization_id,
            official_account_id=campaign.official_account_id,
            name=name[:field_max],
            classification=campaign.classification,
            content=copy.deepcopy(campaign.content or {}),
            sms_text=campaign.sms_text,
            ttl_seconds=campaign.ttl_seconds,
            created_by=user,
        )
        clone.audience_lists.set(campaign.audience_lists.all())
        clone.exclusion_lists.set(campaign.exclusion_lists.all())
        clone.audience_segments.set(campaign.audience_segments.all())
        clone.exclusion_segments.set(campaign.exclusion_segments.all())
        campaign_audit_record("campaign.cloned", clone, user, source_id=campaign.pk, source_name=campaign.name)
    return clone
