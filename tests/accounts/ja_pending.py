"""Japanese-message assertions for msgids whose translations are still pending.

The msgids these tests check in Japanese, with their Japanese text, are listed in
locale/pending/foundation-tests.json until the lead merges them into locale/ja/LC_MESSAGES. Until
then the Japanese assertions are skipped; switch them on by setting ``JA_TRANSLATIONS_READY`` to
True here (or JA_TRANSLATIONS_READY=1 in the environment). Messages Django itself already translates
("This field is required.", "Enter a valid URL.") are asserted in Japanese unconditionally.
"""

import json
from pathlib import Path

import pytest
from django.utils import translation

JA_TRANSLATIONS_READY = True  # merged into locale/ja (see locale/pending/foundation-tests.json)

PENDING_FILE = Path(__file__).resolve().parents[2] / "locale" / "pending" / "foundation-tests.json"


def pending_msgids() -> dict[str, str]:
    with PENDING_FILE.open(encoding="utf-8") as handle:
        return json.load(handle)


def assert_japanese(produce, msgid: str, expected_word: str) -> None:
    """``produce()`` returns a message; in Japanese it must differ from English and hold ``expected_word``.

    ``msgid`` must be listed in the pending file (so the lead knows what to translate).
    """
    pending = pending_msgids()
    assert msgid in pending, f"add {msgid!r} to {PENDING_FILE}"
    assert expected_word in pending[msgid], "the expected word must appear in the pending translation"
    if not JA_TRANSLATIONS_READY:
        pytest.skip("Japanese translations pending (locale/pending/foundation-tests.json)")
    with translation.override("en"):
        english = str(produce())
    with translation.override("ja"):
        japanese = str(produce())
    assert japanese != english
    assert expected_word in japanese, japanese
