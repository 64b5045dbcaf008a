"""The egress guard (core.egress): the address classifier over a table, the URL checks, and fetches
against real HTTP servers on 127.0.0.1 (port 0: the OS picks) — redirects not followed, the body
capped, timeouts, one resolution per fetch, and no request reaching a refused address.

Only ``socket.getaddrinfo`` is ever replaced (to make a host name resolve to chosen addresses, or to
count lookups around the real function); the guard itself always runs as it is.
"""

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from core import egress
from core.egress import EgressError, EgressRefused, address_refusal, check_url, fetch

REFUSED = "The address is not allowed."
UNREACHABLE = "Could not connect to the address."

# --- helpers --------------------------------------------------------------------------------------


class Server:
    """A real HTTP server on a loopback address and a port the OS picked, recording every request."""

    def __init__(self, respond, host="127.0.0.1"):
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the guard stopped reading, as it should

            do_GET = do_POST = do_HEAD = do_PUT = handle_one

        class HTTPServer(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.httpd = HTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(respond, host="127.0.0.1"):
        servers.append(Server(respond, host))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(status=200, body=b"hello", headers=()):
    def respond(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.fixture
def loopback_allowed(settings):
    settings.EGRESS_ALLOW_LOOPBACK = True


@pytest.fixture
def loopback_refused(settings):
    settings.EGRESS_ALLOW_LOOPBACK = False


@pytest.fixture
def fake_dns(monkeypatch):
    """Make chosen host names resolve to chosen addresses (a list, or a list per successive call);
    every other name goes to the real resolver. Returns (names, calls)."""
    real = socket.getaddrinfo
    names: dict[str, list] = {}
    calls: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        calls.append(host)
        if host not in names:
            return real(host, port, family, type, proto, flags)
        answers = names[host]
        if answers and isinstance(answers[0], list):  # one answer per call: a rebinding resolver
            answers = answers.pop(0) if len(answers) > 1 else answers[0]
        infos = []
        for address in answers:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names, calls


@pytest.fixture
def no_dns(monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise AssertionError(f"resolved {args[0]!r} although the URL should be refused first")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- the address classifier -----------------------------------------------------------------------

REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", ""),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("192.0.2.1", ""),  # documentation
    ("198.18.0.1", ""),  # benchmarking
    ("2001:db8::1", ""),  # documentation
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:10.0.0.1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "IPv4-mapped"),
    ("::ffff:100.64.0.1", "IPv4-mapped"),
    ("::ffff:0:7f00:1", "IPv4-translated"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("2002:7f00:1::", "6to4"),
    ("2002:a9fe:a9fe::1", "6to4"),
    ("2002:c0a8:101::", "6to4"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("64:ff9b::a9fe:a9fe", "NAT64"),
    ("64:ff9b::a00:1", "NAT64"),
    ("64:ff9b:1::1", "NAT64"),
]

ALLOWED_ADDRESSES = [
    "93.184.216.34",
    "8.8.8.8",
    "2606:2800:220:1::1",
    "2001:4860:4860::8888",
    "::ffff:93.184.216.34",  # the mapped form of a public address is that public address
    "64:ff9b::5db8:d822",  # what DNS64 answers for 93.184.216.34 on an IPv6-only network
    "2002:5db8:d822::1",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES)
def test_egress_classifier_refuses(address, reason):
    refusal = address_refusal(address)
    assert refusal, f"{address} was allowed"
    assert reason in refusal


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
def test_egress_classifier_allows_public_addresses(address):
    assert address_refusal(address) is None
    assert address_refusal(address, allow_loopback=True) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1"])
def test_egress_allow_loopback_lets_loopback_through(address):
    assert address_refusal(address) == "loopback"
    assert address_refusal(address, allow_loopback=True) is None


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.0.1", "169.254.169.254", "fe80::1", "fd00::1", "100.64.0.1", "0.0.0.0", "::",
     "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"],
)
def test_egress_allow_loopback_allows_nothing_else(address):
    assert address_refusal(address, allow_loopback=True)


def test_egress_errors_say_one_thing_to_the_user():
    refused, error = EgressRefused("10.0.0.1 is private"), EgressError("port 22: connection refused")
    assert str(refused) == REFUSED and refused.reason == "10.0.0.1 is private"
    assert str(error) == UNREACHABLE and "22" not in str(error)
    assert isinstance(refused, ValueError)
    assert not isinstance(error, EgressRefused)


# --- URL checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_stats",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "dict://example.com:11211/",
        "//example.com/",
        "example.com/path",
        "",
        "http://",
        "http:///path",
        "http://user:secret@example.com/",
        "http://example.com@127.0.0.1/",
        "http://exa mple.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://example.com:port/",
    ],
)
def test_egress_refuses_other_schemes_and_malformed_urls(no_dns, url):
    with pytest.raises(EgressRefused) as refused:
        check_url(url)
    assert str(refused.value) == REFUSED
    with pytest.raises(EgressRefused):
        fetch("GET", url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]:8025/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:6379/",
        "https://192.168.1.1/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://100.64.1.1/",
        "HTTP://LOCALHOST:8025/_sandbox/",
    ],
)
def test_egress_ssrf_internal_urls_refused_when_saved(loopback_refused, url):
    with pytest.raises(EgressRefused) as refused:
        check_url(url)
    assert str(refused.value) == REFUSED


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/"]
)
def test_egress_ssrf_private_refused_even_with_loopback_allowed(loopback_allowed, url):
    with pytest.raises(EgressRefused):
        check_url(url)
    with pytest.raises(EgressRefused):
        fetch("GET", url, timeout=1)


