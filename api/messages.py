"""API for single messages: send one (POST /api/v1/messages/), read one, list them.

A message is one person, one message, through the priority lane (``messaging.services.message_send``):
the rich content is checked by the same validator as the console, the SMS fallback text by the
same SMS validator, and the answer carries the message id (the delivery's UUID) and its URL.
A status is named as in the outbound webhooks' payloads (``DELIVERY_STATUS_NAMES``).

A promotion (``classification: promotion``) meets the same rules as a campaign, in the service:
refused with 400 and the code ``opted_out``, ``no_consent`` or ``display_rules`` (nothing recorded),
and inside quiet hours accepted but held: ``scheduled_for`` says when it will go.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.reverse import reverse

from accounts.models import ApiScope, OfficialAccount
from api.auth import MAX_ID, ApiViewMixin
from api.fields import clean_phone, rich_content_errors, validated_rich_content
from api.schema import ApiCursorPagination, example
from campaigns.models import Classification
from core.sms_text import validate_sms_text
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason
from messaging.outbound_webhooks import DELIVERY_STATUS_NAMES
from messaging.services import MessageRefused, message_send

STATUS_VALUES = {name: value for value, name in DELIVERY_STATUS_NAMES.items()}

MESSAGE_EXAMPLE = {
    "id": "6f1c1f0e-8a0b-4a43-9d59-3c1f1d1b2a10",
    "url": "https://console.example.jp/api/v1/messages/6f1c1f0e-8a0b-4a43-9d59-3c1f1d1b2a10/",
    "to": "+819012345678",
    "official_account": 1,
    "classification": "transaction",
    "client_reference": "order-1234",
    "scheduled_for": None,
    "status": "delivered",
    "channel": "sms",
    "fallback_reason": "not_capable",
    "error": None,
    "history": [
        {"status": "queued", "at": "2026-11-26T10:00:00.120000+09:00"},
        {"status": "sent", "at": "2026-11-26T10:00:00.310000+09:00"},
        {"status": "delivered", "at": "2026-11-26T10:00:02.020000+09:00"},
    ],
    "created_at": "2026-11-26T10:00:00.120000+09:00",
}
SEND_EXAMPLE = {
    "to": "090-1234-5678",
    "official_account": 1,
    "content": {
        "text": "【カード利用確認】11/26 10:00 に 52,800円のご利用がありました。お心当たりがない場合は「いいえ」を押してください。",
        "suggestions": [
            {"reply": {"text": "はい", "postbackData": "fraud:ok"}},
            {"reply": {"text": "いいえ", "postbackData": "fraud:ng"}},
        ],
    },
    "sms_text": "【カード利用確認】11/26 52,800円のご利用がありました。お心当たりがない場合はお電話ください 0120-000-000",
    "classification": "transaction",
    "ttl_seconds": 600,
    "client_reference": "alert-98765",
}


class HistoryEntrySerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


class MessageErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    reason = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    url = serializers.SerializerMethodField()
    to = serializers.CharField(source="contact.phone", read_only=True)
    official_account = serializers.IntegerField(source="official_account_id", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    channel = serializers.SerializerMethodField()
    fallback_reason = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()
    scheduled_for = serializers.DateTimeField(
        source="not_before", read_only=True, allow_null=True,
        help_text="When a promotion accepted during quiet hours will be sent (they end then); null: at once.",
    )

    class Meta:
        model = Delivery
        fields = [
            "id", "url", "to", "official_account", "classification", "client_reference", "scheduled_for", "status",
            "channel", "fallback_reason", "error", "history", "created_at",
        ]

    def get_url(self, delivery) -> str:
        return reverse("api:message-detail", kwargs={"uuid": delivery.uuid}, request=self.context.get("request"))

    @extend_schema_field(serializers.ChoiceField(choices=list(STATUS_VALUES)))
    def get_status(self, delivery):
        return DELIVERY_STATUS_NAMES.get(delivery.status, str(delivery.status))

    @extend_schema_field(serializers.ChoiceField(choices=Channel.values, allow_null=True))
    def get_channel(self, delivery):
        return delivery.channel or None

    @extend_schema_field(serializers.ChoiceField(choices=FallbackReason.values, allow_null=True))
    def get_fallback_reason(self, delivery):
        return delivery.fallback_reason or None

    @extend_schema_field(MessageErrorSerializer(allow_null=True))
    def get_error(self, delivery):
        if not delivery.error_code:
            return None
        return {"code": delivery.error_code, "reason": delivery.error_reason}

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_history(self, delivery):
        entries = [("queued", delivery.created_at)]
        for name, at in (
            ("sent", delivery.sent_at), ("delivered", delivery.delivered_at), ("read", delivery.read_at),
            ("failed", delivery.failed_at),
        ):
            if at:
                entries.append((name, at))
        if delivery.status == DeliveryStatus.CANCELLED:
            entries.append(("cancelled", None))
        field = serializers.DateTimeField()
        return [{"status": name, "at": field.to_representation(at) if at else None} for name, at in entries]


class MessageCreateSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=40, help_text="A Japanese mobile number: 090-1234-5678, 09012345678 or +819012345678.")
    official_account = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="The sending official account's id; may be left out when the organization has only one.",
    )
    content = serializers.JSONField(help_text="The +Message rich-content document (text, media, card or carousel, suggestions).")
    sms_text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, max_length=2000,
        help_text="The SMS sent instead when the number cannot get +Message (UCS-2: 70 characters a segment).",
    )
    classification = serializers.ChoiceField(choices=Classification.choices, default=Classification.TRANSACTION)
    ttl_seconds = serializers.IntegerField(
        min_value=60, max_value=30 * 86400, default=3600,
        help_text="How long to wait for +Message delivery before revoking and sending the SMS instead.",
    )
    client_reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate_to(self, value):
        return clean_phone(value)

    def validate_content(self, value):
        return validated_rich_content(value)

    def validate(self, attrs):
        organization = self.context["organization"]
        accounts = OfficialAccount.with_approval(
            OfficialAccount.objects.filter(organization=organization).select_related("sms_gateway")
        )
        account_id = attrs.get("official_account")
        if account_id is None:
            candidates = list(accounts[:2])
            if len(candidates) != 1:
                raise serializers.ValidationError(
                    {"official_account": [_("Give the official account to send from.")]}, code="required"
                )
            account = candidates[0]
        else:
            account = accounts.filter(pk=account_id).first()
            if account is None:
                raise serializers.ValidationError({"official_account": [_("Unknown official account.")]}, code="invalid")
        limit = account.sms_gateway.sms_char_limit if account.sms_gateway else 660
        try:
            validate_sms_text(
                attrs["sms_text"], limit=limit, short_link_base_setting=account.organization.short_link_base
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        attrs["account"] = account
        return attrs


class MessageFilterSerializer(serializers.Serializer):
    client_reference = serializers.CharField(required=False, max_length=100)
    status = serializers.ChoiceField(choices=list(STATUS_VALUES), required=False)


@extend_schema_view(
    list=extend_schema(
        summary="List messages sent on their own",
        description="Single messages of this organization (not campaign deliveries), newest first.",
        parameters=[
            OpenApiParameter("client_reference", str, description="Only messages with this client reference."),
            OpenApiParameter("status", str, enum=list(STATUS_VALUES)),
            OpenApiParameter("page_size", int, description="1–500, default 50."),
        ],
        examples=[example("A page of messages", {"next": None, "previous": None, "results": [MESSAGE_EXAMPLE]})],
    ),
    retrieve=extend_schema(
        summary="Get a message",
        description="Channel, status history, fallback reason and error of one message.",
        examples=[example("A message that fell back to SMS", MESSAGE_EXAMPLE)],
    ),
    create=extend_schema(
        summary="Send one message (transactional lane)",
        description=(
            "Queues one message to one number on the priority lane: +Message when the number can get it, "
            "otherwise (or when not delivered within `ttl_seconds`) the SMS text. Answers 201 with the message id "
            "and its URL; follow the status there or with webhooks. A promotion must go to a person with an active "
            "consent who has not opted out, and both texts must name the sender's formal name and say how to opt "
            "out: otherwise 400 with the code `no_consent`, `opted_out` or `display_rules`, and nothing is sent. "
            "A promotion sent during the organization's quiet hours is accepted and held until they end: "
            "`scheduled_for` says when."
        ),
        request=MessageCreateSerializer,
        responses={201: MessageSerializer},
        examples=[
            example("A fraud alert with SMS fallback", SEND_EXAMPLE, request=True, response=False),
            example("Queued", {**MESSAGE_EXAMPLE, "status": "queued", "channel": None, "fallback_reason": None,
                               "history": MESSAGE_EXAMPLE["history"][:1]}, status_codes=["201"]),
        ],
    ),
)
class MessageViewSet(ApiViewMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                     viewsets.GenericViewSet):
    required_scope = ApiScope.SEND
    serializer_class = MessageSerializer
    pagination_class = ApiCursorPagination
    lookup_field = "uuid"
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self):
        queryset = Delivery.objects.filter(organization=self.organization, campaign__isnull=True).select_related(
            "contact"
        )
        if self.action == "list":
            filters = MessageFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if "client_reference" in filters.validated_data:
                queryset = queryset.filter(client_reference=filters.validated_data["client_reference"])
            if "status" in filters.validated_data:
                queryset = queryset.filter(status=STATUS_VALUES[filters.validated_data["status"]])
        return queryset

    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs["uuid"]))
        except ValueError:
            raise Http404 from None
        return super().get_object()

    def create(self, request, *args, **kwargs):
        data = MessageCreateSerializer(data=request.data, context={"organization": self.organization})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            delivery = message_send(
                organization=self.organization,
                official_account=values["account"],
                phone=values["to"],
                content=values["content"],
                sms_text=values["sms_text"],
                classification=values["classification"],
                ttl_seconds=values["ttl_seconds"],
                client_reference=values.get("client_reference") or "",
            )
        except MessageRefused:
            raise
        except DjangoValidationError as error:
            if hasattr(error, "error_dict") and set(error.message_dict) - {"to", "official_account", "sms_text"}:
                raise DjangoValidationError(rich_content_errors(error)) from None
            raise
        body = MessageSerializer(delivery, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})
