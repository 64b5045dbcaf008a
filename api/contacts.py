"""API for contacts (with consent and opt-out), contact lists and their members, and campaigns.

Views parse input and call services: the campaign lifecycle is ``campaigns.services`` (submit,
approve) and ``messaging.runs`` (launch, pause, resume, cancel) — the same functions the console
calls; phone numbers go through ``core.phone.normalize_mobile`` and the bulk upsert writes like the
console's import (``campaigns.imports``): one bulk INSERT … ON CONFLICT per request, names kept when
a row gives none, attributes merged.

Every queryset is limited to the API key's organization, so another organization's ids answer 404.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiScope, OfficialAccount
from api.auth import MAX_ID, ApiViewMixin, key_may, reject_nul
from api.schema import ApiCursorPagination, example
from campaigns import optout, services
from campaigns.models import (
    Campaign,
    CampaignStatus,
    Consent,
    ConsentMethod,
    Contact,
    ContactList,
    ContactListMembership,
)
from campaigns.status import TransitionError
from core.phone import normalize_mobile
from core.sms_text import validate_sms_text
from messaging import runs
from messaging.stats import campaign_stats

BULK_MAX = 10_000
ATTRIBUTES_MAX = 50


class EmptySerializer(serializers.Serializer):
    pass


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "Conflict."


def conflict(code: str, message: str, field: str | None = None) -> Conflict:
    return Conflict({"code": code, "message": message, "field": field})


def role_required(view, permissions: set[str]) -> None:
    """The key's creator must (still) hold a role granting one of ``permissions`` (see api_auth)."""
    key = view.api_key
    if not any(key_may(key, permission) for permission in permissions):
        raise exceptions.PermissionDenied(
            _("This API key acts with the role of the member who created it, and that role may not do this.")
        )


# --- contacts -----------------------------------------------------------------------------------


def clean_phone(value) -> str:
    try:
        return normalize_mobile(value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.messages, code=error.error_list[0].code or "invalid") from None


def clean_attributes(value) -> dict:
    reject_nul(value)
    if not isinstance(value, dict):
        raise serializers.ValidationError(_("Attributes are an object of names to values."), code="invalid")
    if len(value) > ATTRIBUTES_MAX:
        raise serializers.ValidationError(_("At most %(max)d attributes.") % {"max": ATTRIBUTES_MAX}, code="invalid")
    for key, item in value.items():
        if not key or len(key) > 100:
            raise serializers.ValidationError(_("Attribute names have 1 to 100 characters."), code="invalid")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise serializers.ValidationError(
                _("Attribute “%(name)s” must be text, a number or a boolean.") % {"name": key}, code="invalid"
            )
        if isinstance(item, str) and len(item) > 1000:
            raise serializers.ValidationError(
                _("Attribute “%(name)s” is longer than 1,000 characters.") % {"name": key}, code="invalid"
            )
    return value


class ConsentSerializer(serializers.ModelSerializer):
    granted_at = serializers.DateTimeField(required=False, help_text="When consent was given; defaults to now.")
    method = serializers.ChoiceField(choices=ConsentMethod.choices, default=ConsentMethod.API)
    source = serializers.CharField(max_length=300, help_text="Where consent was given: a form URL, a shop, a file.")
    wording_version = serializers.CharField(max_length=50, help_text="The version of the consent wording shown.")
    evidence = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    class Meta:
        model = Consent
        fields = ["id", "granted_at", "method", "source", "wording_version", "evidence", "revoked_at", "revoke_method"]
        read_only_fields = ["id", "revoked_at", "revoke_method"]

    def validate_granted_at(self, value):
        if value and value > timezone.now() + timezone.timedelta(minutes=5):
            raise serializers.ValidationError(_("Consent cannot be given in the future."), code="invalid")
        if value and value.year < 2000:
            raise serializers.ValidationError(_("Consent cannot be older than the year 2000."), code="invalid")
        return value

    def validate_source(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("This field may not be blank."), code="blank")
        return value

    validate_wording_version = validate_source


class ContactSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(max_length=40, help_text="A Japanese mobile number; stored in E.164 (+81…).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False, help_text="Custom attributes for personalisation.")
    lists = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=ContactList.objects.none(), help_text="Ids of the lists it belongs to."
    )
    consent = ConsentSerializer(required=False, write_only=True, help_text="Record prior opt-in with the contact.")
    opted_out = serializers.SerializerMethodField()
    has_consent = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id", "phone", "name", "attributes", "lists", "consent", "opted_out", "opted_out_at", "opt_out_method",
            "has_consent", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "opted_out_at", "opt_out_method", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = self.context.get("organization")
        if organization is not None:
            self.fields["lists"].child_relation.queryset = ContactList.objects.filter(organization=organization)

    def get_opted_out(self, contact) -> bool:
        return contact.opted_out_at is not None

    def get_has_consent(self, contact) -> bool:
        value = getattr(contact, "active_consent", None)
        if value is None:
            value = contact.consents.filter(revoked_at__isnull=True).exists()
        return bool(value)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return data

    def validate_phone(self, value):
        phone = clean_phone(value)
        organization = self.context["organization"]
        others = Contact.objects.filter(organization=organization, phone=phone)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise conflict("duplicate", _("A contact with this number already exists."), "phone")
        return phone

    def validate_attributes(self, value):
        return clean_attributes(value)

    def create(self, validated_data):
        lists = validated_data.pop("lists", None)
        consent = validated_data.pop("consent", None)
        with transaction.atomic():
            contact = Contact.objects.create(organization=self.context["organization"], **validated_data)
            if lists:
                ContactListMembership.objects.bulk_create(
                    [ContactListMembership(contact_list=item, contact=contact) for item in lists], ignore_conflicts=True
                )
            if consent:
                consent.setdefault("method", ConsentMethod.API)
                optout.consent_grant(contact, actor=self.context.get("actor"), **consent)
        return contact

    def update(self, instance, validated_data):
        lists = validated_data.pop("lists", None)
        consent = validated_data.pop("consent", None)
        with transaction.atomic():
            for name, value in validated_data.items():
                setattr(instance, name, value)
            instance.save()
            if lists is not None:
                keep = {item.pk for item in lists}
                ContactListMembership.objects.filter(contact=instance).exclude(contact_list_id__in=keep).delete()
                ContactListMembership.objects.bulk_create(
                    [ContactListMembership(contact_list=item, contact=instance) for item in lists],
                    ignore_conflicts=True,
                )
            if consent:
                consent.setdefault("method", ConsentMethod.API)
                optout.consent_grant(instance, actor=self.context.get("actor"), **consent)
        return instance


class ContactFilter(filters.FilterSet):
    phone = filters.CharFilter(method="filter_phone", help_text="A mobile number in any usual form.")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")
    opted_out = filters.BooleanFilter(method="filter_opted_out")
    has_consent = filters.BooleanFilter(method="filter_has_consent")
    list = filters.NumberFilter(method="filter_list", help_text="Only members of this list.",
                                min_value=1, max_value=MAX_ID)
    updated_after = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = []

    def filter_phone(self, queryset, name, value):
        try:
            return queryset.filter(phone=normalize_mobile(value))
        except DjangoValidationError as error:
            raise exceptions.ValidationError({"phone": error.messages}) from None

    def filter_opted_out(self, queryset, name, value):
        return queryset.filter(opted_out_at__isnull=not value)

    def filter_has_consent(self, queryset, name, value):
        return queryset.filter(active_consent=value)

    def filter_list(self, queryset, name, value):
        return queryset.filter(list_memberships__contact_list_id=value)


class BulkConsentSerializer(serializers.Serializer):
    granted_at = serializers.DateTimeField(required=False)
    method = serializers.CharField(required=False)
    source = serializers.CharField()
    wording_version = serializers.CharField()
    evidence = serializers.CharField(required=False)


class BulkRowSerializer(serializers.Serializer):
    phone = serializers.CharField()
    name = serializers.CharField(required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False)
    consent = BulkConsentSerializer(required=False)


class BulkUpsertSerializer(serializers.Serializer):
    contacts = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=BULK_MAX,
        help_text="Up to 10,000 rows: {phone, name?, attributes?, consent?}. Bad rows are reported, good rows kept.",
    )
    list = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Also add every good row to this list.")

    class Meta:
        ref_name = "ContactBulkUpsertRequest"


class BulkRowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's position in `contacts` (from 0).")
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = BulkRowErrorSerializer(many=True)


def _bulk_row(index: int, row, now) -> tuple[dict | None, dict | None]:
    """Validate one bulk row: (good row, None) or (None, error)."""

    def bad(code, message, field):
        return None, {"index": index, "code": code, "message": str(message), "field": field}

    if not isinstance(row, dict):
        return bad("invalid", _("Each row is an object."), None)
    try:
        phone = normalize_mobile(row.get("phone"))
    except DjangoValidationError as error:
        return bad(error.error_list[0].code or "invalid", error.messages[0], "phone")
    name = row.get("name", None)
    if name is not None and (not isinstance(name, str) or len(name) > 200 or "\x00" in name):
        return bad("invalid", _("The name is text of at most 200 characters."), "name")
    attributes = row.get("attributes") or {}
    try:
        clean_attributes(attributes)
    except serializers.ValidationError as error:
        return bad("invalid", error.detail[0], "attributes")
    consent = row.get("consent")
    if consent is not None:
        serializer = ConsentSerializer(data=consent)
        if not serializer.is_valid():
            from api.errors import flatten_validation

            first = flatten_validation(serializer.errors, "consent")[0]
            return bad(first["code"], first["message"], first["field"])
        consent = dict(serializer.validated_data)
        consent.setdefault("granted_at", now)
    return {"phone": phone, "name": name, "attributes": attributes, "consent": consent}, None


def contacts_bulk_upsert(organization, rows: list, contact_list: ContactList | None = None) -> dict:
    """Upsert up to BULK_MAX contacts in one transaction; bad rows are reported and skipped."""
    now = timezone.now()
    good: list[dict] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        item, error = _bulk_row(index, row, now)
        if error:
            errors.append(error)
            continue
        if item["phone"] in seen:
            errors.append({
                "index": index, "code": "duplicate", "field": "phone",
                "message": _("Duplicate: the same number is in row %(row)d.") % {"row": seen[item["phone"]]},
            })
            continue
        seen[item["phone"]] = index
        good.append(item)
    created = updated = 0
    if good:
        phones = [item["phone"] for item in good]
        with transaction.atomic():
            existing = {
                phone: (name, attributes)
                for phone, name, attributes in Contact.objects.filter(
                    organization=organization, phone__in=phones
                ).values_list("phone", "name", "attributes")
            }
            contacts = []
            for item in good:
                old_name, old_attributes = existing.get(item["phone"], ("", {}))
                contacts.append(Contact(
                    organization=organization,
                    phone=item["phone"],
                    name=item["name"] if item["name"] is not None else old_name,
                    attributes={**(old_attributes or {}), **item["attributes"]},
                ))
            Contact.objects.bulk_create(
                contacts, update_conflicts=True, unique_fields=["organization", "phone"],
                update_fields=["name", "attributes", "updated_at"], batch_size=2000,
            )
            if any(contact.pk is None for contact in contacts):
                ids = dict(Contact.objects.filter(organization=organization, phone__in=phones).values_list("phone", "id"))
                for contact in contacts:
                    contact.pk = contact.id = ids[contact.phone]
            if contact_list is not None:
                ContactListMembership.objects.bulk_create(
                    [ContactListMembership(contact_list=contact_list, contact_id=c.pk) for c in contacts],
                    ignore_conflicts=True, batch_size=2000,
                )
            with_consent = [(c, item["consent"]) for c, item in zip(contacts, good, strict=True) if item["consent"]]
            if with_consent:
                earlier = [c.pk for c, _consent in with_consent if c.phone in existing]
                known = set(
                    Consent.objects.filter(contact_id__in=earlier).values_list("contact_id", "granted_at", "wording_version")
                ) if earlier else set()
                Consent.objects.bulk_create([
                    Consent(organization=organization, contact_id=c.pk, **consent)
                    for c, consent in with_consent
                    if (c.pk, consent["granted_at"], consent["wording_version"]) not in known
                ], batch_size=2000)
        updated = len(existing)
        created = len(good) - updated
    return {"created": created, "updated": updated, "errors": errors}


