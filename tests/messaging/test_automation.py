"""Inbox automation without the carrier (messaging.automation): keyword rules matched like the
opt-out keywords, each action, the opt-out keyword always winning, nobody opted out answered, the
away message once per conversation per closed window, and the console page per official account."""

from datetime import datetime, time

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import GatewayKind, Role
from campaigns.models import Consent, ConsentMethod, Contact, ContactListMembership
from messaging.automation import away_message_save, keyword_rule_save
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.models import AwayMessage, Conversation, ConversationMessage, Delivery, KeywordRule, QuickReply
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import ContactListFactory

pytestmark = pytest.mark.django_db

PHONE = "+819012345678"
TOKYO = timezone.get_fixed_timezone(9 * 60)
# A Wednesday; business hours in these tests are 10:00–18:00 on weekdays (Japan time).
WEDNESDAY_NOON = datetime(2026, 12, 2, 12, 0, tzinfo=TOKYO)
WEDNESDAY_NIGHT = datetime(2026, 12, 2, 22, 0, tzinfo=TOKYO)
THURSDAY_EARLY = datetime(2026, 12, 3, 7, 30, tzinfo=TOKYO)
THURSDAY_NIGHT = datetime(2026, 12, 3, 19, 0, tzinfo=TOKYO)
SATURDAY = datetime(2026, 12, 5, 15, 0, tzinfo=TOKYO)
SUNDAY = datetime(2026, 12, 6, 11, 0, tzinfo=TOKYO)


@pytest.fixture
def world():
    organization = OrganizationFactory(business_hours_start=time(10, 0), business_hours_end=time(18, 0),
                                       business_days="12345")
    rbm = GatewayAccountFactory(organization=organization, kind=GatewayKind.RBM)
    cm = GatewayAccountFactory(organization=organization, kind=GatewayKind.CM, credentials={"callback_secret": "s"})
    account = approved_account(organization, rcs_gateway=rbm, sms_gateway=cm)
    answer = QuickReply.objects.create(organization=organization, title="営業時間", text="営業時間は10時から18時です。")
    return {"organization": organization, "account": account, "rbm": rbm, "answer": answer,
            "admin": member(organization, Role.ADMIN, username="auto-admin"),
            "operator": member(organization, Role.OPERATOR, username="auto-op"),
            "marketer": member(organization, Role.MARKETER, username="auto-marketer")}


_ids = iter(range(1, 10_000))


def text_in(world, text, at=WEDNESDAY_NOON, phone=PHONE, kind="inbound_text", **extra):
    event_id = f"msg:auto-{next(_ids)}"
    return inbound_apply([NormalizedEvent(provider="rbm", event_id=event_id, kind=kind, channel="rcs", phone=phone,
                                          text=text, gateway_id=world["rbm"].pk, occurred_at=at,
                                          raw={"messageId": event_id}, **extra)])


def answers(automation=None, phone=PHONE):
    rows = ConversationMessage.objects.filter(direction="out", conversation__contact__phone=phone)
    if automation is not None:
        rows = rows.filter(automation=automation)
    return list(rows.order_by("id").values_list("text", flat=True))


def reply_rule(world, keyword="営業時間", match="exact"):
    return keyword_rule_save(world["account"], keyword=keyword, match=match, action="reply",
                             quick_reply_id=world["answer"].pk)


def test_keyword_rule_matches_full_and_half_width_and_case_like_the_opt_out_keywords(world):
    rule = reply_rule(world, keyword="Hours")
    for text in ("hours", "ＨＯＵＲＳ", "　Hours ", "ｈｏｕｒｓ"):
        text_in(world, text)
    text_in(world, "opening hours?")  # exact: the whole message only
    assert answers("keyword_rule") == ["営業時間は10時から18時です。"] * 4
    rule.refresh_from_db()
    assert rule.fired_count == 4 and rule.last_fired_at is not None
    text_in(world, "HOURS", kind="inbound_postback", postback="hours_chip")  # a tapped chip's label
    assert len(answers("keyword_rule")) == 5
    contains = reply_rule(world, keyword="ｼﾞｶﾝ", match="contains")  # half-width kana folds to ジカン
    text_in(world, "営業ジカンを教えて")
    contains.refresh_from_db()
    assert contains.fired_count == 1 and len(answers("keyword_rule")) == 6


