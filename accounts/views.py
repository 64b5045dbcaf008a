"""Console pages for the organization: switcher, official accounts (details, logo, fixed menu), members.

Every view is guarded by accounts.decorators.member_required and reads through the current
organization, so another organization's ids answer 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import LogoForm, MemberAddForm, MemberRoleForm, MenuItemForm, OfficialAccountForm
from accounts.models import (
    Carrier,
    CarrierReview,
    Membership,
    OfficialAccount,
    Organization,
    ReviewStatus,
    Role,
)
from accounts.selectors import SESSION_KEY
from accounts.services import (
    MenuPathError,
    fixed_menu_delete_item,
    fixed_menu_move_item,
    fixed_menu_put_item,
    membership_add,
    membership_change_role,
    membership_remove,
    menu_item_at,
    official_account_set_logo,
)
from accounts.tenancy import ROLE_PERMISSIONS, user_org_ids

# --- organization switcher ----------------------------------------------------------------------


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


# --- official accounts --------------------------------------------------------------------------

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


def _account_or_404(request, pk):
    return get_object_or_404(
        OfficialAccount.objects.select_related("rcs_gateway", "sms_gateway").prefetch_related("reviews"),
        pk=pk,
        organization=request.organization,
    )


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
    account = _account_or_404(request, pk)
    return render(
        request,
        "accounts/official_detail.html",
        {
            "account": account,
            "reviews": _reviews_by_carrier(account),
            "gateways": [g for g in (account.rcs_gateway, account.sms_gateway) if g],
            "can_manage": "manage" in _permissions(request),
        },
    )


def _permissions(request):
    return ROLE_PERMISSIONS.get(request.role, set())


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
    account = _account_or_404(request, pk)
    form = OfficialAccountForm(request.POST or None, instance=account, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Saved."))
        return redirect("accounts:official_detail", pk=account.pk)
    return render(request, "accounts/official_form.html", {"form": form, "account": account})


@member_required("manage")
def official_account_logo(request, pk):
    account = _account_or_404(request, pk)
    form = LogoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            official_account_set_logo(account, form.cleaned_data["logo"])
        except ValidationError as error:
            form.add_error("logo", error)
        else:
            messages.success(request, _("The logo was updated."))
            return redirect("accounts:official_detail", pk=account.pk)
    return render(request, "accounts/official_logo.html", {"form": form, "account": account})


# --- fixed menu editor --------------------------------------------------------------------------


def _editor_context(request, account, form=None, form_path="", form_parent="", child_form=None):
    return {
        "account": account,
        "items": _menu_rows(account.fixed_menu),
        "form": form,
        "child_form": child_form,
        "form_path": form_path,
        "form_parent": form_parent,
        "can_manage": "manage" in _permissions(request),
    }


def _item_target(item):
    """What an item does, in a few words, for the editor's list."""
    if item.get("type") == "location":
        return item.get("query") or f"{item.get('latitude')}, {item.get('longitude')}"
    for key in ("url", "phone", "postback", "title"):
        if item.get(key):
            return item[key]
    return ""


def _menu_rows(menu):
    rows = []
    items = (menu or {}).get("items", [])
    for index, item in enumerate(items):
        children = []
        if "items" in item:
            for child_index, child in enumerate(item["items"]):
                children.append(
                    {"item": child, "path": f"{index}.{child_index}", "target": _item_target(child),
                     "first": child_index == 0,
                     "last": child_index == len(item["items"]) - 1}
                )
        rows.append(
            {"item": item, "path": str(index), "is_submenu": "items" in item, "children": children,
             "target": _item_target(item),
             "first": index == 0, "last": index == len(items) - 1}
        )
    return rows


def _render_editor(request, context):
    template = "accounts/fixed_menu.html"
    if request.htmx:
        template += "#menu-editor"
    return render(request, template, context)


@member_required("view")
def fixed_menu(request, pk):
    account = _account_or_404(request, pk)
    return render(request, "accounts/fixed_menu.html", _editor_context(request, account))


CHILD_PREFIX = "child"


def _initial_from_query(query, prefix=""):
    """Form initial values from a GET query (the form re-rendered after its action type changed)."""
    lead = f"{prefix}-" if prefix else ""
    return {key[len(lead):]: value for key, value in query.items() if key.startswith(lead) and (prefix or "-" not in key)}


