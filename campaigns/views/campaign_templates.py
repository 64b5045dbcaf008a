"""Campaign templates and cloning: the templates page (list with a thumbnail preview, rename,
delete), saving a campaign as a template, and cloning a campaign into a new draft. Starting a
campaign from a template is the composer (``campaigns:create?template=<id>``).

Every member sees the templates; those who compose (marketer, admin, owner) save, rename, delete and
clone. The writes are ``campaigns.campaign_templates``; the thumbnail is the composer's phone
preview (``campaigns.views.preview``), drawn small."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from campaigns import campaign_templates
from campaigns.forms.campaign_template import TemplateNameForm
from campaigns.models import CampaignTemplate
from campaigns.views.common import campaign_or_404, member_permissions
from campaigns.views.preview import preview_context


def template_or_404(request, pk) -> CampaignTemplate:
    """The template if it is the member's organization's; another organization's id answers 404."""
    return get_object_or_404(CampaignTemplate, pk=pk, organization=request.organization)


def thumbnail(template) -> dict:
    """The composer's phone preview of the template's content, placeholders shown as typed."""
    return preview_context(template.content, template.sms_text, None, None, "rcs")


def _name_errors(form, error: ValidationError) -> None:
    for field, problems in error.message_dict.items():
        for problem in problems:
            form.add_error(field if field in form.fields else None, problem)


@member_required("view")
def template_list(request):
    templates = CampaignTemplate.objects.filter(organization=request.organization).select_related("created_by")
    rows = [{"template": template, "preview": thumbnail(template)} for template in templates]
    return render(request, "campaigns/templates.html", {
        "rows": rows, "can_compose": "compose" in member_permissions(request),
    })


@member_required("compose")
def template_save(request, pk):
    """Save a campaign's content and SMS text as a template (a page: name it, see what is kept)."""
    campaign = campaign_or_404(request, pk)
    form = TemplateNameForm(request.POST or None, initial={"name": campaign.name})
    if request.method == "POST" and form.is_valid():
        try:
            template = campaign_templates.template_create_from_campaign(campaign, form.cleaned_data["name"],
                                                                       request.user)
        except ValidationError as error:
            _name_errors(form, error)
        else:
            messages.success(request, _("Saved as the template “%(name)s”.") % {"name": template.name})
            return redirect("campaigns:templates")
    return render(request, "campaigns/template_form.html", {
        "form": form, "campaign": campaign,
        "preview": preview_context(campaign.content, campaign.sms_text, campaign.official_account, None, "rcs"),
    })


@member_required("compose")
def template_rename(request, pk):
    template = template_or_404(request, pk)
    form = TemplateNameForm(request.POST or None, initial={"name": template.name})
    if request.method == "POST" and form.is_valid():
        try:
            campaign_templates.template_rename(template, form.cleaned_data["name"], request.user)
        except ValidationError as error:
            _name_errors(form, error)
        else:
            messages.success(request, _("The template is now named “%(name)s”.") % {"name": template.name})
            return redirect("campaigns:templates")
    return render(request, "campaigns/template_form.html", {
        "form": form, "template": template, "preview": thumbnail(template),
    })


@require_POST
@member_required("compose")
def template_delete(request, pk):
    template = template_or_404(request, pk)
    name = template.name
    campaign_templates.template_delete(template, request.user)
    messages.success(request, _("The template “%(name)s” was deleted.") % {"name": name})
    return redirect("campaigns:templates")


@require_POST
@member_required("compose")
def campaign_clone(request, pk):
    """Copy any campaign of the organization into a new draft and open it in the composer."""
    campaign = campaign_or_404(request, pk)
    clone = campaign_templates.campaign_clone(campaign, request.user)
    messages.success(request, _("This is a copy of “%(name)s”: a new draft, without its schedule or approval.")
                     % {"name": campaign.name})
    return redirect("campaigns:edit", pk=clone.pk)
