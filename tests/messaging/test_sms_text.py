"""SMS text: GSM-7 / UCS-2 detection, segment counting at every boundary, and the 660 limit."""

import pytest
from django.core.exceptions import ValidationError

from core.sms_text import DEFAULT_LIMIT, measure_sms, validate_sms_text
from tests.accounts.ja_pending import assert_japanese

EMOJI = "😀"  # outside the BMP: two UTF-16 code units


@pytest.mark.parametrize(
    "text",
    ["Hello", "Your code is 123456.", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", "a\nb\rc"],
)
def test_gsm7_text(text):
    assert measure_sms(text).encoding == "GSM-7"


@pytest.mark.parametrize("text", ["こんにちは", "Hello 世界", "ｱｲｳ", "Café ☕", "price: 100円", f"hi {EMOJI}", "«quote»", "ç"])
def test_anything_outside_gsm7_is_ucs2(text):
    assert measure_sms(text).encoding == "UCS-2"


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153), (460, 4, 153)],
)
def test_gsm7_segments(length, segments, per_segment):
    measure = measure_sms("a" * length)
    assert (measure.encoding, measure.characters, measure.units) == ("GSM-7", length, length)
    assert (measure.segments, measure.per_segment) == (segments, per_segment)


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67), (660, 10, 67)],
)
def test_ucs2_segments(length, segments, per_segment):
    measure = measure_sms("あ" * length)
    assert (measure.encoding, measure.characters, measure.units) == ("UCS-2", length, length)
    assert (measure.segments, measure.per_segment) == (segments, per_segment)


@pytest.mark.parametrize("character", list("^{}\\[~]|€"))
def test_gsm7_extension_characters_count_double(character):
    measure = measure_sms(character)
    assert (measure.encoding, measure.characters, measure.units) == ("GSM-7", 1, 2)


def test_extension_characters_push_a_message_into_two_segments():
    assert measure_sms("a" * 158 + "€").segments == 1  # 160 septets
    assert measure_sms("a" * 159 + "€").segments == 2  # 161 septets
    assert measure_sms("{" * 80).units == 160
    assert measure_sms("{" * 80).segments == 1
    assert measure_sms("{" * 81).segments == 2


def test_emoji_counts_as_two_utf16_units():
    measure = measure_sms(EMOJI)
    assert (measure.encoding, measure.characters, measure.units) == ("UCS-2", 1, 2)
    assert measure_sms(EMOJI * 35).segments == 1  # 70 units
    assert measure_sms(EMOJI * 36).segments == 2  # 72 units
    assert measure_sms("あ" * 69 + EMOJI).segments == 2  # 71 units


def test_one_japanese_character_turns_the_whole_text_into_ucs2():
    measure = measure_sms("a" * 100 + "あ")
    assert measure.encoding == "UCS-2"
    assert measure.segments == 2  # 101 units at 67 per part


def test_empty_text_has_no_segments():
    assert measure_sms("").segments == 0


def test_validate_returns_the_measure():
    measure = validate_sms_text("ご注文の商品を発送しました。")
    assert measure.encoding == "UCS-2"
    assert measure.segments == 1


def _error(text, **kwargs):
    with pytest.raises(ValidationError) as caught:
        validate_sms_text(text, **kwargs)
    return caught.value.message_dict


def test_default_limit_is_660():
    assert DEFAULT_LIMIT == 660
    assert validate_sms_text("あ" * 660).segments == 10
    errors = _error("あ" * 661)
    assert list(errors) == ["sms_text"]
    assert "661" in errors["sms_text"][0] and "660" in errors["sms_text"][0]


def test_custom_limit():
    validate_sms_text("a" * 70, limit=70)
    assert "70" in _error("a" * 71, limit=70)["sms_text"][0]
    validate_sms_text("あ" * 670, limit=670)
    _error("あ" * 671, limit=670)


def test_custom_field_name_keys_the_error():
    assert list(_error("", field="fallback_text")) == ["fallback_text"]


@pytest.mark.parametrize("text", ["", " ", "\u3000", "\n\t ", None, 42])
def test_empty_or_blank_is_refused(text):
    errors = _error(text)
    assert "required" in errors["sms_text"][0]


def test_nul_character_is_refused():
    assert "NUL" in _error("abc\x00def")["sms_text"][0]


def test_length_message_in_japanese():
    assert_japanese(
        lambda: _error("あ" * 661)["sms_text"][0],
        "The SMS text is %(length)d characters long; the limit is %(limit)d.",
        "上限",
    )


def test_required_message_in_japanese():
    assert_japanese(lambda: _error(" ")["sms_text"][0], "The SMS text is required.", "SMS")


def test_links_count_at_their_short_urls_length_as_sent(settings):
    from core.short_links import short_link_length

    settings.PUBLIC_BASE_URL = "https://pm.example.jp"
    link = "{{link:https://shop.example.jp/a-very-long-path/for-the-winter-campaign/coupon?utm_source=sms}}"
    text = "Sale! " + link
    measure = validate_sms_text(text)
    assert measure.characters == len("Sale! ") + short_link_length("https://pm.example.jp/s/") == 6 + 42
    assert measure.encoding == "GSM-7"
    # The organization's own base counts at its own length.
    assert validate_sms_text(text, short_link_base_setting="https://s.jp/").characters == 6 + len("https://s.jp/") + 18


def test_a_text_over_the_limit_only_as_sent_says_so():
    text = "あ" * 50 + "{{link:https://shop.example.jp/}}"  # 83 typed; 50 + 40 as sent
    with pytest.raises(ValidationError) as caught:
        validate_sms_text(text, limit=85)
    assert "as sent" in caught.value.message_dict["sms_text"][0]
    assert validate_sms_text("あ" * 40 + "{{link:https://shop.example.jp/long/long/long/path}}", limit=85)


def test_a_link_to_an_internal_host_is_refused_at_the_field():
    with pytest.raises(ValidationError) as caught:
        validate_sms_text("クーポン {{link:http://192.168.0.10/admin}}", field="text")
    assert "public website" in caught.value.message_dict["text"][0]
