"""The dashboard: the first page a member sees after signing in."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.selectors import current_organization


@login_required
def dashboard(request):
    organization = current_organization(request)
    return render(request, "console/dashboard.html", {"organization": organization})
