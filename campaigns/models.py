"""Contacts, contact lists, consent records and campaigns."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import OfficialAccount, Organization
from core.phone import E164_JP_MOBILE
from core.private_files import private_storage, random_name
from core.rich_content import validate_rich_content_field


class Contact(models.Model):
    # Indexed with the id (contact_org_keyset): an organization's contacts in id order, page by page.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    phone = models.CharField(_("mobile number"), max_length=16, help_text=_("E.164, e.g. +819012345678"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    opt_out_method = models.CharField(_("opt-out method"), max_length=32, blank=True)
    # Set by campaigns.optout.contact_erase: only the number and the consent / opt-out history are
    # left, until the organization's retention deletes them (messaging.retention).
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)
    # The network the number was last reported on by a gateway (numbers are ported between carriers).
    carrier = models.CharField(_("carrier (last known)"), max_length=10, blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone"], name="contact_unique_phone_per_org"),
            models.CheckConstraint(condition=Q(phone__regex=E164_JP_MOBILE), name="contact_phone_e164_jp_mobile"),
        ]
        indexes = [models.Index(fields=["organization", "id"], name="contact_org_keyset")]

    def __str__(self):
        return f"{self.name or self.phone}"

    @property
    def is_opted_out(self):
        return self.opted_out_at is not None


class FieldKind(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")


class CustomField(models.Model):
    """A typed field an organization keeps for its contacts. Values live in ``Contact.attributes``
    under ``key``, converted by ``campaigns.fields`` (text: string, number: JSON number, date: ISO
    ``YYYY-MM-DD`` string, which sorts as the date does; choice: one of ``choices``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="custom_fields")
    key = models.CharField(
        _("key"), max_length=50, help_text=_("The attribute name values are stored under, e.g. “rank” or “会員ランク”.")
    )
    label = models.CharField(_("label"), max_length=100)
    kind = models.CharField(_("type"), max_length=8, choices=FieldKind.choices, default=FieldKind.TEXT)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="custom_field_unique_key_per_org"),
            models.CheckConstraint(condition=Q(kind__in=FieldKind.values), name="custom_field_kind_valid"),
        ]

    def __str__(self):
        return self.label


class ListPurpose(models.TextChoices):
    PROMOTION = "promotion", _("Promotion")
    TRANSACTION = "transaction", _("Transaction")


class ContactList(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(_("name"), max_length=200)
    purpose = models.CharField(_("purpose"), max_length=16, choices=ListPurpose.choices, default=ListPurpose.PROMOTION)
    description = models.TextField(_("description"), blank=True)
    contacts = models.ManyToManyField(Contact, through="ContactListMembership", related_name="lists")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact list")
        verbose_name_plural = _("contact lists")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="contact_list_unique_name_per_org"),
            models.CheckConstraint(condition=Q(purpose__in=ListPurpose.values), name="contact_list_purpose_valid"),
        ]

    def __str__(self):
        return self.name


class ContactListMembership(models.Model):
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="list_memberships")
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)

    class Meta:
        verbose_name = _("list membership")
        verbose_name_plural = _("list memberships")
        constraints = [
            models.UniqueConstraint(fields=["contact_list", "contact"], name="list_membership_unique"),
        ]

    def __str__(self):
        return f"{self.contact_list} ∋ {self.contact}"


class ConsentMethod(models.TextChoices):
    WEB_FORM = "web_form", _("Web form")
    PAPER = "paper", _("Paper form")
    IMPORT = "import", _("Import (attested)")
    API = "api", _("API")
    IN_STORE = "in_store", _("In store")
    KEYWORD = "keyword", _("Reply keyword")


# The wording version of a consent imported from a file that gives each person's consent date but
# not the version of the wording they agreed to (campaigns.imports.import_requirements).
CONSENT_WORDING_NOT_STATED = "not-stated"


