"""Contacts, consent, opt-out, bulk upsert, lists and memberships."""

import pytest
from django.utils import timezone

from accounts.models import WebhookDelivery
from audit.models import AuditEvent
from campaigns.models import Consent, Contact, ContactList, ContactListMembership
from messaging.outbound_webhooks import connect_receivers, endpoint_create
from tests.campaigns.factories import ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def test_create_normalizes_the_number_records_consent_and_lists(api, tenant):
    contact_list = ContactListFactory(organization=tenant.organization)
    response = api.post("/api/v1/contacts/", {
        "phone": "０９０－１２３４－５６７８", "name": "山田 太郎", "attributes": {"rank": "gold"}, "lists": [contact_list.pk],
        "consent": {"method": "web_form", "source": "https://shop.example.jp", "wording_version": "v2"},
    }, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["phone"] == "+819012345678" and body["lists"] == [contact_list.pk] and body["has_consent"] is True
    contact = Contact.objects.get(pk=body["id"])
    assert contact.consents.get().wording_version == "v2"
    assert AuditEvent.objects.filter(action="consent.granted").exists()
    duplicate = api.post("/api/v1/contacts/", {"phone": "09012345678"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json() == {
        "code": "duplicate", "message": "A contact with this number already exists.", "field": "phone"}


def test_update_and_validation(api, tenant):
    contact = ContactFactory(organization=tenant.organization)
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"name": "新しい名前", "attributes": {"a": 1}}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "新しい名前"
    assert api.patch(f"/api/v1/contacts/{contact.pk}/", {"phone": "0312345678"}, format="json").json()["field"] == "phone"
    assert api.patch(f"/api/v1/contacts/{contact.pk}/", {"attributes": [1]}, format="json").status_code == 400
    full = api.put(f"/api/v1/contacts/{contact.pk}/", {"phone": "080-1111-2222", "lists": []}, format="json")
    assert full.status_code == 200 and full.json()["phone"] == "+818011112222"


def test_list_filters_and_cursor_pagination(api, tenant):
    contacts = [ContactFactory(organization=tenant.organization, name=f"客{i}") for i in range(5)]
    contacts[0].opted_out_at = timezone.now()
    contacts[0].save()
    ConsentFactory(contact=contacts[1])
    contact_list = ContactListFactory(organization=tenant.organization)
    ContactListMembership.objects.create(contact_list=contact_list, contact=contacts[2])
    page = api.get("/api/v1/contacts/?page_size=2").json()
    assert [c["id"] for c in page["results"]] == [contacts[0].pk, contacts[1].pk]
    page2 = api.get(page["next"]).json()
    assert [c["id"] for c in page2["results"]] == [contacts[2].pk, contacts[3].pk]
    assert [c["id"] for c in api.get("/api/v1/contacts/?opted_out=true").json()["results"]] == [contacts[0].pk]
    assert [c["id"] for c in api.get("/api/v1/contacts/?has_consent=true").json()["results"]] == [contacts[1].pk]
    assert [c["id"] for c in api.get(f"/api/v1/contacts/?list={contact_list.pk}").json()["results"]] == [contacts[2].pk]
    phone = contacts[3].phone.replace("+81", "0")
    assert [c["id"] for c in api.get(f"/api/v1/contacts/?phone={phone}").json()["results"]] == [contacts[3].pk]
    assert api.get("/api/v1/contacts/?phone=abc").status_code == 400
    assert api.get("/api/v1/contacts/?cursor=garbage").status_code == 400
    assert api.get("/api/v1/contacts/?page_size=0").status_code == 400


def test_delete_contact_and_retention(api, tenant):
    fresh = ContactFactory(organization=tenant.organization)
    assert api.delete(f"/api/v1/contacts/{fresh.pk}/").status_code == 204
    kept = ContactFactory(organization=tenant.organization)
    ConsentFactory(contact=kept)
    response = api.delete(f"/api/v1/contacts/{kept.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "protected"
    erased = api.post(f"/api/v1/contacts/{kept.pk}/erase/", {}, format="json").json()
    assert erased["name"] == "" and erased["opted_out"] is True


def test_consent_grant_list_and_revoke(api, tenant):
    contact = ContactFactory(organization=tenant.organization)
    granted = api.post(f"/api/v1/contacts/{contact.pk}/consents/",
                       {"source": "店頭", "wording_version": "v3", "method": "in_store"}, format="json")
    assert granted.status_code == 201 and granted.json()["method"] == "in_store"
    assert len(api.get(f"/api/v1/contacts/{contact.pk}/consents/").json()) == 1
    bad = api.post(f"/api/v1/contacts/{contact.pk}/consents/", {"source": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "wording_version"
    revoked = api.post(f"/api/v1/contacts/{contact.pk}/consents/revoke/", {"method": "phone"}, format="json")
    assert revoked.json() == {"revoked": 1}
    assert Consent.objects.get(contact=contact).revoked_at is not None


def test_opt_out_is_recorded_once_and_announced(api, tenant, _no_enqueue):
    connect_receivers()
    endpoint_create(tenant.organization, "https://hooks.example.jp/pm", ["contact.opted_out"])
    contact = ContactFactory(organization=tenant.organization)
    ConsentFactory(contact=contact)
    body = api.post(f"/api/v1/contacts/{contact.pk}/opt-out/", {"confirm": False}, format="json").json()
    assert body["opted_out"] is True and body["opt_out_method"] == "api" and body["has_consent"] is False
    api.post(f"/api/v1/contacts/{contact.pk}/opt-out/", {"confirm": False}, format="json")
    events = list(WebhookDelivery.objects.filter(event_type="contact.opted_out"))
    assert len(events) == 1
    assert events[0].payload["data"]["contact"] == {
        "id": contact.pk, "phone": contact.phone, "method": "api",
        "opted_out_at": events[0].payload["data"]["contact"]["opted_out_at"],
    }


def test_bulk_upsert_keeps_good_rows_and_reports_bad_ones(api, tenant):
    existing = ContactFactory(organization=tenant.organization, phone="+819011110000", name="既存",
                              attributes={"keep": "yes"})
    contact_list = ContactListFactory(organization=tenant.organization)
    rows = [
        {"phone": "090-1111-0000", "attributes": {"rank": "gold"}},  # update, name kept, attributes merged
        {"phone": "090-1111-0001", "name": "新規", "consent": {"source": "web", "wording_version": "v1"}},
        {"phone": "050-1111-0002"},
        {"phone": "090-1111-0001"},
        {"phone": "090-1111-0003", "consent": {"source": "web"}},
        "not an object",
        {"phone": "090-1111-0004", "attributes": {"x": {"nested": 1}}},
    ]
    response = api.post("/api/v1/contacts/bulk/", {"contacts": rows, "list": contact_list.pk}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["created"] == 1 and body["updated"] == 1
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (2, "phone"), (3, "phone"), (4, "consent.wording_version"), (5, None), (6, "attributes")]
    assert body["errors"][0]["code"] == "voip"
    existing.refresh_from_db()
    assert existing.name == "既存" and existing.attributes == {"keep": "yes", "rank": "gold"}
    assert Contact.objects.get(phone="+819011110001").consents.count() == 1
    assert ContactListMembership.objects.filter(contact_list=contact_list).count() == 2


def test_bulk_upsert_an_empty_name_keeps_the_stored_name_and_a_given_one_replaces_it(api, tenant):
    # The one contact upsert (campaigns.contacts) behaves alike for the API and the console's import.
    kept = ContactFactory(organization=tenant.organization, phone="+819011110000", name="既存")
    renamed = ContactFactory(organization=tenant.organization, phone="+819011110001", name="旧姓")
    rows = [{"phone": "090-1111-0000", "name": ""}, {"phone": "090-1111-0001", "name": "新姓"},
            {"phone": "090-1111-0002", "name": ""}]
    response = api.post("/api/v1/contacts/bulk/", {"contacts": rows}, format="json")
    assert response.status_code == 200 and response.json() == {"created": 1, "updated": 2, "errors": []}
    kept.refresh_from_db()
    renamed.refresh_from_db()
    assert kept.name == "既存" and renamed.name == "新姓"
    assert Contact.objects.get(organization=tenant.organization, phone="+819011110002").name == ""


def test_bulk_upsert_takes_ten_thousand_rows_and_no_more(api, tenant):
    rows = [{"phone": f"+8170{20000000 + i:08d}"} for i in range(10_000)]
    response = api.post("/api/v1/contacts/bulk/", {"contacts": rows}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 10_000
    too_many = api.post("/api/v1/contacts/bulk/", {"contacts": rows + rows[:1]}, format="json")
    assert too_many.status_code == 400 and too_many.json()["field"] == "contacts"


def test_lists_and_memberships(api, tenant, other):
    created = api.post("/api/v1/lists/", {"name": "会員", "purpose": "promotion"}, format="json")
    assert created.status_code == 201 and created.json()["size"] == 0
    list_id = created.json()["id"]
    assert api.post("/api/v1/lists/", {"name": "会員"}, format="json").status_code == 409
    mine = [ContactFactory(organization=tenant.organization) for _ in range(3)]
    foreign = ContactFactory(organization=other.organization)
    added = api.post(f"/api/v1/lists/{list_id}/members/", {"contacts": [c.pk for c in mine] + [foreign.pk]},
                     format="json").json()
    assert added == {"added": 3, "unknown": [foreign.pk]}
    assert api.post(f"/api/v1/lists/{list_id}/members/", {"contacts": [mine[0].pk]}, format="json").json()["added"] == 0
    members = api.get(f"/api/v1/lists/{list_id}/members/").json()["results"]
    assert sorted(m["id"] for m in members) == sorted(c.pk for c in mine)
    assert api.get(f"/api/v1/lists/{list_id}/").json()["size"] == 3
    assert api.delete(f"/api/v1/lists/{list_id}/members/{mine[0].pk}/").status_code == 204
    assert api.delete(f"/api/v1/lists/{list_id}/members/{mine[0].pk}/").status_code == 404
    assert api.patch(f"/api/v1/lists/{list_id}/", {"description": "冬"}, format="json").json()["size"] == 2
    assert api.put(f"/api/v1/lists/{list_id}/", {"name": "会員2", "purpose": "transaction"}, format="json").status_code == 200
    assert api.get("/api/v1/lists/").json()["results"][0]["name"] == "会員2"
    assert api.delete(f"/api/v1/lists/{list_id}/").status_code == 204
    assert not ContactList.objects.filter(pk=list_id).exists() and Contact.objects.filter(pk=mine[0].pk).exists()
