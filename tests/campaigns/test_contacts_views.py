"""Contact pages: every page and role, tenant isolation, search and paging, export, import flow."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.imports import import_job_run
from campaigns.models import Contact, ContactList, ContactListMembership, ImportJob, ImportStatus, ListPurpose
from campaigns.views import contacts as contact_views
from tests.accounts.factories import OrganizationFactory, member
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.MARKETER, Role.OPERATOR, Role.VIEWER]
COMPOSERS = {Role.OWNER, Role.ADMIN, Role.MARKETER}


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def as_role(client, org):
    def _as(role):
        client.force_login(member(org, role))
        return client

    return _as


def body(response):
    return response.content.decode()


def field_errors(page: str, field_id: str) -> str:
    """The error list shown beside one field (``<ul class="errorlist" id="<field id>_errors">``)."""
    start = page.find(f'id="{field_id}_errors"')
    assert start != -1, f"no errors beside {field_id}"
    return page[start:page.index("</ul>", start)]


def required_marked(page: str, field_id: str) -> bool:
    """Whether the label of ``field_id`` carries the visible required mark."""
    start = page.index(f'for="{field_id}"')
    label = page[start:page.index("</label>", start)]
    return 'class="required-mark"' in label


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_contact_page_by_role(as_role, org, role, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    contact = ContactFactory(organization=org)
    contact_list = ContactListFactory(organization=org)
    job = ImportJob.objects.create(organization=org, contact_list=contact_list, original_name="a.csv",
                                   file_format="csv", headers=["phone"], mapping={"0": "phone"})
    client = as_role(role)
    for name, args in [("list", []), ("detail", [contact.pk]), ("opt_outs", []), ("lists", [])]:
        assert client.get(reverse(f"contacts:{name}", args=args)).status_code == 200, name
    expected = 200 if role in COMPOSERS else 403
    for name, args in [("export", []), ("list_create", []), ("list_edit", [contact_list.pk]), ("import", []),
                       ("import_mapping", [job.pk]), ("import_status", [job.pk]), ("import_progress", [job.pk]),
                       ("import_report", [job.pk])]:
        assert client.get(reverse(f"contacts:{name}", args=args)).status_code == expected, name


def test_anonymous_redirected(client):
    assert client.get(reverse("contacts:list")).status_code == 302


def test_another_organizations_ids_are_404(as_role, org):
    other = OrganizationFactory()
    contact = ContactFactory(organization=other)
    contact_list = ContactListFactory(organization=other)
    job = ImportJob.objects.create(organization=other, contact_list=contact_list, original_name="a.csv",
                                   file_format="csv")
    ContactListFactory(organization=org)
    client = as_role(Role.OWNER)
    assert client.get(reverse("contacts:detail", args=[contact.pk])).status_code == 404
    assert client.get(reverse("contacts:list_edit", args=[contact_list.pk])).status_code == 404
    for name in ("import_mapping", "import_status", "import_progress", "import_report"):
        assert client.get(reverse(f"contacts:{name}", args=[job.pk])).status_code == 404
    # another org's list cannot be used as a filter (it matches nobody) or as an import target
    mine = ContactFactory(organization=org, name="自社の連絡先")
    response = client.get(reverse("contacts:list"), {"list": contact_list.pk})
    assert contact.name not in body(response) and mine.name not in body(response)
    response = client.get(reverse("contacts:export"), {"list": contact_list.pk})
    assert mine.phone not in b"".join(response.streaming_content).decode()
    response = client.post(reverse("contacts:import"), {
        "file": SimpleUploadedFile("a.csv", b"phone\n09012345678\n"), "contact_list": contact_list.pk})
    assert response.status_code == 200 and "errorlist" in body(response)
    assert not ImportJob.objects.filter(organization=org).exists()


def test_list_shows_only_own_contacts(as_role, org):
    mine = ContactFactory(organization=org, name="自社の人")
    theirs = ContactFactory(organization=OrganizationFactory(), name="他社の人")
    page = body(as_role(Role.VIEWER).get(reverse("contacts:list")))
    assert mine.name in page and theirs.name not in page


def test_empty_states(as_role):
    client = as_role(Role.MARKETER)
    assert "No contacts yet" in body(client.get(reverse("contacts:list")))
    assert "No lists yet" in body(client.get(reverse("contacts:lists")))
    assert "Nobody has opted out" in body(client.get(reverse("contacts:opt_outs")))
    assert "Create a list first" in body(client.get(reverse("contacts:import")))


def test_search_by_phone_and_name_and_filters(as_role, org):
    yamada = ContactFactory(organization=org, phone="+819012345678", name="山田 太郎")
    sato = ContactFactory(organization=org, phone="+818011112222", name="佐藤 花子", opted_out_at=timezone.now())
    vip = ContactListFactory(organization=org)
    ContactListMembership.objects.create(contact_list=vip, contact=sato)
    client = as_role(Role.VIEWER)

    def names(**params):
        page = body(client.get(reverse("contacts:list"), params))
        return {c.name for c in (yamada, sato) if c.name in page}

    assert names(q="090-1234") == {"山田 太郎"}
    assert names(q="０８０１１１") == {"佐藤 花子"}
    assert names(q="+8190") == {"山田 太郎"}
    assert names(q="花子") == {"佐藤 花子"}
    assert names(list=vip.pk) == {"佐藤 花子"}
    assert names(opted_out="yes") == {"佐藤 花子"}
    assert names(opted_out="no") == {"山田 太郎"}
    assert "No contacts match" in body(client.get(reverse("contacts:list"), {"q": "存在しない"}))


def test_search_htmx_returns_the_results_partial(as_role, org):
    ContactFactory(organization=org, name="山田")
    response = as_role(Role.VIEWER).get(reverse("contacts:list"), {"q": "山田"}, HTTP_HX_REQUEST="true",
                                        HTTP_HX_TARGET="contact-results")
    assert body(response).lstrip().startswith('<div id="contact-results"')
    assert "<html" not in body(response)
    assert "export-link" not in body(response)  # viewers cannot export


def test_search_htmx_updates_the_export_link_out_of_band(as_role, org):
    ContactFactory(organization=org, name="山田")
    response = as_role(Role.MARKETER).get(reverse("contacts:list"), {"q": "山田", "opted_out": "no"},
                                          HTTP_HX_REQUEST="true", HTTP_HX_TARGET="contact-results")
    page = body(response)
    assert 'id="export-link"' in page and 'hx-swap-oob="true"' in page
    assert "opted_out=no" in page.split('id="export-link"')[1].split(">")[0]


def test_keyset_pagination(as_role, org, monkeypatch):
    monkeypatch.setattr(contact_views, "PAGE_SIZE", 3)
    contacts = [ContactFactory(organization=org, name=f"人{i:02d}") for i in range(7)]
    client = as_role(Role.VIEWER)
    first = body(client.get(reverse("contacts:list")))
    assert all(c.name in first for c in contacts[4:]) and contacts[3].name not in first
    assert f"after={contacts[4].id}" in first
    second = body(client.get(reverse("contacts:list"), {"after": contacts[4].id}))
    assert all(c.name in second for c in contacts[1:4]) and contacts[4].name not in second
    third = body(client.get(reverse("contacts:list"), {"after": contacts[1].id}))
    assert contacts[0].name in third and 'rel="next"' not in third


def test_contact_list_says_how_many_and_where_the_page_is_in_both_languages(as_role, org, settings):
    Contact.objects.bulk_create(
        [Contact(organization=org, phone=f"+8190{index:08d}", name=f"人{index:04d}") for index in range(1009)]
    )
    client = as_role(Role.VIEWER)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    first = body(client.get(reverse("contacts:list")))
    assert "1–50 of 1,009" in first and 'rel="next"' in first and 'rel="prev"' not in first
    second = body(client.get(reverse("contacts:list") + first.split('rel="next" href="')[1].split('"')[0]
                             .replace("&amp;", "&")))
    assert "51–100 of 1,009" in second and 'rel="prev"' in second
    last = body(client.get(reverse("contacts:list"), {"page": "last"}))
    assert "1,001–1,009 of 1,009" in last and "人0000" in last
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    assert "1–50 / 1,009件" in body(client.get(reverse("contacts:list")))
    filtered = body(client.get(reverse("contacts:list"), {"q": "人000"}))
    assert "1–10 / 10件" in filtered


def test_contacts_sort_by_name_number_and_creation_and_ignore_unknown_keys(as_role, org):
    for phone, name in (("+819011110003", "伊藤"), ("+819011110001", "佐藤"), ("+819011110002", "阿部")):
        ContactFactory(organization=org, phone=phone, name=name)
    client = as_role(Role.VIEWER)

    def order(**params):
        page = body(client.get(reverse("contacts:list"), params))
        return sorted(("伊藤", "佐藤", "阿部"), key=page.index)

    assert order() == ["阿部", "佐藤", "伊藤"]  # newest first
    assert order(sort="created") == ["伊藤", "佐藤", "阿部"]
    assert order(sort="name") == sorted(["伊藤", "佐藤", "阿部"])
    assert order(sort="-name") == sorted(["伊藤", "佐藤", "阿部"], reverse=True)
    assert order(sort="phone") == ["佐藤", "阿部", "伊藤"]
    assert order(sort="-phone") == ["伊藤", "阿部", "佐藤"]
    for unknown in ("organization__name", "attributes", "-opted_out_at", "name,id"):
        assert order(sort=unknown) == ["阿部", "佐藤", "伊藤"]
    page = body(client.get(reverse("contacts:list"), {"sort": "name", "q": "藤"}))
    assert 'aria-sort="ascending"' in page and "sort=-name&amp;q=" in page


def test_contact_detail_shows_consent_history_and_messages(as_role, org):
    contact = ContactFactory(organization=org, attributes={"会員ランク": "ゴールド"})
    ConsentFactory(contact=contact, wording_version="2024-04 v2", source="https://shop.example.jp/join")
    revoked = ConsentFactory(contact=contact, wording_version="2023-01 v1")
    revoked.revoked_at = timezone.now()
    revoked.revoke_method = "keyword"
    revoked.save()
    campaign = CampaignFactory(organization=org, name="春のセール")
    DeliveryFactory(campaign=campaign, contact=contact, channel="sms", status=30, fallback_reason="not_capable")
    page = body(as_role(Role.VIEWER).get(reverse("contacts:detail", args=[contact.pk])))
    assert "2024-04 v2" in page and "https://shop.example.jp/join" in page and "Revoked" in page
    assert "春のセール" in page and "Not +Message capable" in page
    assert "ゴールド" in page


def test_opt_out_page_lists_opted_out_only(as_role, org):
    out = ContactFactory(organization=org, name="停止した人", opted_out_at=timezone.now(), opt_out_method="keyword")
    stay = ContactFactory(organization=org, name="受信する人")
    page = body(as_role(Role.VIEWER).get(reverse("contacts:opt_outs")))
    assert out.name in page and stay.name not in page


def test_opt_out_page_says_how_many_newest_opt_out_first_and_sorts_by_name(as_role, org, settings):
    now = timezone.now()
    for minutes, name in ((3, "阿部"), (1, "伊藤"), (2, "佐藤")):
        ContactFactory(organization=org, name=name, opted_out_at=now - timedelta(minutes=minutes))
    ContactFactory(organization=org, name="受信する人")
    client = as_role(Role.VIEWER)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    newest = body(client.get(reverse("contacts:opt_outs")))
    assert "1–3 / 3件" in newest and newest.index("伊藤") < newest.index("佐藤") < newest.index("阿部")
    by_name = body(client.get(reverse("contacts:opt_outs"), {"sort": "name"}))
    assert sorted(("伊藤", "佐藤", "阿部"), key=by_name.index) == sorted(("伊藤", "佐藤", "阿部"))
    unknown = body(client.get(reverse("contacts:opt_outs"), {"sort": "opt_out_method"}))
    assert unknown.index("伊藤") < unknown.index("佐藤") < unknown.index("阿部")


def test_lists_create_rename_and_errors_keep_input(as_role, org):
    client = as_role(Role.MARKETER)
    response = client.post(reverse("contacts:list_create"), {"name": "会員", "purpose": "promotion", "description": ""})
    assert response.status_code == 302
    contact_list = ContactList.objects.get(organization=org, name="会員")
    response = client.post(reverse("contacts:list_create"), {"name": "会員", "purpose": "transaction",
                                                              "description": "説明文"})
    assert "already exists" in body(response) and "説明文" in body(response)
    response = client.post(reverse("contacts:list_edit", args=[contact_list.pk]),
                           {"name": "会員（販促）", "purpose": "transaction", "description": ""})
    assert response.status_code == 302
    contact_list.refresh_from_db()
    assert contact_list.name == "会員（販促）" and contact_list.purpose == ListPurpose.TRANSACTION
    assert "会員（販促）" in body(client.get(reverse("contacts:lists")))


def test_list_create_returns_to_the_import_page(as_role, org):
    client = as_role(Role.MARKETER)
    page = client.get(reverse("contacts:import")).content.decode()
    assert f"{reverse('contacts:list_create')}?next={reverse('contacts:import')}" in page
    response = client.post(reverse("contacts:list_create"), {"name": "新規", "purpose": "transaction",
                                                              "next": reverse("contacts:import")})
    assert response["Location"] == reverse("contacts:import")
    response = client.post(reverse("contacts:list_create"), {"name": "外部", "purpose": "transaction",
                                                              "next": "https://evil.example.com/"})
    assert response["Location"] == reverse("contacts:lists")


def test_import_page_preselects_the_list(as_role, org):
    first = ContactListFactory(organization=org)
    client = as_role(Role.MARKETER)
    assert f'value="{first.pk}" selected' in client.get(reverse("contacts:import")).content.decode()
    second = ContactListFactory(organization=org)
    page = client.get(reverse("contacts:import")).content.decode()
    assert f'value="{first.pk}" selected' not in page and f'value="{second.pk}" selected' not in page
    page = client.get(reverse("contacts:import"), {"list": second.pk}).content.decode()
    assert f'value="{second.pk}" selected' in page
    assert f"{reverse('contacts:import')}?list={second.pk}" in client.get(reverse("contacts:lists")).content.decode()


def test_viewer_cannot_post_lists(as_role):
    response = as_role(Role.VIEWER).post(reverse("contacts:list_create"), {"name": "x", "purpose": "promotion"})
    assert response.status_code == 403


def test_csv_export_neutralises_formulas_and_writes_numbers_as_the_screen_shows_them(as_role, org):
    ContactFactory(organization=org, phone="+819012345678", name="=HYPERLINK(\"http://evil\")",
                   attributes={"memo": "+SUM(1)", "note": "-2", "tag": "@x", "ok": "普通"})
    ContactFactory(organization=org, phone="+819011112222", name="\tタブ")
    ContactFactory(organization=OrganizationFactory(), phone="+819099999999", name="他社")
    response = as_role(Role.MARKETER).get(reverse("contacts:export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows[0]
    assert header[:2] == ["Mobile number", "Name"]
    by_phone = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    # 090-1234-5678 as on the screen: a digit first, so no visible ' (and an import reads it back)
    assert set(by_phone) == {"090-1234-5678", "090-1111-2222"}
    first = by_phone["090-1234-5678"]
    assert first["Name"] == "'=HYPERLINK(\"http://evil\")"
    assert first["memo"] == "'+SUM(1)" and first["note"] == "'-2" and first["tag"] == "'@x" and first["ok"] == "普通"
    assert by_phone["090-1111-2222"]["Name"] == "'\tタブ"
    assert header[-1] == "Other attributes" and first["Other attributes"] == ""


def test_export_respects_filters(as_role, org):
    ContactFactory(organization=org, name="停止", opted_out_at=timezone.now())
    ContactFactory(organization=org, name="受信")
    response = as_role(Role.ADMIN).get(reverse("contacts:export"), {"opted_out": "yes"})
    text = b"".join(response.streaming_content).decode("utf-8")
    assert "停止" in text and "受信" not in text


SJIS = ("電話番号,氏名,同意日時\r\n090-1234-5678,山田 太郎,2024/04/01\r\n03-1234-5678,固定,2024/04/01\r\n"
        "09012345678,重複,2024/04/01\r\n080-1111-2222,同意なし,\r\n").encode("cp932")


def test_import_flow_upload_mapping_progress_report(as_role, org, settings, tmp_path, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    enqueued = []
    from campaigns import tasks

    monkeypatch.setattr(tasks.import_contacts, "delay", lambda job_id: enqueued.append(job_id))
    contact_list = ContactListFactory(organization=org, purpose=ListPurpose.PROMOTION, name="会員")
    client = as_role(Role.MARKETER)
    response = client.post(reverse("contacts:import"), {"file": SimpleUploadedFile("会員.csv", SJIS),
                                                         "contact_list": contact_list.pk})
    assert response.status_code == 302
    job = ImportJob.objects.get(organization=org)
    page = body(client.get(response["Location"]))
    assert "電話番号" in page and "090-1234-5678" in page
    assert "Character encoding: Shift_JIS (Japanese Excel)" in page and "cp932" not in page

    # an error comes back beside its field, with the choices kept
    response = client.post(reverse("contacts:import_mapping", args=[job.pk]),
                           {"col_0": "phone", "col_1": "name", "col_2": "", "method": "import", "source": "",
                            "wording_version": "v9"})
    assert response.status_code == 200
    assert "promotional list" in field_errors(body(response), "id_attested")
    assert 'value="v9"' in body(response)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("contacts:import_mapping", args=[job.pk]),
                               {"col_0": "phone", "col_1": "name", "col_2": "consent_granted_at", "method": "paper",
                                "source": "店頭申込書", "wording_version": "v9"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED

    progress_url = reverse("contacts:import_progress", args=[job.pk])
    response = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in body(response)
    assert "<html" not in body(response)

    import_job_run(job)  # what the task does
    response = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # stop polling
    page = body(response)
    assert "hx-trigger" not in page
    assert "100%" in page
    job.refresh_from_db()
    assert (job.created_count, job.error_count) == (1, 3)
    for row in ("3", "4", "5"):
        assert f'<td class="num">{row}</td>' in page
    assert "Duplicate: the same number is on row 2." in page
    assert "No consent" in page

    report = client.get(reverse("contacts:import_report", args=[job.pk]))
    text = b"".join(report.streaming_content).decode("utf-8").lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Row", "Value", "Reason", "Result"]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5"]
    assert rows[1][1] == "03-1234-5678"
    assert enqueued == [job.pk]


# --- The first import into a promotional list ------------------------------------------------------

DATED = "電話番号,氏名,同意日\r\n090-1234-5678,山田 太郎,2024/04/01\r\n".encode("cp932")
UNDATED = "電話番号,氏名\r\n090-1234-5678,山田 太郎\r\n".encode("cp932")


def upload(client, org, data, name="会員.csv"):
    contact_list = ContactListFactory(organization=org, purpose=ListPurpose.PROMOTION, name=f"会員 {name}")
    response = client.post(reverse("contacts:import"), {"file": SimpleUploadedFile(name, data),
                                                         "contact_list": contact_list.pk})
    assert response.status_code == 302
    return ImportJob.objects.get(contact_list=contact_list)


def test_a_consent_date_column_is_enough_to_import_into_a_promotional_list(as_role, org, settings, tmp_path,
                                                                          django_capture_on_commit_callbacks):
    from campaigns.models import CONSENT_WORDING_NOT_STATED, Consent

    settings.MEDIA_ROOT = tmp_path
    client = as_role(Role.MARKETER)
    job = upload(client, org, DATED)
    page = body(client.get(reverse("contacts:import_mapping", args=[job.pk])))
    # The date column was recognised: neither the confirmation nor the wording version is required.
    assert not required_marked(page, "id_attested") and not required_marked(page, "id_wording_version")
    assert "One column must be the mobile number." in page
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("contacts:import_mapping", args=[job.pk]),
                               {"col_0": "phone", "col_1": "name", "col_2": "consent_granted_at",
                                "method": "paper", "source": "", "wording_version": ""})
    assert response.status_code == 302
    job = import_job_run(ImportJob.objects.get(pk=job.pk))
    assert (job.created_count, job.error_count) == (1, 0)
    consent = Consent.objects.get(contact__organization=org)
    assert consent.wording_version == CONSENT_WORDING_NOT_STATED and consent.method == "paper"
    detail = body(client.get(reverse("contacts:detail", args=[consent.contact_id])))
    assert "not stated in the imported file" in detail


def test_without_a_date_column_the_required_fields_are_marked_and_refusals_sit_at_them(as_role, org, settings,
                                                                                       tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = as_role(Role.MARKETER)
    job = upload(client, org, UNDATED)
    url = reverse("contacts:import_mapping", args=[job.pk])
    page = body(client.get(url))
    assert required_marked(page, "id_attested") and required_marked(page, "id_wording_version")

    page = body(client.post(url, {"col_0": "phone", "col_1": "name", "method": "import", "source": "",
                                  "wording_version": ""}))
    assert "promotional list" in field_errors(page, "id_attested")
    assert "version of the consent wording" in field_errors(page, "id_wording_version")
    assert "see the messages beside the fields" in page  # the banner only points to them

    page = body(client.post(url, {"col_0": "", "col_1": "name", "attested": "on", "method": "import",
                                  "source": "", "wording_version": "2024-04"}))
    assert "exactly one column as the mobile number" in field_errors(page, "columns")
    page = body(client.post(url, {"col_0": "phone", "col_1": "phone", "attested": "on", "method": "import",
                                  "source": "", "wording_version": "2024-04"}))
    assert "exactly one column as the mobile number" in field_errors(page, "columns")
    response = client.post(url, {"col_0": "phone", "col_1": "name", "attested": "on", "method": "import",
                                 "source": "", "wording_version": "2024-04"})
    assert response.status_code == 302  # confirmed, with the wording version: accepted
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED


def test_the_mapping_page_in_japanese_says_the_encoding_and_marks_required_fields(client, org, settings, tmp_path):
    from django.conf import settings as django_settings

    settings.MEDIA_ROOT = tmp_path
    client.force_login(member(org, Role.MARKETER))
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "ja"
    job = upload(client, org, UNDATED)
    page = body(client.get(reverse("contacts:import_mapping", args=[job.pk])))
    assert "文字コード: Shift_JIS（Excel日本語版）" in page
    assert "cp932" not in page and "として読み込みました" not in page
    assert required_marked(page, "id_wording_version") and ">必須<" in page
    page = body(client.post(reverse("contacts:import_mapping", args=[job.pk]),
                            {"col_0": "phone", "col_1": "name", "method": "import", "source": "", "wording_version": ""}))
    assert "同意文言のバージョン" in field_errors(page, "id_wording_version")
    bom = upload(client, org, "\ufeff電話番号\r\n090-1234-5678\r\n".encode(), name="utf8.csv")
    assert "文字コード: UTF-8（Excel形式）" in body(client.get(reverse("contacts:import_mapping", args=[bom.pk])))


def test_the_row_report_shows_rows_imported_with_an_unknown_consent_method(as_role, org, settings, tmp_path):
    from campaigns.imports import import_job_set_mapping

    settings.MEDIA_ROOT = tmp_path
    client = as_role(Role.MARKETER)
    data = "電話番号,同意日,同意方法\r\n090-1234-5678,2024/04/01,店頭申込書\r\n03-1234-5678,2024/04/01,Web\r\n"
    job = upload(client, org, data.encode("cp932"))
    import_job_set_mapping(job, job.mapping, {"method": "import"})
    import_job_run(job)
    page = body(client.get(reverse("contacts:import_status", args=[job.pk])))
    assert "店頭申込書" in page and "Paper form" in page and "kept as the consent source" in page
    assert ">Imported<" in page and ">Refused<" in page
    report = client.get(reverse("contacts:import_report", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8").lstrip("\ufeff"))))
    assert [(row[0], row[1], row[3]) for row in rows[1:]] == [("2", "店頭申込書", "Imported"),
                                                             ("3", "03-1234-5678", "Refused")]
