"""SMS text: encoding, segment counting and the one validator for fallback texts.

GSM-7 carries 160 characters in one segment and 153 per part of a concatenated message (characters
of the extension table take two places). Anything outside GSM-7 — all Japanese text — is sent as
UCS-2: 70 characters in one segment, 67 per part, counted in UTF-16 code units. Japanese carriers
accept about 670 full-width characters; vendors cap at 660, which is our default limit.

Tracked links (``{{link:https://…}}``, core.short_links) are counted as sent: at the length of the
organization's short URLs, not as the placeholder is typed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.short_links import link_problems, short_link_base, short_link_length, text_as_sent

DEFAULT_LIMIT = 660

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsMeasure:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # what a person counts
    units: int  # what the network counts (septets or UTF-16 code units)
    segments: int
    per_segment: int


def measure_sms(text: str) -> SmsMeasure:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units <= single:
        segments, per_segment = (1 if units else 0), single
    else:
        segments, per_segment = math.ceil(units / multi), multi
    return SmsMeasure(encoding, len(text), units, segments, per_segment)


def measure_sms_as_sent(text: str, short_link_base_setting: str = "") -> SmsMeasure:
    """``measure_sms`` of the text as people get it: each link placeholder at the short URL's length
    on the organization's short-link base (``short_link_base_setting``; empty = the console's)."""
    return measure_sms(text_as_sent(text or "", short_link_base(short_link_base_setting)))


def validate_sms_text(
    text, limit: int = DEFAULT_LIMIT, field: str = "sms_text", short_link_base_setting: str = ""
) -> SmsMeasure:
    """Raise ValidationError keyed by ``field`` unless ``text`` can be sent as one SMS message.

    Link placeholders must name public http/https URLs, and count at their short URL's length on
    ``short_link_base_setting`` (the organization's setting; empty = the console's own base)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError({field: [_("The SMS text is required.")]})
    if "\x00" in text:
        raise ValidationError({field: [_("The SMS text contains a NUL character.")]})
    problems = link_problems(text)
    if problems:
        raise ValidationError({field: problems})
    measure = measure_sms_as_sent(text, short_link_base_setting)
    if measure.characters > limit and measure.characters != len(text):
        base = short_link_base(short_link_base_setting)
        raise ValidationError(
            {
                field: [
                    _(
                        "The SMS text is %(length)d characters long as sent (each link counts as its "
                        "%(link)d-character short URL); the limit is %(limit)d."
                    )
                    % {"length": measure.characters, "link": short_link_length(base), "limit": limit}
                ]
            }
        )
    if measure.characters > limit:
        raise ValidationError(
            {
                field: [
                    _("The SMS text is %(length)d characters long; the limit is %(limit)d.")
                    % {"length": measure.characters, "limit": limit}
                ]
            }
        )
    return measure
