"""Changing and resetting a password: Django's views, with what the product adds around them.

- Changing the password keeps this session and ends every other one (accounts.sessions).
- A reset request is rate-limited per client address and per e-mail address
  (``PASSWORD_RESET_LIMIT_PER_IP`` / ``PASSWORD_RESET_LIMIT_PER_ADDRESS`` an hour, counted whether
  or not the address has an account), and answers the same whether or not it has one (Django's
  flow: the "sent" page either way).
- Setting a new password through the e-mailed link ends every session of the account.
Passwords pass Django's validators (AUTH_PASSWORD_VALIDATORS), common passwords included.
"""

import hashlib
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.utils.translation import gettext as _

from accounts.decorators import two_factor_gate
from accounts.sessions import member_session_rekey, member_sessions_end_others, user_sessions_end_all
from audit.services import audit_record, client_ip
from core import throttle

WINDOW_SECONDS = 3600


class PasswordChangeView(auth_views.PasswordChangeView):
    def dispatch(self, request, *args, **kwargs):
        # A session that skipped the second step may not change the password either.
        if request.user.is_authenticated and (refusal := two_factor_gate(request)) is not None:
            return refusal
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        before = self.request.session.session_key
        response = super().form_valid(form)  # keeps this session signed in, under a new key (cycle_key)
        user = form.user
        member_session_rekey(before, self.request.session.session_key)
        ended = member_sessions_end_others(user, self.request.session.session_key, request=self.request,
                                           reason="password_changed")
        audit_record("password.changed", request=self.request, actor=user, organization=None, target=user,
                     target_label=user.get_username(), details={"other_sessions_ended": ended})
        return response


def _over_limit(request, email: str) -> bool:
    """Count this request against the client's address and the e-mail address; True past either limit."""
    window = int(time.time() // WINDOW_SECONDS)
    address = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    by_ip = throttle.window_count(f"pm:password-reset:ip:{client_ip(request) or '-'}:{window}", WINDOW_SECONDS)
    by_address = throttle.window_count(f"pm:password-reset:address:{address}:{window}", WINDOW_SECONDS)
    return by_ip > settings.PASSWORD_RESET_LIMIT_PER_IP or by_address > settings.PASSWORD_RESET_LIMIT_PER_ADDRESS


class PasswordResetView(auth_views.PasswordResetView):
    extra_context = {"hide_shell": True}
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        if _over_limit(self.request, form.cleaned_data["email"]):
            audit_record("password.reset_refused", request=self.request, organization=None,
                         details={"reason": "rate_limited"})
            form.add_error(None, _("Too many password reset requests. Wait an hour and try again."))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        # Recorded without the address or whether it has an account: the log must not answer that either.
        audit_record("password.reset_requested", request=self.request, organization=None)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    extra_context = {"hide_shell": True}
    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        ended = user_sessions_end_all(user, reason="password_reset")
        audit_record("password.reset", request=self.request, actor=user, organization=None, target=user,
                     target_label=user.get_username(), details={"sessions_ended": ended})
        return response
