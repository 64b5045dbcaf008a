"""Browser tests (Playwright driving Debian's chromium): a marketer imports a Shift_JIS CSV with bad
rows and watches the progress bar stop at 100% and reads the row report; an admin edits the fixed
menu with HTMX. A screenshot of each step is saved under test-output/screenshots/."""

from pathlib import Path

import pytest

from accounts.models import Role
from campaigns.models import ImportJob, ImportStatus, ListPurpose
from tests.accounts.factories import PASSWORD, OrganizationFactory, approved_account, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import ContactListFactory

# Playwright's sync API runs an event loop in this thread; the database calls made here between
# browser steps are still synchronous.
pytest.importorskip("playwright.sync_api")


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]

SJIS_CSV = (
    "電話番号,氏名,会員ランク,同意日時\r\n"
    "090-1234-5678,山田 太郎,ゴールド,2024/04/01 10:00\r\n"
    "03-1234-5678,固定 電話,,2024/04/01\r\n"
    "09012345678,山田 重複,,2024/04/01\r\n"
    "070-3333-4444,同意なし,,\r\n"
    "０８０－５５５５－６６６６,鈴木 一郎,ブロンズ,2024/06/01\r\n"
).encode("cp932")



@pytest.fixture
def org(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return OrganizationFactory(name="ブラウザ商事")


def shot(page, name):
    page.screenshot(path=screenshot_path(f"console-{name}"), full_page=True)


def sign_in(browser, live_server, username):
    page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP").new_page()
    page.goto(f"{live_server.url}/login/")
    shot(page, "01-sign-in")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_load_state()
    return page


def test_marketer_imports_a_shift_jis_csv_and_reads_the_row_report(browser, live_server, org, tmp_path, monkeypatch):
    from campaigns import tasks
    from campaigns.imports import import_job_run

    queued = []
    monkeypatch.setattr(tasks.import_contacts, "delay", queued.append)  # the test plays the worker below
    ContactListFactory(organization=org, name="会員（販促）", purpose=ListPurpose.PROMOTION)
    member(org, Role.MARKETER, username="import-marketer")
    csv_path = tmp_path / "会員リスト.csv"
    csv_path.write_bytes(SJIS_CSV)

    page = sign_in(browser, live_server, "import-marketer")
    shot(page, "02-dashboard")
    page.goto(f"{live_server.url}/campaigns/contacts/import/")
    page.set_input_files("input[name=file]", str(csv_path))
    page.select_option("select[name=contact_list]", index=1)
    shot(page, "03-import-upload")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("#file-encoding")
    assert "Shift_JIS" in page.locator("#file-encoding").inner_text()  # said in words, not “cp932”
    assert page.locator("select[name=col_0]").input_value() == "phone"
    assert page.locator("select[name=col_3]").input_value() == "consent_granted_at"
    page.fill("input[name=wording_version]", "2024-04")
    shot(page, "04-import-mapping")
    page.click("form button.btn-primary")
    page.wait_for_selector("#import-progress")
    assert page.locator(".progress").get_attribute("aria-valuenow") == "0"
    shot(page, "05-import-queued")

    progress_requests = []
    page.on("request", lambda request: "/progress/" in request.url and progress_requests.append(request.url))
    job = ImportJob.objects.get(pk=queued[0])
    import_job_run(job)  # what the Celery worker does
    page.wait_for_selector(".progress.done", timeout=15000)
    assert page.locator(".progress").get_attribute("aria-valuenow") == "100"
    rows = page.locator("#import-progress table.data tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("td").nth(0).inner_text() == "3"
    assert rows.nth(1).locator("td").nth(0).inner_text() == "4"
    assert rows.nth(2).locator("td").nth(0).inner_text() == "5"
    shot(page, "06-import-report")
    polled = len(progress_requests)
    page.wait_for_timeout(2500)
    assert len(progress_requests) == polled  # HTTP 286 stopped the polling
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_count == 2 and job.error_count == 3

    with page.expect_download() as download_info:
        page.click("a[href$='errors.csv']")
    report = Path(download_info.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in report[1:]] == ["3", "4", "5"]

    page.goto(f"{live_server.url}/campaigns/contacts/")
    assert page.locator("text=090-1234-5678").count() == 1
    shot(page, "07-contacts")


def test_admin_edits_the_fixed_menu_with_htmx(browser, live_server, org):
    account = approved_account(org, display_name="ブラウザショップ")
    member(org, Role.ADMIN, username="menu-admin")
    page = sign_in(browser, live_server, "menu-admin")
    page.goto(f"{live_server.url}/accounts/official/{account.pk}/")
    shot(page, "08-official-account")
    page.goto(f"{live_server.url}/accounts/official/{account.pk}/menu/")
    page.click("#menu-editor .card-head button")
    page.wait_for_selector("#item-form")
    page.select_option("#item-form select[name=type]", "open_url")
    page.wait_for_selector("#item-form input[name=url]")
    page.fill("#item-form input[name=label]", "公式サイト")
    page.fill("#item-form input[name=url]", "javascript:alert(1)")
    page.click("#item-form button[type=submit]")
    page.wait_for_selector("#id_url_errors")
    assert page.locator("#item-form input[name=label]").input_value() == "公式サイト"
    shot(page, "09-menu-error")
    page.fill("#item-form input[name=url]", "https://shop.example.jp/")
    page.click("#item-form button[type=submit]")
    page.wait_for_selector(".phone-menu .pm-item")
    page.click("#menu-editor .card-head button")
    page.wait_for_selector("#item-form")
    page.fill("#item-form input[name=label]", "注文状況")
    page.fill("#item-form input[name=postback]", "order_status")
    page.click("#item-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('.phone-menu .pm-item').length === 2")
    page.locator("#menu-editor .menu-item").nth(1).locator("button[title]").first.click()  # move up
    page.wait_for_function("document.querySelector('.phone-menu .pm-item').textContent.trim() === '注文状況'")
    shot(page, "10-menu-saved")
    account.refresh_from_db()
    assert [item["label"] for item in account.fixed_menu["items"]] == ["注文状況", "公式サイト"]
