"""The consent ledger (kept 3 years, exported per person), display rules at launch, quiet hours."""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.models import CampaignStatus, Classification, Consent, Contact, ContactListMembership
from campaigns.optout import OptOutMethod, consent_grant, contact_opt_out
from campaigns.services import campaign_approve
from core.phone import national_format
from core.quiet_hours import quiet_hours_end
from messaging.runs import campaign_launch, campaign_start
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db

LEGAL = "株式会社ルール商事"


@pytest.fixture
def contact():
    contact = ContactFactory(name="山田 花子", attributes={"rank": "gold"})
    ConsentFactory(contact=contact, source="https://shop.example.jp/signup", wording_version="2024-04")
    return contact


def test_consent_ledger_export_per_contact(client, contact):
    user = member(contact.organization, Role.VIEWER)
    contact_opt_out(contact, OptOutMethod.KEYWORD, "停止", confirm=False)
    consent_grant(contact, method="paper", source="店頭 新宿店", wording_version="2025-01", evidence="=SUM(A1)")
    client.force_login(user)
    response = client.get(reverse("consent_ledger", args=[contact.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "https://shop.example.jp/signup" in body and "2024-04" in body and "keyword" in body
    assert "店頭 新宿店" in body and "contact.opted_out" in body and "consent.granted" in body
    assert "'=SUM(A1)" in body  # formula cells neutralised
    assert contact.phone not in body and national_format(contact.phone) in body  # the number as on screen
    assert AuditEvent.objects.filter(action="export.consent", target_id=str(contact.pk)).exists()


def test_consent_ledger_of_another_organization_is_404(client, contact):
    stranger = member(OrganizationFactory(), Role.OWNER)
    client.force_login(stranger)
    assert client.get(reverse("consent_ledger", args=[contact.pk])).status_code == 404


def test_consent_history_survives_contact_delete_attempts(contact):
    with pytest.raises(ProtectedError), transaction.atomic():
        contact.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        Contact.objects.filter(pk=contact.pk).delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        Consent.objects.filter(contact=contact).delete()
    assert Consent.objects.filter(contact=contact).count() == 1


def test_consent_old_history_may_be_deleted_after_three_years():
    contact = ContactFactory()
    long_ago = timezone.now() - timedelta(days=4 * 365)
    ConsentFactory(contact=contact, granted_at=long_ago)
    Consent.objects.filter(contact=contact).update(revoked_at=long_ago + timedelta(days=1), revoke_method="keyword")
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=long_ago + timedelta(days=1))
    Contact.objects.get(pk=contact.pk).delete()
    assert not Consent.objects.filter(contact_id=contact.pk).exists()


def test_consent_erase_keeps_number_and_history_drops_personal_data(client, contact):
    contact_list = ContactListFactory(organization=contact.organization)
    ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    admin = member(contact.organization, Role.ADMIN)
    client.force_login(admin)
    response = client.post(reverse("consent_erase", args=[contact.pk]))
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "" and contact.attributes == {} and contact.opted_out_at is not None
    assert not ContactListMembership.objects.filter(contact=contact).exists()
    consent = Consent.objects.get(contact=contact)
    assert consent.revoked_at is not None and consent.source == "https://shop.example.jp/signup"
    assert AuditEvent.objects.filter(action="contact.erased", target_id=str(contact.pk)).exists()


def test_consent_erase_needs_manage_permission(client, contact):
    client.force_login(member(contact.organization, Role.OPERATOR))
    assert client.post(reverse("consent_erase", args=[contact.pk])).status_code == 403
    contact.refresh_from_db()
    assert contact.name == "山田 花子"


def test_consent_import_of_a_promotional_list_needs_consent_data_or_attestation(settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from campaigns.imports import TARGET_NAME, TARGET_PHONE, import_job_create, import_job_set_mapping

    settings.MEDIA_ROOT = tmp_path
    organization = OrganizationFactory()
    promotional = ContactListFactory(organization=organization, purpose="promotion")
    job = import_job_create(organization, None, SimpleUploadedFile("a.csv", "電話番号,氏名\r\n090-1234-5678,山田\r\n".encode()),
                            promotional)
    with pytest.raises(ValidationError):
        import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME}, {"wording_version": "v1"})
    import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME}, {"wording_version": "v1", "attested": True})


# -- display rules: a promotion missing the display lines cannot launch ------------------------------


def _promotion(content_text, sms_text, status=CampaignStatus.APPROVED):
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    account = approved_account(organization, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=organization))
    user = member(organization, Role.ADMIN)
    contact_list = ContactListFactory(organization=organization)
    campaign = CampaignFactory(
        organization=organization, official_account=account, classification=Classification.PROMOTION,
        content={"text": content_text}, sms_text=sms_text, status=status,
        **({"approved_by": user, "approved_at": timezone.now()} if status == CampaignStatus.APPROVED else {}),
    )
    campaign.audience_lists.add(contact_list)
    return campaign, user


