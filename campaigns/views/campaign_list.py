"""The campaign list: filters by status, classification and name, with live progress for the
campaigns sending now."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, Value, When
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from campaigns.models import Campaign, CampaignStatus, Classification
from campaigns.views.common import member_permissions
from core.paging import sorted_page
from messaging.stats import campaign_stats

PAGE_SIZE = 25
# The columns people sort by. Status sorts in the order of a campaign's life (draft … completed), not
# by the code's spelling; the schedule is the time it is (or was) due, else when it was created.
CAMPAIGN_SORTS = {"name": "name", "status": "status_rank", "schedule": "schedule", "created": "created_at"}


@member_required("view")
def campaign_list(request):
    campaigns = Campaign.objects.filter(organization=request.organization).select_related("official_account")
    status = request.GET.get("status", "")
    classification = request.GET.get("classification", "")
    query = request.GET.get("q", "").strip()
    if status in CampaignStatus.values:
        campaigns = campaigns.filter(status=status)
    else:
        status = ""
    if classification in Classification.values:
        campaigns = campaigns.filter(classification=classification)
    else:
        classification = ""
    if query:
        campaigns = campaigns.filter(name__icontains=query)
    counts = dict(
        Campaign.objects.filter(organization=request.organization)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    campaigns = campaigns.annotate(
        status_rank=Case(*(When(status=value, then=Value(rank)) for rank, value in enumerate(CampaignStatus.values)),
                         default=Value(len(CampaignStatus.values)), output_field=IntegerField()),
        schedule=Coalesce("scheduled_at", "started_at", "created_at"),
    )
    page = sorted_page(campaigns, request.GET, sorts=CAMPAIGN_SORTS, default="-created", size=PAGE_SIZE)
    for campaign in page.rows:
        # Live progress for the few campaigns sending now (read from the folded counters).
        campaign.progress_percent = None
        if campaign.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
            stats = campaign_stats(campaign)
            campaign.progress_percent = round(100.0 * float(stats.get("progress") or 0), 1)
    total = sum(counts.values())
    context = {
        "page": page,
        "status": status,
        "classification": classification,
        "q": query,
        "filtered": bool(status or classification or query),
        "total": total,
        "status_tabs": [("", _("All"), total)]
        + [(value, label, counts.get(value, 0)) for value, label in CampaignStatus.choices],
        "classifications": Classification.choices,
        "can_compose": "compose" in member_permissions(request),
    }
    if request.htmx and request.htmx.target == "campaign-table":
        return render(request, "campaigns/list.html#table", context)
    return render(request, "campaigns/list.html", context)