def test_keyword_rule_reply_goes_through_the_operator_send_path(world):
    reply_rule(world)
    text_in(world, "営業時間")
    [message] = ConversationMessage.objects.filter(direction="out")
    delivery = message.delivery
    conversation = Conversation.objects.get()
    # the same send path as an operator's reply: a transactional message on the thread's reference
    assert delivery.classification == "transaction" and delivery.client_reference == f"inbox:{conversation.pk}"
    assert delivery.official_account_id == world["account"].pk and delivery.sms_text == world["answer"].text
    assert message.sent_by_id is None and message.automation == "keyword_rule"


def test_keyword_rule_actions_tag_list_assign_and_consent(world):
    contact_list = ContactListFactory(organization=world["organization"], name="来店予約")
    account = world["account"]
    keyword_rule_save(account, keyword="予約", match="contains", action="tag", tag="予約希望")
    keyword_rule_save(account, keyword="予約", match="contains", action="list", contact_list_id=contact_list.pk)
    keyword_rule_save(account, keyword="予約", match="contains", action="assign", assignee_id=world["operator"].pk)
    consent_rule = keyword_rule_save(account, keyword="クーポン登録", match="exact", action="consent")
    text_in(world, "予約したいです")
    text_in(world, "予約の変更")
    contact = Contact.objects.get(phone=PHONE)
    assert contact.attributes["tags"] == ["予約希望"]  # added once
    assert ContactListMembership.objects.filter(contact=contact, contact_list=contact_list).count() == 1
    assert Conversation.objects.get().assigned_to_id == world["operator"].pk
    assert set(KeywordRule.objects.filter(keyword="予約").values_list("fired_count", flat=True)) == {2}
    text_in(world, "クーポン登録")
    consent = Consent.objects.get(contact=contact)
    assert consent.method == ConsentMethod.KEYWORD and "クーポン登録" in consent.evidence
    assert Delivery.objects.filter(client_reference__startswith="optin:", contact=contact).count() == 1
    text_in(world, "クーポン登録")  # already in: no second consent or confirmation
    assert Consent.objects.filter(contact=contact).count() == 1
    consent_rule.refresh_from_db()
    assert consent_rule.fired_count == 2


def test_keyword_rule_opt_out_keyword_always_wins_and_opted_out_people_get_no_answer(world):
    reply_rule(world, keyword="停", match="contains")
    away_message_save(world["account"], text="本日の営業は終了しました。", enabled=True)
    text_in(world, "ｽﾄｯﾌﾟ", at=WEDNESDAY_NIGHT)
    contact = Contact.objects.get(phone=PHONE)
    assert contact.opted_out_at is not None
    text_in(world, "配信停止")  # matches the contains rule, but it is an opt-out keyword
    # only the opt-out confirmation went out: no rule reply, no away message
    [confirmation] = answers()
    assert "配信停止を受け付けました" in confirmation
    text_in(world, "停まりますか", at=THURSDAY_NIGHT)  # the rule matches, but the person has opted out
    assert len(answers()) == 1
    assert KeywordRule.objects.get().fired_count == 0


def test_keyword_rule_cannot_use_an_opt_out_keyword_and_checks_its_target(world):
    other = OrganizationFactory()
    foreign_reply = QuickReply.objects.create(organization=other, title="x", text="x")
    cases = [
        ({"keyword": "ＳＴＯＰ", "match": "exact", "action": "tag", "tag": "x"}, "keyword"),
        ({"keyword": "  ", "match": "exact", "action": "tag", "tag": "x"}, "keyword"),
        ({"keyword": "登録", "match": "contains", "action": "consent"}, "match"),
        ({"keyword": "a", "match": "exact", "action": "reply", "quick_reply_id": foreign_reply.pk}, "quick_reply"),
        ({"keyword": "a", "match": "exact", "action": "assign", "assignee_id": world["marketer"].pk}, "assignee"),
        ({"keyword": "a", "match": "exact", "action": "list", "contact_list_id": 999_999}, "contact_list"),
    ]
    for fields, field in cases:
        with pytest.raises(ValidationError) as error:
            keyword_rule_save(world["account"], **fields)
        assert field in error.value.message_dict, fields
    assert not KeywordRule.objects.exists()


