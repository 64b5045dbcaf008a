"""Handset profiles and the stable, configurable mix that assigns one to each phone number, and
the network (carrier) each number is on.

Every number has a carrier. The sandbox gives each number a "home" carrier from its digits (the
operator it was first allocated to) and ports a stable share of numbers (``PORTED_SHARE``) to
another one — as number portability does, so the prefix says nothing reliable. Profiles tied to a
network keep theirs (an au iPhone is on au, a Rakuten line on Rakuten). The carrier is reported in
the capability answers and delivery reports as an MCC-MNC ``operator`` code (``OPERATOR_CODES``)."""

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
    carrier: str = ""  # the network this kind of handset is always on ("": any +Message carrier)


CARRIERS = ("docomo", "au", "softbank", "rakuten")
PLUS_MESSAGE_CARRIERS = ("docomo", "au", "softbank")
OPERATOR_CODES = {"docomo": "44010", "au": "44050", "softbank": "44020", "rakuten": "44011"}
PORTED_SHARE = 0.15


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("android_plus_message", rcs=True),
        Profile("iphone_no_app", rcs=False),
        Profile("au_iphone_native_rcs", rcs=True, carrier="au"),
        Profile("rakuten_sms_only", rcs=False, carrier="rakuten"),
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
        self.carrier_overrides: dict[str, str] = {}
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

    def set_carrier_overrides(self, overrides: dict[str, str]) -> None:
        unknown = set(overrides.values()) - set(CARRIERS)
        if unknown:
            raise ValueError(f"unknown carriers: {sorted(unknown)}")
        self.carrier_overrides.update(overrides)

    def _point(self, phone: str, salt: str = "") -> float:
        digest = hashlib.blake2b(f"{self.seed}{salt}:{phone}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    @staticmethod
    def home_carrier(phone: str) -> str:
        """The +Message carrier the number's block was first allocated to (a sandbox rule: blocks
        of a hundred numbers — all digits but the last two — go round docomo, au, SoftBank)."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        national = digits[2:] if digits.startswith("81") else digits
        return PLUS_MESSAGE_CARRIERS[int(national[:-2] or "0") % 3]

    def carrier_for(self, phone: str) -> str:
        """The network the number is on now: an override, the profile's own network, or its home
        carrier — unless it was ported (a stable ``PORTED_SHARE`` of numbers) to another one."""
        carrier = self.carrier_overrides.get(phone) or self.profile_for(phone).carrier
        if carrier:
            return carrier
        home = self.home_carrier(phone)
        point = self._point(phone, ":ported")
        if point >= PORTED_SHARE:
            return home
        others = [name for name in PLUS_MESSAGE_CARRIERS if name != home]
        return others[int(point / PORTED_SHARE * len(others)) % len(others)]

    def ported(self, phone: str) -> bool:
        return self.carrier_for(phone) != self.home_carrier(phone)

    def operator_for(self, phone: str) -> str:
        """The MCC-MNC code the carrier reports the number's network as."""
        return OPERATOR_CODES[self.carrier_for(phone)]

    def profile_for(self, phone: str) -> Profile:
        name = self.overrides.get(phone)
        if name is None:
            point = self._point(phone)
            name = self._cumulative[-1][1]
            for bound, candidate in self._cumulative:
                if point < bound:
                    name = candidate
                    break
        return PROFILES[name]
