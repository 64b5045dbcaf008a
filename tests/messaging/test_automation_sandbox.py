"""A keyword rule end to end: a person texts the keyword to the official account on their handset
(the sandbox carrier posts the signed inbound webhook to the receiver), a real Celery worker applies
it, and the rule's saved message reaches the person's handset — once."""

import pytest

from messaging.automation import keyword_rule_save
from messaging.models import ConversationMessage, Delivery, DeliveryStatus, KeywordRule, QuickReply
from messaging.runs import campaign_start
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def test_keyword_rule_answer_reaches_the_handset_through_the_sandbox(engine, worker):
    sandbox = engine.sandbox
    sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(1, name="keyword-rule")
    contact = audience.contacts.get()
    answer = QuickReply.objects.create(organization=engine.organization, title="クーポン",
                                       text="クーポンは店頭でこの画面をお見せください。")
    rule = keyword_rule_save(engine.account, keyword="クーポン", match="contains", action="reply",
                             quick_reply_id=answer.pk)
    campaign = engine.campaign(audience)
    worker()
    campaign_start(campaign)  # the carrier lets a person answer only an account that wrote to them
    wait_until(lambda: Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.DELIVERED).exists(),
               timeout=30, interval=0.2)

    sandbox.post("replies", {"phone": contact.phone, "trigger": "now",
                             "reply": {"type": "text", "text": "ｸｰﾎﾟﾝ使えますか"}})  # half-width kana

    def answered():
        return [m for m in sandbox.inbox(contact.phone) if answer.text in (m.get("text") or str(m.get("content")))]

    [received] = wait_until(answered, timeout=30, interval=0.3)
    assert received["channel"] == "rcs" and received["count"] == 1
    outbound = ConversationMessage.objects.get(conversation__contact=contact, direction="out")
    assert outbound.automation == "keyword_rule" and outbound.text == answer.text
    assert KeywordRule.objects.get(pk=rule.pk).fired_count == 1
