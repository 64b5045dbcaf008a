"""The composer: create and edit a draft (settings, rich-content builder, audience, schedule) and its
HTMX partials — the builder after an operation, the live preview, the audience count, a media upload.

The builder posts its whole state on every change (campaigns.forms.content_builder); the preview
is campaigns.views.preview. Saving and submitting go through ``campaigns.services``.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from campaigns import services
from campaigns.audience import audience_sample
from campaigns.compliance import OPT_OUT_PLACEHOLDER, display_rule_problems, quiet_hours_notice
from campaigns.forms import content_builder as builder
from campaigns.forms.campaign import CampaignForm, ScheduleMode, approved_accounts
from campaigns.forms.recurrence import crontab_summary, posted_crontab
from campaigns.media import store_media, unreachable_media
from campaigns.models import (
    Campaign,
    CampaignStatus,
    CampaignTemplate,
    Classification,
    Contact,
    ContactList,
    Segment,
)
from campaigns.views.common import audience_context, campaign_or_404, limited_uploads, ttl_label
from campaigns.views.preview import attribute_keys, preview_context
from core.short_links import LINK_SYNTAX_EXAMPLE, example_short_url, short_link_base
from core.signed_links import PLACEHOLDER_KEY as OPT_OUT_KEY
from messaging.segments import chosen_segment_filters
from messaging.testsends import confirmed_test_numbers

COMPOSER_FIELDS = ["name", "official_account", "classification", "sms_text", "ttl_seconds", "scheduled_at",
                   "recurrence"]


def _upload_too_large(request) -> bool:
    handler = getattr(request, "upload_limit", None)
    return bool(handler and handler.too_large)


def _account_from(request, value):
    if not value:
        return None
    return approved_accounts(request.organization).filter(pk=value).select_related("sms_gateway").first() if str(
        value
    ).isdigit() else None


def _process_uploads(request, state: dict, errors: dict) -> None:
    """Store files posted with the whole form (no-JavaScript path) and keep their URLs in the state."""
    if _upload_too_large(request):
        errors.setdefault("content", []).append(_("The file is larger than 100 MB."))
        return
    for field_name, upload in request.FILES.items():
        if not field_name.endswith(".upload"):
            continue
        slot = field_name[: -len(".upload")]
        try:
            stored = store_media(upload, request.organization, actor=request.user, request=request)
        except ValidationError as error:
            errors.setdefault(f"{slot}.url", []).extend(error.messages)
            continue
        if slot != "media" and stored.kind == "file":
            errors.setdefault(f"{slot}.url", []).append(_("A card shows an image or a video, not a file."))
            continue
        builder.set_path(state, f"{slot}.url", stored.url)
        for warning in stored.warnings:  # e.g. an image larger than phones need
            messages.warning(request, warning)
        if slot == "media":
            state["media"]["kind"] = stored.kind


def _composer_context(request, form, state, errors, campaign=None) -> dict:
    organization = request.organization
    accounts = approved_accounts(organization)
    keys = attribute_keys(organization)
    lists = ContactList.objects.filter(organization=organization).annotate(size=Count("memberships")).order_by("name")
    selected_account = None
    if form.is_bound:
        selected_account = _account_from(request, form.data.get("official_account"))
    elif campaign and campaign.official_account_id:
        selected_account = campaign.official_account
    elif accounts.count() == 1:
        selected_account = accounts.first()
        form.initial.setdefault("official_account", selected_account.pk)
    include_ids = _selected_ids(form, "audience_lists", campaign)
    exclude_ids = _selected_ids(form, "exclusion_lists", campaign)
    include_segment_ids = _selected_ids(form, "audience_segments", campaign)
    exclude_segment_ids = _selected_ids(form, "exclusion_segments", campaign)
    include_filter, exclude_filter = chosen_segment_filters(organization.id, include_segment_ids, exclude_segment_ids)
    document = builder.document_from_state(state)
    sms_text = form.data.get("sms_text", "") if form.is_bound else (campaign.sms_text if campaign else "")
    classification = (form.data.get("classification") if form.is_bound else None) or (
        campaign.classification if campaign else Classification.PROMOTION
    )
    contacts = audience_sample(organization, classification, include_ids, exclude_ids,
                               include_filter=include_filter, exclude_filter=exclude_filter)
    probe = Campaign(organization=organization, official_account=selected_account, classification=classification,
                     content=document, sms_text=sms_text or "")
    context = {
        "form": form,
        "campaign": campaign,
        "b": builder.builder_context(state, errors),
        "errors": errors,
        "has_errors": bool(errors) or bool(form.errors),
        "no_accounts": not accounts.exists(),
        "attribute_keys": keys,
        "placeholders": ["name", *keys, OPT_OUT_KEY],
        "test_numbers": confirmed_test_numbers(organization),  # lazy: read only where the page lists them
        "opt_out_placeholder": OPT_OUT_PLACEHOLDER,
        "sample_contacts": contacts,
        "lists": lists,
        "segments": Segment.objects.filter(organization=organization).order_by("name"),
        "preview": preview_context(document, sms_text, selected_account,
                                   contacts[0] if contacts else None, "rcs"),
        "problems": display_rule_problems(probe),
        "media_warnings": unreachable_media(document),
        "quiet_notice": _quiet_notice_from(request, form, classification, campaign),
        "cron_summary": crontab_summary(posted_crontab(form.data) if form.is_bound else
                                        (campaign.recurrence if campaign else "")),
        "sms_limit": form.sms_limit(),
        "short_link_example": example_short_url(short_link_base(organization.short_link_base)),
        "link_syntax": LINK_SYNTAX_EXAMPLE,
        "organization": organization,
    }
    context["audience"] = audience_context(request, classification, include_ids, exclude_ids,
                                           include_segment_ids, exclude_segment_ids)
    context["include_ids"] = set(include_ids)
    context["exclude_ids"] = set(exclude_ids)
    context["include_segment_ids"] = set(include_segment_ids)
    context["exclude_segment_ids"] = set(exclude_segment_ids)
    context["ttl_choices"] = _ttl_choices(form)
    return context


TTL_PRESETS = [(300, 5), (900, 15), (1800, 30), (3600, 60), (3 * 3600, 180), (6 * 3600, 360), (12 * 3600, 720),
               (24 * 3600, 1440), (3 * 86400, 4320)]


def _ttl_choices(form) -> list[tuple[int, str]]:
    values = [seconds for seconds, _minutes in TTL_PRESETS]
    current = form["ttl_seconds"].value()
    if str(current).isdigit() and int(current) not in values:
        values.append(int(current))
    return [(seconds, ttl_label(seconds)) for seconds in sorted(values)]


def _selected_ids(form, field, campaign) -> list[int]:
    if form.is_bound:
        return [int(v) for v in form.data.getlist(field) if str(v).isdigit()]
    if campaign and campaign.pk:
        return list(getattr(campaign, field).values_list("id", flat=True))
    return []


def _quiet_notice_from(request, form, classification, campaign):
    if form.is_bound:
        mode = form.data.get("schedule_mode") or ScheduleMode.NOW
        scheduled_at = None
        if mode == ScheduleMode.AT:
            try:
                scheduled_at = form.fields["scheduled_at"].clean(form.data.get("scheduled_at"))
            except ValidationError:
                scheduled_at = None
            if scheduled_at is None:
                return None
        recurrence = posted_crontab(form.data) if mode == ScheduleMode.RECURRING else ""
        if mode == ScheduleMode.RECURRING and not recurrence:
            return None
        return quiet_hours_notice(request.organization, classification, scheduled_at=scheduled_at,
                                  recurrence=recurrence)
    if campaign:
        return quiet_hours_notice(request.organization, campaign.classification,
                                  scheduled_at=campaign.scheduled_at, recurrence=campaign.recurrence)
    return quiet_hours_notice(request.organization, classification)


def _composer(request, campaign=None):
    organization = request.organization
    if request.method == "POST":
        form = CampaignForm(request.POST, instance=campaign or Campaign(organization=organization),
                            organization=organization)
        state = builder.state_from_post(request.POST)
        errors: dict = {}
        _process_uploads(request, state, errors)
        op = request.POST.get("op")
        if op:
            builder.apply_operation(state, op)
            return render(request, "campaigns/composer.html", _composer_context(request, form, state, errors, campaign))
        document = builder.document_from_state(state)
        for field, messages_ in builder.content_errors(document).items():
            errors.setdefault(field, []).extend(messages_)
        form_ok = form.is_valid()
        if form_ok and not errors:
            instance = form.save(commit=False)
            instance.organization = organization
            instance.content = document
            with transaction.atomic():
                if instance.pk:
                    # Save only what the composer edits, and only while the campaign is still a draft
                    # (it may have been submitted from another tab meanwhile).
                    current = Campaign.objects.select_for_update().filter(pk=instance.pk).values_list(
                        "status", flat=True).first()
                    if current != CampaignStatus.DRAFT:
                        messages.error(request, _("This campaign is no longer a draft; your changes were not saved."))
                        return redirect("campaigns:detail", pk=instance.pk)
                    instance.save(update_fields=[*COMPOSER_FIELDS, "content", "updated_at"])
                else:
                    instance.created_by = request.user
                    instance.save()
                form.save_m2m()
            if request.POST.get("action") == "submit":
                try:
                    services.campaign_submit(instance, request.user)
                except ValidationError as error:
                    # The draft is saved; show why it cannot be submitted beside the fields.
                    _attach_service_errors(form, errors, error)
                    messages.warning(request, _("The draft is saved but cannot be submitted yet: %(reasons)s")
                                     % {"reasons": " ".join(error.messages)})
                    context = _composer_context(request, form, state, errors, instance)
                    return render(request, "campaigns/composer.html", context)
                messages.success(request, _("Submitted for approval. An admin will review it."))
                return redirect("campaigns:detail", pk=instance.pk)
            messages.success(request, _("Draft saved."))
            return redirect("campaigns:edit", pk=instance.pk)
        context = _composer_context(request, form, state, errors, campaign)
        return render(request, "campaigns/composer.html", context, status=200)
    form = CampaignForm(instance=campaign, organization=organization,
                        initial={} if campaign else {"classification": Classification.PROMOTION,
                                                     "ttl_seconds": 3600})
    state = builder.state_from_document(campaign.content) if campaign else builder.empty_state()
    return render(request, "campaigns/composer.html", _composer_context(request, form, state, {}, campaign))


def _attach_service_errors(form, errors: dict, error: ValidationError) -> None:
    """Put a service's refusal (keyed ``content.<path>``, ``sms_text``, …) beside the fields."""
    if not hasattr(error, "error_dict"):
        return
    for field, field_errors in error.message_dict.items():
        if field.startswith("content."):
            errors.setdefault(field[len("content."):], []).extend(field_errors)
        elif field == "content":
            errors.setdefault("content", []).extend(field_errors)
        elif field in form.fields:
            for message in field_errors:
                form.add_error(field, message)


