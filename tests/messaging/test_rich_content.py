"""The one rich-content validator: every limit at and just past its boundary, every suggestion type,
the URL rules, the one-main-element rule, unknown fields, and error keys that name the field path."""

import copy

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from core.rich_content import (
    CARD_BUTTONS_MAX,
    CARD_DESCRIPTION_MAX,
    CARD_TITLE_MAX,
    CAROUSEL_MAX,
    CAROUSEL_MIN,
    CHIPS_MAX,
    LABEL_MAX,
    POSTBACK_MAX,
    TEXT_MAX,
    URL_MAX,
    iter_texts,
    iter_urls,
    url_problem,
    validate_rich_content,
)
from tests.accounts.ja_pending import assert_japanese


def errors_of(document) -> dict[str, list[str]]:
    """The validator's errors keyed by field path ({} when the document is valid)."""
    try:
        validate_rich_content(document)
    except ValidationError as error:
        return error.message_dict
    return {}


def assert_valid(document):
    assert errors_of(document) == {}


def assert_refused(document, field, fragment=None):
    errors = errors_of(document)
    assert field in errors, f"expected an error on {field!r}, got {errors!r}"
    if fragment is not None:
        assert any(fragment in message for message in errors[field]), errors[field]
    return errors


def reply(label="はい", postback="yes"):
    return {"type": "reply", "label": label, "postback": postback}


def open_url(url="https://shop.example.jp/coupon", label="クーポンを見る"):
    return {"type": "open_url", "label": label, "url": url}


def card(**overrides):
    value = {"title": "冬のセール", "description": "全品20%オフ", "buttons": [open_url()]}
    value.update(overrides)
    return value


def carousel(count, **card_overrides):
    return {"carousel": {"width": "MEDIUM", "cards": [card(**card_overrides) for _ in range(count)]}}


def url_of_length(length):
    prefix = "https://shop.example.jp/"
    return prefix + "a" * (length - len(prefix))


VALID_SUGGESTIONS = {
    "reply": {"type": "reply", "label": "はい", "postback": "yes"},
    "open_url": {"type": "open_url", "label": "サイトを開く", "url": "https://shop.example.jp/"},
    "dial": {"type": "dial", "label": "電話する", "phone": "+81-3-1234-5678"},
    "location": {"type": "location", "label": "地図", "latitude": 35.681, "longitude": 139.767, "query": "東京駅"},
    "calendar": {
        "type": "calendar",
        "label": "予定に追加",
        "title": "来店予約",
        "start": "2026-12-01T10:00:00+09:00",
        "end": "2026-12-01T11:00:00+09:00",
    },
}


# --- Main elements ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"text": "こんにちは"},
        {"media": {"url": "https://cdn.example.jp/a.jpg", "kind": "image"}},
        {"media": {"url": "https://cdn.example.jp/a.mp4", "kind": "video", "thumbnail_url": "https://cdn.example.jp/t.jpg"}},
        {"media": {"url": "https://cdn.example.jp/a.pdf", "kind": "file"}},
        {"card": card(media={"url": "https://cdn.example.jp/a.jpg", "height": "TALL"})},
        {"card": {"title": "タイトルだけ"}},
        {"card": {"description": "説明だけ"}},
        {"card": {"media": {"url": "https://cdn.example.jp/a.jpg"}}},
        carousel(2),
        {"text": "こんにちは", "chips": [reply()]},
    ],
    ids=["text", "image", "video", "file", "card", "card-title", "card-description", "card-media", "carousel", "chips"],
)
def test_valid_documents_pass(document):
    assert_valid(document)


@pytest.mark.parametrize(
    "document",
    [
        {"text": "a", "media": {"url": "https://cdn.example.jp/a.jpg"}},
        {"text": "a", "card": card()},
        {"card": card(), **carousel(2)},
        {"text": "a", "media": {"url": "https://cdn.example.jp/a.jpg"}, "card": card(), **carousel(2)},
    ],
    ids=["text+media", "text+card", "card+carousel", "all-four"],
)
def test_exactly_one_main_element(document):
    assert_refused(document, "content", "exactly one")


