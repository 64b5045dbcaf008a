"""OpenAPI generation for /api/v1/: the error shape on every operation, the Idempotency-Key header
on every POST, the bearer API-key security scheme, and helpers for examples."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

ERROR_EXAMPLE = {"code": "invalid", "message": "This field is required.", "field": "to"}


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable, machine-readable code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField(help_text="A human-readable explanation (English, or Japanese with Accept-Language: ja).")
    field = serializers.CharField(allow_null=True, help_text="The input at fault (dotted for nested input), or null.")


class ErrorSerializer(ErrorItemSerializer):
    errors = ErrorItemSerializer(many=True, required=False, help_text="Every validation problem (400 only).")

    class Meta:
        ref_name = "Error"


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (e.g. a UUID), at most 255 characters. Repeating a POST with the same key and "
        "the same body returns the first answer without acting again; the same key with a different body "
        "answers 409. Keys are kept for at least 24 hours."
    ),
)

ERROR_DESCRIPTIONS = {
    "400": "Invalid input.",
    "401": "Missing, unknown or revoked API key.",
    "403": "The key lacks the scope (or its creator the role) this operation needs.",
    "404": "No such object in this organization.",
    "409": "Conflict: the object's state forbids this, a duplicate, or an Idempotency-Key reused with another body.",
    "415": "Send JSON (Content-Type: application/json).",
    "429": "Too many requests for this API key; retry after the Retry-After header's seconds.",
}


class ApiSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("415")
        for code in codes:
            if code in bodies:
                continue
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code == "429":
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                }
            bodies[code] = response
        return bodies


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key created in the console (Administration → API keys): `Authorization: Bearer pm_…`.",
        }


def example(name: str, value, *, request=False, response=True, status_codes=None, summary=None):
    return OpenApiExample(
        name,
        value=value,
        request_only=request and not response,
        response_only=response and not request,
        status_codes=status_codes,
        summary=summary,
    )


class ApiCursorPagination(CursorPagination):
    """Cursor pagination (stable under inserts); a malformed cursor is a 400, not a 404."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor."

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [self.invalid_cursor_message]}, code="invalid") from None

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                value = int(raw)
            except (TypeError, ValueError):
                value = 0
            if not 1 <= value <= self.max_page_size:
                raise ValidationError(
                    {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}, code="invalid"
                )
        return super().get_page_size(request)


class OldestFirstPagination(ApiCursorPagination):
    """Contacts and lists page in the order they were created."""

    ordering = "id"