@limited_uploads
@member_required("compose")
def campaign_create(request):
    if request.method == "GET" and request.GET.get("template"):
        return _composer_from_template(request, request.GET["template"])
    return _composer(request)


def _composer_from_template(request, template_id):
    """A new draft prefilled from one of the organization's templates (content, SMS text, name);
    another organization's template, or a missing one, answers 404."""
    template = get_object_or_404(CampaignTemplate, pk=template_id if str(template_id).isdigit() else 0,
                                 organization=request.organization)
    form = CampaignForm(organization=request.organization, initial={
        "name": template.name, "classification": Classification.PROMOTION, "ttl_seconds": 3600,
        "sms_text": template.sms_text,
    })
    state = builder.state_from_document(template.content or {})
    context = _composer_context(request, form, state, {}, None)
    # The context was drawn with an empty SMS text (a new draft's); draw it with the template's.
    document = builder.document_from_state(state)
    account = context["preview"]["account"]
    contacts = context["sample_contacts"]
    context["preview"] = preview_context(document, template.sms_text, account, contacts[0] if contacts else None,
                                         "rcs")
    context["problems"] = display_rule_problems(Campaign(
        organization=request.organization, official_account=account, classification=Classification.PROMOTION,
        content=document, sms_text=template.sms_text))
    messages.info(request, _("Started from the template “%(name)s”. Choose the lists and settings, then save the "
                             "draft.") % {"name": template.name})
    return render(request, "campaigns/composer.html", context)


