"""A gateway account's price table (yen per +Message message and per SMS segment, by carrier),
edited by owners and admins; reached from the official account page. Every cost the console shows
is priced with it (``accounts.pricing``)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from accounts.forms import GatewayPriceForm
from accounts.models import GatewayAccount, OfficialAccount
from accounts.pricing import gateway_prices_set


@member_required("manage")
def gateway_prices(request, pk):
    gateway = get_object_or_404(GatewayAccount, pk=pk, organization=request.organization)
    back = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    form = GatewayPriceForm(request.POST or None, gateway=gateway)
    if request.method == "POST" and form.is_valid():
        gateway_prices_set(gateway, form.prices(), request.user)
        messages.success(request, _("Prices saved."))
        return redirect(back or request.path)
    accounts = OfficialAccount.objects.filter(organization=request.organization).filter(
        rcs_gateway=gateway
    ) | OfficialAccount.objects.filter(organization=request.organization, sms_gateway=gateway) | (
        OfficialAccount.objects.filter(organization=request.organization, backup_sms_gateway=gateway)
    )
    return render(
        request,
        "accounts/gateway_prices.html",
        {"gateway": gateway, "form": form, "back": back, "accounts": accounts.distinct().order_by("display_name")},
    )
