"""Contact pages: contacts with search and keyset pagination, detail with consent and message history,
lists, the opt-out list, CSV export, and the import flow (upload → column mapping → progress → report).

Every query is scoped to request.organization (set by member_required), so another organization's
ids answer 404.
"""

import json
import logging
import re
import unicodedata

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseStopPolling

from accounts.decorators import member_required
from campaigns.forms_contacts import ContactListForm, ContactSearchForm, ImportMappingForm, ImportUploadForm
from campaigns.imports import import_job_create, import_job_set_mapping, row_report_lines
from campaigns.models import Contact, ContactList, ImportJob, ImportStatus
from core.csv import csv_lines
from core.phone import national_format
from messaging.models import Delivery

security_log = logging.getLogger("console.security")

PAGE_SIZE = 50
REPORT_PREVIEW = 200


# --- contacts -----------------------------------------------------------------------------------


def _phone_prefix(query: str) -> str | None:
    """The E.164 prefix a typed number stands for ("090-12" → "+8190 12"), or None for a name."""
    text = unicodedata.normalize("NFKC", query).strip()
    digits = re.sub(r"[\s\-‐ー()]", "", text)
    if not re.fullmatch(r"\+?[0-9]{2,15}", digits):
        return None
    if digits.startswith("+"):
        return digits
    if digits.startswith("81") and len(digits) > 10:
        return "+" + digits
    if digits.startswith("0"):
        return "+81" + digits[1:]
    return None


def _filtered_contacts(request, form):
    contacts = Contact.objects.filter(organization=request.organization)
    if not form.is_bound:
        return contacts
    form.is_valid()  # a bad value in one filter (say, an unknown list) leaves the others working
    cleaned = form.cleaned_data
    query = (cleaned.get("q") or "").strip()
    if query:
        prefix = _phone_prefix(query)
        if prefix:
            contacts = contacts.filter(phone__startswith=prefix)
        else:
            contacts = contacts.filter(name__icontains=query)
    if "list" in form.errors:
        return contacts.none()
    if cleaned.get("list"):
        contacts = contacts.filter(list_memberships__contact_list=cleaned["list"])
    if cleaned.get("opted_out") == "yes":
        contacts = contacts.filter(opted_out_at__isnull=False)
    elif cleaned.get("opted_out") == "no":
        contacts = contacts.filter(opted_out_at__isnull=True)
    return contacts


@member_required("view")
def contact_list(request):
    """Newest first, paged by id (keyset): constant time on any page, whatever the contact count."""
    form = ContactSearchForm(request.GET or None, organization=request.organization)
    contacts = _filtered_contacts(request, form).order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        contacts = contacts.filter(id__lt=int(before))
    page = list(contacts[: PAGE_SIZE + 1])
    has_next = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    query = request.GET.copy()
    query.pop("before", None)
    has_any = has_next or bool(page) or Contact.objects.filter(organization=request.organization).exists()
    context = {
        "form": form,
        "contacts": [(contact, national_format(contact.phone)) for contact in page],
        "next_before": page[-1].id if has_next else None,
        "is_first_page": not before,
        "query": query.urlencode(),
        "has_any": has_any,
    }
    template = "contacts/contact_list.html"
    if request.htmx and request.htmx.target == "contact-results":
        template += "#contact-results"
    return render(request, template, context)


@member_required("view")
def contact_detail(request, pk):
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    consents = contact.consents.filter(organization=request.organization).order_by("-granted_at")
    deliveries = (
        Delivery.objects.filter(organization=request.organization, contact=contact)
        .select_related("campaign")
        .order_by("-created_at")[:200]
    )
    lists = contact.lists.filter(organization=request.organization).order_by("name")
    return render(
        request,
        "contacts/contact_detail.html",
        {
            "contact": contact,
            "phone_display": national_format(contact.phone),
            "consents": consents,
            "deliveries": deliveries,
            "lists": lists,
            "attributes": sorted((contact.attributes or {}).items()),
        },
    )


@member_required("view")
def opt_outs(request):
    contacts = Contact.objects.filter(organization=request.organization, opted_out_at__isnull=False).order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        contacts = contacts.filter(id__lt=int(before))
    page = list(contacts[: PAGE_SIZE + 1])
    has_next = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return render(
        request,
        "contacts/opt_outs.html",
        {
            "contacts": [(contact, national_format(contact.phone)) for contact in page],
            "next_before": page[-1].id if has_next else None,
            "is_first_page": not before,
        },
    )


def _other_attributes(attributes: dict, known_keys: set) -> str:
    other = {key: value for key, value in attributes.items() if key not in known_keys}
    return json.dumps(other, ensure_ascii=False) if other else ""


