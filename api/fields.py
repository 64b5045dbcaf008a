"""Serializer helpers shared by the API's resource modules: the mobile-number and rich-content
checks (the same validators as the console, their errors in the API's shape) and the empty request
body of the action endpoints."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.auth import reject_nul
from core.phone import normalize_mobile
from core.rich_content import validate_rich_content


# The request body of an action that takes none. No docstring: it would become the schema's description.
class EmptySerializer(serializers.Serializer):
    pass


def clean_phone(value) -> str:
    """A Japanese mobile number in any usual form → E.164, or a 400 with the validator's code."""
    try:
        return normalize_mobile(value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.messages, code=error.error_list[0].code or "invalid") from None


def rich_content_errors(error: DjangoValidationError) -> dict:
    """The validator's errors under ``content`` / ``content.<part>``."""
    errors: dict[str, list] = {}
    for field, messages in error.message_dict.items():
        errors.setdefault("content" if field == "content" else f"content.{field}", []).extend(messages)
    return errors


def validated_rich_content(value):
    """A serializer field's check with the one rich-content validator: NUL characters refused,
    and every problem reported as ``content.<part>: reason``."""
    reject_nul(value)
    try:
        validate_rich_content(value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(
            [message for messages in rich_content_errors(error).values() for message in messages]
        ) from None
    return value
