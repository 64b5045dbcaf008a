"""Structured logs: one JSON object per line, the ids of the work in hand, phone numbers hashed.

Every logger (ours, Django's, Celery's, uvicorn's) goes through one handler on the root logger whose
formatter is ``JsonFormatter`` (``LOG_FORMAT=json``, the default) or ``ConsoleFormatter``
(``LOG_FORMAT=console``, one readable line for development). Both write the *log context* — the
request id, the organization, campaign and delivery ids bound with ``bind``/``bound`` for the work
in hand — and the ``extra`` fields of the call, and both pass their finished line through
``mask_phones``: anything that looks like a phone number (``+81…``, ``090-1234-5678``, CM's
``0081…``, any E.164 form, full-width digits too) becomes ``tel:`` and a short salted hash, the
same for every spelling of one number, so an operator can follow one person through the logs
without the logs holding the number. Message bodies have no pattern to catch: code never logs them.

The context lives in a ``contextvars.ContextVar``: a request binds its ids in
``config.middleware.RequestLogContextMiddleware``, Celery carries them in a task header
(``config/celery.py``), and a task binds them again before it runs.
"""

import contextvars
import hashlib
import hmac
import json
import logging
import re
import unicodedata
from contextlib import contextmanager
from datetime import UTC, datetime

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("log_context", default={})  # noqa: B039

# The ids a log line may carry, in the order they are written.
CONTEXT_KEYS = ("request_id", "organization_id", "campaign_id", "delivery_id", "task", "task_id")

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # a sane incoming X-Request-ID


def log_context() -> dict:
    """The ids bound for the work in hand (a copy)."""
    return dict(_context.get())


def bind(**ids) -> contextvars.Token:
    """Add ``ids`` (None values are left out) to the log context; undo with ``unbind(token)``."""
    return _context.set({**_context.get(), **{key: value for key, value in ids.items() if value is not None}})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**ids):
    """The log context with ``ids`` added, for the duration of the block."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


def replace_context(ids: dict) -> contextvars.Token:
    """Start a fresh log context holding only ``ids`` (a Celery task, a new request)."""
    return _context.set({key: value for key, value in ids.items() if value is not None})


# --- masking ---------------------------------------------------------------------------------------

_D = "[0-9０-９]"
_SEP = "[ \\-－‐−]"
_PHONE = re.compile(
    rf"""(?<![0-9A-Za-z０-９+＋\-])(?:
        [+＋]{_D}(?:{_SEP}?{_D}){{7,14}}            # E.164 in any spacing: +81 90-1234-5678
      | [0０][0０][1-9１-９]{_D}{{8,13}}              # CM's international form: 0081901234567
      | [0０][6-9６-９][0０]{_SEP}?{_D}{{4}}{_SEP}?{_D}{{4}}  # a Japanese mobile: 090-1234-5678
    )(?![0-9A-Za-z０-９])""",
    re.VERBOSE,
)


def _canonical(number: str) -> str:
    """The digits of one E.164 number, whatever the spelling (so one person hashes one way)."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", number))
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        return "81" + digits[1:]
    return digits


def mask_phones(text: str, salt: bytes = b"") -> str:
    """``text`` with every phone-number-like run replaced by ``tel:`` and 8 hex digits of a salted
    HMAC of the number, the same for every spelling of one number."""
    return _PHONE.sub(
        lambda match: "tel:" + hmac.new(salt, _canonical(match.group()).encode(), hashlib.sha256).hexdigest()[:8],
        text,
    )


# --- formatters ------------------------------------------------------------------------------------

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
# Also left out: uvicorn's coloured copy of the message, and the request object Django's request
# logger attaches (its repr is the raw path, which may hold a secret).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "color_message", "request",
}


def _fields(record: logging.LogRecord) -> dict:
    fields = {key: value for key, value in _context.get().items()}
    fields.update((key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES)
    return fields


class _MaskingFormatter(logging.Formatter):
    def __init__(self, *args, salt: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.salt = salt.encode()

    def format(self, record: logging.LogRecord) -> str:
        return mask_phones(self.render(record), self.salt)

    def render(self, record: logging.LogRecord) -> str:
        raise NotImplementedError


class JsonFormatter(_MaskingFormatter):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, event, the log context,
    the call's extra fields, and the formatted exception if any."""

    def render(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(_MaskingFormatter):
    """One readable line: time, level, logger, event, then key=value for the context and extras."""

    def render(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        pairs = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}" + (f"  [{pairs}]" if pairs else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line
