"""Inbound messages through the API: list (filters) and read one; another organization's are 404."""

import pytest
from django.utils import timezone

from messaging.models import Conversation, ConversationMessage, MessageDirection
from tests.campaigns.factories import ContactFactory

pytestmark = pytest.mark.django_db


def inbound(tenant, phone, text, **fields):
    contact = ContactFactory(organization=tenant.organization, phone=phone)
    conversation = Conversation.objects.create(organization=tenant.organization, official_account=tenant.account,
                                               contact=contact)
    return ConversationMessage.objects.create(conversation=conversation, direction=MessageDirection.INBOUND,
                                              channel="rcs", text=text, **fields)


def test_list_and_read_inbound_messages(api, tenant, other):
    first = inbound(tenant, "+819012340001", "はい", kind="postback", postback="fraud:ok")
    second = inbound(tenant, "+819012340002", "", kind="location", latitude=35.68, longitude=139.76)
    foreign = inbound(other, "+819012340003", "他社")
    ConversationMessage.objects.create(conversation=first.conversation, direction=MessageDirection.OUTBOUND, text="x")
    results = api.get("/api/v1/inbound/").json()["results"]
    assert [m["id"] for m in results] == [second.pk, first.pk]
    assert results[1]["from"] == "+819012340001" and results[1]["postback"] == "fraud:ok"
    assert results[0]["location"] == {"latitude": 35.68, "longitude": 139.76}
    assert [m["id"] for m in api.get("/api/v1/inbound/?phone=090-1234-0001").json()["results"]] == [first.pk]
    later = (timezone.now() + timezone.timedelta(hours=1)).isoformat()
    assert api.get("/api/v1/inbound/", {"since": later}).json()["results"] == []
    assert api.get("/api/v1/inbound/?since=yesterday").status_code == 400
    assert api.get(f"/api/v1/inbound/{first.pk}/").json()["text"] == "はい"
    assert api.get(f"/api/v1/inbound/{foreign.pk}/").status_code == 404
