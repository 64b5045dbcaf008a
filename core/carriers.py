"""Mobile network operators of Japanese numbers, as the gateways report them.

A number's carrier is only ever what a gateway says (the capability answer or the delivery report's
``operator``, a 5-digit MCC-MNC): with number portability the prefix (070/080/090) says nothing
about the network a number is on today. ``carrier_for_operator`` turns a reported operator into one
of our short names; "" means the gateway did not say, or said something we do not know.
"""

from __future__ import annotations

DOCOMO = "docomo"
AU = "au"
SOFTBANK = "softbank"
RAKUTEN = "rakuten"

# The carriers that review +Message official accounts (Rakuten Mobile does not offer +Message).
PLUS_MESSAGE_CARRIERS = (DOCOMO, AU, SOFTBANK)

# MCC 440/441 network codes of the Japanese carriers (MVNOs report their host network's code).
OPERATORS = {
    "44010": DOCOMO,
    "44050": AU,
    "44051": AU,
    "44052": AU,
    "44053": AU,
    "44054": AU,
    "44070": AU,
    "44000": SOFTBANK,
    "44020": SOFTBANK,
    "44021": SOFTBANK,
    "44101": SOFTBANK,
    "44011": RAKUTEN,
}

# The code each carrier reports (the sandbox carrier uses these).
OPERATOR_CODES = {DOCOMO: "44010", AU: "44050", SOFTBANK: "44020", RAKUTEN: "44011"}


def carrier_for_operator(operator) -> str:
    """Our name for a reported operator: an MCC-MNC code ("44010", "440-10") or a name ("docomo")."""
    if not isinstance(operator, str | int):
        return ""
    value = str(operator).strip().lower().replace("-", "").replace(" ", "")
    if value in OPERATOR_CODES:
        return value
    return OPERATORS.get(value, "")


def carrier_approved(carrier: str, approved: frozenset[str]) -> bool:
    """Whether +Message may go to a number on ``carrier`` from an account that ``approved`` lists
    the reviews of. A number whose carrier the gateway did not give passes only when every
    +Message carrier approved the account: otherwise it could be on one that did not."""
    if carrier:
        return carrier in approved
    return all(name in approved for name in PLUS_MESSAGE_CARRIERS)
