"""Campaign pages: list, composer, preview, uploads, workflow, monitor — for every role, scoped to the
member's organization."""

import csv
import io
from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import Role
from campaigns.compliance import TOKYO
from campaigns.models import Campaign, CampaignStatus, Classification, ContactListMembership
from core.personalize import personalize_text
from core.signed_links import opt_out_url
from messaging.models import CampaignCounter, Channel, DeliveryStatus, Metric
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

LEGAL = "株式会社テスト商事"
PROMO_TEXT = f"{LEGAL}より冬のセールのお知らせ。配信停止は「停止」と返信してください。"
PROMO_SMS = f"【{LEGAL}】冬のセール開催中 配信停止は「停止」と返信"
ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.MARKETER, Role.OPERATOR, Role.VIEWER]


@pytest.fixture
def org():
    organization = OrganizationFactory()
    # No quiet hours unless a test sets them, so results do not depend on the time of day.
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    return organization


@pytest.fixture
def account(org):
    return approved_account(org, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=org))


@pytest.fixture
def users(org):
    return {role: member(org, role, username=f"{role}-user") for role in ALL_ROLES}


@pytest.fixture
def audience(org):
    contact_list = ContactListFactory(organization=org, name="会員")
    for index in range(3):
        contact = ContactFactory(organization=org, name=f"会員{index}", attributes={"rank": "gold"})
        ConsentFactory(contact=contact)
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    return contact_list


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://console.example.jp"
    return settings.MEDIA_ROOT


def login(client, user):
    """Sign in and read pages in English (the product's default language is Japanese)."""
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def campaign_for(org, account, user, **kwargs):
    values = {
        "organization": org,
        "official_account": account,
        "created_by": user,
        "classification": Classification.PROMOTION,
        "content": {"text": PROMO_TEXT},
        "sms_text": PROMO_SMS,
    }
    values.update(kwargs)
    return CampaignFactory(**values)


def composer_data(account, **overrides):
    data = {
        "name": "冬のセール",
        "official_account": str(account.pk),
        "classification": "promotion",
        "kind": "text",
        "text": PROMO_TEXT,
        "sms_text": PROMO_SMS,
        "ttl_seconds": "3600",
        "schedule_mode": "now",
        "scheduled_at": "",
        "recurrence": "",
        "action": "save",
    }
    data.update(overrides)
    return data


def carousel_data(account, **overrides):
    data = composer_data(account, kind="carousel", text="")
    data.update(
        {
            "carousel.width": "MEDIUM",
            "carousel.cards[0].title": "コート 30%オフ",
            "carousel.cards[0].description": f"{LEGAL} 配信停止は「停止」と返信",
            "carousel.cards[0].media.url": "https://cdn.example.jp/coat.jpg",
            "carousel.cards[0].media.height": "MEDIUM",
            "carousel.cards[0].buttons[0].type": "open_url",
            "carousel.cards[0].buttons[0].label": "購入する",
            "carousel.cards[0].buttons[0].url": "https://shop.example.jp/coat",
            "carousel.cards[0].buttons[1].type": "dial",
            "carousel.cards[0].buttons[1].label": "電話する",
            "carousel.cards[0].buttons[1].phone": "+81312345678",
            "carousel.cards[1].title": "ブーツ",
            "carousel.cards[1].description": "新作入荷",
            "carousel.cards[1].buttons[0].type": "location",
            "carousel.cards[1].buttons[0].label": "店舗を見る",
            "carousel.cards[1].buttons[0].latitude": "35.6812",
            "carousel.cards[1].buttons[0].longitude": "139.7671",
            "carousel.cards[1].buttons[1].type": "calendar",
            "carousel.cards[1].buttons[1].label": "予定に追加",
            "carousel.cards[1].buttons[1].title": "セール最終日",
            "carousel.cards[1].buttons[1].start": "2030-01-10T10:00",
            "carousel.cards[1].buttons[1].end": "2030-01-10T20:00",
            "chips[0].type": "reply",
            "chips[0].label": "配信停止",
            "chips[0].postback": "optout",
        }
    )
    data.update(overrides)
    return data