def test_away_message_outside_business_hours_once_per_conversation_per_window(world):
    away_message_save(world["account"], text="本日の営業は終了しました。", enabled=True)
    text_in(world, "こんにちは", at=WEDNESDAY_NOON)  # open: nothing
    assert answers() == []
    text_in(world, "まだですか", at=WEDNESDAY_NIGHT)
    text_in(world, "もしもし", at=THURSDAY_EARLY)  # the same closed window (Wednesday 18:00 to Thursday 10:00)
    assert answers("away_message") == ["本日の営業は終了しました。"]
    text_in(world, "こんばんは", at=THURSDAY_NIGHT)  # the next window
    assert len(answers("away_message")) == 2
    text_in(world, "週末は？", at=SATURDAY)  # Friday evening's window, which lasts until Monday 10:00
    text_in(world, "日曜日は？", at=SUNDAY)  # Sunday is not a business day: the same window
    assert len(answers("away_message")) == 3
    text_in(world, "別の人です", at=SUNDAY, phone="+819087654321")  # another conversation
    assert len(answers("away_message", phone="+819087654321")) == 1
    assert AwayMessage.objects.get().fired_count == 4


def test_away_message_not_after_a_keyword_rule_answered_and_off_without_business_hours(world):
    away_message_save(world["account"], text="営業時間外です。", enabled=True)
    reply_rule(world)
    text_in(world, "営業時間", at=WEDNESDAY_NIGHT)
    assert answers() == [world["answer"].text]
    world["organization"].business_hours_start = None
    world["organization"].save()
    text_in(world, "こんにちは", at=THURSDAY_NIGHT, phone="+819011112222")
    assert answers(phone="+819011112222") == []
    with pytest.raises(ValidationError):
        away_message_save(world["account"], text="", enabled=True)


# -- the console page ----------------------------------------------------------------------------


def test_keyword_rule_page_is_for_admins_per_account_and_in_japanese_first(client, world):
    url = reverse("messaging:automation", args=[world["account"].pk])
    client.force_login(world["marketer"])
    assert client.get(url).status_code == 403
    client.force_login(world["admin"])
    other_account = approved_account(OrganizationFactory())
    assert client.get(reverse("messaging:automation", args=[other_account.pk])).status_code == 404
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    page = client.get(url).content.decode()
    assert "キーワードルール" in page and "不在メッセージ" in page


def test_keyword_rule_page_adds_shows_counts_toggles_and_deletes_with_htmx(client, world):
    client.force_login(world["admin"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    url = reverse("messaging:automation", args=[world["account"].pk])
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "keyword-rules"}
    refused = client.post(url, {"keyword": "停止", "match": "exact", "action": "tag", "tag": "x"}, **htmx)
    assert refused.status_code == 200  # htmx swaps only a 2xx answer: the errors show at their field
    assert "An opt-out keyword always opts the person out" in refused.content.decode()
    assert not KeywordRule.objects.exists()
    without_htmx = client.post(url, {"keyword": "", "match": "exact", "action": "tag", "tag": "x"})
    assert without_htmx.status_code == 400
    created = client.post(url, {"keyword": "営業時間", "match": "exact", "action": "reply",
                                "quick_reply": world["answer"].pk}, **htmx)
    assert created.status_code == 200 and "営業時間" in created.content.decode()
    rule = KeywordRule.objects.get()
    text_in(world, "営業時間")
    page = client.get(url).content.decode()
    assert 'data-fired="1"' in page
    client.post(reverse("messaging:automation_rule_toggle", args=[rule.pk]), **htmx)
    rule.refresh_from_db()
    assert not rule.enabled
    client.post(reverse("messaging:automation_rule_delete", args=[rule.pk]), **htmx)
    assert not KeywordRule.objects.exists()
    saved = client.post(reverse("messaging:automation_away", args=[world["account"].pk]),
                        {"text": "営業時間外です。", "enabled": "on"})
    assert saved.status_code == 302
    assert AwayMessage.objects.get(official_account=world["account"]).enabled


def test_keyword_rule_and_away_message_answers_must_fit_one_sms(world):
    long_text = "あ" * 661  # over the default SMS limit of 660 characters
    too_long = QuickReply.objects.create(organization=world["organization"], title="長文", text=long_text)
    with pytest.raises(ValidationError) as error:
        keyword_rule_save(world["account"], keyword="長文", match="exact", action="reply", quick_reply_id=too_long.pk)
    assert "quick_reply" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        away_message_save(world["account"], text=long_text, enabled=True)
    assert "text" in error.value.message_dict
