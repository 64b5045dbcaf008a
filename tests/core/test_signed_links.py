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


def test_short_link_tokens_have_a_fixed_length_and_verify_only_as_signed(settings):
    from core.signed_links import SHORT_LINK_TOKEN_LENGTH, parse_short_link_token, short_link_token

    tokens = {short_link_token(delivery_id, index) for delivery_id in (1, 2, 36**8 - 1) for index in (0, 1, 35)}
    assert len(tokens) == 9 and {len(token) for token in tokens} == {SHORT_LINK_TOKEN_LENGTH}
    token = short_link_token(123456, 2)
    assert parse_short_link_token(token) == (123456, 2)
    assert token.isalnum() and token == token.lower()
    tampered = token[:8] + "3" + token[9:]  # another link index, same signature
    assert parse_short_link_token(tampered) is None
    assert parse_short_link_token(token[:-1]) is None
    assert parse_short_link_token(token.upper()) is None
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert parse_short_link_token(token) is None  # signed with the key
    with pytest.raises(OverflowError):
        short_link_token(36**8, 0)
    with pytest.raises(ValueError):
        short_link_token(1, 36)
