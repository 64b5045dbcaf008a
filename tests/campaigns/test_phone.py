"""Japanese mobile numbers: what people type and spreadsheets hold normalizes to E.164; everything
else is refused with a reason code."""

import pytest
from django.core.exceptions import ValidationError

from core.phone import mobile_search_key, national_format, normalize_mobile, to_cm_number
from tests.accounts.ja_pending import assert_japanese

E164 = "+819012345678"


@pytest.mark.parametrize(
    "raw",
    [
        "090-1234-5678",
        "09012345678",
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "+819012345678",
        "0081-90-1234-5678",
        "00819012345678",
        "(090) 1234-5678",
        "090.1234.5678",
        "０９０－１２３４－５６７８",  # full-width digits and full-width hyphen-minus
        "０９０ー１２３４ー５６７８",  # full-width digits and the katakana prolonged sound mark
        "090ー1234ー5678",  # katakana ー between half-width digits
        "090ｰ1234ｰ5678",  # half-width katakana ｰ
        "090‐1234‐5678",  # U+2010 hyphen
        "090−1234−5678",  # U+2212 minus sign
        "090–1234–5678",  # en dash
        "＋８１　９０　１２３４　５６７８",  # full-width plus and ideographic spaces
        "  090-1234-5678  ",
        "\t09012345678\n",
        "\u300009012345678\u3000",
        9012345678,  # a spreadsheet cell read as a number loses its leading 0
        "+81090-1234-5678",  # the trunk 0 kept after the country code
        "+81(0)90-1234-5678",
        "819012345678",  # the country code without +
    ],
)
def test_normalizes_to_e164(raw):
    assert normalize_mobile(raw) == E164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("070-1234-5678", "+817012345678"),
        ("080-1234-5678", "+818012345678"),
        ("060-1234-5678", "+816012345678"),
        ("090-9999-0000", "+819099990000"),
    ],
)
def test_every_mobile_prefix_is_accepted(raw, e164):
    assert normalize_mobile(raw) == e164


def _code(raw):
    with pytest.raises(ValidationError) as caught:
        normalize_mobile(raw)
    return caught.value.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("03-1234-5678", "not_mobile"),  # Tokyo landline
        ("06-1234-5678", "not_mobile"),  # Osaka landline
        ("011-222-1234", "not_mobile"),  # Sapporo landline
        ("+81 3 1234 5678", "not_mobile"),
        ("0120-123-456", "not_mobile"),  # toll-free
        ("0570-123-456", "not_mobile"),  # navi dial
        ("050-1234-5678", "voip"),
        ("+81 50 1234 5678", "voip"),
        ("020-1234-5678", "m2m"),
        ("+1 202 555 0123", "foreign"),
        ("+82 10-1234-5678", "foreign"),
        ("001-202-555-0123", "foreign"),
        ("+44 7700 900123", "foreign"),
        ("090-abcd-5678", "malformed"),
        ("tel:09012345678", "malformed"),
        ("090-1234-5678 内線12", "malformed"),
        ("09012345678@example.jp", "malformed"),
        ("090+12345678", "malformed"),
        ("+", "malformed"),
        ("---", "malformed"),
        ("090-1234-567", "invalid"),  # too short
        ("090-123", "invalid"),
        ("090-1234-56789", "invalid"),  # too long
        ("0" * 40, "malformed"),  # far too long to parse
        ("", "empty"),
        ("   ", "empty"),
        ("\u3000", "empty"),
        (None, "empty"),
    ],
)
def test_refused_with_the_reason(raw, code):
    assert _code(raw) == code


def test_error_message_quotes_the_input():
    with pytest.raises(ValidationError) as caught:
        normalize_mobile("090-abcd-5678")
    assert "090-abcd-5678" in caught.value.messages[0]


def test_national_format_and_cm_number():
    assert national_format(E164) == "090-1234-5678"
    assert national_format("+81312345678") == "+81312345678"  # not a mobile: shown as stored
    assert national_format("") == ""
    assert to_cm_number(E164) == "00819012345678"


@pytest.mark.parametrize(
    ("raw", "msgid", "word"),
    [
        ("050-1234-5678", "050 numbers are IP phones, not mobiles.", "IP電話"),
        ("020-1234-5678", "020 numbers are for M2M devices, not mobiles.", "M2M"),
        ("03-1234-5678", "This is a landline or special number, not a mobile.", "固定電話"),
        ("+1 202 555 0123", "Only Japanese mobile numbers can receive messages.", "携帯電話"),
        ("", "The phone number is empty.", "電話番号"),
    ],
)
def test_reasons_in_japanese(raw, msgid, word):
    def message():
        with pytest.raises(ValidationError) as caught:
            normalize_mobile(raw)
        return caught.value.messages[0]

    assert_japanese(message, msgid, word)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("090-1234-5678", ("prefix", "+819012345678")),
        ("０９０－１２３４", ("prefix", "+81901234")),
        ("090 1234", ("prefix", "+81901234")),
        ("+81 90-1234-5678", ("prefix", "+819012345678")),
        ("+81 (0)90 1234", ("prefix", "+81901234")),
        ("0081 90 1234 5678", ("prefix", "+819012345678")),
        ("819012345678", ("prefix", "+819012345678")),
        ("5678", ("contains", "5678")),
        ("1234-5678", ("contains", "12345678")),
        ("+1 415 555", None),
        ("12", None),
        ("山田", None),
        ("Yamada 090", None),
        ("", None),
    ],
)
def test_mobile_search_key_reads_every_way_people_write_a_number(typed, expected):
    assert mobile_search_key(typed) == expected
