"""Typed custom fields: conversion, the import mapping to them, the field pages and the contact form."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role
from campaigns.fields import contact_fields_update, custom_field_save, field_value_convert
from campaigns.imports import TARGET_FIELD_PREFIX, import_job_create, import_job_run, import_job_set_mapping
from campaigns.models import Contact, CustomField, FieldKind, ListPurpose
from tests.accounts.factories import OrganizationFactory, UserFactory, member
from tests.campaigns.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def org():
    return OrganizationFactory()


def make_field(org, key, kind, choices=(), label=None):
    return CustomField.objects.create(organization=org, key=key, label=label or key, kind=kind, choices=list(choices))


@pytest.mark.parametrize(
    ("kind", "raw", "stored"),
    [
        (FieldKind.TEXT, "  東京本店 ", "東京本店"),
        (FieldKind.NUMBER, "1,200", 1200),
        (FieldKind.NUMBER, "１２００", 1200),
        (FieldKind.NUMBER, "3.5", 3.5),
        (FieldKind.DATE, "2024/4/1", "2024-04-01"),
        (FieldKind.DATE, "2024年4月1日", "2024-04-01"),
        (FieldKind.DATE, "20240401", "2024-04-01"),
        (FieldKind.DATE, "2024-04-01T00:00:00", "2024-04-01"),
        (FieldKind.CHOICE, "ｺﾞｰﾙﾄﾞ", "ゴールド"),
        (FieldKind.TEXT, "", None),
    ],
)
def test_values_are_converted_to_their_stored_form(org, kind, raw, stored):
    field = make_field(org, "f", kind, choices=["ゴールド", "シルバー"])
    assert field_value_convert(field, raw) == stored


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (FieldKind.NUMBER, "abc", "is not a number"),
        (FieldKind.DATE, "2024-13-01", "is not a date"),
        (FieldKind.CHOICE, "プラチナ", "is not one of the choices"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(org, kind, raw, message):
    field = make_field(org, "rank", kind, choices=["ゴールド"], label="会員ランク")
    with pytest.raises(ValidationError) as error:
        field_value_convert(field, raw)
    assert message in error.value.messages[0] and "会員ランク" in error.value.messages[0]


def test_a_field_key_is_unique_and_a_choice_field_needs_choices(org):
    make_field(org, "rank", FieldKind.TEXT)
    with pytest.raises(ValidationError) as error:
        custom_field_save(CustomField(organization=org, key="rank", label="x", kind=FieldKind.CHOICE))
    assert set(error.value.message_dict) == {"key", "choices"}
    other = custom_field_save(CustomField(organization=OrganizationFactory(), key="rank", label="x"))
    assert other.pk


def test_contact_fields_update_stores_typed_values_and_clears_empty_ones(org):
    make_field(org, "points", FieldKind.NUMBER)
    make_field(org, "birthday", FieldKind.DATE)
    contact = ContactFactory(organization=org, attributes={"points": 5, "legacy": "x"})
    contact_fields_update(contact, {"points": "", "birthday": "1990/1/2"})
    contact.refresh_from_db()
    assert contact.attributes == {"legacy": "x", "birthday": "1990-01-02"}
    with pytest.raises(ValidationError) as error:
        contact_fields_update(contact, {"points": "many"})
    assert list(error.value.message_dict) == ["points"]


def test_import_maps_columns_to_typed_fields_and_refuses_bad_values(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    make_field(org, "rank", FieldKind.CHOICE, choices=["ゴールド", "シルバー"], label="会員ランク")
    make_field(org, "points", FieldKind.NUMBER, label="ポイント")
    data = (
        "電話番号,会員ランク,ポイント\r\n"
        "090-1234-5678,ゴールド,\"1,200\"\r\n"
        "080-2222-3333,プラチナ,10\r\n"
        "070-3333-4444,シルバー,たくさん\r\n"
    ).encode()
    contact_list = ContactListFactory(organization=org, purpose=ListPurpose.TRANSACTION)
    job = import_job_create(org, UserFactory(), SimpleUploadedFile("c.csv", data), contact_list)
    # Columns named after a field's label (or key) are mapped to it.
    assert job.mapping["1"] == f"{TARGET_FIELD_PREFIX}rank"
    assert job.mapping["2"] == f"{TARGET_FIELD_PREFIX}points"
    import_job_set_mapping(job, job.mapping, {})
    job = import_job_run(job)
    assert (job.created_count, job.error_count) == (1, 2)
    reasons = {error["row"]: error["reason"] for error in job.row_errors}
    assert "is not one of the choices" in reasons[3]
    assert "is not a number" in reasons[4]
    assert Contact.objects.get(organization=org).attributes == {"rank": "ゴールド", "points": 1200}


def test_mapping_the_same_field_twice_is_refused(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    make_field(org, "rank", FieldKind.TEXT)
    contact_list = ContactListFactory(organization=org, purpose=ListPurpose.TRANSACTION)
    job = import_job_create(org, UserFactory(), SimpleUploadedFile("c.csv", b"tel,a,b\r\n09012345678,x,y\r\n"),
                            contact_list)
    mapping = {"0": "phone", "1": "field:rank", "2": "field:rank"}
    with pytest.raises(ValidationError):
        import_job_set_mapping(job, mapping, {})


def test_field_pages_and_the_contact_form(client, org):
    client.force_login(member(org, Role.MARKETER))
    response = client.get(reverse("contacts:fields"))
    assert "No custom fields yet" in response.content.decode()
    response = client.post(
        reverse("contacts:field_create"),
        {"label": "会員ランク", "key": "rank", "kind": "choice", "choices_text": "ゴールド\nシルバー"},
    )
    assert response.status_code == 302
    field = CustomField.objects.get(organization=org)
    assert field.choices == ["ゴールド", "シルバー"]
    response = client.post(reverse("contacts:field_create"), {"label": "x", "key": "rank", "kind": "text"})
    assert "A field with this key already exists." in response.content.decode()

    contact = ContactFactory(organization=org)
    url = reverse("contacts:contact_fields", args=[contact.pk])
    response = client.post(url, {"rank": "プラチナ"})
    assert response.status_code == 200  # the choice widget refuses a value not offered
    assert client.post(url, {"rank": "シルバー"}).status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"rank": "シルバー"}
    other = ContactFactory()
    assert client.get(reverse("contacts:contact_fields", args=[other.pk])).status_code == 404


def test_a_viewer_cannot_define_fields(client, org):
    client.force_login(member(org, Role.VIEWER))
    assert client.get(reverse("contacts:fields")).status_code == 200
    assert client.get(reverse("contacts:field_create")).status_code == 403


@pytest.mark.parametrize("key", ["a__b", "2024", "contains", "has key", "a\"b"])
def test_keys_that_cannot_name_a_path_into_the_attributes_are_refused(org, key):
    with pytest.raises(ValidationError) as error:
        custom_field_save(CustomField(organization=org, key=key, label="x"))
    assert "key" in error.value.message_dict
