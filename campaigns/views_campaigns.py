"""Campaign pages: the list, the composer (with its HTMX partials), the campaign page with the
approval workflow, and the monitor.

Views only parse input, call a service and render (design.md §3). Writes go through
``campaigns.services`` (submit, approve, send back), ``messaging.runs`` (launch, pause, resume,
cancel) and
``messaging.services.send_test_message``; reads through ``campaigns.audience.audience_count`` and
``messaging.stats.campaign_stats``. Every queryset is scoped to the member's organization, so another
organization's campaign id answers 404.

Who may do what (checked on the server):
- view (every member): the list and the campaign page;
- compose (marketer, admin, owner): create and edit drafts, preview, upload, test send, submit,
  launch an approved campaign;
- approve (admin, owner): approve or send back;
- the monitor, its recipient table and CSV export: operators and everyone who composes or approves
  (viewers see the campaign page only; the table holds phone numbers);
- pause: anyone who may see the monitor (stopping is always safe); resume and cancel: compose or
  approve rights.
"""

from __future__ import annotations

import copy
import csv
import math
import re
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from accounts.audit_hooks import permission_refused
from accounts.decorators import member_required
from accounts.tenancy import ROLE_PERMISSIONS
from campaigns import forms_campaigns as cf
from campaigns import services as campaign_services
from campaigns.compliance import OPT_OUT_PLACEHOLDER, TOKYO, display_rule_problems, quiet_hours_notice
from campaigns.media import SizeLimitUploadHandler, display_url, store_media
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Classification,
    Contact,
    ContactList,
    ContactListMembership,
)
from core.phone import national_format
from core.sms_text import measure_sms
from messaging import runs
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason

MONITOR_PERMISSIONS = {"operate", "compose", "approve"}
CONTROL_PERMISSIONS = {"compose", "approve"}
RECIPIENTS_PAGE = 50
COMPOSER_FIELDS = ["name", "official_account", "classification", "sms_text", "ttl_seconds", "scheduled_at",
                   "recurrence"]
FINISHED_STATES = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.FAILED}
POLLING_STATES = {CampaignStatus.APPROVED, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED}
S = CampaignStatus


# --- Helpers ---------------------------------------------------------------------------------------

def _permissions(request) -> set[str]:
    return set(ROLE_PERMISSIONS.get(request.role, ()))


def _require_any(request, permissions: set[str]) -> None:
    if not _permissions(request) & permissions:
        permission_refused(request, request.organization, "|".join(sorted(permissions)))
        raise PermissionDenied


def _campaign_or_404(request, pk) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("official_account", "created_by", "approved_by"),
        pk=pk,
        organization=request.organization,
    )


def limited_uploads(view):
    """Stop reading uploads past 100 MB before anything touches ``request.POST``.

    Upload handlers can only be changed before the body is read, and the CSRF middleware reads it,
    so the check runs first and CSRF is enforced right after (Django's documented pattern).
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        handler = SizeLimitUploadHandler(request)
        request.upload_handlers.insert(0, handler)
        request.upload_limit = handler
        return csrf_protect(view)(request, *args, **kwargs)

    return wrapper


def _upload_too_large(request) -> bool:
    handler = getattr(request, "upload_limit", None)
    return bool(handler and handler.too_large)


def _hx_or_redirect(request, url):
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _stats(campaign) -> dict | None:
    """The lead's campaign statistics selector; None while it is not there yet."""
    try:
        from messaging.stats import campaign_stats
    except ImportError:
        return None
    return campaign_stats(campaign)


def _audience(organization, classification, include_ids, exclude_ids) -> dict | None:
    try:
        from campaigns.audience import audience_count
    except ImportError:
        return None
    return audience_count(organization, classification, list(include_ids), list(exclude_ids))


# --- Personalisation ---------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")
SAMPLE_OPT_OUT_URL = "https://example.jp/o/xxxxxxxx"


