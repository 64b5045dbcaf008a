"""The composer's rich-content builder: its state, the document it makes, its add/remove operations
and the view-model its templates render.

The builder's inputs are named by the rich-content validator's own field paths
(``carousel.cards[1].buttons[0].label``), so the validator's errors land beside the input that
caused them and the same parser serves the save, the live preview and the builder's add/remove
operations. All four message types are kept in the builder state while the marketer switches
between them; only the chosen one becomes the content document.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.compliance import TOKYO
from campaigns.media import KIND_MAX_BYTES, display_url, media_guidance
from core import rich_content as rc

KINDS = ("text", "media", "card", "carousel")
SUGGESTION_FIELDS = ("type", "label", "postback", "url", "phone", "latitude", "longitude", "query", "title",
                     "description", "start", "end")
_TOKEN = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")
_ALLOWED_ROOTS = ("text", "media", "card", "carousel", "chips")
MAX_INDEX = 20  # far above every limit; stops a crafted form from building huge lists


# --- Builder state --------------------------------------------------------------------------------

def empty_card() -> dict:
    return {"title": "", "description": "", "media": {"url": "", "height": "MEDIUM"}, "buttons": []}


def empty_suggestion(kind="reply") -> dict:
    return {"type": kind, "label": "", "postback": ""}


def empty_state() -> dict:
    return {
        "kind": "text",
        "text": "",
        "media": {"url": "", "kind": "image"},
        "card": empty_card(),
        "carousel": {"width": "MEDIUM", "cards": [empty_card(), empty_card()]},
        "chips": [],
    }


def set_path(root: dict, path: str, value) -> None:
    tokens = [(name, int(index) if index else None) for name, index in _TOKEN.findall(path)]
    if not tokens or tokens[0][0] not in _ALLOWED_ROOTS:
        return
    node = root
    for position, (name, index) in enumerate(tokens):
        last = position == len(tokens) - 1
        if name:
            if last:
                node[name] = value
                return
            following = tokens[position + 1]
            default = {} if following[0] else []
            if not isinstance(node.get(name), type(default)):
                node[name] = default
            node = node[name]
        else:
            if index is None or index >= MAX_INDEX or not isinstance(node, list):
                return
            while len(node) <= index:
                node.append({})
            if last:
                node[index] = value
                return
            if not isinstance(node[index], dict):
                node[index] = {}
            node = node[index]


def state_from_post(data) -> dict:
    """The builder state from posted fields (``data`` is a QueryDict or a plain dict)."""
    raw: dict = {}
    for key in data:
        if key.split(".", 1)[0].split("[", 1)[0] in _ALLOWED_ROOTS and not key.endswith(".upload"):
            set_path(raw, key, data.get(key))
    state = empty_state()
    kind = data.get("kind")
    state["kind"] = kind if kind in KINDS else "text"
    state["text"] = raw.get("text") or ""
    if isinstance(raw.get("media"), dict):
        state["media"].update({k: v for k, v in raw["media"].items() if k in ("url", "kind")})
    if isinstance(raw.get("card"), dict):
        state["card"] = _card_state(raw["card"])
    if isinstance(raw.get("carousel"), dict):
        carousel = raw["carousel"]
        cards = [_card_state(c) for c in carousel.get("cards") or [] if isinstance(c, dict)]
        state["carousel"] = {"width": carousel.get("width") or "MEDIUM", "cards": cards}
    if isinstance(raw.get("chips"), list):
        state["chips"] = [_suggestion_state(s) for s in raw["chips"] if isinstance(s, dict)]
    return state


def _card_state(raw: dict) -> dict:
    card = empty_card()
    card["title"] = raw.get("title") or ""
    card["description"] = raw.get("description") or ""
    if isinstance(raw.get("media"), dict):
        card["media"].update({k: v for k, v in raw["media"].items() if k in ("url", "height")})
    card["buttons"] = [_suggestion_state(s) for s in raw.get("buttons") or [] if isinstance(s, dict)]
    return card


def _suggestion_state(raw: dict) -> dict:
    item = {name: (raw.get(name) or "") for name in SUGGESTION_FIELDS}
    if item["type"] not in rc.SUGGESTION_TYPES:
        item["type"] = "reply"
    return item


def state_from_document(document) -> dict:
    """The builder state of a saved content document (the other message types start empty)."""
    state = empty_state()
    if not isinstance(document, dict):
        return state
    for kind in KINDS:
        if document.get(kind):
            state["kind"] = kind
    if isinstance(document.get("text"), str):
        state["text"] = document["text"]
    if isinstance(document.get("media"), dict):
        state["media"].update(document["media"])
    if isinstance(document.get("card"), dict):
        state["card"] = _card_state(_stringify_card(document["card"]))
    if isinstance(document.get("carousel"), dict):
        cards = [_card_state(_stringify_card(c)) for c in document["carousel"].get("cards") or []]
        state["carousel"] = {"width": document["carousel"].get("width", "MEDIUM"), "cards": cards}
    state["chips"] = [_suggestion_state(_stringify_suggestion(s)) for s in document.get("chips") or []]
    return state


def _stringify_card(card: dict) -> dict:
    card = dict(card)
    card["buttons"] = [_stringify_suggestion(b) for b in card.get("buttons") or []]
    return card


def _stringify_suggestion(item: dict) -> dict:
    out = {k: ("" if v is None else str(v)) for k, v in item.items()}
    for key in ("start", "end"):
        if out.get(key):
            out[key] = _to_local_input(out[key])
    return out


def _to_local_input(value: str) -> str:
    """An ISO timestamp as the value of a datetime-local input, in Japan time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if timezone.is_aware(moment):
        moment = moment.astimezone(TOKYO)
    return moment.strftime("%Y-%m-%dT%H:%M")


