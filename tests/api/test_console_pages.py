"""The console pages for API keys and webhooks: admins only, the secret shown once, revoke, the log."""

import pytest
from django.test import Client

from accounts.models import ApiKey, WebhookDelivery, WebhookEndpoint
from audit.models import AuditEvent
from messaging import outbound_webhooks as ow
from messaging import tasks

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_keys_page_creates_shows_once_lists_and_revokes(tenant):
    client = signed_in(tenant.owner)
    response = client.post("/accounts/api-keys/", {"name": "受注システム", "scopes": ["send", "contacts"]})
    assert response.status_code == 200
    key = ApiKey.objects.get(name="受注システム")
    html = response.content.decode()
    secret = html.split('id="new-api-key"')[1].split(">")[1].split("<")[0]
    assert secret.startswith(f"pm_{key.prefix}_") and ApiKey.hash_secret(secret) == key.key_hash
    assert key.scopes == ["send", "contacts"] and key.created_by == tenant.owner
    listing = client.get("/accounts/api-keys/").content.decode()
    assert "受注システム" in listing and secret not in listing
    api = tenant.client()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/contacts/").status_code == 200
    assert client.post(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/contacts/").status_code == 401
    assert {"api_key.created", "api_key.revoked"} <= set(AuditEvent.objects.values_list("action", flat=True))


def test_only_owners_and_admins_manage_keys_and_other_orgs_are_404(tenant, other):
    assert signed_in(tenant.marketer).get("/accounts/api-keys/").status_code == 403
    assert signed_in(tenant.marketer).get("/accounts/webhooks/").status_code == 403
    foreign_key, _secret = other.key()
    foreign_endpoint = ow.endpoint_create(other.organization, "https://other.example.jp/hook", ["message.sent"])
    client = signed_in(tenant.owner)
    assert client.post(f"/accounts/api-keys/{foreign_key.pk}/revoke/").status_code == 404
    for path in ("", "rotate/", "toggle/", "delete/"):
        method = client.get if not path else client.post
        assert method(f"/accounts/webhooks/{foreign_endpoint.pk}/{path}").status_code == 404
    ow.events_record(other.organization.pk, "message.sent", [{"message": {"id": "x"}}])
    foreign_delivery = WebhookDelivery.objects.get(endpoint=foreign_endpoint)
    assert client.post(f"/accounts/webhooks/deliveries/{foreign_delivery.pk}/resend/").status_code == 404
    foreign_key.refresh_from_db()
    assert foreign_key.revoked_at is None


def test_webhook_pages(tenant, monkeypatch):
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda *a: None)
    client = signed_in(tenant.owner)
    # Saving checks the URL with the egress guard, which resolves the host: a loopback address (the
    # tests allow loopback) needs no DNS; tests/security/test_egress_wiring.py covers the refusals.
    response = client.post("/accounts/webhooks/", {"url": "http://127.0.0.1:9/pm", "events": ["message.sent",
                                                                                               "inbound.received"]})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert client.post("/accounts/webhooks/", {"url": "ftp://x", "events": ["message.sent"]}).status_code == 200
    assert WebhookEndpoint.objects.count() == 1
    ow.events_record(tenant.organization.pk, "message.sent", [{"message": {"id": "x"}}])
    delivery = WebhookDelivery.objects.get()
    page = client.get(f"/accounts/webhooks/{endpoint.pk}/")
    assert page.status_code == 200 and "message.sent" in page.content.decode()
    old = endpoint.secret
    rotated = client.post(f"/accounts/webhooks/{endpoint.pk}/rotate/")
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == old and endpoint.secret in rotated.content.decode()
    client.post(f"/accounts/webhooks/deliveries/{delivery.pk}/resend/")
    assert WebhookDelivery.objects.filter(event_id=delivery.event_id).count() == 2
    client.post(f"/accounts/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    ow.endpoint_disable(endpoint, "test")  # already inactive: nothing happens
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at="2026-11-26T00:00:00Z", disabled_reason="落ちた")
    listing = client.get("/accounts/webhooks/").content.decode()
    assert "落ちた" in listing
    assert "badge-bad" in client.get("/").content.decode()
    client.post(f"/accounts/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_at is None
    assert client.post(f"/accounts/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()
