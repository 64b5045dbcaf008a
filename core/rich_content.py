"""The rich-content document: its schema and the one validator that forms, the API and the engine use.

A document holds exactly one main element — ``text``, ``media``, ``card`` or ``carousel`` — and
optional ``chips`` (suggestions shown under the message)::

    {"text": "…"}
    {"media": {"url": "https://…/a.jpg", "kind": "image"}}
    {"card": {"title": "…", "description": "…", "media": {"url": "…", "height": "MEDIUM"},
              "buttons": [<suggestion>, …]}}
    {"carousel": {"width": "MEDIUM", "cards": [<card>, …]}}
    "chips": [<suggestion>, …]

A suggestion is one of::

    {"type": "reply", "label": "…", "postback": "…"}
    {"type": "open_url", "label": "…", "url": "https://…"}
    {"type": "dial", "label": "…", "phone": "+81…"}
    {"type": "location", "label": "…", "latitude": 35.68, "longitude": 139.76, "query": "…"}
    {"type": "calendar", "label": "…", "title": "…", "start": "ISO-8601", "end": "ISO-8601"}

Limits follow +Message and RBM (docs/architecture.md, "Wire formats and limits"). Errors are collected, not raised one at a time, and
each names the field (a path such as ``carousel.cards[2].buttons[0].label``) and the reason.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.short_links import LINK_OPENING

TEXT_MAX = 2730
CHIPS_MAX = 11
CARD_BUTTONS_MAX = 4
LABEL_MAX = 25
CARD_TITLE_MAX = 200
CARD_DESCRIPTION_MAX = 2000
POSTBACK_MAX = 2048
URL_MAX = 2048
CAROUSEL_MIN = 2
CAROUSEL_MAX = 10

MAIN_ELEMENTS = ("text", "media", "card", "carousel")
SUGGESTION_TYPES = ("reply", "open_url", "dial", "location", "calendar")
MEDIA_KINDS = ("image", "video", "file")
MEDIA_HEIGHTS = ("SHORT", "MEDIUM", "TALL")
CAROUSEL_WIDTHS = ("SMALL", "MEDIUM")

SUGGESTION_FIELDS = {
    "reply": {"postback"},
    "open_url": {"postback", "url"},
    "dial": {"postback", "phone"},
    "location": {"postback", "latitude", "longitude", "query"},
    "calendar": {"postback", "title", "description", "start", "end"},
}
MEDIA_FIELDS = {"url", "kind", "thumbnail_url"}
CARD_MEDIA_FIELDS = {"url", "height", "thumbnail_url"}
CARD_FIELDS = {"title", "description", "media", "buttons"}
CAROUSEL_FIELDS = {"width", "cards"}

_CONTROL_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


class ErrorList:
    """Collects (field, message) pairs and raises them as one ValidationError keyed by field."""

    def __init__(self):
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message) -> None:
        self.errors.setdefault(field or "content", []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def url_problem(value) -> str | None:
    """Why ``value`` is not an acceptable link, or None. Only http and https, no control characters."""
    if not isinstance(value, str) or not value:
        return _("A URL is required.")
    if len(value) > URL_MAX:
        return _("The URL is longer than %(limit)d characters.") % {"limit": URL_MAX}
    if _CONTROL_CHARS.search(value):
        return _("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the host
        return _("Enter a valid URL.")
    if parts.scheme.lower() not in ("http", "https"):
        return _("Only http:// and https:// URLs are allowed.")
    if not parts.netloc or not hostname:
        return _("The URL has no host name.")
    return None


def check_text(errors, field, value, limit, required=True):
    if value is None or value == "":
        if required:
            errors.add(field, _("This field is required."))
        return
    if not isinstance(value, str):
        errors.add(field, _("Must be text."))
        return
    if len(value) > limit:
        errors.add(
            field,
            _("Is %(length)d characters long; the limit is %(limit)d.") % {"length": len(value), "limit": limit},
        )
    if "{{" in value and LINK_OPENING.search(value):
        errors.add(
            field,
            _("{{link:…}} is for the SMS text. In +Message, add an “Open URL” button: its clicks are tracked."),
        )


def _check_url(errors, field, value):
    problem = url_problem(value)
    if problem:
        errors.add(field, problem)


def _check_datetime(errors, field, value):
    if not isinstance(value, str):
        errors.add(field, _("A date and time is required (ISO 8601)."))
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        errors.add(field, _("Not a valid date and time (ISO 8601)."))
        return None


def _reject_unknown(errors, field, item: dict, known) -> None:
    """A key we do not send would be silently dropped; name it instead (often a misspelt field).
    ``field`` is the item's path, empty for the document itself."""
    for key in sorted(set(item) - set(known), key=str):
        errors.add(f"{field}.{key}" if field else key, _("Unknown field."))


