"""The fixed menu's editor of an official account: items and submenus, added, edited, moved and
deleted through accounts.services; the editor region is swapped by HTMX."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.forms import MenuItemForm
from accounts.services import (
    MenuPathError,
    fixed_menu_delete_item,
    fixed_menu_move_item,
    fixed_menu_put_item,
    menu_item_at,
)
from accounts.views.official_accounts import can_manage, official_account_or_404


def _editor_context(request, account, form=None, form_path="", form_parent="", child_form=None):
    return {
        "account": account,
        "items": _menu_rows(account.fixed_menu),
        "form": form,
        "child_form": child_form,
        "form_path": form_path,
        "form_parent": form_parent,
        "can_manage": can_manage(request),
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
    account = official_account_or_404(request, pk)
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
    account = official_account_or_404(request, pk)
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
    account = official_account_or_404(request, pk)
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
    account = official_account_or_404(request, pk)
    try:
        fixed_menu_delete_item(account, request.POST.get("path", ""))
    except MenuPathError:
        raise Http404 from None
    if not request.htmx:
        return redirect("accounts:fixed_menu", pk=account.pk)
    return _render_editor(request, _editor_context(request, account))