@member_required("manage")
def fixed_menu_item(request, pk):
    """GET: the item form (new, or editing ``path``). POST: save the item and return the editor.

    A new submenu is created together with its first entry (the ``child`` form), because a
    submenu without entries is not a valid menu.
    """
    account = _account_or_404(request, pk)
    source = request.POST if request.method == "POST" else request.GET
    path = source.get("path", "")
    parent = source.get("parent", "")
    allow_submenu = not parent and "." not in path
    child = None
    if request.method == "GET":
        if "type" in request.GET:  # the action type changed: re-render the form, keeping the values
            form = MenuItemForm(initial=_initial_from_query(request.GET.dict()), allow_submenu=allow_submenu)
        elif path:
            try:
                item = menu_item_at(account.fixed_menu, path)
            except MenuPathError:
                raise Http404 from None
            form = MenuItemForm(initial=MenuItemForm.initial_from_item(item), allow_submenu=allow_submenu)
        else:
            form = MenuItemForm(initial={"type": "reply"}, allow_submenu=allow_submenu)
        if form.current_type() == "submenu" and not path:
            child_initial = _initial_from_query(request.GET.dict(), CHILD_PREFIX) or {"type": "reply"}
            child = MenuItemForm(initial=child_initial, prefix=CHILD_PREFIX, allow_submenu=False)
        context = _editor_context(request, account, form, path, parent, child)
        if request.htmx and request.htmx.target == "item-form":
            return render(request, "accounts/fixed_menu.html#item-form", context)
        return _render_editor(request, context)

    form = MenuItemForm(request.POST, allow_submenu=allow_submenu)
    if form.current_type() == "submenu" and not path:
        child = MenuItemForm(request.POST, prefix=CHILD_PREFIX, allow_submenu=False)
    if form.is_valid() and (child is None or child.is_valid()):
        item = form.to_item()
        if child is not None:
            item["items"] = [child.to_item()]
        try:
            fixed_menu_put_item(account, item, path=path or None, parent=parent or None)
        except MenuPathError:
            raise Http404 from None
        except ValidationError as error:
            account.refresh_from_db(fields=["fixed_menu"])
            if parent:
                new_index = len(menu_item_at(account.fixed_menu, parent).get("items", []))
                item_path = f"{parent}.{new_index}"
            else:
                item_path = path or str(len(account.fixed_menu.get("items", [])))
            if child is not None:
                child.add_menu_errors(error.message_dict, f"{item_path}.0", only_own=True)
            form.add_menu_errors(error.message_dict, item_path, skip_children=child is not None)
        else:
            if not request.htmx:
                messages.success(request, _("The menu was saved."))
                return redirect("accounts:fixed_menu", pk=account.pk)
            context = _editor_context(request, account)
            context["saved"] = True
            return _render_editor(request, context)
    return _render_editor(request, _editor_context(request, account, form, path, parent, child))


@member_required("manage")
@require_POST
def fixed_menu_move(request, pk):
    account = _account_or_404(request, pk)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        raise Http404
    try:
        fixed_menu_move_item(account, request.POST.get("path", ""), direction)
    except MenuPathError:
        raise Http404 from None
    if not request.htmx:
        return redirect("accounts:fixed_menu", pk=account.pk)
    return _render_editor(request, _editor_context(request, account))


@member_required("manage")
@require_POST
def fixed_menu_delete(request, pk):
    account = _account_or_404(request, pk)
    try:
        fixed_menu_delete_item(account, request.POST.get("path", ""))
    except MenuPathError:
        raise Http404 from None
    if not request.htmx:
        return redirect("accounts:fixed_menu", pk=account.pk)
    return _render_editor(request, _editor_context(request, account))


# --- members ------------------------------------------------------------------------------------


def _members_context(request, add_form=None, errors=None):
    memberships = Membership.objects.filter(organization=request.organization).select_related("user").order_by(
        "user__username"
    )
    return {
        "memberships": memberships,
        "add_form": add_form or MemberAddForm(),
        "role_choices": Role.choices,
        "row_errors": errors or {},
        "is_owner": request.role == Role.OWNER,
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
            membership_change_role(membership, form.cleaned_data["role"], acting_role=request.role)
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
        membership_remove(membership, acting_role=request.role)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(user)s was removed.") % {"user": membership.user.get_username()})
    return redirect("accounts:members")


# --- quiet hours (an organization setting) --------------------------------------------------------


@member_required("manage")
def quiet_hours(request):
    """Admins set the organization's quiet hours: promotions wait for the window to open."""
    from django import forms as django_forms

    from audit.services import audit_record

    class QuietHoursForm(django_forms.Form):
        start = django_forms.TimeField(label=_("Quiet hours start"), widget=django_forms.TimeInput(
            attrs={"type": "time"}, format="%H:%M"))
        end = django_forms.TimeField(label=_("Quiet hours end"), widget=django_forms.TimeInput(
            attrs={"type": "time"}, format="%H:%M"))

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
    return render(request, "accounts/quiet_hours.html", {"form": form, "organization": organization})
