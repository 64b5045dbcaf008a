"""The egress guard: the one way the product makes a server-side HTTP request.

Outbound webhooks, inbound carrier media and anything added later fetch through :func:`fetch`, and
a URL a user saves is checked with :func:`check_url`. What it guarantees:

- http and https only; no user-info in the URL; a port from 1 to 65535 (any port: the address
  checks apply whatever the port).
- The host is resolved once (``socket.getaddrinfo``) and every address it resolves to is checked;
  one refused address refuses the URL. Refused: loopback, private, link-local, CGNAT
  (100.64.0.0/10), multicast, reserved, unspecified, unique-local (fc00::/7), site-local (fec0::/10),
  documentation and benchmarking ranges (anything Python does not call global), and the
  IPv4-mapped, IPv4-translated, IPv4-compatible, 6to4 (2002::/16) and NAT64 (64:ff9b::/96) forms
  of those. Numeric spellings (``2130706433``, ``0177.1``) resolve to the address they mean and are
  checked as that address.
- The connection goes to an address that was checked: the socket is connected to the IP itself and
  the Host header (and for https the SNI name and the certificate check) use the URL's host — no
  second lookup, so a DNS answer that changes between check and use (rebinding) gains nothing.
  Environment proxies are not used.
- No redirect is followed: a 3xx is returned like any other response.
- A connect timeout and a total timeout (a watchdog closes the socket at the deadline, so a server
  sending a byte at a time cannot stretch it), and a cap on the body read (``truncated`` says the
  server had more). No content decoding (``Accept-Encoding: identity``), so no decompression bomb.
- One user-facing message per outcome: :class:`EgressRefused` ("The address is not allowed.") for a
  target the guard will not reach, :class:`EgressError` ("Could not connect to the address.") for
  any network failure — timeouts, refused connections, TLS errors and unreachable hosts look alike,
  so the errors cannot be used to scan ports. The precise cause is in ``reason``, for logs only.

Development talks to the sandbox carrier on 127.0.0.1: with ``settings.EGRESS_ALLOW_LOOPBACK``
(``make run`` and the tests set it; production never does) loopback addresses (127.0.0.0/8, ::1)
are allowed — nothing else is, not private or link-local addresses, not loopback in a mapped form.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 15.0
_CHUNK = 64 * 1024
_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, RFC 4291 §2.5.5.1
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, what DNS64 answers for IPv4-only hosts
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local-use translation
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# --- errors ---------------------------------------------------------------------------------------


class EgressProblem(Exception):
    """Base of the guard's errors: ``str()`` is the user-facing message, ``reason`` is for logs."""

    user_message = _("Could not connect to the address.")

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.user_message)


class EgressRefused(EgressProblem, ValueError):
    """The URL or one of the addresses its host resolves to is not allowed: nothing was sent."""

    user_message = _("The address is not allowed.")


class EgressError(EgressProblem):
    """A network failure (resolution, connection, TLS, timeout, malformed answer): the same message
    whatever the cause, so errors reveal nothing about ports or timings."""

    user_message = _("Could not connect to the address.")


@dataclass(frozen=True)
class EgressResponse:
    status: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes  # at most max_bytes
    truncated: bool  # the server had more than max_bytes
    address: str  # the IP the request went to (checked)
    reason_phrase: str = field(default="", compare=False)


# --- the address classifier -----------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries, with the form's name, or None."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _IPV4_TRANSLATED:
        return "IPv4-translated", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