# --- State → document -------------------------------------------------------------------------------

def _number(value):
    if isinstance(value, (int, float)):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        return value or None


def _datetime_value(value: str):
    """datetime-local inputs carry no zone: they are Japan time."""
    if not value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=TOKYO)
    return moment.isoformat()


def suggestion_document(item: dict) -> dict:
    kind = item.get("type") or "reply"
    out = {"type": kind, "label": (item.get("label") or "").strip()}
    postback = (item.get("postback") or "").strip()
    if kind == "reply":
        out["postback"] = postback or out["label"]
    elif postback:
        out["postback"] = postback
    if kind == "open_url":
        out["url"] = (item.get("url") or "").strip()
    elif kind == "dial":
        out["phone"] = (item.get("phone") or "").strip()
    elif kind == "location":
        out["latitude"] = _number(item.get("latitude"))
        out["longitude"] = _number(item.get("longitude"))
        if item.get("query"):
            out["query"] = item["query"]
    elif kind == "calendar":
        out["title"] = item.get("title") or ""
        if item.get("description"):
            out["description"] = item["description"]
        out["start"] = _datetime_value(item.get("start") or "")
        out["end"] = _datetime_value(item.get("end") or "")
    return out


def card_document(card: dict) -> dict:
    out = {}
    for key in ("title", "description"):
        if card.get(key):
            out[key] = card[key]
    media = card.get("media") or {}
    if media.get("url"):
        out["media"] = {"url": media["url"].strip(), "height": media.get("height") or "MEDIUM"}
    if card.get("buttons"):
        out["buttons"] = [suggestion_document(b) for b in card["buttons"]]
    return out


def document_from_state(state: dict) -> dict:
    kind = state["kind"]
    if kind == "text":
        document = {"text": state["text"]}
    elif kind == "media":
        media = state["media"]
        document = {"media": {"url": (media.get("url") or "").strip(), "kind": media.get("kind") or "image"}}
    elif kind == "card":
        document = {"card": card_document(state["card"])}
    else:
        carousel = state["carousel"]
        document = {"carousel": {"width": carousel.get("width") or "MEDIUM",
                                 "cards": [card_document(c) for c in carousel["cards"]]}}
    if state["chips"]:
        document["chips"] = [suggestion_document(c) for c in state["chips"]]
    return document


# What to do when the chosen message type is still empty, said at the input to fill in.
EMPTY_KIND_FIELDS = {
    "text": ("text", _("Write the message text (up to %(limit)s characters).")),
    "media": ("media.url", _("Upload an image, a video or a PDF, or enter the public URL of one.")),
    "card": ("card", _("Give the card a title, a description or an image.")),
}


