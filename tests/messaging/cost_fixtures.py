"""A priced organization for the cost tests: an official account approved by every carrier, an RBM
gateway with +Message prices, a CM gateway and a backup with SMS prices, and helpers for audiences
and the capability cache."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import GatewayAccount, GatewayKind, OfficialAccount, Organization
from accounts.pricing import gateway_prices_set
from campaigns.models import ContactList, ContactListMembership
from core import throttle
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account
from tests.campaigns.factories import ContactFactory, ContactListFactory

# 83 full-width characters: UCS-2, over 70, so 2 segments of 67.
TWO_SEGMENT_SMS = "ご注文の商品を発送しました。" * 5 + "お届けまでお待ちください。" * 1


@dataclass
class Priced:
    org: Organization
    rbm: GatewayAccount
    cm: GatewayAccount
    backup: GatewayAccount
    account: OfficialAccount


def priced_organization() -> Priced:
    org = OrganizationFactory()
    rbm = GatewayAccountFactory(organization=org, kind=GatewayKind.RBM, name="RBM")
    cm = GatewayAccountFactory(organization=org, kind=GatewayKind.CM, name="CM")
    backup = GatewayAccountFactory(organization=org, kind=GatewayKind.CM, name="CM backup")
    account = approved_account(org, rcs_gateway=rbm, sms_gateway=cm, backup_sms_gateway=backup)
    gateway_prices_set(rbm, {("rcs", ""): Decimal("4.0"), ("rcs", "docomo"): Decimal("3.5")}, None)
    gateway_prices_set(cm, {("sms", ""): Decimal("3.3"), ("sms", "rakuten"): Decimal("8.8")}, None)
    gateway_prices_set(backup, {("sms", ""): Decimal("5")}, None)
    forget_capabilities(rbm)
    return Priced(org, rbm, cm, backup, account)


def forget_capabilities(gateway: GatewayAccount) -> None:
    """Drop whatever an earlier run cached for this gateway id (ids repeat across test databases)."""
    client = throttle.redis_client()
    if client is not None:
        keys = list(client.scan_iter(f"pm:cap:{gateway.pk}:*"))
        if keys:
            client.delete(*keys)
    else:
        for key in [key for key in throttle._local_cache if key[0] == gateway.pk]:
            del throttle._local_cache[key]


def audience(org, names: list[str]) -> tuple[ContactList, list]:
    contact_list = ContactListFactory(organization=org)
    contacts = []
    for name in names:
        contact = ContactFactory(organization=org, name=name)
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
        contacts.append(contact)
    return contact_list, contacts
