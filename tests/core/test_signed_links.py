"""Signed links: one base-36 helper for both kinds of token, and each kind verifies only its own."""

import pytest

from core.signed_links import (
    base36,
    opt_out_token,
    parse_opt_out_token,
    parse_tracked_link_token,
    tracked_link_token,
    tracked_link_url,
)


@pytest.mark.parametrize("number", [0, 9, 10, 35, 36, 1295, 1296, 2**40 + 7])
def test_base36_reads_back(number):
    assert int(base36(number), 36) == number


def test_tracked_link_token_verifies_only_for_its_url(settings):
    settings.PUBLIC_BASE_URL = "https://console.example.jp/"
    url = "https://shop.example.jp/sale?x=1"
    token = tracked_link_token(71, 123456, url)
    assert token.startswith(f"{base36(71)}.{base36(123456)}.")
    assert tracked_link_url(71, 123456, url) == (
        f"https://console.example.jp/messaging/r/{token}/?u=https%3A%2F%2Fshop.example.jp%2Fsale%3Fx%3D1"
    )
    assert parse_tracked_link_token(token, url) == (71, 123456)
    assert parse_tracked_link_token(token, "https://evil.example.com/") is None
    for bad in ("", "a.b", "zz.1.x", "1.2.3.4"):
        assert parse_tracked_link_token(bad, url) is None


def test_the_two_kinds_of_token_are_signed_with_different_keys():
    assert parse_opt_out_token(opt_out_token(5, 6)) == (5, 6)
    opt_out = opt_out_token(5, 6)
    assert parse_tracked_link_token(opt_out, "") is None
    assert parse_opt_out_token(tracked_link_token(5, 6, "")) is None
