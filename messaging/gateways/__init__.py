"""Carrier gateways: one module per wire format (rbm, cm) over the interface in ``base``.

``ADAPTERS`` is the one place that maps a gateway account's kind to its adapter class; the adapter
modules import only ``base``, so nothing here imports in a circle.
"""

from accounts.models import GatewayKind
from messaging.gateways.base import (
    Gateway,
    GatewayError,
    NormalizedEvent,
    NotReachable,
    OutboundMessage,
    Permanent,
    Retryable,
    SendResult,
)
from messaging.gateways.cm import CmGateway
from messaging.gateways.rbm import RbmGateway

ADAPTERS: dict[str, type[Gateway]] = {
    GatewayKind.RBM: RbmGateway,
    GatewayKind.CM: CmGateway,
}


def gateway_for(account) -> Gateway:
    """The adapter for an ``accounts.GatewayAccount``, chosen by its kind."""
    return ADAPTERS[account.kind](account)


__all__ = [
    "ADAPTERS",
    "CmGateway",
    "Gateway",
    "GatewayError",
    "NormalizedEvent",
    "NotReachable",
    "OutboundMessage",
    "Permanent",
    "RbmGateway",
    "Retryable",
    "SendResult",
    "gateway_for",
]