CONTACT_EXAMPLE = {
    "id": 42, "phone": "+819012345678", "name": "山田 太郎", "attributes": {"member_rank": "gold"}, "lists": [3],
    "opted_out": False, "opted_out_at": None, "opt_out_method": "", "has_consent": True,
    "created_at": "2026-11-26T10:00:00+09:00", "updated_at": "2026-11-26T10:00:00+09:00",
}
CONTACT_CREATE_EXAMPLE = {
    "phone": "090-1234-5678", "name": "山田 太郎", "attributes": {"member_rank": "gold"}, "lists": [3],
    "consent": {"method": "web_form", "source": "https://shop.example.jp/signup", "wording_version": "2026-04"},
}
CONSENT_EXAMPLE = {
    "id": 7, "granted_at": "2026-11-26T10:00:00+09:00", "method": "web_form", "source": "https://shop.example.jp/signup",
    "wording_version": "2026-04", "evidence": "", "revoked_at": None, "revoke_method": "",
}


class OptOutSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=300, required=False, default="", help_text="Where the person asked.")
    confirm = serializers.BooleanField(
        required=False, default=True, help_text="Send the person the short opt-out confirmation message."
    )


class RevokeSerializer(serializers.Serializer):
    method = serializers.CharField(max_length=32, required=False, default="api")


class RevokeResultSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(summary="List contacts", examples=[
        example("A page of contacts", {"next": None, "previous": None, "results": [CONTACT_EXAMPLE]})]),
    retrieve=extend_schema(summary="Get a contact", examples=[example("A contact", CONTACT_EXAMPLE)]),
    create=extend_schema(summary="Create a contact", examples=[
        example("A contact with consent", CONTACT_CREATE_EXAMPLE, request=True, response=False),
        example("Created", CONTACT_EXAMPLE, status_codes=["201"])]),
    update=extend_schema(summary="Replace a contact", examples=[
        example("Replace", {"phone": "09012345678", "name": "山田 花子", "attributes": {}, "lists": []},
                request=True, response=False),
        example("Replaced", CONTACT_EXAMPLE)]),
    partial_update=extend_schema(summary="Update a contact", examples=[
        example("Rename", {"name": "山田 花子"}, request=True, response=False), example("Updated", CONTACT_EXAMPLE)]),
    destroy=extend_schema(summary="Delete a contact", description=(
        "Deletes the contact with its list memberships. A contact with consent or opt-out history younger than "
        "3 years cannot be deleted (409): erase it instead."), examples=[
        example("Cannot delete", {"code": "protected", "field": None, "message": "This contact's consent and opt-out "
                "history must be kept for 3 years: erase the contact instead."}, status_codes=["409"])]),
)
class ContactViewSet(ApiViewMixin, viewsets.ModelViewSet):
    required_scope = ApiScope.CONTACTS
    serializer_class = ContactSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = ContactFilter

    class Pagination(ApiCursorPagination):
        ordering = "id"

    pagination_class = Pagination

    def get_queryset(self):
        active = Consent.objects.filter(contact=OuterRef("pk"), revoked_at__isnull=True)
        return (
            Contact.objects.filter(organization=self.organization)
            .annotate(active_consent=Exists(active))
            .prefetch_related(Prefetch("lists", queryset=ContactList.objects.only("id")))
        )

    def get_serializer_context(self):
        return {
            **super().get_serializer_context(), "organization": self.organization,
            "actor": self.api_key.created_by if self.api_key else None,
        }

    def perform_destroy(self, instance):
        with transaction.atomic():  # a refused delete (consent retention) rolls back only itself
            instance.delete()

    def _contact(self):
        return get_object_or_404(Contact, organization=self.organization, pk=self.kwargs["pk"])

    @extend_schema(
        summary="Bulk upsert contacts",
        description=(
            "Creates or updates up to 10,000 contacts by mobile number in one request. Each bad row is reported "
            "with its index and reason; every good row is kept. A row without a name keeps the stored name; "
            "attributes are merged."
        ),
        request=BulkUpsertSerializer,
        responses={200: BulkResultSerializer},
        examples=[
            example("Two rows", {"list": 3, "contacts": [
                {"phone": "090-1234-5678", "name": "山田 太郎", "consent": {"source": "https://shop.example.jp", "wording_version": "v2"}},
                {"phone": "050-1234-5678"}]}, request=True, response=False),
            example("One created, one refused", {"created": 1, "updated": 0, "errors": [
                {"index": 1, "code": "voip", "message": "050 numbers are IP phones, not mobiles.", "field": "phone"}]}),
        ],
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        data = BulkUpsertSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact_list = None
        if data.validated_data.get("list"):
            contact_list = ContactList.objects.filter(organization=self.organization, pk=data.validated_data["list"]).first()
            if contact_list is None:
                raise exceptions.ValidationError({"list": [_("Unknown list.")]})
        result = contacts_bulk_upsert(self.organization, data.validated_data["contacts"], contact_list)
        return Response(result)

    @extend_schema(
        summary="Opt a contact out",
        description="Stops promotional messages to this person (honoured at send time, also for running campaigns).",
        request=OptOutSerializer,
        responses={200: ContactSerializer},
        examples=[example("Opt out", {"source": "call centre", "confirm": True}, request=True, response=False),
                  example("Opted out", {**CONTACT_EXAMPLE, "opted_out": True, "opted_out_at": "2026-11-26T11:00:00+09:00",
                                        "opt_out_method": "api"})],
    )
    @action(detail=True, methods=["post"], url_path="opt-out")
    def opt_out(self, request, pk=None):
        contact = self._contact()
        data = OptOutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        optout.contact_opt_out(
            contact, optout.OptOutMethod.API, data.validated_data["source"] or f"api key {self.api_key.prefix}",
            actor=self.api_key.created_by, confirm=data.validated_data["confirm"],
        )
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk), context=self.get_serializer_context()).data)

    @extend_schema(
        methods=["GET"], summary="List a contact's consent records", responses={200: ConsentSerializer(many=True)},
        examples=[example("Consents", [CONSENT_EXAMPLE])],
    )
    @extend_schema(
        methods=["POST"], summary="Record consent (prior opt-in)", request=ConsentSerializer,
        responses={201: ConsentSerializer},
        examples=[example("Grant", {"method": "web_form", "source": "https://shop.example.jp/signup",
                                    "wording_version": "2026-04"}, request=True, response=False),
                  example("Granted", CONSENT_EXAMPLE, status_codes=["201"])],
    )
    @action(detail=True, methods=["get", "post"], url_path="consents", pagination_class=None, filter_backends=[])
    def consents(self, request, pk=None):
        contact = self._contact()
        if request.method == "GET":
            return Response(ConsentSerializer(contact.consents.all(), many=True).data)
        data = ConsentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consent = optout.consent_grant(contact, actor=self.api_key.created_by, **data.validated_data)
        return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke consent", description="Revokes every active consent record of the contact.",
        request=RevokeSerializer, responses={200: RevokeResultSerializer},
        examples=[example("Revoke", {"method": "phone_call"}, request=True, response=False),
                  example("Revoked", {"revoked": 1})],
    )
    @action(detail=True, methods=["post"], url_path="consents/revoke", filter_backends=[])
    def revoke_consent(self, request, pk=None):
        contact = self._contact()
        data = RevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revoked = sum(
            optout.consent_revoke(consent, data.validated_data["method"], actor=self.api_key.created_by)
            for consent in contact.consents.filter(revoked_at__isnull=True)
        )
        return Response({"revoked": revoked})

    @extend_schema(
        summary="Erase a contact",
        description=(
            "What replaces deletion while the consent history must be kept (3 years): the name, attributes "
            "and list memberships go; the number and the consent and opt-out history stay; the person is opted out."
        ),
        request=EmptySerializer, responses={200: ContactSerializer},
        examples=[example("Erased", {**CONTACT_EXAMPLE, "name": "", "attributes": {}, "lists": [], "opted_out": True,
                                     "opted_out_at": "2026-11-26T11:00:00+09:00", "opt_out_method": "erasure"})],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def erase(self, request, pk=None):
        contact = self._contact()
        optout.contact_erase(contact, actor=self.api_key.created_by)
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk), context=self.get_serializer_context()).data)


