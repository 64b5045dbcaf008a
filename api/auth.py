"""API authentication, scopes and per-key throttling for /api/v1/, and the base every API view uses.

- **Keys**: ``Authorization: Bearer pm_…``. Only the SHA-256 of the secret is stored
  (``ApiKey.key_hash``); a revoked or unknown key answers 401, and so does a key whose creator has
  left the organization or was deactivated (``key_creator_inactive``), checked in the key's own
  query on every request, so it takes effect at once in every process. ``last_used_at`` is written at most once
  a minute per key (a conditional UPDATE), not on every request.
- **Scopes**: ``send`` (messages, inbound), ``contacts`` (contacts, lists, memberships, consent),
  ``campaigns`` (campaigns and their actions, stats). ``read_only`` grants every GET and nothing else.
  A view names its scope in ``required_scope``; safe methods also pass with ``read_only``.
- **Role of a key**: a key acts with the role its creator holds in the organization *now* (see
  ``key_role``), and never beyond its scopes. Approving a campaign needs the ``campaigns`` scope and a
  creator who may approve (owner or admin), and the organization's second-approver rule applies to
  the creator as to any member.
- **Throttling**: a fixed one-second (or minute…) window per key, counted in Redis when REDIS_URL
  is set, so every web process on every machine shares one budget per key (in-process only on the
  embedded default). No key is cached in a process: the key lookup above is one indexed query. Over the limit: 429 with Retry-After.
- **Language**: English unless the request's Accept-Language prefers Japanese.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation.trans_real import parse_accept_lang_header
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from accounts.models import ApiKey, ApiScope
from accounts.tenancy import ROLE_PERMISSIONS, user_role
from api.idempotency import IdempotentReplay, idempotency_begin, idempotency_finish
from core import throttle
from core.logs import bind

LAST_USED_RESOLUTION = timedelta(seconds=60)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiKeyPrincipal:
    """``request.user`` for an API call: the key, with what DRF and our views ask of a user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.pk = None
        self.id = None
        self.organization = key.organization

    def __str__(self):
        return f"api-key:{self.key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1", "replace")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(_("Send the API key as “Authorization: Bearer <key>”."))
        secret = parts[1]
        key = (
            ApiKey.objects.with_creator_membership()
            .filter(key_hash=ApiKey.hash_secret(secret), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key."))
        # Checked on every request in the same query, not cached: a creator removed or deactivated in
        # one process stops the key in every process at once.
        if not key.creator_is_active_member:
            raise exceptions.AuthenticationFailed(
                _("This API key no longer works: the member who created it has left the organization or "
                  "was deactivated. Ask an admin to create a new key."),
                code="key_creator_inactive",
            )
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            # Skip the row when a concurrent request is writing it: that request's transaction (its
            # whole send) holds the row lock, and waiting for it stalled every request of the key.
            stale = (
                ApiKey.objects.filter(pk=key.pk)
                .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION))
                .select_for_update(skip_locked=True)
            )
            with transaction.atomic(savepoint=False):
                ApiKey.objects.filter(pk__in=stale.values("pk")).update(last_used_at=now)
            key.last_used_at = now
        # The rest of the request logs with the key's organization (config.middleware ends it).
        bind(organization_id=key.organization_id)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def key_role(key: ApiKey) -> str | None:
    """The role a key acts with: its creator's current role in the key's organization."""
    if key.created_by_id is None:
        return None
    if key.created_by.is_superuser:
        return "owner"
    return user_role(key.created_by, key.organization_id)


def key_may(key: ApiKey, permission: str) -> bool:
    role = key_role(key)
    return bool(role) and permission in ROLE_PERMISSIONS.get(role, set())


def role_required(view, any_of: set[str]) -> None:
    """The key's creator must (still) hold a role granting one of the permissions ``any_of`` (see ``key_role``)."""
    key = view.api_key
    if not any(key_may(key, permission) for permission in any_of):
        raise exceptions.PermissionDenied(
            _("This API key acts with the role of the member who created it, and that role may not do this.")
        )


class HasScope(permissions.BasePermission):
    """The key holds the view's ``required_scope`` (or ``read_only`` for a safe method)."""

    message = gettext_lazy("This API key does not have the scope this operation needs.")
    code = "scope_missing"

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        scopes = set(key.scopes or [])
        needed = getattr(view, "required_scope", None)
        if request.method in SAFE_METHODS and ApiScope.READ_ONLY in scopes:
            return True
        if needed and needed in scopes:
            return True
        self.message = _("This API key needs the “%(scope)s” scope for this operation.") % {
            "scope": needed or ApiScope.READ_ONLY
        }
        return False


# --- throttling ---------------------------------------------------------------------------------

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """Fixed windows per API key, shared by every web process through Redis."""

    scope = "api_key"

    def __init__(self):
        rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {}) or {}
        self.limit, self.period = parse_rate(rates.get(self.scope) or "50/second")
        self._wait = 0.0

    def allow_request(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        now = time.time()
        window = int(now // self.period)
        name = f"api-throttle:{key.pk}:{self.period}:{window}"
        count = _increment(name, self.period)
        if count <= self.limit:
            return True
        self._wait = max((window + 1) * self.period - now, 0.001)
        return False

    def wait(self):
        return math.ceil(self._wait) if self._wait else 1


def _increment(name: str, period: int) -> int:
    return throttle.window_count(name, period)


# --- the base of every API view -----------------------------------------------------------------


MAX_ID = 2**63 - 1


def reject_nul(value, field: str = ""):
    """PostgreSQL cannot store NUL characters in text or JSON: refuse them as bad input (400)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise exceptions.ValidationError(_("Text may not contain NUL characters."), code="null_characters_not_allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul(item)
    return value


def api_language(request) -> str:
    """English by default; Japanese when the client's Accept-Language prefers it."""
    for code, _q in parse_accept_lang_header(request.META.get("HTTP_ACCEPT_LANGUAGE", "")):
        code = code.lower()
        if code.startswith("ja"):
            return "ja"
        if code.startswith("en") or code == "*":
            return "en"
    return "en"


class ApiViewMixin:
    """Authentication, scopes, throttling, language and Idempotency-Key for every API view."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    lookup_value_regex = "[0-9]{1,18}"
    required_scope: str | None = None

    def dispatch(self, request, *args, **kwargs):
        # Writes run in one transaction, the Idempotency-Key record included: one commit (one WAL
        # flush) per request, and a concurrent repeat of the same key waits for it, then replays it.
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            with transaction.atomic():
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        translation.activate(api_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        super().initial(request, *args, **kwargs)
        idempotency_begin(self, request)

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        idempotency_finish(self, request, response)
        response["Content-Language"] = translation.get_language() or "en"
        return response

    @property
    def organization(self):
        key = getattr(self.request, "auth", None)
        return key.organization if isinstance(key, ApiKey) else None  # None only while drawing the schema

    @property
    def api_key(self) -> ApiKey | None:
        key = getattr(self.request, "auth", None)
        return key if isinstance(key, ApiKey) else None