def validate_suggestion(errors: ErrorList, field: str, item) -> None:
    if not isinstance(item, dict):
        errors.add(field, _("Must be an object."))
        return
    kind = item.get("type")
    if kind not in SUGGESTION_TYPES:
        errors.add(f"{field}.type", _("Unknown action type; use one of: %(types)s.") % {"types": ", ".join(SUGGESTION_TYPES)})
        return
    _reject_unknown(errors, field, item, {"type", "label"} | SUGGESTION_FIELDS[kind])
    check_text(errors, f"{field}.label", item.get("label"), LABEL_MAX)
    if "postback" in item or kind == "reply":
        check_text(errors, f"{field}.postback", item.get("postback"), POSTBACK_MAX, required=kind == "reply")
    if kind == "open_url":
        _check_url(errors, f"{field}.url", item.get("url"))
    elif kind == "dial":
        phone = item.get("phone")
        if not isinstance(phone, str) or not _PHONE.match(phone.replace("-", "")):
            errors.add(f"{field}.phone", _("A phone number of digits, optionally starting with +, is required."))
    elif kind == "location":
        for axis, bound in (("latitude", 90), ("longitude", 180)):
            value = item.get(axis)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -bound <= value <= bound:
                errors.add(f"{field}.{axis}", _("Must be a number between -%(bound)d and %(bound)d.") % {"bound": bound})
        check_text(errors, f"{field}.query", item.get("query"), CARD_TITLE_MAX, required=False)
    elif kind == "calendar":
        check_text(errors, f"{field}.title", item.get("title"), CARD_TITLE_MAX)
        check_text(errors, f"{field}.description", item.get("description"), CARD_DESCRIPTION_MAX, required=False)
        start = _check_datetime(errors, f"{field}.start", item.get("start"))
        end = _check_datetime(errors, f"{field}.end", item.get("end"))
        if start and end:
            try:
                if end <= start:
                    errors.add(f"{field}.end", _("The end must be after the start."))
            except TypeError:
                errors.add(f"{field}.end", _("Give both times with a time zone, or both without."))


def _validate_suggestions(errors, field, items, limit):
    if items is None:
        return
    if not isinstance(items, list):
        errors.add(field, _("Must be a list."))
        return
    if len(items) > limit:
        errors.add(field, _("Has %(count)d items; the limit is %(limit)d.") % {"count": len(items), "limit": limit})
    for index, item in enumerate(items):
        validate_suggestion(errors, f"{field}[{index}]", item)


def _validate_media(errors, field, media, *, card=False):
    if not isinstance(media, dict):
        errors.add(field, _("Must be an object."))
        return
    _reject_unknown(errors, field, media, CARD_MEDIA_FIELDS if card else MEDIA_FIELDS)
    _check_url(errors, f"{field}.url", media.get("url"))
    if "thumbnail_url" in media:
        _check_url(errors, f"{field}.thumbnail_url", media.get("thumbnail_url"))
    if card:
        if media.get("height", "MEDIUM") not in MEDIA_HEIGHTS:
            errors.add(f"{field}.height", _("Use one of: %(values)s.") % {"values": ", ".join(MEDIA_HEIGHTS)})
    elif media.get("kind", "image") not in MEDIA_KINDS:
        errors.add(f"{field}.kind", _("Use one of: %(values)s.") % {"values": ", ".join(MEDIA_KINDS)})