# --- lists --------------------------------------------------------------------------------------


class ContactListSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(read_only=True, help_text="Number of members.")

    class Meta:
        model = ContactList
        fields = ["id", "name", "purpose", "description", "size", "created_at"]
        read_only_fields = ["id", "size", "created_at"]

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("This field may not be blank."), code="blank")
        others = ContactList.objects.filter(organization=self.context["organization"], name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise conflict("duplicate", _("A list with this name already exists."), "name")
        return value

    def create(self, validated_data):
        return ContactList.objects.create(organization=self.context["organization"], **validated_data)


class MembersSerializer(serializers.Serializer):
    contacts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1, max_length=BULK_MAX
    )


class MembersResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    unknown = serializers.ListField(child=serializers.IntegerField(), help_text="Ids that are not your contacts.")


LIST_EXAMPLE = {"id": 3, "name": "会員（メール配信同意）", "purpose": "promotion", "description": "", "size": 1200,
                "created_at": "2026-11-26T10:00:00+09:00"}


@extend_schema_view(
    list=extend_schema(summary="List contact lists", examples=[
        example("Lists", {"next": None, "previous": None, "results": [LIST_EXAMPLE]})]),
    retrieve=extend_schema(summary="Get a contact list", examples=[example("A list", LIST_EXAMPLE)]),
    create=extend_schema(summary="Create a contact list", examples=[
        example("New list", {"name": "会員（メール配信同意）", "purpose": "promotion"}, request=True, response=False),
        example("Created", LIST_EXAMPLE, status_codes=["201"])]),
    update=extend_schema(summary="Replace a contact list", examples=[
        example("Rename", {"name": "ゴールド会員", "purpose": "promotion", "description": ""}, request=True, response=False),
        example("Replaced", LIST_EXAMPLE)]),
    partial_update=extend_schema(summary="Update a contact list", examples=[
        example("Describe", {"description": "2026年冬キャンペーン"}, request=True, response=False),
        example("Updated", LIST_EXAMPLE)]),
    destroy=extend_schema(summary="Delete a contact list", description="Deletes the list, not its contacts.",
                          examples=[example("Not found", {"code": "not_found", "message": "Not found.", "field": None},
                                            status_codes=["404"])]),
)
class ContactListViewSet(ApiViewMixin, viewsets.ModelViewSet):
    required_scope = ApiScope.CONTACTS
    serializer_class = ContactListSerializer

    class Pagination(ApiCursorPagination):
        ordering = "id"

    pagination_class = Pagination

    def get_queryset(self):
        return ContactList.objects.filter(organization=self.organization).annotate(size=Count("memberships"))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "organization": self.organization}

    def perform_create(self, serializer):
        instance = serializer.save()
        instance.size = 0

    def perform_update(self, serializer):
        instance = serializer.save()
        instance.size = instance.memberships.count()

    def _list(self):
        return get_object_or_404(ContactList, organization=self.organization, pk=self.kwargs["pk"])

    @extend_schema(
        methods=["GET"], summary="List a list's members", responses={200: ContactSerializer(many=True)},
        parameters=[OpenApiParameter("page_size", int, description="1–500, default 50.")],
        examples=[example("Members", {"next": None, "previous": None, "results": [CONTACT_EXAMPLE]})],
    )
    @extend_schema(
        methods=["POST"], summary="Add contacts to a list", request=MembersSerializer,
        responses={200: MembersResultSerializer},
        examples=[example("Add", {"contacts": [42, 43]}, request=True, response=False),
                  example("Added", {"added": 2, "unknown": []})],
    )
    @action(detail=True, methods=["get", "post"], url_path="members", filter_backends=[])
    def members(self, request, pk=None):
        contact_list = self._list()
        if request.method == "GET":
            active = Consent.objects.filter(contact=OuterRef("pk"), revoked_at__isnull=True)
            queryset = (
                Contact.objects.filter(organization=self.organization, list_memberships__contact_list=contact_list)
                .annotate(active_consent=Exists(active))
                .prefetch_related(Prefetch("lists", queryset=ContactList.objects.only("id")))
            )
            paginator = ContactViewSet.Pagination()
            page = paginator.paginate_queryset(queryset, request, view=self)
            context = {**self.get_serializer_context()}
            return paginator.get_paginated_response(ContactSerializer(page, many=True, context=context).data)
        data = MembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = set(data.validated_data["contacts"])
        found = set(Contact.objects.filter(organization=self.organization, pk__in=wanted).values_list("pk", flat=True))
        before = ContactListMembership.objects.filter(contact_list=contact_list, contact_id__in=found).count()
        ContactListMembership.objects.bulk_create(
            [ContactListMembership(contact_list=contact_list, contact_id=pk) for pk in found],
            ignore_conflicts=True, batch_size=2000,
        )
        return Response({"added": len(found) - before, "unknown": sorted(wanted - found)})

    @extend_schema(
        summary="Remove a contact from a list", responses={204: None},
        examples=[example("Not a member", {"code": "not_found", "message": "Not found.", "field": None},
                          status_codes=["404"])],
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<contact_id>[0-9]{1,18})")
    def remove_member(self, request, pk=None, contact_id=None):
        contact_list = self._list()
        deleted, _detail = ContactListMembership.objects.filter(
            contact_list=contact_list, contact_id=int(contact_id), contact__organization=self.organization
        ).delete()
        if not deleted:
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- campaigns ----------------------------------------------------------------------------------