def test_egress_every_resolved_address_is_checked(loopback_refused, fake_dns):
    names, _ = fake_dns
    names["mixed.example"] = ["93.184.216.34", "10.1.2.3"]
    names["mixed6.example"] = ["2606:2800:220:1::1", "fd00::1"]
    names["metadata.example"] = ["169.254.169.254"]
    names["public.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    for host in ("mixed.example", "mixed6.example", "metadata.example"):
        with pytest.raises(EgressRefused) as refused:
            check_url(f"https://{host}/hook")
        assert str(refused.value) == REFUSED
    check_url("https://public.example/hook")  # resolves and checks; nothing is sent
    check_url("https://PUBLIC.example:8443/hook?x=1")


def test_egress_unresolvable_host_is_a_network_error(fake_dns):
    names, _ = fake_dns
    names["nowhere.example"] = []
    with pytest.raises(EgressError) as error:
        check_url("https://nowhere.example/")
    assert str(error.value) == UNREACHABLE


def test_egress_allowed_hosts_are_exact_and_case_insensitive(fake_dns):
    names, _ = fake_dns
    names["media.carrier.example"] = ["93.184.216.34"]
    names["evil.example"] = ["93.184.216.34"]
    check_url("https://media.carrier.example/x.jpg", allowed_hosts=["MEDIA.carrier.example"])
    for url in ("https://evil.example/x.jpg", "https://carrier.example/x.jpg", "https://media.carrier.example.evil.example/"):
        with pytest.raises(EgressRefused):
            check_url(url, allowed_hosts=["media.carrier.example"])
    with pytest.raises(EgressRefused):
        check_url("https://media.carrier.example/x.jpg", allowed_hosts=[])


# --- fetches against real local servers -----------------------------------------------------------


def test_egress_ssrf_loopback_refused_and_server_sees_nothing(loopback_refused, serve):
    server = serve(answer())
    server6 = serve(answer(), host="::1")
    for url in (
        f"http://127.0.0.1:{server.port}/",
        f"http://localhost:{server.port}/",
        f"http://[::1]:{server6.port}/",
        f"http://[::ffff:127.0.0.1]:{server.port}/",
    ):
        with pytest.raises(EgressRefused) as refused:
            fetch("POST", url, body=b"{}", timeout=2)
        assert str(refused.value) == REFUSED
    assert server.requests == [] and server6.requests == []


def test_egress_fetch_with_loopback_allowed(loopback_allowed, serve):
    server = serve(answer(body=b"pong", headers=[("X-Answer", "1"), ("X-Answer", "2")]))
    response = fetch("POST", f"http://127.0.0.1:{server.port}/hook?a=1", headers={"X-Signature": "s"}, body=b'{"a":1}')
    assert (response.status, response.body, response.truncated) == (200, b"pong", False)
    assert response.address == "127.0.0.1"
    assert response.headers["x-answer"] == "1, 2" and response.headers["content-type"] == "text/plain"
    [request] = server.requests
    assert (request["method"], request["path"], request["body"]) == ("POST", "/hook?a=1", b'{"a":1}')
    assert request["headers"]["X-Signature"] == "s"
    assert request["headers"]["Host"] == f"127.0.0.1:{server.port}"


def test_egress_ssrf_redirect_is_returned_not_followed(loopback_allowed, serve):
    target = serve(answer(body=b"internal secret"))
    redirector = serve(answer(302, b"", headers=[("Location", f"http://127.0.0.1:{target.port}/secret")]))
    response = fetch("POST", f"http://127.0.0.1:{redirector.port}/hook", body=b"{}")
    assert response.status == 302
    assert response.headers["location"] == f"http://127.0.0.1:{target.port}/secret"
    assert response.body == b""
    assert len(redirector.requests) == 1 and redirector.requests[0]["method"] == "POST"
    assert target.requests == []


@pytest.mark.parametrize("closing", ["Connection: close", "HTTP/1.0", "no length"])
def test_egress_reads_a_closing_response_to_its_end(loopback_allowed, serve, closing):
    """Most servers answer a "Connection: close" request with a closing response; http.client then
    closes the socket when the body is read, and the guard must not touch it again."""

    def respond(handler):
        if closing == "HTTP/1.0":
            handler.protocol_version = "HTTP/1.0"
        handler.send_response(200)
        if closing != "no length":
            handler.send_header("Content-Length", "5")
        if closing != "HTTP/1.0":
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"hello")
        handler.close_connection = True

    server = serve(respond)
    response = fetch("GET", f"http://127.0.0.1:{server.port}/")
    assert (response.status, response.body, response.truncated) == (200, b"hello", False)


