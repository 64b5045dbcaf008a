"""The audit log: append-only at the database level, sign-ins and refusals recorded, the admin page."""

import csv
import io

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from accounts.models import Role
from audit.models import AuditEvent
from audit.services import ACTION_LABELS, audit_record
from tests.accounts.factories import PASSWORD, OrganizationFactory, member

pytestmark = pytest.mark.django_db


def _event():
    organization = OrganizationFactory()
    return audit_record("export.contacts", organization=organization, actor_label="someone", details={"n": 1})


def test_audit_table_refuses_update_from_the_application_connection():
    event = _event()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET action = %s WHERE id = %s", ["tampered", event.pk])
    event.refresh_from_db()
    assert event.action == "export.contacts"


def test_audit_table_refuses_delete_from_the_application_connection():
    event = _event()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_orm_update_and_delete_are_refused_too():
    event = _event()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ValueError):
        event.save()
    assert AuditEvent.objects.filter(pk=event.pk, actor_label="someone").exists()


def test_audit_records_sign_in_and_failed_sign_in(client):
    organization = OrganizationFactory()
    user = member(organization, Role.OPERATOR, username="audit-login")
    response = client.post(reverse("login"), {"username": "audit-login", "password": "wrong"})
    assert response.status_code == 200
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.actor_label == "audit-login" and failed.ip_address == "127.0.0.1"
    response = client.post(reverse("login"), {"username": "audit-login", "password": PASSWORD})
    assert response.status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor_id == user.pk


def test_audit_records_permission_refusals(client):
    organization = OrganizationFactory()
    viewer = member(organization, Role.VIEWER)
    client.force_login(viewer)
    response = client.get(reverse("audit_log"))
    assert response.status_code == 403
    refused = AuditEvent.objects.get(action="permission.refused")
    assert refused.organization_id == organization.pk
    assert refused.actor_id == viewer.pk
    assert refused.details["permission"] == "manage"