def _chosen_kind_if_empty(document: dict) -> str | None:
    """The one message type the builder made ``document`` from, when the marketer left it empty."""
    chosen = [key for key in rc.MAIN_ELEMENTS if key in document]
    if len(chosen) != 1:
        return None
    value = document[chosen[0]]
    if chosen[0] == "media":
        return "media" if not (value or {}).get("url") else None
    return chosen[0] if value in (None, "", {}, []) else None


def content_errors(document: dict) -> dict[str, list[str]]:
    """The validator's errors keyed by field path; empty when the document is valid.

    An empty message gets, instead of the validator's general words, what to do at the input of
    the chosen type (“write the message text”, “upload an image …”).
    """
    try:
        rc.validate_rich_content(document)
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            errors = {field: [str(m) for e in errs for m in e.messages] for field, errs in error.error_dict.items()}
        else:
            errors = {"content": [str(m) for m in error.messages]}
    else:
        return {}
    kind = _chosen_kind_if_empty(document)
    if kind in EMPTY_KIND_FIELDS:
        field, message = EMPTY_KIND_FIELDS[kind]
        errors.pop("content", None)
        errors[field] = [str(message) % {"limit": f"{rc.TEXT_MAX:,}"}]
    return errors


# --- Builder operations (add / remove cards, buttons, chips) --------------------------------------

def apply_operation(state: dict, op: str) -> None:
    """Apply one builder operation such as ``add_card``, ``remove_card:2``, ``add_button:card``,
    ``add_button:1`` or ``remove_chip:0`` to ``state`` (limits respected)."""
    name, _sep, arg = (op or "").partition(":")
    cards = state["carousel"]["cards"]

    def card_at(ref):
        if ref == "card":
            return state["card"]
        if ref.isdigit() and int(ref) < len(cards):
            return cards[int(ref)]
        return None

    if name == "add_card" and len(cards) < rc.CAROUSEL_MAX:
        cards.append(empty_card())
        state["kind"] = "carousel"
    elif name == "remove_card" and arg.isdigit() and int(arg) < len(cards):
        cards.pop(int(arg))
    elif name == "move_card" and ":" in arg:
        index_text, direction = arg.split(":", 1)
        if index_text.isdigit():
            index = int(index_text)
            target = index - 1 if direction == "left" else index + 1
            if 0 <= index < len(cards) and 0 <= target < len(cards):
                cards[index], cards[target] = cards[target], cards[index]
    elif name == "add_button":
        card = card_at(arg)
        if card is not None and len(card["buttons"]) < rc.CARD_BUTTONS_MAX:
            card["buttons"].append(empty_suggestion("open_url"))
    elif name == "remove_button" and ":" in arg:
        ref, index_text = arg.rsplit(":", 1)
        card = card_at(ref)
        if card is not None and index_text.isdigit() and int(index_text) < len(card["buttons"]):
            card["buttons"].pop(int(index_text))
    elif name == "add_chip" and len(state["chips"]) < rc.CHIPS_MAX:
        state["chips"].append(empty_suggestion("reply"))
    elif name == "remove_chip" and arg.isdigit() and int(arg) < len(state["chips"]):
        state["chips"].pop(int(arg))


# --- Builder view-model (what the templates render) ---------------------------------------------

def _field(path: str, value, errors: dict, limit: int | None = None) -> dict:
    return {"name": path, "value": "" if value is None else value, "errors": errors.get(path, []), "limit": limit}


def _suggestion_vm(prefix: str, index: int, item: dict, errors: dict, remove_op: str) -> dict:
    limits = {"label": rc.LABEL_MAX, "postback": rc.POSTBACK_MAX, "url": rc.URL_MAX, "title": rc.CARD_TITLE_MAX,
              "query": rc.CARD_TITLE_MAX, "description": rc.CARD_DESCRIPTION_MAX}
    path = f"{prefix}[{index}]"
    vm = {"path": path, "index": index, "type_value": item.get("type") or "reply", "remove_op": remove_op,
          "errors": errors.get(path, []) + errors.get(f"{path}.type", [])}
    for name in SUGGESTION_FIELDS:
        vm[name] = _field(f"{path}.{name}", item.get(name), errors, limits.get(name))
    return vm