def attribute_keys(organization, sample=500) -> list[str]:
    """Custom attribute keys seen in the organization's most recent contacts."""
    keys: set[str] = set()
    rows = Contact.objects.filter(organization=organization).order_by("-id").values_list("attributes", flat=True)
    for attributes in rows[:sample]:
        if isinstance(attributes, dict):
            keys.update(str(k) for k in attributes)
    return sorted(k for k in keys if re.fullmatch(r"[\w.\-]+", k))


def sample_contacts(organization, list_ids=(), limit=20):
    contacts = Contact.objects.filter(organization=organization)
    if list_ids:
        # EXISTS rather than a join with DISTINCT: the first contacts by id, whatever the list size.
        members = ContactListMembership.objects.filter(contact=OuterRef("pk"), contact_list_id__in=list_ids)
        contacts = contacts.filter(Exists(members))
    return list(contacts.order_by("id")[:limit])


def personalise(text: str, contact) -> str:
    if not isinstance(text, str) or "{{" not in text:
        return text

    def replace(match):
        key = match.group(1)
        if key == "opt_out_url":
            return SAMPLE_OPT_OUT_URL
        if contact is None:
            return match.group(0)
        if key == "name":
            return contact.name or _("(no name)")
        if key == "phone":
            return national_format(contact.phone)
        value = (contact.attributes or {}).get(key)
        return str(value) if value not in (None, "") else f"[{key}]"

    return PLACEHOLDER.sub(replace, text)


