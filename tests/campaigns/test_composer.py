"""The composer (campaigns.views.composer): an empty message says what to do at the field, the media
guidance is on the page before any upload, a very large image is refused or warned about, media a
carrier cannot fetch is named while typing, and the preview's sample recipients are the people the
send would reach."""

import io
from datetime import time

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import Role
from campaigns.models import Campaign, ContactListMembership
from campaigns.optout import OptOutMethod, contact_opt_out
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import ConsentFactory, ContactFactory, ContactListFactory
from tests.campaigns.test_campaign_views import LEGAL, composer_data, jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)  # no quiet hours
    organization.save()
    return organization


@pytest.fixture
def account(org):
    return approved_account(org, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=org))


@pytest.fixture
def marketer(org):
    return member(org, Role.MARKETER, username="marketer-user")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://console.example.jp"


def signed_in(client, user, language):
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    return client


def field_errors(body, field):
    """The texts of the error list the composer shows beside ``field``."""
    marker = f'data-error-for="{field}"'
    assert marker in body, f"no errors beside {field}"
    chunk = body.split(marker, 1)[1].split("</ul>", 1)[0]
    return [item.split("</li>", 1)[0] for item in chunk.split("<li>")[1:]]


# --- the empty message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field, english, japanese",
    [
        ({"kind": "text", "text": ""}, "text", "Write the message text (up to 2,730 characters).",
         "メッセージ本文を入力してください（2,730文字まで）。"),
        ({"kind": "media", "text": "", "media.url": "", "media.kind": "image"}, "media.url",
         "Upload an image, a video or a PDF, or enter the public URL of one.",
         "画像・動画・PDFをアップロードするか、公開されているURLを入力してください。"),
        ({"kind": "card", "text": ""}, "card", "Give the card a title, a description or an image.",
         "カードにタイトル・説明文・画像のいずれかを入力してください。"),
    ],
    ids=["text", "media", "card"],
)
def test_an_empty_message_says_what_to_do_at_the_field(client, account, marketer, overrides, field, english,
                                                       japanese):
    for language, expected in (("en", english), ("ja", japanese)):
        response = signed_in(client, marketer, language).post(reverse("campaigns:create"),
                                                              composer_data(account, **overrides))
        body = response.content.decode()
        assert response.status_code == 200
        assert field_errors(body, field) == [expected]
        assert "exactly one of" not in body and "のうち1つだけ" not in body
        assert 'data-error-for="content"' not in body
    assert not Campaign.objects.exists()


# --- media guidance, large images, upload progress ----------------------------------------------------


def test_each_media_kinds_limits_are_shown_before_any_upload(client, account, marketer):
    body = signed_in(client, marketer, "en").get(reverse("campaigns:create")).content.decode()
    assert "Image: JPEG, PNG, GIF or WebP, at most 10 MB and 40 megapixels." in body
    assert "Video: MP4 or WebM, at most 100 MB." in body
    assert "File: PDF, at most 100 MB." in body
    # The browser refuses a file over its kind's limit before sending it, with the same limits.
    assert 'data-max-image="10485760" data-max-video="104857600" data-max-file="104857600"' in body
    assert '<progress max="100" value="0"' in body  # filled from the upload's XHR progress events
    japanese = signed_in(client, marketer, "ja").get(reverse("campaigns:create")).content.decode()
    assert "画像: JPEG・PNG・GIF・WebP、10 MB・40メガピクセルまで。" in japanese
    assert "動画: MP4・WebM、100 MBまで。" in japanese


def upload_response(client, slot, content, name="photo.png"):
    return client.post(reverse("campaigns:media_upload"),
                       {f"{slot}.upload": SimpleUploadedFile(name, content, "image/png")},
                       HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME=f"{slot}.upload")


def test_a_very_large_image_is_accepted_with_a_warning_at_its_slot(client, account, marketer):
    buffer = io.BytesIO()
    Image.new("L", (6000, 6000), 128).save(buffer, "PNG")
    body = upload_response(signed_in(client, marketer, "ja"), "media", buffer.getvalue()).content.decode()
    assert 'class="warnlist"' in body
    assert "この画像は6,000×6,000ピクセル" in body and "縮小をご検討ください" in body
    assert "https://console.example.jp/media/" in body  # stored, its URL in the slot


def test_a_very_large_image_sent_with_the_whole_form_is_warned_about_too(client, account, marketer):
    buffer = io.BytesIO()
    Image.new("L", (3000, 1000), 128).save(buffer, "PNG")
    data = composer_data(account, kind="media", text="", **{"media.kind": "image"})
    data["media.upload"] = SimpleUploadedFile("wide.png", buffer.getvalue(), "image/png")  # no JavaScript
    page = signed_in(client, marketer, "en").post(reverse("campaigns:create"), data, follow=True).content.decode()
    assert Campaign.objects.count() == 1
    assert "This image is 3,000×1,000 px" in page


def test_an_image_over_the_image_limit_is_refused_at_its_slot(client, account, marketer):
    content = b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024)
    body = upload_response(signed_in(client, marketer, "en"), "card.media", content).content.decode()
    assert field_errors(body, "card.media.url") == ["An image can be at most 10 MB on +Message; this one is 11.0 MB."]


def test_a_phone_sized_image_has_no_warning(client, account, marketer):
    body = upload_response(signed_in(client, marketer, "en"), "media", jpeg_bytes((800, 600))).content.decode()
    assert "warnlist" not in body and 'data-error-for="media.url"' not in body
    assert "https://console.example.jp/media/" in body


# --- media a carrier cannot fetch ----------------------------------------------------------------


