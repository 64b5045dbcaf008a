"""Short links in SMS text: the {{link:…}} grammar, the one length rule, the text as sent, and what a
link may point to."""

import pytest

from core.short_links import (
    EXAMPLE_TOKEN,
    base_problem,
    example_short_url,
    fill_short_links,
    link_problems,
    link_targets,
    short_link_base,
    short_link_length,
    text_as_sent,
)
from core.signed_links import SHORT_LINK_TOKEN_LENGTH, parse_short_link_token

TEXT = "【デモ商店】クーポン {{link:https://shop.example.jp/coupon}} 地図 {{ link: https://shop.example.jp/map?a=1&b=2 }}"


def test_the_default_base_is_a_short_path_of_the_console(settings):
    settings.PUBLIC_BASE_URL = "https://pm.example.jp/"
    assert short_link_base("") == "https://pm.example.jp/s/"
    assert short_link_base("https://s.shop.jp/r") == "https://s.shop.jp/r/"


def test_one_function_gives_the_length_of_every_short_url_on_a_base():
    base = "https://s.shop.jp/s/"
    assert short_link_length(base) == len(base) + SHORT_LINK_TOKEN_LENGTH == 38
    assert len(example_short_url(base)) == short_link_length(base)
    for delivery_id in (1, 35, 36**5, 36**8 - 1):
        sent = fill_short_links("{{link:https://shop.example.jp/}}", base, delivery_id)
        assert len(sent) == short_link_length(base)


def test_targets_are_read_in_order_and_each_placeholder_gets_its_own_token():
    assert link_targets(TEXT) == ["https://shop.example.jp/coupon", "https://shop.example.jp/map?a=1&b=2"]
    sent = fill_short_links(TEXT, "https://s.shop.jp/s/", 4242)
    urls = [word for word in sent.split() if word.startswith("https://s.shop.jp/s/")]
    assert [parse_short_link_token(url.rsplit("/", 1)[1]) for url in urls] == [(4242, 0), (4242, 1)]
    assert "{{" not in sent and sent.startswith("【デモ商店】クーポン https://s.shop.jp/s/")


def test_the_text_as_sent_counts_links_at_the_short_urls_length_not_the_placeholders():
    base = "https://s.shop.jp/s/"
    shown = text_as_sent(TEXT, base)
    assert shown.count(base + EXAMPLE_TOKEN) == 2
    assert len(shown) == len(TEXT) - sum(len(m) for m in (
        "{{link:https://shop.example.jp/coupon}}", "{{ link: https://shop.example.jp/map?a=1&b=2 }}"
    )) + 2 * short_link_length(base)
    assert parse_short_link_token(EXAMPLE_TOKEN) is None  # a click on the example counts nothing
    assert text_as_sent("no links {{name}}", base) == "no links {{name}}"


@pytest.mark.parametrize(
    "target",
    [
        "ftp://shop.example.jp/", "javascript:alert(1)", "http://localhost/", "http://127.0.0.1:8000/",
        "https://10.0.0.5/", "https://192.168.1.1/x", "http://[::1]/", "https://169.254.169.254/latest",
        "http://intranet/", "https://printer.local/", "https://user:pw@shop.example.jp/", "https://shop.example.jp/a b",
    ],
)
def test_a_link_must_be_http_or_https_to_a_public_host(target):
    assert link_problems(f"クーポン {{{{link:{target}}}}}")


def test_public_links_pass_and_mistakes_are_named():
    assert link_problems(TEXT) == []
    assert link_problems("{{link:https://203.0.113.9/}}")  # documentation range: not public
    assert link_problems("{{link:https://8.8.8.8/x}}") == []
    assert link_problems("{{link:}}")
    assert link_problems("クーポン {{link:https://shop.example.jp/coupon")  # not closed
    assert link_problems("{{link:https://shop.example.jp/?n={{name}}}}")  # no placeholders inside
    six = " ".join("{{link:https://shop.example.jp/" + str(n) + "}}" for n in range(6))
    assert any("At most 5" in str(problem) for problem in link_problems(six))


@pytest.mark.parametrize("value", ["", "https://s.shop.jp/s/", "http://127.0.0.1:8000/s/", "https://go.example.jp"])
def test_a_short_link_base_may_be_any_plain_http_address(value):
    assert base_problem(value) is None


@pytest.mark.parametrize("value", ["s.shop.jp", "ftp://s.shop.jp/", "https://s.shop.jp/?x=1", "https://ｓ.jp/", "https://s.shop.jp/~a/"])
def test_a_short_link_base_refuses_what_would_not_count_one_place_per_character(value):
    assert base_problem(value)
