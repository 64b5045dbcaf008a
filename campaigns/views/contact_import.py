"""The contact import flow: upload → column mapping → progress (polled) → bad-row report.

The file is read and imported by the ``import_contacts`` task (campaigns.imports does the work);
these pages only start it and show how far it got. Every query is scoped to request.organization.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseStopPolling

from accounts.decorators import member_required
from audit.services import audit_record
from campaigns import imports
from campaigns.forms.contacts import ImportMappingForm, ImportUploadForm
from campaigns.imports import import_job_create, import_job_set_mapping, import_report_export
from campaigns.models import ContactList, ImportJob, ImportStatus
from campaigns.tasks import import_contacts
from campaigns.views.common import limited_uploads
from core.csv import BOM

REPORT_PREVIEW = 200


def _job_or_404(request, pk):
    return get_object_or_404(ImportJob.objects.select_related("contact_list"), pk=pk, organization=request.organization)


@limited_uploads(limit=lambda: imports.IMPORT_MAX_BYTES)
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
    if request.method == "POST" and request.upload_limit.too_large:
        form.errors.clear()
        form.add_error("file", _("The file is larger than 100 MB. Split it into smaller files."))
    elif request.method == "POST" and form.is_valid():
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
            form.add_service_errors(error)
            form.add_error(None, _("The import cannot start yet: see the messages beside the fields below."))
        else:
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
    lines = [BOM, *import_report_export(job, actor=request.user, request=request)]
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
