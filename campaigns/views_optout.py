"""The signed opt-out link's page: {PUBLIC_BASE_URL}/o/<token>/ — GET shows a confirmation, POST
confirms (CSRF-protected, no sign-in needed). A token that is not ours answers 404."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from .models import Contact
from .optout import OptOutMethod, contact_opt_out
from .optout_links import parse_opt_out_token


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
