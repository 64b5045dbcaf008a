"""Display rules and quiet hours for promotional campaigns (特定電子メール法 and Japanese practice).

``display_rule_problems`` says what a promotional campaign still lacks: the sender's formal (legal)
name and a way to opt out, in the +Message content *and* in the SMS fallback text. The composer
shows the list while the marketer types; launch refuses a campaign while the list is not empty. The
same rule, ``message_display_problems`` (official account, content, SMS text), refuses a promotional
single message (``messaging.services.message_send``: the API and every other single-message path).

``quiet_hours_notice`` says whether a promotion would go out during the organization's quiet hours
(default 21:00–09:00 Asia/Tokyo). The composer only warns; ``quiet_hours_hold`` is the one decision
every sending path asks — starting a run, each claim of a campaign's batch (retries and SMS
fallback legs included) and each single message — and the engine holds the send until it says so.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Classification
from core.quiet_hours import in_quiet_hours, quiet_hours_end, time_in_window
from core.rich_content import iter_texts

TOKYO = ZoneInfo("Asia/Tokyo")

# The placeholder the engine replaces with the recipient's signed opt-out link.
OPT_OUT_PLACEHOLDER = "{{opt_out_url}}"

# Words that tell the reader how to stop the messages (reply keywords and the usual phrases).
OPT_OUT_WORDS = ("配信停止", "停止", "ストップ", "解除", "stop", "unsubscribe", "opt out", "opt-out", "optout")

_PLACEHOLDER_RE = re.compile(r"\{\{\s*opt_out_url\s*\}\}")


def _fold(text: str) -> str:
    """Full-width to half-width, lower case: 「ＳＴＯＰ」 and “Stop” both read as “stop”."""
    return unicodedata.normalize("NFKC", text or "").lower()


def _names_sender(text: str, legal_name: str) -> bool:
    if not legal_name:
        return False
    return _fold(legal_name).replace(" ", "") in _fold(text).replace(" ", "")


def _says_how_to_opt_out(text: str) -> bool:
    folded = _fold(text)
    return bool(_PLACEHOLDER_RE.search(text or "")) or any(word in folded for word in OPT_OUT_WORDS)


def _has_opt_out_chip(document: dict) -> bool:
    suggestions = list(document.get("chips") or [])
    cards = []
    if isinstance(document.get("card"), dict):
        cards.append(document["card"])
    if isinstance(document.get("carousel"), dict):
        cards.extend(c for c in document["carousel"].get("cards") or [] if isinstance(c, dict))
    for card in cards:
        suggestions.extend(card.get("buttons") or [])
    for item in suggestions:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "reply" and _says_how_to_opt_out(f"{item.get('postback', '')} {item.get('label', '')}"):
            return True
        if item.get("type") == "open_url" and _PLACEHOLDER_RE.search(item.get("url") or ""):
            return True
    return False


def _content_text(document) -> str:
    if not isinstance(document, dict):
        return ""
    try:
        return "\n".join(t for t in iter_texts(document) if isinstance(t, str))
    except (AttributeError, TypeError):
        return ""


def display_rule_problems(campaign) -> list[str]:
    """What a promotional campaign must still say, in plain words; empty when it complies.

    Transactional campaigns are exempt. The rule itself is ``message_display_problems``, which the
    single-message service applies to a promotion sent on its own."""
    if campaign.classification != Classification.PROMOTION:
        return []
    account = getattr(campaign, "official_account", None) if campaign.official_account_id else None
    return [problem for _part, problem in message_display_problems(account, campaign.content, campaign.sms_text)]


def message_display_problems(account, content, sms_text) -> list[tuple[str, str]]:
    """What a promotional message from ``account`` with this +Message ``content`` and SMS fallback
    ``sms_text`` must still say: ``(part, problem)`` pairs, part being ``official_account``,
    ``content`` or ``sms_text``; empty when it complies.

    The sender's formal name is ``account.legal_name``; an opt-out is a reply keyword (配信停止, 停止,
    STOP …), the opt-out link placeholder ``{{opt_out_url}}``, or (in the +Message content) an
    opt-out reply chip. One rule for campaigns and single messages alike.
    """
    problems = []
    legal_name = account.legal_name if account else ""
    document = content if isinstance(content, dict) else {}
    rich_text = _content_text(document)
    sms_text = sms_text or ""
    if not account:
        problems.append(
            ("official_account", _("Choose the official account: its formal name must appear in the message."))
        )
    else:
        if not _names_sender(rich_text, legal_name):
            problems.append(
                ("content", _("The +Message content must name the sender’s formal name “%(name)s”.") % {"name": legal_name})
            )
        if not _names_sender(sms_text, legal_name):
            problems.append(
                ("sms_text", _("The SMS text must name the sender’s formal name “%(name)s”.") % {"name": legal_name})
            )
    if not (_says_how_to_opt_out(rich_text) or _has_opt_out_chip(document)):
        problems.append((
            "content",
            _("The +Message content must say how to opt out (e.g. “配信停止は「停止」と返信” or the link %(link)s).")
            % {"link": OPT_OUT_PLACEHOLDER},
        ))
    if not _says_how_to_opt_out(sms_text):
        problems.append((
            "sms_text",
            _("The SMS text must say how to opt out (e.g. “配信停止は「停止」と返信” or the link %(link)s).")
            % {"link": OPT_OUT_PLACEHOLDER},
        ))
    return problems


def quiet_hours_hold(organization, classification: str, now: datetime | None = None) -> datetime | None:
    """When a message of ``classification`` may go out: None to send now, or the moment the
    organization's quiet hours end. Only promotions wait; transactional messages are exempt."""
    if classification != Classification.PROMOTION:
        return None
    now = now or timezone.now()
    if not in_quiet_hours(organization, now):
        return None
    return quiet_hours_end(organization, now)