def jpeg_bytes(size=(40, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(name, content, content_type="image/jpeg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


# --- List --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ALL_ROLES)
def test_list_every_role_sees_campaigns(client, org, account, users, role):
    campaign_for(org, account, users[Role.MARKETER], name="見えるキャンペーン")
    response = login(client, users[role]).get(reverse("campaigns:list"))
    assert response.status_code == 200
    assert "見えるキャンペーン" in response.content.decode()
    can_create = reverse("campaigns:create") in response.content.decode()
    assert can_create == (role in (Role.OWNER, Role.ADMIN, Role.MARKETER))


def test_list_requires_sign_in(client):
    response = client.get(reverse("campaigns:list"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_list_empty_state_says_what_to_do(client, org, users):
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:list")).content.decode()
    assert "No campaigns yet" in body
    assert "Create your first campaign" in body
    viewer_body = login(client, users[Role.VIEWER]).get(reverse("campaigns:list")).content.decode()
    assert "Ask a marketer or an admin" in viewer_body


def test_list_filters_by_status_and_hides_other_orgs(client, org, account, users):
    campaign_for(org, account, users[Role.MARKETER], name="下書きA")
    campaign_for(org, account, users[Role.MARKETER], name="承認待ちB", status=CampaignStatus.PENDING_APPROVAL)
    other = OrganizationFactory()
    other_account = approved_account(other)
    CampaignFactory(organization=other, official_account=other_account, name="他社のキャンペーン")
    login(client, users[Role.VIEWER])
    body = client.get(reverse("campaigns:list"), {"status": "pending_approval"}).content.decode()
    assert "承認待ちB" in body and "下書きA" not in body
    assert "他社のキャンペーン" not in client.get(reverse("campaigns:list")).content.decode()
    empty = client.get(reverse("campaigns:list"), {"q": "存在しない"}).content.decode()
    assert "No campaigns match these filters" in empty


def test_list_htmx_returns_only_the_table(client, org, account, users):
    campaign_for(org, account, users[Role.MARKETER], name="部分")
    response = login(client, users[Role.VIEWER]).get(
        reverse("campaigns:list"), {"q": "部分"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="campaign-table"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="campaign-table">')
    assert "部分" in body and "<html" not in body


def test_list_shows_the_total_and_the_page_position(client, org, account, users):
    for index in range(30):
        campaign_for(org, account, users[Role.MARKETER], name=f"一覧{index:02d}")
    login(client, users[Role.VIEWER])
    first = client.get(reverse("campaigns:list")).content.decode()
    assert "1–25 of 30" in first and "一覧29" in first and "一覧04" not in first
    second = client.get(reverse("campaigns:list"), {"page": "last"}).content.decode()
    assert "26–30 of 30" in second and "一覧04" in second and "一覧05" not in second
    narrowed = client.get(reverse("campaigns:list"), {"q": "一覧1"}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="campaign-table").content.decode()
    assert "1–10 of 10" in narrowed and 'rel="next"' not in narrowed


def test_list_sorts_by_name_status_and_schedule_and_ignores_unknown_keys(client, org, account, users):
    marketer = users[Role.MARKETER]
    soon = timezone.now() + timedelta(days=1)
    campaign_for(org, account, marketer, name="B-running", status=CampaignStatus.RUNNING, started_at=timezone.now(),
                 approved_by=users[Role.ADMIN], approved_at=timezone.now())
    campaign_for(org, account, marketer, name="C-draft")
    campaign_for(org, account, marketer, name="A-scheduled", status=CampaignStatus.SCHEDULED,
                 approved_by=users[Role.ADMIN], approved_at=timezone.now(), scheduled_at=soon)
    login(client, users[Role.VIEWER])

    def order(**params):
        body = client.get(reverse("campaigns:list"), params).content.decode()
        return [name for name in sorted(("A-scheduled", "B-running", "C-draft"), key=body.index)]

    assert order() == ["A-scheduled", "C-draft", "B-running"]  # newest first
    assert order(sort="name") == ["A-scheduled", "B-running", "C-draft"]
    assert order(sort="-name") == ["C-draft", "B-running", "A-scheduled"]
    assert order(sort="status") == ["C-draft", "A-scheduled", "B-running"]  # in a campaign's life order
    assert order(sort="-schedule") == ["A-scheduled", "C-draft", "B-running"]
    for unknown in ("official_account__name", "created_by__password", "-sms_text"):
        assert order(sort=unknown) == ["A-scheduled", "C-draft", "B-running"]
    body = client.get(reverse("campaigns:list"), {"sort": "-name"}).content.decode()
    assert 'aria-sort="descending"' in body and '<input type="hidden" name="sort" value="-name">' in body


# --- Composer: roles -------------------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [(Role.OWNER, 200), (Role.ADMIN, 200), (Role.MARKETER, 200),
                                         (Role.OPERATOR, 403), (Role.VIEWER, 403)])
def test_composer_open_to_composers_only(client, org, account, users, role, status):
    assert login(client, users[role]).get(reverse("campaigns:create")).status_code == status


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_composer_post_refused_for_lookers(client, org, account, users, role):
    response = login(client, users[role]).post(reverse("campaigns:create"), composer_data(account))
    assert response.status_code == 403
    assert not Campaign.objects.exists()


def test_composer_warns_when_no_approved_account(client, org, users):
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:create")).content.decode()
    assert "No approved official account" in body


def test_composer_lists_only_approved_accounts_of_this_org(client, org, account, users):
    from tests.accounts.factories import OfficialAccountFactory

    OfficialAccountFactory(organization=org, display_name="審査中アカウント")
    other = OrganizationFactory()
    approved_account(other, display_name="他社アカウント")
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:create")).content.decode()
    assert account.display_name in body
    assert "審査中アカウント" not in body and "他社アカウント" not in body


def test_composer_offers_personalization_fields_from_contacts(client, org, account, users, audience):
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:create")).content.decode()
    assert 'data-insert="{{name}}"' in body
    assert 'data-insert="{{rank}}"' in body


# --- Composer: saving and validation --------------------------------------------------------------

def test_marketer_saves_a_text_draft(client, org, account, users, audience):
    response = login(client, users[Role.MARKETER]).post(
        reverse("campaigns:create"), composer_data(account, audience_lists=[str(audience.pk)])
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:edit", args=[campaign.pk])
    assert campaign.content == {"text": PROMO_TEXT}
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.created_by == users[Role.MARKETER]
    assert campaign.organization == org
    assert list(campaign.audience_lists.all()) == [audience]


def test_marketer_saves_a_carousel_with_buttons_and_chips(client, org, account, users):
    response = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), carousel_data(account))
    assert response.status_code == 302, response.content.decode()[:2000]
    content = Campaign.objects.get().content
    cards = content["carousel"]["cards"]
    assert len(cards) == 2
    assert cards[0]["media"] == {"url": "https://cdn.example.jp/coat.jpg", "height": "MEDIUM"}
    assert cards[0]["buttons"][0] == {"type": "open_url", "label": "購入する", "url": "https://shop.example.jp/coat"}
    assert cards[0]["buttons"][1]["phone"] == "+81312345678"
    assert cards[1]["buttons"][0]["latitude"] == pytest.approx(35.6812)
    assert cards[1]["buttons"][1]["start"] == "2030-01-10T10:00:00+09:00"
    assert content["chips"] == [{"type": "reply", "label": "配信停止", "postback": "optout"}]


def test_validation_errors_appear_beside_their_fields_and_nothing_is_lost(client, org, account, users):
    data = carousel_data(
        account,
        **{
            "carousel.cards[0].buttons[0].url": "javascript:alert(1)",
            "carousel.cards[0].buttons[1].label": "あ" * 26,
            "carousel.cards[1].title": "",
            "carousel.cards[1].description": "",
            "carousel.cards[1].buttons[0].latitude": "123",
        },
    )
    data["name"] = ""
    response = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert not Campaign.objects.exists()
    assert 'data-error-for="carousel.cards[0].buttons[0].url"' in body
    assert "Only http:// and https:// URLs are allowed." in body
    assert 'data-error-for="carousel.cards[0].buttons[1].label"' in body
    assert 'data-error-for="carousel.cards[1]"' in body
    assert 'data-error-for="carousel.cards[1].buttons[0].latitude"' in body
    # the error list sits inside the field of the same name
    field_start = body.index('data-field="carousel.cards[0].buttons[0].url"')
    assert body.index('data-error-for="carousel.cards[0].buttons[0].url"') > field_start
    assert "has-error" in body[field_start - 80: field_start]
    # what the marketer typed is all still there
    assert 'value="javascript:alert(1)"' in body
    assert "コート 30%オフ" in body
    assert 'value="https://cdn.example.jp/coat.jpg"' in body
    assert 'value="あああ' in body
    assert "This field is required." in body  # the campaign name


def test_carousel_needs_two_cards(client, org, account, users):
    data = carousel_data(account)
    data = {k: v for k, v in data.items() if not k.startswith("carousel.cards[1]")}
    body = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), data).content.decode()
    assert 'data-error-for="carousel.cards"' in body
    assert "A carousel holds 2 to 10 cards" in body


def test_sms_text_limit_is_checked_on_the_server(client, org, account, users):
    data = composer_data(account, sms_text="あ" * 661)
    body = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), data).content.decode()
    assert "The SMS text is 661 characters long; the limit is 660." in body
    assert not Campaign.objects.exists()


def test_text_over_2730_characters_is_refused(client, org, account, users):
    data = composer_data(account, text="あ" * 2731)
    body = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), data).content.decode()
    assert 'data-error-for="text"' in body
    assert "Is 2731 characters long; the limit is 2730." in body


