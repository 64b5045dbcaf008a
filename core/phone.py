"""Japanese mobile numbers: normalize what people type and spreadsheets hold into E.164.

Only mobile numbers (070/080/090 and 060 + 8 digits) can receive +Message or SMS; 050 (VoIP),
020 (M2M), landlines and foreign numbers are refused with the reason.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from phonenumbers import PhoneNumberType

E164_JP_MOBILE = r"^\+81[6789]0[0-9]{8}$"

# Dashes people and spreadsheets put between digit groups, beyond what NFKC folds to "-".
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−ー－ｰ﹣"), "-")
_ALLOWED = re.compile(r"^\+?[0-9\-\s().]+$")


def normalize_mobile(raw) -> str:
    """Return the E.164 form of a Japanese mobile number, or raise ValidationError with the reason."""
    if raw is None:
        raise ValidationError(_("The phone number is empty."), code="empty")
    text = unicodedata.normalize("NFKC", str(raw)).translate(_DASHES).strip()
    if not text:
        raise ValidationError(_("The phone number is empty."), code="empty")
    if not _ALLOWED.match(text):
        raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": raw}, code="malformed")
    compact = re.sub(r"[\s\-().]", "", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, "JP")
    except phonenumbers.NumberParseException:
        raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": raw}, code="malformed") from None
    if number.country_code != 81:
        raise ValidationError(_("Only Japanese mobile numbers can receive messages."), code="foreign")
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("“%(value)s” is not a valid Japanese number.") % {"value": raw}, code="invalid")
    kind = phonenumbers.number_type(number)
    national = str(number.national_number)
    if kind == PhoneNumberType.VOIP or national.startswith("50"):
        raise ValidationError(_("050 numbers are IP phones, not mobiles."), code="voip")
    if national.startswith("20"):
        raise ValidationError(_("020 numbers are for M2M devices, not mobiles."), code="m2m")
    if kind != PhoneNumberType.MOBILE:
        raise ValidationError(_("This is a landline or special number, not a mobile."), code="not_mobile")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not re.match(E164_JP_MOBILE, e164):
        raise ValidationError(_("This is a landline or special number, not a mobile."), code="not_mobile")
    return e164


def mobile_search_key(raw) -> tuple[str, str] | None:
    """What a search box's text means as (part of) a number stored in E.164, or None if it is not one.

    ``("prefix", "+81901234")`` for the start of a number written nationally (090-1234…, full-width
    digits too) or internationally (+81 90…, 0081 90…, 81 90… with at least 11 digits), so it matches
    with ``startswith``; ``("contains", "5678")`` for other runs of at least 3 digits (the end of a
    number). Names and anything with letters give None.
    """
    text = unicodedata.normalize("NFKC", str(raw or "")).translate(_DASHES).strip()
    if not text or not _ALLOWED.match(text):
        return None
    international = text.startswith("+")
    digits = re.sub(r"[^0-9]", "", text)
    if digits.startswith("00"):
        digits, international = digits[2:], True
    if international or (digits.startswith("81") and len(digits) >= 11):
        if not digits.startswith("81"):
            return None  # another country's number: no Japanese mobile starts with it
        national = digits[2:].lstrip("0")  # "+81 (0)90 …" is written too
        return ("prefix", "+81" + national) if national else None
    if digits.startswith("0") and len(digits) >= 2:
        return "prefix", "+81" + digits[1:]
    if len(digits) >= 3:
        return "contains", digits
    return None


def national_format(e164: str) -> str:
    """090-1234-5678 style, for display."""
    if re.match(E164_JP_MOBILE, e164 or ""):
        digits = "0" + e164[3:]
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return e164 or ""


def to_cm_number(e164: str) -> str:
    """CM.com wants international numbers with a 00 prefix: +819012345678 → 00819012345678."""
    return "00" + e164.lstrip("+")
