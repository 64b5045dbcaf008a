"""Contact import: read a CSV (UTF-8 with or without BOM, or CP932 as Japanese Excel writes it) or an
XLSX file, map its columns, and upsert the good rows while reporting every bad one.

Flow: ``import_job_create`` stores the upload and reads the header and a few sample rows;
``import_job_set_mapping`` records what each column means; ``import_job_run`` (called by the Celery
task campaigns.tasks.import_contacts) streams the rows, validates each one (mobile number via
core.phone.normalize_mobile, duplicates within the file, consent for promotional lists), and
writes them in chunks through the one contact upsert, ``campaigns.contacts.contacts_upsert`` (an
empty name cell keeps the stored name). Memory stays constant: the file is streamed and only one
chunk is held at a time (plus the set of numbers already seen, for duplicate detection).

The file holds every number and name it lists, so it is kept in private storage under a random
name (``ImportJob.file``) and deleted as soon as the job ends, done or failed; ``import_files_sweep``
(hourly) deletes the files of jobs left waiting for their mapping and files no job owns.

Limits, so an upload cannot exhaust the server: at most ``IMPORT_MAX_BYTES`` as uploaded (the view
stops reading past it); an XLSX file is a zip, so its uncompressed size is checked from the zip's
directory before anything is parsed (``XLSX_MAX_UNCOMPRESSED`` in all, ``XLSX_MAX_PART`` for each
part that openpyxl reads whole, such as the shared strings) and the sheet's declared row count
too; it is then read with openpyxl in read-only mode, streamed row by row. No file may have more
than ``IMPORT_MAX_ROWS`` data rows: counted before anything is imported (the CSV file is read once
for it, an XLSX sheet's dimension is trusted) and enforced again while reading.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import openpyxl
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.services import audit_record
from campaigns.contacts import UPSERT_BATCH, ContactRow, contacts_upsert
from campaigns.fields import field_value_convert, organization_fields
from campaigns.models import (
    CONSENT_WORDING_NOT_STATED,
    ConsentMethod,
    ContactList,
    ImportJob,
    ImportStatus,
    ListPurpose,
)
from core.csv import csv_safe
from core.phone import normalize_mobile

logger = logging.getLogger(__name__)

CHUNK_SIZE = UPSERT_BATCH  # rows held and written at a time: one INSERT statement per chunk
STALE_AFTER = timedelta(minutes=30)
IMPORT_MAX_BYTES = 100 * 1024 * 1024  # the file as uploaded, CSV or XLSX
IMPORT_MAX_ROWS = 1_000_000  # data rows per file
XLSX_MAX_UNCOMPRESSED = 1024 * 1024 * 1024  # all parts of the zip together, uncompressed
XLSX_MAX_PART = 64 * 1024 * 1024  # any part but a worksheet (those openpyxl holds in memory whole)
SAMPLE_ROWS = 3
ATTRIBUTE_MAX = 50  # custom attribute columns per file
XLSX_MAGIC = b"PK\x03\x04"

# What a column can mean.
TARGET_IGNORE = ""
TARGET_PHONE = "phone"
TARGET_NAME = "name"
TARGET_ATTRIBUTE = "attribute"
TARGET_CONSENT_GRANTED_AT = "consent_granted_at"
TARGET_CONSENT_METHOD = "consent_method"
TARGET_CONSENT_SOURCE = "consent_source"
TARGET_CONSENT_WORDING = "consent_wording_version"
TARGET_CONSENT_EVIDENCE = "consent_evidence"

TARGET_CHOICES = [
    (TARGET_IGNORE, gettext_lazy("Do not import")),
    (TARGET_PHONE, gettext_lazy("Mobile number")),
    (TARGET_NAME, gettext_lazy("Name")),
    (TARGET_ATTRIBUTE, gettext_lazy("Custom attribute (named after the column)")),
    (TARGET_CONSENT_GRANTED_AT, gettext_lazy("Consent: date given")),
    (TARGET_CONSENT_METHOD, gettext_lazy("Consent: method")),
    (TARGET_CONSENT_SOURCE, gettext_lazy("Consent: source")),
    (TARGET_CONSENT_WORDING, gettext_lazy("Consent: wording version")),
    (TARGET_CONSENT_EVIDENCE, gettext_lazy("Consent: evidence")),
]
SINGLE_TARGETS = {t for t, _label in TARGET_CHOICES} - {TARGET_IGNORE, TARGET_ATTRIBUTE}
# A column mapped to one of the organization's typed custom fields (campaigns.fields): "field:<key>".
TARGET_FIELD_PREFIX = "field:"


def target_choices(organization_id) -> list:
    """What a column can mean for this organization: the fixed targets, then its custom fields."""
    fields = [
        (f"{TARGET_FIELD_PREFIX}{field.key}", f"{field.label} ({field.get_kind_display()})")
        for field in organization_fields(organization_id).values()
    ]
    if not fields:
        return list(TARGET_CHOICES)
    return [*TARGET_CHOICES, (gettext_lazy("Custom fields"), fields)]

# Header words that suggest a column's meaning (compared after NFKC and lower-casing).
_GUESSES = [
    (TARGET_PHONE, ("電話", "携帯", "phone", "mobile", "tel", "msisdn", "番号")),
    (TARGET_CONSENT_GRANTED_AT, ("同意日", "同意日時", "consent_date", "granted_at", "consented_at", "opt_in_at")),
    (TARGET_CONSENT_METHOD, ("同意方法", "取得方法", "consent_method", "method")),
    (TARGET_CONSENT_SOURCE, ("同意取得元", "取得元", "consent_source", "source")),
    (TARGET_CONSENT_WORDING, ("文言", "wording", "規約バージョン")),
    (TARGET_CONSENT_EVIDENCE, ("証跡", "evidence")),
    (TARGET_NAME, ("氏名", "名前", "お名前", "name", "顧客名")),
]

_METHOD_ALIASES = {
    "web": ConsentMethod.WEB_FORM, "webform": ConsentMethod.WEB_FORM, "web_form": ConsentMethod.WEB_FORM,
    "form": ConsentMethod.WEB_FORM, "ウェブ": ConsentMethod.WEB_FORM, "webフォーム": ConsentMethod.WEB_FORM,
    "フォーム": ConsentMethod.WEB_FORM, "paper": ConsentMethod.PAPER, "紙": ConsentMethod.PAPER,
    "書面": ConsentMethod.PAPER, "申込書": ConsentMethod.PAPER, "import": ConsentMethod.IMPORT,
    "インポート": ConsentMethod.IMPORT, "api": ConsentMethod.API, "in_store": ConsentMethod.IN_STORE,
    "store": ConsentMethod.IN_STORE, "店頭": ConsentMethod.IN_STORE, "店舗": ConsentMethod.IN_STORE,
    "keyword": ConsentMethod.KEYWORD, "キーワード": ConsentMethod.KEYWORD,
}
# Words that, inside a longer cell (「店頭申込書」, 「Webサイト登録」), point to the nearest method; the
# longest word found wins (「申込書」 over 「店頭」: a form filled in at a shop is a paper form).
_METHOD_HINTS = sorted(
    {**_METHOD_ALIASES, "申込": ConsentMethod.PAPER, "用紙": ConsentMethod.PAPER, "はがき": ConsentMethod.PAPER,
     "ハガキ": ConsentMethod.PAPER, "来店": ConsentMethod.IN_STORE, "窓口": ConsentMethod.IN_STORE,
     "レジ": ConsentMethod.IN_STORE, "サイト": ConsentMethod.WEB_FORM, "ホームページ": ConsentMethod.WEB_FORM,
     "オンライン": ConsentMethod.WEB_FORM, "ネット": ConsentMethod.WEB_FORM, "返信": ConsentMethod.KEYWORD}.items(),
    key=lambda item: -len(item[0]),
)

# --- reading files ------------------------------------------------------------------------------


def detect_csv_encoding(stream) -> str:
    """utf-8-sig if the whole file decodes as UTF-8 and starts with a BOM (Excel's “CSV UTF-8”),
    utf-8 without it, else cp932 (Shift_JIS as Japanese Excel writes it).

    Raises ValidationError when it is neither. ``ImportJob.encoding_label`` says which in words.
    """
    stream.seek(0)
    head = stream.read(4096)
    if b"\x00" in head:  # binary data, or UTF-16 which Excel calls "Unicode text"
        stream.seek(0)
        raise ValidationError(_("This is not a CSV text file. Save it from Excel as “CSV UTF-8” or as .xlsx."))
    for encoding in ("utf-8-sig", "cp932"):
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := stream.read(1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        stream.seek(0)
        if encoding == "utf-8-sig" and not head.startswith(codecs.BOM_UTF8):
            return "utf-8"
        return encoding
    stream.seek(0)
    raise ValidationError(
        _("The characters of this file could not be read (it is neither UTF-8 nor Shift_JIS text). "
          "Save it from Excel as “CSV UTF-8” or as .xlsx.")
    )


def _csv_dialect(sample: str):
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        return csv.excel


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()


class _Rows:
    """Iterates the data rows of an import file as (row number, [cell, …]); row 1 is the header."""

    def __init__(self, job: ImportJob):
        self.job = job

    def __enter__(self):
        self.binary = self.job.file.open("rb")
        if self.job.file_format == "xlsx":
            self.workbook = openpyxl.load_workbook(self.binary, read_only=True, data_only=True)
            sheet = self.workbook.worksheets[0]
            self.rows = (list(row) for row in sheet.iter_rows(values_only=True))
        else:
            self.text = io.TextIOWrapper(self.binary, encoding=self.job.encoding or "utf-8-sig", newline="")
            sample = self.text.read(16 * 1024)
            self.text.seek(0)
            self.rows = csv.reader(self.text, _csv_dialect(sample))
        return self

    def __exit__(self, *exc):
        if self.job.file_format == "xlsx":
            self.workbook.close()
        self.binary.close()

    def header(self):
        return next(self.rows, None)

    def __iter__(self):
        for number, row in enumerate(self.rows, start=2):
            if number - 1 > IMPORT_MAX_ROWS:
                raise ValidationError(too_many_rows_message())
            cells = [_cell(value) for value in row]
            if not any(cells):
                continue  # blank lines (and Excel's trailing empty rows) are not rows
            yield number, cells


def too_many_rows_message(rows: int | None = None) -> str:
    if rows is None:
        return _("The file has more than %(max)s rows. Split it into smaller files.") % {"max": f"{IMPORT_MAX_ROWS:,}"}
    return _("The file has %(rows)s rows; the limit is %(max)s. Split it into smaller files.") % {
        "rows": f"{rows:,}", "max": f"{IMPORT_MAX_ROWS:,}"}


def check_xlsx_size(stream) -> None:
    """Refuse an XLSX file whose parts would unpack to too much, from the zip's directory alone.

    The sizes are the ones the zip declares; Python's zipfile never unpacks more than a part
    declares, so they bound what parsing can read.
    """
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValidationError(_("The file could not be read as CSV or XLSX.")) from None
    finally:
        stream.seek(0)
    limit_mb = {"max": XLSX_MAX_UNCOMPRESSED // (1024 * 1024)}
    if sum(part.file_size for part in parts) > XLSX_MAX_UNCOMPRESSED:
        raise ValidationError(
            _("The Excel file unpacks to more than %(max)d MB. Split it into smaller files or save it as CSV.") % limit_mb
        )
    for part in parts:
        if not part.filename.startswith("xl/worksheets/") and part.file_size > XLSX_MAX_PART:
            raise ValidationError(
                _("The Excel file has a part of more than %(max)d MB (%(part)s). Save it as CSV.")
                % {"max": XLSX_MAX_PART // (1024 * 1024), "part": part.filename}
            )


def guess_target(header: str) -> str:
    text = unicodedata.normalize("NFKC", header or "").strip().lower()
    for target, words in _GUESSES:
        if any(word in text for word in words):
            return target
    return TARGET_ATTRIBUTE if text else TARGET_IGNORE


def import_job_create(organization, user, uploaded, contact_list: ContactList) -> ImportJob:
    """Store an uploaded file, recognise its format by its bytes, read its header and sample rows."""
    if contact_list.organization_id != organization.id:
        raise ValidationError(_("Unknown contact list."))
    if uploaded.size > IMPORT_MAX_BYTES:
        raise ValidationError(_("The file is larger than 100 MB. Split it into smaller files."))
    uploaded.seek(0)
    head = uploaded.read(8)
    uploaded.seek(0)
    if head.startswith(XLSX_MAGIC):
        check_xlsx_size(uploaded)
        file_format, encoding = "xlsx", ""
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError(_("Old Excel files (.xls) are not supported. Save the file as .xlsx or CSV."))
    else:
        file_format, encoding = "csv", detect_csv_encoding(uploaded)
    job = ImportJob(
        organization=organization,
        contact_list=contact_list,
        created_by=user,
        original_name=(uploaded.name or "import")[-255:],
        file_format=file_format,
        encoding=encoding,
    )
    job.file.save("import", File(uploaded), save=False)  # private storage, a random name (import_file_name)
    try:
        with _Rows(job) as rows:
            if file_format == "xlsx" and (declared := _declared_rows(rows)) > IMPORT_MAX_ROWS:
                raise ValidationError(too_many_rows_message(declared))
            header = rows.header()
            samples = []
            for _number, cells in rows:
                samples.append(cells)
                if len(samples) >= SAMPLE_ROWS:
                    break
    except ValidationError:
        job.file.delete(save=False)
        raise
    except Exception:
        job.file.delete(save=False)
        raise ValidationError(_("The file could not be read as CSV or XLSX.")) from None
    header = [_cell(value) for value in (header or [])]
    if not any(header):
        job.file.delete(save=False)
        raise ValidationError(_("The file is empty. The first row must name the columns."))
    job.headers = [name or _("Column %(number)d") % {"number": index + 1} for index, name in enumerate(header)]
    job.sample_rows = samples
    fields_by_name = {}
    for custom_field in organization_fields(organization.id).values():
        for name in (custom_field.key, custom_field.label):
            fields_by_name[unicodedata.normalize("NFKC", name).strip().casefold()] = custom_field.key
    job.mapping = {
        str(index): (
            f"{TARGET_FIELD_PREFIX}{fields_by_name[known]}"
            if (known := unicodedata.normalize("NFKC", name or "").strip().casefold()) in fields_by_name
            else guess_target(name)
        )
        for index, name in enumerate(header)
    }
    phone_columns = [key for key, target in job.mapping.items() if target == TARGET_PHONE]
    for key in phone_columns[1:]:
        job.mapping[key] = TARGET_ATTRIBUTE
    job.save()
    return job


@dataclass(frozen=True)
class ImportRequirements:
    """What the mapping page must be given for a list, given the columns mapped so far."""

    consent_needed: bool  # a promotional list: every person needs a consent record
    attestation_needed: bool  # … and no consent date column is mapped: the importer must confirm
    wording_needed: bool  # … and then the wording version people agreed to (typed or a column)


def import_requirements(contact_list: ContactList, targets) -> ImportRequirements:
    """The consent rule of an import (design §6: who, when, how, which wording, what evidence).

    A promotional list needs a consent record per person. When the file gives each person's consent
    date (a mapped date column), that is the record: the method, source and wording version come
    from their columns or the defaults, and a wording version that neither gives is recorded as
    “not stated” (``CONSENT_WORDING_NOT_STATED``) rather than refusing the file. Without a date
    column the importer's confirmation is the only evidence, so it must say which wording people
    agreed to. A transactional list needs nothing (consent columns, if mapped, are recorded)."""
    targets = set(targets)
    consent_needed = contact_list.purpose == ListPurpose.PROMOTION
    attestation_needed = consent_needed and TARGET_CONSENT_GRANTED_AT not in targets
    return ImportRequirements(
        consent_needed=consent_needed,
        attestation_needed=attestation_needed,
        wording_needed=attestation_needed and TARGET_CONSENT_WORDING not in targets,
    )


def import_job_set_mapping(job: ImportJob, mapping: dict, consent_defaults: dict) -> ImportJob:
    """Record the column mapping and consent defaults; check that the import can run.

    Refuses with a ValidationError whose messages are keyed by what they are about, so a form can
    show each beside its field: ``columns`` (the mapping as a whole), ``column_<index>`` (one
    column), ``attested`` and ``wording_version`` (the consent defaults)."""
    errors: dict[str, list[str]] = {}
    targets = list(mapping.values())
    if targets.count(TARGET_PHONE) != 1:
        errors.setdefault("columns", []).append(_("Choose exactly one column as the mobile number."))
    for target in SINGLE_TARGETS - {TARGET_PHONE}:
        if targets.count(target) > 1:
            label = dict(TARGET_CHOICES)[target]
            for key, chosen in mapping.items():
                if chosen == target:
                    errors.setdefault(f"column_{key}", []).append(
                        _("Only one column can be “%(target)s”.") % {"target": label}
                    )
    fields = organization_fields(job.organization_id)
    for target in set(targets):
        if target.startswith(TARGET_FIELD_PREFIX):
            field = fields.get(target.removeprefix(TARGET_FIELD_PREFIX))
            for key, chosen in mapping.items():
                if chosen != target:
                    continue
                if field is None:
                    errors.setdefault(f"column_{key}", []).append(
                        _("A chosen custom field no longer exists. Choose again.")
                    )
                elif targets.count(target) > 1:
                    errors.setdefault(f"column_{key}", []).append(
                        _("Only one column can be “%(target)s”.") % {"target": field.label}
                    )
    if targets.count(TARGET_ATTRIBUTE) > ATTRIBUTE_MAX:
        errors.setdefault("columns", []).append(
            _("At most %(max)d custom attribute columns.") % {"max": ATTRIBUTE_MAX}
        )
    required = import_requirements(job.contact_list, targets)
    if required.attestation_needed and not consent_defaults.get("attested"):
        errors.setdefault("attested", []).append(
            _("This is a promotional list: map the consent date column, or confirm that every person gave prior consent.")
        )
    if required.wording_needed and not consent_defaults.get("wording_version"):
        errors.setdefault("wording_version", []).append(
            _("Give the version of the consent wording people agreed to (the file has no consent date column, "
              "so your confirmation is the record).")
        )
    if errors:
        raise ValidationError(errors)
    job.mapping = mapping
    job.consent_defaults = consent_defaults
    job.status = ImportStatus.QUEUED
    job.save(update_fields=["mapping", "consent_defaults", "status"])
    return job


# --- running ------------------------------------------------------------------------------------


@dataclass
class _Run:
    job: ImportJob
    chunk: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    # Consent-method cells that are no known method, by their text: the rows were imported, with
    # the nearest (or the file's default) method and the text kept as the consent source.
    method_notes: dict = field(default_factory=dict)
    created: int = 0
    updated: int = 0


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M", "%Y年%m月%d日", "%Y%m%d",
)


def parse_consent_time(text: str, tz) -> datetime | None:
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(value)
    if isinstance(parsed, date) and not isinstance(parsed, datetime):
        parsed = datetime.combine(parsed, time())
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def _consent_method(text: str) -> str | None:
    key = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_")
    if key in ConsentMethod.values:
        return key
    return _METHOD_ALIASES.get(key)


def nearest_consent_method(text: str) -> str | None:
    """The known method a free-text cell points to (「店頭申込書」 → paper), or None."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    for word, method in _METHOD_HINTS:
        if word in folded:
            return method
    return None


def import_job_run(job: ImportJob) -> ImportJob:
    """Import every row of ``job``; good rows go in, bad rows are reported. Safe to call once per job."""
    now = timezone.now()
    # A job left "running" by a worker that died is taken over after a while; the writes are upserts
    # and consent rows are de-duplicated, so running a job again does not duplicate anything.
    stale = Q(status=ImportStatus.RUNNING, started_at__lt=now - STALE_AFTER)
    claimed = ImportJob.objects.filter(Q(status=ImportStatus.QUEUED) | stale, pk=job.pk).update(
        status=ImportStatus.RUNNING, started_at=now
    )
    if not claimed:
        job.refresh_from_db()
        return job
    job.refresh_from_db()
    language = (job.consent_defaults or {}).get("language") or settings.LANGUAGE_CODE
    try:
        with translation.override(language):  # the row report reads in the importer's language
            _run(job)
    except ValidationError as error:  # a limit of the file: said as is, no traceback needed
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, failure=" ".join(error.messages)[:2000], finished_at=timezone.now()
        )
    except Exception as error:  # the job must end, and say why, whatever went wrong
        logger.exception("contact import %s failed", job.pk)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, failure=str(error)[:2000], finished_at=timezone.now()
        )
    import_job_discard_file(job)
    job.refresh_from_db()
    return job


