"""The inbox pages and services without the carrier: permissions, tenancy, filters, replies, quick
replies, assignment, done, repeated events, the opt-out postback and tracked links."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import GatewayKind, Notification, Role
from audit.models import AuditEvent
from campaigns.models import Classification, Contact
from core.signed_links import tracked_link_url
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.models import (
    CampaignEngagement,
    Conversation,
    ConversationMessage,
    Delivery,
    DeliveryStatus,
    QuickReply,
)
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    organization = OrganizationFactory()
    rbm = GatewayAccountFactory(organization=organization, kind=GatewayKind.RBM)
    cm = GatewayAccountFactory(organization=organization, kind=GatewayKind.CM, credentials={"callback_secret": "s"})
    account = approved_account(organization, rcs_gateway=rbm, sms_gateway=cm)
    return {"organization": organization, "account": account, "rbm": rbm, "cm": cm,
            "operator": member(organization, Role.OPERATOR, username="inbox-op"),
            "marketer": member(organization, Role.MARKETER)}


def _event(world, phone="+819012345678", text="こんにちは", event_id="msg:1", kind="inbound_text", **extra):
    return NormalizedEvent(provider="rbm", event_id=event_id, kind=kind, channel="rcs", phone=phone, text=text,
                           gateway_id=world["rbm"].pk, occurred_at=timezone.now(), raw={"messageId": event_id[4:]},
                           **extra)


def test_inbox_inbound_apply_maps_gateway_to_account_and_applies_each_event_once(world):
    inbound_apply([_event(world), _event(world, event_id="msg:2", text="二通目")])
    inbound_apply([_event(world)])  # a repeat changes nothing
    conversation = Conversation.objects.get()
    assert conversation.official_account == world["account"] and conversation.organization == world["organization"]
    assert conversation.unread_count == 2 and conversation.messages.count() == 2
    unknown = _event(world, event_id="msg:3")
    unknown.gateway_id = 999_999
    assert inbound_apply([unknown]) == []


def test_inbox_inbound_from_cm_gateway_too(world):
    event = NormalizedEvent(provider="cm", event_id="mo:abc", kind="inbound_text", channel="sms",
                            phone="+818011112222", text="SMSです", gateway_id=world["cm"].pk)
    [message] = inbound_apply([event])
    assert message.channel == "sms" and message.conversation.official_account == world["account"]


def test_inbox_optout_postback_opts_out(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        inbound_apply([_event(world, kind="inbound_postback", text="配信停止", postback="optout")])
    conversation = Conversation.objects.get()
    conversation.contact.refresh_from_db()
    assert conversation.contact.opt_out_method == "postback"
    assert conversation.messages.filter(direction="out").count() == 1  # the confirmation


def test_inbox_is_for_operators_and_scoped(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    client.force_login(world["marketer"])
    assert client.get(reverse("messaging:inbox")).status_code == 403
    client.force_login(member(OrganizationFactory(), Role.OWNER))
    assert client.get(reverse("messaging:inbox_conversation", args=[conversation.pk])).status_code == 404
    client.force_login(world["operator"])
    page = client.get(reverse("messaging:inbox")).content.decode()
    assert "こんにちは" not in page and 'class="unread-badge"' in page


def test_inbox_filters(client, world):
    inbound_apply([_event(world, phone="+819011110001", event_id="msg:a")])
    inbound_apply([_event(world, phone="+819011110002", event_id="msg:b")])
    inbound_apply([_event(world, phone="+819011110003", event_id="msg:c")])
    first, second, third = Conversation.objects.order_by("id")
    Conversation.objects.filter(pk=first.pk).update(unread_count=0, assigned_to=world["operator"])
    second.contact.opted_out_at = timezone.now()
    second.contact.save()
    client.force_login(world["operator"])

    def listed(**params):
        html = client.get(reverse("messaging:inbox_list"), params).content.decode()
        return {c.pk for c in (first, second, third) if f'data-conversation="{c.pk}"' in html}

    assert listed() == {first.pk, second.pk, third.pk}
    assert listed(show="unread") == {second.pk, third.pk}
    assert listed(show="mine") == {first.pk}
    assert listed(show="opted_out") == {second.pk}
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"])
    ConversationMessage.objects.filter(conversation=third).update(campaign=campaign)
    assert listed(campaign=campaign.pk) == {third.pk}
    client.post(reverse("messaging:inbox_status", args=[third.pk]), {"status": "done"})
    assert listed() == {first.pk, second.pk} and listed(show="done") == {third.pk}


def test_inbox_list_pages_newest_first_with_its_total_and_position(client, world, settings):
    organization, start = world["organization"], timezone.now()
    contacts = Contact.objects.bulk_create(
        [Contact(organization=organization, phone=f"+8190{index:08d}", name=f"会話{index:02d}") for index in range(55)]
    )
    Conversation.objects.bulk_create([
        Conversation(organization=organization, official_account=world["account"], contact=contact,
                     last_message_at=start - timedelta(minutes=index) if index else None)
        for index, contact in enumerate(contacts)
    ])
    client.force_login(world["operator"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    first = client.get(reverse("messaging:inbox")).content.decode()
    assert "1–50 of 55" in first and first.index("会話00") < first.index("会話01") < first.index("会話49")
    assert "会話50" not in first
    after = first.split('rel="next" href="?')[1].split('"')[0].replace("&amp;", "&")
    partial = client.get(reverse("messaging:inbox_list") + "?" + after).content.decode()
    assert "51–55 of 55" in partial and "会話54" in partial and "会話49" not in partial
    assert f"{reverse('messaging:inbox_list')}?{after}".replace("&", "&amp;") in partial  # the poll keeps the page
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    assert "1–50 / 55件" in client.get(reverse("messaging:inbox")).content.decode()


def test_inbox_on_a_phone_shows_the_list_or_the_thread_with_a_way_back(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    client.force_login(world["operator"])
    index = client.get(reverse("messaging:inbox"), {"show": "unread"}).content.decode()
    assert 'class="inbox"' in index and "inbox-back" not in index
    thread = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]), {"show": "unread"})
    html = thread.content.decode()
    assert 'class="inbox has-thread"' in html
    assert f'class="inbox-back" href="{reverse("messaging:inbox")}?show=unread"' in html


def test_inbox_open_reply_assign_and_quick_replies(client, world, django_capture_on_commit_callbacks):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    operator = world["operator"]
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]))
    assert page.status_code == 200 and "こんにちは" in page.content.decode()
    assert len(callbacks) == 1  # the read receipt task
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    client.post(reverse("messaging:inbox_quick_replies"), {"title": "営業時間", "text": "営業時間は10時〜19時です。"})
    assert QuickReply.objects.filter(organization=world["organization"]).count() == 1
    assert "営業時間は10時〜19時です。" in client.get(reverse("messaging:inbox_conversation", args=[conversation.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("messaging:inbox_reply", args=[conversation.pk]), {"text": "承知しました"},
                               HTTP_HX_REQUEST="true", HTTP_HX_TARGET="thread-messages")
    assert response.status_code == 200 and "承知しました" in response.content.decode()
    delivery = Delivery.objects.get(client_reference=f"inbox:{conversation.pk}")
    assert delivery.classification == Classification.TRANSACTION and delivery.content == {"text": "承知しました"}
    empty = client.post(reverse("messaging:inbox_reply", args=[conversation.pk]), {"text": "  "},
                        HTTP_HX_REQUEST="true", HTTP_HX_TARGET="thread-messages")
    assert "form-errors" in empty.content.decode()
    client.post(reverse("messaging:inbox_assign", args=[conversation.pk]), {"user": "me"})
    conversation.refresh_from_db()
    assert conversation.assigned_to == operator
    stranger = member(OrganizationFactory(), Role.OPERATOR)
    assert client.post(reverse("messaging:inbox_assign", args=[conversation.pk]), {"user": stranger.pk}).status_code == 404


def test_inbox_reply_to_a_campaign_counts_once(world):
    contact = ContactFactory(organization=world["organization"], phone="+819012345678")
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"])
    Delivery.objects.create(organization=world["organization"], campaign=campaign, contact=contact, channel="rcs",
                            status=DeliveryStatus.DELIVERED, sent_at=timezone.now() - timedelta(hours=1))
    inbound_apply([_event(world), _event(world, event_id="msg:2")])
    assert CampaignEngagement.objects.filter(campaign=campaign, contact=contact, kind="replied").count() == 1
    assert set(ConversationMessage.objects.values_list("campaign_id", flat=True)) == {campaign.pk}


def test_inbox_tracked_link_records_the_click_and_refuses_other_targets(client, world):
    contact = ContactFactory(organization=world["organization"])
    target = "https://shop.example.jp/sale?from=pm"
    campaign = CampaignFactory(
        organization=world["organization"], official_account=world["account"],
        content={"text": "セール", "chips": [{"type": "open_url", "label": "見る", "url": target}]},
    )
    url = tracked_link_url(campaign.pk, contact.pk, target)
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 302 and response["Location"] == target
    client.get("/" + path)
    assert CampaignEngagement.objects.filter(campaign=campaign, contact=contact, kind="clicked").count() == 1
    token = path.split("/")[2]
    evil = "https://evil.example.com/"
    assert client.get(f"/messaging/r/{token}/", {"u": evil}).status_code == 404  # not signed for it
    forged = tracked_link_url(campaign.pk, contact.pk, evil).split("/messaging/r/", 1)[1]
    assert client.get(f"/messaging/r/{forged}").status_code == 404  # signed, but not in the campaign
    js = tracked_link_url(campaign.pk, contact.pk, "javascript:alert(1)").split("/messaging/r/", 1)[1]
    assert client.get(f"/messaging/r/{js}").status_code == 404


def test_inbox_rewrite_tracked_links_keeps_other_content_and_round_trips(client, world):
    from core.rich_content import validate_rich_content
    from messaging.links import rewrite_tracked_links

    contact = ContactFactory(organization=world["organization"])
    target = "https://shop.example.jp/coat"
    document = {"carousel": {"cards": [
        {"title": "コート", "buttons": [{"type": "open_url", "label": "買う", "url": target}]},
        {"title": "電話", "buttons": [{"type": "dial", "label": "電話", "phone": "+81312345678"}]},
    ]}, "chips": [{"type": "reply", "label": "配信停止", "postback": "optout"}]}
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"], content=document)
    rewritten = rewrite_tracked_links(document, campaign.pk, contact.pk)
    validate_rich_content(rewritten)
    tracked = rewritten["carousel"]["cards"][0]["buttons"][0]["url"]
    assert tracked.startswith("http") and "/messaging/r/" in tracked and document["carousel"]["cards"][0]["buttons"][0]["url"] == target
    assert rewritten["carousel"]["cards"][1] == document["carousel"]["cards"][1] and rewritten["chips"] == document["chips"]
    response = client.get("/messaging/r/" + tracked.split("/messaging/r/", 1)[1])
    assert response.status_code == 302 and response["Location"] == target


# -- the team inbox: search, assignee filter, oldest wait, quick-reply picker, contact panel, opt-out --


def test_inbox_search_by_number_in_any_format_or_by_name(client, world):
    inbound_apply([_event(world, phone="+819012345678", event_id="msg:s1")])
    inbound_apply([_event(world, phone="+818055556666", event_id="msg:s2")])
    yamada, other = Conversation.objects.order_by("id")
    yamada.contact.name = "山田花子"
    yamada.contact.save()
    client.force_login(world["operator"])

    def found(text, **params):
        html = client.get(reverse("messaging:inbox_list"), {"q": text, **params}).content.decode()
        return {c.pk for c in (yamada, other) if f'data-conversation="{c.pk}"' in html}

    for typed in ("090-1234-5678", "09012345678", "０９０－１２３４－５６７８", "+81 90 1234 5678", "+819012345678",
                  "0081-90-1234-5678", "090-1234", "5678", "山田", "花子"):
        assert found(typed) == {yamada.pk}, typed
    assert found("080") == {other.pk}
    assert found("070") == set()
    client.post(reverse("messaging:inbox_status", args=[yamada.pk]), {"status": "done"})
    assert found("山田") == {yamada.pk}  # a search finds done conversations too
    assert found("山田", show="unread") == {yamada.pk} and found("山田", show="opted_out") == set()
    empty = client.get(reverse("messaging:inbox"), {"q": "鈴木"}).content.decode()
    assert "鈴木" in empty and 'data-conversation=' not in empty


def test_inbox_filter_by_assignee(client, world):
    for n in (1, 2, 3):
        inbound_apply([_event(world, phone=f"+81901111000{n}", event_id=f"msg:as{n}")])
    mine, colleagues, nobodys = Conversation.objects.order_by("id")
    colleague = member(world["organization"], Role.OPERATOR, username="colleague")
    Conversation.objects.filter(pk=mine.pk).update(assigned_to=world["operator"])
    Conversation.objects.filter(pk=colleagues.pk).update(assigned_to=colleague)
    client.force_login(world["operator"])

    def listed(**params):
        html = client.get(reverse("messaging:inbox_list"), params).content.decode()
        return {c.pk for c in (mine, colleagues, nobodys) if f'data-conversation="{c.pk}"' in html}

    assert listed(assignee="me") == {mine.pk}
    assert listed(assignee="none") == {nobodys.pk}
    assert listed(assignee=colleague.pk) == {colleagues.pk}
    assert listed() == {mine.pk, colleagues.pk, nobodys.pk}
    page = client.get(reverse("messaging:inbox"), {"assignee": colleague.pk}).content.decode()
    assert f'<option value="{colleague.pk}" selected>colleague</option>' in page
    assert f"assignee={colleague.pk}" in page  # the tabs and the polling keep the filter


def test_inbox_shows_the_oldest_unanswered_wait_and_lists_unanswered_oldest_first(client, world):
    now = timezone.now()
    inbound_apply([_event(world, phone="+819011110001", event_id="msg:w1")])
    inbound_apply([_event(world, phone="+819011110002", event_id="msg:w2")])
    recent, oldest = Conversation.objects.order_by("id")
    Conversation.objects.filter(pk=oldest.pk).update(waiting_since=now - timedelta(hours=3, minutes=5))
    client.force_login(world["operator"])
    page = client.get(reverse("messaging:inbox"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="oldest-waiting"' in page and "Oldest unanswered: 3\xa0hours" in page
    assert reverse("messaging:inbox_conversation", args=[oldest.pk]) in page
    html = client.get(reverse("messaging:inbox_list"), {"show": "unanswered"}).content.decode()
    assert html.index(f'data-conversation="{oldest.pk}"') < html.index(f'data-conversation="{recent.pk}"')
    client.post(reverse("messaging:inbox_status", args=[oldest.pk]), {"status": "done"})
    client.post(reverse("messaging:inbox_status", args=[recent.pk]), {"status": "done"})
    page = client.get(reverse("messaging:inbox"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Nobody is waiting for an answer." in page


def test_inbox_assigning_a_member_notifies_them(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    colleague = member(world["organization"], Role.OPERATOR, username="colleague")
    client.force_login(world["operator"])
    client.post(reverse("messaging:inbox_assign", args=[conversation.pk]), {"user": colleague.pk})
    client.post(reverse("messaging:inbox_assign", args=[conversation.pk]), {"user": "me"})
    [notification] = Notification.objects.all()
    assert notification.recipient == colleague and notification.actor == world["operator"]
    client.force_login(colleague)
    page = client.get(reverse("accounts:notifications")).content.decode()
    assert "inbox-op" in page and "090-1234-5678" in page
    client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]))  # seen without the bell
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_inbox_quick_reply_picker_sits_in_the_reply_box(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    client.force_login(world["operator"])
    url = reverse("messaging:inbox_conversation", args=[conversation.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="quick-reply-toggle"' in page and "No quick replies yet" in page
    QuickReply.objects.create(organization=world["organization"], title="営業時間", text="10時〜19時です。")
    QuickReply.objects.create(organization=OrganizationFactory(), title="他社", text="他社の定型文")
    page = client.get(url).content.decode()
    reply_box = page[page.index('class="reply-box"'):page.index("</form>", page.index('class="reply-box"'))]
    assert 'role="listbox"' in reply_box and 'data-text="10時〜19時です。"' in reply_box
    assert "他社の定型文" not in page


def test_inbox_contact_panel_shows_consent_lists_and_last_campaigns(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    contact = conversation.contact
    ConsentFactory(organization=world["organization"], contact=contact, wording_version="v3")
    shop_list = ContactListFactory(organization=world["organization"], name="渋谷店の会員")
    shop_list.contacts.add(contact)
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"], name="冬のセール")
    Delivery.objects.create(organization=world["organization"], campaign=campaign, contact=contact, channel="rcs",
                            status=DeliveryStatus.READ, sent_at=timezone.now())
    client.force_login(world["operator"])
    page = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    panel = page[page.index('id="contact-panel"'):]
    assert "Consented to promotions" in panel and "v3" in panel
    assert "渋谷店の会員" in panel and "冬のセール" in panel
    assert 'id="open-opt-out"' in panel and 'id="opt-out-dialog"' in panel
    assert 'id="opted-out-warning"' not in page


def test_inbox_opt_out_from_the_panel_goes_through_the_opt_out_service(client, world, django_capture_on_commit_callbacks):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    ConsentFactory(organization=world["organization"], contact=conversation.contact)
    client.force_login(world["marketer"])
    assert client.post(reverse("messaging:inbox_opt_out", args=[conversation.pk])).status_code == 403
    client.force_login(member(OrganizationFactory(), Role.OWNER))
    assert client.post(reverse("messaging:inbox_opt_out", args=[conversation.pk])).status_code == 404
    client.force_login(world["operator"])
    assert client.get(reverse("messaging:inbox_opt_out", args=[conversation.pk])).status_code == 405
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("messaging:inbox_opt_out", args=[conversation.pk]), {"send_confirmation": "on"})
    assert response.status_code == 302
    contact = conversation.contact
    contact.refresh_from_db()
    assert contact.opted_out_at is not None and contact.opt_out_method == "console"
    assert not contact.consents.filter(revoked_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="contact.opted_out")
    assert event.actor == world["operator"] and event.details["source"] == "inbox:inbox-op"
    assert conversation.messages.filter(direction="out").count() == 1  # the confirmation, as chosen
    page = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="opted-out-warning"' in page and 'aria-describedby="opted-out-warning"' in page
    assert 'id="open-opt-out"' not in page


def test_inbox_opted_out_warning_appears_in_the_reply_box_and_replies_follow_the_send_rules(
    client, world, django_capture_on_commit_callbacks
):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    Contact.objects.filter(pk=conversation.contact_id).update(opted_out_at=timezone.now(), opt_out_method="keyword")
    client.force_login(world["operator"])
    thread = client.get(reverse("messaging:inbox_thread", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert "This person opted out on" in thread.content.decode()  # the polled part shows it too
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("messaging:inbox_reply", args=[conversation.pk]), {"text": "ご質問の件、承知しました"},
                    HTTP_HX_REQUEST="true", HTTP_HX_TARGET="thread-messages")
    # An answer to the person's question is transactional: the send rules (messaging.services) let it through.
    assert Delivery.objects.get(client_reference=f"inbox:{conversation.pk}").classification == Classification.TRANSACTION


def test_inbox_team_parts_read_in_japanese(client, world):
    inbound_apply([_event(world)])
    conversation = Conversation.objects.get()
    client.force_login(world["operator"])
    page = client.get(reverse("messaging:inbox_conversation", args=[conversation.pk]),
                      HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    for japanese in ("電話番号または名前で検索", "最も長い返信待ち", "未返信", "連絡先", "最近のキャンペーン",
                     "この方を配信停止にしますか？", "定型文を管理"):
        assert japanese in page, japanese
