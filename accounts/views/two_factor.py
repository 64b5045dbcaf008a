"""Two-factor sign-in pages: the step after the password, enrolment with a QR code, the member's
security page and the organization's policy. The rules live in accounts.two_factor.

The sign-in flow (kept apart from the password step, which stays Django's LoginView):

1. ``PasswordStepLoginView``: Django's LoginView. A member who has no second factor and whose
   organizations do not require one is signed in as before. Otherwise nobody is signed in yet: the
   session only remembers, for ``TWO_FACTOR_PENDING_SECONDS``, who passed the password.
2. ``two_factor_verify``: a code from the authenticator app or a recovery code; only then is the
   member signed in (django.contrib.auth.login, then django_otp.login). A wrong code is reported to
   django-axes as a failed sign-in (the ``user_login_failed`` signal), so it counts with wrong
   passwords toward the lock-out, and the audit log records it like one.
3. ``two_factor_setup``: a member whose organization requires a second factor and who has none
   sets it up here before being signed in; a signed-in member sets it up or replaces it here too.
"""

import time

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.decorators import member_required
from accounts.models import Membership
from accounts.tenancy import ROLE_PERMISSIONS
from accounts.two_factor import (
    organization_two_factor_set,
    recovery_codes_left,
    recovery_codes_regenerate,
    second_step_verify,
    totp_device_pending,
    totp_enrol,
    totp_qr_svg,
    totp_secret_text,
    two_factor_enabled,
    two_factor_remove,
    two_factor_required,
    two_factor_reset_member,
)

PENDING_KEY = "two_factor_pending"
CODE_FIELD = "otp_code"  # masked in django-axes' stored POST data (AXES_SENSITIVE_PARAMETERS)


