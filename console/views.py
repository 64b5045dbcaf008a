"""The dashboard: the first page a member sees after signing in."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.decorators import member_required
from accounts.selectors import current_organization

from .dashboard import dashboard_data


@login_required
def dashboard(request):
    if current_organization(request) is None:
        return render(request, "console/dashboard.html", {"organization": None})
    return _member_dashboard(request)


@member_required("view")
def _member_dashboard(request):
    context = dashboard_data(request.organization)
    context["organization"] = request.organization
    return render(request, "console/dashboard.html", context)