def test_schedule_at_a_time_and_recurring(client, org, account, users):
    login(client, users[Role.MARKETER])
    when = (timezone.now() + timedelta(days=2)).astimezone(TOKYO).replace(hour=10, minute=0)
    client.post(reverse("campaigns:create"),
                composer_data(account, schedule_mode="at", scheduled_at=when.strftime("%Y-%m-%dT%H:%M")))
    campaign = Campaign.objects.get()
    assert campaign.scheduled_at == when.replace(second=0, microsecond=0)
    assert campaign.recurrence == ""
    client.post(reverse("campaigns:edit", args=[campaign.pk]),
                composer_data(account, schedule_mode="recurring", recurrence="0 10 * * 1"))
    campaign.refresh_from_db()
    assert campaign.recurrence == "0 10 * * 1" and campaign.scheduled_at is None
    body = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Every Monday at 10:00" in body
    bad = client.post(reverse("campaigns:edit", args=[campaign.pk]),
                      composer_data(account, schedule_mode="recurring", recurrence="* * * * *"))
    assert "Sending every minute is not allowed" in bad.content.decode()


def test_recurrence_chosen_in_words_and_shown_in_words(client, org, account, users):
    login(client, users[Role.MARKETER])
    client.post(reverse("campaigns:create"),
                composer_data(account, schedule_mode="recurring", repeat_kind="weekly", repeat_time="10:00",
                              repeat_weekdays=["1", "3"]))
    campaign = Campaign.objects.get()
    assert campaign.recurrence == "0 10 * * 1,3"
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert 'name="repeat_kind" value="weekly" id="id_repeat_kind_1" checked' in edit
    assert 'value="3" id="id_repeat_weekdays_2" checked' in edit
    assert "↻ Every Monday, Wednesday at 10:00" in edit  # the live reading under the fields
    missing = client.post(reverse("campaigns:edit", args=[campaign.pk]),
                          composer_data(account, schedule_mode="recurring", repeat_kind="monthly", repeat_time="09:00"))
    assert 'data-field="repeat_day"' in missing.content.decode()
    assert "Choose the day of the month." in missing.content.decode()
    campaign.refresh_from_db()
    assert campaign.recurrence == "0 10 * * 1,3"
    listing = client.get(reverse("campaigns:list")).content.decode()
    assert "↻ Every Monday, Wednesday at 10:00" in listing
    detail = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "↻ Every Monday, Wednesday at 10:00" in detail
    client.cookies["django_language"] = "ja"
    assert "↻ 毎週月曜・水曜 10:00" in client.get(reverse("campaigns:list")).content.decode()


def test_a_crontab_without_words_stays_raw(client, org, account, users):
    login(client, users[Role.MARKETER])
    client.post(reverse("campaigns:create"),
                composer_data(account, schedule_mode="recurring", repeat_kind="custom", recurrence="0 9,18 * * 1-5"))
    campaign = Campaign.objects.get()
    assert campaign.recurrence == "0 9,18 * * 1-5"
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert 'name="repeat_kind" value="custom" id="id_repeat_kind_3" checked' in edit
    assert "↻ <code>0 9,18 * * 1-5</code>" in client.get(reverse("campaigns:list")).content.decode()
    assert "↻ <code>0 9,18 * * 1-5</code>" in client.get(
        reverse("campaigns:detail", args=[campaign.pk])).content.decode()


def test_builder_operations_add_cards_and_cap_buttons(client, org, account, users):
    login(client, users[Role.MARKETER])
    data = carousel_data(account, op="add_card")
    response = client.post(reverse("campaigns:compose_builder"), data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response["HX-Trigger"] == "builderChanged"
    assert 'name="carousel.cards[2].title"' in body
    assert "コート 30%オフ" in body  # typed values survive the re-render
    for _ in range(5):
        data = carousel_data(account, op="add_button:1")
        data.update({f"carousel.cards[1].buttons[{i}].type": "reply" for i in range(2, 4)})
        data.update({f"carousel.cards[1].buttons[{i}].label": f"B{i}" for i in range(2, 4)})
        body = client.post(reverse("campaigns:compose_builder"), data).content.decode()
    assert 'name="carousel.cards[1].buttons[3].label"' in body
    assert 'name="carousel.cards[1].buttons[4].label"' not in body


def test_builder_operation_without_javascript_rerenders_the_page(client, org, account, users):
    response = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"),
                                                        carousel_data(account, op="remove_card:1"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="carousel.cards[1].title"' not in body
    assert not Campaign.objects.exists()


def test_edit_only_drafts(client, org, account, users):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.PENDING_APPROVAL)
    response = login(client, users[Role.MARKETER]).get(reverse("campaigns:edit", args=[campaign.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])


def test_edit_loads_the_saved_carousel(client, org, account, users):
    login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), carousel_data(account))
    campaign = Campaign.objects.get()
    body = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert 'value="carousel" checked' in body
    assert 'value="2030-01-10T10:00"' in body
    assert "ブーツ" in body


# --- Uploads ---------------------------------------------------------------------------------------

def test_upload_refuses_text_bytes_named_jpg(client, org, account, users, media_root):
    login(client, users[Role.MARKETER])
    response = client.post(
        reverse("campaigns:media_upload"),
        {"media.upload": upload("photo.jpg", b"just some text, not a picture"), "media.kind": "image"},
        HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="media.upload",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "This file type is not supported" in body
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_upload_accepts_a_real_jpeg_and_keeps_its_url(client, org, account, users, media_root):
    login(client, users[Role.MARKETER])
    response = client.post(
        reverse("campaigns:media_upload"),
        {"carousel.cards[0].media.upload": upload("whatever.png", jpeg_bytes(), "application/octet-stream")},
        HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="carousel.cards[0].media.upload",
    )
    body = response.content.decode()
    stored = list((media_root / "media" / str(org.id)).glob("*.jpg"))
    assert len(stored) == 1
    url = f"https://console.example.jp/media/media/{org.id}/{stored[0].name}"
    assert f'name="carousel.cards[0].media.url" value="{url}"' in body
    assert response["HX-Trigger"] == "builderChanged"
    with Image.open(stored[0]) as image:
        assert image.format == "JPEG"


@pytest.mark.parametrize(
    "name,content,slot,accepted,kind",
    [
        ("doc.pdf", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "media", True, "file"),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, "media", True, "video"),
        ("clip.webm", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 64, "media", True, "video"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "media", False, None),
        ("doc.pdf", b"%PDF-1.7\n", "card.media", False, None),
        ("fake.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "media", False, None),
    ],
)
def test_uploads_are_recognised_by_their_bytes(client, org, account, users, name, content, slot, accepted, kind):
    login(client, users[Role.MARKETER])
    field = f"{slot}.upload"
    body = client.post(reverse("campaigns:media_upload"), {field: upload(name, content, "text/plain")},
                       HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME=field).content.decode()
    assert ('https://console.example.jp/media/' in body) == accepted, body
    if kind:
        assert f'<option value="{kind}" selected>' in body
    else:
        assert 'class="errorlist"' in body


def test_upload_size_limit_stops_reading(rf):
    from django.core.files.uploadhandler import StopUpload

    from campaigns.media import SizeLimitUploadHandler

    handler = SizeLimitUploadHandler(rf.post("/"), limit=10)
    handler.receive_data_chunk(b"x" * 8, 0)
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"x" * 8, 8)
    assert handler.too_large


def test_upload_refused_for_viewers(client, org, users):
    login(client, users[Role.VIEWER])
    response = client.post(reverse("campaigns:media_upload"), {"media.upload": upload("a.jpg", jpeg_bytes())},
                           HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="media.upload")
    assert response.status_code == 403


