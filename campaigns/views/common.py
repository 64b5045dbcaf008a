"""What several campaign pages share: who may do what, a campaign of the member's organization,
answering an HTMX request with a redirect, the live audience count and the TTL's label.

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

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts.audit_hooks import permission_refused
from accounts.tenancy import ROLE_PERMISSIONS
from campaigns.media import SizeLimitUploadHandler
from campaigns.models import Campaign, ContactList
from messaging.engine.freeze import audience_estimate
from messaging.segments import chosen_segment_filters

MONITOR_PERMISSIONS = {"operate", "compose", "approve"}
CONTROL_PERMISSIONS = {"compose", "approve"}


def member_permissions(request) -> set[str]:
    """What the member's role allows here ("view", "compose", "approve", "operate", …)."""
    return set(ROLE_PERMISSIONS.get(request.role, ()))


def require_any(request, permissions: set[str]) -> None:
    """Refuse (403, and an audit event) unless the member has one of ``permissions``."""
    if not member_permissions(request) & permissions:
        permission_refused(request, request.organization, "|".join(sorted(permissions)))
        raise PermissionDenied


def campaign_or_404(request, pk) -> Campaign:
    """The campaign if it is the member's organization's; another organization's id answers 404."""
    return get_object_or_404(
        Campaign.objects.select_related("official_account", "created_by", "approved_by"),
        pk=pk,
        organization=request.organization,
    )


def hx_or_redirect(request, url):
    """A redirect, as ``HX-Redirect`` for an HTMX request (htmx would swap a 302's page in place)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def audience_context(request, classification, include_ids, exclude_ids, include_segment_ids=(),
                     exclude_segment_ids=()) -> dict:
    """The live recipient count for the chosen lists and segments (only the organization's own count),
    decided as the freeze decides (opt-outs, consent, the frequency cap)."""
    lists = ContactList.objects.filter(organization=request.organization)
    include_ids = list(lists.filter(pk__in=include_ids).values_list("id", flat=True))
    exclude_ids = list(lists.filter(pk__in=exclude_ids).values_list("id", flat=True))
    include_filter, exclude_filter = chosen_segment_filters(
        request.organization.id, include_segment_ids, exclude_segment_ids
    )
    if not include_ids and include_filter is None:
        return {"empty": True}
    return {"counts": audience_estimate(request.organization, classification, include_ids, exclude_ids,
                                        include_filter, exclude_filter)}


def ttl_label(seconds: int) -> str:
    """“3 hours”, “1 day”: a message's time to live as people say it."""
    minutes = seconds // 60
    if minutes % 1440 == 0:
        return ngettext("%(n)d day", "%(n)d days", minutes // 1440) % {"n": minutes // 1440}
    if minutes % 60 == 0:
        return ngettext("%(n)d hour", "%(n)d hours", minutes // 60) % {"n": minutes // 60}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def limited_uploads(view=None, *, limit=None):
    """Stop reading uploads past ``limit`` bytes (100 MB by default) before anything touches
    ``request.POST``; the view finds ``request.upload_limit.too_large`` set and says why.

    Upload handlers can only be changed before the body is read, and the CSRF middleware reads it,
    so the check runs first and CSRF is enforced right after (Django's documented pattern).
    Use as ``@limited_uploads`` or ``@limited_uploads(limit=…)``; ``limit`` may be a function, read
    at each request.
    """
    if view is None:
        return lambda inner: limited_uploads(inner, limit=limit)

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        handler = SizeLimitUploadHandler(request, limit=limit() if callable(limit) else limit)
        request.upload_handlers.insert(0, handler)
        request.upload_limit = handler
        return csrf_protect(view)(request, *args, **kwargs)

    return wrapper
