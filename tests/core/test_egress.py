"""core.egress.public_reach_problem: whether a carrier on the internet could fetch a URL's host,
classified without any lookup by the egress guard's own address rules."""

import pytest

from core.egress import public_reach_problem


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/media/1/a.jpg", "loopback"),
        ("http://[::1]/a.jpg", "loopback"),
        ("http://2130706433/a.jpg", "loopback"),  # 127.0.0.1 written as one number
        ("http://[::ffff:127.0.0.1]/a.jpg", "loopback"),
        ("https://10.1.2.3/a.jpg", "private"),
        ("https://192.168.0.10/a.jpg", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("https://100.64.0.1/a.jpg", "CGNAT"),
        ("http://localhost:8000/a.jpg", "local name"),
        ("http://nas.local/a.jpg", "local name"),
        ("http://files.corp.internal/a.jpg", "local name"),
        ("http://intranet/a.jpg", "local name"),
    ],
)
def test_hosts_a_carrier_cannot_reach(url, reason):
    assert reason in (public_reach_problem(url) or "")


@pytest.mark.parametrize(
    "url", ["https://cdn.example.jp/a.jpg", "https://203.0.113.7.nip.io/a.jpg", "http://8.8.8.8/a.jpg", "not a url", ""]
)
def test_public_or_unparseable_urls_raise_no_warning(url):
    assert public_reach_problem(url) is None


def test_loopback_is_named_even_where_our_own_requests_may_use_it(settings):
    settings.EGRESS_ALLOW_LOOPBACK = True  # development: the guard lets us reach the local sandbox
    assert public_reach_problem("http://127.0.0.1:8000/media/a.jpg") == "loopback"
