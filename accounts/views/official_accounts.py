"""Official accounts: the list with each carrier's review, one account's page, creating and editing
one, its logo. The fixed menu's editor is accounts.views.menu_editor."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from accounts.forms import LogoForm, OfficialAccountForm
from accounts.models import Carrier, CarrierReview, OfficialAccount, ReviewStatus
from accounts.pricing import price_summary, price_tables
from accounts.services import official_account_set_logo
from accounts.tenancy import ROLE_PERMISSIONS
from messaging.engine.failover import sms_failover_state

REVIEW_BADGES = {ReviewStatus.APPROVED: "ok", ReviewStatus.PENDING: "warn", ReviewStatus.REJECTED: "bad"}


def _reviews_by_carrier(account):
    """One entry per carrier, in a fixed order; a carrier with no review row is "not submitted"."""
    reviews = {review.carrier: review for review in account.reviews.all()}
    rows = []
    for carrier in Carrier:
        review = reviews.get(carrier.value)
        rows.append(
            {
                "carrier": carrier.label,
                "review": review,
                "status": review.get_status_display() if review else _("Not submitted"),
                "badge": REVIEW_BADGES.get(review.status, "") if review else "",
            }
        )
    return rows


def official_account_or_404(request, pk):
    """The official account if it is the member's organization's; another organization's id answers 404."""
    return get_object_or_404(
        OfficialAccount.objects.select_related("rcs_gateway", "sms_gateway", "backup_sms_gateway").prefetch_related("reviews"),
        pk=pk,
        organization=request.organization,
    )


def can_manage(request) -> bool:
    """Whether the member may change the organization's accounts (owners and admins)."""
    return "manage" in ROLE_PERMISSIONS.get(request.role, set())


@member_required("view")
def official_account_list(request):
    accounts = list(
        OfficialAccount.objects.filter(organization=request.organization)
        .prefetch_related("reviews")
        .order_by("display_name")
    )
    rows = [{"account": account, "reviews": _reviews_by_carrier(account)} for account in accounts]
    return render(request, "accounts/official_list.html", {"rows": rows})


@member_required("view")
def official_account_detail(request, pk):
    account = official_account_or_404(request, pk)
    gateways = [g for g in (account.rcs_gateway, account.sms_gateway, account.backup_sms_gateway) if g]
    tables = price_tables([g.pk for g in gateways])
    for gateway in gateways:
        gateway.price_lines = price_summary(tables.get(gateway.pk))
    return render(
        request,
        "accounts/official_detail.html",
        {
            "account": account,
            "reviews": _reviews_by_carrier(account),
            "gateways": gateways,
            "sms_failover": sms_failover_state(account),
            "can_manage": can_manage(request),
        },
    )


@member_required("manage")
def official_account_create(request):
    form = OfficialAccountForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        CarrierReview.objects.bulk_create(
            [CarrierReview(account=account, carrier=carrier) for carrier in Carrier.values], ignore_conflicts=True
        )
        messages.success(request, _("The official account was created. Carrier reviews are now pending."))
        return redirect("accounts:official_detail", pk=account.pk)
    return render(request, "accounts/official_form.html", {"form": form, "account": None})


@member_required("manage")
def official_account_edit(request, pk):
    account = official_account_or_404(request, pk)
    form = OfficialAccountForm(request.POST or None, instance=account, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Saved."))
        return redirect("accounts:official_detail", pk=account.pk)
    return render(request, "accounts/official_form.html", {"form": form, "account": account})


@member_required("manage")
def official_account_logo(request, pk):
    account = official_account_or_404(request, pk)
    form = LogoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            official_account_set_logo(account, form.cleaned_data["logo"], actor=request.user, request=request)
        except ValidationError as error:
            form.add_error("logo", error)
        else:
            messages.success(request, _("The logo was updated."))
            return redirect("accounts:official_detail", pk=account.pk)
    return render(request, "accounts/official_logo.html", {"form": form, "account": account})
