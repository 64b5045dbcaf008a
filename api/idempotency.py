"""Idempotency-Key on every POST of the API.

The first request with a key is processed and its answer (status, body, Location) stored; a repeat
with the same key and the same request (method, path, raw body) gets that answer again without
acting again (``Idempotent-Replayed: true``); the same key with a different request answers 409
``idempotency_key_reused``; a repeat that arrives while the first is still being processed answers
409 ``idempotency_key_in_progress``. Keys are scoped to the API key and kept at least
``API_IDEMPOTENCY_TTL_SECONDS`` (24 h). Answers 5xx and 429 are not kept, so the client may retry.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response

from accounts.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255
# A first request that has not finished after this long is taken to have died; a repeat may take over.
IN_PROGRESS_STALE = timedelta(seconds=60)
KEPT_HEADERS = ("Location",)


def idempotency_ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600))


class IdempotentReplay(Exception):
    def __init__(self, response: Response):
        super().__init__("replay")
        self.response = response


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_reused"


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\n")
    digest.update(request.path.encode())
    digest.update(b"\n")
    digest.update(request._request.body or b"")
    return digest.hexdigest()


def _conflict(code: str, message: str):
    error = IdempotencyConflict({"code": code, "message": message, "field": "Idempotency-Key"})
    return error


def _insert(api_key_id: int, value: str, fingerprint: str, now) -> int | None:
    """One statement: the new record's id, or None if (API key, key) exists already."""
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (api_key_id, key, request_hash, response_headers, created_at) "
            f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id",
            [api_key_id, value, fingerprint, "{}", connection.ops.adapt_datetimefield_value(now)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_begin(view, request) -> None:
    if request.method != "POST":
        return
    value = request.META.get(HEADER)
    if value is None:
        return
    value = value.strip()
    if not value or len(value) > MAX_KEY_LENGTH:
        raise exceptions.ValidationError(
            {"Idempotency-Key": [_("An Idempotency-Key has 1 to 255 characters.")]}, code="invalid"
        )
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    key = request.auth
    for _attempt in range(3):
        record_id = _insert(key.pk, value, fingerprint, now)
        if record_id is not None:  # the first request with this key: process it
            request._idempotency_record = IdempotencyRecord(pk=record_id, api_key=key, key=value, created_at=now)
            if random.random() < 0.002:
                IdempotencyRecord.objects.filter(created_at__lt=now - 2 * idempotency_ttl()).delete()
            return
        record = IdempotencyRecord.objects.filter(api_key=key, key=value).first()
        if record is None:  # deleted meanwhile (expired): try again
            continue
        if record.created_at < now - idempotency_ttl():
            # Expired: forget it and treat this request as a first one.
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.request_hash != fingerprint:
            raise _conflict(
                "idempotency_key_reused",
                _("This Idempotency-Key was already used with a different request. Use a new key for a new request."),
            )
        if record.status_code is None:
            if record.created_at < now - IN_PROGRESS_STALE:
                taken = IdempotencyRecord.objects.filter(
                    pk=record.pk, status_code__isnull=True, created_at=record.created_at
                ).update(created_at=now)
                if taken:
                    record.created_at = now
                    request._idempotency_record = record
                    return
            raise _conflict(
                "idempotency_key_in_progress",
                _("A request with this Idempotency-Key is still being processed. Retry in a moment."),
            )
        headers = {name: v for name, v in (record.response_headers or {}).items() if name in KEPT_HEADERS}
        headers["Idempotent-Replayed"] = "true"
        raise IdempotentReplay(Response(record.response_body, status=record.status_code, headers=headers))
    raise _conflict(
        "idempotency_key_in_progress",
        _("A request with this Idempotency-Key is still being processed. Retry in a moment."),
    )


def idempotency_finish(view, request, response) -> None:
    record = getattr(request, "_idempotency_record", None)
    if record is None:
        return
    request._idempotency_record = None
    if connection.in_atomic_block and transaction.get_rollback():
        return  # a database error: everything this request wrote, its record included, is rolled back
    if response.status_code >= 500 or response.status_code == 429:
        IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()
        return
    data = getattr(response, "data", None)
    body = json.loads(json.dumps(data, cls=DjangoJSONEncoder)) if data is not None else None
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=response.status_code, response_body=body, response_headers=headers
    )
