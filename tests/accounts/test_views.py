"""Views of the accounts pages: organization switcher, official accounts, logo, fixed menu, members."""

import io
from datetime import time

import pytest
from django.urls import reverse
from PIL import Image

from accounts.models import Membership, OfficialAccount, Role
from accounts.selectors import SESSION_KEY
from tests.accounts.factories import (
    GatewayAccountFactory,
    OfficialAccountFactory,
    OrganizationFactory,
    approved_account,
    member,
)
from tests.campaigns.factories import ContactFactory

pytestmark = pytest.mark.django_db

ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.MARKETER, Role.OPERATOR, Role.VIEWER]
MANAGERS = {Role.OWNER, Role.ADMIN}


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


def png_bytes(size=(128, 128), fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, (11, 87, 208)).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(name, data, content_type="image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


# --- shell and switcher -------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, org):
    account = OfficialAccountFactory(organization=org)
    for url in (reverse("accounts:official_list"), reverse("accounts:official_detail", args=[account.pk]),
                reverse("accounts:members")):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("login") in response["Location"]


def test_sign_in_page_renders_and_signs_in(client, org):
    user = member(org, Role.VIEWER)
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    response = client.post(reverse("login"), {"username": user.username, "password": "correct-horse-battery-staple"})
    assert response.status_code == 302


def test_axes_lockout_shows_the_translated_page(client, org, settings):
    user = member(org, Role.VIEWER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    response = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert response.status_code == 429
    assert b"Account temporarily locked" in response.content
    response = client.post(reverse("login"), {"username": user.username, "password": "wrong"}, HTTP_ACCEPT_LANGUAGE="ja")
    assert response.status_code == 429


def test_password_change_page(login, org):
    user = member(org, Role.VIEWER)
    client = login(user)
    response = client.get(reverse("password_change"))
    assert response.status_code == 200
    response = client.post(reverse("password_change"), {
        "old_password": "correct-horse-battery-staple", "new_password1": "a-new-Secret-42x", "new_password2": "mismatch"})
    assert response.status_code == 200
    assert b"errorlist" in response.content
    response = client.post(reverse("password_change"), {
        "old_password": "correct-horse-battery-staple", "new_password1": "a-new-Secret-42x", "new_password2": "a-new-Secret-42x"})
    assert response.status_code == 302
    assert client.get(reverse("password_change_done")).status_code == 200


def test_sign_out(login, org):
    client = login(member(org, Role.VIEWER))
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_shell_has_navigation_htmx_and_csrf_header(login, org):
    client = login(member(org, Role.VIEWER))
    content = client.get(reverse("accounts:official_list")).content.decode()
    assert "django_htmx/htmx-2" in content
    assert 'hx-headers=\'{"X-CSRFToken": "' in content
    assert reverse("contacts:list") in content
    assert reverse("set_language") in content
    assert reverse("password_change") in content
    assert reverse("accounts:members") not in content  # administration is hidden from viewers
    assert "cdn" not in content.lower()


def test_organization_switcher_only_allows_own_organizations(login, org):
    user = member(org, Role.VIEWER)
    second = OrganizationFactory(name="Second org")
    Membership.objects.create(organization=second, user=user, role=Role.ADMIN)
    foreign = OrganizationFactory()
    client = login(user)
    page = client.get(reverse("accounts:official_list")).content.decode()
    assert "Second org" in page and foreign.name not in page
    response = client.post(reverse("accounts:switch_organization"), {"organization": second.pk})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == second.pk
    assert client.get(reverse("accounts:members")).status_code == 200  # admin in the second org
    response = client.post(reverse("accounts:switch_organization"), {"organization": foreign.pk})
    assert response.status_code == 404
    assert client.session[SESSION_KEY] == second.pk
    assert client.get(reverse("accounts:switch_organization")).status_code == 405


def test_language_switch_to_english_and_japanese_default(login, org):
    client = login(member(org, Role.VIEWER))
    from django.utils import translation

    with translation.override("ja"):
        response = client.get(reverse("accounts:official_list"), HTTP_ACCEPT_LANGUAGE="ja")
    assert 'lang="ja"' in response.content.decode()
    response = client.post(reverse("set_language"), {"language": "en", "next": "/accounts/official/"})
    assert response.status_code == 302
    response = client.get(reverse("accounts:official_list"))
    assert 'lang="en"' in response.content.decode()


# --- official accounts --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_official_account_pages_by_role(login, org, role):
    account = approved_account(org)
    account.rcs_gateway = GatewayAccountFactory(organization=org, credentials={"client_token": "supersecret-token-1234"})
    account.save()
    client = login(member(org, role))
    response = client.get(reverse("accounts:official_list"))
    assert response.status_code == 200
    assert account.display_name in response.content.decode()
    response = client.get(reverse("accounts:official_detail", args=[account.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "supersecret-token-1234" not in body and "••••1234" in body
    assert "Approved" in body
    assert client.get(reverse("accounts:fixed_menu", args=[account.pk])).status_code == 200
    expected = 200 if role in MANAGERS else 403
    assert client.get(reverse("accounts:official_edit", args=[account.pk])).status_code == expected
    assert client.get(reverse("accounts:official_logo", args=[account.pk])).status_code == expected
    assert client.get(reverse("accounts:official_create")).status_code == expected
    assert client.get(reverse("accounts:fixed_menu_item", args=[account.pk])).status_code == expected
    assert client.get(reverse("accounts:members")).status_code == expected


@pytest.mark.parametrize("role", ALL_ROLES)
def test_pages_a_role_cannot_edit_say_only_admins_can(login, org, role):
    """Where the controls are hidden from a role, the page says who edits (「編集は管理者のみ」) instead."""
    account = approved_account(org)
    contact = ContactFactory(organization=org)
    client = login(member(org, role))
    client.cookies["django_language"] = "ja"
    pages = {
        "list": client.get(reverse("accounts:official_list")).content.decode(),
        "detail": client.get(reverse("accounts:official_detail", args=[account.pk])).content.decode(),
        "menu": client.get(reverse("accounts:fixed_menu", args=[account.pk])).content.decode(),
    }
    for name, page in pages.items():
        assert ("編集は管理者のみ" in page) is (role not in MANAGERS), name
    assert (reverse("accounts:official_edit", args=[account.pk]) in pages["detail"]) is (role in MANAGERS)
    assert (reverse("accounts:fixed_menu_item", args=[account.pk]) in pages["menu"]) is (role in MANAGERS)
    contact_page = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert ("開示用エクスポートと消去は管理者のみ" in contact_page) is (role not in MANAGERS)


def test_only_admins_can_edit_reads_in_english_too(login, org):
    account = approved_account(org)
    client = login(member(org, Role.MARKETER))
    client.cookies["django_language"] = "en"
    assert "Only admins can edit" in client.get(reverse("accounts:fixed_menu", args=[account.pk])).content.decode()


def test_sign_in_form_submits_itself_and_the_language_switch_is_another_form(client, org):
    """Enter in a field submits the field's form with its first submit button: the sign-in form's own."""
    page = client.get(reverse("login")).content.decode()
    sign_in_form = page[page.index('<form method="post" novalidate'):]
    sign_in_form = sign_in_form[: sign_in_form.index("</form>")]
    buttons = sign_in_form.split("<button")[1:]
    assert len(buttons) == 1 and 'type="submit"' in buttons[0] and 'name="language"' not in sign_in_form
    assert 'name="username"' in sign_in_form and 'name="password"' in sign_in_form


def test_official_account_list_empty_state(login, org):
    client = login(member(org, Role.ADMIN))
    body = client.get(reverse("accounts:official_list")).content.decode()
    assert "No official accounts yet" in body
    assert reverse("accounts:official_create") in body


def test_another_organizations_account_is_404(login, org):
    foreign = OfficialAccountFactory(organization=OrganizationFactory())
    client = login(member(org, Role.OWNER))
    for name in ("official_detail", "official_edit", "official_logo", "fixed_menu", "fixed_menu_item"):
        assert client.get(reverse(f"accounts:{name}", args=[foreign.pk])).status_code == 404
    assert client.post(reverse("accounts:fixed_menu_delete", args=[foreign.pk]), {"path": "0"}).status_code == 404


def test_edit_official_account_keeps_input_on_error_and_saves(login, org):
    account = OfficialAccountFactory(organization=org)
    rbm = GatewayAccountFactory(organization=org, kind="rbm")
    foreign_gateway = GatewayAccountFactory(kind="rbm")
    client = login(member(org, Role.ADMIN))
    url = reverse("accounts:official_edit", args=[account.pk])
    data = {"display_name": "新しい名前", "legal_name": "", "description": "説明", "brand_color": "#112233",
            "sms_sender_id": "SHOP", "rcs_gateway": rbm.pk, "sms_gateway": ""}
    response = client.post(url, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "新しい名前" in body and "説明" in body and "errorlist" in body
    response = client.post(url, {**data, "rcs_gateway": foreign_gateway.pk, "legal_name": "株式会社新"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    response = client.post(url, {**data, "legal_name": "株式会社新"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.display_name == "新しい名前" and account.rcs_gateway == rbm and account.brand_color == "#112233"


def test_create_official_account_starts_pending_reviews(login, org):
    client = login(member(org, Role.OWNER))
    response = client.post(reverse("accounts:official_create"), {
        "display_name": "テスト店", "legal_name": "株式会社テスト店", "description": "", "brand_color": "#0B57D0",
        "sms_sender_id": "TEST"})
    assert response.status_code == 302
    account = OfficialAccount.objects.get(organization=org, display_name="テスト店")
    assert account.reviews.count() == 3
    assert not account.can_send


def test_marketer_cannot_post_edits(login, org):
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.MARKETER))
    response = client.post(reverse("accounts:official_edit", args=[account.pk]), {"display_name": "x"})
    assert response.status_code == 403
    response = client.post(reverse("accounts:fixed_menu_item", args=[account.pk]),
                           {"type": "reply", "label": "x", "postback": "x"})
    assert response.status_code == 403


# --- logo ---------------------------------------------------------------------------------------


def test_logo_png_is_accepted_and_reencoded(login, org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    response = client.post(reverse("accounts:official_logo", args=[account.pk]),
                           {"logo": upload("logo.jpg", png_bytes(fmt="JPEG"), "image/jpeg")})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.logo.name.endswith(".png")
    with Image.open(account.logo.path) as image:
        assert image.format == "PNG"


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("logo.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
         "SVG"),
        ("logo.png", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        ("logo.png", b"MZ\x90\x00 this is not an image at all" * 10, "not an image"),
        ("logo.png", png_bytes(size=(4000, 100)), "the limit is"),
        ("logo.png", png_bytes(size=(16, 16)), "at least"),
    ],
)
def test_logo_refused_by_its_bytes(login, org, settings, tmp_path, name, data, message):
    settings.MEDIA_ROOT = tmp_path
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    response = client.post(reverse("accounts:official_logo", args=[account.pk]), {"logo": upload(name, data)})
    assert response.status_code == 200
    assert message in response.content.decode()
    account.refresh_from_db()
    assert not account.logo


def test_logo_over_2mb_refused(login, org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    big = png_bytes() + b"\0" * (2 * 1024 * 1024)
    response = client.post(reverse("accounts:official_logo", args=[account.pk]), {"logo": upload("a.png", big)})
    assert "larger than 2 MB" in response.content.decode()


# --- fixed menu editor --------------------------------------------------------------------------


def htmx(client, method, url, data=None, target="menu-editor"):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}
    return getattr(client, method)(url, data or {}, **headers)


def test_fixed_menu_editor_add_edit_reorder_delete_with_partials(login, org):
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    item_url = reverse("accounts:fixed_menu_item", args=[account.pk])

    response = htmx(client, "get", item_url)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="menu-editor"') and "<html" not in body
    assert 'id="item-form"' in body

    response = htmx(client, "post", item_url, {"type": "open_url", "label": "公式サイト", "url": "https://shop.example.jp/"})
    assert response.status_code == 200 and "<html" not in response.content.decode()
    htmx(client, "post", item_url, {"type": "reply", "label": "注文状況", "postback": "order_status"})
    response = htmx(client, "get", item_url + "?type=submenu&label=サポート", target="item-form")
    assert 'name="child-type"' in response.content.decode()
    response = htmx(client, "post", item_url, {"type": "submenu", "label": "サポート", "child-type": "open_url",
                                              "child-label": "FAQ", "child-url": "ftp://x"})
    assert "Only http:// and https:// URLs are allowed." in response.content.decode()
    assert 'id="id_child-url_errors"' in response.content.decode()
    htmx(client, "post", item_url, {"type": "submenu", "label": "サポート", "child-type": "open_url",
                                    "child-label": "FAQ", "child-url": "https://shop.example.jp/faq"})
    htmx(client, "post", item_url, {"type": "dial", "label": "電話する", "phone": "+81312345678", "parent": "2"})
    account.refresh_from_db()
    assert [item["label"] for item in account.fixed_menu["items"]] == ["公式サイト", "注文状況", "サポート"]
    assert [child["label"] for child in account.fixed_menu["items"][2]["items"]] == ["FAQ", "電話する"]

    response = htmx(client, "post", reverse("accounts:fixed_menu_move", args=[account.pk]), {"path": "1", "direction": "up"})
    assert response.status_code == 200
    account.refresh_from_db()
    assert [item["label"] for item in account.fixed_menu["items"]] == ["注文状況", "公式サイト", "サポート"]

    response = htmx(client, "get", item_url + "?path=1")
    assert "https://shop.example.jp/" in response.content.decode()
    htmx(client, "post", item_url, {"type": "open_url", "label": "サイト", "url": "https://shop.example.jp/new", "path": "1"})
    account.refresh_from_db()
    assert account.fixed_menu["items"][1] == {"type": "open_url", "label": "サイト", "url": "https://shop.example.jp/new"}

    htmx(client, "post", reverse("accounts:fixed_menu_delete", args=[account.pk]), {"path": "2.0"})
    htmx(client, "post", reverse("accounts:fixed_menu_delete", args=[account.pk]), {"path": "2.0"})
    account.refresh_from_db()
    assert [item["label"] for item in account.fixed_menu["items"]] == ["注文状況", "サイト"]  # empty submenu removed
    response = htmx(client, "post", reverse("accounts:fixed_menu_delete", args=[account.pk]), {"path": "0"})
    account.refresh_from_db()
    assert [item["label"] for item in account.fixed_menu["items"]] == ["サイト"]
    assert 'class="pm-item"' in response.content.decode()  # phone preview re-rendered


def test_fixed_menu_errors_beside_the_field_and_input_kept(login, org):
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    item_url = reverse("accounts:fixed_menu_item", args=[account.pk])
    response = htmx(client, "post", item_url, {"type": "open_url", "label": "危険", "url": "javascript:alert(1)"})
    body = response.content.decode()
    assert "Only http:// and https:// URLs are allowed." in body
    assert 'id="id_url_errors"' in body
    assert "javascript:alert(1)" in body  # the input comes back
    response = htmx(client, "post", item_url, {"type": "reply", "label": "x" * 30, "postback": "p"})
    assert 'id="id_label_errors"' in response.content.decode()
    account.refresh_from_db()
    assert account.fixed_menu == {"items": []}


def test_fixed_menu_item_limit(login, org):
    account = OfficialAccountFactory(organization=org, fixed_menu={
        "items": [{"type": "reply", "label": f"item{i}", "postback": f"p{i}"} for i in range(11)]})
    client = login(member(org, Role.ADMIN))
    response = htmx(client, "post", reverse("accounts:fixed_menu_item", args=[account.pk]),
                    {"type": "reply", "label": "twelfth", "postback": "p"})
    assert "the limit is 11" in response.content.decode()
    account.refresh_from_db()
    assert len(account.fixed_menu["items"]) == 11


def test_fixed_menu_type_change_rerenders_only_the_form(login, org):
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    response = htmx(client, "get", reverse("accounts:fixed_menu_item", args=[account.pk]) + "?type=location&label=店舗",
                    target="item-form")
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="item-form"')
    assert 'name="latitude"' in body and 'value="店舗"' in body


def test_fixed_menu_unknown_path_is_404(login, org):
    account = OfficialAccountFactory(organization=org)
    client = login(member(org, Role.ADMIN))
    assert htmx(client, "post", reverse("accounts:fixed_menu_move", args=[account.pk]),
                {"path": "5", "direction": "up"}).status_code == 404
    assert htmx(client, "post", reverse("accounts:fixed_menu_delete", args=[account.pk]), {"path": "x"}).status_code == 404


# --- members ------------------------------------------------------------------------------------


def test_members_add_change_role_remove(login, org):
    admin = member(org, Role.ADMIN)
    owner = member(org, Role.OWNER)
    from tests.accounts.factories import UserFactory

    newcomer = UserFactory(email="newcomer@example.jp")
    client = login(admin)
    body = client.get(reverse("accounts:members")).content.decode()
    assert owner.username in body
    response = client.post(reverse("accounts:members"), {"identifier": "NEWCOMER@example.jp", "role": Role.MARKETER})
    assert response.status_code == 302
    membership = Membership.objects.get(organization=org, user=newcomer)
    assert membership.role == Role.MARKETER
    response = client.post(reverse("accounts:members"), {"identifier": newcomer.username, "role": Role.VIEWER})
    assert "already a member" in response.content.decode()
    response = client.post(reverse("accounts:members"), {"identifier": "nobody", "role": Role.VIEWER})
    assert "No user with this username" in response.content.decode()
    assert 'value="nobody"' in response.content.decode()

    client.post(reverse("accounts:member_role", args=[membership.pk]), {"role": Role.OPERATOR})
    membership.refresh_from_db()
    assert membership.role == Role.OPERATOR
    # an admin cannot touch owners
    owner_membership = Membership.objects.get(organization=org, user=owner)
    client.post(reverse("accounts:member_role", args=[owner_membership.pk]), {"role": Role.VIEWER})
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER
    client.post(reverse("accounts:member_remove", args=[membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_last_owner_cannot_be_removed_or_demoted(login, org):
    owner = member(org, Role.OWNER)
    client = login(owner)
    membership = Membership.objects.get(organization=org, user=owner)
    response = client.post(reverse("accounts:member_remove", args=[membership.pk]), follow=True)
    assert "last owner" in response.content.decode()
    response = client.post(reverse("accounts:member_role", args=[membership.pk]), {"role": Role.ADMIN}, follow=True)
    assert "last owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_members_of_another_org_are_404(login, org):
    other = Membership.objects.create(organization=OrganizationFactory(), user=member(OrganizationFactory()),
                                      role=Role.VIEWER)
    client = login(member(org, Role.OWNER))
    assert client.post(reverse("accounts:member_remove", args=[other.pk])).status_code == 404
    assert client.post(reverse("accounts:member_role", args=[other.pk]), {"role": "admin"}).status_code == 404


def test_duplicate_display_name_is_an_error_beside_the_field(login, org):
    OfficialAccountFactory(organization=org, display_name="同じ名前")
    client = login(member(org, Role.ADMIN))
    response = client.post(reverse("accounts:official_create"), {
        "display_name": "同じ名前", "legal_name": "株式会社同じ", "description": "", "brand_color": "#0B57D0",
        "sms_sender_id": "SAME"})
    assert response.status_code == 200
    assert 'id="id_display_name_errors"' in response.content.decode()


def test_backup_sms_gateway_is_another_sms_gateway_of_the_organization(login, org):
    account = OfficialAccountFactory(organization=org)
    cm = GatewayAccountFactory(organization=org, kind="cm")
    backup = GatewayAccountFactory(organization=org, kind="cm")
    rbm = GatewayAccountFactory(organization=org, kind="rbm")
    foreign = GatewayAccountFactory(kind="cm")
    client = login(member(org, Role.ADMIN))
    client.cookies["django_language"] = "en"
    url = reverse("accounts:official_edit", args=[account.pk])
    data = {"display_name": account.display_name, "legal_name": "株式会社テスト", "description": "",
            "brand_color": "#112233", "sms_sender_id": "SHOP", "rcs_gateway": "", "sms_gateway": cm.pk}
    for wrong, message in ((cm.pk, "another gateway than the SMS gateway"), (rbm.pk, "Select a valid choice"),
                           (foreign.pk, "Select a valid choice")):
        response = client.post(url, {**data, "backup_sms_gateway": wrong})
        assert response.status_code == 200 and message in response.content.decode(), wrong
    response = client.post(url, {**data, "sms_gateway": "", "backup_sms_gateway": backup.pk})
    assert "Choose the SMS gateway first" in response.content.decode()
    account.refresh_from_db()
    assert account.backup_sms_gateway is None  # nothing half-written
    assert client.post(url, {**data, "backup_sms_gateway": backup.pk}).status_code == 302
    account.refresh_from_db()
    assert account.sms_gateway == cm and account.backup_sms_gateway == backup


def test_account_page_shows_sms_going_through_the_backup_since_when(login, org, settings):
    from core import gateway_health

    settings.GATEWAY_FAILOVER_ERRORS = 1
    cm = GatewayAccountFactory(organization=org, kind="cm")
    backup = GatewayAccountFactory(organization=org, kind="cm", name="予備CM")
    account = OfficialAccountFactory(organization=org, sms_gateway=cm, backup_sms_gateway=backup)
    gateway_health.reset(cm.pk)
    client = login(member(org, Role.VIEWER))
    url = reverse("accounts:official_detail", args=[account.pk])
    assert 'id="sms-failover"' not in client.get(url).content.decode()
    gateway_health.record_failure(cm.pk)
    try:
        body = client.get(url).content.decode()
        assert 'id="sms-failover"' in body and "予備CM" in body
    finally:
        gateway_health.reset(cm.pk)


def test_away_message_business_hours_page_is_for_admins_checks_input_and_is_audited(client, org):
    from django.conf import settings

    from audit.models import AuditEvent

    url = reverse("accounts:business_hours")
    client.force_login(member(org, Role.MARKETER))
    assert client.get(url).status_code == 403
    client.force_login(member(org, Role.ADMIN))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    assert "営業時間" in client.get(url).content.decode()
    refused = client.post(url, {"start": "18:00", "end": "10:00", "days": ["1"]})
    assert refused.status_code == 400 and "終了時刻は開始時刻より後" in refused.content.decode()
    assert client.post(url, {"start": "10:00", "end": "18:00"}).status_code == 400  # no business day
    assert client.post(url, {"start": "10:00", "end": "18:00", "days": ["1", "2", "3", "4", "5", "6"]}).status_code == 302
    org.refresh_from_db()
    assert (org.business_hours_start, org.business_hours_end, org.business_days) == (time(10), time(18), "123456")
    assert AuditEvent.objects.filter(action="settings.business_hours", organization=org).count() == 1
    assert client.post(url, {"start": "", "end": ""}).status_code == 302  # switched off
    org.refresh_from_db()
    assert org.business_hours_start is None


# --- frequency cap ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_frequency_cap_page_is_for_owners_and_admins(org, login, role):
    response = login(member(org, role)).get(reverse("accounts:frequency_cap"))
    assert response.status_code == (200 if role in MANAGERS else 403)


def test_frequency_cap_is_off_by_default_then_saved_audited_and_switched_off(org, login):
    from audit.models import AuditEvent

    client = login(member(org, Role.ADMIN))
    client.cookies["django_language"] = "en"
    page = client.get(reverse("accounts:frequency_cap")).content.decode()
    assert "Now: off." in page
    response = client.post(reverse("accounts:frequency_cap"), {"count": "3", "days": "7"}, follow=True)
    org.refresh_from_db()
    assert (org.frequency_cap_count, org.frequency_cap_days) == (3, 7)
    assert "Now: at most 3 promotions per person in 7 days." in response.content.decode()
    event = AuditEvent.objects.filter(organization=org, action="settings.frequency_cap").get()
    assert event.details == {"before": {"count": None, "days": 7}, "after": {"count": 3, "days": 7}}
    client.post(reverse("accounts:frequency_cap"), {"count": "", "days": "7"})
    org.refresh_from_db()
    assert org.frequency_cap_count is None


def test_frequency_cap_refuses_out_of_range_values_at_the_field_in_japanese(org, login):
    client = login(member(org, Role.OWNER))
    client.cookies["django_language"] = "ja"
    response = client.post(reverse("accounts:frequency_cap"), {"count": "0", "days": "365"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["count"] and form.errors["days"]
    body = response.content.decode()
    assert "配信頻度の上限" in body and "期間は 1〜90 日で指定してください。" in body  # in Japanese
    org.refresh_from_db()
    assert org.frequency_cap_count is None


# --- the short-link base of SMS links (core.short_links) -----------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_managers_set_the_short_link_base(client, org, login, role):
    login(member(org, role))
    response = client.post(reverse("accounts:short_link_base"), {"short_link_base": "https://s.shop.jp/s"})
    org.refresh_from_db()
    if role in MANAGERS:
        assert response.status_code == 302 and org.short_link_base == "https://s.shop.jp/s/"
    else:
        assert response.status_code == 403 and org.short_link_base == ""


def test_the_short_link_base_page_shows_the_example_and_refuses_a_bad_base_at_the_field(client, org, login, settings):
    from audit.models import AuditEvent

    settings.PUBLIC_BASE_URL = "https://pm.example.jp"
    login(member(org, Role.ADMIN))
    page = client.get(reverse("accounts:quiet_hours"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "https://pm.example.jp/s/k7x2p9q40m3z8c5w1r" in page
    response = client.post(reverse("accounts:short_link_base"), {"short_link_base": "ftp://s.shop.jp/"})
    assert response.status_code == 400
    assert "such as https://s.example.jp/s/" in response.content.decode()
    client.cookies["django_language"] = "ja"
    response = client.post(reverse("accounts:short_link_base"), {"short_link_base": "https://s.shop.jp/?x"})
    assert "英数字・ドット・ハイフン・スラッシュ" in response.content.decode()
    client.post(reverse("accounts:short_link_base"), {"short_link_base": "https://s.shop.jp/s/"})
    assert AuditEvent.objects.filter(action="settings.short_link_base", organization=org).exists()
    assert "https://s.shop.jp/s/k7x2p9q40m3z8c5w1r" in client.get(reverse("accounts:quiet_hours")).content.decode()
    assert "SMSの短縮URL" in client.get(reverse("accounts:quiet_hours")).content.decode()
