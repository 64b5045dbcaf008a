"""Tracked short links in SMS text: the ``{{link:https://…}}`` placeholder.

A marketer writes ``{{link:https://shop.example.jp/coupon}}`` in the SMS fallback text. The engine
sends each person the text with every such placeholder replaced by a per-recipient short URL —
the organization's short-link base (by default ``{PUBLIC_BASE_URL}/s/``) followed by a fixed-length
signed token (core.signed_links.short_link_token: the delivery and the link's index). A click on it
redirects to the URL written in the placeholder and nowhere else (messaging.links).

The syntax extends the product's one placeholder grammar (core.personalize: ``{{name}}``); ``link:``
cannot be an attribute key, so the two never clash. The target is written literally (no
placeholders inside it) so that what the redirect goes to is exactly what was approved.

Because the token has a fixed length, ``short_link_length`` is exact: the SMS meter, the preview and
``core.sms_text.validate_sms_text`` all count the text as sent (``text_as_sent``), never the
placeholder as typed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.egress import public_url_refusal
from core.signed_links import SHORT_LINK_TOKEN_LENGTH, short_link_token

MAX_LINKS = 5
LINK_SYNTAX_EXAMPLE = "{{link:https://example.jp/page}}"
MAX_TARGET_LENGTH = 2048
# An opening that looks like a link placeholder, closed or not (to tell the marketer about a typo).
LINK_OPENING = re.compile(r"\{\{\s*link\s*:", re.IGNORECASE)
LINK_PLACEHOLDER = re.compile(r"\{\{\s*link\s*:([^\n{}]*)\}\}", re.IGNORECASE)
# What a short-link base may hold: ASCII that is GSM-7 and counts one place each in an SMS.
_BASE = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9.\-/]*)?")
# Shown in previews and used for counting; not a valid signature, so a click on it counts nothing.
EXAMPLE_TOKEN = "k7x2p9q40m3z8c5w1r"[:SHORT_LINK_TOKEN_LENGTH]


def short_link_base(configured: str = "") -> str:
    """The base a token is appended to: the organization's own, or ``{PUBLIC_BASE_URL}/s/``."""
    base = (configured or "").strip() or f"{settings.PUBLIC_BASE_URL.rstrip('/')}/s/"
    return base if base.endswith("/") else base + "/"


def short_link_length(base: str) -> int:
    """The length of every short URL on ``base`` (the one function that says it)."""
    return len(base) + SHORT_LINK_TOKEN_LENGTH


def example_short_url(base: str) -> str:
    """What a short URL on ``base`` looks like, at its real length (previews, counting)."""
    return base + EXAMPLE_TOKEN


def short_url(base: str, delivery_id: int, index: int) -> str:
    return base + short_link_token(delivery_id, index)


def link_targets(text: str) -> list[str]:
    """The URLs of the text's link placeholders, in order (a token's index points into this)."""
    if not text or "{{" not in text:
        return []
    return [match.group(1).strip() for match in LINK_PLACEHOLDER.finditer(text)]


def has_links(text: str) -> bool:
    return bool(text) and "{{" in text and LINK_PLACEHOLDER.search(text) is not None


def _replace(text: str, url_for_index: Callable[[int], str]) -> str:
    counter = itertools.count()
    return LINK_PLACEHOLDER.sub(lambda _match: url_for_index(next(counter)), text)


def fill_short_links(text: str, base: str, delivery_id: int) -> str:
    """The text with each link placeholder replaced by this delivery's short URL for it."""
    if not has_links(text):
        return text
    return _replace(text, lambda index: short_url(base, delivery_id, index))


def text_as_sent(text: str, base: str) -> str:
    """The text with each link placeholder replaced by an example short URL of the real length."""
    if not has_links(text):
        return text
    example = example_short_url(base)
    return _replace(text, lambda _index: example)


def link_problems(text: str) -> list[str]:
    """What is wrong with the text's link placeholders, for the marketer (empty when nothing is)."""
    if not text or "{{" not in text:
        return []
    problems = []
    if len(LINK_OPENING.findall(text)) != len(LINK_PLACEHOLDER.findall(text)):
        problems.append(
            _("A link placeholder is not closed or holds a brace. Write it as {{link:https://example.jp/page}}.")
        )
    targets = link_targets(text)
    if len(targets) > MAX_LINKS:
        problems.append(_("At most %(max)d links can be tracked in one SMS text.") % {"max": MAX_LINKS})
    for target in targets:
        if not target:
            problems.append(_("A link placeholder has no URL. Write it as {{link:https://example.jp/page}}."))
        elif len(target) > MAX_TARGET_LENGTH or public_url_refusal(target) is not None:
            problems.append(
                _("“%(url)s” is not an http:// or https:// address of a public website.") % {"url": target[:100]}
            )
    return problems


def base_problem(value: str) -> str | None:
    """Why ``value`` cannot be an organization's short-link base, or None."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 100 or _BASE.fullmatch(value) is None:
        return str(
            _("Enter an http:// or https:// address of letters, digits, dots, hyphens and slashes, such as https://s.example.jp/s/.")
        )
    return None
