"""The disclosure export (開示請求): everything held about one person as one JSON file, from the
contact page, for owners and admins only, audited, scoped to the organization."""

import json

import pytest
from django.urls import reverse

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.optout import OptOutMethod, contact_opt_out
from tests.accounts.factories import member
from tests.compliance.conftest import Person

pytestmark = pytest.mark.django_db


def test_disclosure_export_holds_everything_about_the_person(client, person, bystander):
    contact_opt_out(person.contact, OptOutMethod.KEYWORD, "停止", confirm=False)
    admin = member(person.organization, Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("contacts:detail", args=[person.contact.pk]))
    assert reverse("contact_disclosure", args=[person.contact.pk]) in page.content.decode()

    response = client.get(reverse("contact_disclosure", args=[person.contact.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["contact"]["mobile_number"] == person.contact.phone
    assert data["contact"]["name"] == "山田 花子 a" and data["contact"]["attributes"]["rank"] == "gold"
    assert data["contact"]["opt_out_method"] == OptOutMethod.KEYWORD
    assert [item["name"] for item in data["lists"]] == ["会員 a"]
    assert data["consents"][0]["source"] == "https://shop.example.jp/signup"
    assert data["consents"][0]["revoked_at"] is not None
    assert {"action": "contact.opted_out"}.items() <= data["consent_history"][0].items()
    assert data["consent_history"][0]["source"] == "停止"
    by_id = {row["message_id"]: row for row in data["deliveries"]}
    assert set(by_id) == {str(d.uuid) for d in (person.campaign_delivery, person.single_done, person.single_queued)}
    assert by_id[str(person.single_done.uuid)]["sms_text"] == "ご予約の確認 a"
    assert by_id[str(person.campaign_delivery.uuid)]["status"] == "read"
    [conversation] = data["conversations"]
    assert conversation["official_account"] == "公式 a"
    messages = conversation["messages"]
    assert {m["text"] for m in messages} >= {"明日の予約を変更したい a", "承知しました a"}
    assert {"latitude": 35.6895, "longitude": 139.6917} in [m["location"] for m in messages]
    assert {"name": person.file_name, "type": "image/png"} in [m["file"] for m in messages]
    text = response.content.decode()
    assert "山田 花子 b" not in text and "明日の予約を変更したい b" not in text  # nobody else's data

    event = AuditEvent.objects.get(action="export.disclosure")
    assert event.actor_id == admin.pk and event.target_id == str(person.contact.pk)
    assert event.organization_id == person.organization.pk


@pytest.mark.parametrize("role", [Role.MARKETER, Role.OPERATOR, Role.VIEWER])
def test_disclosure_export_is_for_owners_and_admins_only(client, person, role):
    client.force_login(member(person.organization, role))
    assert client.get(reverse("contact_disclosure", args=[person.contact.pk])).status_code == 403
    assert not AuditEvent.objects.filter(action="export.disclosure").exists()


def test_disclosure_export_of_another_organization_answers_404(client, person):
    outsider = Person(tag="x")
    try:
        client.force_login(member(outsider.organization, Role.OWNER))
        assert client.get(reverse("contact_disclosure", args=[person.contact.pk])).status_code == 404
    finally:
        outsider.storage.delete(outsider.file_name)