def test_egress_response_body_is_capped(loopback_allowed, serve):
    size = 5 * 1024 * 1024

    def huge(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            handler.wfile.write(chunk)

    server = serve(huge)
    response = fetch("GET", f"http://127.0.0.1:{server.port}/big", max_bytes=2000)
    assert response.status == 200
    assert response.truncated is True
    assert response.body == b"x" * 2000

    exact = serve(answer(body=b"y" * 2000))
    response = fetch("GET", f"http://127.0.0.1:{exact.port}/", max_bytes=2000)
    assert (len(response.body), response.truncated) == (2000, False)


def test_egress_chunked_body_is_capped(loopback_allowed, serve):
    def chunked(handler):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(200):
            handler.wfile.write(b"4000\r\n" + b"z" * 0x4000 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server = serve(chunked)
    response = fetch("GET", f"http://127.0.0.1:{server.port}/", max_bytes=100_000)
    assert (len(response.body), response.truncated) == (100_000, True)


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_egress_timeout_is_a_network_error(loopback_allowed, silent_port):
    with pytest.raises(EgressError) as error:
        fetch("GET", f"http://127.0.0.1:{silent_port}/", timeout=0.5, connect_timeout=0.5)
    assert str(error.value) == UNREACHABLE


def test_egress_total_timeout_holds_against_a_trickling_server(loopback_allowed):
    """A server sending a byte at a time never trips a per-read timeout; the total one still ends it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(600):  # 30 s of one byte every 50 ms, unless stopped
                if stop.wait(0.05):
                    break
                try:
                    connection.sendall(b"a")
                except OSError:
                    break

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(EgressError):
            fetch("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.5)
        # Generous on purpose: without a total deadline this would take the server's full 30 s.
        assert time.monotonic() - started < 15
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_egress_refused_connection_looks_like_a_timeout(loopback_allowed, silent_port):
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here now
    with pytest.raises(EgressError) as refused:
        fetch("GET", f"http://127.0.0.1:{port}/", timeout=2)
    with pytest.raises(EgressError) as timed_out:
        fetch("GET", f"http://127.0.0.1:{silent_port}/", timeout=0.5)
    assert str(refused.value) == str(timed_out.value) == UNREACHABLE
    assert refused.value.reason != timed_out.value.reason  # the logs still tell them apart


def test_egress_resolves_once_per_fetch(loopback_allowed, serve, monkeypatch):
    real = socket.getaddrinfo
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    server = serve(answer())
    assert fetch("GET", f"http://localhost:{server.port}/").status == 200
    assert calls == ["localhost"]
    assert fetch("GET", f"http://localhost:{server.port}/").status == 200
    assert calls == ["localhost", "localhost"]
    assert len(server.requests) == 2


def test_egress_dns_rebinding_uses_the_checked_address(loopback_allowed, serve, fake_dns):
    """The first answer is checked and used; a later answer (a private address) is never asked for."""
    names, calls = fake_dns
    names["rebind.example"] = [["127.0.0.1"], ["10.0.0.1"]]
    server = serve(answer())
    response = fetch("GET", f"http://rebind.example:{server.port}/x")
    assert response.status == 200 and response.address == "127.0.0.1"
    assert calls == ["rebind.example"]
    assert server.requests[0]["headers"]["Host"] == f"rebind.example:{server.port}"


def test_egress_ssrf_one_private_answer_refuses_and_nothing_is_sent(loopback_allowed, serve, fake_dns):
    names, _ = fake_dns
    names["half.example"] = ["127.0.0.1", "10.0.0.1"]
    server = serve(answer())
    with pytest.raises(EgressRefused):
        fetch("POST", f"http://half.example:{server.port}/", body=b"{}")
    assert server.requests == []


def test_egress_allowed_hosts_on_fetch(loopback_allowed, serve):
    server = serve(answer())
    with pytest.raises(EgressRefused):
        fetch("GET", f"http://localhost:{server.port}/media", allowed_hosts=["media.carrier.example"])
    assert server.requests == []
    assert fetch("GET", f"http://localhost:{server.port}/media", allowed_hosts=["LocalHost"]).status == 200
    assert len(server.requests) == 1


# --- https: the certificate is checked against the URL's host, not the IP -------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throw-away CA and a certificate for "localhost" signed by it (openssl command line)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=egress test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return folder


@pytest.fixture
def tls_server(serve, certificates):
    server = serve(answer(body=b"secure"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    return server


def test_egress_https_verifies_the_url_host(loopback_allowed, tls_server, certificates, fake_dns, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    response = fetch("GET", f"https://localhost:{tls_server.port}/")
    assert (response.status, response.body, response.address) == (200, b"secure", "127.0.0.1")
    assert tls_server.requests[0]["headers"]["Host"] == f"localhost:{tls_server.port}"

    names, _ = fake_dns
    names["other.example"] = ["127.0.0.1"]  # same address, but the certificate is not for this name
    with pytest.raises(EgressError) as error:
        fetch("GET", f"https://other.example:{tls_server.port}/", timeout=3)
    assert "certificate" in error.value.reason.lower() or "hostname" in error.value.reason.lower()
    with pytest.raises(EgressError):
        fetch("GET", f"https://127.0.0.1:{tls_server.port}/", timeout=3)  # no IP in the certificate
    assert len(tls_server.requests) == 1


def test_egress_https_refuses_an_untrusted_certificate(loopback_allowed, tls_server, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(EgressError) as error:
        fetch("GET", f"https://localhost:{tls_server.port}/", timeout=3)
    assert str(error.value) == UNREACHABLE
    assert tls_server.requests == []


def test_egress_defaults_come_from_settings(settings):
    assert settings.EGRESS_CONNECT_TIMEOUT > 0 and settings.EGRESS_TIMEOUT >= settings.EGRESS_CONNECT_TIMEOUT
    assert egress.DEFAULT_MAX_BYTES > 0


# --- public links (judged without resolving: links people open on their own phones) --------------


@pytest.mark.parametrize(
    "url",
    ["https://shop.example.jp/coupon?a=1", "http://www.example.com:8080/x", "https://8.8.8.8/", "https://[2001:4860:4860::8888]/"],
)
def test_public_url_refusal_accepts_public_http_links(url, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("a link is judged without DNS"))
    assert egress.public_url_refusal(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example.jp/", "mailto:a@example.jp", "https://", "http://localhost:8000/", "http://127.0.0.1/",
        "http://10.1.2.3/", "http://[::ffff:192.168.0.1]/", "http://100.64.0.1/", "http://nas/", "http://router.lan/",
        "http://db.internal/", "https://u:p@shop.example.jp/", "https://shop.example.jp/\nx",
    ],
)
def test_public_url_refusal_names_why_a_link_is_not_public(url, settings):
    settings.EGRESS_ALLOW_LOOPBACK = True  # development's loopback allowance never applies to links
    assert egress.public_url_refusal(url)
