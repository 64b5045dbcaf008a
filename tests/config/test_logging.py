"""Structured logs (core.logs, config.middleware, config/celery.py): one JSON object per line on
stderr, the request id echoed and carried into Celery tasks run by a real worker process, phone
numbers hashed and message bodies absent. Lines are read from the handler settings.LOGGING put on
the root logger, its stream swapped for a buffer (pytest holds the process's stderr)."""

import io
import json
import logging
import re
import subprocess
import sys

import pytest
from django.urls import reverse

from accounts.models import GatewayKind
from config.celery import _argument_ids
from config.middleware import HEADER
from core.logs import ConsoleFormatter, _MaskingFormatter, bound, mask_phones
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.tasks import deliver_webhook, dispatch_campaign, heartbeat, send_message, start_recurring_run
from tests.accounts.factories import (
    GatewayAccountFactory,
    OfficialAccountFactory,
    OrganizationFactory,
    member,
)
from tests.messaging.engine import BASE_DIR, flush_redis, wait_until, worker_env

PHONE_FORMS = ["+819012345678", "090-1234-5678", "0081 9012345678".replace(" ", ""), "０９０１２３４５６７８"]


class LogOutput:
    def __init__(self):
        (self.handler,) = [h for h in logging.getLogger().handlers if isinstance(h.formatter, _MaskingFormatter)]
        self.stream = io.StringIO()
        self.previous = self.handler.setStream(self.stream)

    def readouterr(self) -> str:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return text


@pytest.fixture
def log_output():
    output = LogOutput()
    yield output
    output.handler.setStream(output.previous)


