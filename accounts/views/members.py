"""Members of the organization: inviting people by e-mail, adding an existing account, changing a role,
deactivating and removing a member, and whether a second person approves campaigns (the rules on who
may do what to whom are in accounts.services and accounts.invitations)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import InvitationForm, MemberAddForm, MemberRoleForm, SecondApproverForm
from accounts.invitations import invitation_create, invitation_revoke
from accounts.models import Invitation, Membership, Role
from accounts.selectors import second_approver_required
from accounts.services import (
    membership_add,
    membership_change_role,
    membership_deactivate,
    membership_reactivate,
    membership_remove,
    organization_second_approver_set,
)


def _members_context(request, add_form=None, errors=None, approver_form=None, invite_form=None):
    memberships = Membership.objects.filter(organization=request.organization).select_related("user").order_by(
        "-user__is_active", "user__username"
    )
    return {
        "memberships": memberships,
        "invitations": Invitation.objects.pending().filter(organization=request.organization)
        .select_related("invited_by").order_by("-created_at"),
        "invite_form": invite_form or InvitationForm(),
        "invitation_days": settings.INVITATION_MAX_AGE_DAYS,
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


@member_required("manage")
@require_POST
def member_invite(request):
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation, _token = invitation_create(
                request.organization, form.cleaned_data["email"], form.cleaned_data["role"],
                acting_role=request.role, actor=request.user, request=request,
            )
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            if invitation.email_sent is False:
                messages.warning(request, _("The invitation to %(email)s was saved, but the e-mail could not be sent. "
                                            "Check the e-mail settings, then invite the address again to resend it.")
                                 % {"email": invitation.email})
            else:
                messages.success(request, _("An invitation was sent to %(email)s.") % {"email": invitation.email})
            return redirect("accounts:members")
    return render(request, "accounts/members.html", _members_context(request, invite_form=form), status=400)


@member_required("manage")
@require_POST
def invitation_revoke_view(request, pk):
    invitation = get_object_or_404(Invitation, pk=pk, organization=request.organization)
    try:
        invitation_revoke(invitation, acting_role=request.role, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The invitation to %(email)s was revoked.") % {"email": invitation.email})
    return redirect("accounts:members")


@member_required("manage")
@require_POST
def member_deactivate(request, pk):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, organization=request.organization)
    try:
        membership_deactivate(membership, acting_role=request.role, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(user)s was deactivated and signed out everywhere.")
                         % {"user": membership.user.get_username()})
    return redirect("accounts:members")


@member_required("manage")
@require_POST
def member_reactivate(request, pk):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, organization=request.organization)
    try:
        membership_reactivate(membership, acting_role=request.role, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(user)s can sign in again.") % {"user": membership.user.get_username()})
    return redirect("accounts:members")
