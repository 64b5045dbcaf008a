"""Carrier gateways: one module per wire format (rbm, cm), registered by kind."""

from messaging.gateways.base import (
    GatewayError,
    NormalizedEvent,
    NotReachable,
    OutboundMessage,
    Permanent,
    Retryable,
    SendResult,
)
from messaging.gateways.registry import gateway_for

__all__ = [
    "GatewayError",
    "NormalizedEvent",
    "NotReachable",
    "OutboundMessage",
    "Permanent",
    "Retryable",
    "SendResult",
    "gateway_for",
]