@pytest.mark.parametrize("document", [{}, {"chips": [reply()]}, {"text": ""}], ids=["empty", "chips-only", "empty-text"])
def test_an_empty_message_says_what_to_add(document):
    errors = assert_refused(document, "content", "The message is empty: write a text, or add media")
    assert not any("exactly one" in message for message in errors["content"])


@pytest.mark.parametrize("document", [None, [], "text", 42, [{"text": "a"}]])
def test_document_must_be_an_object(document):
    assert_refused(document, "content", "object")


def test_unknown_top_level_fields_are_named():
    errors = assert_refused({"text": "a", "txet": "b", "buttons": []}, "txet", "Unknown field")
    assert "buttons" in errors
    assert "content" not in errors  # the known part is still fine


@pytest.mark.parametrize(
    "document, field",
    [
        ({"card": {"title": "t", "subtitle": "x"}}, "card.subtitle"),
        ({"card": {"title": "t", "media": {"url": "https://e.jp/a.jpg", "kind": "image"}}}, "card.media.kind"),
        ({"media": {"url": "https://e.jp/a.jpg", "height": "TALL"}}, "media.height"),
        ({"carousel": {"cards": [{"title": "a"}, {"title": "b"}], "height": "TALL"}}, "carousel.height"),
        ({"carousel": {"cards": [{"title": "a"}, {"title": "b", "button": []}]}}, "carousel.cards[1].button"),
        ({"text": "a", "chips": [{"type": "reply", "label": "l", "postback": "p", "url": "https://e.jp"}]}, "chips[0].url"),
        ({"card": {"title": "t", "buttons": [{"type": "open_url", "label": "l", "link": "https://e.jp"}]}},
         "card.buttons[0].link"),
        ({"text": "a", "chips": [{"type": "dial", "label": "l", "phone": "+81312345678", "number": "1"}]},
         "chips[0].number"),
    ],
)
def test_unknown_fields_inside_elements_are_named_with_their_path(document, field):
    assert_refused(document, field, "Unknown field")


def test_every_known_inner_field_is_accepted():
    card = {
        "title": "t", "description": "d",
        "media": {"url": "https://e.jp/a.jpg", "height": "TALL", "thumbnail_url": "https://e.jp/t.jpg"},
        "buttons": [
            {"type": "open_url", "label": "l", "url": "https://e.jp", "postback": "p"},
            {"type": "location", "label": "l", "latitude": 35.6, "longitude": 139.7, "query": "q", "postback": "p"},
            {"type": "calendar", "label": "l", "title": "t", "description": "d", "start": "2026-12-01T10:00:00+09:00",
             "end": "2026-12-01T11:00:00+09:00", "postback": "p"},
            {"type": "dial", "label": "l", "phone": "+81312345678", "postback": "p"},
        ],
    }
    validate_rich_content({"carousel": {"width": "SMALL", "cards": [card, card]}})
    validate_rich_content({"media": {"url": "https://e.jp/v.mp4", "kind": "video", "thumbnail_url": "https://e.jp/t.jpg"}})


def test_text_must_be_a_string():
    assert_refused({"text": 5}, "text", "text")


# --- Limits at and just past the boundary -------------------------------------------------------


def test_text_limit():
    assert TEXT_MAX == 2730
    assert_valid({"text": "あ" * TEXT_MAX})
    assert_refused({"text": "あ" * (TEXT_MAX + 1)}, "text", "2731")


def test_chips_limit():
    assert CHIPS_MAX == 11
    assert_valid({"text": "a", "chips": [reply() for _ in range(CHIPS_MAX)]})
    assert_refused({"text": "a", "chips": [reply() for _ in range(CHIPS_MAX + 1)]}, "chips", "12")


def test_chips_must_be_a_list():
    assert_refused({"text": "a", "chips": {"type": "reply"}}, "chips", "list")


