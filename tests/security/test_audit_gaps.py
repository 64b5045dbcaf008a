"""The audit log records the sensitive actions it used to miss (issue 14, item 7): member role
changes, webhook endpoint changes, API-key approvals and launches, media uploads, exports of every
kind, and every change made in the Django admin (gateway accounts are edited there). Each is
recorded by the one service every path calls, so the console and the API are covered alike."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import Membership, Role, WebhookEndpoint
from audit.models import AuditEvent
from campaigns.models import Campaign, ImportJob
from messaging.outbound_webhooks import endpoint_disable
from tests.accounts.factories import OfficialAccountFactory, OrganizationFactory, UserFactory, member
from tests.api.conftest import Tenant
from tests.campaigns.factories import CampaignFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db

PUBLIC_HOOK = "https://93.184.215.14/hook"  # a public address literal: the egress guard accepts it, no DNS


@pytest.fixture
def org():
    return OrganizationFactory(name="Alpha商事", slug="alpha")


@pytest.fixture
def owner(org):
    return member(org, Role.OWNER, username="alpha-owner")


def png(size=(128, 128), fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, (11, 87, 208)).save(buffer, format=fmt)
    return buffer.getvalue()


def only(action, **filters):
    events = list(AuditEvent.objects.filter(action=action, **filters))
    assert len(events) == 1, (action, [(e.action, e.details) for e in AuditEvent.objects.all()])
    return events[0]


def test_audit_gaps_member_added_role_changed_and_removed(client, org, owner):
    newcomer = UserFactory(username="newcomer")
    client.force_login(owner)
    client.post(reverse("accounts:members"), {"identifier": "newcomer", "role": Role.MARKETER})
    membership = Membership.objects.get(user=newcomer)
    client.post(reverse("accounts:member_role", args=[membership.pk]), {"role": Role.ADMIN})
    client.post(reverse("accounts:member_remove", args=[membership.pk]))
    assert not Membership.objects.filter(user=newcomer).exists()
    added = only("member.added")
    changed = only("member.role_changed")
    removed = only("member.removed")
    for event in (added, changed, removed):
        assert event.organization_id == org.pk and event.actor_id == owner.pk
        assert event.target_label == "newcomer" and event.ip_address == "127.0.0.1"
    assert added.details == {"role": Role.MARKETER}
    assert changed.details == {"before": Role.MARKETER, "after": Role.ADMIN}
    assert removed.details == {"role": Role.ADMIN}


def test_audit_gaps_refused_role_change_records_nothing(client, org, owner):
    admin_user = member(org, Role.ADMIN, username="alpha-admin")
    client.force_login(admin_user)
    owner_membership = owner.memberships.get()
    client.post(reverse("accounts:member_role", args=[owner_membership.pk]), {"role": Role.VIEWER})
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


def test_audit_gaps_webhook_endpoint_lifecycle(client, org, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:webhooks"), {"url": PUBLIC_HOOK, "events": ["message.sent"], "description": ""})
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(organization=org)
    client.post(reverse("accounts:webhook_rotate", args=[endpoint.pk]))
    client.post(reverse("accounts:webhook_toggle", args=[endpoint.pk]))  # pause
    client.post(reverse("accounts:webhook_toggle", args=[endpoint.pk]))  # enable
    client.post(reverse("accounts:webhook_delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    for action in ("webhook.created", "webhook.secret_rotated", "webhook.paused", "webhook.enabled", "webhook.deleted"):
        event = only(action)
        assert event.actor_id == owner.pk and event.organization_id == org.pk, action
        assert event.target_id == str(endpoint.pk) and event.target_label == PUBLIC_HOOK, action
    assert only("webhook.created").details == {"url": PUBLIC_HOOK, "events": ["message.sent"]}
    assert endpoint.secret not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_audit_gaps_webhook_disabled_by_the_system(org):
    endpoint = WebhookEndpoint.objects.create(organization=org, url=PUBLIC_HOOK, events=["message.sent"], secret="whsec_x")
    endpoint_disable(endpoint, "HTTP 500 for 3 days")
    event = only("webhook.disabled")
    assert event.actor_id is None and event.actor_label == "system"
    assert event.details == {"reason": "HTTP 500 for 3 days"}


def test_audit_gaps_api_key_approval_and_launch_name_the_key():
    tenant = Tenant("alpha")
    audience = ContactListFactory(organization=tenant.organization, purpose="transaction")
    audience.contacts.add(ContactFactory(organization=tenant.organization))
    api = tenant.client()
    body = {"name": "予約確認", "official_account": tenant.account.pk, "classification": "transaction",
            "content": {"text": "ご予約ありがとうございます。"}, "sms_text": "ご予約ありがとうございます。",
            "audience_lists": [audience.pk], "ttl_seconds": 600}
    campaign_id = api.post("/api/v1/campaigns/", body, format="json").json()["id"]
    for verb in ("submit", "approve", "launch"):
        assert api.post(f"/api/v1/campaigns/{campaign_id}/{verb}/", {}, format="json").status_code == 200, verb
    assert Campaign.objects.get(pk=campaign_id).status == "running"
    for action in ("campaign.approved", "campaign.launched"):
        event = only(action, target_id=str(campaign_id))
        assert event.actor_id == tenant.owner.pk
        assert event.details["api_key_id"] == api.api_key.pk
        assert event.details["api_key_prefix"] == api.api_key.prefix
        assert api.api_key.prefix in event.actor_label and "alpha-owner" in event.actor_label


def test_audit_gaps_console_approval_names_no_key(client):
    tenant = Tenant("alpha")
    audience = ContactListFactory(organization=tenant.organization, purpose="transaction")
    campaign = CampaignFactory(organization=tenant.organization, official_account=tenant.account, created_by=tenant.owner)
    campaign.audience_lists.add(audience)
    client.force_login(tenant.owner)
    for name in ("submit", "approve"):
        client.post(reverse(f"campaigns:{name}", args=[campaign.pk]))
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"
    event = only("campaign.approved")
    assert "api_key_id" not in event.details and event.actor_label == "alpha-owner"


def test_audit_gaps_media_uploads(client, org, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(owner)
    response = client.post(
        reverse("campaigns:media_upload"),
        {"media.upload": SimpleUploadedFile("photo.png", png(fmt="JPEG"), content_type="image/png"), "media.kind": "image"},
        HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="media.upload",
    )
    assert response.status_code == 200
    event = only("media.uploaded", details__purpose="campaign")
    stored = list((tmp_path / "media" / str(org.id)).glob("*.jpg"))
    assert len(stored) == 1 and event.target_label.endswith(stored[0].name)
    assert event.actor_id == owner.pk and event.organization_id == org.pk
    assert event.details["kind"] == "image" and event.details["original_name"] == "photo.png"

    account = OfficialAccountFactory(organization=org)
    client.post(reverse("accounts:official_logo", args=[account.pk]), {"logo": SimpleUploadedFile("logo.png", png())})
    account.refresh_from_db()
    logo = only("media.uploaded", details__purpose="logo")
    assert logo.target_id == str(account.pk) and logo.details["name"] == account.logo.name


def test_audit_gaps_refused_upload_records_nothing(client, org, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(owner)
    client.post(
        reverse("campaigns:media_upload"),
        {"media.upload": SimpleUploadedFile("photo.jpg", b"not a picture"), "media.kind": "image"},
        HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="media.upload",
    )
    assert not AuditEvent.objects.filter(action="media.uploaded").exists()


def test_audit_gaps_import_error_report_export(client, org, owner):
    contact_list = ContactListFactory(organization=org)
    job = ImportJob.objects.create(organization=org, contact_list=contact_list, created_by=owner, file="imports/t.csv",
                                   original_name="t.csv", file_format="csv")
    client.force_login(owner)
    response = client.get(reverse("contacts:import_report", args=[job.pk]))
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = only("export.import_errors")
    assert event.target_id == str(job.pk) and event.actor_id == owner.pk and event.organization_id == org.pk


def test_audit_gaps_consent_ledger_through_the_api():
    tenant = Tenant("alpha")
    contact = ContactFactory(organization=tenant.organization)
    api = tenant.client()
    response = api.get(f"/api/v1/contacts/{contact.pk}/consents/")
    assert response.status_code == 200
    event = only("export.consent")
    assert event.target_id == str(contact.pk) and event.organization_id == tenant.organization.pk
    assert event.details["api_key_id"] == api.api_key.pk


def test_audit_gaps_admin_role_change_is_audited(client, org, owner):
    """A platform superuser changing a role in the admin: admin.changed, with the role before and after."""
    membership = owner.memberships.get()
    root = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(reverse("admin:accounts_membership_change", args=[membership.pk]),
                           {"organization": org.pk, "user": owner.pk, "role": Role.VIEWER})
    assert response.status_code == 302
    event = only("admin.changed", target_type="accounts.membership")
    assert event.actor_id == root.pk and event.organization_id == org.pk
    assert event.details["values"]["role"] == [Role.OWNER, Role.VIEWER]
