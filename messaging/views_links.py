"""The short-link redirect: ``/s/<token>``, the per-recipient link in an SMS text.

Kept to a signature check, one primary-key lookup and (for a GET) one insert, so it answers in a few
milliseconds; no session, no login. A HEAD request or a link-preview robot is redirected without
counting a click, since messaging apps fetch links to draw previews before anyone taps them.
"""

from django.http import Http404, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from messaging import links

# User agents of link-preview fetchers (iMessage and other messaging apps present themselves so).
_PREVIEW_AGENTS = ("facebookexternalhit", "twitterbot", "slackbot", "whatsapp", "bot/", "preview")


def _is_preview(request) -> bool:
    agent = request.headers.get("User-Agent", "").lower()
    return any(marker in agent for marker in _PREVIEW_AGENTS)


@require_safe
@never_cache
def short_link(request, token):
    click = links.short_link_target(token)
    if click is None:
        raise Http404
    if request.method == "GET" and not _is_preview(request):
        links.short_link_click_record(click)
    response = HttpResponseRedirect(click.url)
    response["Referrer-Policy"] = "no-referrer"
    return response
