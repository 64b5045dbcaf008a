"""Idempotency-Key on every POST: replay, conflict, in progress, expiry, not kept for 5xx/429."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import IdempotencyRecord
from api.idempotency import request_fingerprint  # noqa: F401 - documented helper
from campaigns.models import Contact
from messaging.models import Delivery
from tests.api.conftest import message_body

pytestmark = pytest.mark.django_db


def test_same_key_same_body_replays_the_first_answer_without_acting_again(
    api, tenant, _no_enqueue, django_capture_on_commit_callbacks
):
    body = message_body(tenant, client_reference="once")
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        second = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert Delivery.objects.filter(client_reference="once").count() == 1
    assert len(_no_enqueue) == 1


def test_same_key_different_body_is_409(api, tenant):
    api.post("/api/v1/messages/", message_body(tenant), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post("/api/v1/messages/", message_body(tenant, sms_text="別の本文"), format="json",
                        HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 409
    assert response.json() == {
        "code": "idempotency_key_reused", "field": "Idempotency-Key",
        "message": "This Idempotency-Key was already used with a different request. Use a new key for a new request.",
    }
    other_path = api.post("/api/v1/contacts/", {"phone": "09012340000"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert other_path.status_code == 409


def test_errors_are_replayed_too_and_keys_are_per_api_key(api, tenant):
    bad = message_body(tenant, to="050-1234-5678")
    first = api.post("/api/v1/messages/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    again = api.post("/api/v1/messages/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert first.status_code == again.status_code == 400 and first.json() == again.json()
    other_key = tenant.client()
    good = other_key.post("/api/v1/messages/", message_body(tenant), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert good.status_code == 201


def test_a_request_still_in_progress_is_409_and_a_dead_one_is_taken_over(api, tenant):
    IdempotencyRecord.objects.create(api_key=api.api_key, key="k-4", request_hash="x" * 64)
    response = api.post("/api/v1/contacts/", {"phone": "09012340001"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert response.status_code == 409  # different body hash
    body = {"phone": "09012340002"}
    first = api.post("/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    record = IdempotencyRecord.objects.get(key="k-5")
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=None, response_body=None)
    busy = api.post("/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_progress"
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    taken = api.post("/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert first.status_code == 201 and taken.status_code == 409  # acted again: the contact exists now
    assert taken.json()["code"] == "duplicate"


def test_keys_are_kept_24_hours_then_forgotten(api, tenant):
    body = message_body(tenant)
    api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    record = IdempotencyRecord.objects.get(key="k-6")
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
    assert api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-6")["Idempotent-Replayed"]
    assert Delivery.objects.count() == 1
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    response = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-6")
    assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")
    assert Delivery.objects.count() == 2


def test_throttled_answers_are_not_kept(tenant, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "1/minute"}}
    client = tenant.client()
    client.get("/api/v1/contacts/")
    throttled = client.post("/api/v1/contacts/", {"phone": "09012340003"}, format="json", HTTP_IDEMPOTENCY_KEY="k-7")
    assert throttled.status_code == 429
    assert not IdempotencyRecord.objects.filter(key="k-7").exists()
    assert not Contact.objects.filter(phone="+819012340003").exists()


def test_a_key_too_long_is_a_400(api):
    response = api.post("/api/v1/contacts/", {"phone": "09012340004"}, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key"