def test_audit_page_is_for_admins_filters_and_exports(client):
    organization = OrganizationFactory()
    other = OrganizationFactory()
    admin = member(organization, Role.ADMIN, username="audit-admin")
    audit_record("campaign.launched", organization=organization, actor_label="marketer-a", target_label="冬のセール")
    audit_record("export.contacts", organization=organization, actor_label="marketer-b")
    audit_record("campaign.launched", organization=other, actor_label="elsewhere", target_label="他社")
    client.force_login(admin)
    page = client.get(reverse("audit_log"), {"action": "campaign."}).content.decode()
    assert "冬のセール" in page and "marketer-b" not in page and "他社" not in page
    response = client.get(reverse("audit_export"), {"who": "marketer"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "marketer-a" in body and "marketer-b" in body and "elsewhere" not in body
    assert AuditEvent.objects.filter(action="export.audit", organization_id=organization.pk).exists()


def test_audit_page_shows_the_total_and_pages_by_time(client, settings):
    organization = OrganizationFactory()
    for index in range(105):
        audit_record("export.contacts", organization=organization, actor_label=f"actor-{index:03d}")
    client.force_login(member(organization, Role.ADMIN, username="audit-pager"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("audit_log"), {"action": "export."}).content.decode()
    assert "1–100 of 105" in page and "actor-104" in page and "actor-004" not in page
    older = client.get(reverse("audit_log"), {"action": "export.", "page": "last"}).content.decode()
    assert "101–105 of 105" in older and "actor-000" in older and "actor-005" not in older
    oldest_first = client.get(reverse("audit_log"), {"action": "export.", "sort": "time"}).content.decode()
    assert oldest_first.index("actor-000") < oldest_first.index("actor-001")
    unknown = client.get(reverse("audit_log"), {"action": "export.", "sort": "actor_label"}).content.decode()
    assert unknown.index("actor-104") < unknown.index("actor-103")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    assert "1–100 / 105件" in client.get(reverse("audit_log"), {"action": "export."}).content.decode()


def test_audit_csv_neutralises_formula_cells(client):
    organization = OrganizationFactory()
    admin = member(organization, Role.OWNER)
    audit_record("auth.login_failed", organization=organization, actor_label="=HYPERLINK(\"x\")")
    client.force_login(admin)
    body = b"".join(client.get(reverse("audit_export")).streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in body


def test_audit_records_campaign_lifecycle_steps():
    from campaigns.status import campaign_transition
    from messaging.runs import campaign_pause
    from tests.campaigns.factories import CampaignFactory

    campaign = CampaignFactory()
    user = member(campaign.organization, Role.ADMIN)
    campaign_transition(campaign, "pending_approval")
    from django.utils import timezone

    campaign = campaign_transition(campaign, "approved", approved_by=user, approved_at=timezone.now())
    campaign = campaign_transition(campaign, "running")
    campaign_pause(campaign, user, reason="check")
    paused = AuditEvent.objects.get(action="campaign.paused")
    assert paused.actor_id == user.pk and paused.target_id == str(campaign.pk) and paused.details == {"reason": "check"}


def test_audit_sqlite_triggers_refuse_update_and_delete():
    """The embedded default (SQLite) gets the same guarantee from its own triggers."""
    import sqlite3
    from importlib import import_module

    migration = import_module("audit.migrations.0002_audit_append_only")
    database = sqlite3.connect(":memory:")
    database.execute("CREATE TABLE console_auditevent (id INTEGER PRIMARY KEY, action TEXT)")
    for statement in migration.SQLITE_UP:
        database.execute(statement)
    database.execute("INSERT INTO console_auditevent (action) VALUES ('auth.login')")
    for statement in ("UPDATE console_auditevent SET action = 'x'", "DELETE FROM console_auditevent"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            database.execute(statement)
    assert database.execute("SELECT action FROM console_auditevent").fetchall() == [("auth.login",)]


def test_audit_records_axes_lockout(client, settings):
    organization = OrganizationFactory()
    member(organization, Role.OPERATOR, username="audit-locked")
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "audit-locked", "password": "wrong"})
    assert AuditEvent.objects.filter(action="auth.login_failed", actor_label="audit-locked").count() >= 4
    assert AuditEvent.objects.filter(action="auth.locked_out", actor_label="audit-locked").exists()


def test_audit_records_approval_and_send_back():
    from campaigns.services import campaign_send_back
    from campaigns.status import campaign_transition
    from tests.campaigns.factories import CampaignFactory

    campaign = CampaignFactory()
    user = member(campaign.organization, Role.ADMIN)
    campaign = campaign_transition(campaign, "pending_approval")
    campaign_send_back(campaign, user, reason="wording")
    event = AuditEvent.objects.get(action="campaign.sent_back")
    assert event.details == {"reason": "wording"} and event.organization_id == campaign.organization_id


def test_audit_page_and_export_name_events_in_the_readers_language(client):
    organization = OrganizationFactory()
    admin = member(organization, Role.ADMIN)
    audit_record("campaign.launched", organization=organization, actor_label="marketer-a", target_label="冬のセール")
    audit_record("contact.opted_out", organization=organization, actor_label="+819012345678",
                 target_label="+819012345678")
    audit_record("legacy.unknown", organization=organization, actor_label="system")
    client.force_login(admin)
    client.cookies["django_language"] = "ja"
    page = client.get(reverse("audit_log")).content.decode()
    assert "キャンペーン開始" in page and ">campaign.launched<" not in page
    assert "配信停止" in page and "090-1234-5678" in page and "+819012345678" not in page
    assert "legacy.unknown" in page  # an action without a label shows its code rather than nothing
    assert '<option value="campaign.launched" >キャンペーン開始</option>' in page
    assert "キャンペーン（すべて）" in page  # the group filter in words too

    response = client.get(reverse("audit_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["日時", "アクション", "アクションコード"]
    launched = next(row for row in rows[1:] if row[2] == "campaign.launched")
    assert launched[1] == "キャンペーン開始"
    opted_out = next(row for row in rows[1:] if row[2] == "contact.opted_out")
    assert opted_out[3] == "090-1234-5678" and opted_out[6] == "090-1234-5678"  # no ' before a number

    # the number as the page shows it finds the event (stored as +81…)
    page = client.get(reverse("audit_log"), {"target": "090-1234-5678"}).content.decode()
    assert '<td title="contact.opted_out">' in page and "冬のセール" not in page


def test_every_action_the_product_records_has_a_label():
    """A new audit_record("x.y") without a label would show its code: the mapping lists every action used."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    used = set()
    for path in root.glob("*/**/*.py"):
        if path.parts[len(root.parts)] in {".venv", "tests", "var"}:
            continue
        used |= set(re.findall(r'audit(?:_record|)\(\s*"([a-z_]+\.[a-z_]+)"', path.read_text()))
        used |= set(re.findall(r'_audit\(\s*"([a-z_]+\.[a-z_]+)"', path.read_text()))
    assert used and used <= set(ACTION_LABELS), sorted(used - set(ACTION_LABELS))
    assert {f"gateway.{change}" for change in ("down", "recovered")} <= set(ACTION_LABELS)
