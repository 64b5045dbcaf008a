"""Uploads that would exhaust the server are refused with the limit named (security issue 14, item 5).

An XLSX file is a zip: its unpacked size and its row count are checked before openpyxl parses
anything; a CSV file's rows are counted before any is imported; the import page stops reading an
upload past the size limit; a decompression-bomb image is refused by Pillow's pixel limit; media
above the per-kind limit of +Message is refused.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import Role
from accounts.services import logo_to_png
from campaigns import imports
from campaigns.imports import import_job_create, import_job_run, import_job_set_mapping
from campaigns.media import store_media
from campaigns.models import Contact, ImportJob, ImportStatus, ListPurpose
from tests.accounts.factories import OrganizationFactory, UserFactory, member
from tests.campaigns.factories import ContactListFactory

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


@pytest.fixture
def roots(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return tmp_path


@pytest.fixture
def organization():
    return OrganizationFactory()


@pytest.fixture
def parsed(monkeypatch):
    """Every openpyxl.load_workbook call the import makes (recorded, then really made)."""
    calls = []
    real = openpyxl.load_workbook

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(imports.openpyxl, "load_workbook", spy)
    return calls


def create(organization, data: bytes, name: str):
    contact_list = ContactListFactory(organization=organization, purpose=ListPurpose.TRANSACTION)
    return import_job_create(organization, UserFactory(), SimpleUploadedFile(name, data), contact_list)


def xlsx(rows: int) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["電話番号", "氏名"])
    for index in range(rows):
        sheet.append([f"090{index:08d}", f"名前{index}"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_upload_limits_xlsx_part_unpacking_past_the_cap_is_refused_before_parsing(roots, organization, parsed):
    # A real bomb: 65 MB of shared strings (openpyxl holds them in memory whole) in a few kB of zip.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with zipfile.ZipFile(io.BytesIO(xlsx(2))) as real:
            for item in real.infolist():
                archive.writestr(item.filename, real.read(item.filename))
        archive.writestr("xl/sharedStrings2.xml", b"<si><t>a</t></si>" * (65 * MB // 17))
    assert len(bomb.getvalue()) < MB

    with pytest.raises(ValidationError) as refused:
        create(organization, bomb.getvalue(), "contacts.xlsx")

    assert refused.value.messages == [
        "The Excel file has a part of more than 64 MB (xl/sharedStrings2.xml). Save it as CSV."
    ]
    assert parsed == []  # openpyxl never saw it
    assert not ImportJob.objects.exists() and not list((roots / "private").rglob("*.*"))


def test_upload_limits_xlsx_total_unpacked_size_is_capped(roots, organization, parsed, monkeypatch):
    monkeypatch.setattr(imports, "XLSX_MAX_UNCOMPRESSED", 4096)

    with pytest.raises(ValidationError) as refused:
        create(organization, xlsx(200), "contacts.xlsx")

    assert "unpacks to more than 0 MB" in refused.value.messages[0]
    assert parsed == []


def test_upload_limits_xlsx_declared_rows_past_the_cap_are_refused_and_parsing_is_read_only(
    roots, organization, parsed, monkeypatch
):
    monkeypatch.setattr(imports, "IMPORT_MAX_ROWS", 5)

    with pytest.raises(ValidationError) as refused:
        create(organization, xlsx(6), "contacts.xlsx")

    assert refused.value.messages == ["The file has 6 rows; the limit is 5. Split it into smaller files."]
    assert parsed and all(call.get("read_only") is True for call in parsed)  # streamed, never loaded whole
    job = create(organization, xlsx(5), "contacts.xlsx")  # at the limit: fine
    assert job.status == ImportStatus.MAPPING


def test_upload_limits_csv_rows_past_the_cap_fail_the_job_before_any_row_is_imported(roots, organization, monkeypatch):
    monkeypatch.setattr(imports, "IMPORT_MAX_ROWS", 5)
    data = ("電話番号,氏名\r\n" + "".join(f"090{index:08d},名前{index}\r\n" for index in range(6))).encode()
    job = create(organization, data, "contacts.csv")
    import_job_set_mapping(job, job.mapping, {})

    job = import_job_run(job)

    assert job.status == ImportStatus.FAILED
    assert job.failure == "The file has more than 5 rows. Split it into smaller files."
    assert not Contact.objects.filter(organization=organization).exists()  # nothing half-written
    assert job.file.name == ""


def test_upload_limits_import_page_stops_reading_an_upload_past_the_size_limit(
    roots, organization, client, monkeypatch
):
    monkeypatch.setattr(imports, "IMPORT_MAX_BYTES", 1000)
    created = []
    monkeypatch.setattr("campaigns.views.contact_import.import_job_create", lambda *a: created.append(a))
    contact_list = ContactListFactory(organization=organization)
    client.force_login(member(organization, Role.MARKETER))

    answer = client.post(reverse("contacts:import"), {
        "contact_list": contact_list.pk, "file": SimpleUploadedFile("big.csv", b"090,x\r\n" * 2000),
    })

    assert answer.status_code == 200
    assert "The file is larger than 100 MB. Split it into smaller files." in answer.content.decode()
    assert created == []  # refused while reading, before the import service saw a file


# --- images and campaign media --------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` pixels and holds almost nothing: a decompression
    bomb as far as a decoder that believed it would be concerned."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b""
    )


def test_upload_limits_decompression_bomb_image_is_refused_with_a_clear_message(roots, organization):
    with pytest.raises(ValidationError) as refused:
        store_media(SimpleUploadedFile("bomb.png", png_header(20_000, 20_000)), organization)

    assert refused.value.messages == ["The image is too large (more than 40 megapixels)."]
    assert not list((roots / "media").rglob("*.*"))


def test_upload_limits_decompression_bomb_logo_is_refused_with_a_clear_message():
    with pytest.raises(ValidationError) as refused:
        logo_to_png(SimpleUploadedFile("bomb.png", png_header(100_000, 100_000)))

    assert refused.value.messages == [
        "The image declares far more pixels than a logo may have; the limit is 2048×2048."
    ]


def test_upload_limits_media_above_its_kinds_limit_is_refused_with_the_limit_named(roots, organization):
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(picture, "PNG")
    big_image = picture.getvalue() + b"\0" * (11 * MB)  # a readable PNG, 11 MB on the wire

    with pytest.raises(ValidationError) as refused:
        store_media(SimpleUploadedFile("big.png", big_image), organization, expected_kind="image")

    assert refused.value.messages == ["An image can be at most 10 MB on +Message; this one is 11.0 MB."]
    assert not list((roots / "media").rglob("*.*"))
    # The same size is fine for a document, whose limit is higher.
    stored = store_media(SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"\0" * (11 * MB)), organization)
    assert stored.kind == "file" and stored.size > 11 * MB