def test_card_buttons_limit():
    assert CARD_BUTTONS_MAX == 4
    assert_valid({"card": card(buttons=[reply() for _ in range(CARD_BUTTONS_MAX)])})
    assert_refused({"card": card(buttons=[reply() for _ in range(CARD_BUTTONS_MAX + 1)])}, "card.buttons", "5")


def test_card_buttons_limit_in_a_carousel_card():
    document = carousel(3)
    document["carousel"]["cards"][1]["buttons"] = [reply() for _ in range(CARD_BUTTONS_MAX + 1)]
    assert_refused(document, "carousel.cards[1].buttons")


def test_label_limit_on_chips_and_buttons():
    assert LABEL_MAX == 25
    assert_valid({"text": "a", "chips": [reply(label="あ" * LABEL_MAX)]})
    assert_refused({"text": "a", "chips": [reply(label="あ" * (LABEL_MAX + 1))]}, "chips[0].label", "26")
    assert_valid({"card": card(buttons=[open_url(label="x" * LABEL_MAX)])})
    assert_refused({"card": card(buttons=[open_url(label="x" * (LABEL_MAX + 1))])}, "card.buttons[0].label")


@pytest.mark.parametrize("count", [CAROUSEL_MIN, CAROUSEL_MAX])
def test_carousel_size_accepted(count):
    assert (CAROUSEL_MIN, CAROUSEL_MAX) == (2, 10)
    assert_valid(carousel(count))


@pytest.mark.parametrize("count", [0, CAROUSEL_MIN - 1, CAROUSEL_MAX + 1])
def test_carousel_size_refused(count):
    assert_refused(carousel(count), "carousel.cards", "2 to 10")


@pytest.mark.parametrize("value", [{"cards": "nope"}, {"width": "MEDIUM"}, ["card"]])
def test_carousel_needs_a_list_of_cards(value):
    assert_refused({"carousel": value}, "carousel.cards", "list of cards")


def test_carousel_width():
    document = carousel(2)
    document["carousel"]["width"] = "SMALL"
    assert_valid(document)
    document["carousel"]["width"] = "LARGE"
    assert_refused(document, "carousel.width", "SMALL")


def test_card_title_limit():
    assert CARD_TITLE_MAX == 200
    assert_valid({"card": card(title="あ" * CARD_TITLE_MAX)})
    assert_refused({"card": card(title="あ" * (CARD_TITLE_MAX + 1))}, "card.title", "201")


def test_card_description_limit():
    assert CARD_DESCRIPTION_MAX == 2000
    assert_valid({"card": card(description="あ" * CARD_DESCRIPTION_MAX)})
    assert_refused({"card": card(description="あ" * (CARD_DESCRIPTION_MAX + 1))}, "card.description", "2001")


def test_card_needs_some_content():
    assert_refused({"card": {"buttons": [reply()]}}, "card", "title, a description or media")


def test_card_must_be_an_object():
    assert_refused({"card": "カード"}, "card", "object")
    document = carousel(2)
    document["carousel"]["cards"][1] = "カード"
    assert_refused(document, "carousel.cards[1]", "object")


def test_card_media_height():
    assert_refused({"card": card(media={"url": "https://cdn.example.jp/a.jpg", "height": "HUGE"})}, "card.media.height")


def test_postback_limit():
    assert POSTBACK_MAX == 2048
    assert_valid({"text": "a", "chips": [reply(postback="p" * POSTBACK_MAX)]})
    assert_refused({"text": "a", "chips": [reply(postback="p" * (POSTBACK_MAX + 1))]}, "chips[0].postback", "2049")


def test_url_limit():
    assert URL_MAX == 2048
    assert len(url_of_length(URL_MAX)) == URL_MAX
    assert_valid({"text": "a", "chips": [open_url(url_of_length(URL_MAX))]})
    assert_refused({"text": "a", "chips": [open_url(url_of_length(URL_MAX + 1))]}, "chips[0].url", "2048")


