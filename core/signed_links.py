"""Signed links: short enough for an SMS, unguessable, and tied to one contact.

Opt-out links: the token is ``<org id>.<contact id>.<signature>`` in base 36 with an 80-bit truncated
HMAC; the link is ``{PUBLIC_BASE_URL}/o/<token>/`` and leads to a confirmation page.

Tracked links (campaign buttons): the token is ``<campaign id>.<contact id>.<signature>`` in base 36
with a 96-bit truncated HMAC over the ids and the target URL; the link is
``{PUBLIC_BASE_URL}/messaging/r/<token>/?u=<url>``. Checking that the URL is one of the campaign's
own targets is the caller's work (messaging.links); this module only signs and verifies.

Short links (links in SMS text, core.short_links): the token is 18 lower-case base-36 characters, the
delivery id in 8 (zero-padded), the link's index in the SMS text in 1, and a 46-bit truncated HMAC
in 9; a fixed length, so the SMS length counts the link exactly as sent. It is appended to the
organization's short-link base (by default ``{PUBLIC_BASE_URL}/s/``).

Each kind of link has its own key, derived from SECRET_KEY, so one kind's signature is never valid
for the other.
"""

import base64
import functools
import hashlib
import hmac
from urllib.parse import quote

from django.conf import settings
from django.utils.crypto import constant_time_compare

PLACEHOLDER_KEY = "opt_out_url"

_BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    """A non-negative integer in lower-case base 36 (``int(text, 36)`` reads it back)."""
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _BASE36_DIGITS[rest] + out
        if not number:
            return out


# -- opt-out links -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return hashlib.sha256(f"campaigns.optout:{secret_key}".encode()).digest()


def _signature(payload: str) -> str:
    digest = hmac.new(_key(settings.SECRET_KEY), payload.encode(), hashlib.sha256).digest()[:10]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def opt_out_token(organization_id: int, contact_id: int) -> str:
    payload = f"{base36(organization_id)}.{base36(contact_id)}"
    return f"{payload}.{_signature(payload)}"


def parse_opt_out_token(token: str) -> tuple[int, int] | None:
    """(organization id, contact id), or None if the token is malformed or not ours."""
    try:
        org_part, contact_part, signature = token.split(".")
        if not constant_time_compare(signature, _signature(f"{org_part}.{contact_part}")):
            return None
        return int(org_part, 36), int(contact_part, 36)
    except (ValueError, AttributeError):
        return None


def opt_out_url(organization_id: int, contact_id: int) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/o/{opt_out_token(organization_id, contact_id)}/"


# -- tracked links -------------------------------------------------------------------------------


def _tracked_link_signature(campaign_id: int, contact_id: int, url: str) -> str:
    key = hashlib.sha256(f"messaging.links:{settings.SECRET_KEY}".encode()).digest()
    digest = hmac.new(key, f"{campaign_id}.{contact_id}.{url}".encode(), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tracked_link_token(campaign_id: int, contact_id: int, url: str) -> str:
    signature = _tracked_link_signature(campaign_id, contact_id, url)
    return f"{base36(campaign_id)}.{base36(contact_id)}.{signature}"


def tracked_link_url(campaign_id: int, contact_id: int, url: str) -> str:
    """The console URL that records a click on ``url`` and then redirects to it."""
    token = tracked_link_token(campaign_id, contact_id, url)
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/messaging/r/{token}/?u={quote(url, safe='')}"


def parse_tracked_link_token(token: str, url: str) -> tuple[int, int] | None:
    """(campaign id, contact id) when ``token`` was signed by us for exactly ``url``; None otherwise."""
    try:
        campaign_part, contact_part, signature = token.split(".")
        campaign_id, contact_id = int(campaign_part, 36), int(contact_part, 36)
    except (ValueError, AttributeError):
        return None
    if not constant_time_compare(signature, _tracked_link_signature(campaign_id, contact_id, url)):
        return None
    return campaign_id, contact_id


# -- short links (SMS) ---------------------------------------------------------------------------

SHORT_LINK_ID_WIDTH = 8  # 36**8: 2.8 trillion deliveries
SHORT_LINK_SIGNATURE_WIDTH = 9
SHORT_LINK_TOKEN_LENGTH = SHORT_LINK_ID_WIDTH + 1 + SHORT_LINK_SIGNATURE_WIDTH
SHORT_LINK_MAX_INDEX = 35  # one base-36 digit


@functools.lru_cache(maxsize=4)
def _short_link_key(secret_key: str) -> bytes:
    return hashlib.sha256(f"messaging.short_links:{secret_key}".encode()).digest()


def _short_link_signature(payload: str) -> str:
    digest = hmac.new(_short_link_key(settings.SECRET_KEY), payload.encode(), hashlib.sha256).digest()
    return base36(int.from_bytes(digest[:6], "big") % 36**SHORT_LINK_SIGNATURE_WIDTH).rjust(
        SHORT_LINK_SIGNATURE_WIDTH, "0"
    )


def short_link_token(delivery_id: int, index: int) -> str:
    """The fixed-length token of link number ``index`` (0-based) in the SMS text of a delivery."""
    if not 0 <= index <= SHORT_LINK_MAX_INDEX:
        raise ValueError("a short link's index is 0 to 35")
    payload = base36(delivery_id).rjust(SHORT_LINK_ID_WIDTH, "0") + base36(index)
    if len(payload) != SHORT_LINK_ID_WIDTH + 1:
        raise OverflowError("the delivery id does not fit a short link")
    return payload + _short_link_signature(payload)


def parse_short_link_token(token: str) -> tuple[int, int] | None:
    """(delivery id, link index) when ``token`` was signed by us; None otherwise."""
    if not isinstance(token, str) or len(token) != SHORT_LINK_TOKEN_LENGTH:
        return None
    if any(char not in _BASE36_DIGITS for char in token):
        return None
    payload, signature = token[: SHORT_LINK_ID_WIDTH + 1], token[SHORT_LINK_ID_WIDTH + 1 :]
    if not constant_time_compare(signature, _short_link_signature(payload)):
        return None
    return int(payload[:SHORT_LINK_ID_WIDTH], 36), int(payload[SHORT_LINK_ID_WIDTH], 36)