def media_slot(path: str, url, errors: dict, kind: str | None = None) -> dict:
    """One media input: the stored URL, the file chooser and the errors of both."""
    if kind is None and isinstance(url, str):
        kind = "video" if url.lower().rsplit("?", 1)[0].endswith((".mp4", ".webm")) else "image"
    kinds = ("image", "video", "file") if path == "media" else ("image", "video")
    return {"path": path, "url": url or "", "display_url": display_url(url or ""), "kind": kind,
            "is_message_media": path == "media", "guidance": media_guidance(kinds),
            "limits": {kind: limit for kind, limit in KIND_MAX_BYTES.items() if kind in kinds}, "warnings": [],
            "errors": errors.get(f"{path}.url", []) + errors.get(path, []) + errors.get(f"{path}.kind", [])}


def _card_vm(path: str, ref: str, index: int, card: dict, errors: dict, total: int = 1) -> dict:
    buttons = [_suggestion_vm(f"{path}.buttons", i, b, errors, f"remove_button:{ref}:{i}")
               for i, b in enumerate(card["buttons"])]
    media = card.get("media") or {}
    return {
        "path": path,
        "ref": ref,
        "index": index,
        "number": index + 1,
        "first": index == 0,
        "last": index == total - 1,
        "errors": errors.get(path, []),
        "title": _field(f"{path}.title", card.get("title"), errors, rc.CARD_TITLE_MAX),
        "description": _field(f"{path}.description", card.get("description"), errors, rc.CARD_DESCRIPTION_MAX),
        "media_url": _field(f"{path}.media.url", media.get("url"), errors),
        "slot": media_slot(f"{path}.media", media.get("url"), errors),
        "media_height": _field(f"{path}.media.height", media.get("height") or "MEDIUM", errors),
        "media_errors": errors.get(f"{path}.media", []),
        "buttons": buttons,
        "buttons_errors": errors.get(f"{path}.buttons", []),
        "can_add_button": len(buttons) < rc.CARD_BUTTONS_MAX,
    }


def builder_context(state: dict, errors: dict) -> dict:
    cards = state["carousel"]["cards"]
    return {
        "kind": state["kind"],
        "kinds": [("text", _("Text")), ("media", _("Media")), ("card", _("Rich card")), ("carousel", _("Carousel"))],
        "text": _field("text", state["text"], errors, rc.TEXT_MAX),
        "media_url": _field("media.url", state["media"].get("url"), errors),
        "slot": media_slot("media", state["media"].get("url"), errors, kind=state["media"].get("kind") or "image"),
        "media_kind": _field("media.kind", state["media"].get("kind") or "image", errors),
        "media_errors": errors.get("media", []),
        "card": _card_vm("card", "card", 0, state["card"], errors),
        "carousel_width": _field("carousel.width", state["carousel"].get("width") or "MEDIUM", errors),
        "carousel_cards": [_card_vm(f"carousel.cards[{i}]", str(i), i, c, errors, len(cards))
                           for i, c in enumerate(cards)],
        "carousel_errors": errors.get("carousel.cards", []) + errors.get("carousel", []),
        "can_add_card": len(cards) < rc.CAROUSEL_MAX,
        "can_remove_card": len(cards) > rc.CAROUSEL_MIN,
        "chips": [_suggestion_vm("chips", i, c, errors, f"remove_chip:{i}") for i, c in enumerate(state["chips"])],
        "chips_errors": errors.get("chips", []),
        "can_add_chip": len(state["chips"]) < rc.CHIPS_MAX,
        "content_errors": errors.get("content", []),
        "limits": {"text": rc.TEXT_MAX, "label": rc.LABEL_MAX, "buttons": rc.CARD_BUTTONS_MAX,
                   "chips": rc.CHIPS_MAX, "cards_min": rc.CAROUSEL_MIN, "cards_max": rc.CAROUSEL_MAX},
        "suggestion_types": [("reply", _("Reply")), ("open_url", _("Open URL")), ("dial", _("Dial")),
                             ("location", _("Show location")), ("calendar", _("Add to calendar"))],
        "media_heights": [("SHORT", _("Short")), ("MEDIUM", _("Medium")), ("TALL", _("Tall"))],
        "carousel_widths": [("SMALL", _("Small")), ("MEDIUM", _("Medium"))],
        "media_kinds": [("image", _("Image")), ("video", _("Video")), ("file", _("File (PDF)"))],
    }