class SecondStepForm(forms.Form):
    otp_code = forms.CharField(
        label=gettext_lazy("Authentication code"),
        max_length=40,
        help_text=gettext_lazy("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
    )


class EnrolForm(forms.Form):
    otp_code = forms.CharField(
        label=gettext_lazy("Code from the app"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class TwoFactorPolicyForm(forms.Form):
    required = forms.BooleanField(label=gettext_lazy("Members must sign in with two-factor authentication"),
                                  required=False)


# --- the pending sign-in (between the password step and the second step) ----------------------


def _pending_start(request, user, next_url: str) -> None:
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user_id": user.pk,
        "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]),
        "next": next_url,
        "started": int(time.time()),
    }


def _pending(request):
    """The member who passed the password step and has not finished signing in, or None."""
    data = request.session.get(PENDING_KEY)
    if not data:
        return None, None
    if time.time() - data.get("started", 0) > settings.TWO_FACTOR_PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, None
    user = get_user_model().objects.filter(pk=data["user_id"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING_KEY, None)
    return user, data


def _complete_sign_in(request, user, device, data) -> None:
    auth_login(request, user, backend=data["backend"])
    otp_login(request, device)
    request.session.pop(PENDING_KEY, None)


def _safe_next(request, url: str) -> str:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


class PasswordStepLoginView(LoginView):
    """Step one, the password (Django's LoginView); see the module docstring for what follows."""

    def form_valid(self, form):
        user = form.get_user()
        enabled = two_factor_enabled(user)
        if not enabled and not two_factor_required(user):
            return super().form_valid(form)
        _pending_start(self.request, user, self.get_success_url())
        return redirect("two_factor_verify" if enabled else "accounts:two_factor_setup")


@sensitive_post_parameters(CODE_FIELD)
@never_cache
def two_factor_verify(request):
    """Step two: the code from the app or a recovery code."""
    started = PENDING_KEY in request.session
    user, data = _pending(request)
    if user is None:
        if started:
            messages.info(request, _("Your sign-in expired. Please sign in again."))
        return redirect("login")
    if not two_factor_enabled(user):
        return redirect("accounts:two_factor_setup")
    credentials = {"username": user.get_username()}
    form = SecondStepForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not AxesProxyHandler.is_allowed(request, credentials):
            request.session.pop(PENDING_KEY, None)
            return get_lockout_response(request, None, credentials)
        result = second_step_verify(user, form.cleaned_data[CODE_FIELD], request=request)
        if result.device is not None:
            _complete_sign_in(request, user, result.device, data)
            if result.device.__class__ is not TOTPDevice:
                left = recovery_codes_left(user)
                messages.warning(request, _("You signed in with a recovery code. %(left)s recovery codes are left; "
                                            "make new ones on the two-factor page if you are running out.")
                                 % {"left": left})
            return redirect(_safe_next(request, data.get("next", "")))
        if result.wait_seconds:
            form.add_error(CODE_FIELD, _("Too many wrong codes. Wait %(seconds)s seconds and try again.")
                           % {"seconds": result.wait_seconds})
        else:
            form.add_error(CODE_FIELD, _("That code is not right. Enter the code your app shows now, "
                                         "or a recovery code."))
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            request.session.pop(PENDING_KEY, None)  # AxesMiddleware answers with the lock-out page
    return render(request, "registration/two_factor_verify.html", {"form": form, "pending_user": user})


@sensitive_post_parameters(CODE_FIELD)
@never_cache
def two_factor_setup(request):
    """Enrol an authenticator app: QR code, the secret as text, and a code to confirm it.

    Reached by a signed-in member, or during sign-in by a member who must use a second factor
    and has none yet (never by one who has one: they must pass the second step first).
    """
    data = None
    if request.user.is_authenticated:
        user = request.user
        if two_factor_enabled(user) and not request.user.is_verified():
            auth_logout(request)
            return redirect_to_login(request.get_full_path())
        next_url = request.GET.get("next") or request.POST.get("next") or reverse("accounts:two_factor")
    else:
        user, data = _pending(request)
        if user is None:
            return redirect_to_login(request.get_full_path())
        if two_factor_enabled(user):
            return redirect("two_factor_verify")
        next_url = data.get("next", "")
    device = totp_device_pending(user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = totp_enrol(user, device, form.cleaned_data[CODE_FIELD], request=request)
        except ValidationError as error:
            form.add_error(CODE_FIELD, error)
        else:
            if data is not None:
                _complete_sign_in(request, user, device, data)
            else:
                otp_login(request, device)
            response = render(request, "accounts/two_factor_codes.html", {
                "codes": codes, "continue_url": _safe_next(request, next_url), "just_enrolled": True,
            })
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "accounts/two_factor_setup.html", {
        "form": form,
        "qr_svg": totp_qr_svg(device),
        "secret": totp_secret_text(device),
        "signing_in": data is not None,
        "required": two_factor_required(user),
        "next": next_url,
        "pending_user": user,
    })


# --- the member's own page and the organization's policy --------------------------------------


@member_required("view")
def two_factor_page(request):
    user = request.user
    enabled = two_factor_enabled(user)
    context = {
        "enabled": enabled,
        "required": two_factor_required(user),
        "codes_left": recovery_codes_left(user) if enabled else 0,
        "can_manage": "manage" in ROLE_PERMISSIONS.get(request.role, ()),
    }
    if context["can_manage"]:
        organization = request.organization
        context["policy_form"] = TwoFactorPolicyForm(initial={"required": organization.two_factor_required})
        context["members"] = _members_with_two_factor_state(organization)
    return render(request, "accounts/two_factor.html", context)


def _members_with_two_factor_state(organization):
    enrolled = set(TOTPDevice.objects.filter(confirmed=True, user__memberships__organization=organization)
                   .values_list("user_id", flat=True))
    memberships = list(
        Membership.objects.filter(organization=organization, user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    )
    for membership in memberships:
        membership.two_factor_on = membership.user_id in enrolled
    return memberships


@require_POST
@member_required("manage")
def two_factor_member_reset(request, pk):
    """An owner or admin resets a member's lost authenticator (the rule: accounts.two_factor)."""
    membership = get_object_or_404(Membership.objects.select_related("user"),
                                   organization=request.organization, pk=pk)
    try:
        two_factor_reset_member(request.organization, membership.user, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(name)s's two-factor sign-in was reset. They sign in with their password "
                                    "and set up a new authenticator if it is mandatory.")
                         % {"name": membership.user.get_username()})
    return redirect("accounts:two_factor")


@require_POST
@member_required("view")
def two_factor_recovery_codes(request):
    try:
        codes = recovery_codes_regenerate(request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("accounts:two_factor")
    response = render(request, "accounts/two_factor_codes.html", {
        "codes": codes, "continue_url": reverse("accounts:two_factor"), "just_enrolled": False,
    })
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@member_required("view")
def two_factor_disable(request):
    try:
        two_factor_remove(request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Two-factor sign-in is off. Your authenticator and recovery codes no longer work."))
    return redirect("accounts:two_factor")


@require_POST
@member_required("manage")
def two_factor_policy(request):
    form = TwoFactorPolicyForm(request.POST)
    if form.is_valid():
        try:
            organization_two_factor_set(request.organization, form.cleaned_data["required"], request=request)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            if form.cleaned_data["required"]:
                messages.success(request, _("Two-factor sign-in is now mandatory. Members without it set it up "
                                            "at their next step in the console."))
            else:
                messages.success(request, _("Two-factor sign-in is now optional for members."))
    return redirect("accounts:two_factor")
