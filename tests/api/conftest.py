"""Fixtures for the API tests: an organization with an approved official account, API keys of any
scope, and a client that sends them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, ApiScope, GatewayAccount, GatewayKind, Role
from core.throttle import redis_client
from messaging import tasks
from tests.accounts.factories import OrganizationFactory, approved_account, member

ALL_SCOPES = [ApiScope.SEND, ApiScope.CONTACTS, ApiScope.CAMPAIGNS]


class Tenant:
    def __init__(self, tag: str):
        self.organization = OrganizationFactory(name=f"{tag}株式会社", slug=f"{tag}-org")
        self.owner = member(self.organization, Role.OWNER, username=f"{tag}-owner")
        self.marketer = member(self.organization, Role.MARKETER, username=f"{tag}-marketer")
        self.sms = GatewayAccount.objects.create(
            organization=self.organization, name="cm", kind=GatewayKind.CM, base_url="http://127.0.0.1:9",
            credentials={"product_token": "p", "callback_secret": "s"},
        )
        self.rbm = GatewayAccount.objects.create(
            organization=self.organization, name="rbm", kind=GatewayKind.RBM, base_url="http://127.0.0.1:9",
            credentials={"agent_id": "a", "bearer_token": "b", "client_token": "c"},
        )
        self.account = approved_account(self.organization, rcs_gateway=self.rbm, sms_gateway=self.sms)

    def key(self, scopes=None, user=None, name="test key"):
        key, secret = ApiKey.generate(
            self.organization, name, ALL_SCOPES if scopes is None else scopes, created_by=user or self.owner
        )
        return key, secret

    def client(self, scopes=None, user=None, language=None):
        _key, secret = self.key(scopes, user)
        client = APIClient()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        if language:
            headers["HTTP_ACCEPT_LANGUAGE"] = language
        client.credentials(**headers)
        client.api_key = _key
        return client


@pytest.fixture
def tenant(db):
    return Tenant("alpha")


@pytest.fixture
def other(db):
    return Tenant("bravo")


@pytest.fixture
def api(tenant):
    """A client with the send, contacts and campaigns scopes, created by the owner."""
    return tenant.client()


@pytest.fixture(autouse=True)
def _no_enqueue(monkeypatch):
    """Sends are enqueued after commit; the API tests check what the API records, not the worker."""
    sent = []
    monkeypatch.setattr(tasks.send_message, "delay", lambda *args, **kwargs: sent.append(args))
    return sent


@pytest.fixture(autouse=True)
def _fresh_throttle():
    client = redis_client()
    if client is not None:
        for name in client.scan_iter("api-throttle:*"):
            client.delete(name)
    yield


TEXT = {"text": "ご注文の商品を発送しました。"}
SMS = "ご注文の商品を発送しました。"


def message_body(tenant, **overrides):
    body = {"to": "090-1234-5678", "official_account": tenant.account.pk, "content": TEXT, "sms_text": SMS}
    body.update(overrides)
    return body
