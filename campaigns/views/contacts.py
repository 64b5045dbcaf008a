"""Contact pages: contacts with search, sorting and keyset pagination, one contact with consent and message
history, the opt-out list, and the CSV export. Lists are campaigns.views.contact_lists, the import
flow campaigns.views.contact_import.

Every query is scoped to request.organization (set by member_required), so another organization's
ids answer 404.
"""

import json
import logging
import re
import unicodedata

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from audit.services import audit_record
from campaigns.forms.contacts import ContactSearchForm
from campaigns.models import Contact
from core.csv import csv_lines, phone_cell
from core.paging import sorted_page
from core.phone import national_format
from messaging.models import Delivery

security_log = logging.getLogger("console.security")

PAGE_SIZE = 50


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


CONTACT_SORTS = {"name": "name", "phone": "phone", "created": "id"}  # ids grow with creation time


@member_required("view")
def contact_list(request):
    """Newest first, or sorted by name or number; keyset pages with the total and the position."""
    form = ContactSearchForm(request.GET or None, organization=request.organization)
    page = sorted_page(_filtered_contacts(request, form), request.GET, sorts=CONTACT_SORTS, default="-created",
                       size=PAGE_SIZE)
    query = request.GET.copy()
    for name in ("before", "after", "page", "sort"):
        query.pop(name, None)
    has_any = bool(page.total) or Contact.objects.filter(organization=request.organization).exists()
    context = {
        "form": form,
        "page": page,
        "contacts": [(contact, national_format(contact.phone)) for contact in page],
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


OPT_OUT_SORTS = {"opted_out": "opted_out_at", "name": "name", "phone": "phone"}


@member_required("view")
def opt_outs(request):
    contacts = Contact.objects.filter(organization=request.organization, opted_out_at__isnull=False)
    page = sorted_page(contacts, request.GET, sorts=OPT_OUT_SORTS, default="-opted_out", size=PAGE_SIZE)
    return render(
        request,
        "contacts/opt_outs.html",
        {"page": page, "contacts": [(contact, national_format(contact.phone)) for contact in page]},
    )


def _other_attributes(attributes: dict, known_keys: set) -> str:
    other = {key: value for key, value in attributes.items() if key not in known_keys}
    return json.dumps(other, ensure_ascii=False) if other else ""


@member_required("compose")
def contact_export(request):
    """Stream the filtered contacts as CSV (core.csv: UTF-8 with BOM, numbers as 090-…, formula cells neutralised)."""
    form = ContactSearchForm(request.GET or None, organization=request.organization)
    contacts = _filtered_contacts(request, form).order_by("id")
    # Columns for the attributes seen in the first rows; any other attribute goes, as JSON, into a
    # last column, so nothing is lost without a second pass over every contact.
    attribute_keys = sorted(
        {key for attributes in contacts.values_list("attributes", flat=True)[:1000] for key in (attributes or {})}
    )
    known_keys = set(attribute_keys)
    security_log.info("contacts exported: org=%s user=%s", request.organization.pk, request.user.pk)
    audit_record("export.contacts", request=request, details={"filters": request.GET.dict()})
    header = [_("Mobile number"), _("Name"), _("Opted out at"), _("Created at"), *attribute_keys, _("Other attributes")]

    def values():
        for contact in contacts.iterator(chunk_size=2000):
            attributes = contact.attributes or {}
            yield [
                phone_cell(contact.phone),
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
