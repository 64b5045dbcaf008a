"""API for campaigns: drafts, their lifecycle (submit, approve, launch, pause, resume, cancel) and statistics.

Views parse input and call the same services as the console (``campaigns.services`` to submit and approve, ``messaging.runs`` to launch, pause, resume and cancel); a key acts
with its creator's current role. Every queryset is limited to the API key's organization.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiScope, OfficialAccount
from api.auth import ApiViewMixin, role_required
from api.errors import conflict
from api.fields import EmptySerializer, validated_rich_content
from api.schema import ApiCursorPagination, example
from campaigns import services
from campaigns.models import Campaign, CampaignStatus, ContactList
from campaigns.status import TransitionError
from core.sms_text import validate_sms_text
from messaging import runs
from messaging.stats import campaign_stats


class CampaignSerializer(serializers.ModelSerializer):
    official_account = serializers.PrimaryKeyRelatedField(queryset=OfficialAccount.objects.none())
    audience_lists = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=ContactList.objects.none())
    exclusion_lists = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=ContactList.objects.none())
    content = serializers.JSONField(required=False, help_text="The +Message rich-content document.")
    sms_text = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, trim_whitespace=False,
        help_text="The SMS fallback text. {{link:https://…}} becomes each person's tracked short URL; the gateway's "
                  "limit (660 by default) applies to the text as sent, each link at its short URL's length.",
    )
    ttl_seconds = serializers.IntegerField(required=False, min_value=60, max_value=30 * 86400)
    recurrence = serializers.CharField(required=False, allow_blank=True, max_length=100)

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "official_account", "classification", "content", "sms_text", "audience_lists",
            "exclusion_lists", "ttl_seconds", "scheduled_at", "recurrence", "status", "status_reason", "approved_at",
            "started_at", "finished_at", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "status", "status_reason", "approved_at", "started_at", "finished_at", "created_at",
                            "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = self.context.get("organization")
        if organization is not None:
            self.fields["official_account"].queryset = OfficialAccount.objects.filter(organization=organization)
            lists = ContactList.objects.filter(organization=organization)
            self.fields["audience_lists"].child_relation.queryset = lists
            self.fields["exclusion_lists"].child_relation.queryset = lists

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("This field may not be blank."), code="blank")
        return value

    def validate_content(self, value):
        return validated_rich_content(value)

    def validate_recurrence(self, value):
        if value:
            try:
                services.parse_crontab(value)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None
            except Exception:  # celery's own parser errors are not ValueErrors
                raise serializers.ValidationError(_("Not a valid crontab.")) from None
        return value

    def validate(self, attrs):
        account = attrs.get("official_account") or getattr(self.instance, "official_account", None)
        sms_text = attrs.get("sms_text")
        if sms_text and account is not None:
            limit = account.sms_gateway.sms_char_limit if account.sms_gateway else 660
            try:
                validate_sms_text(sms_text, limit=limit, short_link_base_setting=account.organization.short_link_base)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.message_dict) from None
        return attrs

    def create(self, validated_data):
        audience = validated_data.pop("audience_lists", [])
        exclusion = validated_data.pop("exclusion_lists", [])
        with transaction.atomic():
            campaign = Campaign.objects.create(
                organization=self.context["organization"], created_by=self.context["user"],
                sms_text=validated_data.pop("sms_text", ""), **validated_data,
            )
            campaign.audience_lists.set(audience)
            campaign.exclusion_lists.set(exclusion)
        return campaign

    def update(self, instance, validated_data):
        audience = validated_data.pop("audience_lists", None)
        exclusion = validated_data.pop("exclusion_lists", None)
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=instance.pk)
            if locked.status != CampaignStatus.DRAFT:
                raise conflict("not_draft", _("Only a draft campaign can be changed."), None)
            for name, value in validated_data.items():
                setattr(instance, name, value)
            instance.save()
            if audience is not None:
                instance.audience_lists.set(audience)
            if exclusion is not None:
                instance.exclusion_lists.set(exclusion)
        return instance


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class CampaignStatsSerializer(serializers.Serializer):
    targeted = serializers.IntegerField()
    skipped_opted_out = serializers.IntegerField()
    skipped_no_consent = serializers.IntegerField()
    skipped_frequency_cap = serializers.IntegerField(help_text="Left out of a promotion by the organization's frequency cap.")
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    clicked = serializers.IntegerField()
    replied = serializers.IntegerField()
    fell_back = serializers.IntegerField()
    fallback_by_reason = serializers.DictField(child=serializers.IntegerField())
    failed_by_reason = serializers.DictField(child=serializers.IntegerField())
    by_channel = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    progress = serializers.FloatField()
    rate_per_s = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    finished = serializers.BooleanField()


CAMPAIGN_EXAMPLE = {
    "id": 12, "name": "冬のセール", "official_account": 1, "classification": "promotion",
    "content": {"text": "冬のセール開催中！【株式会社テスト】配信停止は「停止」と返信"},
    "sms_text": "冬のセール開催中！【株式会社テスト】配信停止は「停止」と返信", "audience_lists": [3], "exclusion_lists": [],
    "ttl_seconds": 3600, "scheduled_at": None, "recurrence": "", "status": "draft", "status_reason": "",
    "approved_at": None, "started_at": None, "finished_at": None,
    "created_at": "2026-11-26T10:00:00+09:00", "updated_at": "2026-11-26T10:00:00+09:00",
}
CAMPAIGN_CREATE_EXAMPLE = {k: CAMPAIGN_EXAMPLE[k] for k in (
    "name", "official_account", "classification", "content", "sms_text", "audience_lists", "ttl_seconds")}
STATS_EXAMPLE = {
    "targeted": 1000, "skipped_opted_out": 3, "skipped_no_consent": 10, "skipped_frequency_cap": 0, "queued": 0, "sent": 987, "delivered": 950,
    "read": 700, "failed": 0, "cancelled": 0, "clicked": 120, "replied": 8, "fell_back": 210,
    "fallback_by_reason": {"not_capable": 200, "ttl_expired": 10}, "failed_by_reason": {},
    "by_channel": {"rcs": {"sent": 777}, "sms": {"sent": 210}}, "progress": 1.0, "rate_per_s": 0.0,
    "eta_seconds": None, "finished": True,
}


def _action_schema(summary: str, description: str, status_after: str, request=None):
    return extend_schema(
        summary=summary, description=description, request=request or EmptySerializer,
        responses={200: CampaignSerializer},
        examples=[example(f"Now {status_after}", {**CAMPAIGN_EXAMPLE, "status": status_after})],
    )


@extend_schema_view(
    list=extend_schema(summary="List campaigns", parameters=[
        OpenApiParameter("status", str, enum=CampaignStatus.values)],
        examples=[example("Campaigns", {"next": None, "previous": None, "results": [CAMPAIGN_EXAMPLE]})]),
    retrieve=extend_schema(summary="Get a campaign", examples=[example("A campaign", CAMPAIGN_EXAMPLE)]),
    create=extend_schema(summary="Create a draft campaign", examples=[
        example("A promotion", CAMPAIGN_CREATE_EXAMPLE, request=True, response=False),
        example("Created", CAMPAIGN_EXAMPLE, status_codes=["201"])]),
    update=extend_schema(summary="Replace a draft campaign", examples=[
        example("Replace", CAMPAIGN_CREATE_EXAMPLE, request=True, response=False), example("Replaced", CAMPAIGN_EXAMPLE)]),
    partial_update=extend_schema(summary="Update a draft campaign", examples=[
        example("Rename", {"name": "冬のセール（第2弾）"}, request=True, response=False), example("Updated", CAMPAIGN_EXAMPLE)]),
)
class CampaignViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.UpdateModelMixin, viewsets.GenericViewSet):
    required_scope = ApiScope.CAMPAIGNS
    serializer_class = CampaignSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        queryset = (
            Campaign.objects.filter(organization=self.organization)
            .select_related("official_account__sms_gateway")
            .prefetch_related(
                Prefetch("audience_lists", queryset=ContactList.objects.only("id")),
                Prefetch("exclusion_lists", queryset=ContactList.objects.only("id")),
            )
        )
        wanted = self.request.query_params.get("status") if self.action == "list" else None
        if wanted:
            if wanted not in CampaignStatus.values:
                raise exceptions.ValidationError({"status": [_("Unknown status.")]})
            queryset = queryset.filter(status=wanted)
        return queryset

    def get_serializer_context(self):
        context = {**super().get_serializer_context(), "organization": self.organization}
        context["user"] = self.api_key.created_by if self.api_key else None
        return context

    def perform_create(self, serializer):
        role_required(self, {"compose"})
        serializer.save()

    def perform_update(self, serializer):
        role_required(self, {"compose"})
        serializer.save()

    def _run(self, service, permissions: set[str], *args, **kwargs):
        role_required(self, permissions)
        campaign = get_object_or_404(
            Campaign.objects.select_related("official_account__sms_gateway", "organization"),
            organization=self.organization, pk=self.kwargs["pk"],
        )
        try:
            service(campaign, self.api_key.created_by, *args, **kwargs)
        except TransitionError as error:
            raise conflict(getattr(error, "code", None) or "invalid_transition", " ".join(error.messages)) from None
        except services.SecondApproverRequired as error:
            raise exceptions.PermissionDenied(" ".join(error.messages), code=error.code) from None
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @_action_schema("Submit for approval", "Checks the campaign and moves a draft to pending approval.",
                    "pending_approval")
    @action(detail=True, methods=["post"], filter_backends=[])
    def submit(self, request, pk=None):
        return self._run(services.campaign_submit, {"compose"})

    @_action_schema(
        "Approve", "Approves a campaign pending approval. The key's creator must be an owner or admin "
        "(a key acts with its creator's current role). When the organization wants a second approver "
        "(on by default with two or more owners and admins), a key whose creator submitted the campaign "
        "gets 403 `second_approver_required`.", "approved")
    @action(detail=True, methods=["post"], filter_backends=[])
    def approve(self, request, pk=None):
        return self._run(services.campaign_approve, {"approve"}, api_key=self.api_key)

    @_action_schema("Launch", "Launches an approved campaign now, at `scheduled_at`, or on its `recurrence`. "
                    "Promotions wait for the end of quiet hours.", "running")
    @action(detail=True, methods=["post"], filter_backends=[])
    def launch(self, request, pk=None):
        return self._run(self._launch, {"compose", "approve"}, api_key=self.api_key)

    @staticmethod
    def _launch(campaign, user, *, api_key):
        if campaign.status != CampaignStatus.APPROVED:
            raise conflict("invalid_transition", _("Only an approved campaign can be launched."))
        return runs.campaign_launch(campaign, user, api_key=api_key)

    @_action_schema("Pause", "Pauses a running campaign at claim time.", "paused", request=PauseSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def pause(self, request, pk=None):
        data = PauseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._run(runs.campaign_pause, {"compose", "approve"}, data.validated_data["reason"])

    @_action_schema("Resume", "Resumes a paused campaign.", "running")
    @action(detail=True, methods=["post"], filter_backends=[])
    def resume(self, request, pk=None):
        return self._run(runs.campaign_resume, {"compose", "approve"})

    @_action_schema("Cancel", "Cancels the campaign; what is left unsent is marked cancelled.", "cancelled")
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        return self._run(runs.campaign_cancel, {"compose", "approve"})

    @extend_schema(summary="Campaign statistics", description="Read from the folded counters.",
                   responses={200: CampaignStatsSerializer}, examples=[example("Finished", STATS_EXAMPLE)])
    @action(detail=True, methods=["get"], filter_backends=[])
    def stats(self, request, pk=None):
        campaign = get_object_or_404(Campaign, organization=self.organization, pk=pk)
        data = campaign_stats(campaign)
        data.pop("series", None)
        return Response(CampaignStatsSerializer(data).data)
