"""Inbound messages end to end: the sandbox posts signed webhooks (RBM Pub/Sub and CM.com MO) to the
live server, a real Celery worker applies them, and they become conversation messages — each once,
credited to the campaign the person answered, files downloaded and stored, read receipts sent back."""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import Role
from messaging.counters import counters_fold
from messaging.models import (
    CampaignCounter,
    Conversation,
    ConversationMessage,
    Delivery,
    DeliveryStatus,
    MediaStatus,
)
from messaging.runs import campaign_start
from tests.accounts.factories import MembershipFactory
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


class FileServer:
    """Serves one PNG, and a body larger than the media limit, over real HTTP."""

    def __init__(self):
        image = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 30, 30)).save(image, "PNG")
        files = {"/photo.png": image.getvalue(), "/huge.bin": b"x" * 4096}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "image/png" if self.path.endswith(".png") else "application/pdf")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files():
    server = FileServer()
    yield server
    server.close()


def _messages(contact, count):
    return wait_until(
        lambda: ConversationMessage.objects.filter(conversation__contact=contact, direction="in").count() >= count,
        timeout=30, interval=0.2,
    )


def _counter(campaign, metric):
    counters_fold()
    return sum(CampaignCounter.objects.filter(campaign=campaign, metric=metric).values_list("count", flat=True))


def test_inbox_inbound_rbm_every_kind_once_credited_to_the_campaign(engine, worker, files, settings):
    sandbox = engine.sandbox
    sandbox.configure(profile_mix={"android_plus_message": 1}, faults={"duplicate_webhook_rate": 1.0})
    audience = engine.audience(1, name="rbm-inbound")
    contact = audience.contacts.get()
    campaign = engine.campaign(audience)
    worker(INBOX_MEDIA_MAX_BYTES=1024)
    campaign_start(campaign)
    wait_until(lambda: Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.DELIVERED).exists(),
               timeout=30, interval=0.2)
    phone = contact.phone
    for reply in (
        {"type": "text", "text": "予約を変更できますか？"},
        {"type": "postback", "postback": "coupon_yes", "text": "クーポンを使う"},
        {"type": "location", "latitude": 35.681, "longitude": 139.767},
        {"type": "file", "url": f"{files.url}/photo.png", "mime": "image/png"},
        {"type": "file", "url": f"{files.url}/huge.bin", "mime": "application/pdf"},
        {"type": "text", "text": "もう一度"},
    ):
        sandbox.post("replies", {"phone": phone, "trigger": "now", "reply": reply})
    _messages(contact, 6)
    wait_until(lambda: sandbox.tallies()["carrier"].get("duplicate_webhooks", 0) >= 6, timeout=10)
    thread = list(ConversationMessage.objects.filter(conversation__contact=contact).order_by("created_at", "id"))
    assert len(thread) == 6  # every webhook was posted twice; each event applied once
    kinds = sorted(m.kind for m in thread)
    assert kinds == ["file", "file", "location", "postback", "text", "text"]
    assert {m.channel for m in thread} == {"rcs"}
    assert all(m.campaign_id == campaign.pk for m in thread)
    assert all(m.provider_message_id.startswith("MxU") for m in thread)
    conversation = Conversation.objects.get(contact=contact)
    assert conversation.official_account_id == engine.account.pk
    assert conversation.organization_id == engine.organization.pk
    assert conversation.unread_count == 6
    location = next(m for m in thread if m.kind == "location")
    assert (location.latitude, location.longitude) == (35.681, 139.767)
    postback = next(m for m in thread if m.kind == "postback")
    assert postback.postback == "coupon_yes"
    # files: the image is fetched by a task, re-encoded and stored; the oversized one is refused
    wait_until(lambda: not ConversationMessage.objects.filter(media_status=MediaStatus.PENDING).exists(), timeout=30)
    photo = ConversationMessage.objects.get(conversation=conversation, file_url__endswith="photo.png")
    assert photo.media_status == MediaStatus.STORED and photo.file_mime in ("image/jpeg", "image/png") and photo.file.name
    huge = ConversationMessage.objects.get(conversation=conversation, file_url__endswith="huge.bin")
    assert huge.media_status == MediaStatus.TOO_LARGE
    # the campaign's stats: one person replied (counted once), one clicked a chip
    assert _counter(campaign, "replied") == 1
    assert _counter(campaign, "clicked") == 1


