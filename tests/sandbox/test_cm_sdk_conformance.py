"""Conformance: CM.com's own Node client (@cmdotcom/text-sdk, installed by the test command) sends
through the sandbox as it would through the real gateway. The client writes `productToken` and
other camelCase names; the real gateway matches names without regard to case, and so must the
sandbox: rich content, suggestions, allowedChannels, reference and the SMS fallback."""

import json
import subprocess
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).parent / "cm_sdk"
TOKEN = "0f1e2d3c-sdk-conformance"
ANDROID, IPHONE = "+819011112222", "+819033334444"


def sdk_send(sandbox, messages: list[dict]) -> list[dict]:
    assert (SDK_DIR / "node_modules" / "@cmdotcom" / "text-sdk").is_dir(), "`make install-test` installs it (npm ci)"
    spec = {"base_url": sandbox.url, "product_token": TOKEN, "messages": messages}
    done = subprocess.run(
        ["node", "send.js", json.dumps(spec)], cwd=SDK_DIR, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture
def cm(sandbox):
    sandbox.register_cm(product_token=TOKEN, callback_secret="sdk-secret", webhook_url="")
    sandbox.profile(ANDROID, "android_plus_message")
    sandbox.profile(IPHONE, "iphone_no_app")
    return sandbox


RICH = {
    "from": "TESTSHOP",
    "text": "【テスト商店】冬のセールのご案内です。配信停止は「停止」と返信",
    "allowedChannels": ["RCS", "SMS"],
    "conversation": [
        {"text": "冬のセールが始まりました"},
        {"media": {"mediaName": "sale.jpg", "mediaUri": "https://cdn.example.jp/sale.jpg", "mimeType": "image/jpeg"}},
    ],
    "suggestions": [
        {"action": "openUrl", "label": "セール会場へ", "url": "https://example.jp/sale"},
        {"action": "reply", "label": "停止", "postbackdata": "STOP"},
    ],
}


def test_cm_sdk_rich_message_reaches_a_capable_android_over_rcs_with_its_reference(cm):
    answers = sdk_send(cm, [{**RICH, "to": ["0081" + ANDROID[3:]], "reference": "sdk-rich-1"}])
    assert answers[0]["status"] == 200, answers
    detail = answers[0]["body"]["messages"][0]
    assert detail["status"] == "Accepted" and detail["reference"] == "sdk-rich-1", detail

    def received():
        return cm.inbox(ANDROID)

    inbox = cm.wait_for(received)
    assert [(m["message_id"], m["channel"], m["count"]) for m in inbox] == [("sdk-rich-1", "rcs", 1)]
    content = inbox[0]["content"]
    assert content["conversation"][1]["media"]["mediaUri"] == "https://cdn.example.jp/sale.jpg"
    assert [s["label"] for s in content["suggestions"]] == ["セール会場へ", "停止"]


def test_cm_sdk_same_request_falls_back_to_sms_for_an_iphone_without_the_app(cm):
    answers = sdk_send(cm, [{**RICH, "to": ["0081" + IPHONE[3:]], "reference": "sdk-rich-2"}])
    assert answers[0]["body"]["messages"][0]["status"] == "Accepted", answers
    inbox = cm.wait_for(lambda: cm.inbox(IPHONE))
    assert [(m["message_id"], m["channel"]) for m in inbox] == [("sdk-rich-2", "sms")]
    assert inbox[0]["text"] == RICH["text"]


def test_cm_sdk_resent_reference_reaches_the_handset_once(cm):
    message = {"from": "TESTSHOP", "text": "ご予約を承りました", "to": ["0081" + IPHONE[3:]], "reference": "sdk-once"}
    sdk_send(cm, [message, message])
    inbox = cm.wait_for(lambda: cm.inbox(IPHONE))
    assert [(m["message_id"], m["count"]) for m in inbox] == [("sdk-once", 1)]


def test_cm_sdk_wrong_product_token_is_refused_with_cm_error_101(sandbox):
    answers = sdk_send(sandbox, [{"from": "TESTSHOP", "text": "x", "to": ["0081" + IPHONE[3:]]}])
    assert answers[0]["status"] == 401
    assert answers[0]["body"]["errorCode"] == 101
