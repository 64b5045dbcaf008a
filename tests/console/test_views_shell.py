"""The console shell: navigation by role, switchers, static assets only, Japanese by default."""

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import Membership, Role
from tests.accounts.factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(name="株式会社シェル")


@pytest.mark.parametrize(
    "role,sees_admin,sees_import",
    [
        (Role.OWNER, True, True),
        (Role.ADMIN, True, True),
        (Role.MARKETER, False, True),
        (Role.OPERATOR, False, False),
        (Role.VIEWER, False, False),
    ],
)
def test_navigation_follows_the_role(client, org, role, sees_admin, sees_import):
    client.force_login(member(org, role))
    page = client.get(reverse("contacts:list")).content.decode()
    assert (reverse("accounts:members") in page) is sees_admin
    assert (reverse("contacts:import") in page) is sees_import
    for name in ("dashboard", "contacts:list", "accounts:official_list"):
        assert reverse(name) in page
    assert "Campaigns" in page
    # the inbox is operators' work: owners, admins and operators see it in the navigation
    assert ("Inbox" in page) is (role in (Role.OWNER, Role.ADMIN, Role.OPERATOR))


def test_every_script_and_style_is_served_locally(client, org):
    client.force_login(member(org, Role.VIEWER))
    page = client.get(reverse("dashboard")).content.decode()
    assert "/static/console/console.css" in page
    assert "/static/django_htmx/htmx-2.min.js" in page
    assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]


def test_csrf_token_is_sent_with_every_htmx_request(client, org):
    client.force_login(member(org, Role.VIEWER))
    page = client.get(reverse("dashboard")).content.decode()
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]
    assert len(token) >= 32


def test_switcher_lists_only_my_organizations(client, org):
    user = member(org, Role.VIEWER)
    Membership.objects.create(organization=OrganizationFactory(name="第二の組織"), user=user, role=Role.VIEWER)
    OrganizationFactory(name="関係のない組織")
    client.force_login(user)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'name="organization"' in page
    assert "第二の組織" in page and "株式会社シェル" in page and "関係のない組織" not in page


def test_single_organization_shows_its_name_without_a_switcher(client, org):
    client.force_login(member(org, Role.VIEWER))
    page = client.get(reverse("dashboard")).content.decode()
    assert 'name="organization"' not in page and "株式会社シェル" in page


def test_japanese_is_the_default_language(client, org, settings):
    settings.LANGUAGE_CODE = "ja"  # the product's default (the suite itself reads English)
    client.force_login(member(org, Role.VIEWER))
    with translation.override(None):
        page = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="").content.decode()
    assert '<html lang="ja">' in page


def test_language_switcher_offers_japanese_and_english(client, org):
    client.force_login(member(org, Role.VIEWER))
    page = client.get(reverse("dashboard")).content.decode()
    assert 'value="ja"' in page and 'value="en"' in page and "日本語" in page and "English" in page


def test_member_without_permission_gets_403_not_the_page(client, org):
    client.force_login(member(org, Role.VIEWER))
    assert client.get(reverse("accounts:members")).status_code == 403
    assert client.get(reverse("contacts:import")).status_code == 403


def test_the_user_menu_says_that_it_opens(client, org):
    """A caret and aria-expanded on the menu's summary (static/console/user_menu.js keeps it in step)."""
    client.force_login(member(org, Role.MARKETER, username="menu-user"))
    page = client.get(reverse("dashboard")).content.decode()
    summary = page[page.index('<details class="user-menu"'):]
    summary = summary[: summary.index("</summary>")]
    assert 'aria-expanded="false"' in summary and 'aria-controls="user-menu-items"' in summary
    assert 'class="caret"' in summary and "menu-user" in summary
    assert 'id="user-menu-items"' in page and "/static/console/user_menu.js" in page