def test_inbox_inbound_cm_sms_reply_and_operator_answer_with_read_receipts(engine, worker):
    sandbox = engine.sandbox
    audience = engine.audience(2, name="two-way")
    sms_contact, rcs_contact = list(audience.contacts.order_by("id"))
    sandbox.configure(profile_overrides={sms_contact.phone: "rakuten_sms_only", rcs_contact.phone: "android_plus_message"})
    campaign = engine.campaign(audience)
    worker()
    campaign_start(campaign)
    wait_until(lambda: Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.DELIVERED).count() == 2,
               timeout=30, interval=0.2)
    sandbox.post("replies", {"phone": sms_contact.phone, "trigger": "now", "reply": {"type": "text", "text": "SMSで返信"}})
    sandbox.post("replies", {"phone": rcs_contact.phone, "trigger": "now", "reply": {"type": "text", "text": "RCSで返信"}})
    _messages(sms_contact, 1)
    _messages(rcs_contact, 1)
    sms_in = ConversationMessage.objects.get(conversation__contact=sms_contact)
    assert sms_in.channel == "sms" and sms_in.provider == "cm" and sms_in.text == "SMSで返信"

    operator = MembershipFactory(organization=engine.organization, role=Role.OPERATOR).user
    client = Client()
    client.force_login(operator)
    index = client.get(reverse("messaging:inbox")).content.decode()
    assert "SMS" in index or sms_contact.phone[-4:] in index
    # opening the RCS thread sends the read receipt back to the person (RBM agentEvents READ)
    conversation = Conversation.objects.get(contact=rcs_contact)
    page = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]))
    assert page.status_code == 200 and "RCSで返信" in page.content.decode()
    rcs_in = ConversationMessage.objects.get(conversation=conversation, direction="in")
    events = wait_until(lambda: sandbox.get(f"agent-events/{rcs_contact.phone}")["events"], timeout=20)
    assert events[0]["event_type"] == "READ" and events[0]["message_id"] == rcs_in.provider_message_id
    wait_until(lambda: ConversationMessage.objects.filter(pk=rcs_in.pk, read_receipt_sent_at__isnull=False).exists(),
               timeout=10)
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    # answering: by +Message to the RCS person, by SMS to the other; both reach the handset once
    for contact, text in ((rcs_contact, "ご連絡ありがとうございます"), (sms_contact, "SMSでお答えします")):
        target = Conversation.objects.get(contact=contact)
        response = client.post(reverse("messaging:inbox_reply", args=[target.pk]), {"text": text})
        assert response.status_code == 302
    def handset_has(phone, text):
        return [m for m in sandbox.inbox(phone) if m.get("text") == text or text in str(m.get("content"))]
    rcs_got = wait_until(lambda: handset_has(rcs_contact.phone, "ご連絡ありがとうございます"), timeout=30)
    sms_got = wait_until(lambda: handset_has(sms_contact.phone, "SMSでお答えします"), timeout=30)
    assert rcs_got[0]["channel"] == "rcs" and sms_got[0]["channel"] == "sms"
    outbound = ConversationMessage.objects.get(conversation__contact=rcs_contact, direction="out")
    assert outbound.sent_by_id == operator.pk
    wait_until(lambda: Delivery.objects.filter(pk=outbound.delivery_id, status__gte=DeliveryStatus.DELIVERED).exists(),
               timeout=30)
    thread = client.get(reverse("messaging:inbox_thread", args=[outbound.conversation_id])).content.decode()
    assert "ご連絡ありがとうございます" in thread and ('data-status="30"' in thread or 'data-status="40"' in thread)