def test_upload_with_the_whole_form_keeps_the_url_when_the_form_has_errors(client, org, account, users):
    data = composer_data(account, kind="media", text="", name="")
    data["media.upload"] = upload("p.jpg", jpeg_bytes())
    body = login(client, users[Role.MARKETER]).post(reverse("campaigns:create"), data).content.decode()
    assert not Campaign.objects.exists()
    assert f'name="media.url" value="https://console.example.jp/media/media/{org.id}/' in body


# --- Preview ---------------------------------------------------------------------------------------

def test_preview_renders_the_carousel_with_buttons_and_chips(client, org, account, users, audience):
    login(client, users[Role.MARKETER])
    contact = audience.contacts.order_by("id").first()
    data = carousel_data(account, preview_mode="rcs", sample_contact=str(contact.pk),
                         **{"carousel.cards[0].title": "{{name}}様へ {{rank}}会員特典"})
    response = client.post(reverse("campaigns:compose_preview"), data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "rc-carousel" in body
    assert body.count('class="rc-card"') == 2
    assert "会員0様へ gold会員特典" in body
    assert "購入する" in body and "店舗を見る" in body
    assert 'class="rc-chip"' in body and "配信停止" in body
    assert account.display_name in body
    assert 'id="compliance" class="compliance" hx-swap-oob="true"' in body


def test_preview_renders_the_sms_view_with_segments(client, org, account, users):
    login(client, users[Role.MARKETER])
    sms = "あ" * 71
    body = client.post(reverse("campaigns:compose_preview"),
                       composer_data(account, sms_text=sms, preview_mode="sms")).content.decode()
    assert "sms-bubble" in body
    assert "rc-card" not in body
    assert "UCS-2" in body and "71 / 660 characters" in body and "2 segments" in body
    assert account.sms_sender_id in body


def test_preview_shows_exactly_what_the_engine_sends(client, org, account, users, audience):
    """The preview fills placeholders with core.personalize and the engine's extras (the contact's
    signed opt-out link): {{phone}} is the `phone` attribute, an unknown placeholder is blank."""
    login(client, users[Role.MARKETER])
    contact = audience.contacts.order_by("id").first()
    text = "A{{name}}B{{ rank }}C{{phone}}D{{unknown}}E"
    sms = "{{name}}様 {{rank}} {{phone}} {{unknown}} 停止は{{opt_out_url}}"
    extras = {"opt_out_url": opt_out_url(org.pk, contact.pk)}
    sent_text = personalize_text(text, contact.name, contact.attributes, extras)
    sent_sms = personalize_text(sms, contact.name, contact.attributes, extras)
    assert sent_text == f"A{contact.name}BgoldCDE"
    for mode in ("rcs", "sms"):
        response = client.post(reverse("campaigns:compose_preview"),
                               composer_data(account, text=text, sms_text=sms, preview_mode=mode,
                                             sample_contact=str(contact.pk)))
        preview = response.context["preview"]
        assert preview["doc"]["text"] == sent_text
        assert preview["sms_text"] == sent_sms
        assert (sent_text if mode == "rcs" else sent_sms.split("停止は")[0]) in response.content.decode()


def test_preview_lists_display_rule_problems_and_quiet_hours(client, org, account, users):
    org.quiet_hours_start, org.quiet_hours_end = time(21, 0), time(9, 0)
    org.save()
    login(client, users[Role.MARKETER])
    night = (timezone.now() + timedelta(days=1)).astimezone(TOKYO).replace(hour=23, minute=0)
    data = composer_data(account, text="セールです", sms_text="セールです", schedule_mode="at",
                         scheduled_at=night.strftime("%Y-%m-%dT%H:%M"))
    body = client.post(reverse("campaigns:compose_preview"), data).content.decode()
    assert f"The +Message content must name the sender’s formal name “{LEGAL}”." in body
    assert "The SMS text must say how to opt out" in body
    assert "within quiet hours (21:00–09:00, Japan time)" in body
    transactional = client.post(
        reverse("campaigns:compose_preview"), {**data, "classification": "transaction"}
    ).content.decode()
    assert "Display rules met" in transactional
    assert "quiet hours (21:00" not in transactional


# --- Audience --------------------------------------------------------------------------------------

def test_audience_count_after_opt_outs(client, org, account, users, audience):
    opted = audience.contacts.order_by("id").first()
    opted.opted_out_at = timezone.now()
    opted.save()
    login(client, users[Role.MARKETER])
    body = client.post(reverse("campaigns:compose_audience"),
                       {"audience_lists": [str(audience.pk)], "classification": "promotion"}).content.decode()
    assert '<span class="value">2</span>' in body
    assert "1 opted out" in body
    assert 'id="sample-contact-wrap" hx-swap-oob="true"' in body and "会員1" in body


def test_audience_count_leaves_out_people_over_the_frequency_cap(client, org, account, users, audience):
    org.frequency_cap_count, org.frequency_cap_days = 1, 7
    org.save()
    earlier = campaign_for(org, account, users[Role.MARKETER])
    DeliveryFactory(campaign=earlier, contact=audience.contacts.order_by("id").first())
    login(client, users[Role.MARKETER])
    data = {"audience_lists": [str(audience.pk)], "classification": "promotion"}
    body = client.post(reverse("campaigns:compose_audience"), data).content.decode()
    assert '<span class="value">2</span>' in body
    assert "1 over the frequency cap" in body
    transactional = client.post(reverse("campaigns:compose_audience"),
                                {**data, "classification": "transaction"}).content.decode()
    assert '<span class="value">3</span>' in transactional and "frequency cap" not in transactional
    # The launch confirmation counts the same way.
    approved = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.APPROVED,
                            approved_by=users[Role.ADMIN], approved_at=timezone.now())
    approved.audience_lists.add(audience)
    page = client.get(reverse("campaigns:detail", args=[approved.pk])).content.decode()
    assert "Send to 2 recipients" in page
    assert "1 person over the frequency cap is left out." in page


def test_audience_ignores_other_orgs_lists(client, org, account, users):
    other_list = ContactListFactory(organization=OrganizationFactory())
    body = login(client, users[Role.MARKETER]).post(
        reverse("campaigns:compose_audience"), {"audience_lists": [str(other_list.pk)]}
    ).content.decode()
    assert "Choose at least one list" in body


# --- Campaign page and workflow --------------------------------------------------------------------

@pytest.mark.parametrize("role", ALL_ROLES)
def test_detail_every_role_can_look(client, org, account, users, role):
    campaign = campaign_for(org, account, users[Role.MARKETER], content=carousel_data_document())
    body = login(client, users[role]).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert campaign.name in body
    assert "rc-carousel" in body and "sms-bubble" in body
    assert ("Submit for approval" in body) == (role in (Role.OWNER, Role.ADMIN, Role.MARKETER))


def carousel_data_document():
    return {
        "carousel": {"cards": [
            {"title": "A", "description": f"{LEGAL} 配信停止は「停止」と返信",
             "buttons": [{"type": "open_url", "label": "開く", "url": "https://shop.example.jp/"}]},
            {"title": "B"},
        ]},
        "chips": [{"type": "reply", "label": "配信停止", "postback": "optout"}],
    }


