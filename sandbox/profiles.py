"""Handset profiles and the stable, configurable mix that assigns one to each phone number."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    rcs: bool  # answers capability checks and accepts RBM messages
    online: bool = True  # RCS messages are delivered (offline: they wait until the TTL)
    reads: bool = True  # sends READ after delivery
    sms: bool = True  # can receive SMS


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("android_plus_message", rcs=True),
        Profile("iphone_no_app", rcs=False),
        Profile("au_iphone_native_rcs", rcs=True),
        Profile("rakuten_sms_only", rcs=False),
        Profile("data_only_mvno_unreachable", rcs=False, sms=False),
        Profile("offline_device", rcs=True, online=False),
        Profile("never_reads", rcs=True, reads=False),
    )
}

DEFAULT_MIX: dict[str, int] = {
    "android_plus_message": 55,
    "iphone_no_app": 15,
    "au_iphone_native_rcs": 5,
    "rakuten_sms_only": 8,
    "data_only_mvno_unreachable": 2,
    "offline_device": 5,
    "never_reads": 10,
}


class ProfileMix:
    """Picks a profile per number from weights, by a stable hash: the same number, mix and seed
    always give the same profile (across restarts too). Explicit overrides win."""

    def __init__(self, mix: dict[str, int] | None = None, seed: str = "sandbox"):
        self.overrides: dict[str, str] = {}
        self.seed = seed
        self.set_mix(mix or DEFAULT_MIX)

    def set_mix(self, mix: dict[str, int | float]) -> None:
        unknown = set(mix) - set(PROFILES)
        if unknown:
            raise ValueError(f"unknown profiles: {sorted(unknown)}")
        weights = [(name, float(weight)) for name, weight in mix.items() if float(weight) > 0]
        if not weights:
            raise ValueError("the mix needs at least one positive weight")
        total = sum(weight for _, weight in weights)
        self.mix = {name: weight for name, weight in weights}
        self._cumulative: list[tuple[float, str]] = []
        running = 0.0
        for name, weight in weights:
            running += weight / total
            self._cumulative.append((running, name))

    def set_overrides(self, overrides: dict[str, str]) -> None:
        unknown = set(overrides.values()) - set(PROFILES)
        if unknown:
            raise ValueError(f"unknown profiles: {sorted(unknown)}")
        self.overrides.update(overrides)

    def profile_for(self, phone: str) -> Profile:
        name = self.overrides.get(phone)
        if name is None:
            digest = hashlib.blake2b(f"{self.seed}:{phone}".encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big") / 2**64
            name = self._cumulative[-1][1]
            for bound, candidate in self._cumulative:
                if point < bound:
                    name = candidate
                    break
        return PROFILES[name]
