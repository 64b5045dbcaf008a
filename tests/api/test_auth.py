"""API keys: authentication, scopes, the role a key acts with, throttling, tenant isolation."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, ApiScope, Role
from campaigns.models import CampaignStatus
from tests.api.conftest import message_body
from tests.campaigns.factories import CampaignFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def test_no_key_bad_header_unknown_and_revoked_keys_answer_401(tenant):
    client = APIClient()
    response = client.get("/api/v1/contacts/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    client.credentials(HTTP_AUTHORIZATION="Token abc")
    assert client.get("/api/v1/contacts/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer pm_nope_nope")
    assert client.get("/api/v1/contacts/").json()["code"] == "authentication_failed"
    key, secret = tenant.key()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/contacts/").status_code == 200
    key.revoke()
    assert client.get("/api/v1/contacts/").status_code == 401


def test_key_is_stored_hashed_and_last_use_recorded(tenant):
    key, secret = tenant.key()
    assert secret not in (key.key_hash, key.prefix) and key.key_hash == ApiKey.hash_secret(secret)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.get("/api/v1/contacts/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get("/api/v1/contacts/")
    key.refresh_from_db()
    assert key.last_used_at == first  # written at most once a minute


@pytest.mark.django_db(transaction=True)
def test_last_use_is_not_awaited_while_another_request_holds_the_key_row(tenant):
    """A request whose key row is locked by a concurrent request (which is recording the last use in
    its own, still open, transaction) goes on without recording it instead of waiting."""
    import psycopg
    from django.db import connection

    key, secret = tenant.key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"]
    ) as other:
        other.execute("SELECT id FROM accounts_apikey WHERE id = %s FOR UPDATE", [key.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting for the row would fail the request
        assert client.get("/api/v1/contacts/").status_code == 200
        assert client.post("/api/v1/contacts/", {"phone": "09011114444"}, format="json").status_code == 201
        key.refresh_from_db()
        assert key.last_used_at is None
        other.rollback()
    assert client.get("/api/v1/contacts/").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


OPERATIONS = [
    # (method, path template, body, scope that allows it)
    ("post", "/api/v1/messages/", "message", ApiScope.SEND),
    ("get", "/api/v1/messages/", None, ApiScope.SEND),
    ("get", "/api/v1/contacts/", None, ApiScope.CONTACTS),
    ("post", "/api/v1/contacts/", {"phone": "09011112222"}, ApiScope.CONTACTS),
    ("post", "/api/v1/contacts/bulk/", {"contacts": [{"phone": "09011113333"}]}, ApiScope.CONTACTS),
    ("get", "/api/v1/lists/", None, ApiScope.CONTACTS),
    ("post", "/api/v1/lists/", {"name": "scoped"}, ApiScope.CONTACTS),
    ("get", "/api/v1/campaigns/", None, ApiScope.CAMPAIGNS),
    ("get", "/api/v1/inbound/", None, ApiScope.SEND),
]


@pytest.mark.parametrize("method, path, body, scope", OPERATIONS)
def test_every_scope_allows_its_operations_only(tenant, method, path, body, scope):
    if body == "message":
        body = message_body(tenant)
    for scopes, allowed in [
        ([scope], True),
        ([s for s in (ApiScope.SEND, ApiScope.CONTACTS, ApiScope.CAMPAIGNS) if s != scope], False),
        ([ApiScope.READ_ONLY], method == "get"),
        ([], False),
    ]:
        client = tenant.client(scopes=scopes)
        response = getattr(client, method)(path, body, format="json")
        if allowed:
            assert response.status_code in (200, 201), (scopes, path, response.json())
        else:
            assert response.status_code == 403, (scopes, path, response.status_code)
            assert response.json()["code"] == "scope_missing"


def test_read_only_key_reads_everything_and_writes_nothing(tenant):
    client = tenant.client(scopes=[ApiScope.READ_ONLY])
    campaign = CampaignFactory(organization=tenant.organization, official_account=tenant.account, created_by=tenant.owner)
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/stats/").status_code == 200
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/submit/").status_code == 403
    assert client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"name": "x"}, format="json").status_code == 403


def test_throttled_per_key_with_retry_after(tenant, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/minute"}}
    client = tenant.client()
    statuses = [client.get("/api/v1/contacts/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/contacts/")
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert tenant.client().get("/api/v1/contacts/").status_code == 200  # another key has its own budget


def test_another_organizations_ids_answer_404(tenant, other):
    contact = ContactFactory(organization=other.organization)
    contact_list = ContactListFactory(organization=other.organization)
    campaign = CampaignFactory(organization=other.organization, official_account=other.account, created_by=other.owner)
    single = DeliveryFactory(organization=other.organization, campaign=None, contact=contact,
                             official_account=other.account)
    client = tenant.client(scopes=[ApiScope.SEND, ApiScope.CONTACTS, ApiScope.CAMPAIGNS])
    for method, path, body in [
        ("get", f"/api/v1/messages/{single.uuid}/", None),
        ("get", f"/api/v1/contacts/{contact.pk}/", None),
        ("patch", f"/api/v1/contacts/{contact.pk}/", {"name": "x"}),
        ("delete", f"/api/v1/contacts/{contact.pk}/", None),
        ("post", f"/api/v1/contacts/{contact.pk}/opt-out/", {}),
        ("get", f"/api/v1/contacts/{contact.pk}/consents/", None),
        ("post", f"/api/v1/contacts/{contact.pk}/consents/", {"source": "x", "wording_version": "v1"}),
        ("post", f"/api/v1/contacts/{contact.pk}/consents/revoke/", {}),
        ("post", f"/api/v1/contacts/{contact.pk}/erase/", {}),
        ("get", f"/api/v1/lists/{contact_list.pk}/", None),
        ("get", f"/api/v1/lists/{contact_list.pk}/members/", None),
        ("post", f"/api/v1/lists/{contact_list.pk}/members/", {"contacts": [contact.pk]}),
        ("delete", f"/api/v1/lists/{contact_list.pk}/members/{contact.pk}/", None),
        ("get", f"/api/v1/campaigns/{campaign.pk}/", None),
        ("patch", f"/api/v1/campaigns/{campaign.pk}/", {"name": "x"}),
        ("get", f"/api/v1/campaigns/{campaign.pk}/stats/", None),
        *[("post", f"/api/v1/campaigns/{campaign.pk}/{verb}/", {})
          for verb in ("submit", "approve", "launch", "pause", "resume", "cancel")],
    ]:
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["code"] == "not_found"
    # and their ids do not leak into lists or references
    assert client.get("/api/v1/contacts/").json()["results"] == []
    own = client.post("/api/v1/contacts/", {"phone": "09055556666", "lists": [contact_list.pk]}, format="json")
    assert own.status_code == 400 and own.json()["field"].startswith("lists")
    message = client.post("/api/v1/messages/", message_body(tenant, official_account=other.account.pk), format="json")
    assert message.status_code == 400 and message.json()["field"] == "official_account"


def test_a_key_acts_with_its_creators_current_role(tenant):
    campaign = CampaignFactory(organization=tenant.organization, official_account=tenant.account,
                               created_by=tenant.owner, status=CampaignStatus.PENDING_APPROVAL)
    marketer_key = tenant.client(scopes=[ApiScope.CAMPAIGNS], user=tenant.marketer)
    response = marketer_key.post(f"/api/v1/campaigns/{campaign.pk}/approve/")
    assert response.status_code == 403
    # a member who has left: the key stops working altogether (tests/security/test_keys_and_approvals.py)
    owner_key = tenant.client(scopes=[ApiScope.CAMPAIGNS], user=tenant.owner)
    tenant.owner.memberships.all().delete()
    response = owner_key.post("/api/v1/campaigns/", {"name": "x", "official_account": tenant.account.pk}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "key_creator_inactive"
    assert Role.OWNER and timezone.now()