@member_required("compose")
def contact_export(request):
    """Stream the filtered contacts as CSV (core.csv: UTF-8 with BOM, formula cells neutralised)."""
    form = ContactSearchForm(request.GET or None, organization=request.organization)
    contacts = _filtered_contacts(request, form).order_by("id")
    # Columns for the attributes seen in the first rows; any other attribute goes, as JSON, into a
    # last column, so nothing is lost without a second pass over every contact.
    attribute_keys = sorted(
        {key for attributes in contacts.values_list("attributes", flat=True)[:1000] for key in (attributes or {})}
    )
    known_keys = set(attribute_keys)
    security_log.info("contacts exported: org=%s user=%s", request.organization.pk, request.user.pk)
    from audit.services import audit_record

    audit_record("export.contacts", request=request, details={"filters": request.GET.dict()})
    header = [_("Mobile number"), _("Name"), _("Opted out at"), _("Created at"), *attribute_keys, _("Other attributes")]

    def values():
        for contact in contacts.iterator(chunk_size=2000):
            attributes = contact.attributes or {}
            yield [
                contact.phone,
                contact.name,
                timezone.localtime(contact.opted_out_at).isoformat() if contact.opted_out_at else "",
                timezone.localtime(contact.created_at).isoformat(),
                *[attributes.get(key, "") for key in attribute_keys],
                _other_attributes(attributes, known_keys),
            ]

    response = StreamingHttpResponse(csv_lines(header, values()), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
    return response


# --- lists --------------------------------------------------------------------------------------


@member_required("view")
def list_index(request):
    lists = (
        ContactList.objects.filter(organization=request.organization)
        .annotate(
            size=Count("memberships"),
            reachable=Count("memberships", filter=Q(memberships__contact__opted_out_at__isnull=True)),
        )
        .order_by("name")
    )
    return render(request, "contacts/lists.html", {"lists": lists})


@member_required("compose")
def list_create(request):
    form = ContactListForm(request.POST or None, organization=request.organization)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if request.method == "POST" and form.is_valid():
        contact_list = form.save()
        messages.success(request, _("The list “%(name)s” was created.") % {"name": contact_list.name})
        return redirect(next_url or "contacts:lists")
    return render(request, "contacts/list_form.html", {"form": form, "contact_list": None, "next": next_url})


@member_required("compose")
def list_edit(request, pk):
    contact_list = get_object_or_404(ContactList, pk=pk, organization=request.organization)
    form = ContactListForm(request.POST or None, instance=contact_list, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Saved."))
        return redirect("contacts:lists")
    return render(request, "contacts/list_form.html", {"form": form, "contact_list": contact_list})


# --- import -------------------------------------------------------------------------------------


def _job_or_404(request, pk):
    return get_object_or_404(ImportJob.objects.select_related("contact_list"), pk=pk, organization=request.organization)


@member_required("compose")
def import_upload(request):
    lists = ContactList.objects.filter(organization=request.organization)
    initial = {}
    chosen = request.GET.get("list", "")
    if chosen.isdigit() and lists.filter(pk=int(chosen)).exists():
        initial["contact_list"] = int(chosen)
    elif len(ids := list(lists.values_list("pk", flat=True)[:2])) == 1:
        initial["contact_list"] = ids[0]  # the only list: nothing to choose
    form = ImportUploadForm(
        request.POST or None, request.FILES or None, organization=request.organization, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                request.organization, request.user, form.cleaned_data["file"], form.cleaned_data["contact_list"]
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error("file", message)
        else:
            return redirect("contacts:import_mapping", pk=job.pk)
    recent = ImportJob.objects.filter(organization=request.organization).select_related("contact_list")[:10]
    has_lists = lists.exists()
    return render(request, "contacts/import_upload.html", {"form": form, "recent": recent, "has_lists": has_lists})


@member_required("compose")
def import_mapping(request, pk):
    job = _job_or_404(request, pk)
    if job.status != ImportStatus.MAPPING:
        return redirect("contacts:import_status", pk=job.pk)
    form = ImportMappingForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        defaults = {**form.consent_defaults(), "language": get_language()}
        try:
            import_job_set_mapping(job, form.mapping(), defaults)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            from audit.services import audit_record
            from campaigns.tasks import import_contacts

            audit_record("consent.imported", request=request, target=job.contact_list, details={
                "import_job": job.pk, "file": job.original_name, "purpose": job.contact_list.purpose,
                "attested": bool(defaults.get("attested")), "wording_version": defaults.get("wording_version", ""),
                "method": defaults.get("method", ""), "source": defaults.get("source", ""),
            })
            transaction.on_commit(lambda: import_contacts.delay(job.pk))
            return redirect("contacts:import_status", pk=job.pk)
    return render(request, "contacts/import_mapping.html", {"form": form, "job": job})


@member_required("compose")
def import_status(request, pk):
    job = _job_or_404(request, pk)
    return render(request, "contacts/import_status.html", _status_context(job))


def _status_context(job):
    return {"job": job, "report_preview": job.row_errors[:REPORT_PREVIEW] if job.is_finished else []}


@member_required("compose")
def import_progress(request, pk):
    """The polled progress region; answers 286 (stop polling) once the import has finished."""
    job = _job_or_404(request, pk)
    response = render(request, "contacts/import_status.html#import-progress", _status_context(job))
    if job.is_finished:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


@member_required("compose")
def import_report(request, pk):
    job = _job_or_404(request, pk)
    lines = ["\ufeff", *row_report_lines(job)]
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
