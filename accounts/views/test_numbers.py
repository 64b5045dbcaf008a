"""Test numbers: owners and admins register the organization's own phones for test sends and
confirm each with the code sent to it (every rule in ``messaging.testsends``)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import TestNumberConfirmForm, TestNumberForm
from core.phone import national_format
from messaging import testsends
from messaging.models import TestNumber


def _number_or_404(request, pk) -> TestNumber:
    return get_object_or_404(TestNumber, pk=pk, organization=request.organization)


@member_required("manage")
def test_numbers(request):
    form = TestNumberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            number = testsends.test_number_register(request.organization, form.cleaned_data["phone"],
                                                    label=form.cleaned_data["label"], user=request.user,
                                                    request=request)
        except ValidationError as error:
            form.add_error("phone", " ".join(error.messages))
        else:
            messages.success(request, _("A code was sent to %(phone)s. Type it in to confirm the number.")
                             % {"phone": national_format(number.phone)})
            return redirect("accounts:test_numbers")
    numbers = TestNumber.objects.filter(organization=request.organization).order_by("phone")
    return render(request, "accounts/test_numbers.html",
                  {"form": form, "numbers": numbers, "confirm_form": TestNumberConfirmForm()})


@require_POST
@member_required("manage")
def test_number_confirm(request, pk):
    number = _number_or_404(request, pk)
    form = TestNumberConfirmForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Type the 6-digit code."))
        testsends.test_number_confirm(number, form.cleaned_data["code"], user=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(phone)s is confirmed: test sends may go to it.")
                         % {"phone": national_format(number.phone)})
    return redirect("accounts:test_numbers")


@require_POST
@member_required("manage")
def test_number_resend(request, pk):
    number = _number_or_404(request, pk)
    try:
        testsends.test_number_send_code(number, user=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("A new code was sent to %(phone)s.") % {"phone": national_format(number.phone)})
    return redirect("accounts:test_numbers")


@require_POST
@member_required("manage")
def test_number_remove(request, pk):
    number = _number_or_404(request, pk)
    testsends.test_number_remove(number, user=request.user, request=request)
    messages.success(request, _("The test number was removed."))
    return redirect("accounts:test_numbers")
