"""API for contacts: create, read, update and delete, bulk upsert, consent records, opt-out and erasure.

Views parse input and call services: phone numbers go through ``core.phone.normalize_mobile``, the
bulk upsert writes through ``campaigns.contacts.contacts_upsert`` (the same service as the console's
import: a row without a name, or with an empty one, keeps the stored name, attributes are merged),
consent and opt-out through ``campaigns.optout``.

Every queryset is limited to the API key's organization, so another organization's ids answer 404.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiScope
from api.auth import MAX_ID, ApiViewMixin, reject_nul
from api.errors import conflict, flatten_validation
from api.fields import EmptySerializer, clean_phone
from api.schema import OldestFirstPagination, example
from campaigns import optout
from campaigns.contacts import ContactRow, contacts_upsert
from campaigns.models import Consent, ConsentMethod, Contact, ContactList, ContactListMembership
from core.phone import normalize_mobile

BULK_MAX = 10_000
ATTRIBUTES_MAX = 50


def contacts_shown(organization):
    """The organization's contacts as the API shows them: with ``active_consent`` and their list ids."""
    active = Consent.objects.filter(contact=OuterRef("pk"), revoked_at__isnull=True)
    return (
        Contact.objects.filter(organization=organization)
        .annotate(active_consent=Exists(active))
        .prefetch_related(Prefetch("lists", queryset=ContactList.objects.only("id")))
    )


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
    attributes = serializers.JSONField(required=False, help_text="Custom attributes for personalization.")
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


def _bulk_row(index: int, row, now) -> tuple[ContactRow | None, dict | None]:
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
            first = flatten_validation(serializer.errors, "consent")[0]
            return bad(first["code"], first["message"], first["field"])
        consent = dict(serializer.validated_data)
        consent.setdefault("granted_at", now)
    return ContactRow(phone=phone, name=name, attributes=attributes, consent=consent), None


def bulk_rows(rows: list) -> tuple[list[ContactRow], list[dict]]:
    """The good rows of a bulk upsert, and an error for each bad one (a repeated number included)."""
    now = timezone.now()
    good: list[ContactRow] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        item, error = _bulk_row(index, row, now)
        if error:
            errors.append(error)
            continue
        if item.phone in seen:
            errors.append({
                "index": index, "code": "duplicate", "field": "phone",
                "message": _("Duplicate: the same number is in row %(row)d.") % {"row": seen[item.phone]},
            })
            continue
        seen[item.phone] = index
        good.append(item)
    return good, errors


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

    pagination_class = OldestFirstPagination

    def get_queryset(self):
        return contacts_shown(self.organization)

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
            "with its index and reason; every good row is kept. A row without a name, or with an empty one, keeps "
            "the stored name; attributes are merged."
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
        good, errors = bulk_rows(data.validated_data["contacts"])
        counts = contacts_upsert(self.organization.pk, good, contact_list_id=contact_list.pk if contact_list else None)
        return Response({"created": counts.created, "updated": counts.updated, "errors": errors})

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
            optout.consent_ledger_export_record(contact, actor=self.api_key.created_by, request=request,
                                                api_key=self.api_key)
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