def _lines(text: str) -> list[dict]:
    """Every non-empty line of ``text`` parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.django_db
def test_request_line_is_json_with_the_callers_request_id_echoed(client, log_output):
    organization = OrganizationFactory()
    client.force_login(member(organization))
    log_output.readouterr()

    response = client.get(reverse("dashboard"), headers={HEADER: "req-42.abc"})

    assert response.status_code == 200
    assert response[HEADER] == "req-42.abc"
    lines = _lines(log_output.readouterr())
    access = [line for line in lines if line["logger"] == "http.request"]
    assert len(access) == 1
    assert access[0]["request_id"] == "req-42.abc"
    assert access[0]["organization_id"] == organization.pk
    assert access[0]["status"] == 200 and access[0]["view"] == "dashboard"
    assert {"timestamp", "level", "event"} <= access[0].keys()


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["has space", "x" * 200, "<script>", "ＩＤ１２３"])
def test_an_unsafe_request_id_is_replaced_by_a_new_one(client, log_output, sent):
    response = client.get(reverse("login"), headers={HEADER: sent})

    assert re.fullmatch(r"[0-9a-f]{32}", response[HEADER])
    access = [line for line in _lines(log_output.readouterr()) if line["logger"] == "http.request"]
    assert [line["request_id"] for line in access] == [response[HEADER]]
    assert sent not in json.dumps(access, ensure_ascii=False)


@pytest.mark.django_db
def test_the_access_line_names_the_route_never_a_secret_in_the_path(client, log_output):
    gateway = GatewayAccountFactory(kind=GatewayKind.CM)
    secret = "callback-secret-Zq81xW"

    client.post(reverse("messaging:webhook_cm", args=[gateway.pk, secret]), data="{}", content_type="application/json")
    client.get("/no-such-page/")

    output = log_output.readouterr()
    access = [line for line in _lines(output) if line["logger"] == "http.request"]
    assert [line["view"] for line in access] == ["messaging:webhook_cm", "(no route)"]
    assert access[0]["route"] == "/messaging/webhooks/cm/<int:gateway_id>/<str:secret>/"
    assert secret not in output


@pytest.mark.django_db(transaction=True)
def test_a_task_run_by_a_real_worker_logs_the_request_id_that_enqueued_it(tmp_path):
    flush_redis()
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "celery", "-c", "1", "-n",
             "logs@%h", "-l", "info", "--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=BASE_DIR, env=worker_env(LOG_FORMAT="json"), stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,
        )
    try:
        with bound(request_id="req-from-the-console", organization_id=7):
            result = heartbeat.apply_async(args=["logs-test"], queue="celery")

        def task_lines():
            # Celery warns about running as root before logging is configured: plain text, skipped.
            text = log_path.read_text(encoding="utf-8")
            records = _lines("\n".join(line for line in text.splitlines() if line.startswith("{")))
            return [line for line in records if line.get("task_id") == result.id]

        assert wait_until(lambda: any("succeeded" in line["event"] for line in task_lines()), timeout=60, interval=0.2)
        lines = task_lines()
        assert {line["request_id"] for line in lines} == {"req-from-the-console"}
        assert {line["organization_id"] for line in lines} == {7}
        assert {line["task"] for line in lines} == {"messaging.tasks.heartbeat"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        flush_redis()


@pytest.mark.django_db
def test_an_inbound_message_is_logged_without_its_number_or_its_text(log_output, settings):
    organization = OrganizationFactory()
    gateway = GatewayAccountFactory(organization=organization)
    OfficialAccountFactory(organization=organization, rcs_gateway=gateway)
    body = "本日限定クーポン番号ABC123をお使いください"
    log_output.readouterr()

    inbound_apply([NormalizedEvent(provider="rbm", event_id="ev-1", kind="inbound_text", channel="rcs",
                                   phone="+14155550123", text=body, gateway_id=gateway.pk)])

    err = log_output.readouterr()
    (line,) = [line for line in _lines(err) if line["logger"] == "messaging.inbox"]
    assert line["level"] == "warning"
    assert re.search(r"from tel:[0-9a-f]{8}, not a Japanese mobile", line["event"])
    assert "4155550123" not in err and body not in err


def test_every_spelling_of_one_number_hashes_the_same_and_ids_are_left_alone():
    masked = {mask_phones(form, b"salt") for form in PHONE_FORMS}
    assert len(masked) == 1 and re.fullmatch(r"tel:[0-9a-f]{8}", masked.pop())
    assert mask_phones("+819012345678", b"other") != mask_phones("+819012345678", b"salt")
    kept = "delivery 3f2a0900-1234-5678-9abc-def012345678 campaign 12345678901 at 2026-12-03T16:52:04"
    assert mask_phones(kept, b"salt") == kept


def test_a_number_in_an_exception_or_an_extra_field_is_masked(log_output):
    logger = logging.getLogger("messaging.engine.test")
    try:
        raise ValueError("carrier refused +819012345678")
    except ValueError:
        logger.exception("send failed", extra={"to": "090-1234-5678"})

    err = log_output.readouterr()
    (line,) = [line for line in _lines(err) if line["logger"] == "messaging.engine.test"]
    assert line["to"].startswith("tel:") and "tel:" in line["exception"]
    assert "9012345678" not in err and "1234-5678" not in err


def test_uvicorns_access_line_with_its_raw_path_is_not_written(log_output):
    # config.middleware writes one line per request; uvicorn's would carry the raw path.
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST",
                                             "/messaging/webhooks/cm/1/secret-path/", "1.1", 200)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1, extra={"color_message": "x"})

    lines = _lines(log_output.readouterr())
    assert [line["logger"] for line in lines] == ["uvicorn.error"] and "color_message" not in lines[0]


def test_a_task_binds_the_campaign_or_delivery_it_was_given():
    assert _argument_ids(dispatch_campaign, (5,), {}) == {"campaign_id": 5}
    assert _argument_ids(start_recurring_run, (), {"parent_id": 9}) == {"campaign_id": 9}
    assert _argument_ids(send_message, (11,), {}) == {"delivery_id": 11}
    assert _argument_ids(deliver_webhook, (12,), {}) == {}  # an outbound webhook delivery, not a message


def test_the_console_format_is_one_readable_line_with_the_ids_and_masked_numbers():
    formatter = ConsoleFormatter(salt="s")
    record = logging.LogRecord("messaging.inbox", logging.WARNING, __file__, 1, "reply from %s", ("+819012345678",), None)
    with bound(request_id="r-1", campaign_id=3):
        line = formatter.format(record)
    assert "\n" not in line and "WARNING" in line and "messaging.inbox" in line
    assert "request_id=r-1" in line and "campaign_id=3" in line
    assert "9012345678" not in line and re.search(r"reply from tel:[0-9a-f]{8}", line)
