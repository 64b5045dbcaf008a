"""The campaign page and its approval workflow: preview, checks and audience of one campaign; test
send, submit, approve, send back and launch, each through its service (``campaigns.services``, and ``messaging.runs`` to launch)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from campaigns import services
from campaigns.audience import audience_sample
from campaigns.compliance import TOKYO, display_rule_problems, quiet_hours_notice
from campaigns.forms.campaign import SendBackForm, TestSendForm
from campaigns.media import unreachable_media
from campaigns.models import CampaignStatus
from campaigns.views.common import (
    CONTROL_PERMISSIONS,
    MONITOR_PERMISSIONS,
    audience_context,
    campaign_or_404,
    hx_or_redirect,
    member_permissions,
    require_any,
    ttl_label,
)
from campaigns.views.preview import preview_context
from core.phone import national_format
from messaging import runs
from messaging.costs import campaign_cost_estimate
from messaging.segments import campaign_segment_filters
from messaging.testsends import campaign_test_send as test_send_service
from messaging.testsends import confirmed_test_numbers


@member_required("view")
def campaign_detail(request, pk):
    campaign = campaign_or_404(request, pk)
    permissions = member_permissions(request)
    include_ids = list(campaign.audience_lists.values_list("id", flat=True))
    exclude_ids = list(campaign.exclusion_lists.values_list("id", flat=True))
    include_filter, exclude_filter = campaign_segment_filters(campaign)
    contacts = audience_sample(request.organization, campaign.classification, include_ids, exclude_ids, limit=1,
                               include_filter=include_filter, exclude_filter=exclude_filter)
    contact = contacts[0] if contacts else None
    account = campaign.official_account
    audience = None
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL, CampaignStatus.APPROVED,
                           CampaignStatus.SCHEDULED):
        audience = audience_context(
            request, campaign.classification, include_ids, exclude_ids,
            list(campaign.audience_segments.values_list("id", flat=True)),
            list(campaign.exclusion_segments.values_list("id", flat=True)),
        )
    context = {
        "campaign": campaign,
        "can_compose": "compose" in permissions,
        "can_approve": "approve" in permissions,
        "needs_another_approver": (campaign.status == CampaignStatus.PENDING_APPROVAL and "approve" in permissions
                                   and services.campaign_needs_another_approver(campaign, request.user)),
        "can_monitor": bool(permissions & MONITOR_PERMISSIONS),
        "rcs_preview": preview_context(campaign.content, campaign.sms_text, account, contact, "rcs"),
        "sms_preview": preview_context(campaign.content, campaign.sms_text, account, contact, "sms"),
        "problems": display_rule_problems(campaign),
        "media_warnings": unreachable_media(campaign.content),
        "quiet_notice": quiet_hours_notice(request.organization, campaign.classification,
                                           scheduled_at=campaign.scheduled_at, recurrence=campaign.recurrence),
        "launch": _launch_context(campaign) if campaign.status == CampaignStatus.APPROVED else None,
        "audience": audience,
        "audience_lists": campaign.audience_lists.all(),
        "exclusion_lists": campaign.exclusion_lists.all(),
        "audience_segments": campaign.audience_segments.all(),
        "exclusion_segments": campaign.exclusion_segments.all(),
        "test_form": TestSendForm(),
        "test_numbers": confirmed_test_numbers(request.organization),
        "send_back_form": SendBackForm(),
        "account_can_send": account.can_send if account else False,
        "ttl_label": ttl_label(campaign.ttl_seconds),
    }
    if campaign.status == CampaignStatus.APPROVED and context["can_compose"] and audience and audience.get("counts"):
        # The launch confirmation's cost block (campaigns/_cost_estimate.html).
        context["cost_estimate"] = campaign_cost_estimate(campaign, include_ids, exclude_ids,
                                                          audience["counts"]["eligible"])
    return render(request, "campaigns/detail.html", context)


def _launch_context(campaign):
    """What the launch confirmation says will happen: its times from ``runs.campaign_launch_timing``
    (the held-until time is the engine's own quiet-hours decision), on the Japan wall clock."""
    timing = runs.campaign_launch_timing(campaign)
    organization = campaign.organization
    return {
        "timing": timing,
        "starts_at": timezone.localtime(timing.starts_at, TOKYO) if timing.starts_at else None,
        "requested_at": timezone.localtime(timing.requested_at, TOKYO) if timing.requested_at else None,
        "window": {"start": organization.quiet_hours_start.strftime("%H:%M"),
                   "end": organization.quiet_hours_end.strftime("%H:%M")},
    }


def _launched_message(campaign, timing) -> str:
    """Says what the launch did: started, or scheduled — for when, and why (quiet hours)."""
    if campaign.status != CampaignStatus.SCHEDULED:
        return _("Sending has started.")
    if timing.recurring:
        return _("Scheduled: the campaign sends on its schedule.")
    held = timing.held_by_quiet_hours
    when = timezone.localtime(timing.starts_at if held else (campaign.scheduled_at or timing.starts_at or timezone.now()),
                               TOKYO)
    values = {"time": when.strftime("%H:%M"), "date": when.strftime("%Y/%m/%d")}
    if held:
        return _("Scheduled for %(time)s (Japan time, %(date)s), when quiet hours end.") % values
    return _("Scheduled for %(time)s (Japan time, %(date)s).") % values


def _workflow(request, pk, service, success_message, *args, permissions=None):
    """Call one workflow service on the campaign; its refusal (a ValidationError) becomes a message."""
    campaign = campaign_or_404(request, pk)
    if permissions:
        require_any(request, permissions)
    try:
        service(campaign, request.user, *args)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success_message)
    return campaign


