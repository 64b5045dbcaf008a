"""The inbox automation page of one official account: its keyword rules (with how often each fired)
and its away message. Owners and admins (permission ``manage``); the account must be the
organization's (another organization's id answers 404). HTMX swaps the rules region."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.models import OfficialAccount
from core.business_hours import parse_days
from messaging import automation
from messaging.forms_automation import AwayMessageForm, KeywordRuleForm
from messaging.models import AwayMessage, KeywordRule

WEEKDAY_NAMES = {1: gettext_lazy("Mon"), 2: gettext_lazy("Tue"), 3: gettext_lazy("Wed"), 4: gettext_lazy("Thu"),
                 5: gettext_lazy("Fri"), 6: gettext_lazy("Sat"), 7: gettext_lazy("Sun")}


def _account_or_404(request, pk) -> OfficialAccount:
    return get_object_or_404(OfficialAccount, pk=pk, organization=request.organization)


def _context(request, account, rule_form=None, away_form=None) -> dict:
    away = AwayMessage.objects.filter(official_account=account).first()
    organization = request.organization
    days = sorted(parse_days(organization.business_days))
    return {
        "account": account,
        "rules": KeywordRule.objects.filter(official_account=account).select_related(
            "quick_reply", "contact_list", "assignee"),
        "rule_form": rule_form or KeywordRuleForm(organization=organization),
        "away": away,
        "away_form": away_form or AwayMessageForm(initial={"text": away.text, "enabled": away.enabled} if away else {}),
        "business_hours": organization.business_hours_start and organization.business_hours_end and {
            "start": organization.business_hours_start, "end": organization.business_hours_end,
            "days": " ".join(str(WEEKDAY_NAMES[day]) for day in days),
        },
    }


def _rules_response(request, account, rule_form=None, status=200):
    template = "inbox/automation.html"
    if request.htmx:
        template += "#keyword-rules"
    return render(request, template, _context(request, account, rule_form=rule_form), status=status)


@member_required("manage")
def automation_page(request, pk):
    """GET: the page. POST: a new keyword rule (errors at their field, in the rules region)."""
    account = _account_or_404(request, pk)
    if request.method != "POST":
        return render(request, "inbox/automation.html", _context(request, account))
    form = KeywordRuleForm(request.POST, organization=request.organization)
    if form.is_valid():
        data = form.cleaned_data
        try:
            automation.keyword_rule_save(account, keyword=data["keyword"], match=data["match"], action=data["action"],
                                         quick_reply_id=data["quick_reply"], tag=data["tag"],
                                         contact_list_id=data["contact_list"], assignee_id=data["assignee"])
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            if not request.htmx:
                flash.success(request, _("The keyword rule was added."))
                return redirect("messaging:automation", pk=account.pk)
            return _rules_response(request, account)
    # htmx swaps only a 2xx answer: the region with the errors at their fields comes back as 200 to it.
    return _rules_response(request, account, rule_form=form, status=200 if request.htmx else 400)


@member_required("manage")
@require_POST
def automation_rule_toggle(request, pk):
    rule = get_object_or_404(KeywordRule.objects.select_related("official_account"), pk=pk,
                             organization=request.organization)
    account = rule.official_account
    automation.keyword_rule_set_enabled(rule, not rule.enabled)
    if not request.htmx:
        return redirect("messaging:automation", pk=account.pk)
    return _rules_response(request, account)


@member_required("manage")
@require_POST
def automation_rule_delete(request, pk):
    rule = get_object_or_404(KeywordRule.objects.select_related("official_account"), pk=pk,
                             organization=request.organization)
    account = rule.official_account
    automation.keyword_rule_delete(rule)
    if not request.htmx:
        flash.success(request, _("The keyword rule was deleted."))
        return redirect("messaging:automation", pk=account.pk)
    return _rules_response(request, account)


@member_required("manage")
@require_POST
def automation_away(request, pk):
    account = _account_or_404(request, pk)
    form = AwayMessageForm(request.POST)
    if form.is_valid():
        try:
            automation.away_message_save(account, **form.cleaned_data)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            flash.success(request, _("The away message was saved."))
            return redirect("messaging:automation", pk=account.pk)
    return render(request, "inbox/automation.html", _context(request, account, away_form=form), status=400)
