"""The signed-in member's own sessions: where they are signed in, and ending the others."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.decorators import signed_in_required
from accounts.sessions import member_session_end, member_sessions_active, member_sessions_end_others


@signed_in_required
def sessions(request):
    current = request.session.session_key
    records = member_sessions_active(request.user)
    return render(request, "accounts/sessions.html", {
        "records": records,
        "current_key": current,
        "others": [record for record in records if record.session_key != current],
    })


@signed_in_required
@require_POST
def sessions_end_others(request):
    ended = member_sessions_end_others(request.user, request.session.session_key, request=request)
    messages.success(request, ngettext("Signed out of %(count)d other session.", "Signed out of %(count)d other sessions.",
                                       ended) % {"count": ended})
    return redirect("accounts:sessions")


@signed_in_required
@require_POST
def session_end(request, pk):
    if not member_session_end(request.user, pk, request=request):
        raise Http404
    messages.success(request, _("That session was signed out."))
    return redirect("accounts:sessions")
