"""Personalization: {{name}} and {{custom_attribute}} placeholders filled per contact.

The one placeholder grammar of the product: the engine fills what it sends with these functions and
the composer's preview calls them with the same inputs, so the preview shows what is sent. A
placeholder that names nothing the contact has becomes blank.
"""

import re

KEY = r"[A-Za-z0-9_\-぀-ヿ一-鿿]+"
PLACEHOLDER = re.compile(r"\{\{\s*(" + KEY + r")\s*\}\}")


def is_placeholder_key(key: str) -> bool:
    """Whether ``{{key}}`` is a placeholder (an attribute with, say, a dot in its name cannot be one)."""
    return re.fullmatch(KEY, key) is not None


def personalize_text(text: str, name: str, attributes: dict, extras: dict | None = None) -> str:
    """Fill placeholders. ``extras`` are per-message values such as the signed opt-out link."""
    if not text or "{{" not in text:
        return text

    def value(match):
        key = match.group(1)
        if key == "name":
            return name or ""
        if extras and key in extras:
            return extras[key]
        found = attributes.get(key)
        return "" if found is None else str(found)

    return PLACEHOLDER.sub(value, text)


def personalize_content(document, name: str, attributes: dict, extras: dict | None = None):
    """A copy of the rich-content document with every string personalized."""
    if isinstance(document, str):
        return personalize_text(document, name, attributes, extras)
    if isinstance(document, list):
        return [personalize_content(item, name, attributes, extras) for item in document]
    if isinstance(document, dict):
        return {key: personalize_content(value, name, attributes, extras) for key, value in document.items()}
    return document
