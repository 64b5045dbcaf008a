"""The fixed menu of an official account: actions and one level of submenus, limits, URL rules."""

import pytest
from django.core.exceptions import ValidationError

from accounts.fixed_menu import MENU_ITEMS_MAX, empty_menu, validate_fixed_menu, validate_fixed_menu_field
from core.rich_content import LABEL_MAX
from tests.accounts.factories import OfficialAccountFactory
from tests.accounts.ja_pending import assert_japanese


def errors_of(menu):
    try:
        validate_fixed_menu(menu)
    except ValidationError as error:
        return error.message_dict
    return {}


def action(label="営業時間", url="https://shop.example.jp/hours"):
    return {"type": "open_url", "label": label, "url": url}


def submenu(label="お問い合わせ", items=None):
    return {"label": label, "items": items if items is not None else [action(), {"type": "dial", "label": "電話", "phone": "0312345678"}]}


def test_empty_menu_is_valid():
    assert errors_of(empty_menu()) == {}
    assert errors_of({}) == {}


def test_actions_and_one_level_of_submenus_are_valid():
    menu = {
        "items": [
            action(),
            {"type": "reply", "label": "配信停止", "postback": "opt_out"},
            submenu(),
            {"type": "location", "label": "店舗", "latitude": 35.68, "longitude": 139.76},
        ]
    }
    assert errors_of(menu) == {}


def test_submenus_nest_one_level_only():
    nested = submenu(items=[action(), submenu(label="さらに")])
    errors = errors_of({"items": [nested]})
    assert list(errors) == ["fixed_menu.items[0].items[1]"]
    assert "one level" in errors["fixed_menu.items[0].items[1]"][0]


def test_top_level_item_limit():
    assert MENU_ITEMS_MAX == 11
    assert errors_of({"items": [action() for _ in range(MENU_ITEMS_MAX)]}) == {}
    errors = errors_of({"items": [action() for _ in range(MENU_ITEMS_MAX + 1)]})
    assert "12" in errors["fixed_menu.items"][0]


def test_submenu_item_limit():
    assert errors_of({"items": [submenu(items=[action() for _ in range(MENU_ITEMS_MAX)])]}) == {}
    errors = errors_of({"items": [submenu(items=[action() for _ in range(MENU_ITEMS_MAX + 1)])]})
    assert "fixed_menu.items[0].items" in errors


def test_submenu_needs_items_and_a_label():
    assert "fixed_menu.items[0].items" in errors_of({"items": [submenu(items=[])]})
    assert "fixed_menu.items[0].label" in errors_of({"items": [{"items": [action()]}]})
    assert "fixed_menu.items[0].label" in errors_of({"items": [submenu(label="あ" * (LABEL_MAX + 1))]})
    assert errors_of({"items": [submenu(label="あ" * LABEL_MAX)]}) == {}


def test_submenu_items_must_be_a_list():
    assert "fixed_menu.items[0].items" in errors_of({"items": [submenu(items="nope")]})


def test_action_label_limit():
    assert errors_of({"items": [action(label="あ" * LABEL_MAX)]}) == {}
    assert "fixed_menu.items[0].label" in errors_of({"items": [action(label="あ" * (LABEL_MAX + 1))]})
    assert "fixed_menu.items[0].items[0].label" in errors_of({"items": [submenu(items=[action(label="")])]})


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "ftp://files.example.jp/", "https://", "https://a.jp/ x", "https://a.jp/\n"],
)
def test_url_rules(url):
    assert "fixed_menu.items[0].url" in errors_of({"items": [action(url=url)]})
    assert "fixed_menu.items[1].items[0].url" in errors_of({"items": [action(), submenu(items=[action(url=url)])]})


@pytest.mark.parametrize("url", ["http://shop.example.jp/", "https://shop.example.jp/menu?x=1"])
def test_http_and_https_accepted(url):
    assert errors_of({"items": [action(url=url)]}) == {}


def test_actions_are_validated_like_suggestions():
    assert "fixed_menu.items[0].type" in errors_of({"items": [{"type": "share", "label": "共有"}]})
    assert "fixed_menu.items[0].postback" in errors_of({"items": [{"type": "reply", "label": "はい"}]})
    assert "fixed_menu.items[0]" in errors_of({"items": ["メニュー"]})


@pytest.mark.parametrize("menu", [None, [], "menu", {"items": [], "extra": 1}, {"buttons": []}])
def test_menu_must_be_an_object_with_items_only(menu):
    assert "fixed_menu" in errors_of(menu)


def test_items_must_be_a_list():
    assert "fixed_menu.items" in errors_of({"items": {"label": "x"}})


def test_model_field_validator_flattens_errors_with_their_path():
    with pytest.raises(ValidationError) as caught:
        validate_fixed_menu_field({"items": [action(url="javascript:alert(1)")]})
    assert caught.value.messages[0].startswith("fixed_menu.items[0].url: ")


@pytest.mark.django_db
def test_official_account_full_clean_uses_the_validator():
    account = OfficialAccountFactory(fixed_menu={"items": [action(url="javascript:alert(1)")]})
    with pytest.raises(ValidationError) as caught:
        account.full_clean()
    assert "fixed_menu" in caught.value.message_dict
    account.fixed_menu = {"items": [action(), submenu()]}
    account.full_clean()


def test_nesting_message_in_japanese():
    menu = {"items": [submenu(items=[submenu()])]}
    assert_japanese(
        lambda: errors_of(menu)["fixed_menu.items[0].items[0]"][0],
        "Submenus can only be nested one level deep.",
        "サブメニュー",
    )
