"""Checking a segment's conditions and saving it (campaigns.segments)."""

import pytest

from campaigns.models import CustomField, FieldKind, Segment
from campaigns.segments import SegmentInvalid, condition_clean, conditions_clean, segment_save
from tests.accounts.factories import OrganizationFactory
from tests.campaigns.factories import CampaignFactory, ContactListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def org():
    organization = OrganizationFactory()
    CustomField.objects.create(organization=organization, key="rank", label="会員ランク", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    CustomField.objects.create(organization=organization, key="points", label="ポイント", kind=FieldKind.NUMBER)
    return organization


def test_field_values_are_stored_as_the_field_stores_them(org):
    assert condition_clean(org.id, {"type": "field", "field": "points", "op": "gt", "value": "１，０００"}) == {
        "type": "field", "field": "points", "op": "gt", "value": 1000}
    assert condition_clean(org.id, {"type": "field", "field": "rank", "op": "set", "value": "x"}) == {
        "type": "field", "field": "rank", "op": "set"}


def test_every_bad_row_gets_its_own_message(org):
    other_list = ContactListFactory()  # another organization's list
    cleaned, errors = conditions_clean(org.id, [
        {"type": "field", "field": "rank", "op": "lt", "value": "ゴールド"},  # no order on a choice
        {"type": "field", "field": "rank", "op": "eq", "value": "プラチナ"},
        {"type": "list", "op": "in", "list": other_list.pk},
        {"type": "engagement", "action": "clicked", "op": "did", "days": "0"},
        {"type": "engagement", "action": "clicked", "op": "did", "campaign": CampaignFactory().pk, "days": 30},
        {"type": "created", "op": "after", "value": "someday"},
        {"type": "opted_out", "op": "no"},
    ])
    assert cleaned == [{"type": "opted_out", "op": "no"}]
    assert errors[0] == ["Choose a comparison."]
    assert "is not one of the choices" in errors[1][0]
    assert errors[2] == ["Choose a list."]
    assert "1 to 3650" in errors[3][0]
    assert errors[4] == ["Choose a campaign."]
    assert "2024-04-01" in errors[5][0]


def test_segment_save_checks_name_and_conditions(org):
    segment = segment_save(Segment(organization=org, name=" ゴールド会員 ", match="all"),
                           [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}])
    assert segment.name == "ゴールド会員"
    assert segment.conditions == [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}]
    with pytest.raises(SegmentInvalid) as error:
        segment_save(Segment(organization=org, name="ゴールド会員", match="all"), [])
    assert error.value.errors == {"name": ["A segment with this name already exists."]}
    with pytest.raises(SegmentInvalid) as error:
        segment_save(Segment(organization=org, name="", match="all"), [{"type": "nope"}])
    assert set(error.value.errors) == {"name", "conditions"}
