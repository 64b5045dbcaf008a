"""The member's notifications (the bell in the header): the list, opening one (marks it read and
goes to what it is about), marking all read, and the member's own e-mail preference."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.models import Membership, Notification
from accounts.notifications import (
    email_preference_set,
    notification_open,
    notification_text,
    notifications_mark_read,
)
from core.paging import keyset_page

PAGE_SIZE = 50


@member_required("view")
def notifications(request):
    rows = Notification.objects.filter(recipient=request.user, organization=request.organization).select_related(
        "actor"
    )
    before = request.GET.get("before", "")
    page, has_next = keyset_page(rows, before, PAGE_SIZE)
    membership = Membership.objects.filter(user=request.user, organization=request.organization).first()
    return render(request, "accounts/notifications.html", {
        "notifications": [(notification, notification_text(notification)) for notification in page],
        "next_before": page[-1].id if has_next else None,
        "is_first_page": not before,
        "notify_by_email": bool(membership and membership.notify_by_email),
    })


@member_required("view")
def notification_go(request, pk):
    """Open a notification: it is read, and the member goes to what it is about."""
    notification = notification_open(request.user, request.organization, pk)
    if notification is None:
        raise Http404
    if not url_has_allowed_host_and_scheme(notification.url, allowed_hosts=None):
        return redirect("accounts:notifications")
    return redirect(notification.url)


@member_required("view")
@require_POST
def notifications_read(request):
    notifications_mark_read(request.user, request.organization)
    messages.success(request, _("All notifications are marked as read."))
    return redirect("accounts:notifications")


@member_required("view")
@require_POST
def notification_preferences(request):
    enabled = request.POST.get("notify_by_email") == "on"
    if enabled and not request.user.email:
        messages.error(request, _("Your account has no e-mail address. Ask an owner or admin to add one first."))
        return redirect("accounts:notifications")
    email_preference_set(request.user, request.organization, enabled)
    if enabled:
        messages.success(request, _("You will also get an e-mail at %(address)s when a conversation is assigned to you.")
                         % {"address": request.user.email})
    else:
        messages.success(request, _("You will no longer get e-mails about assigned conversations."))
    return redirect("accounts:notifications")
