"""Every request's log context: a request id (the caller's ``X-Request-ID`` when it is a sane token,
otherwise a new one), returned in the response's ``X-Request-ID`` header, and one access line
naming the view and its URL pattern (never the path, which may hold a secret).

The organization id joins the context where the member's organization is known
(``accounts.decorators.member_required``, ``api.auth``); see ``core.logs``.
"""

import logging
import time
import uuid

from core.logs import REQUEST_ID, replace_context, unbind

logger = logging.getLogger("http.request")

HEADER = "X-Request-ID"


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a sane token (letters, digits, ``._:-``, up to 128
    characters), otherwise a new one: a header is never written to the logs as it came."""
    if value and REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestLogContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from(request.headers.get(HEADER))
        token = replace_context({"request_id": request.request_id})
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[HEADER] = request.request_id
            # The URL pattern, never the path: paths hold secrets (CM callback URLs, signed opt-out
            # and tracked links, password-reset tokens) and whatever a caller typed.
            match = getattr(request, "resolver_match", None)
            view = match.view_name if match else "(no route)"
            fields = {
                "method": request.method,
                "view": view,
                "route": "/" + match.route if match else None,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }
            organization = getattr(request, "organization", None)  # set by member_required
            if organization is not None:
                fields["organization_id"] = organization.pk
            logger.info("%s %s %s", request.method, view, response.status_code, extra=fields)
            return response
        finally:
            unbind(token)
