"""Tracked links: campaign buttons that count a click, then redirect to the campaign's own URL.

The engine sends each person a copy of the campaign's rich content whose http/https button and chip
URLs go through a signed console link (``rewrite_tracked_links``; the signing itself is in
core.signed_links). A click arrives at ``messaging:tracked_link``, which checks the token and that the
URL is one of the campaign's targets (``tracked_link_target``: no open redirect) and counts the
click once per person (``link_click_record``).
"""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

from campaigns.models import Campaign, Contact
from core.personalize import personalize_text
from core.rich_content import iter_urls
from core.signed_links import parse_tracked_link_token, tracked_link_url
from messaging.engagement import engagement_record
from messaging.models import Delivery, EngagementKind


def tracked_link_target(token: str, url: str) -> tuple[Campaign, int, str] | None:
    """(campaign, contact id, url) when the token is ours and ``url`` is one of the campaign's
    http/https button targets; None otherwise (no open redirect)."""
    parsed = parse_tracked_link_token(token, url)
    if parsed is None:
        return None
    campaign_id, contact_id = parsed
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    contact = Contact.objects.filter(pk=contact_id).first()
    if campaign is None or contact is None or contact.organization_id != campaign.organization_id:
        return None
    try:
        targets = set(iter_urls(campaign.content or {}))
    except (AttributeError, TypeError, KeyError):
        targets = set()
    personalized = {personalize_text(target, contact.name, contact.attributes or {}) for target in targets}
    if url not in targets and url not in personalized:
        return None
    return campaign, contact_id, url


def link_click_record(campaign: Campaign, contact_id: int) -> bool:
    """Count the person's click for the campaign (once), on the channel their message went out on."""
    channel = (
        Delivery.objects.filter(campaign=campaign, contact_id=contact_id).values_list("channel", flat=True).first()
        or ""
    )
    return engagement_record(campaign.pk, contact_id, EngagementKind.CLICKED, channel)


def rewrite_tracked_links(document: dict, campaign_id: int, contact_id: int) -> dict:
    """A copy of a (personalized) rich-content document whose http/https button and chip URLs go
    through ``tracked_link_url``: what the engine sends so that clicks count in the campaign's stats.
    The redirect only ever leads to a URL that is in the campaign's content."""
    result = copy.deepcopy(document)
    cards = []
    if isinstance(result.get("card"), dict):
        cards.append(result["card"])
    if isinstance(result.get("carousel"), dict):
        cards.extend(card for card in result["carousel"].get("cards") or [] if isinstance(card, dict))
    suggestions = list(result.get("chips") or [])
    for card in cards:
        suggestions.extend(card.get("buttons") or [])
    for item in suggestions:
        if isinstance(item, dict) and item.get("type") == "open_url":
            url = item.get("url") or ""
            if urlsplit(url).scheme in ("http", "https"):
                item["url"] = tracked_link_url(campaign_id, contact_id, url)
    return result
