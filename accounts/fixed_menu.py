"""The fixed menu (persistent menu) of an official account: schema and validator.

A menu is ``{"items": [...]}``. Each item is either an action — a suggestion as in
core.rich_content (reply, open_url, dial, location, calendar) — or a submenu
``{"label": "…", "items": [<action>, …]}``. Submenus nest one level only.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.rich_content import CHIPS_MAX, LABEL_MAX, ErrorList, check_text, validate_suggestion

MENU_ITEMS_MAX = CHIPS_MAX


def empty_menu():
    return {"items": []}


def _validate_items(errors, field, items, depth):
    if not isinstance(items, list):
        errors.add(field, _("Must be a list."))
        return
    if len(items) > MENU_ITEMS_MAX:
        errors.add(field, _("Has %(count)d items; the limit is %(limit)d.") % {"count": len(items), "limit": MENU_ITEMS_MAX})
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        if isinstance(item, dict) and "items" in item:
            if depth >= 1:
                errors.add(path, _("Submenus can only be nested one level deep."))
                continue
            check_text(errors, f"{path}.label", item.get("label"), LABEL_MAX)
            if not item["items"]:
                errors.add(f"{path}.items", _("A submenu needs at least one item."))
            _validate_items(errors, f"{path}.items", item["items"], depth + 1)
        else:
            validate_suggestion(errors, path, item)


def validate_fixed_menu(menu) -> None:
    errors = ErrorList()
    if not isinstance(menu, dict) or set(menu) - {"items"}:
        errors.add("fixed_menu", _('The menu must be an object with one key, "items".'))
        errors.raise_if_any()
    _validate_items(errors, "fixed_menu.items", menu.get("items", []), depth=0)
    errors.raise_if_any()


def validate_fixed_menu_field(value):
    """Model-field validator: the same rules, errors flattened onto the field."""
    try:
        validate_fixed_menu(value)
    except ValidationError as error:
        raise ValidationError([f"{field}: {msg}" for field, msgs in error.message_dict.items() for msg in msgs]) from None
