"""What the benchmark commands share: free ports, the sandbox's admin API, waiting for a server,
a throwaway organization wired to the sandbox with a large approved campaign, and its removal."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import time as dtime

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sandbox_call(url: str, method: str, path: str, payload=None, timeout=600):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{url}/_sandbox/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``url`` answers anything at all (an HTTP error is an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"{url}: the process exited")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"{url} did not answer")


def bench_campaign(label: str, recipients: int, rate: int, sandbox_url: str, web_url: str):
    """An organization whose RBM and CM gateways point at the sandbox (registered there with
    webhooks to ``web_url``), an approved official account, ``recipients`` contacts in one list
    (inserted by the database itself), and an approved transactional campaign to them.

    Returns (organization, account, campaign, user)."""
    from accounts.models import (
        Carrier,
        CarrierReview,
        GatewayAccount,
        GatewayKind,
        Membership,
        OfficialAccount,
        Organization,
        Role,
    )
    from campaigns.models import Campaign, CampaignStatus, ContactList

    stamp = int(time.time())
    organization = Organization.objects.create(
        name=f"{label} {stamp}", slug=f"{label}-{stamp}", quiet_hours_start=dtime(0, 0), quiet_hours_end=dtime(0, 0)
    )
    user, _created = get_user_model().objects.get_or_create(username=label)
    Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": Role.OWNER})
    gateways = {}
    for kind in (GatewayKind.RBM, GatewayKind.CM):
        credentials = (
            {"agent_id": f"{label}-{stamp}", "bearer_token": f"b-{stamp}", "client_token": f"c-{stamp}"}
            if kind == GatewayKind.RBM
            else {"product_token": f"p-{stamp}", "callback_secret": f"s-{stamp}"}
        )
        gateway = GatewayAccount.objects.create(
            organization=organization, name=kind, kind=kind, base_url=sandbox_url, rate_per_second=rate,
            credentials=credentials,
        )
        hook = (
            f"{web_url}/messaging/webhooks/rbm/{gateway.pk}/"
            if kind == GatewayKind.RBM
            else f"{web_url}/messaging/webhooks/cm/{gateway.pk}/s-{stamp}/"
        )
        sandbox_call(sandbox_url, "POST", "gateways", {"kind": kind, "gateway_id": gateway.pk, **credentials,
                                                       "webhook_url": hook})
        gateways[kind] = gateway
    account = OfficialAccount.objects.create(
        organization=organization, display_name="bench", legal_name="株式会社ベンチ", sms_sender_id="BENCH",
        rcs_gateway=gateways[GatewayKind.RBM], sms_gateway=gateways[GatewayKind.CM],
    )
    CarrierReview.objects.create(account=account, carrier=Carrier.DOCOMO, status="approved", decided_at=timezone.now())
    audience = ContactList.objects.create(organization=organization, name="bench")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_contact (organization_id, phone, name, attributes, opted_out_at, "
            "opt_out_method, created_at, updated_at) SELECT %s, '+8190' || lpad((40000000 + g)::text, 8, '0'), "
            "'ベンチ', '{}'::jsonb, NULL, '', now(), now() FROM generate_series(0, %s - 1) AS g",
            [organization.pk, recipients],
        )
        cursor.execute(
            "INSERT INTO campaigns_contactlistmembership (contact_list_id, contact_id, added_at) "
            "SELECT %s, id, now() FROM campaigns_contact WHERE organization_id = %s",
            [audience.pk, organization.pk],
        )
    vacuum_analyze(["campaigns_contact", "campaigns_contactlistmembership"], analyze_only=True)
    campaign = Campaign.objects.create(
        organization=organization, official_account=account, name="bench", classification="transaction",
        content={"text": "{{name}}様 ご注文の商品を発送しました。"}, sms_text="{{name}}様 ご注文の商品を発送しました。",
        ttl_seconds=3600, created_by=user, status=CampaignStatus.APPROVED, approved_by=user,
        approved_at=timezone.now(),
    )
    campaign.audience_lists.add(audience)
    return organization, account, campaign, user


def bench_cleanup(organization) -> None:
    """Remove a benchmark's organization and everything it made, big tables first with plain SQL."""
    from devtools.cleanup import delete_organization

    gateway_ids = [str(pk) for pk in organization.gateways.values_list("pk", flat=True)]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM messaging_providerevent WHERE payload->>'gateway_id' = ANY(%s)", [gateway_ids])
        for sql in (
            "DELETE FROM messaging_counterdelta WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)",
            "DELETE FROM messaging_campaigncounter WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE organization_id = %s)",
            "DELETE FROM messaging_delivery WHERE organization_id = %s",
            "DELETE FROM campaigns_contactlistmembership WHERE contact_list_id IN "
            "(SELECT id FROM campaigns_contactlist WHERE organization_id = %s)",
        ):
            cursor.execute(sql, [organization.pk])
    delete_organization(organization)
    vacuum_analyze(BENCH_TABLES)


# The tables a benchmark fills and empties again.
BENCH_TABLES = (
    "messaging_providerevent", "messaging_delivery", "messaging_counterdelta", "campaigns_contact",
    "campaigns_contactlistmembership", "accounts_idempotencyrecord",
)


def vacuum_analyze(tables, analyze_only: bool = False) -> None:
    """What autovacuum would do between runs, done now: a server may run with it off (this machine's
    CI configuration does), and then every run would leave millions of dead rows and stale statistics
    to the next one, each run slower than the last."""
    if connection.vendor != "postgresql":
        return
    command = "ANALYZE" if analyze_only else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{command} {table}")
