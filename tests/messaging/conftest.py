"""The sandbox carrier as a fixture: a real ``manage.py runsandbox`` process on a free port.

``sandbox_server`` (session) starts it once and kills it at the end; ``sandbox`` (per test) resets
its state and gives a small admin client. Gateways are registered through the admin API, so the
sandbox never reads the test database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxClient:
    """Admin API calls (loopback only) and waiting helpers."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from None

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, payload=None):
        return self.call("POST", path, payload if payload is not None else {})

    def configure(self, **config):
        return self.post("config", config)

    def register_rbm(self, *, agent_id="agent-test", bearer_token="bearer-test", client_token="client-test",
                     webhook_url="", gateway_id=None):
        return self.post(
            "gateways",
            {
                "kind": "rbm",
                "agent_id": agent_id,
                "bearer_token": bearer_token,
                "client_token": client_token,
                "webhook_url": webhook_url,
                "gateway_id": gateway_id,
            },
        )

    def register_cm(self, *, product_token="product-test", callback_secret="secret-test", webhook_url="",
                    gateway_id=None):
        return self.post(
            "gateways",
            {
                "kind": "cm",
                "product_token": product_token,
                "callback_secret": callback_secret,
                "webhook_url": webhook_url,
                "gateway_id": gateway_id,
            },
        )

    def profile(self, phone: str, name: str):
        self.configure(profile_overrides={phone: name})

    def inbox(self, phone: str) -> list[dict]:
        return self.get(f"inbox/{phone}")["messages"]

    def tallies(self) -> dict:
        return self.get("tallies")

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(interval)


@pytest.fixture(scope="session")
def sandbox_server():
    port = free_port()
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runsandbox", "--port", str(port), "--no-db"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = SandboxClient(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"runsandbox exited: {process.stderr.read().decode()[-2000:]}")
            try:
                client.get("health")
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise RuntimeError("runsandbox did not answer in 30 s") from None
                time.sleep(0.1)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.post("reset", {"registrations": True})
    yield sandbox_server
    sandbox_server.post("reset", {"registrations": True})


class WebhookSink:
    """A tiny real HTTP server that records every callback the sandbox posts to it."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; 200 once exhausted
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with sink._lock:
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    sink.received.append(
                        {"path": self.path, "headers": dict(self.headers.items()), "body": body, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict]:
        with self._lock:
            return [item for item in self.received if item["status"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_sink():
    sink = WebhookSink()
    yield sink
    sink.close()
