"""The phone preview of a campaign, shared by the composer and the campaign page: the +Message view
or the SMS view, personalized for a sample contact exactly as the engine personalizes what it sends.
"""

from __future__ import annotations

import copy

from django.utils import timezone

from campaigns.compliance import TOKYO
from campaigns.media import display_url
from campaigns.models import Contact
from core.personalize import is_placeholder_key, personalize_content, personalize_text
from core.short_links import short_link_base, text_as_sent
from core.signed_links import PLACEHOLDER_KEY as OPT_OUT_KEY
from core.signed_links import opt_out_url
from core.sms_text import measure_sms


def attribute_keys(organization, sample=500) -> list[str]:
    """Custom attribute keys seen in the organization's most recent contacts that a placeholder can name."""
    keys: set[str] = set()
    rows = Contact.objects.filter(organization=organization).order_by("-id").values_list("attributes", flat=True)
    for attributes in rows[:sample]:
        if isinstance(attributes, dict):
            keys.update(str(k) for k in attributes)
    return sorted(k for k in keys if is_placeholder_key(k))


def personalized_for(contact, document: dict, sms_text: str) -> tuple[dict, str]:
    """The content and the SMS text exactly as the engine sends them to ``contact``.

    The same call as the fan-out engine (messaging.engine): core.personalize with the contact's name
    and attributes, and the engine's one extra, the contact's signed opt-out link. Without a sample
    contact nothing is filled in: the placeholders show as typed.
    """
    if contact is None:
        return copy.deepcopy(document), sms_text
    attributes = contact.attributes or {}
    extras = {OPT_OUT_KEY: opt_out_url(contact.organization_id, contact.pk)}
    return (personalize_content(document, contact.name, attributes, extras),
            personalize_text(sms_text, contact.name, attributes, extras))


def _sms_measure(text: str, limit: int = 660) -> dict:
    measure = measure_sms(text or "")
    return {"encoding": measure.encoding, "characters": measure.characters, "segments": measure.segments,
            "per_segment": measure.per_segment, "limit": limit, "over": measure.characters > limit}


def preview_context(document, sms_text, account, contact, mode) -> dict:
    """What templates/campaigns/_phone.html draws: the personalized content, its cards and chips, the
    SMS text as sent — each tracked link as an example short URL of the real length — with its
    segment count (placeholders other than links as typed), the account's name and colour."""
    document = document if isinstance(document, dict) else {}
    base = short_link_base(account.organization.short_link_base if account else "")
    sms_as_sent = text_as_sent(sms_text or "", base)
    shown, sms_shown = personalized_for(contact, document, sms_as_sent)
    if isinstance(shown.get("media"), dict):
        shown["media"]["url"] = display_url(shown["media"].get("url"))
    cards = []
    if isinstance(shown.get("card"), dict):
        cards = [shown["card"]]
    elif isinstance(shown.get("carousel"), dict):
        cards = [c for c in shown["carousel"].get("cards") or [] if isinstance(c, dict)]
    for card in cards:
        if isinstance(card.get("media"), dict):
            card["media"]["url"] = display_url(card["media"].get("url"))
    limit = account.sms_gateway.sms_char_limit if account and account.sms_gateway_id else 660
    return {
        "mode": "sms" if mode == "sms" else "rcs",
        "doc": shown,
        "cards": cards,
        "is_carousel": bool(shown.get("carousel")),
        "carousel_width": (shown.get("carousel") or {}).get("width", "MEDIUM") if shown.get("carousel") else "",
        "chips": [c for c in shown.get("chips") or [] if isinstance(c, dict)],
        "account": account,
        "brand_color": account.brand_color if account else "#0B57D0",
        "sms_text": sms_shown,
        "sms": _sms_measure(sms_as_sent, limit),
        "contact": contact,
        "now": timezone.localtime(timezone.now(), TOKYO),
    }