def address_refusal(address: str | IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the guard refuses to connect to ``address`` (a log reason), or None when it may.

    ``allow_loopback`` lets 127.0.0.0/8 and ::1 through (development's sandbox) and nothing else.
    """
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return f"not an IP address: {address!r}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(address.compressed.split("%")[0])
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            form, inner = embedded
            reason = address_refusal(inner)  # never loopback through a mapped form
            return f"{form} form of {inner}: {reason}" if reason else None
        if address in _NAT64_LOCAL:
            return "local-use NAT64"
        if address in _IPV4_COMPATIBLE and not (address.is_loopback or address.is_unspecified):
            return "IPv4-compatible (deprecated)"
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return "unspecified"
    if address.is_loopback:
        if allow_loopback and any(address in network for network in _LOOPBACK):
            return None
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.version == 4 and address in _CGNAT:
        return "CGNAT (shared address space)"
    if address.version == 6 and address in _UNIQUE_LOCAL:
        return "unique-local"
    if address.version == 6 and address.is_site_local:
        return "site-local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


# --- reachable from the internet? ------------------------------------------------------------------

# Names that only mean something inside one network (RFC 6761 localhost, RFC 6762 .local, RFC 8375
# home.arpa, and the de-facto .internal, .lan and .localdomain): no carrier can resolve them.
LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".localdomain", ".home.arpa")


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as a number means (``127.0.0.1``, ``[::1]``, ``2130706433``,
    ``0177.1``), without any lookup; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefx." for char in host) and any(char.isdigit() for char in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # the C library's numeric forms
        except OSError:
            return None
    return None


def public_reach_problem(url: str) -> str | None:
    """Why a machine on the internet (a carrier fetching campaign media) could not reach ``url``'s
    host, as a log-style reason ("loopback", "private", "link-local", "local name" …), or None
    when nothing in the URL says so.

    No lookup is made (this runs while a marketer types). An address written in the URL is
    classified with :func:`address_refusal`, loopback included whatever ``EGRESS_ALLOW_LOOPBACK``
    says (that setting lets *our* requests reach the local sandbox; a carrier is never on our
    loopback); a name that only resolves inside a network (``localhost``, ``*.local``, a single
    label such as ``intranet``) is a "local name". A malformed URL is the rich-content validator's
    business: it answers None here.
    """
    try:
        _scheme, host, _port, _path = _parse(url)
    except EgressRefused:
        return None
    address = _literal_address(host)
    if address is not None:
        return address_refusal(address)
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(LOCAL_NAME_SUFFIXES) or "." not in name:
        return "local name"
    return None


# --- URL checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # IDNA (ASCII), lower-case, no brackets
    port: int
    path: str  # path and query, what goes on the request line
    addresses: tuple[tuple[int, tuple], ...]  # (family, sockaddr), every one checked


def _allow_loopback() -> bool:
    return bool(getattr(settings, "EGRESS_ALLOW_LOOPBACK", False))


def _parse(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url.strip() or len(url) > 2048:
        raise EgressRefused("not a URL")
    url = url.strip()
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise EgressRefused("whitespace or control character in the URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EgressRefused(f"malformed URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise EgressRefused(f"scheme {scheme!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("user-info in the URL")
    host = parts.hostname or ""
    if not host:
        raise EgressRefused("no host")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise EgressRefused("host is not a valid name") from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise EgressRefused(f"port {port}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, quote(path, safe=_PRINTABLE_ASCII)  # only non-ASCII is escaped


_LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp")


def public_url_refusal(url: str) -> str | None:
    """Why ``url`` is not an http/https link to a public host (a reason), or None when it is.

    Judged from the URL alone, without resolving the name: for links that people open on their own
    phones (the console never requests them), so what matters is that the link is well formed and
    does not name an internal host. An IP literal goes through ``address_refusal`` (loopback never
    allowed); a name must have a dot and not end in a local-use suffix.
    """
    try:
        _scheme, host, _port, _path = _parse(url)
    except EgressRefused as error:
        return error.reason
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return address_refusal(address)
    name = host.rstrip(".")
    if name == "localhost" or "." not in name or name.endswith(_LOCAL_NAME_SUFFIXES):
        return f"not a public host name: {name!r}"
    return None


def _resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """The one lookup of a fetch: every (family, sockaddr) the host resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise EgressError(f"cannot resolve {host!r}: {error}") from None
    addresses: list[tuple[int, tuple]] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise EgressError(f"{host!r} resolves to no IP address")
    return addresses


def _target(url: str, allowed_hosts: Iterable[str] | None) -> _Target:
    scheme, host, port, path = _parse(url)
    if allowed_hosts is not None:
        allowed = {name.strip().lower().strip("[]") for name in allowed_hosts if name and name.strip()}
        if host not in allowed:
            raise EgressRefused(f"host {host!r} is not in the allowed hosts")
    addresses = _resolve(host, port)
    allow_loopback = _allow_loopback()
    for _family, sockaddr in addresses:
        reason = address_refusal(sockaddr[0], allow_loopback=allow_loopback)
        if reason:
            raise EgressRefused(f"{host!r} resolves to {sockaddr[0]}: {reason}")
    return _Target(scheme, host, port, path, tuple(addresses))


def check_url(url: str, *, allowed_hosts: Iterable[str] | None = None) -> None:
    """Check a URL when it is saved: raises EgressRefused for a refused URL or address, EgressError
    when the host does not resolve. Nothing is sent."""
    try:
        _target(url, allowed_hosts)
    except EgressRefused as error:
        logger.info("egress refused %s: %s", _for_log(url), error.reason)
        raise


# --- fetch ----------------------------------------------------------------------------------------


def _for_log(url: object) -> str:
    return repr(str(url)[:200])


class _Watchdog:
    """Shuts the socket down at the deadline, waking any blocked read, whatever the server does."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.fired = False
        self._sock = sock
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            # The plain socket's shutdown even on an SSLSocket: the TLS layer is not touched from here.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def watch(self, sock: socket.socket) -> None:
        """Follow the socket that now owns the connection (the TLS wrapper detaches the plain one)."""
        self._sock = sock
        if self.fired:
            self._fire()

    def cancel(self) -> None:
        self._timer.cancel()


def _connect(target: _Target, connect_timeout: float, deadline: float) -> tuple[socket.socket, str]:
    """A socket connected to one of the checked addresses, in the resolver's order."""
    last_error: Exception | None = None
    for family, sockaddr in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.settimeout(min(connect_timeout, remaining))
            sock.connect(sockaddr)
            return sock, sockaddr[0]
        except OSError as error:
            sock.close()
            last_error = error
    raise EgressError(f"cannot connect to {target.host}:{target.port}: {last_error or 'timed out'}")


def fetch(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_hosts: Iterable[str] | None = None,
) -> EgressResponse:
    """Make one HTTP request through the guard; see the module docstring for what is checked.

    ``timeout`` bounds the whole request (resolution excepted: the system resolver's own limits),
    ``connect_timeout`` the TCP connect (defaults: settings EGRESS_TIMEOUT, EGRESS_CONNECT_TIMEOUT);
    at most ``max_bytes`` of the body are read. ``allowed_hosts``, when given, must contain the
    URL's host (exact, case-insensitive) in addition to the address checks.
    Raises EgressRefused (nothing sent) or EgressError (network failure).
    """
    if timeout is None:
        timeout = float(getattr(settings, "EGRESS_TIMEOUT", DEFAULT_TIMEOUT))
    if connect_timeout is None:
        connect_timeout = float(getattr(settings, "EGRESS_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT))
    deadline = time.monotonic() + timeout
    try:
        target = _target(url, allowed_hosts)
    except EgressProblem as error:
        logger.info("egress %s %s: %s", type(error).__name__, _for_log(url), error.reason)
        raise
    try:
        return _request(target, method.upper(), headers or {}, body, connect_timeout, deadline, max_bytes)
    except EgressError as error:
        logger.info("egress failed %s: %s", _for_log(url), error.reason)
        raise


def _request(target, method, headers, body, connect_timeout, deadline, max_bytes) -> EgressResponse:
    sock, address = _connect(target, connect_timeout, deadline)
    watchdog = _Watchdog(sock, deadline - time.monotonic())
    connection = None
    try:
        if target.scheme == "https":
            context = ssl.create_default_context()  # verifies the chain and the URL's host name
            sock = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
            watchdog.watch(sock)
            _set_timeout(sock, deadline)
            sock.do_handshake()
            connection = http.client.HTTPSConnection(target.host, target.port, context=context)
        else:
            connection = http.client.HTTPConnection(target.host, target.port)
        connection.sock = sock  # already connected to the checked address: no lookup of its own
        request_headers = {"Connection": "close", "User-Agent": "plusmessage-console/1"}
        for name, value in headers.items():
            for default in [key for key in request_headers if key.lower() == name.lower()]:
                del request_headers[default]
            request_headers[name] = value
        _set_timeout(sock, deadline)
        connection.request(method, target.path, body=body, headers=request_headers)
        _set_timeout(sock, deadline)
        response = connection.getresponse()
        chunks, size, truncated = [], 0, False
        # http.client closes the socket once a closing response (HTTP/1.0, "Connection: close") is
        # read to its end: stop there rather than touch the closed socket again.
        while not response.isclosed():
            _set_timeout(sock, deadline)
            chunk = response.read(min(_CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                truncated = True
                break
        data = b"".join(chunks)[:max_bytes]
        merged: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return EgressResponse(response.status, merged, data, truncated, address, response.reason or "")
    except EgressError:
        raise
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as error:
        cause = "total timeout" if watchdog.fired or time.monotonic() >= deadline else type(error).__name__
        raise EgressError(f"{target.host}:{target.port} via {address}: {cause}: {error}") from None
    finally:
        watchdog.cancel()
        if connection is not None:
            connection.close()
        sock.close()


def _set_timeout(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise EgressError("total timeout")
    sock.settimeout(remaining)