@limited_uploads
@member_required("compose")
def campaign_edit(request, pk):
    campaign = campaign_or_404(request, pk)
    if campaign.status != CampaignStatus.DRAFT:
        messages.info(request, _("Only drafts can be edited. This campaign is “%(status)s”.")
                      % {"status": campaign.get_status_display()})
        return redirect("campaigns:detail", pk=campaign.pk)
    return _composer(request, campaign)


@require_POST
@member_required("compose")
def compose_builder(request):
    """Re-render the content builder after an add / remove / move operation (HTMX)."""
    state = builder.state_from_post(request.POST)
    builder.apply_operation(state, request.POST.get("op", ""))
    context = {"b": builder.builder_context(state, {}), "organization": request.organization}
    response = render(request, "campaigns/_builder.html#builder", context)
    response["HX-Trigger"] = "builderChanged"
    return response


@require_POST
@member_required("compose")
def compose_preview(request):
    """The phone preview for the posted composer state, plus the display-rule checklist and the
    quiet-hours notice (out of band)."""
    state = builder.state_from_post(request.POST)
    document = builder.document_from_state(state)
    account = _account_from(request, request.POST.get("official_account"))
    contact_id = request.POST.get("sample_contact", "")
    contact = None
    if contact_id.isdigit():
        contact = Contact.objects.filter(organization=request.organization, pk=contact_id).first()
    sms_text = request.POST.get("sms_text", "")
    classification = request.POST.get("classification") or Classification.PROMOTION
    probe = Campaign(organization=request.organization, official_account=account, classification=classification,
                     content=document, sms_text=sms_text)
    form = CampaignForm(request.POST, organization=request.organization)
    context = {
        "preview": preview_context(document, sms_text, account, contact, request.POST.get("preview_mode")),
        "problems": display_rule_problems(probe),
        "media_warnings": unreachable_media(document),
        "quiet_notice": _quiet_notice_from(request, form, classification, None),
        "cron_summary": crontab_summary(posted_crontab(request.POST)),
        "form": form,
        "oob": True,
    }
    return render(request, "campaigns/_preview_response.html", context)