def test_marketer_submits_and_admin_approves(client, org, account, users, audience):
    login(client, users[Role.MARKETER])
    response = client.post(reverse("campaigns:create"),
                           composer_data(account, action="submit", audience_lists=[str(audience.pk)]))
    campaign = Campaign.objects.get()
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PENDING_APPROVAL
    assert client.post(reverse("campaigns:approve", args=[campaign.pk])).status_code == 403
    body = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Waiting for an owner or admin to approve" in body  # said, not a silently missing button
    login(client, users[Role.ADMIN])
    body = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert reverse("campaigns:approve", args=[campaign.pk]) in body
    assert "Waiting for an owner or admin to approve" not in body
    client.post(reverse("campaigns:approve", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED
    assert campaign.approved_by == users[Role.ADMIN]


def test_submit_refused_with_the_reason_when_display_rules_are_missing(client, org, account, users, audience):
    login(client, users[Role.MARKETER])
    response = client.post(reverse("campaigns:create"), composer_data(
        account, action="submit", text="セール", sms_text="セール", audience_lists=[str(audience.pk)]), follow=True)
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.DRAFT
    assert "must name the sender’s formal name" in response.content.decode()


def test_admin_sends_back_with_a_reason(client, org, account, users):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.PENDING_APPROVAL)
    login(client, users[Role.ADMIN])
    client.post(reverse("campaigns:send_back", args=[campaign.pk]), {"reason": "画像を差し替えてください"})
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.status_reason == "画像を差し替えてください"
    login(client, users[Role.MARKETER])
    body = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert "画像を差し替えてください" in body


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_lookers_cannot_submit_or_launch(client, org, account, users, role):
    draft = campaign_for(org, account, users[Role.MARKETER])
    login(client, users[role])
    assert client.post(reverse("campaigns:submit", args=[draft.pk])).status_code == 403
    assert client.post(reverse("campaigns:launch", args=[draft.pk])).status_code == 403
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT


def test_launch_dialog_states_the_audience_size(client, org, account, users, audience):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.APPROVED,
                            approved_by=users[Role.ADMIN], approved_at=timezone.now())
    campaign.audience_lists.add(audience)
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert 'id="launch-dialog"' in body
    assert "Send to 3 recipients" in body


def test_launch_starts_a_transactional_campaign(client, org, account, users, audience, django_capture_on_commit_callbacks):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.APPROVED,
                            classification=Classification.TRANSACTION, content={"text": "発送しました"},
                            sms_text="発送しました", approved_by=users[Role.ADMIN], approved_at=timezone.now())
    campaign.audience_lists.add(audience)
    login(client, users[Role.MARKETER])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("campaigns:launch", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert response["Location"] == reverse("campaigns:monitor", args=[campaign.pk])


def test_test_send_calls_the_test_send_service(client, org, account, users, monkeypatch):
    campaign = campaign_for(org, account, users[Role.MARKETER])
    calls = []

    def fake_send(campaign_arg, phone, user, request=None):
        calls.append((campaign_arg.pk, phone, user))
        return DeliveryFactory.build(campaign=None, organization=org)

    monkeypatch.setattr("campaigns.views.campaign_page.test_send_service", fake_send)
    login(client, users[Role.MARKETER])
    response = client.post(reverse("campaigns:test_send", args=[campaign.pk]), {"phone": "090-1234-5678"},
                           HTTP_HX_REQUEST="true")
    assert "Test message sent to 090-1234-5678" in response.content.decode()
    assert calls == [(campaign.pk, "+819012345678", users[Role.MARKETER])]
    refused = client.post(reverse("campaigns:test_send", args=[campaign.pk]), {"phone": "050-1234-5678"},
                          HTTP_HX_REQUEST="true").content.decode()
    assert "050 numbers are IP phones" in refused
    assert len(calls) == 1
    login(client, users[Role.VIEWER])
    assert client.post(reverse("campaigns:test_send", args=[campaign.pk]), {"phone": "09012345678"}).status_code == 403


# --- Launch inside quiet hours ----------------------------------------------------------------------
# The clock is frozen (django.utils.timezone.now, which the quiet-hours service and the engine read);
# the confirmation and the message after must say what the launch will really do.

QUIET_TEXTS = {
    "en": {
        "button": "Schedule for 09:00 (Japan time)",
        "held_now": "It is quiet hours now (21:00–09:00, Japan time): nothing is sent now. The campaign is "
                    "scheduled and sending starts at 2026/12/04 09:00 (Japan time)",
        "held_at": "The chosen time, 2026/12/03 23:00, is within quiet hours (21:00–09:00, Japan time): sending "
                   "starts at 2026/12/04 09:00 (Japan time)",
        "scheduled": "Scheduled for 09:00 (Japan time, 2026/12/04), when quiet hours end.",
        "note": "Held for quiet hours until 09:00 (Japan time).",
        "immediately": "Sending starts immediately",
        "started": "Sending has started.",
        "title": "Schedule this campaign?",
    },
    "ja": {
        "button": "09:00（日本時間）に予約する",
        "held_now": "現在は配信自粛時間帯（日本時間 21:00〜09:00）のため、今は送信しません。予約され、"
                    "配信自粛時間帯が終わる 2026/12/04 09:00（日本時間）に送信を始めます",
        "held_at": "指定した日時 2026/12/03 23:00 は配信自粛時間帯（日本時間 21:00〜09:00）です。"
                   "配信自粛時間帯が終わる 2026/12/04 09:00（日本時間）に送信を始めます",
        "scheduled": "09:00に配信を予約しました（2026/12/04、日本時間）。配信自粛時間帯が終わる時刻です。",
        "note": "配信自粛時間帯のため 09:00（日本時間）まで送信を保留しています。",
        "immediately": "すぐに送信が始まり",
        "started": "開始しました",
        "title": "このキャンペーンを予約しますか？",
    },
}


@pytest.fixture
def clock(monkeypatch):
    """Freeze “now” at a Japan wall-clock time, for every caller of django.utils.timezone.now."""

    def freeze(wall: str):
        moment = datetime.fromisoformat(wall).replace(tzinfo=TOKYO)
        monkeypatch.setattr(timezone, "now", lambda: moment)
        return moment

    return freeze


def approved_promotion(org, account, users, audience, **kwargs):
    org.quiet_hours_start, org.quiet_hours_end = time(21, 0), time(9, 0)
    org.save()
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.APPROVED,
                            approved_by=users[Role.ADMIN], approved_at=timezone.now(), **kwargs)
    campaign.audience_lists.add(audience)
    return campaign


