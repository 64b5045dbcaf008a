"""Browser tests (issue 18, points 1 and 2), in Japanese at 1440 px and at 390 px (a phone):

- a marketer launches a promotion inside the organization's quiet hours: the confirmation offers
  「HH:MM（日本時間）に予約する」 and the page after says 「HH:MMに配信を予約しました」, never that
  sending started;
- a marketer's first import into a promotional list: the required fields carry a visible mark, a
  refusal sits beside its field, a file with a consent date column and a consent method the product
  does not know (「店頭申込書」) imports every row and the row report says how that cell was kept.

Screenshots go to test-output/screenshots/ (quiet-launch-*, first-import-*).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from campaigns.compliance import TOKYO, quiet_hours_hold
from campaigns.imports import import_job_run
from campaigns.models import (
    CONSENT_WORDING_NOT_STATED,
    CampaignStatus,
    Classification,
    Consent,
    ContactListMembership,
    ImportJob,
    ListPurpose,
)
from tests.accounts.factories import (
    PASSWORD,
    GatewayAccountFactory,
    OrganizationFactory,
    approved_account,
    member,
)
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

LEGAL = "株式会社ブラウザ商事"
WIDTHS = {"desktop": 1440, "phone": 390}


def sign_in(browser, live_server, username, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="ja-JP")
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": "django_language", "value": "ja", "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state()
    return page


def shot(page, name):
    page.screenshot(path=screenshot_path(name), full_page=True)


@pytest.fixture
def org(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return OrganizationFactory(name="ブラウザ商事")


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_launch_inside_quiet_hours_offers_to_schedule_and_says_it_did(browser, live_server, org, size):
    # Quiet hours around the real clock (the live server's thread reads it): from an hour ago to
    # two hours from now, Japan time.
    now = timezone.localtime(timezone.now(), TOKYO)
    org.quiet_hours_start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    org.quiet_hours_end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    org.save()
    account = approved_account(org, legal_name=LEGAL, rcs_gateway=GatewayAccountFactory(organization=org))
    members_list = ContactListFactory(organization=org, name="冬の会員")
    for index in range(4):
        contact = ContactFactory(organization=org, name=f"佐藤{index}")
        ConsentFactory(contact=contact)
        ContactListMembership.objects.create(contact_list=members_list, contact=contact)
    marketer = member(org, Role.MARKETER, username="quiet-marketer")
    campaign = CampaignFactory(
        organization=org, official_account=account, created_by=marketer, classification=Classification.PROMOTION,
        content={"text": f"{LEGAL}より冬のセール。配信停止は「停止」と返信"},
        sms_text=f"【{LEGAL}】冬のセール 配信停止は「停止」と返信", status=CampaignStatus.APPROVED,
        approved_by=member(org, Role.ADMIN, username="quiet-admin"), approved_at=timezone.now(),
    )
    campaign.audience_lists.add(members_list)
    opens = timezone.localtime(quiet_hours_hold(org, Classification.PROMOTION), TOKYO)
    label = f"{opens:%H:%M}（日本時間）に予約する"

    page = sign_in(browser, live_server, "quiet-marketer", WIDTHS[size])
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click("button[data-open-dialog=launch-dialog]")
    dialog = page.locator("#launch-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("button[type=submit]").inner_text().strip() == label
    text = dialog.inner_text()
    assert "配信自粛時間帯" in text and f"{opens:%Y/%m/%d %H:%M}" in text
    assert "すぐに送信が始まり" not in text
    shot(page, f"quiet-launch-1-confirm-{size}")

    dialog.locator("button[type=submit]").click()
    page.wait_for_load_state()
    body = page.locator("main").inner_text()
    assert f"{opens:%H:%M}に配信を予約しました" in body
    assert "開始しました" not in body
    shot(page, f"quiet-launch-2-scheduled-{size}")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == opens


UNDATED = "電話番号,氏名\r\n090-1234-5678,山田 太郎\r\n".encode("cp932")
DATED = ("電話番号,氏名,同意日,同意方法\r\n"
         "090-1234-5678,山田 太郎,2024/04/01,店頭申込書\r\n"
         "080-2222-3333,佐藤 花子,2024/04/02,Web\r\n").encode("cp932")


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_first_import_into_a_promotional_list(browser, live_server, org, tmp_path, monkeypatch, size):
    from campaigns import tasks

    queued = []
    monkeypatch.setattr(tasks.import_contacts, "delay", queued.append)  # the test plays the worker
    ContactListFactory(organization=org, name="会員（販促）", purpose=ListPurpose.PROMOTION)
    member(org, Role.MARKETER, username="import-marketer")
    page = sign_in(browser, live_server, "import-marketer", WIDTHS[size])

    def upload(name, data):
        path = tmp_path / name
        path.write_bytes(data)
        page.goto(f"{live_server.url}/campaigns/contacts/import/")
        page.set_input_files("input[name=file]", str(path))
        page.select_option("select[name=contact_list]", index=1)
        page.click("form.card button[type=submit]")
        page.wait_for_selector("#file-encoding")

    # Without a consent date column: the confirmation and the wording version are marked and, left
    # empty, refused beside themselves.
    upload("名簿.csv", UNDATED)
    assert page.locator("#file-encoding").inner_text() == "文字コード: Shift_JIS（Excel日本語版）"
    assert page.locator("label[for=id_attested] .required-mark").is_visible()
    assert page.locator("label[for=id_wording_version] .required-mark").is_visible()
    page.click("form button.btn-primary")
    page.wait_for_selector("#id_attested_errors")
    assert "同意文言のバージョン" in page.locator("#id_wording_version_errors").inner_text()
    assert page.locator("#id_attested_errors").is_visible()
    shot(page, f"first-import-1-refused-at-the-fields-{size}")

    # With one: nothing else is required; 「店頭申込書」 is kept, as a paper form.
    upload("会員.csv", DATED)
    assert page.locator("label[for=id_wording_version] .required-mark").count() == 0
    assert page.locator("label[for=id_attested] .required-mark").count() == 0
    page.select_option("select[name=col_2]", "")  # without the date column the marks come back
    assert page.locator("label[for=id_wording_version] .required-mark").is_visible()
    assert page.locator("label[for=id_attested] .required-mark").is_visible()
    page.select_option("select[name=col_2]", "consent_granted_at")
    assert page.locator("label[for=id_wording_version] .required-mark").count() == 0
    shot(page, f"first-import-2-mapping-{size}")
    page.click("form button.btn-primary")
    page.wait_for_selector("#import-progress")
    import_job_run(ImportJob.objects.get(pk=queued[-1]))
    page.wait_for_selector(".progress.done", timeout=15000)
    report = page.locator("#import-progress table.data").inner_text()
    assert "店頭申込書" in report and "紙の申込書" in report and "取り込み済み" in report
    shot(page, f"first-import-3-report-{size}")
    consents = dict(Consent.objects.values_list("contact__phone", "method"))
    assert consents == {"+819012345678": "paper", "+818022223333": "web_form"}
    assert set(Consent.objects.values_list("wording_version", flat=True)) == {CONSENT_WORDING_NOT_STATED}
