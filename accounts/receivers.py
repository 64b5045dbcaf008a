"""Sign-in and sign-out signals → the member's session records (accounts.sessions). Connected once,
in ``AccountsConfig.ready()``."""

from django.contrib.auth.signals import user_logged_in, user_logged_out

from accounts.sessions import member_session_forget, member_session_record


def _logged_in(sender, request, user, **kwargs):
    if request is not None:
        member_session_record(request, user)


def _logged_out(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None:
        member_session_forget(session.session_key)


def connect() -> None:
    user_logged_in.connect(_logged_in, dispatch_uid="accounts_session_logged_in")
    user_logged_out.connect(_logged_out, dispatch_uid="accounts_session_logged_out")