def read_as(client, user, language):
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def launch_dialog(page: str) -> str:
    return page[page.index('id="launch-dialog"'):page.index("</dialog>", page.index('id="launch-dialog"'))]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_launch_inside_quiet_hours_says_it_schedules_for_when_they_end(
    client, org, account, users, audience, clock, language, django_capture_on_commit_callbacks
):
    from campaigns.compliance import quiet_hours_hold

    texts = QUIET_TEXTS[language]
    clock("2026-12-03T22:30:00")
    campaign = approved_promotion(org, account, users, audience)
    read_as(client, users[Role.MARKETER], language)
    dialog = launch_dialog(client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode())
    assert texts["button"] in dialog
    assert texts["held_now"] in dialog
    assert texts["immediately"] not in dialog
    assert texts["title"] in dialog

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("campaigns:launch", args=[campaign.pk]), follow=True)
    page = response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    # The time the confirmation named is the engine's own decision, and what the launch scheduled.
    opens = quiet_hours_hold(org, Classification.PROMOTION)
    assert opens == campaign.scheduled_at == datetime(2026, 12, 4, 9, 0, tzinfo=TOKYO)
    assert texts["scheduled"] in page
    assert texts["note"] in page
    assert texts["started"] not in page


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_launch_scheduled_inside_quiet_hours_names_when_sending_really_starts(
    client, org, account, users, audience, clock, language
):
    texts = QUIET_TEXTS[language]
    clock("2026-12-03T20:00:00")
    campaign = approved_promotion(org, account, users, audience,
                                  scheduled_at=datetime(2026, 12, 3, 23, 0, tzinfo=TOKYO))
    read_as(client, users[Role.MARKETER], language)
    dialog = launch_dialog(client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode())
    assert texts["held_at"] in dialog
    assert texts["button"] in dialog


def test_outside_quiet_hours_the_launch_sends_at_once_and_says_so(
    client, org, account, users, audience, clock, django_capture_on_commit_callbacks
):
    texts = QUIET_TEXTS["en"]
    clock("2026-12-03T12:00:00")
    campaign = approved_promotion(org, account, users, audience)
    read_as(client, users[Role.MARKETER], "en")
    dialog = launch_dialog(client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode())
    assert "Send to 3 recipients" in dialog and texts["immediately"] in dialog
    assert "Schedule for" not in dialog
    with django_capture_on_commit_callbacks(execute=False):
        page = client.post(reverse("campaigns:launch", args=[campaign.pk]), follow=True).content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert texts["started"] in page


def test_a_transactional_launch_at_night_is_not_held(client, org, account, users, audience, clock):
    clock("2026-12-03T23:30:00")
    campaign = approved_promotion(org, account, users, audience, classification=Classification.TRANSACTION,
                                  content={"text": "発送しました"}, sms_text="発送しました")
    dialog = launch_dialog(read_as(client, users[Role.MARKETER], "en").get(
        reverse("campaigns:detail", args=[campaign.pk])).content.decode())
    assert "Send to 3 recipients" in dialog and "Schedule for" not in dialog


# --- Tenant isolation ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name,method",
    [("detail", "get"), ("edit", "get"), ("monitor", "get"), ("monitor_progress", "get"),
     ("monitor_recipients", "get"), ("monitor_export", "get"), ("submit", "post"), ("approve", "post"),
     ("launch", "post"), ("pause", "post"), ("resume", "post"), ("cancel", "post"), ("test_send", "post")],
)
def test_another_orgs_campaign_is_404(client, org, users, name, method):
    other = OrganizationFactory()
    foreign = CampaignFactory(organization=other, official_account=approved_account(other))
    login(client, users[Role.OWNER])
    response = getattr(client, method)(reverse(f"campaigns:{name}", args=[foreign.pk]))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == CampaignStatus.DRAFT


# --- Monitor ---------------------------------------------------------------------------------------

def running_campaign(org, account, users, status=CampaignStatus.RUNNING):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=status, approved_by=users[Role.ADMIN],
                            approved_at=timezone.now(), started_at=timezone.now())
    minute = timezone.now().replace(second=0, microsecond=0)
    rows = [
        ("", Metric.TARGETED, "", 100), ("rcs", Metric.SENT, "", 60), ("sms", Metric.SENT, "", 20),
        ("rcs", Metric.DELIVERED, "", 55), ("sms", Metric.DELIVERED, "", 18), ("rcs", Metric.READ, "", 40),
        ("sms", Metric.FELL_BACK, "not_capable", 15), ("sms", Metric.FELL_BACK, "ttl_expired", 5),
        ("", Metric.FAILED, "invalid_number", 4), ("", Metric.CLICKED, "", 7),
    ]
    for channel, metric, detail, count in rows:
        CampaignCounter.objects.create(campaign=campaign, minute=minute - timedelta(minutes=1), channel=channel,
                                       metric=metric, detail=detail, count=count)
    return campaign


@pytest.mark.parametrize("role,status", [(Role.OWNER, 200), (Role.ADMIN, 200), (Role.MARKETER, 200),
                                         (Role.OPERATOR, 200), (Role.VIEWER, 403)])
def test_monitor_roles(client, org, account, users, role, status):
    campaign = running_campaign(org, account, users)
    response = login(client, users[role]).get(reverse("campaigns:monitor", args=[campaign.pk]))
    assert response.status_code == status
    assert login(client, users[role]).get(
        reverse("campaigns:monitor_export", args=[campaign.pk])).status_code == status


def test_monitor_shows_funnel_split_failures_and_chart(client, org, account, users):
    campaign = running_campaign(org, account, users)
    body = login(client, users[Role.OPERATOR]).get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in body
    assert "84.0%" in body  # (80 sent + 4 failed) of 100 targeted
    assert "Not +Message capable" in body and "Not delivered before the TTL" in body
    assert "invalid_number" in body
    assert '<polyline class="series sent"' in body
    assert "Clicked" in body


def test_monitor_shows_who_was_left_out_with_their_reasons(client, org, account, users):
    campaign = running_campaign(org, account, users)
    minute = timezone.now().replace(second=0, microsecond=0)
    for detail, count in (("opted_out", 2), ("no_consent", 1), ("frequency_cap", 5)):
        CampaignCounter.objects.create(campaign=campaign, minute=minute, channel="", metric=Metric.SKIPPED,
                                       detail=detail, count=count)
    body = login(client, users[Role.OPERATOR]).get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert "Left out before sending: 2 opted out, 1 without consent." in body
    assert "5 people over the frequency cap." in body
    client.cookies["django_language"] = "ja"
    ja = client.get(reverse("campaigns:monitor", args=[campaign.pk]))
    assert "頻度上限超過 5 人。" in ja.content.decode()


def test_progress_partial_polls_while_running_and_stops_with_286(client, org, account, users):
    campaign = running_campaign(org, account, users)
    login(client, users[Role.OPERATOR])
    url = reverse("campaigns:monitor_progress", args=[campaign.pk])
    running = client.get(url, HTTP_HX_REQUEST="true")
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.content.decode()
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.COMPLETED, finished_at=timezone.now())
    finished = client.get(url, HTTP_HX_REQUEST="true")
    assert finished.status_code == 286
    assert "every 2s" not in finished.content.decode()
    assert "Finished" in finished.content.decode()