def _personalise_document(document: dict, contact) -> dict:
    document = copy.deepcopy(document)

    def walk(node):
        if isinstance(node, dict):
            return {k: (walk(v) if k not in ("type", "url", "kind", "height", "width") else v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return personalise(node, contact)
        return node

    return walk(document)


# --- Preview ---------------------------------------------------------------------------------------

def _sms_measure(text: str, limit: int = 660) -> dict:
    measure = measure_sms(text or "")
    return {"encoding": measure.encoding, "characters": measure.characters, "segments": measure.segments,
            "per_segment": measure.per_segment, "limit": limit, "over": measure.characters > limit}


def preview_context(document, sms_text, account, contact, mode) -> dict:
    document = document if isinstance(document, dict) else {}
    shown = _personalise_document(document, contact)
    if isinstance(shown.get("media"), dict):
        shown["media"]["url"] = display_url(shown["media"].get("url"))
    cards = []
    if isinstance(shown.get("card"), dict):
        cards = [shown["card"]]
    elif isinstance(shown.get("carousel"), dict):
        cards = [c for c in shown["carousel"].get("cards") or [] if isinstance(c, dict)]
    for card in cards:
        if isinstance(card.get("media"), dict):
            card["media"]["url"] = display_url(card["media"].get("url"))
    sms_shown = personalise(sms_text or "", contact)
    limit = account.sms_gateway.sms_char_limit if account and account.sms_gateway_id else 660
    return {
        "mode": "sms" if mode == "sms" else "rcs",
        "doc": shown,
        "cards": cards,
        "is_carousel": bool(shown.get("carousel")),
        "carousel_width": (shown.get("carousel") or {}).get("width", "MEDIUM") if shown.get("carousel") else "",
        "chips": [c for c in shown.get("chips") or [] if isinstance(c, dict)],
        "account": account,
        "brand_color": account.brand_color if account else "#0B57D0",
        "sms_text": sms_shown,
        "sms": _sms_measure(sms_text or "", limit),
        "contact": contact,
        "now": timezone.localtime(timezone.now(), TOKYO),
    }


# --- List ------------------------------------------------------------------------------------------

@member_required("view")
def campaign_list(request):
    campaigns = Campaign.objects.filter(organization=request.organization).select_related("official_account")
    status = request.GET.get("status", "")
    classification = request.GET.get("classification", "")
    query = request.GET.get("q", "").strip()
    if status in S.values:
        campaigns = campaigns.filter(status=status)
    else:
        status = ""
    if classification in Classification.values:
        campaigns = campaigns.filter(classification=classification)
    else:
        classification = ""
    if query:
        campaigns = campaigns.filter(name__icontains=query)
    counts = dict(
        Campaign.objects.filter(organization=request.organization)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    page = Paginator(campaigns.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    for campaign in page.object_list:
        # Live progress for the few campaigns sending now (read from the folded counters).
        campaign.progress_percent = None
        if campaign.status in (S.RUNNING, S.PAUSED):
            stats = _stats(campaign)
            if stats is not None:
                campaign.progress_percent = round(100.0 * float(stats.get("progress") or 0), 1)
    total = sum(counts.values())
    context = {
        "page": page,
        "status": status,
        "classification": classification,
        "q": query,
        "filtered": bool(status or classification or query),
        "total": total,
        "status_tabs": [("", _("All"), total)] + [(value, label, counts.get(value, 0)) for value, label in S.choices],
        "classifications": Classification.choices,
        "can_compose": "compose" in _permissions(request),
    }
    if request.htmx and request.htmx.target == "campaign-table":
        return render(request, "campaigns/list.html#table", context)
    return render(request, "campaigns/list.html", context)


# --- Composer --------------------------------------------------------------------------------------

def _account_from(request, value):
    if not value:
        return None
    return cf.approved_accounts(request.organization).filter(pk=value).select_related("sms_gateway").first() if str(
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
            stored = store_media(upload, request.organization)
        except ValidationError as error:
            errors.setdefault(f"{slot}.url", []).extend(error.messages)
            continue
        if slot != "media" and stored.kind == "file":
            errors.setdefault(f"{slot}.url", []).append(_("A card shows an image or a video, not a file."))
            continue
        cf._set_path(state, f"{slot}.url", stored.url)
        if slot == "media":
            state["media"]["kind"] = stored.kind


def _composer_context(request, form, state, errors, campaign=None) -> dict:
    organization = request.organization
    accounts = cf.approved_accounts(organization)
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
    contacts = sample_contacts(organization, include_ids)
    document = cf.document_from_state(state)
    sms_text = form.data.get("sms_text", "") if form.is_bound else (campaign.sms_text if campaign else "")
    classification = (form.data.get("classification") if form.is_bound else None) or (
        campaign.classification if campaign else Classification.PROMOTION
    )
    probe = Campaign(organization=organization, official_account=selected_account, classification=classification,
                     content=document, sms_text=sms_text or "")
    context = {
        "form": form,
        "campaign": campaign,
        "b": cf.builder_context(state, errors),
        "errors": errors,
        "has_errors": bool(errors) or bool(form.errors),
        "no_accounts": not accounts.exists(),
        "attribute_keys": keys,
        "placeholders": ["name", *keys, "opt_out_url"],
        "opt_out_placeholder": OPT_OUT_PLACEHOLDER,
        "sample_contacts": contacts,
        "lists": lists,
        "preview": preview_context(document, sms_text, selected_account,
                                   contacts[0] if contacts else None, "rcs"),
        "problems": display_rule_problems(probe),
        "quiet_notice": _quiet_notice_from(request, form, classification, campaign),
        "cron_summary": cf.crontab_summary((form.data.get("recurrence") if form.is_bound else
                                            (campaign.recurrence if campaign else "")) or ""),
        "sms_limit": form.sms_limit(),
        "organization": organization,
    }
    exclude_ids = _selected_ids(form, "exclusion_lists", campaign)
    context["audience"] = _audience_context(request, classification, include_ids, exclude_ids)
    context["include_ids"] = set(include_ids)
    context["exclude_ids"] = set(exclude_ids)
    context["ttl_choices"] = _ttl_choices(form)
    return context


TTL_PRESETS = [(300, 5), (900, 15), (1800, 30), (3600, 60), (3 * 3600, 180), (6 * 3600, 360), (12 * 3600, 720),
               (24 * 3600, 1440), (3 * 86400, 4320)]


def _ttl_label(seconds: int) -> str:
    minutes = seconds // 60
    if minutes % 1440 == 0:
        return ngettext("%(n)d day", "%(n)d days", minutes // 1440) % {"n": minutes // 1440}
    if minutes % 60 == 0:
        return ngettext("%(n)d hour", "%(n)d hours", minutes // 60) % {"n": minutes // 60}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def _ttl_choices(form) -> list[tuple[int, str]]:
    values = [seconds for seconds, _minutes in TTL_PRESETS]
    current = form["ttl_seconds"].value()
    if str(current).isdigit() and int(current) not in values:
        values.append(int(current))
    return [(seconds, _ttl_label(seconds)) for seconds in sorted(values)]


def _selected_ids(form, field, campaign) -> list[int]:
    if form.is_bound:
        return [int(v) for v in form.data.getlist(field) if str(v).isdigit()]
    if campaign and campaign.pk:
        return list(getattr(campaign, field).values_list("id", flat=True))
    return []


def _quiet_notice_from(request, form, classification, campaign):
    if form.is_bound:
        mode = form.data.get("schedule_mode") or cf.ScheduleMode.NOW
        scheduled_at = None
        if mode == cf.ScheduleMode.AT:
            try:
                scheduled_at = form.fields["scheduled_at"].clean(form.data.get("scheduled_at"))
            except ValidationError:
                scheduled_at = None
            if scheduled_at is None:
                return None
        recurrence = form.data.get("recurrence", "") if mode == cf.ScheduleMode.RECURRING else ""
        if mode == cf.ScheduleMode.RECURRING and cf.crontab_problem(recurrence):
            return None
        return quiet_hours_notice(request.organization, classification, scheduled_at=scheduled_at,
                                  recurrence=recurrence)
    if campaign:
        return quiet_hours_notice(request.organization, campaign.classification,
                                  scheduled_at=campaign.scheduled_at, recurrence=campaign.recurrence)
    return quiet_hours_notice(request.organization, classification)


def _audience_context(request, classification, include_ids, exclude_ids) -> dict:
    lists = ContactList.objects.filter(organization=request.organization)
    include_ids = list(lists.filter(pk__in=include_ids).values_list("id", flat=True))
    exclude_ids = list(lists.filter(pk__in=exclude_ids).values_list("id", flat=True))
    if not include_ids:
        return {"empty": True}
    counts = _audience(request.organization, classification, include_ids, exclude_ids)
    if counts is None:
        return {"unavailable": True}
    return {"counts": counts}


def _composer(request, campaign=None):
    organization = request.organization
    if request.method == "POST":
        form = cf.CampaignForm(request.POST, instance=campaign or Campaign(organization=organization),
                               organization=organization)
        state = cf.state_from_post(request.POST)
        errors: dict = {}
        _process_uploads(request, state, errors)
        op = request.POST.get("op")
        if op:
            cf.apply_operation(state, op)
            return render(request, "campaigns/composer.html", _composer_context(request, form, state, errors, campaign))
        document = cf.document_from_state(state)
        for field, messages_ in cf.content_errors(document).items():
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
                    if current != S.DRAFT:
                        messages.error(request, _("This campaign is no longer a draft; your changes were not saved."))
                        return redirect("campaigns:detail", pk=instance.pk)
                    instance.save(update_fields=[*COMPOSER_FIELDS, "content", "updated_at"])
                else:
                    instance.created_by = request.user
                    instance.save()
                form.save_m2m()
            if request.POST.get("action") == "submit":
                try:
                    campaign_services.campaign_submit(instance, request.user)
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
    form = cf.CampaignForm(instance=campaign, organization=organization,
                           initial={} if campaign else {"classification": Classification.PROMOTION,
                                                        "ttl_seconds": 3600})
    state = cf.state_from_document(campaign.content) if campaign else cf.empty_state()
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
    return _composer(request)


@limited_uploads
@member_required("compose")
def campaign_edit(request, pk):
    campaign = _campaign_or_404(request, pk)
    if campaign.status != S.DRAFT:
        messages.info(request, _("Only drafts can be edited. This campaign is “%(status)s”.")
                      % {"status": campaign.get_status_display()})
        return redirect("campaigns:detail", pk=campaign.pk)
    return _composer(request, campaign)


@require_POST
@member_required("compose")
def compose_builder(request):
    """Re-render the content builder after an add / remove / move operation (HTMX)."""
    state = cf.state_from_post(request.POST)
    cf.apply_operation(state, request.POST.get("op", ""))
    context = {"b": cf.builder_context(state, {}), "organization": request.organization}
    response = render(request, "campaigns/_builder.html#builder", context)
    response["HX-Trigger"] = "builderChanged"
    return response


@require_POST
@member_required("compose")
def compose_preview(request):
    """The phone preview for the posted composer state, plus the display-rule checklist and the
    quiet-hours notice (out of band)."""
    state = cf.state_from_post(request.POST)
    document = cf.document_from_state(state)
    account = _account_from(request, request.POST.get("official_account"))
    contact_id = request.POST.get("sample_contact", "")
    contact = None
    if contact_id.isdigit():
        contact = Contact.objects.filter(organization=request.organization, pk=contact_id).first()
    sms_text = request.POST.get("sms_text", "")
    classification = request.POST.get("classification") or Classification.PROMOTION
    probe = Campaign(organization=request.organization, official_account=account, classification=classification,
                     content=document, sms_text=sms_text)
    form = cf.CampaignForm(request.POST, organization=request.organization)
    context = {
        "preview": preview_context(document, sms_text, account, contact, request.POST.get("preview_mode")),
        "problems": display_rule_problems(probe),
        "quiet_notice": _quiet_notice_from(request, form, classification, None),
        "cron_summary": cf.crontab_summary(request.POST.get("recurrence", "")),
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
    classification = data.get("classification") or Classification.PROMOTION
    context = {
        "audience": _audience_context(request, classification, include, exclude),
        "sample_contacts": sample_contacts(request.organization, include),
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
    errors = []
    url = existing
    if _upload_too_large(request):
        errors.append(_("The file is larger than 100 MB."))
    else:
        try:
            stored = store_media(request.FILES.get(field_name), request.organization)
            if slot != "media" and stored.kind == "file":
                errors.append(_("A card shows an image or a video, not a file."))
            else:
                url = stored.url
                kind = stored.kind
        except ValidationError as error:
            errors.extend(error.messages)
    context = {
        "slot": {"path": slot, "url": url, "display_url": display_url(url), "errors": errors, "kind": kind,
                 "is_message_media": slot == "media"},
        "b": cf.builder_context(cf.empty_state(), {}),
    }
    response = render(request, "campaigns/_builder.html#media_slot", context)
    response["HX-Trigger"] = "builderChanged"
    return response


# --- Campaign page and workflow ------------------------------------------------------------------

@member_required("view")
def campaign_detail(request, pk):
    campaign = _campaign_or_404(request, pk)
    permissions = _permissions(request)
    include_ids = list(campaign.audience_lists.values_list("id", flat=True))
    exclude_ids = list(campaign.exclusion_lists.values_list("id", flat=True))
    contacts = sample_contacts(request.organization, include_ids, limit=1)
    contact = contacts[0] if contacts else None
    account = campaign.official_account
    audience = None
    if campaign.status in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.SCHEDULED):
        audience = _audience_context(request, campaign.classification, include_ids, exclude_ids)
    context = {
        "campaign": campaign,
        "can_compose": "compose" in permissions,
        "can_approve": "approve" in permissions,
        "can_monitor": bool(permissions & MONITOR_PERMISSIONS),
        "rcs_preview": preview_context(campaign.content, campaign.sms_text, account, contact, "rcs"),
        "sms_preview": preview_context(campaign.content, campaign.sms_text, account, contact, "sms"),
        "problems": display_rule_problems(campaign),
        "quiet_notice": quiet_hours_notice(request.organization, campaign.classification,
                                           scheduled_at=campaign.scheduled_at, recurrence=campaign.recurrence),
        "cron_summary": cf.crontab_summary(campaign.recurrence),
        "audience": audience,
        "audience_lists": campaign.audience_lists.all(),
        "exclusion_lists": campaign.exclusion_lists.all(),
        "test_form": cf.TestSendForm(),
        "send_back_form": cf.SendBackForm(),
        "account_can_send": account.can_send if account else False,
        "ttl_label": _ttl_label(campaign.ttl_seconds),
    }
    return render(request, "campaigns/detail.html", context)


def _workflow(request, pk, service, success_message, *args, permissions=None):
    campaign = _campaign_or_404(request, pk)
    if permissions:
        _require_any(request, permissions)
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
    _workflow(request, pk, campaign_services.campaign_submit, _("Submitted for approval. An admin will review it."))
    return _hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("approve")
def campaign_approve(request, pk):
    _workflow(request, pk, campaign_services.campaign_approve, _("Approved. The campaign can now be launched."))
    return _hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("approve")
def campaign_send_back(request, pk):
    form = cf.SendBackForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say what should change before sending the campaign back."))
        return _hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))
    _workflow(request, pk, campaign_services.campaign_send_back, _("Sent back to the author as a draft."),
              form.cleaned_data["reason"])
    return _hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("view")
def campaign_launch(request, pk):
    campaign = _workflow(request, pk, runs.campaign_launch, _("Launched."), permissions=CONTROL_PERMISSIONS)
    campaign.refresh_from_db()
    if campaign.status in (S.RUNNING, S.PAUSED, S.COMPLETED):
        return _hx_or_redirect(request, reverse("campaigns:monitor", args=[pk]))
    return _hx_or_redirect(request, reverse("campaigns:detail", args=[pk]))


@require_POST
@member_required("compose")
def campaign_test_send(request, pk):
    campaign = _campaign_or_404(request, pk)
    form = cf.TestSendForm(request.POST)
    result = {"ok": False}
    if form.is_valid():
        try:
            from messaging.services import send_test_message

            delivery = send_test_message(campaign, form.cleaned_data["phone"], request.user)
        except ValidationError as error:
            result["error"] = " ".join(error.messages)
        except ImportError:
            result["error"] = _("Test sending is not available yet.")
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


# --- Monitor ---------------------------------------------------------------------------------------

def _percent(part, whole) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": (seconds % 3600) // 60}


def _funnel(stats: dict) -> list[dict]:
    targeted = stats.get("targeted") or 0
    steps = [
        ("targeted", _("Targeted"), targeted),
        ("sent", _("Sent"), stats.get("sent", 0)),
        ("delivered", _("Delivered"), stats.get("delivered", 0)),
        ("read", _("Read"), stats.get("read", 0)),
        ("clicked", _("Clicked"), stats.get("clicked", 0)),
        ("replied", _("Replied"), stats.get("replied", 0)),
    ]
    return [{"key": key, "label": label, "value": value, "percent": _percent(value, targeted),
             "width": max(_percent(value, targeted), 0.5 if value else 0)} for key, label, value in steps]


def chart_svg(series: list[dict], width=960, height=240) -> dict:
    """Polylines for sends, deliveries and reads per minute, in SVG coordinates (server-rendered)."""
    pad_left, pad_bottom, pad_top, pad_right = 44, 26, 12, 12
    if not series:
        return {"empty": True, "width": width, "height": height}
    peak = max(max(p.get("sent", 0), p.get("delivered", 0), p.get("read", 0)) for p in series) or 1
    magnitude = 10 ** max(0, len(str(int(peak))) - 1)
    top = math.ceil(peak / magnitude) * magnitude
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    count = len(series)

    def x(i):
        return pad_left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(value):
        return pad_top + plot_h - plot_h * value / top

    lines = []
    for key, label, css in (("sent", _("Sent"), "sent"), ("delivered", _("Delivered"), "delivered"),
                            ("read", _("Read"), "read")):
        coordinates = [(f"{x(i):.1f}", f"{y(p.get(key, 0)):.1f}") for i, p in enumerate(series)]
        lines.append({"key": key, "label": label, "css": css, "points": " ".join(f"{a},{b}" for a, b in coordinates),
                      # markers when there are few points (a single minute draws no line at all)
                      "dots": coordinates if count <= 30 else [],
                      "total": sum(p.get(key, 0) for p in series)})
    grid = [{"y": f"{y(top * f / 4):.1f}", "label": f"{int(top * f / 4):,}"} for f in range(5)]
    ticks = []
    step = max(1, count // 6)
    for i in range(0, count, step):
        minute = series[i]["minute"]
        local = timezone.localtime(minute, TOKYO) if timezone.is_aware(minute) else minute
        ticks.append({"x": f"{x(i):.1f}", "label": local.strftime("%H:%M")})
    return {"empty": False, "width": width, "height": height, "lines": lines, "grid": grid, "ticks": ticks,
            "left": pad_left, "right": width - pad_right, "bottom": height - pad_bottom}


def _monitor_context(request, campaign) -> dict:
    stats = _stats(campaign)
    permissions = _permissions(request)
    context = {
        "campaign": campaign,
        "stats": stats,
        "can_pause": bool(permissions & MONITOR_PERMISSIONS),
        "can_control": bool(permissions & CONTROL_PERMISSIONS),
        "finished": campaign.status in FINISHED_STATES,
    }
    if stats is None:
        context["polling"] = False
        return context
    targeted = stats.get("targeted") or 0
    by_channel = stats.get("by_channel") or {}
    rcs_sent = (by_channel.get("rcs") or {}).get("sent", 0)
    sms_sent = (by_channel.get("sms") or {}).get("sent", 0)
    reasons = dict(FallbackReason.choices)
    context.update(
        {
            "finished": bool(stats.get("finished")) or campaign.status in FINISHED_STATES,
            "progress_percent": round(100.0 * float(stats.get("progress") or 0), 1),
            "rate": stats.get("rate_per_s") or 0,
            "eta": _duration(stats.get("eta_seconds")),
            "funnel": _funnel(stats),
            "rcs": by_channel.get("rcs") or {},
            "sms": by_channel.get("sms") or {},
            "rcs_share": _percent(rcs_sent, rcs_sent + sms_sent),
            "sms_share": _percent(sms_sent, rcs_sent + sms_sent),
            "fallback_reasons": sorted(
                ({"reason": reasons.get(k, k), "count": v, "percent": _percent(v, stats.get("fell_back") or 0)}
                 for k, v in (stats.get("fallback_by_reason") or {}).items()),
                key=lambda r: -r["count"],
            ),
            "failures": sorted(
                ({"code": k or _("unknown"), "count": v, "percent": _percent(v, stats.get("failed") or 0)}
                 for k, v in (stats.get("failed_by_reason") or {}).items()),
                key=lambda r: -r["count"],
            ),
            "skipped": (stats.get("skipped_opted_out") or 0) + (stats.get("skipped_no_consent") or 0),
            "chart": chart_svg(stats.get("series") or []),
            "targeted": targeted,
        }
    )
    # Poll while sending may happen (launched, scheduled, running or paused); stop once finished,
    # and do not poll a campaign that has not been approved yet.
    context["polling"] = not context["finished"] and campaign.status in POLLING_STATES
    return context


def _monitor_permission(request):
    _require_any(request, MONITOR_PERMISSIONS)


@member_required("view")
def campaign_monitor(request, pk):
    campaign = _campaign_or_404(request, pk)
    _monitor_permission(request)
    context = _monitor_context(request, campaign)
    context.update(_recipients_context(request, campaign))
    return render(request, "campaigns/monitor.html", context)


@member_required("view")
def monitor_progress(request, pk):
    """The live region of the monitor; polled every 2 s, answers 286 (stop polling) when finished."""
    campaign = _campaign_or_404(request, pk)
    _monitor_permission(request)
    context = _monitor_context(request, campaign)
    response = render(request, "campaigns/monitor.html#live", context)
    if not context["polling"]:
        response.status_code = 286
    return response


def phone_filter(query: str) -> dict:
    """Filter deliveries by a typed number: “090-1234”, “０９０１２３４５６７８” and “+8190…” match the start
    of the E.164 number (an index range scan); other digits (“5678”) match anywhere."""
    import unicodedata

    text = unicodedata.normalize("NFKC", query).strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return {"pk__in": []}
    if text.startswith("+") or (digits.startswith("81") and len(digits) >= 11):
        prefix = "+" + digits
    elif digits.startswith("0"):
        prefix = "+81" + digits[1:]
    else:
        return {"contact__phone__contains": digits}
    # A range as well as LIKE: the range lets the (organization, phone) index serve any collation.
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {"contact__phone__startswith": prefix, "contact__phone__gte": prefix, "contact__phone__lt": upper}


def _recipients_context(request, campaign) -> dict:
    rows = Delivery.objects.filter(campaign=campaign).select_related("contact")
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    query = request.GET.get("q", "").strip()
    if status.isdigit() and int(status) in DeliveryStatus.values:
        rows = rows.filter(status=int(status))
    else:
        status = ""
    if channel in Channel.values:
        rows = rows.filter(channel=channel)
    elif channel == "none":
        rows = rows.filter(channel="")
    else:
        channel = ""
    if query:
        rows = rows.filter(contact__organization=campaign.organization_id, **phone_filter(query))
    after = request.GET.get("after", "")
    if after.isdigit():
        rows = rows.filter(id__lt=int(after))
    page = list(rows.order_by("-id")[: RECIPIENTS_PAGE + 1])
    more = len(page) > RECIPIENTS_PAGE
    page = page[:RECIPIENTS_PAGE]
    for delivery in page:
        delivery.phone_display = national_format(delivery.contact.phone)
    filters = {"status": status, "channel": channel, "q": query}
    return {
        "recipients": page,
        "next_after": page[-1].id if more and page else None,
        "is_first_page": not after,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "status_choices": DeliveryStatus.choices,
        "channel_choices": Channel.choices,
    }


@member_required("view")
def monitor_recipients(request, pk):
    campaign = _campaign_or_404(request, pk)
    _monitor_permission(request)
    context = {"campaign": campaign, **_recipients_context(request, campaign)}
    return render(request, "campaigns/monitor.html#recipients", context)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value):
        return value


def _local(moment):
    return timezone.localtime(moment, TOKYO).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


@member_required("view")
def monitor_export(request, pk):
    """Every delivery of the campaign as CSV, streamed in chunks (constant memory)."""
    campaign = _campaign_or_404(request, pk)
    _monitor_permission(request)
    statuses = dict(DeliveryStatus.choices)
    channels = dict(Channel.choices)
    reasons = dict(FallbackReason.choices)
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("uuid", "contact__phone", "contact__name", "status", "channel", "fallback_reason",
                     "error_code", "error_reason", "sent_at", "delivered_at", "read_at", "failed_at")
    )
    header = [_("Message id"), _("Mobile number"), _("Name"), _("Status"), _("Channel"), _("Fallback reason"),
              _("Error code"), _("Error reason"), _("Sent at"), _("Delivered at"), _("Read at"), _("Failed at")]

    def generate():
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(header)
        for (uuid, phone, name, status, channel, fallback, code, reason, sent, delivered, read, failed) in rows.iterator(
            chunk_size=2000
        ):
            yield writer.writerow([neutralise(v) for v in (
                uuid, phone, name, statuses.get(status, status), channels.get(channel, channel),
                reasons.get(fallback, fallback), code, reason, _local(sent), _local(delivered), _local(read),
                _local(failed),
            )])

    from audit.services import audit_record

    audit_record("export.recipients", request=request, target=campaign)
    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), TOKYO).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-deliveries-{stamp}.csv"'
    return response


def _control(request, pk, service, permissions, success_message):
    campaign = _campaign_or_404(request, pk)
    _require_any(request, permissions)
    try:
        service(campaign, request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success_message)
    return _hx_or_redirect(request, reverse("campaigns:monitor", args=[pk]))


@require_POST
@member_required("view")
def campaign_pause(request, pk):
    return _control(request, pk, runs.campaign_pause, MONITOR_PERMISSIONS, _("Paused. No new messages are sent."))


@require_POST
@member_required("view")
def campaign_resume(request, pk):
    return _control(request, pk, runs.campaign_resume, CONTROL_PERMISSIONS, _("Resumed."))


@require_POST
@member_required("view")
def campaign_cancel(request, pk):
    return _control(request, pk, runs.campaign_cancel, CONTROL_PERMISSIONS,
                    _("Cancelled. Messages not yet sent will not be sent."))