@require_POST
@member_required("compose")
def campaign_submit(request, pk):
    _workflow(request, pk, services.campaign_submit, _("Submitted for approval. An admin will review it."))
    return hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("approve")
def campaign_approve(request, pk):
    _workflow(request, pk, services.campaign_approve, _("Approved. The campaign can now be launched."))
    return hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("approve")
def campaign_send_back(request, pk):
    form = SendBackForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say what should change before sending the campaign back."))
        return hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))
    _workflow(request, pk, services.campaign_send_back, _("Sent back to the author as a draft."),
              form.cleaned_data["reason"])
    return hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("view")
def campaign_launch(request, pk):
    campaign = campaign_or_404(request, pk)
    require_any(request, CONTROL_PERMISSIONS)
    timing = runs.campaign_launch_timing(campaign)  # what the confirmation said, for the message after
    try:
        campaign = runs.campaign_launch(campaign, request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        campaign.refresh_from_db()
        messages.success(request, _launched_message(campaign, timing))
    campaign.refresh_from_db()
    if campaign.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.COMPLETED):
        return hx_or_redirect(request, reverse("campaigns:monitor", args=[pk]))
    return hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("compose")
def campaign_test_send(request, pk):
    campaign = campaign_or_404(request, pk)
    form = TestSendForm(request.POST)
    result = {"ok": False}
    if form.is_valid():
        try:
            delivery = test_send_service(campaign, form.cleaned_data["phone"], request.user, request=request)
        except ValidationError as error:
            result["error"] = " ".join(error.messages)
        else:
            result = {"ok": True, "phone": national_format(form.cleaned_data["phone"]), "delivery": delivery}
    context = {"campaign": campaign, "test_form": form, "result": result}
    if request.htmx:
        return render(request, "campaigns/_test_send_result.html", context)
    if result.get("ok"):
        messages.success(request, _("Test message sent to %(phone)s.") % {"phone": result["phone"]})
    else:
        messages.error(request, result.get("error") or " ".join(form.errors.get("phone", [])))
    return redirect("campaigns:detail", pk=pk)
