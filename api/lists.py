"""API for contact lists and their members (adding, listing and removing contacts).

Every queryset is limited to the API key's organization, so another organization's ids answer 404.
"""

from __future__ import annotations

from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiScope
from api.auth import MAX_ID, ApiViewMixin
from api.contacts import BULK_MAX, CONTACT_EXAMPLE, ContactSerializer, contacts_shown
from api.errors import conflict
from api.schema import OldestFirstPagination, example
from campaigns.models import Contact, ContactList, ContactListMembership


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

    pagination_class = OldestFirstPagination

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
            queryset = contacts_shown(self.organization).filter(list_memberships__contact_list=contact_list)
            paginator = OldestFirstPagination()
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
