"""The price function (accounts.pricing) and the price table page of a gateway account."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import GatewayKind, GatewayPrice, Role
from accounts.pricing import PriceTable, format_yen, gateway_prices_set, message_cost, price_tables
from audit.models import AuditEvent
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member

TABLE = PriceTable(
    {
        ("rcs", ""): Decimal("4.5"),
        ("rcs", "docomo"): Decimal("4.2"),
        ("sms", ""): Decimal("3.3"),
        ("sms", "rakuten"): Decimal("8.8"),
    }
)


def test_a_carrier_without_its_own_price_uses_the_any_carrier_price():
    assert TABLE.unit_price("rcs", "docomo") == Decimal("4.2")
    assert TABLE.unit_price("rcs", "au") == Decimal("4.5")
    assert TABLE.unit_price("rcs", "") == Decimal("4.5")
    assert TABLE.unit_price("sms", "rakuten") == Decimal("8.8")
    assert TABLE.unit_price("sms", "softbank") == Decimal("3.3")


def test_plus_message_is_priced_per_message_and_sms_per_segment():
    assert message_cost(TABLE, "rcs", "docomo", 10) == Decimal("42.0")
    assert message_cost(TABLE, "rcs", "au", 3, segments=9) == Decimal("13.5")  # segments mean nothing for RCS
    assert message_cost(TABLE, "sms", "", 3, segments=6) == Decimal("19.8")
    assert message_cost(TABLE, "sms", "rakuten", 1, segments=3) == Decimal("26.4")


def test_an_sms_counts_at_least_one_segment():
    # A message whose segments were not recorded (0) is one segment.
    assert message_cost(TABLE, "sms", "au", 4, segments=0) == Decimal("13.2")
    assert message_cost(TABLE, "sms", "au", 4, segments=2) == Decimal("13.2")


def test_yen_add_up_exactly_in_decimal():
    cost = message_cost(TABLE, "sms", "", 1, segments=3)
    assert cost == Decimal("9.9")  # 3.3 * 3 is 9.899999999999999 in float
    assert isinstance(cost, Decimal)
    total = sum((message_cost(TABLE, "sms", "", 1, 1) for _ in range(10)), Decimal("0"))
    assert total == Decimal("33.0")


def test_no_price_is_none_not_zero_and_nothing_costs_nothing():
    assert message_cost(PriceTable({("sms", ""): Decimal("3")}), "rcs", "docomo", 5) is None
    assert message_cost(None, "sms", "", 5, 5) is None
    assert message_cost(None, "sms", "", 0, 0) == Decimal("0")


def test_yen_are_shown_with_separators_and_no_trailing_zeros():
    assert format_yen(Decimal("3.3000")) == "3.3"
    assert format_yen(Decimal("12345.25")) == "12,345.25"
    assert format_yen(Decimal("0")) == "0"
    assert format_yen(Decimal("1000000")) == "1,000,000"
    assert format_yen(Decimal("0.00004")) == "0"


@pytest.mark.django_db
def test_setting_prices_replaces_the_table_and_is_audited():
    org = OrganizationFactory()
    owner = member(org, Role.OWNER)
    gateway = GatewayAccountFactory(organization=org, kind=GatewayKind.CM)
    gateway_prices_set(gateway, {("sms", ""): Decimal("3.3"), ("sms", "au"): Decimal("3.5")}, owner)
    gateway_prices_set(gateway, {("sms", "au"): None, ("rcs", ""): Decimal("4")}, owner)
    assert price_tables([gateway.pk])[gateway.pk].prices == {("sms", ""): Decimal("3.3"), ("rcs", ""): Decimal("4")}
    event = AuditEvent.objects.filter(action="gateway.prices_changed").latest("id")
    assert event.details == {"sms:au": None, "rcs:*": "4"}
    assert event.organization_id == org.pk


# -- the price table page ------------------------------------------------------------------------


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def gateway(org):
    return GatewayAccountFactory(organization=org, kind=GatewayKind.CM, name="CM本番")


def login(client, user, language="en"):
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.mark.django_db
def test_an_admin_sets_prices_on_the_gateway_page(client, org, gateway):
    account = approved_account(org, sms_gateway=gateway)
    login(client, member(org, Role.ADMIN))
    url = reverse("accounts:gateway_prices", args=[gateway.pk])
    page = client.get(url).content.decode()
    assert 'name="sms_rakuten"' in page and 'name="rcs_docomo"' in page
    assert 'name="rcs_rakuten"' not in page  # Rakuten Mobile has no +Message
    assert account.display_name in page
    back = reverse("accounts:official_detail", args=[account.pk])
    response = client.post(url, {"sms_any": "3.3", "sms_docomo": "3.25", "rcs_any": "", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    prices = {(p.unit, p.carrier): p.price for p in GatewayPrice.objects.filter(gateway=gateway)}
    assert prices == {("sms", ""): Decimal("3.3"), ("sms", "docomo"): Decimal("3.25")}
    detail = client.get(back).content.decode()
    assert "¥3.3" in detail and "¥3.25" in detail


@pytest.mark.django_db
def test_a_bad_price_is_refused_at_its_field(client, org, gateway):
    login(client, member(org, Role.OWNER))
    url = reverse("accounts:gateway_prices", args=[gateway.pk])
    response = client.post(url, {"sms_any": "-1", "rcs_au": "1.23456", "sms_au": "abc"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "A price cannot be negative." in body
    assert "Use at most 4 decimal places." in body
    assert "Enter an amount in yen, e.g. 3.3." in body
    assert not GatewayPrice.objects.exists()


@pytest.mark.django_db
def test_the_price_error_is_in_japanese(client, org, gateway):
    login(client, member(org, Role.OWNER), language="ja")
    with translation.override("ja"):
        response = client.post(reverse("accounts:gateway_prices", args=[gateway.pk]), {"sms_any": "-1"})
    body = response.content.decode()
    assert "マイナス" in body or "負" in body
    assert "料金" in body


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MARKETER, Role.OPERATOR, Role.VIEWER])
def test_only_owners_and_admins_edit_prices(client, org, gateway, role):
    login(client, member(org, role))
    url = reverse("accounts:gateway_prices", args=[gateway.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"sms_any": "1"}).status_code == 403
    assert not GatewayPrice.objects.exists()


@pytest.mark.django_db
def test_another_organizations_gateway_answers_404(client, org):
    other_gateway = GatewayAccountFactory(organization=OrganizationFactory())
    login(client, member(org, Role.OWNER))
    url = reverse("accounts:gateway_prices", args=[other_gateway.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"sms_any": "1"}).status_code == 404


@pytest.mark.django_db
def test_an_outside_next_url_is_not_followed(client, org, gateway):
    login(client, member(org, Role.OWNER))
    url = reverse("accounts:gateway_prices", args=[gateway.pk])
    response = client.post(url, {"sms_any": "3", "next": "https://evil.example.com/"})
    assert response.status_code == 302 and response["Location"] == url


@pytest.mark.django_db
def test_the_form_shows_prices_without_the_columns_trailing_zeros(client, org, gateway):
    gateway_prices_set(gateway, {("sms", ""): Decimal("3.3"), ("sms", "au"): Decimal("100")}, None)
    login(client, member(org, Role.OWNER))
    page = client.get(reverse("accounts:gateway_prices", args=[gateway.pk])).content.decode()
    assert 'name="sms_any" value="3.3"' in page and 'name="sms_au" value="100"' in page
