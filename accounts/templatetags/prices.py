"""``{{ amount|yen }}``: a Decimal amount of yen as people read it — thousands separated, at most four
decimals and no trailing zeros (3.3, 12,345.25, 0)."""

from decimal import Decimal, InvalidOperation

from django import template

from accounts.pricing import format_yen

register = template.Library()


@register.filter
def yen(value) -> str:
    if value is None or value == "":
        return ""
    try:
        return format_yen(Decimal(value))
    except (InvalidOperation, TypeError, ValueError):
        return str(value)


