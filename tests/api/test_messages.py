"""POST/GET /api/v1/messages: validation by the shared validators, the priority lane, the answer."""

import pytest
from django.utils import timezone

from campaigns.models import Contact
from messaging.models import Delivery, DeliveryStatus
from tests.api.conftest import SMS, TEXT, message_body

pytestmark = pytest.mark.django_db


def test_send_queues_one_message_on_the_priority_lane(api, tenant, _no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/messages/", message_body(tenant, client_reference="order-1"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    delivery = Delivery.objects.get(uuid=body["id"])
    assert delivery.campaign_id is None and delivery.contact.phone == "+819012345678"
    assert delivery.client_reference == "order-1" and delivery.classification == "transaction"
    assert body["url"].endswith(f"/api/v1/messages/{body['id']}/")
    assert response["Location"] == body["url"]
    assert body["status"] == "queued" and body["channel"] is None
    assert _no_enqueue == [(delivery.pk,)]


def test_get_message_shows_channel_history_fallback_and_error(api, tenant):
    created = api.post("/api/v1/messages/", message_body(tenant), format="json").json()
    Delivery.objects.filter(uuid=created["id"]).update(
        channel="sms", fallback_reason="not_capable", status=DeliveryStatus.FAILED, sent_at=timezone.now(),
        failed_at=timezone.now(), error_code="carrier_failed", error_reason="unknown subscriber",
    )
    body = api.get(created["url"]).json()
    assert body["channel"] == "sms" and body["fallback_reason"] == "not_capable"
    assert body["status"] == "failed"
    assert body["error"] == {"code": "carrier_failed", "reason": "unknown subscriber"}
    assert [entry["status"] for entry in body["history"]] == ["queued", "sent", "failed"]


def test_official_account_may_be_left_out_when_there_is_one(api, tenant):
    body = message_body(tenant)
    del body["official_account"]
    assert api.post("/api/v1/messages/", body, format="json").status_code == 201


@pytest.mark.parametrize(
    "overrides, field, code",
    [
        ({"to": "050-1234-5678"}, "to", "voip"),
        ({"to": "03-1234-5678"}, "to", "not_mobile"),
        ({"content": {"text": ""}}, "content", None),
        ({"content": {"text": "x", "card": {"title": "t"}}}, "content", None),
        ({"sms_text": ""}, "sms_text", None),
        ({"sms_text": "あ" * 661}, "sms_text", None),
        ({"ttl_seconds": 10}, "ttl_seconds", "min_value"),
        ({"classification": "spam"}, "classification", "invalid_choice"),
        ({"official_account": 999999}, "official_account", None),
    ],
)
def test_bad_input_is_a_400_in_the_one_error_shape(api, tenant, overrides, field, code):
    response = api.post("/api/v1/messages/", message_body(tenant, **overrides), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert set(body) >= {"code", "message", "field"}
    assert body["field"] == field
    if code:
        assert body["code"] == code
    assert body["errors"][0] == {"code": body["code"], "message": body["message"], "field": field}


def test_malformed_json_and_wrong_media_type_are_4xx(api):
    response = api.generic("POST", "/api/v1/messages/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    response = api.generic("POST", "/api/v1/messages/", "to=1", content_type="text/plain")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


def test_promotion_to_an_opted_out_number_is_refused(api, tenant):
    Contact.objects.create(organization=tenant.organization, phone="+819012345678", opted_out_at=timezone.now())
    response = api.post("/api/v1/messages/", message_body(tenant, classification="promotion"), format="json")
    assert response.status_code == 400 and response.json()["field"] == "to"


def test_list_messages_filters_by_client_reference(api, tenant):
    api.post("/api/v1/messages/", message_body(tenant, client_reference="a"), format="json")
    api.post("/api/v1/messages/", message_body(tenant, client_reference="b"), format="json")
    body = api.get("/api/v1/messages/?client_reference=b").json()
    assert [item["client_reference"] for item in body["results"]] == ["b"]
    assert api.get("/api/v1/messages/?status=nonsense").status_code == 400


def test_unknown_message_id_is_404(api):
    assert api.get("/api/v1/messages/6f1c1f0e-8a0b-4a43-9d59-3c1f1d1b2a10/").status_code == 404
    assert api.get("/api/v1/nothing-here/").json()["code"] == "not_found"


def test_errors_in_japanese_with_accept_language(tenant):
    client = tenant.client(language="ja")
    response = client.post("/api/v1/messages/", message_body(tenant, to="050-1234-5678"), format="json")
    assert response.status_code == 400
    assert response["Content-Language"] == "ja"
    english = tenant.client().post("/api/v1/messages/", message_body(tenant, to="050-1234-5678"), format="json")
    assert english["Content-Language"] == "en"
    assert english.json()["message"] == "050 numbers are IP phones, not mobiles."


def test_content_and_sms_text_reuse_the_shared_validators(api, tenant):
    assert TEXT and SMS
    response = api.post(
        "/api/v1/messages/",
        message_body(tenant, content={"text": "x", "suggestions": [{"reply": {"text": "y" * 30, "postbackData": "p"}}]}),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "content"
