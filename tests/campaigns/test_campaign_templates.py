"""Campaign templates and cloning (campaigns.campaign_templates): what a template keeps, what a clone
copies and what it never copies, names, and the audit log."""

import copy
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from campaigns import campaign_templates
from campaigns.models import Campaign, CampaignStatus, CampaignTemplate, Classification, Segment
from tests.accounts.factories import member
from tests.campaigns.factories import CampaignFactory, ContactListFactory

pytestmark = pytest.mark.django_db

CONTENT = {"card": {"title": "冬のセール", "description": "株式会社テスト 配信停止は「停止」と返信",
                    "buttons": [{"type": "open_url", "label": "開く", "url": "https://shop.example.jp/"}]}}


@pytest.fixture
def campaign():
    campaign = CampaignFactory(classification=Classification.PROMOTION, content=copy.deepcopy(CONTENT), sms_text="セール 停止で配信停止",
                               ttl_seconds=3 * 3600)
    campaign.audience_lists.add(ContactListFactory(organization=campaign.organization, name="会員"))
    campaign.exclusion_lists.add(ContactListFactory(organization=campaign.organization, name="除外"))
    return campaign


def test_a_template_keeps_the_content_and_sms_text_and_is_audited(campaign):
    user = member(campaign.organization, Role.MARKETER)
    template = campaign_templates.template_create_from_campaign(campaign, "  冬の定番  ", user)
    assert (template.name, template.content, template.sms_text) == ("冬の定番", CONTENT, "セール 停止で配信停止")
    assert template.organization_id == campaign.organization_id and template.created_by == user
    campaign.content["card"]["title"] = "changed"
    campaign.save()
    template.refresh_from_db()
    assert template.content == CONTENT  # a copy, not shared
    event = AuditEvent.objects.get(action="template.created")
    assert event.actor_id == user.pk and event.details["campaign_id"] == campaign.pk


def test_template_names_are_required_and_unique_per_organization(campaign):
    user = member(campaign.organization, Role.MARKETER)
    campaign_templates.template_create_from_campaign(campaign, "冬", user)
    with pytest.raises(ValidationError) as taken:
        campaign_templates.template_create_from_campaign(campaign, "冬", user)
    assert "already exists" in taken.value.message_dict["name"][0]
    with pytest.raises(ValidationError):
        campaign_templates.template_create_from_campaign(campaign, "   ", user)
    other = CampaignFactory()  # another organization may use the same name
    campaign_templates.template_create_from_campaign(other, "冬", user)
    assert CampaignTemplate.objects.filter(name="冬").count() == 2


def test_rename_and_delete_are_audited(campaign):
    user = member(campaign.organization, Role.MARKETER)
    template = campaign_templates.template_create_from_campaign(campaign, "A", user)
    campaign_templates.template_create_from_campaign(campaign, "B", user)
    with pytest.raises(ValidationError):
        campaign_templates.template_rename(template, "B", user)
    campaign_templates.template_rename(template, "C", user)
    assert CampaignTemplate.objects.get(pk=template.pk).name == "C"
    assert AuditEvent.objects.get(action="template.renamed").details == {"before": "A", "after": "C"}
    campaign_templates.template_delete(template, user)
    assert not CampaignTemplate.objects.filter(pk=template.pk).exists()
    assert AuditEvent.objects.get(action="template.deleted").details == {"name": "C"}


def test_a_clone_copies_content_audience_and_settings_never_schedule_approval_or_progress(campaign):
    organization = campaign.organization
    approver = member(organization, Role.ADMIN)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=CampaignStatus.COMPLETED, approved_by=approver, approved_at=timezone.now(), submitted_by=approver,
        scheduled_at=timezone.now() + timedelta(days=1), recurrence="0 10 * * 1", audience_cursor=99,
        audience_frozen_at=timezone.now(), started_at=timezone.now(), finished_at=timezone.now(),
        status_reason="done",
    )
    campaign.refresh_from_db()
    user = member(organization, Role.MARKETER)
    buyers = Segment.objects.create(organization=organization, name="buyers")
    complained = Segment.objects.create(organization=organization, name="complained")
    campaign.audience_segments.add(buyers)
    campaign.exclusion_segments.add(complained)

    clone = campaign_templates.campaign_clone(campaign, user)

    assert clone.pk != campaign.pk and clone.name == f"{campaign.name} (copy)"
    assert (clone.content, clone.sms_text, clone.classification, clone.ttl_seconds, clone.official_account_id) == (
        campaign.content, campaign.sms_text, campaign.classification, campaign.ttl_seconds,
        campaign.official_account_id)
    assert set(clone.audience_lists.all()) == set(campaign.audience_lists.all())
    assert set(clone.exclusion_lists.all()) == set(campaign.exclusion_lists.all())
    assert list(clone.audience_segments.all()) == [buyers] and list(clone.exclusion_segments.all()) == [complained]
    assert clone.status == CampaignStatus.DRAFT and clone.created_by == user
    assert clone.approved_by is None and clone.approved_at is None and clone.submitted_by is None
    assert clone.scheduled_at is None and clone.recurrence == "" and clone.parent is None
    assert clone.audience_cursor == 0 and clone.audience_frozen_at is None
    assert clone.started_at is None and clone.finished_at is None and clone.status_reason == ""
    event = AuditEvent.objects.get(action="campaign.cloned")
    assert event.target_id == str(clone.pk) and event.details["source_id"] == campaign.pk
