"""The egress guard wired into every server-side fetch (security issue 14, item 1): outbound webhooks
and inbound carrier media go through ``core.egress``, and a webhook URL is checked when it is saved.

Real HTTP servers on 127.0.0.1 (port 0) count the requests that reach them, so "nothing was sent"
is observed, not assumed. ``settings.EGRESS_ALLOW_LOOPBACK`` is on in the test settings (the
sandbox and these servers live on loopback); tests that need production's rule turn it off.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading

import pytest
from django.test import Client
from django.utils import translation
from PIL import Image

from accounts.forms import WebhookEndpointForm
from accounts.models import Role, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core.egress import EgressError, EgressRefused
from messaging import outbound_webhooks as ow
from messaging import tasks
from messaging.gateways.base import NormalizedEvent
from messaging.inbound_media import inbound_media_fetch
from messaging.inbox import inbound_apply
from messaging.models import ConversationMessage, MediaStatus
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member

pytestmark = pytest.mark.django_db

REFUSED = "The address is not allowed."
UNREACHABLE = "Could not connect to the address."
REFUSED_JA = "このアドレスは許可されていません。"
UNREACHABLE_JA = "このアドレスに接続できませんでした。"


# --- helpers --------------------------------------------------------------------------------------


class Server:
    """A real HTTP server on 127.0.0.1 that records every request and answers with ``respond``."""

    def __init__(self, respond):
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append({"method": self.command, "path": self.path, "body": body})
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_HEAD = handle_one

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(status=200, body=b"ok", headers=(), content_type="text/plain"):
    def respond(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.fixture
def serve():
    servers = []

    def start(respond=None):
        servers.append(Server(respond or answer()))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def loopback_refused(settings):
    settings.EGRESS_ALLOW_LOOPBACK = False


@pytest.fixture
def no_retry_tasks(monkeypatch):
    """The retries webhook_attempt schedules, recorded instead of sent to the broker."""
    scheduled = []
    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", lambda args, countdown=None, **kw: scheduled.append(args))
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda *args: scheduled.append(args))
    return scheduled


@pytest.fixture
def organization():
    return OrganizationFactory()


@pytest.fixture
def owner_client(organization):
    client = Client()
    client.force_login(member(organization, Role.OWNER))
    return client


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pending_delivery(organization, url: str) -> WebhookDelivery:
    """An endpoint row stored as is (as an older release might have saved it) with one event to send."""
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=url, events=["message.sent"], secret=WebhookEndpoint.new_secret()
    )
    return WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="message.sent", payload={"type": "message.sent", "data": {}}
    )


def png() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 120, 200)).save(image, "PNG")
    return image.getvalue()


# --- (a) outbound webhooks: no redirect followed --------------------------------------------------


def test_egress_webhook_redirect_is_a_failed_attempt_and_not_followed(organization, serve, no_retry_tasks):
    target = serve(answer(200, b"the redirect's target"))
    redirector = serve(answer(302, b"", headers=[("Location", f"{target.url}/internal")]))
    delivery = pending_delivery(organization, f"{redirector.url}/hook")

    assert ow.webhook_attempt(delivery.pk) == "retry"  # a 3xx is a failed attempt, retried as any other

    assert len(redirector.requests) == 1 and redirector.requests[0]["method"] == "POST"
    assert target.requests == []  # the Location was not followed
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 302 and attempt.error == ""
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_status_code == 302
    assert no_retry_tasks == [(delivery.pk,)]


# --- (b) webhook URLs: refused when saved and when used --------------------------------------------

REFUSED_WEBHOOK_URLS = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
]


@pytest.mark.parametrize("url", REFUSED_WEBHOOK_URLS)
def test_egress_webhook_form_refuses_internal_addresses(url, loopback_refused, serve):
    server = serve()
    form = WebhookEndpointForm(data={"url": url.format(port=server.port), "events": ["message.sent"]})
    assert not form.is_valid()
    assert form.errors["url"] == [REFUSED]
    assert server.requests == []  # saving only checks, it never connects


@pytest.mark.parametrize("url", REFUSED_WEBHOOK_URLS)
def test_egress_webhook_console_post_refuses_internal_addresses(url, loopback_refused, serve, owner_client):
    server = serve()
    response = owner_client.post(
        "/accounts/webhooks/", {"url": url.format(port=server.port), "events": ["message.sent"]}
    )
    assert response.status_code == 200
    assert REFUSED in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    assert server.requests == []


def test_egress_webhook_form_refuses_a_host_that_does_not_resolve(monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    form = WebhookEndpointForm(data={"url": "https://hooks.example-typo.jp/pm", "events": ["message.sent"]})
    assert not form.is_valid()
    assert form.errors["url"] == [UNREACHABLE]


def test_egress_webhook_form_accepts_a_public_address(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example.jp":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("93.184.216.34", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    form = WebhookEndpointForm(data={"url": "https://hooks.example.jp/pm", "events": ["message.sent"]})
    assert form.is_valid(), form.errors


def test_egress_endpoint_create_refuses_a_refused_address(organization, loopback_refused):
    with pytest.raises(EgressRefused):
        ow.endpoint_create(organization, "http://169.254.169.254/", ["message.sent"])
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("template", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook",
                                      "http://[::ffff:127.0.0.1]:{port}/hook"])
def test_egress_webhook_stored_internal_url_is_refused_at_send_time(
    template, organization, loopback_refused, serve, no_retry_tasks
):
    server = serve()
    delivery = pending_delivery(organization, template.format(port=server.port))

    assert ow.webhook_attempt(delivery.pk) == "retry"

    assert server.requests == []
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and attempt.error == REFUSED
    assert attempt.response_body == "" and attempt.duration_ms == 0  # no timing: no port-scan oracle


def test_egress_webhook_metadata_address_is_refused_at_send_time(organization, loopback_refused, no_retry_tasks):
    delivery = pending_delivery(organization, "http://169.254.169.254/latest/meta-data/")
    assert ow.webhook_attempt(delivery.pk) == "retry"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert (attempt.status_code, attempt.error, attempt.duration_ms) == (None, REFUSED, 0)


def test_egress_webhook_unreachable_and_refused_look_alike(organization, no_retry_tasks):
    delivery = pending_delivery(organization, f"http://127.0.0.1:{closed_port()}/hook")
    assert ow.webhook_attempt(delivery.pk) == "retry"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert (attempt.status_code, attempt.error, attempt.response_body, attempt.duration_ms) == (None, UNREACHABLE, "", 0)


def test_egress_webhook_log_shows_a_short_escaped_excerpt(organization, serve, no_retry_tasks, owner_client):
    body = b"<script>alert('x')</script>" + b"y" * 5000
    server = serve(answer(500, body, content_type="text/html"))
    delivery = pending_delivery(organization, f"{server.url}/hook")
    assert ow.webhook_attempt(delivery.pk) == "retry"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 500 and attempt.response_body == body[: ow.RESPONSE_KEPT].decode()

    page = owner_client.get(f"/accounts/webhooks/{delivery.endpoint_id}/").content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>alert(" not in page
    assert "y" * (ow.RESPONSE_KEPT + 1) not in page


def test_egress_webhook_log_shows_the_refusal_translated(organization, loopback_refused, no_retry_tasks, owner_client):
    delivery = pending_delivery(organization, "http://169.254.169.254/")
    ow.webhook_attempt(delivery.pk)
    page = owner_client.get(f"/accounts/webhooks/{delivery.endpoint_id}/")
    assert REFUSED in page.content.decode()
    japanese = owner_client.get(f"/accounts/webhooks/{delivery.endpoint_id}/", HTTP_ACCEPT_LANGUAGE="ja")
    assert REFUSED_JA in japanese.content.decode()


# --- (c) inbound media: only from the gateway's hosts, never an internal address ------------------


@pytest.fixture
def inbound(organization):
    """Store one inbound file message arriving through a gateway account; returns a function of
    (file URL, gateway fields) giving the ConversationMessage."""

    def receive(file_url: str, **gateway_fields) -> ConversationMessage:
        gateway = GatewayAccountFactory(organization=organization, **gateway_fields)
        approved_account(organization, rcs_gateway=gateway)
        event = NormalizedEvent(
            provider="rbm", event_id=f"evt-{gateway.pk}", kind="inbound_file", channel="rcs", phone="+819011112222",
            file_url=file_url, file_mime="image/png", gateway_id=gateway.pk,
        )
        (message,) = inbound_apply([event])
        assert message.media_status == MediaStatus.PENDING
        return message

    return receive


def test_egress_inbound_media_from_a_loopback_address_fails_without_a_request(inbound, loopback_refused, serve):
    server = serve(answer(200, png(), content_type="image/png"))
    message = inbound(f"{server.url}/photo.png", base_url=server.url)  # even the gateway's own host

    assert inbound_media_fetch(message.pk) == MediaStatus.FAILED

    assert server.requests == []
    message.refresh_from_db()
    assert message.media_status == MediaStatus.FAILED and message.media_error == REFUSED and not message.file


def test_egress_inbound_media_from_a_host_the_gateway_does_not_list_fails_without_a_request(inbound, serve):
    server = serve(answer(200, png(), content_type="image/png"))
    # The gateway's base URL is on 127.0.0.1; the file claims to be on "localhost" (the same server).
    message = inbound(f"http://localhost:{server.port}/photo.png", base_url="http://127.0.0.1:9")

    assert inbound_media_fetch(message.pk) == MediaStatus.FAILED

    assert server.requests == []
    message.refresh_from_db()
    assert message.media_status == MediaStatus.FAILED and message.media_error == REFUSED


def test_egress_inbound_media_hosts_replace_the_base_url_host(inbound, serve):
    server = serve(answer(200, png(), content_type="image/png"))
    message = inbound(f"{server.url}/photo.png", base_url=server.url, media_hosts=["media.example.com"])

    assert inbound_media_fetch(message.pk) == MediaStatus.FAILED
    assert server.requests == []


def test_egress_inbound_media_from_a_listed_host_is_stored(inbound, serve):
    server = serve(answer(200, png(), content_type="image/png"))
    message = inbound(f"http://localhost:{server.port}/photo.png", base_url="http://127.0.0.1:9",
                      media_hosts=["localhost"])

    assert inbound_media_fetch(message.pk) == MediaStatus.STORED

    assert len(server.requests) == 1
    message.refresh_from_db()
    assert message.media_status == MediaStatus.STORED and message.file.name and message.media_error == ""


def test_egress_inbound_media_redirect_is_not_followed(inbound, serve):
    target = serve(answer(200, png(), content_type="image/png"))
    redirector = serve(answer(302, b"", headers=[("Location", f"{target.url}/photo.png")]))
    message = inbound(f"{redirector.url}/photo.png", base_url=redirector.url)

    assert inbound_media_fetch(message.pk) == MediaStatus.FAILED

    assert len(redirector.requests) == 1 and target.requests == []
    message.refresh_from_db()
    assert message.media_error == "HTTP 302"


def test_egress_inbound_media_over_the_limit_is_too_large(inbound, serve, settings):
    settings.INBOX_MEDIA_MAX_BYTES = 1024
    server = serve(answer(200, b"x" * 4096, content_type="application/pdf"))
    message = inbound(f"{server.url}/huge.pdf", base_url=server.url)
    assert inbound_media_fetch(message.pk) == MediaStatus.TOO_LARGE


def test_egress_inbound_media_other_scheme_fails(inbound):
    message = inbound("ftp://127.0.0.1/photo.png", base_url="http://127.0.0.1:9")
    assert inbound_media_fetch(message.pk) == MediaStatus.FAILED
    message.refresh_from_db()
    assert message.media_error == REFUSED


# --- translations ---------------------------------------------------------------------------------


def test_egress_messages_are_translated_to_japanese(loopback_refused):
    with translation.override("ja"):
        assert str(EgressRefused("loopback")) == REFUSED_JA
        assert str(EgressError("timeout")) == UNREACHABLE_JA
        form = WebhookEndpointForm(data={"url": "http://169.254.169.254/", "events": ["message.sent"]})
        assert form.errors["url"] == [REFUSED_JA]