def test_media_url_limit():
    assert_valid({"media": {"url": url_of_length(URL_MAX)}})
    assert_refused({"media": {"url": url_of_length(URL_MAX + 1)}}, "media.url")


# --- Suggestions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID_SUGGESTIONS))
def test_every_suggestion_type_is_valid_as_chip_and_button(kind):
    suggestion = VALID_SUGGESTIONS[kind]
    assert_valid({"text": "a", "chips": [suggestion]})
    assert_valid({"card": card(buttons=[suggestion])})


def test_open_url_may_carry_a_postback():
    assert_valid({"text": "a", "chips": [dict(open_url(), postback="clicked-coupon")]})
    assert_refused({"text": "a", "chips": [dict(open_url(), postback="p" * (POSTBACK_MAX + 1))]}, "chips[0].postback")


def _with(kind, **changes):
    suggestion = copy.deepcopy(VALID_SUGGESTIONS[kind])
    for key, value in changes.items():
        if value is _DROP:
            suggestion.pop(key, None)
        else:
            suggestion[key] = value
    return suggestion


_DROP = object()

INVALID_SUGGESTIONS = [
    ("unknown type", {"type": "share", "label": "共有"}, "type"),
    ("no type", {"label": "はい", "postback": "yes"}, "type"),
    ("not an object", "はい", ""),
    ("reply without label", _with("reply", label=_DROP), "label"),
    ("reply with empty label", _with("reply", label=""), "label"),
    ("reply with non-text label", _with("reply", label=7), "label"),
    ("reply without postback", _with("reply", postback=_DROP), "postback"),
    ("reply with empty postback", _with("reply", postback=""), "postback"),
    ("open_url without url", _with("open_url", url=_DROP), "url"),
    ("open_url with javascript", _with("open_url", url="javascript:alert(1)"), "url"),
    ("dial without phone", _with("dial", phone=_DROP), "phone"),
    ("dial with letters", _with("dial", phone="03-CALL-NOW"), "phone"),
    ("dial with too few digits", _with("dial", phone="12345"), "phone"),
    ("dial with tel: scheme", _with("dial", phone="tel:+81312345678"), "phone"),
    ("dial as number", _with("dial", phone=81312345678), "phone"),
    ("location without latitude", _with("location", latitude=_DROP), "latitude"),
    ("location latitude out of range", _with("location", latitude=90.5), "latitude"),
    ("location longitude out of range", _with("location", longitude=-180.1), "longitude"),
    ("location latitude as text", _with("location", latitude="35.6"), "latitude"),
    ("location latitude as boolean", _with("location", latitude=True), "latitude"),
    ("location latitude NaN", _with("location", latitude=float("nan")), "latitude"),
    ("location query too long", _with("location", query="あ" * (CARD_TITLE_MAX + 1)), "query"),
    ("calendar without title", _with("calendar", title=_DROP), "title"),
    ("calendar title too long", _with("calendar", title="あ" * (CARD_TITLE_MAX + 1)), "title"),
    ("calendar description too long", _with("calendar", description="あ" * (CARD_DESCRIPTION_MAX + 1)), "description"),
    ("calendar without start", _with("calendar", start=_DROP), "start"),
    ("calendar start not a date", _with("calendar", start="next Monday"), "start"),
    ("calendar start as number", _with("calendar", start=1767225600), "start"),
    ("calendar end before start", _with("calendar", end="2026-12-01T09:00:00+09:00"), "end"),
    ("calendar end equals start", _with("calendar", end="2026-12-01T10:00:00+09:00"), "end"),
    ("calendar mixes naive and aware", _with("calendar", end="2026-12-01T11:00:00"), "end"),
]


@pytest.mark.parametrize(("suggestion", "subfield"), [(s, f) for _, s, f in INVALID_SUGGESTIONS], ids=[n for n, _, _ in INVALID_SUGGESTIONS])
def test_invalid_suggestions_are_refused_with_their_path(suggestion, subfield):
    field = "chips[0]" + (f".{subfield}" if subfield else "")
    assert_refused({"text": "a", "chips": [suggestion]}, field)
    button_field = "carousel.cards[1].buttons[0]" + (f".{subfield}" if subfield else "")
    document = carousel(2)
    document["carousel"]["cards"][1]["buttons"] = [suggestion]
    assert_refused(document, button_field)


