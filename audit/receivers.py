"""Sign-ins, sign-outs, failures and lock-outs into the audit log, from the django.contrib.auth and
django-axes signals. Connected once, in ``AuditConfig.ready()``."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from audit.services import audit_record


def _logged_in(sender, request, user, **kwargs):
    audit_record("auth.login", request=request, actor=user, organization=None)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record("auth.logout", request=request, actor=user, organization=None)


def _login_failed(sender, credentials, request=None, **kwargs):
    username = str((credentials or {}).get("username", ""))[:150]
    audit_record("auth.login_failed", request=request, actor_label=username, organization=None,
                 details={"username": username})


def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    audit_record("auth.locked_out", request=request, actor_label=str(username or "")[:150], organization=None,
                 details={"username": str(username or ""), "ip_address": ip_address or ""})


def connect() -> None:
    user_logged_in.connect(_logged_in, dispatch_uid="audit_user_logged_in")
    user_logged_out.connect(_logged_out, dispatch_uid="audit_user_logged_out")
    user_login_failed.connect(_login_failed, dispatch_uid="audit_user_login_failed")
    user_locked_out.connect(_locked_out, dispatch_uid="audit_user_locked_out")