def import_job_discard_file(job: ImportJob) -> None:
    """Delete the job's file (private storage) and forget its name; the counts and report stay."""
    name = job.file.name
    if not name:
        return
    ImportJob.objects.filter(pk=job.pk).update(file="")
    job.file.storage.delete(name)


def import_files_sweep(now=None) -> int:
    """Delete import files that outlived their job: files of jobs that never got a mapping (they
    can no longer run, and say so), of jobs that ended without deleting theirs, and files no job
    owns (an upload that failed half-way), all older than ``IMPORT_FILE_MAX_AGE_HOURS``.
    Returns how many files were deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.IMPORT_FILE_MAX_AGE_HOURS)
    deleted = 0
    with translation.override(settings.LANGUAGE_CODE):
        expired = gettext_lazy("The file was deleted before the columns were mapped. Upload it again.")
        for job in ImportJob.objects.filter(status=ImportStatus.MAPPING, created_at__lt=cutoff).exclude(file=""):
            claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.MAPPING).update(
                status=ImportStatus.FAILED, failure=str(expired), finished_at=now
            )
            if claimed:
                import_job_discard_file(job)
                deleted += 1
    for job in ImportJob.objects.filter(status__in=(ImportStatus.DONE, ImportStatus.FAILED)).exclude(file=""):
        import_job_discard_file(job)
        deleted += 1
    storage = ImportJob._meta.get_field("file").storage
    try:
        _folders, names = storage.listdir("imports")
    except FileNotFoundError:
        names = []
    owned = set(ImportJob.objects.filter(file__startswith="imports/").values_list("file", flat=True))
    for name in names:
        path = f"imports/{name}"
        if path not in owned and storage.get_modified_time(path) < cutoff:
            storage.delete(path)
            deleted += 1
    return deleted


def _declared_rows(rows: _Rows) -> int:
    """Data rows an XLSX sheet declares (its dimension), 0 when it declares none."""
    max_row = rows.workbook.worksheets[0].max_row
    return max(max_row - 1, 0) if max_row else 0


def _count_rows(job: ImportJob) -> int:
    """Rows for the progress bar, and the row limit checked before anything is imported: counted
    for CSV (cheap; past the limit the count raises), read from the sheet's dimension for XLSX
    (parsing a large workbook twice would double the import time; reading enforces the limit)."""
    with _Rows(job) as rows:
        if job.file_format == "xlsx":
            total = _declared_rows(rows)
            if total > IMPORT_MAX_ROWS:
                raise ValidationError(too_many_rows_message(total))
            return total
        rows.header()
        return sum(1 for _ in rows)


def _run(job: ImportJob) -> None:
    tz = ZoneInfo(settings.TIME_ZONE)
    total = _count_rows(job)
    ImportJob.objects.filter(pk=job.pk).update(total_rows=total)
    mapping = {int(key): target for key, target in job.mapping.items() if target}
    phone_col = next(index for index, target in mapping.items() if target == TARGET_PHONE)
    columns = {target: index for index, target in mapping.items() if target not in (TARGET_ATTRIBUTE, TARGET_PHONE)}
    attribute_cols = [(index, job.headers[index]) for index, target in mapping.items() if target == TARGET_ATTRIBUTE]
    fields = organization_fields(job.organization_id)
    field_cols = [
        (index, fields[target.removeprefix(TARGET_FIELD_PREFIX)])
        for index, target in mapping.items()
        if target.startswith(TARGET_FIELD_PREFIX) and target.removeprefix(TARGET_FIELD_PREFIX) in fields
    ]
    defaults = job.consent_defaults or {}
    promotional = job.contact_list.purpose == ListPurpose.PROMOTION
    attested_at = job.started_at or timezone.now()
    default_method = defaults.get("method") or ConsentMethod.IMPORT
    default_source = (defaults.get("source") or job.original_name)[:300]
    default_wording = (defaults.get("wording_version") or "")[:50]

    run = _Run(job=job)
    seen: dict[str, int] = {}
    processed = 0

    def bad(number, value, reason):
        run.errors.append({"row": number, "value": value, "reason": str(reason)})

    def cell(cells, target):
        index = columns.get(target)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    with _Rows(job) as rows:
        rows.header()
        for number, cells in rows:
            processed += 1
            raw_phone = cells[phone_col] if phone_col < len(cells) else ""
            try:
                phone = normalize_mobile(raw_phone)
            except ValidationError as error:
                bad(number, raw_phone, error.messages[0])
            else:
                if phone in seen:
                    bad(number, raw_phone, _("Duplicate: the same number is on row %(row)d.") % {"row": seen[phone]})
                else:
                    good = _build_row(number, cells, phone, raw_phone, cell, attribute_cols, bad, tz, promotional,
                                      defaults, attested_at, default_method, default_source, default_wording,
                                      run.method_notes, field_cols)
                    if good is not None:
                        seen[phone] = number
                        run.chunk.append(good)
            if len(run.chunk) >= CHUNK_SIZE:
                _flush(run)
            if processed % CHUNK_SIZE == 0:
                _progress(run, processed)
    _flush(run)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.DONE,
        processed_rows=processed,
        total_rows=processed,  # exact now (an XLSX dimension may count blank rows)
        created_count=run.created,
        updated_count=run.updated,
        error_count=len(run.errors),
        row_errors=_method_note_entries(run.method_notes) + run.errors,
        finished_at=timezone.now(),
    )


def _method_note_entries(notes: dict) -> list[dict]:
    """One row-report line per unknown consent-method text: imported rows, said how they were kept."""
    labels = dict(ConsentMethod.choices)
    entries = []
    for text, note in notes.items():
        values = {"value": text, "method": labels[note["method"]], "count": f"{note['count']:,}", "row": note["row"]}
        if note["nearest"]:
            reason = _("Imported. The consent method “%(value)s” is not a known method: recorded as “%(method)s”, "
                       "the nearest, with “%(value)s” kept as the consent source (%(count)s rows, first on row "
                       "%(row)s).") % values
        else:
            reason = _("Imported. The consent method “%(value)s” is not a known method: recorded as “%(method)s”, "
                       "the method chosen for the file, with “%(value)s” kept as the consent source (%(count)s rows, "
                       "first on row %(row)s).") % values
        entries.append({"row": note["row"], "value": text, "reason": reason, "imported": True})
    return entries


def _build_row(number, cells, phone, raw_phone, cell, attribute_cols, bad, tz, promotional, defaults,
               attested_at, default_method, default_source, default_wording, method_notes, field_cols=()):
    name = cell(cells, TARGET_NAME)[:200]
    attributes = {}
    for index, key in attribute_cols:
        if index < len(cells) and cells[index] != "":
            attributes[key] = cells[index]
    for index, custom_field in field_cols:
        if index < len(cells) and cells[index] != "":
            try:
                attributes[custom_field.key] = field_value_convert(custom_field, cells[index])
            except ValidationError as error:
                bad(number, raw_phone, error.messages[0])
                return None
    consent = None
    granted_text = cell(cells, TARGET_CONSENT_GRANTED_AT)
    try:
        granted_at = parse_consent_time(granted_text, tz) if granted_text else None
    except ValueError:
        bad(number, raw_phone, _("The consent date “%(value)s” is not a date.") % {"value": granted_text})
        return None
    if granted_at and granted_at > timezone.now():
        bad(number, raw_phone, _("The consent date “%(value)s” is in the future.") % {"value": granted_text})
        return None
    if granted_at is None and promotional and defaults.get("attested"):
        granted_at = attested_at
    if granted_at is not None:
        wording = cell(cells, TARGET_CONSENT_WORDING)[:50] or default_wording
        if not wording and granted_text:
            wording = CONSENT_WORDING_NOT_STATED  # the file gives the date, not the wording shown
        if not wording:
            bad(number, raw_phone, _("The consent wording version is missing: fill its column or type it on the "
                                     "mapping page."))
            return None
        method_text = cell(cells, TARGET_CONSENT_METHOD)
        method = _consent_method(method_text) if method_text else default_method
        source = cell(cells, TARGET_CONSENT_SOURCE)
        if method is None:
            # Not a known method: the row stays; the nearest method (or the file's) is recorded and
            # the cell's own words are kept as (part of) the source, so nothing the file said is lost.
            nearest = nearest_consent_method(method_text)
            method = nearest or default_method
            source = f"{source} ({method_text})" if source else method_text
            note = method_notes.setdefault(method_text, {"method": method, "nearest": bool(nearest),
                                                         "count": 0, "row": number})
            note["count"] += 1
        consent = {
            "granted_at": granted_at,
            "method": method,
            "source": (source or default_source)[:300],
            "wording_version": wording,
            "evidence": cell(cells, TARGET_CONSENT_EVIDENCE)
            or (_("Attested by the importer.") if not granted_text else ""),
        }
    elif promotional:
        bad(number, raw_phone, _("No consent: a promotional list needs each person's prior consent."))
        return None
    return ContactRow(phone=phone, name=name, attributes=attributes, consent=consent)


def _progress(run: _Run, processed: int) -> None:
    ImportJob.objects.filter(pk=run.job.pk).update(
        processed_rows=processed, created_count=run.created, updated_count=run.updated, error_count=len(run.errors)
    )


def _flush(run: _Run) -> None:
    if not run.chunk:
        return
    chunk, run.chunk = run.chunk, []
    counts = contacts_upsert(run.job.organization_id, chunk, contact_list_id=run.job.contact_list_id)
    run.created += counts.created
    run.updated += counts.updated


# --- reports ------------------------------------------------------------------------------------


def import_report_export(job: ImportJob, *, actor=None, request=None):
    """The bad-row report handed out (it holds the rows' phone numbers and values): audited as
    ``export.import_errors``, then the lines."""
    audit_record("export.import_errors", request=request, organization=job.organization_id, actor=actor,
                 target=job, details={"rows": len(job.row_errors or [])})
    return row_report_lines(job)


def row_report_lines(job: ImportJob):
    """The bad-row report as CSV lines (header first), with formula cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush():
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow([_("Row"), _("Value"), _("Reason"), _("Result")])
    yield flush()
    imported, refused = _("Imported"), _("Refused")
    for error in job.row_errors:
        result = imported if error.get("imported") else refused
        writer.writerow([error["row"], csv_safe(error["value"]), csv_safe(error["reason"]), result])
        yield flush()


