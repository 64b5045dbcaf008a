"""The segment builder pages: rows added and re-drawn with HTMX, the live count, saving, tenancy."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.models import CustomField, FieldKind, Segment
from tests.accounts.factories import OrganizationFactory, member
from tests.campaigns.factories import ConsentFactory, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def org():
    organization = OrganizationFactory()
    CustomField.objects.create(organization=organization, key="rank", label="会員ランク", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    CustomField.objects.create(organization=organization, key="birthday", label="誕生日", kind=FieldKind.DATE)
    return organization


@pytest.fixture
def marketer(client, org):
    client.force_login(member(org, Role.MARKETER))
    return client


def test_empty_state_says_what_to_do(marketer):
    page = marketer.get(reverse("contacts:segments")).content.decode()
    assert "No segments yet" in page and reverse("contacts:segment_create") in page


def test_adding_a_row_takes_the_next_index_and_the_chosen_kind(marketer):
    response = marketer.post(reverse("contacts:segment_row"),
                             {"rows": ["0", "3"], "add": "1", "add_type": "engagement"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert 'id="condition-4"' in page and 'name="c-4-action"' in page and 'name="c-4-days"' in page
    assert response["HX-Trigger-After-Settle"] == "segment-changed"


def test_a_row_redrawn_for_its_field_offers_that_fields_comparisons_and_input(marketer):
    response = marketer.post(reverse("contacts:segment_row"),
                             {"rows": ["2"], "c-2-type": "field", "c-2-field": "birthday", "c-2-op": "contains"})
    page = response.content.decode()
    assert 'type="date"' in page and 'value="lt"' in page and 'value="contains"' not in page
    response = marketer.post(reverse("contacts:segment_row"),
                             {"rows": ["2"], "c-2-type": "field", "c-2-field": "rank", "c-2-op": "eq"})
    page = response.content.decode()
    assert "<option value=\"ゴールド\"" in page and 'value="lt"' not in page


def test_the_live_count_follows_the_conditions(marketer, org):
    gold = ContactFactory(organization=org, attributes={"rank": "ゴールド"})
    ConsentFactory(contact=gold)
    ContactFactory(organization=org, attributes={"rank": "ゴールド"}, opted_out_at=timezone.now())
    ContactFactory(organization=org, attributes={"rank": "シルバー"})
    ContactFactory(attributes={"rank": "ゴールド"})  # another organization
    url = reverse("contacts:segment_count")
    everyone = marketer.post(url, {"match": "all"}).content.decode()
    assert 'data-count="3"' in everyone
    gold_page = marketer.post(url, {"match": "all", "rows": ["0"], "c-0-type": "field", "c-0-field": "rank",
                                    "c-0-op": "eq", "c-0-value": "ゴールド"}).content.decode()
    assert 'data-count="2"' in gold_page and "1 of them can receive promotions" in gold_page
    unfinished = marketer.post(url, {"match": "all", "rows": ["0"], "c-0-type": "field", "c-0-field": "rank",
                                     "c-0-op": "eq", "c-0-value": ""}).content.decode()
    assert 'data-count="3"' in unfinished and "1 unfinished condition is not counted." in unfinished


def test_saving_checks_every_row_and_keeps_what_was_typed(marketer, org):
    url = reverse("contacts:segment_create")
    response = marketer.post(url, {"name": "", "match": "all", "rows": ["0", "1"],
                                   "c-0-type": "field", "c-0-field": "rank", "c-0-op": "eq", "c-0-value": "ゴールド",
                                   "c-1-type": "engagement", "c-1-action": "clicked", "c-1-op": "did",
                                   "c-1-days": "0"})
    page = response.content.decode()
    assert response.status_code == 422
    assert "Give the segment a name." in page and "1 to 3650" in page
    assert 'id="condition-1"' in page and 'value="0"' in page
    response = marketer.post(url, {"name": "ゴールド会員で30日以内にクリックした人", "match": "all", "rows": ["0", "1"],
                                   "c-0-type": "field", "c-0-field": "rank", "c-0-op": "eq", "c-0-value": "ゴールド",
                                   "c-1-type": "engagement", "c-1-action": "clicked", "c-1-op": "did",
                                   "c-1-days": "30"})
    assert response.status_code == 302
    segment = Segment.objects.get(organization=org)
    assert segment.conditions == [
        {"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"},
        {"type": "engagement", "action": "clicked", "op": "did", "campaign": None, "days": 30},
    ]
    page = marketer.get(reverse("contacts:segment_edit", args=[segment.pk])).content.decode()
    assert 'id="condition-1"' in page and 'value="30"' in page and "selected>ゴールド" in page


def test_another_organizations_segment_is_404_and_a_viewer_cannot_build(client, org):
    stranger = Segment.objects.create(organization=OrganizationFactory(), name="x")
    client.force_login(member(org, Role.MARKETER))
    assert client.get(reverse("contacts:segment_edit", args=[stranger.pk])).status_code == 404
    assert client.post(reverse("contacts:segment_delete", args=[stranger.pk])).status_code == 404
    client.force_login(member(org, Role.VIEWER))
    assert client.get(reverse("contacts:segments")).status_code == 200
    assert client.get(reverse("contacts:segment_create")).status_code == 403


def test_the_builder_speaks_japanese(client, org, settings):
    settings.LANGUAGE_CODE = "ja"
    client.force_login(member(org, Role.MARKETER))
    page = client.get(reverse("contacts:segment_create"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "新しいセグメント" in page and "条件を追加" in page and "人が一致" in page
    row = client.post(reverse("contacts:segment_row"), {"add": "1", "add_type": "engagement"},
                      HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "クリックした" in row and "過去N日以内" in row


def test_the_row_named_by_redraw_is_redrawn_when_the_whole_form_is_posted(marketer):
    response = marketer.post(reverse("contacts:segment_row"), {
        "rows": ["0", "1"], "redraw": "1", "c-0-type": "field", "c-0-field": "rank",
        "c-1-type": "carrier", "c-1-op": "eq", "c-1-value": "au"})
    page = response.content.decode()
    assert 'id="condition-1"' in page and 'id="condition-0"' not in page and 'value="docomo"' in page
