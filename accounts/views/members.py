"""Members of the organization: adding a person, changing a role, removing a member, and whether a
second person approves campaigns (the rules on who may do what to whom are in accounts.services)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import MemberAddForm, MemberRoleForm, SecondApproverForm
from accounts.models import Membership, Role
from accounts.selectors import second_approver_required
from accounts.services import (
    membership_add,
    membership_change_role,
    membership_remove,
    organization_second_approver_set,
)


def _members_context(request, add_form=None, errors=None, approver_form=None):
    memberships = Membership.objects.filter(organization=request.organization).select_related("user").order_by(
        "user__username"
    )
    return {
        "memberships": memberships,
        "add_form": add_form or MemberAddForm(),
        "role_choices": Role.choices,
        "row_errors": errors or {},
        "is_owner": request.role == Role.OWNER,
        "approver_form": approver_form or SecondApproverForm(initial={"second_approver": request.organization.second_approver}),
        "second_approver_now": second_approver_required(request.organization),
    }


@member_required("manage")
def members(request):
    add_form = MemberAddForm(request.POST or None)
    if request.method == "POST" and add_form.is_valid():
        try:
            membership = membership_add(
                request.organization,
                add_form.cleaned_data["identifier"],
                add_form.cleaned_data["role"],
                acting_role=request.role,
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                for message in field_errors:
                    add_form.add_error(field if field in add_form.fields else None, message)
        else:
            messages.success(request, _("%(user)s was added.") % {"user": membership.user.get_username()})
            return redirect("accounts:members")
    return render(request, "accounts/members.html", _members_context(request, add_form))


@member_required("manage")
@require_POST
def member_role(request, pk):
    membership = get_object_or_404(Membership, pk=pk, organization=request.organization)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            membership_change_role(
                membership, form.cleaned_data["role"], acting_role=request.role, actor=request.user, request=request
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The role was changed."))
    else:
        messages.error(request, _("Unknown role."))
    return redirect("accounts:members")


@member_required("manage")
@require_POST
def member_remove(request, pk):
    membership = get_object_or_404(Membership, pk=pk, organization=request.organization)
    try:
        membership_remove(membership, acting_role=request.role, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(user)s was removed.") % {"user": membership.user.get_username()})
    return redirect("accounts:members")


@member_required("manage")
@require_POST
def second_approver(request):
    """Whether a second person approves campaigns (the rule itself is in campaigns.services.campaign_approve)."""
    form = SecondApproverForm(request.POST)
    if form.is_valid():
        organization_second_approver_set(request.organization, form.cleaned_data["second_approver"], request=request)
        messages.success(request, _("The approval setting was saved."))
        return redirect("accounts:members")
    return render(request, "accounts/members.html", _members_context(request, approver_form=form), status=400)
