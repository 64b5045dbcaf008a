"""The contact import service and task: encodings, XLSX, row report, consent, upserts."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.imports import (
    TARGET_ATTRIBUTE,
    TARGET_CONSENT_GRANTED_AT,
    TARGET_IGNORE,
    TARGET_NAME,
    TARGET_PHONE,
    csv_safe,
    import_job_create,
    import_job_run,
    import_job_set_mapping,
    row_report_lines,
)
from campaigns.models import Consent, Contact, ContactListMembership, ImportStatus, ListPurpose
from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.campaigns.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db

SJIS_CSV = (
    "電話番号,氏名,会員ランク,同意日時\r\n"
    "090-1234-5678,山田 太郎,ゴールド,2024/04/01 10:00\r\n"  # row 2 ok
    "０８０－２２２２－３３３３,佐藤 花子,シルバー,2024-05-02\r\n"  # row 3 ok (full-width)
    "03-1234-5678,固定 電話,,2024/04/01\r\n"  # row 4 landline
    "050-1234-5678,アイピー,,2024/04/01\r\n"  # row 5 VoIP
    "abc,不明,,2024/04/01\r\n"  # row 6 malformed
    "09012345678,山田 重複,,2024/04/01\r\n"  # row 7 duplicate of row 2
    "070-3333-4444,同意なし,,\r\n"  # row 8 no consent (promotional list)
    "\r\n"  # blank line: skipped, not a row error
    "080-5555-6666,鈴木 一郎,ブロンズ,2024/06/01 09:30\r\n"  # row 10 ok
)


@pytest.fixture
def org():
    return OrganizationFactory()


def make_job(org, data: bytes, name="contacts.csv", purpose=ListPurpose.PROMOTION):
    contact_list = ContactListFactory(organization=org, purpose=purpose)
    return import_job_create(org, UserFactory(), SimpleUploadedFile(name, data), contact_list)


def run(job, mapping=None, **defaults):
    import_job_set_mapping(job, mapping or job.mapping, {"wording_version": "v1", **defaults})
    return import_job_run(job)


def test_cp932_csv_with_bad_rows(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, SJIS_CSV.encode("cp932"))
    assert job.encoding == "cp932"
    assert job.encoding_label == "Shift_JIS (Japanese Excel)"
    assert job.headers == ["電話番号", "氏名", "会員ランク", "同意日時"]
    assert job.mapping == {"0": TARGET_PHONE, "1": TARGET_NAME, "2": TARGET_ATTRIBUTE, "3": TARGET_CONSENT_GRANTED_AT}
    assert job.sample_rows[0][0] == "090-1234-5678"

    job = run(job)
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.updated_count, job.error_count) == (3, 0, 5)
    assert job.processed_rows == job.total_rows == 8
    reasons = {error["row"]: error["reason"] for error in job.row_errors}
    assert sorted(reasons) == [4, 5, 6, 7, 8]
    assert "landline" in reasons[4]
    assert "050" in reasons[5]
    assert "is not a phone number" in reasons[6]
    assert reasons[7] == "Duplicate: the same number is on row 2."
    assert "No consent" in reasons[8]

    contact = Contact.objects.get(organization=org, phone="+819012345678")
    assert contact.name == "山田 太郎" and contact.attributes == {"会員ランク": "ゴールド"}
    assert Contact.objects.filter(organization=org, phone="+818022223333").exists()
    assert ContactListMembership.objects.filter(contact_list=job.contact_list).count() == 3
    consent = Consent.objects.get(contact=contact)
    assert consent.method == "import" and consent.wording_version == "v1" and consent.source == "contacts.csv"
    assert consent.granted_at.isoformat() == "2024-04-01T01:00:00+00:00"  # 10:00 Asia/Tokyo

    lines = "".join(row_report_lines(job)).splitlines()
    assert lines[0] == "Row,Value,Reason,Result"
    assert lines[1].startswith("4,03-1234-5678,") and lines[1].endswith(",Refused")
    assert len(lines) == 6


def test_utf8_bom_csv_and_reimport_updates_without_losing_data(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    existing = ContactFactory(organization=org, phone="+819011112222", name="既存", attributes={"店舗": "渋谷"})
    data = "\ufeffphone,name,rank\n090-1111-2222,,gold\n090-3333-4444,New Person,\n".encode()
    job = make_job(org, data, purpose=ListPurpose.TRANSACTION)
    assert job.encoding == "utf-8-sig"
    assert job.encoding_label == "UTF-8 (Excel format)"  # Excel's “CSV UTF-8” starts with a BOM
    assert job.headers[0] == "phone"  # the BOM is not part of the first header
    job = run(job)
    assert (job.created_count, job.updated_count, job.error_count) == (1, 1, 0)
    existing.refresh_from_db()
    assert existing.name == "既存"  # an empty cell does not erase the name
    assert existing.attributes == {"店舗": "渋谷", "rank": "gold"}
    assert not Consent.objects.filter(contact=existing).exists()  # transactional: no consent needed


def test_importing_the_same_file_again_adds_no_duplicate_consent(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    first = run(make_job(org, SJIS_CSV.encode("cp932")))
    contact_list = first.contact_list
    again = import_job_create(org, None, SimpleUploadedFile("again.csv", SJIS_CSV.encode("cp932")), contact_list)
    again = run(again)
    assert (again.created_count, again.updated_count) == (0, 3)
    assert Consent.objects.filter(organization=org).count() == 3
    assert ContactListMembership.objects.filter(contact_list=contact_list).count() == 3


def test_an_empty_name_cell_keeps_the_stored_name_and_a_filled_one_replaces_it(org, settings, tmp_path):
    # The one contact upsert (campaigns.contacts) behaves alike for the import and the API's bulk upsert.
    settings.MEDIA_ROOT = tmp_path
    kept = ContactFactory(organization=org, phone="+819011112222", name="既存")
    renamed = ContactFactory(organization=org, phone="+819033334444", name="旧姓")
    data = "phone,name\n090-1111-2222,\n090-3333-4444,新姓\n090-5555-6666,\n".encode()
    job = run(make_job(org, data, purpose=ListPurpose.TRANSACTION))
    assert (job.created_count, job.updated_count, job.error_count) == (1, 2, 0)
    kept.refresh_from_db()
    renamed.refresh_from_db()
    assert kept.name == "既存" and renamed.name == "新姓"
    assert Contact.objects.get(organization=org, phone="+819055556666").name == ""


def test_utf8_without_bom(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, "電話,名前\n090-1234-5678,テスト\n".encode(), purpose=ListPurpose.TRANSACTION)
    assert job.encoding == "utf-8"
    assert job.encoding_label == "UTF-8"
    job = run(job)
    assert job.created_count == 1
    assert Contact.objects.get(organization=org).name == "テスト"


def test_xlsx(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["携帯番号", "お名前", "同意日"])
    sheet.append([9012345678, "数値の番号", "2024-04-01"])  # Excel dropped the leading 0
    sheet.append(["080-2222-3333", "文字の番号", None])
    sheet.append(["0312345678", "固定", "2024-04-01"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = make_job(org, buffer.getvalue(), name="contacts.xlsx")
    assert job.file_format == "xlsx"
    assert job.mapping["0"] == TARGET_PHONE and job.mapping["2"] == TARGET_CONSENT_GRANTED_AT
    job = run(job, attested=True)
    assert job.status == ImportStatus.DONE
    assert job.created_count == 2
    assert [error["row"] for error in job.row_errors] == [4]
    attested = Consent.objects.get(contact__phone="+818022223333")
    assert attested.evidence  # attested consent says so


def test_mapping_requires_phone_and_consent_for_promotions(org, settings, tmp_path):
    from django.core.exceptions import ValidationError

    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, b"phone,name\n09012345678,a\n")
    with pytest.raises(ValidationError) as error:
        import_job_set_mapping(job, {"0": TARGET_IGNORE, "1": TARGET_NAME}, {"wording_version": "v1"})
    assert "exactly one column" in error.value.message_dict["columns"][0]
    with pytest.raises(ValidationError) as error:
        import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME}, {"wording_version": "v1"})
    assert "promotional list" in error.value.message_dict["attested"][0]
    with pytest.raises(ValidationError) as error:  # a confirmation alone must name the wording
        import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME}, {"attested": True})
    assert list(error.value.message_dict) == ["wording_version"]
    with pytest.raises(ValidationError) as error:  # each column chosen twice says so at the column
        import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_PHONE}, {"attested": True, "wording_version": "v1"})
    assert "columns" in error.value.message_dict
    import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME}, {"attested": True, "wording_version": "v1"})
    job = import_job_run(job)
    assert job.created_count == 1


def test_not_text_is_refused(org, settings, tmp_path):
    from django.core.exceptions import ValidationError

    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ValidationError):
        make_job(org, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x81\x82" * 20, name="contacts.csv")


def test_a_job_left_running_by_a_dead_worker_is_taken_over(org, settings, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, b"phone\n09012345678\n", purpose=ListPurpose.TRANSACTION)
    import_job_set_mapping(job, job.mapping, {})
    type(job).objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, started_at=timezone.now())
    assert import_job_run(job).created_count == 0  # a live worker has it
    type(job).objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    job = import_job_run(job)
    assert job.status == ImportStatus.DONE and job.created_count == 1


def test_run_twice_is_a_no_op(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, b"phone\n09012345678\n", purpose=ListPurpose.TRANSACTION)
    job = run(job)
    again = import_job_run(job)
    assert again.created_count == 1 and Contact.objects.filter(organization=org).count() == 1


def test_through_the_celery_task_eagerly(org, settings, tmp_path, django_capture_on_commit_callbacks):
    """The real task, run eagerly: upload → mapping view → on_commit enqueue → import."""
    from django.urls import reverse

    from accounts.models import Role
    from tests.accounts.factories import member

    settings.MEDIA_ROOT = tmp_path
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        user = member(org, Role.MARKETER)
        contact_list = ContactListFactory(organization=org, purpose=ListPurpose.PROMOTION)
        from django.test import Client

        client = Client()
        client.force_login(user)
        response = client.post(reverse("contacts:import"), {
            "file": SimpleUploadedFile("shop.csv", SJIS_CSV.encode("cp932")), "contact_list": contact_list.pk})
        assert response.status_code == 302
        job = contact_list.import_jobs.get()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("contacts:import_mapping", args=[job.pk]), {
                "col_0": "phone", "col_1": "name", "col_2": "attribute", "col_3": "consent_granted_at",
                "method": "web_form", "source": "https://shop.example.jp/join", "wording_version": "2024-04"})
        assert response.status_code == 302
        job.refresh_from_db()
        assert job.status == ImportStatus.DONE
        assert job.created_count == 3 and job.error_count == 5
        assert Consent.objects.filter(organization=org, method="web_form", wording_version="2024-04").count() == 3
    finally:
        app.conf.task_always_eager = False


@pytest.mark.parametrize(
    "value,expected",
    [("=SUM(A1)", "'=SUM(A1)"), ("+81", "'+81"), ("-1", "'-1"), ("@cmd", "'@cmd"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("山田", "山田"), ("", ""), (None, "")],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def test_a_column_chosen_twice_is_refused_at_each_of_those_columns(org, settings, tmp_path):
    from django.core.exceptions import ValidationError

    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, "電話,氏名,お名前\n09012345678,a,b\n".encode(), purpose=ListPurpose.TRANSACTION)
    with pytest.raises(ValidationError) as error:
        import_job_set_mapping(job, {"0": TARGET_PHONE, "1": TARGET_NAME, "2": TARGET_NAME}, {})
    assert sorted(error.value.message_dict) == ["column_1", "column_2"]
    assert error.value.message_dict["column_2"] == ["Only one column can be “Name”."]


def test_a_consent_date_column_needs_no_wording_version_which_is_then_recorded_as_not_stated(org, settings, tmp_path):
    from campaigns.models import CONSENT_WORDING_NOT_STATED

    settings.MEDIA_ROOT = tmp_path
    job = make_job(org, "電話番号,同意日,文言\n090-1234-5678,2024/04/01,\n080-2222-3333,2024/04/02,2024-03\n".encode())
    import_job_set_mapping(job, job.mapping, {"method": "web_form"})  # nothing typed: the file gives the dates
    job = import_job_run(job)
    assert (job.created_count, job.error_count) == (2, 0)
    versions = dict(Consent.objects.values_list("contact__phone", "wording_version"))
    assert versions == {"+819012345678": CONSENT_WORDING_NOT_STATED, "+818022223333": "2024-03"}


def test_an_unknown_consent_method_keeps_the_row_and_says_how_it_was_recorded(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = ("電話番号,同意日,同意方法,同意取得元\n"
            "090-1234-5678,2024/04/01,店頭申込書,\n"  # nearest: a paper form
            "080-2222-3333,2024/04/02,店頭申込書,渋谷店\n"
            "070-3333-4444,2024/04/03,ＬＩＮＥ友だち,\n"  # nothing near: the file's method
            "090-5555-6666,2024/04/04,Web,\n")  # a known method: no note
    job = make_job(org, data.encode())
    import_job_set_mapping(job, job.mapping, {"method": "import", "wording_version": "v1"})
    job = import_job_run(job)
    assert (job.created_count, job.error_count) == (4, 0)
    consents = {c.contact.phone: (c.method, c.source) for c in Consent.objects.select_related("contact")}
    assert consents == {
        "+819012345678": ("paper", "店頭申込書"),
        "+818022223333": ("paper", "渋谷店 (店頭申込書)"),
        "+817033334444": ("import", "ＬＩＮＥ友だち"),
        "+819055556666": ("web_form", "contacts.csv"),
    }
    notes = {entry["value"]: entry for entry in job.row_errors}
    assert set(notes) == {"店頭申込書", "ＬＩＮＥ友だち"} and all(entry["imported"] for entry in notes.values())
    assert notes["店頭申込書"]["row"] == 2
    assert "recorded as “Paper form”, the nearest" in notes["店頭申込書"]["reason"]
    assert "(2 rows, first on row 2)" in notes["店頭申込書"]["reason"]
    assert "the method chosen for the file" in notes["ＬＩＮＥ友だち"]["reason"]
    lines = "".join(row_report_lines(job)).splitlines()
    assert lines[1].startswith("2,店頭申込書,") and lines[1].endswith(",Imported")


@pytest.mark.parametrize("text,method", [("店頭申込書", "paper"), ("来店時アンケート", "in_store"),
                                         ("Webサイト登録", "web_form"), ("ＳＭＳ返信", "keyword"), ("LINE", None)])
def test_nearest_consent_method(text, method):
    from campaigns.imports import nearest_consent_method

    assert nearest_consent_method(text) == method