@member_required("compose")
def compose_audience(request):
    """The live recipient count for the chosen lists (HTMX)."""
    data = request.POST if request.method == "POST" else request.GET
    include = [int(v) for v in data.getlist("audience_lists") if str(v).isdigit()]
    exclude = [int(v) for v in data.getlist("exclusion_lists") if str(v).isdigit()]
    include_segments = [int(v) for v in data.getlist("audience_segments") if str(v).isdigit()]
    exclude_segments = [int(v) for v in data.getlist("exclusion_segments") if str(v).isdigit()]
    include_filter, exclude_filter = chosen_segment_filters(request.organization.id, include_segments, exclude_segments)
    classification = data.get("classification") or Classification.PROMOTION
    context = {
        "audience": audience_context(request, classification, include, exclude, include_segments, exclude_segments),
        "sample_contacts": audience_sample(request.organization, classification, include, exclude,
                                           include_filter=include_filter, exclude_filter=exclude_filter),
        "oob": True,
    }
    response = render(request, "campaigns/_audience_response.html", context)
    response["HX-Trigger"] = "builderChanged"  # the preview follows the new sample contact
    return response


@limited_uploads
@member_required("compose")
def media_upload(request):
    """Store one file chosen in a media slot and answer with the slot, its URL filled (HTMX).

    The slot is the name of the file input that triggered the request (``card.media.upload``).
    """
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    field_name = (request.htmx.trigger_name if request.htmx else None) or request.POST.get("slot_field", "")
    if not field_name.endswith(".upload") or field_name.split(".", 1)[0].split("[", 1)[0] not in (
        "media", "card", "carousel"
    ):
        raise Http404
    slot = field_name[: -len(".upload")]
    existing = request.POST.get(f"{slot}.url", "")
    kind = request.POST.get("media.kind", "image") if slot == "media" else None
    errors, warnings = [], []
    url = existing
    if _upload_too_large(request):
        errors.append(_("The file is larger than 100 MB."))
    else:
        try:
            stored = store_media(
                request.FILES.get(field_name), request.organization, actor=request.user, request=request
            )
            if slot != "media" and stored.kind == "file":
                errors.append(_("A card shows an image or a video, not a file."))
            else:
                url = stored.url
                kind = stored.kind
                warnings.extend(stored.warnings)
        except ValidationError as error:
            errors.extend(error.messages)
    context = {
        "slot": {**builder.media_slot(slot, url, {}, kind), "errors": errors, "warnings": warnings},
        "b": builder.builder_context(builder.empty_state(), {}),
    }
    response = render(request, "campaigns/_builder.html#media_slot", context)
    response["HX-Trigger"] = "builderChanged"
    return response
