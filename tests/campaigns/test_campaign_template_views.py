"""The templates page, saving a campaign as a template, starting a campaign from one and cloning
(campaigns.views.campaign_templates and the composer's from-template entry point)."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.models import Campaign, CampaignStatus, CampaignTemplate, Classification
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ContactListFactory

pytestmark = pytest.mark.django_db

LEGAL = "株式会社テスト商事"
TEXT = f"{LEGAL}より冬のセールのお知らせ。配信停止は「停止」と返信してください。"
SMS = f"【{LEGAL}】冬のセール開催中 配信停止は「停止」と返信"
ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.MARKETER, Role.OPERATOR, Role.VIEWER]
COMPOSERS = {Role.OWNER, Role.ADMIN, Role.MARKETER}


@pytest.fixture
def org():
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    return organization


@pytest.fixture
def users(org):
    return {role: member(org, role, username=f"{role}-user") for role in ALL_ROLES}


@pytest.fixture
def campaign(org, users):
    account = approved_account(org, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=org))
    campaign = CampaignFactory(organization=org, official_account=account, created_by=users[Role.MARKETER],
                               classification=Classification.PROMOTION, name="冬のセール",
                               content={"text": TEXT}, sms_text=SMS)
    campaign.audience_lists.add(ContactListFactory(organization=org, name="会員"))
    return campaign


@pytest.fixture
def template(org):
    return CampaignTemplate.objects.create(organization=org, name="定番クーポン", content={"text": TEXT}, sms_text=SMS)


def login(client, user, language="en"):
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_member_sees_the_templates_and_only_composers_change_them(client, users, template, role):
    body = login(client, users[role]).get(reverse("campaigns:templates")).content.decode()
    assert "定番クーポン" in body
    assert 'class="template-thumb"' in body and "phone-screen" in body  # the composer's phone preview
    assert ("?template=" in body) == (role in COMPOSERS)
    rename = client.post(reverse("campaigns:template_rename", args=[template.pk]), {"name": "新しい名前"})
    delete = client.post(reverse("campaigns:template_delete", args=[template.pk]))
    if role in COMPOSERS:
        assert rename.status_code == 302 and delete.status_code == 302
        assert not CampaignTemplate.objects.filter(pk=template.pk).exists()
    else:
        assert rename.status_code == 403 and delete.status_code == 403
        assert CampaignTemplate.objects.get(pk=template.pk).name == "定番クーポン"


def test_empty_templates_page_says_what_to_do(client, users):
    body = login(client, users[Role.VIEWER]).get(reverse("campaigns:templates")).content.decode()
    assert "No templates yet" in body and "Save as template" in body


def test_save_a_campaign_as_a_template_then_rename_refuses_a_taken_name_at_the_field(client, users, campaign,
                                                                                   template):
    login(client, users[Role.MARKETER])
    page = client.get(reverse("campaigns:template_save", args=[campaign.pk])).content.decode()
    assert 'value="冬のセール"' in page and "phone-screen" in page
    taken = client.post(reverse("campaigns:template_save", args=[campaign.pk]), {"name": "定番クーポン"})
    assert taken.status_code == 200 and taken.context["form"].errors["name"]
    response = client.post(reverse("campaigns:template_save", args=[campaign.pk]), {"name": "冬の定番"})
    assert response.status_code == 302 and response["Location"] == reverse("campaigns:templates")
    saved = CampaignTemplate.objects.get(name="冬の定番")
    assert (saved.content, saved.sms_text) == (campaign.content, campaign.sms_text)
    refused = client.post(reverse("campaigns:template_rename", args=[saved.pk]), {"name": "定番クーポン"})
    assert "already exists" in refused.content.decode()
    assert CampaignTemplate.objects.get(pk=saved.pk).name == "冬の定番"


def test_templates_page_is_in_japanese(client, users, template):
    body = login(client, users[Role.MARKETER], "ja").get(reverse("campaigns:templates")).content.decode()
    assert "テンプレート" in body and "名前を変更" in body


def test_the_delete_button_asks_for_confirmation(client, users, template):
    body = login(client, users[Role.MARKETER]).get(reverse("campaigns:templates")).content.decode()
    assert "data-confirm=\"Delete the template “定番クーポン”?" in body


def test_start_a_campaign_from_a_template_opens_the_composer_prefilled(client, org, users, campaign, template):
    login(client, users[Role.MARKETER])
    response = client.get(reverse("campaigns:create") + f"?template={template.pk}")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="定番クーポン"' in body  # the name
    assert SMS in body and TEXT in body  # the SMS field, the text field and the preview
    assert "Started from the template" in body
    assert not Campaign.objects.filter(name="定番クーポン").exists()  # nothing saved until the draft is


def test_another_organizations_template_or_campaign_answers_404(client, users, campaign):
    foreign = CampaignTemplate.objects.create(organization=OrganizationFactory(), name="x", content={"text": "x"})
    foreign_campaign = CampaignFactory()
    login(client, users[Role.OWNER])
    assert client.get(reverse("campaigns:create") + f"?template={foreign.pk}").status_code == 404
    assert client.get(reverse("campaigns:create") + "?template=abc").status_code == 404
    assert client.post(reverse("campaigns:template_rename", args=[foreign.pk]), {"name": "y"}).status_code == 404
    assert client.post(reverse("campaigns:template_delete", args=[foreign.pk])).status_code == 404
    assert client.post(reverse("campaigns:clone", args=[foreign_campaign.pk])).status_code == 404
    assert client.get(reverse("campaigns:template_save", args=[foreign_campaign.pk])).status_code == 404
    assert CampaignTemplate.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_clone_a_running_campaign_into_a_new_draft(client, users, campaign, role):
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.RUNNING, approved_by=users[Role.ADMIN],
                                                   approved_at=timezone.now(), started_at=timezone.now())
    login(client, users[role])
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert (reverse("campaigns:clone", args=[campaign.pk]) in page) == (role in COMPOSERS)
    response = client.post(reverse("campaigns:clone", args=[campaign.pk]))
    if role not in COMPOSERS:
        assert response.status_code == 403
        return
    clone = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response["Location"] == reverse("campaigns:edit", args=[clone.pk])
    assert clone.status == CampaignStatus.DRAFT and clone.content == campaign.content
    assert list(clone.audience_lists.all()) == list(campaign.audience_lists.all())
    assert AuditEvent.objects.filter(action="campaign.cloned", target_id=str(clone.pk)).exists()
    editor = client.get(response["Location"]).content.decode()
    assert "冬のセール (copy)" in editor and "This is a copy of" in editor
