"""The organization itself: switching the organization one works in, its quiet hours, its opt-in
keyword, its business hours, its frequency cap, the base of its SMS short links and its data retention
(what is kept and for how long)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import (
    BusinessHoursForm,
    FrequencyCapForm,
    OptInKeywordForm,
    QuietHoursForm,
    RetentionForm,
    ShortLinkBaseForm,
)
from accounts.models import Organization
from accounts.selectors import SESSION_KEY
from accounts.services import (
    organization_business_hours_set,
    organization_frequency_cap_update,
    organization_retention_update,
    organization_short_link_base_set,
)
from accounts.tenancy import user_org_ids
from audit.services import audit_record
from campaigns.optout import opt_in_keyword_set
from core.short_links import example_short_url, short_link_base
from messaging.retention import USEFUL_LIFE


@login_required
@require_POST
def switch_organization(request):
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        raise Http404 from None
    if organization_id not in user_org_ids(request.user):
        raise Http404
    request.session[SESSION_KEY] = organization_id
    organization = Organization.objects.get(pk=organization_id)
    messages.info(request, _("You are now working in %(name)s.") % {"name": organization.name})
    return redirect("dashboard")


@member_required("manage")
def quiet_hours(request):
    """Admins set the organization's quiet hours: promotions wait for the window to open."""
    organization = request.organization
    initial = {"start": organization.quiet_hours_start, "end": organization.quiet_hours_end}
    form = QuietHoursForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        before = {key: value.strftime("%H:%M") for key, value in initial.items()}
        Organization.objects.filter(pk=organization.pk).update(
            quiet_hours_start=form.cleaned_data["start"], quiet_hours_end=form.cleaned_data["end"]
        )
        after = {key: form.cleaned_data[key].strftime("%H:%M") for key in ("start", "end")}
        audit_record("settings.quiet_hours", request=request, target=organization, details={"before": before, "after": after})
        messages.success(request, _("Quiet hours were saved."))
        return redirect("accounts:quiet_hours")
    return render(request, "accounts/quiet_hours.html", {
        "form": form, "organization": organization,
        "keyword_form": OptInKeywordForm(initial={"keyword": organization.opt_in_keyword}),
        **_short_link_context(organization),
    })


def _short_link_context(organization, form=None) -> dict:
    return {
        "short_link_form": form or ShortLinkBaseForm(initial={"short_link_base": organization.short_link_base}),
        "short_link_example": example_short_url(short_link_base(organization.short_link_base)),
    }


@require_POST
@member_required("manage")
def short_link_base_view(request):
    """Admins set where SMS short links point (the rule lives in accounts.services)."""
    organization = request.organization
    form = ShortLinkBaseForm(request.POST)
    if form.is_valid():
        try:
            organization_short_link_base_set(organization, form.cleaned_data["short_link_base"], request=request)
        except ValidationError as error:
            form.add_error("short_link_base", " ".join(error.messages))
        else:
            messages.success(request, _("Short links in SMS now look like %(example)s.")
                             % {"example": example_short_url(short_link_base(organization.short_link_base))})
            return redirect("accounts:quiet_hours")
    initial = {"start": organization.quiet_hours_start, "end": organization.quiet_hours_end}
    return render(request, "accounts/quiet_hours.html", {
        "form": QuietHoursForm(initial=initial), "organization": organization,
        "keyword_form": OptInKeywordForm(initial={"keyword": organization.opt_in_keyword}),
        **_short_link_context(organization, form),
    }, status=400)


@member_required("manage")
def retention(request):
    """Owners and admins set how long message bodies, conversations and an erased person's consent
    history are kept; the page says what is kept and for how long (messaging.retention)."""
    organization = request.organization
    initial = {"message_days": organization.retention_message_days,
               "consent_years": organization.retention_consent_years}
    form = RetentionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            organization_retention_update(organization, request=request, **form.cleaned_data)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            messages.success(request, _("Retention settings were saved."))
            return redirect("accounts:retention")
    useful_life = {name: life.days for name, life in USEFUL_LIFE.items()}
    return render(request, "accounts/retention.html",
                  {"form": form, "organization": organization, "useful_life": useful_life})


@member_required("manage")
def frequency_cap(request):
    """Owners and admins set "at most N promotions per person in D days" (off by default); people
    over it are left out when a promotion's audience is frozen. Transactional messages never count."""
    organization = request.organization
    initial = {"count": organization.frequency_cap_count, "days": organization.frequency_cap_days}
    form = FrequencyCapForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            organization_frequency_cap_update(organization, request=request, **form.cleaned_data)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            if form.cleaned_data["count"] is None:
                messages.success(request, _("The frequency cap is switched off."))
            else:
                messages.success(request, _("The frequency cap was saved."))
            return redirect("accounts:frequency_cap")
    return render(request, "accounts/frequency_cap.html", {"form": form, "organization": organization})


@require_POST
@member_required("manage")
def opt_in_keyword(request):
    """Admins set the organization's opt-in keyword (the rule lives in campaigns.optout)."""
    organization = request.organization
    form = OptInKeywordForm(request.POST)
    if form.is_valid():
        try:
            keyword = opt_in_keyword_set(organization, form.cleaned_data["keyword"], request=request)
        except ValidationError as error:
            form.add_error("keyword", " ".join(error.messages))
        else:
            if keyword:
                messages.success(request, _("The opt-in keyword is now “%(keyword)s”.") % {"keyword": keyword})
            else:
                messages.success(request, _("The opt-in keyword is switched off."))
            return redirect("accounts:quiet_hours")
    initial = {"start": organization.quiet_hours_start, "end": organization.quiet_hours_end}
    return render(request, "accounts/quiet_hours.html", {
        "form": QuietHoursForm(initial=initial), "organization": organization, "keyword_form": form,
        **_short_link_context(organization),
    }, status=400)


@member_required("manage")
def business_hours(request):
    """Admins set when their people answer the inbox; outside these hours each official account's
    away message answers (messaging.automation)."""
    organization = request.organization
    initial = {"start": organization.business_hours_start, "end": organization.business_hours_end,
               "days": list(organization.business_days)}
    form = BusinessHoursForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        organization_business_hours_set(organization, start=data["start"], end=data["end"],
                                        days="".join(sorted(data["days"])), request=request)
        messages.success(request, _("Business hours were saved."))
        return redirect("accounts:business_hours")
    return render(request, "accounts/business_hours.html", {"form": form, "organization": organization},
                  status=400 if form.errors else 200)