def test_location_boundaries_accepted():
    assert_valid({"text": "a", "chips": [_with("location", latitude=-90, longitude=180)]})
    assert_valid({"text": "a", "chips": [_with("location", latitude=90.0, longitude=-180.0, query=_DROP)]})


# --- URL rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.jp",
        "https://shop.example.jp/coupon?id=1&utm_source=rcs#top",
        "HTTPS://SHOP.EXAMPLE.JP/",
        "https://user@shop.example.jp:8443/path",
        "https://[2001:db8::1]/",
        "https://xn--eckwd4c7c.xn--zckzah/",
    ],
)
def test_http_and_https_urls_accepted(url):
    assert url_problem(url) is None
    assert_valid({"text": "a", "chips": [open_url(url)]})


REFUSED_URLS = {
    "javascript": "javascript:alert(1)",
    "JavaScript mixed case": "JavaScript:alert(document.cookie)",
    "javascript with slashes": "javascript://shop.example.jp/%0Aalert(1)",
    "data": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript": "vbscript:msgbox(1)",
    "ftp": "ftp://files.example.jp/a.zip",
    "file": "file:///etc/passwd",
    "tel": "tel:+81312345678",
    "no scheme": "shop.example.jp/coupon",
    "protocol-relative": "//shop.example.jp/coupon",
    "missing host": "https://",
    "missing host with path": "https:///coupon",
    "backslashes": "https:\\\\shop.example.jp",
    "user but no host": "https://user@/coupon",
    "space inside": "https://shop.example.jp/a coupon",
    "leading space": " https://shop.example.jp/",
    "trailing newline": "https://shop.example.jp/\n",
    "newline inside": "https://shop.example.jp/\r\nSet-Cookie: a=b",
    "tab": "https://shop.\texample.jp/",
    "NUL": "https://shop.example.jp/\x00",
    "DEL": "https://shop.example.jp/\x7f",
    "C1 control": "https://shop.example.jp/\x85",
    "javascript after control character": "\x01javascript:alert(1)",
    "broken IPv6 host": "http://[::1",
    "empty": "",
    "not text": 42,
    "none": None,
}


@pytest.mark.parametrize("url", list(REFUSED_URLS.values()), ids=list(REFUSED_URLS))
def test_bad_urls_refused(url):
    assert url_problem(url) is not None
    assert_refused({"text": "a", "chips": [open_url(url)]}, "chips[0].url")
    assert_refused({"media": {"url": url}}, "media.url")


def test_url_problem_reasons():
    assert "http" in url_problem("javascript:alert(1)")
    assert "http" in url_problem("JavaScript:alert(1)")
    assert "control" in url_problem("https://a.example.jp/ b")
    assert "host" in url_problem("https://")
    assert "required" in url_problem("")


def test_thumbnail_and_card_media_urls_are_checked():
    assert_refused(
        {"media": {"url": "https://cdn.example.jp/a.mp4", "kind": "video", "thumbnail_url": "data:image/png;base64,AAAA"}},
        "media.thumbnail_url",
    )
    assert_refused({"card": card(media={"url": "javascript:alert(1)"})}, "card.media.url")


def test_media_kind_and_shape():
    assert_refused({"media": {"url": "https://cdn.example.jp/a.svg", "kind": "svg"}}, "media.kind", "image")
    assert_refused({"media": "https://cdn.example.jp/a.jpg"}, "media", "object")


# --- Error keys and collection ------------------------------------------------------------------


def test_error_keys_name_the_full_path():
    document = carousel(3)
    document["carousel"]["cards"][2]["buttons"] = [open_url(label="x" * (LABEL_MAX + 1))]
    errors = errors_of(document)
    assert list(errors) == ["carousel.cards[2].buttons[0].label"]
    assert "26" in errors["carousel.cards[2].buttons[0].label"][0]
    assert "25" in errors["carousel.cards[2].buttons[0].label"][0]


