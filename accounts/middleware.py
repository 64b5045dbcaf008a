"""Keeps each signed-in session's *last activity* (accounts.sessions) fresh, cheaply."""

import time

from accounts.sessions import TOUCH_EVERY, member_session_touch

_SKIP_FOR = TOUCH_EVERY.total_seconds()


class MemberSessionMiddleware:
    """After an authenticated request, note the session's activity: a conditional UPDATE that writes
    at most once a minute, and that this process skips entirely for a minute after it ran."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._touched: dict[str, float] = {}

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated and session is not None and session.session_key:
            now = time.monotonic()
            key = session.session_key
            if now - self._touched.get(key, -_SKIP_FOR) >= _SKIP_FOR:
                if len(self._touched) > 10_000:
                    self._touched.clear()
                self._touched[key] = now
                member_session_touch(request)
        return response
