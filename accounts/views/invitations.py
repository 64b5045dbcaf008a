"""Accepting an invitation through the e-mailed link (no sign-in needed for a new account)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from accounts.forms import InvitationAcceptForm
from accounts.invitations import (
    InvitationInvalid,
    existing_account_for,
    invitation_accept_new_account,
    invitation_accept_signed_in,
    invitation_from_token,
)
from accounts.selectors import SESSION_KEY

TEMPLATE = "accounts/invitation_accept.html"


def _dead_link(request, reason):
    status = 404 if reason == "unknown" else 410
    return render(request, TEMPLATE, {"invalid_reason": reason, "hide_shell": True}, status=status)


@never_cache
def invitation_accept(request, token):
    try:
        invitation = invitation_from_token(token)
    except InvitationInvalid as dead:
        return _dead_link(request, dead.reason)
    existing = existing_account_for(invitation)
    context = {"invitation": invitation, "existing": existing, "hide_shell": True,
               "login_next": request.get_full_path()}
    if existing is not None:
        # The address already has an account: that person joins by signing in, never by a new password.
        if request.method == "POST" and request.user.is_authenticated:
            try:
                membership = invitation_accept_signed_in(token, request.user, request=request)
            except InvitationInvalid as dead:
                return _dead_link(request, dead.reason)
            except ValidationError as error:
                context["join_error"] = " ".join(error.messages)
                return render(request, TEMPLATE, context, status=400)
            request.session[SESSION_KEY] = membership.organization_id
            messages.success(request, _("You joined %(organization)s.") % {"organization": membership.organization.name})
            return redirect("dashboard")
        return render(request, TEMPLATE, context)
    if request.user.is_authenticated:
        context["signed_in_as_other"] = True
        return render(request, TEMPLATE, context)
    form = InvitationAcceptForm(request.POST or None, initial={"username": invitation.email.split("@")[0]})
    if request.method == "POST" and form.is_valid():
        try:
            invitation_accept_new_account(token, form.cleaned_data["username"], form.cleaned_data["password1"],
                                          request=request)
        except InvitationInvalid as dead:
            return _dead_link(request, dead.reason)
        except ValidationError as error:
            for field, field_errors in error.message_dict.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, _("Your account is ready. Sign in with your username and password."))
            return redirect("login")
    context["form"] = form
    return render(request, TEMPLATE, context, status=400 if form.errors else 200)