class CampaignSerializer(serializers.ModelSerializer):
    official_account = serializers.PrimaryKeyRelatedField(queryset=OfficialAccount.objects.none())
    audience_lists = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=ContactList.objects.none())
    exclusion_lists = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=ContactList.objects.none())
    content = serializers.JSONField(required=False, help_text="The +Message rich-content document.")
    sms_text = serializers.CharField(required=False, allow_blank=True, max_length=670, trim_whitespace=False)
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
        from api.messages import validated_rich_content

        return validated_rich_content(value)

    def validate_recurrence(self, value):
        if value:
            try:
                runs.parse_crontab(value)
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
                validate_sms_text(sms_text, limit=limit)
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
    "targeted": 1000, "skipped_opted_out": 3, "skipped_no_consent": 10, "queued": 0, "sent": 987, "delivered": 950,
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

    def _run(self, service, permissions: set[str], *args):
        role_required(self, permissions)
        campaign = get_object_or_404(
            Campaign.objects.select_related("official_account__sms_gateway", "organization"),
            organization=self.organization, pk=self.kwargs["pk"],
        )
        try:
            service(campaign, self.api_key.created_by, *args)
        except TransitionError as error:
            raise conflict(getattr(error, "code", None) or "invalid_transition", " ".join(error.messages)) from None
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @_action_schema("Submit for approval", "Checks the campaign and moves a draft to pending approval.",
                    "pending_approval")
    @action(detail=True, methods=["post"], filter_backends=[])
    def submit(self, request, pk=None):
        return self._run(services.campaign_submit, {"compose"})

    @_action_schema(
        "Approve", "Approves a campaign pending approval. The key's creator must be an owner or admin "
        "(a key acts with its creator's current role).", "approved")
    @action(detail=True, methods=["post"], filter_backends=[])
    def approve(self, request, pk=None):
        return self._run(services.campaign_approve, {"approve"})

    @_action_schema("Launch", "Launches an approved campaign now, at `scheduled_at`, or on its `recurrence`. "
                    "Promotions wait for the end of quiet hours.", "running")
    @action(detail=True, methods=["post"], filter_backends=[])
    def launch(self, request, pk=None):
        return self._run(self._launch, {"compose", "approve"})

    @staticmethod
    def _launch(campaign, user):
        if campaign.status != CampaignStatus.APPROVED:
            raise conflict("invalid_transition", _("Only an approved campaign can be launched."))
        return runs.campaign_launch(campaign, user)

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


ROUTES = [
    ("contacts", ContactViewSet, "contact"),
    ("lists", ContactListViewSet, "list"),
    ("campaigns", CampaignViewSet, "campaign"),
]