def quiet_hours_held_reason(opens: datetime) -> str:
    """What a held campaign says while it waits (its ``status_reason``)."""
    return _("Held for quiet hours until %(time)s (Japan time).") % {
        "time": timezone.localtime(opens, TOKYO).strftime("%H:%M")
    }


def _cron_hours(recurrence: str) -> list[int] | None:
    """The hours a five-field crontab fires at, or None when it cannot be read."""
    fields = (recurrence or "").split()
    if len(fields) != 5:
        return None
    minute_field, hour_field = fields[0], fields[1]
    minute = 0
    if minute_field.isdigit():
        minute = int(minute_field)
    hours: set[int] = set()
    for part in hour_field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                return None
            step = int(step_text)
        if part == "*":
            low, high = 0, 23
        elif "-" in part:
            low_text, high_text = part.split("-", 1)
            if not (low_text.isdigit() and high_text.isdigit()):
                return None
            low, high = int(low_text), int(high_text)
        elif part.isdigit():
            low = high = int(part)
        else:
            return None
        if not (0 <= low <= 23 and 0 <= high <= 23):
            return None
        hours.update(range(low, high + 1, step))
    return sorted(hour * 60 + minute for hour in hours)


def quiet_hours_notice(organization, classification, *, scheduled_at=None, recurrence="", now=None) -> str | None:
    """A warning when a promotion would be sent during quiet hours, or None.

    ``scheduled_at`` None and no recurrence means “send now”.
    """
    if classification != Classification.PROMOTION or organization is None:
        return None
    start, end = organization.quiet_hours_start, organization.quiet_hours_end
    window = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    if recurrence:
        minutes = _cron_hours(recurrence)
        if minutes and any(time_in_window(time(m // 60, m % 60), start, end) for m in minutes):
            return (
                _(
                    "This schedule sends during quiet hours (%(start)s–%(end)s, Japan time). "
                    "Promotions are held until quiet hours end."
                )
                % window
            )
        return None
    moment = scheduled_at or now or timezone.now()
    if in_quiet_hours(organization, moment):
        if scheduled_at:
            message = _(
                "The chosen time is within quiet hours (%(start)s–%(end)s, Japan time). "
                "Promotions are held until quiet hours end."
            )
        else:
            message = _(
                "It is now quiet hours (%(start)s–%(end)s, Japan time). A promotion launched now is held "
                "until quiet hours end."
            )
        return message % window
    return None
