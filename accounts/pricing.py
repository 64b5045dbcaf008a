"""Gateway price tables and the one function that prices messages.

Each gateway account has a price table: yen per +Message message and per SMS segment, for one
carrier or for any carrier ("" — used for a carrier without a price of its own and for numbers whose
carrier no gateway named). Prices are ``Decimal`` throughout: yen with decimals (e.g. 3.3 yen per
segment) must add up exactly, so no float ever touches them.

``message_cost`` is what every price in the product comes from: the estimate before launch, the
actual cost on the monitor and the monthly usage page (``messaging.costs``) all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from accounts.models import PRICE_CARRIERS, GatewayAccount, GatewayPrice, PriceUnit
from audit.services import audit_record

# The prices a table can hold, in the order the console shows them: +Message has no Rakuten Mobile.
PRICE_COLUMNS: dict[str, list[str]] = {
    PriceUnit.RCS_MESSAGE: ["", "docomo", "au", "softbank"],
    PriceUnit.SMS_SEGMENT: [value for value, _label in PRICE_CARRIERS],
}
CARRIER_LABELS = dict(PRICE_CARRIERS)
MAX_PRICE = Decimal("999999.9999")


@dataclass(frozen=True)
class PriceTable:
    """A gateway account's prices: (unit, carrier) → yen."""

    prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def unit_price(self, unit: str, carrier: str) -> Decimal | None:
        """The carrier's own price, else the any-carrier price, else None (no price set)."""
        if carrier and (unit, carrier) in self.prices:
            return self.prices[(unit, carrier)]
        return self.prices.get((unit, ""))

    def __bool__(self) -> bool:
        return bool(self.prices)


EMPTY_TABLE = PriceTable()


def price_tables(gateway_ids) -> dict[int, PriceTable]:
    """The price tables of these gateway accounts in one query (an account without prices is absent)."""
    found: dict[int, dict] = {}
    ids = [gateway_id for gateway_id in set(gateway_ids) if gateway_id]
    for price in GatewayPrice.objects.filter(gateway_id__in=ids):
        found.setdefault(price.gateway_id, {})[(price.unit, price.carrier)] = price.price
    return {gateway_id: PriceTable(prices) for gateway_id, prices in found.items()}


def format_yen(amount: Decimal) -> str:
    """3.3, 12,345.25, 0: thousands separated, at most four decimals, no trailing zeros (for pages and CSV)."""
    amount = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = f"{amount:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def price_summary(table: PriceTable | None) -> list[tuple[str, str, Decimal]]:
    """The table's prices as (unit label, carrier label, yen), in the console's order."""
    if not table:
        return []
    return [
        (PriceUnit(unit).label, CARRIER_LABELS[carrier], table.prices[(unit, carrier)])
        for unit, carriers in PRICE_COLUMNS.items()
        for carrier in carriers
        if (unit, carrier) in table.prices
    ]


def message_cost(table: PriceTable | None, channel: str, carrier: str, messages: int, segments: int = 0) -> Decimal | None:
    """The cost in yen of ``messages`` sent on ``channel`` ("rcs" or "sms") to numbers on ``carrier``.

    +Message is priced per message; SMS per segment, ``segments`` being the segments of all those
    messages together (each SMS counts at least one: a message whose segments were not recorded is
    one). None when the table has no price that applies — the caller says so rather than showing 0.
    """
    if not messages:
        return Decimal("0")
    if channel == PriceUnit.SMS_SEGMENT:
        unit, quantity = PriceUnit.SMS_SEGMENT, max(int(segments), int(messages))
    else:
        unit, quantity = PriceUnit.RCS_MESSAGE, int(messages)
    price = (table or EMPTY_TABLE).unit_price(unit, carrier)
    if price is None:
        return None
    return price * quantity


def gateway_prices_set(gateway: GatewayAccount, prices: dict[tuple[str, str], Decimal | None], user) -> None:
    """Replace the gateway account's price table: a None price removes that entry. Audited."""
    with transaction.atomic():
        for (unit, carrier), price in prices.items():
            if price is None:
                GatewayPrice.objects.filter(gateway=gateway, unit=unit, carrier=carrier).delete()
            else:
                GatewayPrice.objects.update_or_create(
                    gateway=gateway, unit=unit, carrier=carrier, defaults={"price": price}
                )
        audit_record(
            "gateway.prices_changed",
            organization=gateway.organization,
            actor=user,
            target=gateway,
            details={f"{unit}:{carrier or '*'}": (str(price) if price is not None else None)
                     for (unit, carrier), price in prices.items()},
        )
