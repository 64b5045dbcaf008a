"""What the engine's stages pass along: a claimed delivery (``Row``), what a batch needs to know
about its campaign or single message (``SendContext``), and the content as each person gets it."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from accounts.models import GatewayAccount
from campaigns.models import Campaign, Classification
from core import throttle
from core.carriers import PLUS_MESSAGE_CARRIERS, carrier_approved
from core.personalize import personalize_content, personalize_text
from core.rich_content import iter_urls
from core.short_links import fill_short_links, has_links, short_link_base
from core.signed_links import PLACEHOLDER_KEY as OPT_OUT_KEY
from core.signed_links import opt_out_url
from messaging.links import rewrite_tracked_links
from messaging.models import Delivery


@dataclass
class Row:
    """A claimed delivery with its contact, as the send and record stages need it."""

    id: int
    uuid: str  # canonical, dashed: the id the carriers see
    contact_id: int
    phone: str
    name: str
    attributes: dict
    opted_out: bool
    channel: str
    pending_fallback: bool
    fallback_reason: str = ""
    attempts: int = 1
    carrier: str = ""
    sms_gateway_id: int | None = None  # the gateway the SMS leg went (or may have gone) through
    sms_segments: int | None = None  # segments of the SMS text as sent (set when its leg is built)


@dataclass
class SendContext:
    """What a batch needs to know about its campaign (or its single message)."""

    campaign_id: int | None
    organization_id: int
    content: dict
    sms_text: str
    sms_sender: str
    classification: str
    ttl_seconds: int
    rcs_gateway: GatewayAccount | None
    sms_gateway: GatewayAccount | None
    approved_carriers: frozenset[str] = frozenset(PLUS_MESSAGE_CARRIERS)
    lane: str = throttle.BULK
    backup_sms_gateway: GatewayAccount | None = None
    short_link_base: str = ""  # where the SMS text's tracked links point (core.short_links)

    @property
    def traffic_type(self) -> str:
        return "PROMOTION" if self.classification == Classification.PROMOTION else "TRANSACTION"

    @functools.cached_property
    def has_links(self) -> bool:
        return any(True for _ in iter_urls(self.content or {}))

    @functools.cached_property
    def has_sms_links(self) -> bool:
        return has_links(self.sms_text or "")

    @functools.cached_property
    def personalized(self) -> bool:
        """Whether the rich content has placeholders (otherwise everyone gets the same document)."""
        return "{{" in json.dumps(self.content or {}, ensure_ascii=False)

    @functools.cached_property
    def uses_opt_out_link(self) -> bool:
        return OPT_OUT_KEY in json.dumps(self.content or {}, ensure_ascii=False) or OPT_OUT_KEY in (self.sms_text or "")

    @property
    def provider_fallback_configured(self) -> bool:
        return bool(self.sms_gateway and self.sms_gateway.provider_fallback)

    @property
    def provider_fallback(self) -> bool:
        """Whether the provider decides RCS or SMS at send time. It does not know which carriers
        approved the account, so it may decide only for an account every carrier approved."""
        return self.provider_fallback_configured and carrier_approved("", self.approved_carriers)

    def rcs_allowed(self, carrier: str) -> bool:
        """Whether +Message may go to a number on ``carrier`` (as the gateway reported it)."""
        return carrier_approved(carrier, self.approved_carriers)


def context_for_campaign(campaign: Campaign) -> SendContext:
    account = campaign.official_account
    return SendContext(
        campaign_id=campaign.pk,
        organization_id=campaign.organization_id,
        content=campaign.content,
        sms_text=campaign.sms_text,
        sms_sender=account.sms_sender_id,
        classification=campaign.classification,
        ttl_seconds=campaign.ttl_seconds,
        rcs_gateway=account.rcs_gateway,
        sms_gateway=account.sms_gateway,
        approved_carriers=account.approved_carriers,
        backup_sms_gateway=account.backup_sms_gateway,
        short_link_base=short_link_base(campaign.organization.short_link_base),
    )


def context_for_single(delivery: Delivery) -> SendContext:
    account = delivery.official_account
    return SendContext(
        campaign_id=None,
        organization_id=delivery.organization_id,
        content=delivery.content or {},
        sms_text=delivery.sms_text,
        sms_sender=account.sms_sender_id,
        classification=delivery.classification or Classification.TRANSACTION,
        ttl_seconds=delivery.ttl_seconds or 3600,
        rcs_gateway=account.rcs_gateway,
        sms_gateway=account.sms_gateway,
        approved_carriers=account.approved_carriers,
        backup_sms_gateway=account.backup_sms_gateway,
        short_link_base=short_link_base(delivery.organization.short_link_base),
    )


def _extras(ctx: SendContext, row: Row) -> dict | None:
    """Per-person values beyond the contact's own: the signed opt-out link, made only when used."""
    return {OPT_OUT_KEY: opt_out_url(ctx.organization_id, row.contact_id)} if ctx.uses_opt_out_link else None


def content_for(ctx: SendContext, row: Row) -> dict:
    """The rich content as this person gets it: personalized, and for a campaign with links, each
    link going through the console's click tracking."""
    content = ctx.content
    if ctx.personalized:
        content = personalize_content(content, row.name, row.attributes, _extras(ctx, row))
    if ctx.campaign_id and ctx.has_links:
        content = rewrite_tracked_links(content, ctx.campaign_id, row.contact_id)
    return content


def sms_text_for(ctx: SendContext, row: Row) -> str:
    """The SMS text as this person gets it: each tracked link as this delivery's short URL (filled
    first, so that nothing a contact's attributes hold can become a link), then personalized."""
    text = ctx.sms_text
    if ctx.has_sms_links:
        text = fill_short_links(text, ctx.short_link_base, row.id)
    return personalize_text(text, row.name, row.attributes, _extras(ctx, row))