def test_pause_resume_cancel_rights(client, org, account, users, django_capture_on_commit_callbacks):
    campaign = running_campaign(org, account, users)
    login(client, users[Role.VIEWER])
    assert client.post(reverse("campaigns:pause", args=[campaign.pk])).status_code == 403
    login(client, users[Role.OPERATOR])
    client.post(reverse("campaigns:pause", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert client.post(reverse("campaigns:resume", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("campaigns:cancel", args=[campaign.pk])).status_code == 403
    login(client, users[Role.MARKETER])
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("campaigns:resume", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    login(client, users[Role.ADMIN])
    client.post(reverse("campaigns:cancel", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED


def test_monitor_controls_match_the_role(client, org, account, users):
    campaign = running_campaign(org, account, users)
    operator_body = login(client, users[Role.OPERATOR]).get(
        reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert reverse("campaigns:pause", args=[campaign.pk]) in operator_body
    assert reverse("campaigns:cancel", args=[campaign.pk]) not in operator_body
    admin_body = login(client, users[Role.ADMIN]).get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert reverse("campaigns:cancel", args=[campaign.pk]) in admin_body
    assert "data-confirm=" in admin_body


def test_recipient_table_search_filters_and_keyset_pages(client, org, account, users):
    campaign = running_campaign(org, account, users)
    for index in range(55):
        contact = ContactFactory(organization=org, phone=f"+8180{20000000 + index:08d}")
        DeliveryFactory(campaign=campaign, contact=contact, status=DeliveryStatus.QUEUED)
    target = ContactFactory(organization=org, phone="+819011112222", name="探す人")
    DeliveryFactory(campaign=campaign, contact=target, status=DeliveryStatus.READ, channel=Channel.RCS)
    login(client, users[Role.OPERATOR])
    url = reverse("campaigns:monitor_recipients", args=[campaign.pk])
    first = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert first.count("<tr>") == 1 + 50
    assert "1–50 of 56" in first and "after=" in first
    after = first.split("after=")[1].split('"')[0]
    second = client.get(url, {"after": after}).content.decode()
    assert second.count("<tr>") == 1 + 6
    assert "51–56 of 56" in second and "after=" not in second
    assert f'hx-get="{url}?before=' in second  # the previous page swaps only the table
    found = client.get(url, {"q": "090-1111-2222"}).content.decode()
    assert "探す人" in found and found.count("<tr>") == 2 and "1–1 of 1" in found
    by_status = client.get(url, {"status": str(DeliveryStatus.READ), "channel": "rcs"}).content.decode()
    assert "探す人" in by_status and by_status.count("<tr>") == 2
    assert "探す人" not in client.get(url, {"channel": "sms"}).content.decode()


def test_csv_export_neutralises_formula_cells(client, org, account, users):
    campaign = running_campaign(org, account, users)
    for index, name in enumerate(["=HYPERLINK(\"http://evil\")", "+SUM(A1)", "-1", "@cmd", "\tTab", "\rCR", "普通"]):
        contact = ContactFactory(organization=org, name=name, phone=f"+8170{30000000 + index:08d}")
        DeliveryFactory(campaign=campaign, contact=contact, error_reason="=2+3" if index == 0 else "")
    response = login(client, users[Role.OPERATOR]).get(reverse("campaigns:monitor_export", args=[campaign.pk]))
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][1] == "Mobile number"
    names = [row[2] for row in rows[1:]]
    assert names == ["'=HYPERLINK(\"http://evil\")", "'+SUM(A1)", "'-1", "'@cmd", "'\tTab", "'\rCR", "普通"]
    assert rows[1][7] == "'=2+3"
    # numbers as the monitor shows them (070-3000-0000): a digit first, nothing to neutralise, no visible '
    assert [row[1] for row in rows[1:]] == [f"070-{3000 + index // 10000:04d}-{index:04d}" for index in range(7)]


def test_chart_svg_scales_series():
    from campaigns.views.monitor import chart_svg

    start = datetime(2026, 1, 1, 1, 0, tzinfo=TOKYO)
    series = [{"at": start + timedelta(minutes=i), "sent": i * 10, "delivered": i * 8, "read": i * 5}
              for i in range(5)]
    chart = chart_svg(series, 60)
    assert not chart["empty"]
    assert [line["key"] for line in chart["lines"]] == ["sent", "delivered", "read"]
    assert chart["lines"][0]["total"] == 100
    assert "01:00" in [tick["label"] for tick in chart["ticks"]]
    assert chart_svg([])["empty"]


def test_submit_refusal_is_shown_beside_the_fields_and_the_draft_kept(client, org, account, users):
    login(client, users[Role.MARKETER])
    response = client.post(reverse("campaigns:create"), composer_data(account, action="submit"))
    campaign = Campaign.objects.get()
    body = response.content.decode()
    assert response.status_code == 200
    assert campaign.status == CampaignStatus.DRAFT
    assert 'data-field="audience_lists"' in body
    assert "Choose at least one audience list or segment." in body
    assert f'action="{reverse("campaigns:edit", args=[campaign.pk])}"' in body


def test_progress_partial_does_not_poll_a_draft(client, org, account, users):
    campaign = campaign_for(org, account, users[Role.MARKETER])
    login(client, users[Role.ADMIN])
    response = client.get(reverse("campaigns:monitor_progress", args=[campaign.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    page = client.get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert "every 2s" not in page
    assert "No recipients yet" in page


def test_launch_dialog_refuses_while_display_rules_are_missing(client, org, account, users, audience):
    campaign = campaign_for(org, account, users[Role.MARKETER], status=CampaignStatus.APPROVED,
                            approved_by=users[Role.ADMIN], approved_at=timezone.now(), sms_text="セール")
    campaign.audience_lists.add(audience)
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "This promotion cannot be launched yet" in body
    response = client.post(reverse("campaigns:launch", args=[campaign.pk]), follow=True)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED
    assert "The SMS text must name the sender’s formal name" in response.content.decode()


def test_test_send_through_the_real_service(client, org, account, users, django_capture_on_commit_callbacks):
    from messaging.models import Delivery
    from messaging.models import TestNumber as Number

    Number.objects.create(organization=org, phone="+819012345678", confirmed_at=timezone.now())
    campaign = campaign_for(org, account, users[Role.MARKETER], classification=Classification.TRANSACTION)
    login(client, users[Role.MARKETER])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("campaigns:test_send", args=[campaign.pk]), {"phone": "09012345678"},
                               HTTP_HX_REQUEST="true")
    assert "Test message sent to 090-1234-5678" in response.content.decode()
    delivery = Delivery.objects.get()
    assert delivery.campaign_id is None and delivery.contact.phone == "+819012345678"
    assert delivery.sms_text.startswith("【テスト】")


def test_upload_over_the_size_limit_is_refused_without_storing(client, org, account, users, media_root, monkeypatch):
    monkeypatch.setattr("campaigns.media.MAX_BYTES", 1000)
    login(client, users[Role.MARKETER])
    response = client.post(
        reverse("campaigns:media_upload"),
        {"media.upload": upload("big.jpg", jpeg_bytes((400, 400)) + b"\x00" * 70_000)},
        HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="media.upload",
    )
    assert response.status_code == 200
    assert "The file is larger than 100 MB." in response.content.decode()
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_phone_filter_uses_a_prefix_range_for_typed_numbers():
    from campaigns.views.monitor import phone_filter

    assert phone_filter("090-1234") == {"contact__phone__startswith": "+81901234", "contact__phone__gte": "+81901234",
                                        "contact__phone__lt": "+81901235"}
    assert phone_filter("０９０１２３４５６７８")["contact__phone__startswith"] == "+819012345678"
    assert phone_filter("+81 90 1234")["contact__phone__startswith"] == "+81901234"
    assert phone_filter("5678") == {"contact__phone__contains": "5678"}
    assert phone_filter("abc") == {"pk__in": []}


def test_list_shows_progress_of_running_campaigns(client, org, account, users):
    running_campaign(org, account, users)
    body = login(client, users[Role.VIEWER]).get(reverse("campaigns:list")).content.decode()
    assert 'class="mini-progress" title="84.0%"' in body


def test_saving_a_campaign_submitted_meanwhile_changes_nothing(client, org, account, users):
    campaign = campaign_for(org, account, users[Role.MARKETER], name="元の名前")
    login(client, users[Role.MARKETER])
    page = client.get(reverse("campaigns:edit", args=[campaign.pk]))
    assert page.status_code == 200
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PENDING_APPROVAL)
    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), composer_data(account, name="変更"))
    campaign.refresh_from_db()
    assert response.status_code == 302
    assert campaign.name == "元の名前" and campaign.status == CampaignStatus.PENDING_APPROVAL


def test_saving_a_draft_keeps_its_status_reason_and_author(client, org, account, users):
    campaign = campaign_for(org, account, users[Role.MARKETER], status_reason="直してください")
    login(client, users[Role.ADMIN])
    client.post(reverse("campaigns:edit", args=[campaign.pk]), composer_data(account, name="新しい名前"))
    campaign.refresh_from_db()
    assert campaign.name == "新しい名前"
    assert campaign.created_by == users[Role.MARKETER]
    assert campaign.status_reason == "直してください"


def test_monitor_shows_sms_going_through_the_backup_while_the_primary_is_down(client, org, users, settings):
    from core import gateway_health

    settings.GATEWAY_FAILOVER_ERRORS = 1
    cm = GatewayAccountFactory(organization=org, kind="cm")
    backup = GatewayAccountFactory(organization=org, kind="cm", name="backup-cm")
    account = approved_account(org, legal_name=LEGAL, sms_gateway=cm, backup_sms_gateway=backup)
    campaign = running_campaign(org, account, users)
    gateway_health.reset(cm.pk)
    login(client, users[Role.OPERATOR])
    url = reverse("campaigns:monitor_progress", args=[campaign.pk])
    assert "sms-failover" not in client.get(url, HTTP_HX_REQUEST="true").content.decode()
    gateway_health.record_failure(cm.pk)
    try:
        body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert 'id="sms-failover"' in body and "SMS via the backup gateway backup-cm since" in body
        gateway_health.record_success(cm.pk)
        assert "sms-failover" not in client.get(url, HTTP_HX_REQUEST="true").content.decode()
    finally:
        gateway_health.reset(cm.pk)


# --- tracked short links in the SMS text (core.short_links) ---------------------------------------

LINK_SMS = f"【{LEGAL}】冬のクーポン {{{{link:https://shop.example.jp/winter-coupon-2026/details}}}} 配信停止は「停止」と返信"


def test_composer_counts_sms_links_at_the_short_urls_length(client, org, account, users):
    from core.short_links import EXAMPLE_TOKEN

    org.short_link_base = "https://s.shop.jp/s/"
    org.save()
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:create")).content.decode()
    example = f"https://s.shop.jp/s/{EXAMPLE_TOKEN}"
    assert f'data-short-link-example="{example}"' in body  # the meter counts links as this
    assert "{{link:https://example.jp/page}}" in body and "38 characters" in body


def test_preview_shows_the_sms_as_sent_with_an_example_short_url(client, org, account, users, audience):
    from core.short_links import EXAMPLE_TOKEN, short_link_length

    login(client, users[Role.MARKETER])
    contact = audience.contacts.order_by("id").first()
    response = client.post(reverse("campaigns:compose_preview"),
                           composer_data(account, sms_text=LINK_SMS, preview_mode="sms", sample_contact=str(contact.pk)))
    preview = response.context["preview"]
    example = f"https://console.example.jp/s/{EXAMPLE_TOKEN}"
    assert example in preview["sms_text"] and "{{link" not in preview["sms_text"]
    typed_link = "{{link:https://shop.example.jp/winter-coupon-2026/details}}"
    as_sent = len(LINK_SMS) - len(typed_link) + short_link_length("https://console.example.jp/s/")
    assert preview["sms"]["characters"] == as_sent
    assert f"{as_sent} / 660 characters" in response.content.decode()


def test_composer_refuses_an_sms_link_to_an_internal_address_at_the_field(client, org, account, users):
    login(client, users[Role.MARKETER])
    response = client.post(reverse("campaigns:create"),
                           composer_data(account, sms_text=f"{PROMO_SMS} {{{{link:http://10.0.0.8/admin}}}}"))
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert "is not an http:// or https:// address of a public website" in str(response.context["form"].errors["sms_text"])
    client.cookies["django_language"] = "ja"
    response = client.post(reverse("campaigns:create"),
                           composer_data(account, sms_text=f"{PROMO_SMS} {{{{link:http://10.0.0.8/admin}}}}"))
    assert "公開されたWebサイト" in response.content.decode()


def test_composer_refuses_a_text_that_is_too_long_only_as_sent(client, org, account, users):
    login(client, users[Role.MARKETER])
    # 640 characters as typed; each of the two links becomes a 47-character short URL.
    text = PROMO_SMS + "あ" * (640 - len(PROMO_SMS) - 2 * len("{{link:https://a.jp/}}")) + "{{link:https://a.jp/}}" * 2
    assert len(text) == 640
    response = client.post(reverse("campaigns:create"), composer_data(account, sms_text=text))
    assert not Campaign.objects.exists()
    assert "characters long as sent" in str(response.context["form"].errors["sms_text"])


def test_monitor_shows_sms_link_clicks_next_to_message_clicks(client, org, account, users):
    campaign = running_campaign(org, account, users)
    minute = timezone.now().replace(second=0, microsecond=0)
    CampaignCounter.objects.create(campaign=campaign, minute=minute, channel="rcs", metric=Metric.CLICKED, count=3)
    CampaignCounter.objects.create(campaign=campaign, minute=minute, channel="sms", metric=Metric.CLICKED, count=5)
    body = login(client, users[Role.OPERATOR]).get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert "Clicked: 3 on +Message buttons · 5 on SMS links" in body
    assert "5 clicked a link" in body
    client.cookies["django_language"] = "ja"
    body = client.get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    assert "SMSのリンク 5件" in body


def test_a_long_link_typed_in_a_full_sms_text_is_fine_when_the_text_fits_as_sent(client, org, account, users):
    login(client, users[Role.MARKETER])
    link = "{{link:https://shop.example.jp/" + "campaign/" * 12 + "coupon}}"
    text = PROMO_SMS + "あ" * (600 - len(PROMO_SMS)) + link  # 600 + 47 as sent; over 670 as typed
    assert len(text) > 670
    response = client.post(reverse("campaigns:create"), composer_data(account, sms_text=text))
    assert response.status_code == 302, response.context["form"].errors
    assert Campaign.objects.get().sms_text == text
