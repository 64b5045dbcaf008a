"""The dashboard: the first page a member sees after signing in."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.decorators import member_required
from accounts.selectors import current_organization
from accounts.tenancy import ROLE_PERMISSIONS
from console.dashboard import dashboard_data
from core.phone import national_format
from messaging.inbox import oldest_waiting
from messaging.models import ConversationMessage, MessageDirection


@login_required
def dashboard(request):
    if current_organization(request) is None:
        return render(request, "console/dashboard.html", {"organization": None})
    return _member_dashboard(request)


@member_required("view")
def _member_dashboard(request):
    context = dashboard_data(request.organization)
    context["organization"] = request.organization
    context["recent_replies"] = _recent_replies(request)
    if context["recent_replies"] is not None:  # members who answer see how long the oldest question waits
        oldest = oldest_waiting(request.organization)
        context["oldest_waiting"] = oldest
        context["oldest_waiting_phone"] = national_format(oldest.contact.phone) if oldest else ""
    return render(request, "console/dashboard.html", context)


def _recent_replies(request, limit=5):
    """The latest inbound messages, for members who may answer them (operators and above)."""
    if "operate" not in ROLE_PERMISSIONS.get(request.role, ()):
        return None
    return list(
        ConversationMessage.objects.filter(
            conversation__organization=request.organization, direction=MessageDirection.INBOUND
        )
        .select_related("conversation__contact")
        .order_by("-created_at", "-id")[:limit]
    )
