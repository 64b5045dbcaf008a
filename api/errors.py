"""The API's one error shape, and the exception handler that produces it everywhere.

Every error answer of /api/v1/ is ``{"code": ..., "message": ..., "field": ...}``; ``field`` names the
input at fault (dotted for nested input, ``null`` when no single field is), and validation errors
list every problem in ``errors`` (each in the same shape; the first is repeated at the top).
Django's own ValidationError, Http404, PermissionDenied and database integrity errors are mapped to
4xx answers; anything unexpected is logged and answered in the same shape, never as an HTML page.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

NON_FIELD = {"non_field_errors", "__all__", None, ""}


class Conflict(exceptions.APIException):
    """409 in the one shape: raise it with ``conflict(code, message, field)``."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "Conflict."


def conflict(code: str, message: str, field: str | None = None) -> Conflict:
    return Conflict({"code": code, "message": message, "field": field})


def error_body(code: str, message: str, field: str | None = None, errors: list | None = None) -> dict:
    body = {"code": code, "message": str(message), "field": field}
    if errors:
        body["errors"] = errors
    return body


def flatten_validation(detail, prefix: str | None = None) -> list[dict]:
    """DRF's nested error detail (dicts of lists of ErrorDetail) → a flat list of error bodies."""
    found: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in NON_FIELD:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            found.extend(flatten_validation(value, name))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                name = f"{prefix}.{index}" if prefix else str(index)
                found.extend(flatten_validation(value, name))
            else:
                found.extend(flatten_validation(value, prefix))
    else:
        code = getattr(detail, "code", None) or "invalid"
        found.append(error_body(code, str(detail), prefix))
    return found


def django_validation_to_drf(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        detail = {}
        for field, field_errors in error.error_dict.items():
            detail[field] = [
                exceptions.ErrorDetail(" ".join(e.messages), code=e.code or "invalid") for e in field_errors
            ]
    else:
        detail = [exceptions.ErrorDetail(" ".join(e.messages), code=e.code or "invalid") for e in error.error_list]
    return exceptions.ValidationError(detail)


def _rollback_if_broken() -> None:
    """After a database error inside the request's transaction, roll it back (it cannot continue)."""
    if connection.in_atomic_block:
        transaction.set_rollback(True)


def api_exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error in the one shape."""
    if isinstance(exc, DatabaseError | ProtectedError):
        _rollback_if_broken()
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_to_drf(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ProtectedError):
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        return Response(
            error_body("protected", message or _("This object is still referenced by records that must be kept.")),
            status=status.HTTP_409_CONFLICT,
        )
    elif isinstance(exc, DataError):
        logger.info("data error answered 400: %s", exc)
        return Response(error_body("invalid", _("A value is out of range or cannot be stored.")),
                        status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, IntegrityError):
        logger.info("integrity error answered 409: %s", exc)
        return Response(
            error_body("conflict", _("This conflicts with an existing object.")), status=status.HTTP_409_CONFLICT
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        _rollback_if_broken()
        logger.exception("unexpected error in the API", exc_info=exc)
        return Response(
            error_body("server_error", _("Something went wrong on our side. Please try again.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_validation(exc.detail) or [error_body("invalid", _("Invalid input."))]
        first = errors[0]
        response.data = error_body(first["code"], first["message"], first["field"], errors)
        return response
    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.Throttled):
        code = "throttled"
    message = str(detail) if detail is not None and not isinstance(detail, dict | list) else str(exc)
    if isinstance(detail, dict) and {"code", "message"} <= set(detail):
        response.data = error_body(str(detail["code"]), str(detail["message"]), detail.get("field"))
    else:
        response.data = error_body(str(code), message)
    return response


@csrf_exempt
def json_not_found(request, *args, **kwargs):
    """Unknown paths under /api/v1/ answer 404 in the API's shape, not an HTML page."""
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)
