"""Adapters registered by kind: ``gateway_for(account)`` returns the right one."""

from __future__ import annotations

from messaging.gateways.base import Gateway

_ADAPTERS: dict[str, type[Gateway]] = {}


def register(cls: type[Gateway]) -> type[Gateway]:
    _ADAPTERS[cls.kind] = cls
    return cls


def gateway_for(account) -> Gateway:
    _load_adapters()
    return _ADAPTERS[account.kind](account)


def _load_adapters():
    # Importing the adapter modules registers them.
    from messaging.gateways import cm, rbm  # noqa: F401
