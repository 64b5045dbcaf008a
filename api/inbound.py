"""API for inbound messages: what people sent to the organization's official accounts (text, chip
taps, locations, files), read-only, newest first; filtered by time and by phone number."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from accounts.models import ApiScope
from api.auth import ApiViewMixin
from api.schema import ApiCursorPagination, example
from core.phone import normalize_mobile
from messaging.models import ConversationMessage, MessageDirection


class InboundLocationSerializer(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()


class InboundFileSerializer(serializers.Serializer):
    url = serializers.CharField()
    mime_type = serializers.CharField()


class InboundMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    from_ = serializers.CharField(source="conversation.contact.phone")
    contact = serializers.IntegerField(source="conversation.contact_id")
    official_account = serializers.IntegerField(source="conversation.official_account_id")
    kind = serializers.CharField()
    channel = serializers.CharField()
    text = serializers.CharField()
    postback = serializers.CharField()
    location = serializers.SerializerMethodField()
    file = serializers.SerializerMethodField()
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    received_at = serializers.DateTimeField(source="created_at")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    @extend_schema_field(InboundLocationSerializer(allow_null=True))
    def get_location(self, message):
        if message.latitude is None or message.longitude is None:
            return None
        return {"latitude": message.latitude, "longitude": message.longitude}

    @extend_schema_field(InboundFileSerializer(allow_null=True))
    def get_file(self, message):
        if not message.file_url:
            return None
        return {"url": message.file_url, "mime_type": message.file_mime}


INBOUND_EXAMPLE = {
    "id": 501, "from": "+819012345678", "contact": 42, "official_account": 1, "kind": "postback", "channel": "rcs",
    "text": "いいえ", "postback": "fraud:ng", "location": None, "file": None, "campaign": None,
    "received_at": "2026-11-26T10:00:31+09:00",
}


@extend_schema_view(
    list=extend_schema(
        summary="List inbound messages",
        description="What people sent to your official accounts (text, chip taps, locations, files), newest first.",
        parameters=[
            OpenApiParameter("since", str, description="Only messages received at or after this ISO 8601 time."),
            OpenApiParameter("phone", str, description="Only messages from this mobile number."),
            OpenApiParameter("page_size", int, description="1–500, default 50."),
        ],
        examples=[example("Replies", {"next": None, "previous": None, "results": [INBOUND_EXAMPLE]})],
    ),
    retrieve=extend_schema(summary="Get an inbound message", examples=[example("A chip tap", INBOUND_EXAMPLE)]),
)
class InboundMessageViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    required_scope = ApiScope.SEND
    serializer_class = InboundMessageSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        queryset = ConversationMessage.objects.filter(
            conversation__organization=self.organization, direction=MessageDirection.INBOUND
        ).select_related("conversation__contact")
        if self.action == "list":
            params = self.request.query_params
            if params.get("since"):
                try:
                    since = parse_datetime(params["since"])
                except ValueError:
                    since = None
                if since is None:
                    raise serializers.ValidationError({"since": [_("Give an ISO 8601 date and time.")]})
                queryset = queryset.filter(created_at__gte=since)
            if params.get("phone"):
                try:
                    phone = normalize_mobile(params["phone"])
                except DjangoValidationError as error:
                    raise serializers.ValidationError({"phone": error.messages}) from None
                queryset = queryset.filter(conversation__contact__phone=phone)
        return queryset
