"""An organization ready to send through the sandbox carrier: one setup for the demo and the benchmarks.

``seed_demo`` and the benchmarks (``devtools.harness.bench_campaign``) each need the same thing: an
organization whose RBM and CM gateway accounts point at the sandbox, and an official account that
uses them and that every carrier has approved. ``sandbox_organization`` makes it, or brings an
existing one up to date (the demo is seeded again on every ``make run``). The test factories use
``carrier_reviews_approve`` for their approved official accounts.

Dev only: in production the carriers decide the reviews and the gateway accounts hold real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.db import transaction
from django.utils import timezone

from accounts.models import (
    Carrier,
    CarrierReview,
    GatewayAccount,
    GatewayKind,
    OfficialAccount,
    Organization,
    ReviewStatus,
)

RBM_GATEWAY_NAME = "Sandbox RCS"
CM_GATEWAY_NAME = "Sandbox SMS"


@dataclass(frozen=True)
class SandboxOrganization:
    organization: Organization
    account: OfficialAccount
    rbm: GatewayAccount
    cm: GatewayAccount


def sandbox_credentials(token_prefix: str) -> tuple[dict, dict]:
    """The RBM and the CM credentials of a sandbox organization. The sandbox accepts any token it
    was told about, so each organization gets its own prefix: their callbacks never mix."""
    rbm = {
        "agent_id": f"{token_prefix}-agent",
        "bearer_token": f"{token_prefix}-bearer-token",
        "client_token": f"{token_prefix}-client-token",
    }
    cm = {"product_token": f"{token_prefix}-product-token", "callback_secret": f"{token_prefix}-callback-secret"}
    return rbm, cm


def carrier_reviews_approve(account: OfficialAccount, decided_at: datetime | None = None) -> None:
    """Record that every carrier approved ``account`` (at ``decided_at``, default now)."""
    decided_at = decided_at or timezone.now()
    for carrier in Carrier.values:
        CarrierReview.objects.update_or_create(
            account=account, carrier=carrier, defaults={"status": ReviewStatus.APPROVED, "decided_at": decided_at}
        )


def sandbox_organization(
    *,
    slug: str,
    name: str,
    sandbox_url: str,
    rate: int,
    token_prefix: str,
    account_name: str,
    account_fields: dict | None = None,
    quiet_hours: tuple[time, time] | None = None,
    approved_at: datetime | None = None,
) -> SandboxOrganization:
    """The organization ``slug``, created or brought up to date: RBM and CM gateway accounts at
    ``sandbox_url`` sending ``rate`` messages per second each, and the official account
    ``account_name`` (with ``account_fields``) on them, approved by every carrier.

    ``quiet_hours`` (start, end) applies to a new organization only; equal times mean none.
    The organization's members are the caller's business."""
    organization_defaults = {"name": name}
    if quiet_hours is not None:
        organization_defaults.update(quiet_hours_start=quiet_hours[0], quiet_hours_end=quiet_hours[1])
    rbm_credentials, cm_credentials = sandbox_credentials(token_prefix)
    with transaction.atomic():
        organization, _created = Organization.objects.get_or_create(slug=slug, defaults=organization_defaults)
        rbm, _created = GatewayAccount.objects.update_or_create(
            organization=organization,
            name=RBM_GATEWAY_NAME,
            defaults={"kind": GatewayKind.RBM, "base_url": sandbox_url, "credentials": rbm_credentials,
                      "rate_per_second": rate},
        )
        cm, _created = GatewayAccount.objects.update_or_create(
            organization=organization,
            name=CM_GATEWAY_NAME,
            defaults={"kind": GatewayKind.CM, "base_url": sandbox_url, "credentials": cm_credentials,
                      "rate_per_second": rate},
        )
        account, _created = OfficialAccount.objects.update_or_create(
            organization=organization,
            display_name=account_name,
            defaults={**(account_fields or {}), "rcs_gateway": rbm, "sms_gateway": cm},
        )
        carrier_reviews_approve(account, approved_at)
    return SandboxOrganization(organization=organization, account=account, rbm=rbm, cm=cm)


def sandbox_webhook_url(gateway: GatewayAccount, console_url: str) -> str:
    """Where the sandbox posts ``gateway``'s receipts and replies: the console's webhook for it
    (messaging/urls.py). Spelled out rather than reversed: a CM account without a callback secret
    still gets a URL (one the console refuses), as a misconfigured real account would."""
    console_url = console_url.rstrip("/")
    if gateway.kind == GatewayKind.CM:
        secret = str((gateway.credentials or {}).get("callback_secret", ""))
        return f"{console_url}/messaging/webhooks/cm/{gateway.pk}/{secret}/"
    return f"{console_url}/messaging/webhooks/rbm/{gateway.pk}/"
