"""Contact lists: the lists with their sizes, creating and editing one.

Every query is scoped to request.organization (set by member_required), so another organization's
ids answer 404.
"""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from campaigns.forms.contacts import ContactListForm
from campaigns.models import ContactList


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