def _validate_card(errors, field, card):
    if not isinstance(card, dict):
        errors.add(field, _("Must be an object."))
        return
    _reject_unknown(errors, field, card, CARD_FIELDS)
    if not any(card.get(key) for key in ("title", "description", "media")):
        errors.add(field, _("A card needs a title, a description or media."))
    check_text(errors, f"{field}.title", card.get("title"), CARD_TITLE_MAX, required=False)
    check_text(errors, f"{field}.description", card.get("description"), CARD_DESCRIPTION_MAX, required=False)
    if card.get("media") is not None:
        _validate_media(errors, f"{field}.media", card["media"], card=True)
    _validate_suggestions(errors, f"{field}.buttons", card.get("buttons"), CARD_BUTTONS_MAX)


def validate_rich_content(document) -> None:
    """Raise ValidationError (keyed by field path) unless ``document`` is a valid message."""
    errors = ErrorList()
    if not isinstance(document, dict):
        errors.add("content", _("The message must be an object."))
        errors.raise_if_any()
    present = [key for key in MAIN_ELEMENTS if document.get(key) not in (None, "", {}, [])]
    if not present:
        errors.add("content", _("The message is empty: write a text, or add media, a rich card or a carousel."))
    elif len(present) > 1:
        errors.add("content", _("A message holds exactly one of: text, media, card, carousel."))
    _reject_unknown(errors, "", document, {*MAIN_ELEMENTS, "chips"})
    if "text" in present:
        check_text(errors, "text", document["text"], TEXT_MAX)
    if "media" in present:
        _validate_media(errors, "media", document["media"])
    if "card" in present:
        _validate_card(errors, "card", document["card"])
    if "carousel" in present:
        carousel = document["carousel"]
        if not isinstance(carousel, dict) or not isinstance(carousel.get("cards"), list):
            errors.add("carousel.cards", _("A carousel needs a list of cards."))
        else:
            _reject_unknown(errors, "carousel", carousel, CAROUSEL_FIELDS)
            cards = carousel["cards"]
            if not CAROUSEL_MIN <= len(cards) <= CAROUSEL_MAX:
                errors.add(
                    "carousel.cards",
                    _("A carousel holds %(min)d to %(max)d cards; this one has %(count)d.")
                    % {"min": CAROUSEL_MIN, "max": CAROUSEL_MAX, "count": len(cards)},
                )
            if carousel.get("width", "MEDIUM") not in CAROUSEL_WIDTHS:
                errors.add("carousel.width", _("Use one of: %(values)s.") % {"values": ", ".join(CAROUSEL_WIDTHS)})
            for index, card in enumerate(cards):
                _validate_card(errors, f"carousel.cards[{index}]", card)
    _validate_suggestions(errors, "chips", document.get("chips"), CHIPS_MAX)
    errors.raise_if_any()


def validate_rich_content_field(document) -> None:
    """Model-field validator: the same rules, errors flattened onto the field as "path: reason".

    Django's field validators must raise list-style errors; the keyed ValidationError of
    validate_rich_content would crash Model.full_clean() and the admin with an AttributeError.
    """
    try:
        validate_rich_content(document)
    except ValidationError as error:
        raise ValidationError([f"{field}: {msg}" for field, msgs in error.message_dict.items() for msg in msgs]) from None


def iter_texts(document: dict):
    """Every human-readable string in a valid document (for display-rule checks and previews)."""
    if document.get("text"):
        yield document["text"]
    cards = []
    if document.get("card"):
        cards.append(document["card"])
    if document.get("carousel"):
        cards.extend(document["carousel"].get("cards", []))
    for card in cards:
        for key in ("title", "description"):
            if card.get(key):
                yield card[key]
        for button in card.get("buttons") or []:
            yield button.get("label", "")
    for chip in document.get("chips") or []:
        yield chip.get("label", "")


def iter_urls(document: dict):
    """Every open_url target in a valid document."""
    cards = []
    if document.get("card"):
        cards.append(document["card"])
    if document.get("carousel"):
        cards.extend(document["carousel"].get("cards", []))
    suggestions = list(document.get("chips") or [])
    for card in cards:
        suggestions.extend(card.get("buttons") or [])
    for suggestion in suggestions:
        if suggestion.get("type") == "open_url":
            yield suggestion["url"]