@pytest.mark.parametrize(
    "content_text, sms_text",
    [
        ("冬のセール開催中！", f"{LEGAL} 冬のセール 配信停止は「停止」と返信"),  # rich content names nobody
        (f"{LEGAL} 冬のセール 配信停止は{{{{opt_out_url}}}}", "冬のセール開催中！"),  # SMS lacks both lines
        (f"{LEGAL} 冬のセール", f"{LEGAL} 冬のセール 配信停止は「停止」と返信"),  # rich content: no way out
    ],
)
def test_consent_promotion_missing_display_lines_cannot_launch(content_text, sms_text):
    campaign, user = _promotion(content_text, sms_text)
    with pytest.raises(ValidationError) as refused:
        campaign_launch(campaign, user)
    assert "display_rules" in refused.value.message_dict
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED
    assert not AuditEvent.objects.filter(action="campaign.launched").exists()


def test_consent_promotion_with_display_lines_launches(django_capture_on_commit_callbacks):
    campaign, user = _promotion(f"【{LEGAL}】冬のセール 配信停止は{{{{opt_out_url}}}}",
                                f"【{LEGAL}】冬のセール 配信停止は「停止」と返信")
    with django_capture_on_commit_callbacks(execute=False):
        campaign = campaign_launch(campaign, user)
    assert campaign.status == CampaignStatus.RUNNING
    assert AuditEvent.objects.filter(action="campaign.launched", actor=user).exists()


def test_consent_promotion_with_display_lines_is_approved_and_audited():
    campaign, user = _promotion(f"【{LEGAL}】冬のセール 配信停止は{{{{opt_out_url}}}}",
                                f"【{LEGAL}】冬のセール 配信停止は「停止」と返信", status=CampaignStatus.PENDING_APPROVAL)
    campaign_approve(campaign, user)
    event = AuditEvent.objects.get(action="campaign.approved")
    assert event.actor_id == user.pk and event.target_id == str(campaign.pk)


def test_consent_promotion_missing_display_lines_cannot_be_approved():
    campaign, user = _promotion("冬のセール", "冬のセール", status=CampaignStatus.PENDING_APPROVAL)
    with pytest.raises(ValidationError):
        campaign_approve(campaign, user)


# -- quiet hours ----------------------------------------------------------------------------------


def _quiet_now(campaign):
    """Quiet hours that cover this very moment (Asia/Tokyo), an hour either side."""
    now = timezone.localtime()
    organization = campaign.organization
    organization.quiet_hours_start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    organization.quiet_hours_end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    organization.save()
    return organization


def test_consent_quiet_hours_promotion_launched_inside_waits_for_the_window_end(django_capture_on_commit_callbacks):
    from django_celery_beat.models import PeriodicTask

    campaign, user = _promotion(f"【{LEGAL}】セール 配信停止は{{{{opt_out_url}}}}", f"【{LEGAL}】セール 停止と返信で配信停止")
    organization = _quiet_now(campaign)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_launch(campaign, user)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    expected = quiet_hours_end(organization)
    assert abs((campaign.scheduled_at - expected).total_seconds()) < 61
    assert timezone.localtime(campaign.scheduled_at).time().replace(second=0) == organization.quiet_hours_end
    task = PeriodicTask.objects.get(name=f"campaign-{campaign.pk}")
    assert task.clocked.clocked_time == campaign.scheduled_at and task.enabled
    assert not callbacks  # nothing is sent now


def test_consent_quiet_hours_do_not_hold_transactional_messages(django_capture_on_commit_callbacks):
    campaign, user = _promotion("ご予約を承りました", "ご予約を承りました")
    campaign.classification = Classification.TRANSACTION
    campaign.save()
    _quiet_now(campaign)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign = campaign_start(campaign)
    assert campaign.status == CampaignStatus.RUNNING
    assert len(callbacks) == 1  # launch_campaign is queued at once


def test_consent_quiet_hours_settings_page_for_admins(client):
    organization = OrganizationFactory()
    admin = member(organization, Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("accounts:quiet_hours"))
    assert page.status_code == 200 and 'value="21:00"' in page.content.decode()
    response = client.post(reverse("accounts:quiet_hours"), {"start": "20:30", "end": "08:00"})
    assert response.status_code == 302
    organization.refresh_from_db()
    assert (organization.quiet_hours_start, organization.quiet_hours_end) == (time(20, 30), time(8, 0))
    event = AuditEvent.objects.get(action="settings.quiet_hours")
    assert event.details == {"before": {"start": "21:00", "end": "09:00"}, "after": {"start": "20:30", "end": "08:00"}}
    client.force_login(member(organization, Role.MARKETER))
    assert client.get(reverse("accounts:quiet_hours")).status_code == 403
