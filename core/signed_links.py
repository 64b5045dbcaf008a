"""Signed opt-out links: short enough for an SMS, unguessable, and tied to one contact.

A token is ``<org id>.<contact id>.<signature>`` in base 36 with an 80-bit truncated HMAC; the link
is ``{PUBLIC_BASE_URL}/o/<token>/`` and leads to a confirmation page.
"""

import base64
import functools
import hashlib
import hmac

from django.conf import settings
from django.utils.crypto import constant_time_compare

PLACEHOLDER_KEY = "opt_out_url"


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


@functools.lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return hashlib.sha256(f"campaigns.optout:{secret_key}".encode()).digest()


def _signature(payload: str) -> str:
    digest = hmac.new(_key(settings.SECRET_KEY), payload.encode(), hashlib.sha256).digest()[:10]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def opt_out_token(organization_id: int, contact_id: int) -> str:
    payload = f"{_b36(organization_id)}.{_b36(contact_id)}"
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