def test_a_loopback_media_url_is_warned_about_while_typing_and_on_the_page(client, account, marketer):
    data = composer_data(account, kind="media", text="", **{"media.url": "http://127.0.0.1:8000/media/1/a.jpg",
                                                            "media.kind": "image"})
    preview = signed_in(client, marketer, "en").post(reverse("campaigns:compose_preview"), data,
                                                     HTTP_HX_REQUEST="true").content.decode()
    region = preview.split('id="media-reach"', 1)[1]
    assert region.startswith(' hx-swap-oob="true"')
    assert "Carriers cannot fetch the media at 127.0.0.1: it is a loopback address" in region
    data["media.url"] = "https://cdn.example.jp/a.jpg"
    public = client.post(reverse("campaigns:compose_preview"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "Carriers cannot fetch" not in public and 'id="media-reach"' in public

    saved = composer_data(account, **{"kind": "card", "text": "", "card.title": f"{LEGAL} 配信停止は「停止」と返信",
                                      "card.media.url": "http://192.168.10.5/poster.jpg"})
    page = signed_in(client, marketer, "ja").post(reverse("campaigns:create"), saved, follow=True).content.decode()
    assert Campaign.objects.count() == 1  # a warning, not a refusal
    assert "通信事業者は 192.168.10.5 のメディアを取得できません" in page
    assert "プライベートネットワークのアドレス" in page
    # The campaign page, where it is approved and launched, says so too.
    detail = client.get(reverse("campaigns:detail", args=[Campaign.objects.get().pk])).content.decode()
    assert "通信事業者は 192.168.10.5 のメディアを取得できません" in detail


# --- sample recipients ---------------------------------------------------------------------------------


def sample_names(body):
    chunk = body.split('id="sample-contact"', 1)[1].split("</select>", 1)[0]
    return [option.split(">", 1)[1].split("<", 1)[0] for option in chunk.split("<option")[1:]]


def test_the_preview_never_shows_opted_out_people(client, org, account, marketer):
    contact_list = ContactListFactory(organization=org, name="会員")
    for name in ("停止した人", "同意のある人", "同意のない人"):
        contact = ContactFactory(organization=org, name=name)
        ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
        if name != "同意のない人":
            ConsentFactory(contact=contact)
    contact_opt_out(org.contacts.get(name="停止した人"), OptOutMethod.KEYWORD, "停止", confirm=False)
    client = signed_in(client, marketer, "ja")

    page = client.get(reverse("campaigns:create")).content.decode()  # no list chosen yet: promotion
    assert sample_names(page) == ["同意のある人"]
    promotion = client.post(reverse("campaigns:compose_audience"),
                            {"audience_lists": [contact_list.pk], "classification": "promotion"}).content.decode()
    assert sample_names(promotion) == ["同意のある人"]
    transactional = client.post(reverse("campaigns:compose_audience"),
                                {"audience_lists": [contact_list.pk], "classification": "transaction"}).content.decode()
    assert sample_names(transactional) == ["同意のある人", "同意のない人"]

    saved = client.post(reverse("campaigns:create"), composer_data(account, audience_lists=[contact_list.pk]))
    campaign = Campaign.objects.get()
    assert saved.status_code == 302
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert sample_names(edit) == ["同意のある人"]
    detail = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "停止した人" not in detail



# --- segments as the audience ----------------------------------------------------------------------


def test_a_segment_is_chosen_counted_and_saved_as_audience_and_exclusion(client, org, account, marketer):
    from campaigns.models import CustomField, FieldKind, Segment
    from campaigns.segments import segment_save

    CustomField.objects.create(organization=org, key="rank", label="会員ランク", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    for name, rank in (("金さん", "ゴールド"), ("金の停止", "ゴールド"), ("銀さん", "シルバー")):
        contact = ContactFactory(organization=org, name=name, attributes={"rank": rank})
        ConsentFactory(contact=contact)
    contact_opt_out(org.contacts.get(name="金の停止"), OptOutMethod.KEYWORD, "停止", confirm=False)
    gold = segment_save(Segment(organization=org, name="ゴールド会員", match="all"),
                        [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}])
    everyone = segment_save(Segment(organization=org, name="全員", match="all"), [])
    stranger = segment_save(Segment(organization=OrganizationFactory(), name="よそ", match="all"), [])
    client = signed_in(client, marketer, "en")

    page = client.get(reverse("campaigns:create")).content.decode()
    assert "ゴールド会員" in page and "よそ" not in page
    counted = client.post(reverse("campaigns:compose_audience"),
                          {"audience_segments": [gold.pk], "classification": "promotion"}).content.decode()
    assert '<span class="value">1</span>' in counted and "1 opted out" in counted
    assert sample_names(counted) == ["金さん"]
    excluded = client.post(reverse("campaigns:compose_audience"), {
        "audience_segments": [everyone.pk], "exclusion_segments": [gold.pk], "classification": "promotion",
    }).content.decode()
    assert sample_names(excluded) == ["銀さん"]
    foreign = client.post(reverse("campaigns:compose_audience"),
                          {"audience_segments": [stranger.pk], "classification": "promotion"}).content.decode()
    assert "Choose at least one list or segment to send to." in foreign or '<span class="value">0</span>' in foreign

    saved = client.post(reverse("campaigns:create"), composer_data(
        account, audience_segments=[everyone.pk], exclusion_segments=[gold.pk]))
    assert saved.status_code == 302
    campaign = Campaign.objects.get()
    assert list(campaign.audience_segments.all()) == [everyone]
    assert list(campaign.exclusion_segments.all()) == [gold]
    detail = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Evaluated when the audience is frozen at each send." in detail
    refused = client.post(reverse("campaigns:create"), composer_data(
        account, name="two", audience_segments=[gold.pk], exclusion_segments=[gold.pk]))
    assert "A segment cannot be both included and excluded." in refused.content.decode()
