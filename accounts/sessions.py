"""A member's signed-in sessions: recorded at sign-in, listed on the *Sessions* page, ended on request,
when the password changes and when a member is deactivated.

The session data itself stays where ``SESSION_ENGINE`` keeps it (the database by default); we keep a
small ``MemberSession`` row beside it (device, address, last activity), because a session store cannot
be searched by user. Ending a session deletes it from the store by its key, engine-agnostic
(``SessionStore(key).delete()``), and drops its row. With the signed-cookie engine nothing can be
deleted server-side; Django's session auth hash still signs out every other browser when the
password changes.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.utils import timezone

from accounts.models import MemberSession
from audit.services import audit_record, client_ip

logger = logging.getLogger("console.security")

TOUCH_EVERY = timedelta(seconds=60)  # last activity is written at most this often per session


def _store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def member_session_record(request, user) -> MemberSession | None:
    """Record the session ``request`` has just signed ``user`` in with (called on ``user_logged_in``)."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    if session.session_key is None:  # login() flushed the old session; give the new one its key now
        session.save()
    now = timezone.now()
    record, _created = MemberSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "user_agent": (request.META.get("HTTP_USER_AGENT") or "")[:300],
            "ip_address": client_ip(request),
            "created_at": now,
            "last_activity_at": now,
        },
    )
    return record


def member_session_touch(request) -> None:
    """Note the member's activity on this session: one conditional UPDATE, a write at most once a minute."""
    key = request.session.session_key
    if not key:
        return
    now = timezone.now()
    MemberSession.objects.filter(session_key=key, last_activity_at__lt=now - TOUCH_EVERY).update(
        last_activity_at=now, ip_address=client_ip(request)
    )


def member_session_rekey(old_key: str | None, new_key: str | None) -> None:
    """Keep a session's row when Django gives the session a new key (``cycle_key``, e.g. after a
    password change), so it still shows as this browser."""
    if old_key and new_key and old_key != new_key:
        MemberSession.objects.filter(session_key=old_key).update(session_key=new_key)


def member_session_forget(session_key: str | None) -> None:
    """Drop the row of a session that ended by itself (sign-out)."""
    if session_key:
        MemberSession.objects.filter(session_key=session_key).delete()


def member_sessions_active(user):
    """The user's sessions still alive, most recent first. Rows whose session expired or vanished from
    the store are deleted on the way (one ``exists`` per row: a member has a handful)."""
    cutoff = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    MemberSession.objects.filter(user=user, last_activity_at__lt=cutoff).delete()
    alive = []
    for record in MemberSession.objects.filter(user=user).order_by("-last_activity_at"):
        if _store().exists(record.session_key):
            alive.append(record)
        else:
            record.delete()
    return alive


def _end(records) -> int:
    ended = 0
    for record in records:
        _store(record.session_key).delete()
        record.delete()
        ended += 1
    return ended


def member_sessions_end_others(user, current_key: str | None, *, request=None, reason: str = "requested") -> int:
    """End every session of ``user`` but ``current_key``; returns how many. Audited when any ended."""
    ended = _end(MemberSession.objects.filter(user=user).exclude(session_key=current_key or ""))
    if ended:
        audit_record("session.ended", request=request, actor=user, organization=None, target=user,
                     target_label=user.get_username(), details={"sessions": ended, "reason": reason})
    logger.info("sessions ended: user=%s count=%s reason=%s", user.pk, ended, reason)
    return ended


def member_session_end(user, record_id: int, *, request=None) -> bool:
    """End one of the user's own sessions (not another user's: the lookup is by both)."""
    ended = _end(MemberSession.objects.filter(user=user, pk=record_id))
    if ended:
        audit_record("session.ended", request=request, actor=user, organization=None, target=user,
                     target_label=user.get_username(), details={"sessions": ended, "reason": "requested"})
    return bool(ended)


def user_sessions_end_all(user, *, reason: str) -> int:
    """End every recorded session of ``user`` (deactivation; the caller records the audit event)."""
    ended = _end(MemberSession.objects.filter(user=user))
    logger.info("sessions ended: user=%s count=%s reason=%s", user.pk, ended, reason)
    return ended
