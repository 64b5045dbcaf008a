"""The gateway map and the wire-format helpers the adapters share (messaging/gateways/base.py)."""

from datetime import UTC, datetime

import pytest

from accounts.models import GatewayKind
from messaging.gateways import ADAPTERS, CmGateway, RbmGateway, gateway_for
from messaging.gateways.base import (
    calendar_time_rfc3339,
    float_or_none,
    parse_rfc3339,
    retry_after_seconds,
)
from tests.accounts.factories import GatewayAccountFactory


@pytest.mark.django_db
def test_gateway_for_picks_the_adapter_of_the_accounts_kind():
    assert set(ADAPTERS) == set(GatewayKind.values)
    assert isinstance(gateway_for(GatewayAccountFactory(kind=GatewayKind.RBM)), RbmGateway)
    assert isinstance(gateway_for(GatewayAccountFactory(kind=GatewayKind.CM)), CmGateway)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "3"}, 3.0), ({"Retry-After": "0.5"}, 0.5), ({"Retry-After": "-2"}, 0.0),
     ({"Retry-After": "soon"}, None), ({"Retry-After": ""}, None), ({}, None), (None, None)],
)
def test_retry_after_seconds(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_float_or_none():
    assert float_or_none("35.68") == 35.68
    assert float_or_none(None) is None and float_or_none("north") is None


def test_times_both_ways():
    assert calendar_time_rfc3339("2025-04-01T09:00") == "2025-04-01T00:00:00Z"  # naive = Japan time
    assert parse_rfc3339("2025-04-01T00:00:00.123456789Z") == datetime(2025, 4, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert parse_rfc3339("yesterday") is None and parse_rfc3339(None) is None