class Consent(models.Model):
    """A record of prior opt-in (特定電子メール法): who, when, how, which wording, what evidence."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="consents")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    granted_at = models.DateTimeField(_("granted at"))
    method = models.CharField(_("method"), max_length=16, choices=ConsentMethod.choices)
    source = models.CharField(_("source"), max_length=300, help_text=_("Where: a form URL, a shop, a file name."))
    wording_version = models.CharField(_("wording version"), max_length=50)
    evidence = models.TextField(_("evidence"), blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoke_method = models.CharField(_("revoked how"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["contact", "revoked_at"], name="consent_contact_active")]
        constraints = [
            models.CheckConstraint(condition=Q(method__in=ConsentMethod.values), name="consent_method_valid"),
            models.CheckConstraint(condition=~Q(wording_version=""), name="consent_wording_required"),
            models.CheckConstraint(condition=~Q(source=""), name="consent_source_required"),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=F("granted_at")),
                name="consent_revoked_after_granted",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | ~Q(revoke_method=""), name="consent_revocation_has_method"
            ),
        ]

    def __str__(self):
        return f"{self.contact} — {self.get_method_display()} {self.granted_at:%Y-%m-%d}"

    @property
    def is_active(self):
        return self.revoked_at is None

    @property
    def wording_version_display(self):
        if self.wording_version == CONSENT_WORDING_NOT_STATED:
            return _("not stated in the imported file")
        return self.wording_version


class Classification(models.TextChoices):
    PROMOTION = "promotion", _("Promotion")
    TRANSACTION = "transaction", _("Transaction")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Pending approval")
    APPROVED = "approved", _("Approved")
    SCHEDULED = "scheduled", _("Scheduled")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


APPROVED_STATES = [
    CampaignStatus.APPROVED,
    CampaignStatus.SCHEDULED,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
    CampaignStatus.COMPLETED,
]


class Campaign(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="campaigns")
    official_account = models.ForeignKey(
        OfficialAccount, verbose_name=_("official account"), on_delete=models.PROTECT, related_name="campaigns"
    )
    name = models.CharField(_("name"), max_length=200)
    classification = models.CharField(
        _("classification"), max_length=16, choices=Classification.choices, default=Classification.PROMOTION
    )
    content = models.JSONField(_("+Message content"), default=dict, validators=[validate_rich_content_field])
    sms_text = models.TextField(_("SMS fallback text"), max_length=670)
    audience_lists = models.ManyToManyField(
        ContactList, verbose_name=_("audience lists"), related_name="campaigns", blank=True
    )
    exclusion_lists = models.ManyToManyField(
        ContactList, verbose_name=_("exclusion lists"), related_name="excluded_from_campaigns", blank=True
    )
    # Segments are evaluated when the audience is frozen (messaging.engine.freeze): each run of a
    # recurring campaign reaches the people who match at that run.
    audience_segments = models.ManyToManyField(
        "Segment", verbose_name=_("audience segments"), related_name="campaigns", blank=True
    )
    exclusion_segments = models.ManyToManyField(
        "Segment", verbose_name=_("exclusion segments"), related_name="excluded_from_campaigns", blank=True
    )
    ttl_seconds = models.PositiveIntegerField(_("time before SMS fallback (seconds)"), default=3600)
    status = models.CharField(_("status"), max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    status_reason = models.CharField(_("status reason"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True)
    recurrence = models.CharField(
        _("recurrence (crontab)"), max_length=100, blank=True, help_text=_("e.g. “0 10 * * 1” = Mondays 10:00")
    )
    parent = models.ForeignKey(
        "self", verbose_name=_("recurring parent"), on_delete=models.CASCADE, null=True, blank=True, related_name="runs"
    )
    audience_cursor = models.BigIntegerField(default=0, editable=False)
    audience_frozen_at = models.DateTimeField(_("audience frozen at"), null=True, blank=True, editable=False)
    last_dispatch_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(
                condition=Q(classification__in=Classification.values), name="campaign_classification_valid"
            ),
            models.CheckConstraint(
                condition=Q(ttl_seconds__gte=60, ttl_seconds__lte=30 * 86400), name="campaign_ttl_range"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=APPROVED_STATES) | Q(approved_by__isnull=False, approved_at__isnull=False),
                name="campaign_approved_states_have_approver",
            ),
            models.CheckConstraint(
                condition=~Q(status=CampaignStatus.SCHEDULED) | Q(scheduled_at__isnull=False) | ~Q(recurrence=""),
                name="campaign_scheduled_has_time",
            ),
        ]

    def __str__(self):
        return self.name


class CampaignTemplate(models.Model):
    """A campaign's content and SMS text kept under a name, for the whole organization to start from
    (campaigns.templates)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="campaign_templates")
    name = models.CharField(_("name"), max_length=200)
    content = models.JSONField(_("+Message content"), default=dict, validators=[validate_rich_content_field])
    sms_text = models.TextField(_("SMS fallback text"), max_length=670, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign template")
        verbose_name_plural = _("campaign templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="campaign_template_unique_name_per_org"),
        ]

    def __str__(self):
        return self.name


class SegmentMatch(models.TextChoices):
    ALL = "all", _("all of the conditions")
    ANY = "any", _("any of the conditions")


class Segment(models.Model):
    """A saved audience rule: all or any of ``conditions`` (checked by ``campaigns.segments``, turned
    into one query filter by ``messaging.segments``), evaluated whenever it is counted or frozen."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(_("name"), max_length=200)
    match = models.CharField(_("match"), max_length=3, choices=SegmentMatch.choices, default=SegmentMatch.ALL)
    conditions = models.JSONField(_("conditions"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="segment_unique_name_per_org"),
            models.CheckConstraint(condition=Q(match__in=SegmentMatch.values), name="segment_match_valid"),
        ]

    def __str__(self):
        return self.name


class ImportStatus(models.TextChoices):
    MAPPING = "mapping", _("Waiting for column mapping")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def import_file_name(instance, filename):
    """Where an import file is stored: a random name in private storage (every number and name of
    the file is in it), nothing taken from the uploaded file's name."""
    return random_name("imports")


class ImportJob(models.Model):
    """One contact import: the uploaded file, its column mapping, progress, counts and row report.

    The file is read twice at most (a row count for the progress bar, then the import) and never
    held whole in memory; the row report is kept in ``row_errors`` as {"row", "value", "reason"} for
    each refused row, and with ``"imported": true`` for rows imported with a note. It lives
    in private storage and is deleted when the job ends (``file`` is empty then).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="import_jobs")
    contact_list = models.ForeignKey(
        ContactList, verbose_name=_("contact list"), on_delete=models.CASCADE, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file = models.FileField(_("file"), upload_to=import_file_name, storage=private_storage, blank=True)
    original_name = models.CharField(_("file name"), max_length=255)
    file_format = models.CharField(_("format"), max_length=8)  # csv or xlsx
    encoding = models.CharField(_("encoding"), max_length=16, blank=True)
    headers = models.JSONField(_("columns"), default=list, blank=True)
    sample_rows = models.JSONField(_("sample rows"), default=list, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    consent_defaults = models.JSONField(_("consent defaults"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.MAPPING)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    created_count = models.PositiveIntegerField(_("contacts created"), default=0)
    updated_count = models.PositiveIntegerField(_("contacts updated"), default=0)
    error_count = models.PositiveIntegerField(_("rows refused"), default=0)
    row_errors = models.JSONField(_("row report"), default=list, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="import_job_status_valid"),
        ]

    def __str__(self):
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self):
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    @property
    def percent(self):
        if self.status == ImportStatus.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, int(self.processed_rows * 100 / self.total_rows))

    @property
    def imported_count(self):
        return self.created_count + self.updated_count

    @property
    def encoding_label(self):
        """The file's kind and character encoding in a marketer's words (not a codec's name)."""
        if self.file_format == "xlsx":
            return _("Excel workbook (.xlsx)")
        return {
            "utf-8-sig": _("UTF-8 (Excel format)"),
            "utf-8": _("UTF-8"),
            "cp932": _("Shift_JIS (Japanese Excel)"),
        }.get(self.encoding, self.encoding)