def test_all_errors_are_collected_at_once():
    document = carousel(2)
    document["carousel"]["cards"][0]["title"] = "あ" * (CARD_TITLE_MAX + 1)
    document["carousel"]["cards"][1]["buttons"] = [open_url("javascript:alert(1)"), reply(postback="")]
    document["chips"] = [reply(label="")]
    document["extra"] = True
    errors = errors_of(document)
    assert set(errors) == {
        "carousel.cards[0].title",
        "carousel.cards[1].buttons[0].url",
        "carousel.cards[1].buttons[1].postback",
        "chips[0].label",
        "extra",
    }


def test_iter_texts_and_urls_cover_cards_and_chips():
    document = carousel(2)
    document["chips"] = [reply("はい"), open_url("https://a.example.jp/", label="開く")]
    texts = list(iter_texts(document))
    assert texts.count("冬のセール") == 2
    assert "はい" in texts and "開く" in texts
    assert sorted(iter_urls(document)) == ["https://a.example.jp/"] + ["https://shop.example.jp/coupon"] * 2


# --- Japanese messages --------------------------------------------------------------------------


def test_required_message_is_japanese_when_language_is_ja():
    """Django already translates this msgid, so it is checked now."""
    with translation.override("ja"):
        errors = errors_of({"text": "a", "chips": [reply(label="")]})
        message = errors["chips[0].label"][0]
    assert message != "This field is required."
    assert "必須" in message


def _message(document, field):
    return lambda: errors_of(document)[field][0]


@pytest.mark.parametrize(
    ("document", "field", "msgid", "word"),
    [
        ({"text": "a", "card": card()}, "content", "A message holds exactly one of: text, media, card, carousel.", "1つだけ"),
        ({"text": "あ" * (TEXT_MAX + 1)}, "text", "Is %(length)d characters long; the limit is %(limit)d.", "上限"),
        (carousel(1), "carousel.cards", "A carousel holds %(min)d to %(max)d cards; this one has %(count)d.", "カード"),
        ({"text": "a", "chips": [reply()] * 12}, "chips", "Has %(count)d items; the limit is %(limit)d.", "上限"),
        ({"text": "a", "chips": [open_url("JavaScript:alert(1)")]}, "chips[0].url", "Only http:// and https:// URLs are allowed.", "だけ"),
        ({"text": "a", "chips": [open_url("https://a.jp/ x")]}, "chips[0].url", "The URL contains spaces or control characters.", "制御文字"),
        ({"text": "a", "extra": 1}, "extra", "Unknown field.", "不明"),
        ({"text": "a", "chips": [{"type": "share"}]}, "chips[0].type", "Unknown action type; use one of: %(types)s.", "アクション"),
    ],
    ids=["one-main", "text-limit", "carousel-size", "chips-limit", "scheme", "control", "unknown-field", "unknown-type"],
)
def test_messages_are_japanese_when_language_is_ja(document, field, msgid, word):
    assert_japanese(_message(document, field), msgid, word)


def test_unparsable_url_message_is_japanese_when_language_is_ja():
    """"Enter a valid URL." is Django's own msgid, already translated."""
    with translation.override("ja"):
        message = errors_of({"text": "a", "chips": [open_url("http://[::1")]})["chips[0].url"][0]
    assert message != "Enter a valid URL."
    assert "URL" in message and "入力" in message


def test_a_short_link_placeholder_belongs_to_the_sms_text_not_the_rich_content():
    from core.rich_content import validate_rich_content

    with pytest.raises(ValidationError) as caught:
        validate_rich_content({"text": "クーポンはこちら {{link:https://shop.example.jp/c}}"})
    assert "Open URL" in caught.value.message_dict["text"][0]
    validate_rich_content({"text": "{{name}}様 クーポンのご案内"})  # other placeholders stay fine
