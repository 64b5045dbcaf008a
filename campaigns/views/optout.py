"""Opt-out and consent pages.

The signed opt-out link's page: {PUBLIC_BASE_URL}/o/<token>/ — GET shows a confirmation, POST
confirms (CSRF-protected, no sign-in needed). A token that is not ours answers 404. For members: one
person's consent ledger as CSV, opting a person out from the console, erasing instead of deleting,
and the disclosure export (everything held about one person, one JSON file: messaging.privacy).
"""

import json

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import member_required
from audit.services import audit_record
from campaigns.models import Contact
from campaigns.optout import (
    OptOutMethod,
    consent_ledger_export_record,
    consent_ledger_lines,
    contact_erase,
    contact_opt_out,
)
from core.signed_links import parse_opt_out_token
from messaging.privacy import contact_disclosure


@csrf_protect
@require_http_methods(["GET", "POST"])
def opt_out_page(request, token):
    parsed = parse_opt_out_token(token)
    if parsed is None:
        raise Http404
    organization_id, contact_id = parsed
    contact = Contact.objects.select_related("organization").filter(pk=contact_id, organization_id=organization_id).first()
    if contact is None:
        raise Http404
    done = False
    if request.method == "POST":
        contact_opt_out(contact, OptOutMethod.LINK, "opt-out link", request=request)
        done = True
    masked = contact.phone[:-4].replace("+81", "0") + "••••" if len(contact.phone) > 4 else contact.phone
    return render(
        request,
        "campaigns/opt_out.html",
        {
            "organization": contact.organization,
            "masked_phone": masked,
            "done": done,
            "already": bool(contact.opted_out_at) and not done,
            "hide_shell": True,
        },
    )


# --- the consent ledger of one contact (console, signed-in members) -------------------------------

@member_required("view")
def consent_ledger_export(request, pk):
    """One person's consent and opt-out history as CSV (what a regulator or the person may ask for)."""
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    consent_ledger_export_record(contact, actor=request.user, request=request)
    response = StreamingHttpResponse(consent_ledger_lines(contact), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="consent-{contact.pk}-{stamp}.csv"'
    return response


@member_required("operate")
@require_POST
def contact_opt_out_view(request, pk):
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    if contact_opt_out(contact, OptOutMethod.CONSOLE, f"console:{request.user.get_username()}", request=request,
                       confirm=request.POST.get("confirm") == "1"):
        messages.success(request, _("The person was opted out of promotional messages."))
    return redirect("contacts:detail", pk=contact.pk)


@member_required("manage")
@require_POST
def contact_erase_view(request, pk):
    """Erase instead of delete: the consent history stays for 3 years, everything else goes."""
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    contact_erase(contact, request=request)
    messages.success(request, _("The contact's personal data was erased; the consent history is kept for 3 years."))
    return redirect("contacts:detail", pk=contact.pk)


@member_required("manage")
def contact_disclosure_export(request, pk):
    """Everything held about one person as one JSON file, for a disclosure request (開示請求);
    owners and admins only, audited."""
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    body = json.dumps(contact_disclosure(contact), ensure_ascii=False, indent=2)
    audit_record("export.disclosure", request=request, target=contact, target_label=contact.phone,
                 details={"bytes": len(body.encode())})
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="disclosure-{contact.pk}-{stamp}.json"'
    return response
