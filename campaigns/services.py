"""Campaign approval services: what must hold before a campaign may be sent, submit, approve, send
back. Views and the API call these; each checks the state machine and records who did what.

Running an approved campaign (launch, start, pause, resume, cancel, schedules) is
``messaging.runs``: it needs the engine, and campaigns never imports messaging."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.selectors import second_approver_required
from audit.services import audit_record
from campaigns.compliance import display_rule_problems
from campaigns.models import Campaign, CampaignStatus, Classification
from campaigns.status import campaign_transition
from core.rich_content import validate_rich_content
from core.sms_text import validate_sms_text

S = CampaignStatus


def campaign_validate_for_send(campaign: Campaign) -> None:
    """Everything that must hold before a campaign may be approved or launched."""
    errors: dict[str, list] = {}
    try:
        validate_rich_content(campaign.content)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(f"content.{field}" if field != "content" else "content", []).extend(messages)
    account = campaign.official_account
    limit = account.sms_gateway.sms_char_limit if account.sms_gateway else 660
    try:
        validate_sms_text(
            campaign.sms_text, limit=limit, short_link_base_setting=campaign.organization.short_link_base
        )
    except ValidationError as error:
        errors.update(error.message_dict)
    if not account.can_send:
        errors.setdefault("official_account", []).append(
            _("The official account has not been approved by any carrier yet.")
        )
    if not account.rcs_gateway and not account.sms_gateway:
        errors.setdefault("official_account", []).append(_("The official account has no gateway configured."))
    if not campaign.audience_lists.exists() and not campaign.audience_segments.exists():
        errors.setdefault("audience_lists", []).append(_("Choose at least one audience list or segment."))
    if campaign.classification == Classification.PROMOTION:
        for problem in display_rule_problems(campaign):
            errors.setdefault("display_rules", []).append(problem)
    if errors:
        raise ValidationError(errors)


class SecondApproverRequired(ValidationError):
    """The organization wants a second person to approve, and this user submitted the campaign."""


def campaign_submit(campaign: Campaign, user) -> Campaign:
    campaign_validate_for_send(campaign)
    submitter = user if user is not None and getattr(user, "is_authenticated", False) else None
    campaign = campaign_transition(campaign, S.PENDING_APPROVAL, submitted_by=submitter)
    campaign_audit_record("campaign.submitted", campaign, user)
    return campaign


def campaign_approve(campaign: Campaign, user, *, api_key=None) -> Campaign:
    """Approve a campaign pending approval. Under the organization's second-approver rule (see
    ``accounts.selectors.second_approver_required``) nobody approves a campaign they submitted; the
    console and the API (a key acts for its creator) both come through here. ``api_key``: the key an
    API call approved with (``user`` is its creator), kept in the audit log."""
    campaign_validate_for_send(campaign)
    with transaction.atomic():
        # The row lock holds off a concurrent resubmission, so the submitter read is the one approved.
        locked = Campaign.objects.select_for_update().values("submitted_by_id", "created_by_id").get(pk=campaign.pk)
        if campaign_needs_another_approver(campaign, user, locked["submitted_by_id"], locked["created_by_id"]):
            raise SecondApproverRequired(
                _("A second person must approve this campaign: you submitted it. Ask another owner or admin "
                  "to approve it."),
                code="second_approver_required",
            )
        campaign = campaign_transition(campaign, S.APPROVED, approved_by=user, approved_at=timezone.now())
        campaign_audit_record("campaign.approved", campaign, user, api_key=api_key)
    return campaign


def campaign_needs_another_approver(campaign: Campaign, user, submitted_by_id=None, created_by_id=None) -> bool:
    """The second-approver rule: ``user`` submitted the campaign and the organization wants a second
    person to approve. Without ids it reads them from ``campaign`` (the campaign page asks this)."""
    if submitted_by_id is None and created_by_id is None:
        submitted_by_id, created_by_id = campaign.submitted_by_id, campaign.created_by_id
    # Submitted before the submitter was recorded: its author counts as the submitter.
    submitter_id = submitted_by_id or created_by_id
    return submitter_id == getattr(user, "pk", None) and second_approver_required(campaign.organization)


def campaign_send_back(campaign: Campaign, user, reason: str = "") -> Campaign:
    campaign = campaign_transition(campaign, S.DRAFT, reason=reason, approved_by=None, approved_at=None)
    campaign_audit_record("campaign.sent_back", campaign, user, reason=reason)
    return campaign


def campaign_audit_record(action: str, campaign: Campaign, user, *, api_key=None, **details) -> None:
    """Record a lifecycle step of the campaign in the audit log; an anonymous or missing user (a
    scheduled start, the engine) is recorded as the system. A step taken through the API names the
    key (``api_key``) beside its creator."""
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    label = "" if actor else "system"
    if api_key is not None:
        details = {**details, "api_key_id": api_key.pk, "api_key_prefix": api_key.prefix, "api_key_name": api_key.name}
        label = f"{actor.get_username() if actor else 'system'} (API key {api_key.prefix})"
    audit_record(action, organization=campaign.organization_id, actor=actor,
                 actor_label=label, target=campaign, details=details)
