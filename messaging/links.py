"""Tracked links: campaign buttons that count a click, then redirect to the campaign's own URL.

The engine sends each person a copy of the campaign's rich content whose http/https button and chip
URLs go through a signed console link (``rewrite_tracked_links``; the signing itself is in
core.signed_links). A click arrives at ``messaging:tracked_link``, which checks the token and that the
URL is one of the campaign's targets (``tracked_link_target``: no open redirect) and counts the
click once per person (``link_click_record``).

Short links in SMS text (``{{link:https://…}}``, core.short_links) carry only a signed token: the
delivery and the link's index. ``short_link_target`` checks the signature (no database), then reads
the delivery with its campaign's SMS text in one primary-key lookup, and answers the URL written in
that text at that index — nothing else, so there is no open redirect. ``short_link_click_record``
counts the click once per person for the campaign with a single statement
(messaging.engagement), on the channel the message went out on (SMS).
"""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

from campaigns.models import Campaign, Contact
from core.personalize import personalize_text
from core.rich_content import iter_urls
from core.short_links import link_targets
from core.signed_links import parse_short_link_token, parse_tracked_link_token, tracked_link_url
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


class ShortLinkClick:
    """What a valid short-link token leads to: the delivery's ids and the link's target URL."""

    __slots__ = ("campaign_id", "contact_id", "channel", "url")

    def __init__(self, campaign_id, contact_id, channel, url):
        self.campaign_id, self.contact_id, self.channel, self.url = campaign_id, contact_id, channel, url


def short_link_target(token: str) -> ShortLinkClick | None:
    """The click a short-link token stands for, or None when the token is not ours, the delivery is
    gone (or its text erased by retention), or the text has no link at that index."""
    parsed = parse_short_link_token(token)
    if parsed is None:
        return None
    delivery_id, index = parsed
    row = (
        Delivery.objects.filter(pk=delivery_id)
        .values_list("campaign_id", "contact_id", "channel", "sms_text", "campaign__sms_text")
        .first()
    )
    if row is None:
        return None
    campaign_id, contact_id, channel, own_text, campaign_text = row
    # A campaign's deliveries send the campaign's text; a single message (API, test send) its own.
    targets = link_targets((campaign_text if campaign_id else own_text) or "")
    if index >= len(targets) or urlsplit(targets[index]).scheme.lower() not in ("http", "https"):
        return None
    return ShortLinkClick(campaign_id, contact_id, channel, targets[index])


def short_link_click_record(click: ShortLinkClick) -> bool:
    """Count the person's click for the campaign once (single messages have no campaign to count for)."""
    if not click.campaign_id or not click.contact_id:
        return False
    return engagement_record(click.campaign_id, click.contact_id, EngagementKind.CLICKED, click.channel)
