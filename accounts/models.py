"""Organizations, memberships and roles, official accounts with their carrier reviews, gateway
accounts and API keys."""

import hashlib
import secrets
import uuid
from datetime import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from accounts.fixed_menu import empty_menu, validate_fixed_menu_field

RETENTION_MESSAGE_DAYS_DEFAULT = 365
RETENTION_MESSAGE_DAYS_MIN = 7  # a reply is credited to a campaign for a week (messaging.inbox)
RETENTION_MESSAGE_DAYS_MAX = 3650
RETENTION_CONSENT_YEARS_MIN = 3  # the consent ledger is kept at least 3 years (campaigns.optout.RETENTION)
RETENTION_CONSENT_YEARS_MAX = 10
FREQUENCY_CAP_COUNT_MIN, FREQUENCY_CAP_COUNT_MAX = 1, 100
FREQUENCY_CAP_DAYS_MIN, FREQUENCY_CAP_DAYS_MAX = 1, 90


class SecondApprover(models.TextChoices):
    """Whether a campaign needs a second person to approve it (see ``campaigns.services.campaign_approve``)."""

    AUTO = "auto", _("When two or more members can approve (default)")
    ALWAYS = "always", _("Always")
    NEVER = "never", _("No: the submitter may approve too")


class Organization(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    quiet_hours_start = models.TimeField(_("quiet hours start"), default=time(21, 0))
    quiet_hours_end = models.TimeField(_("quiet hours end"), default=time(9, 0))
    second_approver = models.CharField(
        _("a second person approves"), max_length=8, choices=SecondApprover.choices, default=SecondApprover.AUTO
    )
    # Data retention (messaging.retention applies it daily): message bodies and conversation content
    # go after this many days; an erased person's number and consent / opt-out history after this
    # many years — never fewer than 3 (特定電子メール法: we keep the consent ledger 3 years).
    retention_message_days = models.PositiveIntegerField(
        _("keep message bodies and conversations (days)"), default=RETENTION_MESSAGE_DAYS_DEFAULT
    )
    retention_consent_years = models.PositiveSmallIntegerField(
        _("keep an erased person's consent and opt-out history (years)"), default=RETENTION_CONSENT_YEARS_MIN
    )
    # A person who texts this word (e.g. 登録) gets a consent record and a confirmation (campaigns.optout).
    opt_in_keyword = models.CharField(_("opt-in keyword"), max_length=20, blank=True)
    # Members must sign in with a second factor (accounts.two_factor); one without it is taken to
    # set-up after the password step.
    two_factor_required = models.BooleanField(_("two-factor sign-in is mandatory"), default=False)
    # When people answer the inbox (core.business_hours); outside them an official account's away
    # message goes out (messaging.automation). No hours set: no away message.
    business_hours_start = models.TimeField(_("business hours start"), null=True, blank=True)
    business_hours_end = models.TimeField(_("business hours end"), null=True, blank=True)
    business_days = models.CharField(_("business days"), max_length=7, default="12345", blank=True,
                                     help_text=_("ISO weekdays, Monday = 1"))
    # Frequency cap: at most this many promotions per person in the last frequency_cap_days days
    # (empty = off). Applied when a campaign's audience is frozen (messaging.engine.freeze).
    frequency_cap_count = models.PositiveSmallIntegerField(_("at most this many promotions"), null=True, blank=True)
    frequency_cap_days = models.PositiveSmallIntegerField(_("per this many days"), default=7)
    # Tracked links in SMS text go out as <base><token> (core.short_links); empty = the console's own
    # {PUBLIC_BASE_URL}/s/. Another base (e.g. https://s.example.jp/s/) must reach this console's /s/.
    short_link_base = models.CharField(_("short-link base"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_message_days__gte=RETENTION_MESSAGE_DAYS_MIN,
                            retention_message_days__lte=RETENTION_MESSAGE_DAYS_MAX),
                name="organization_retention_message_days_range",
            ),
            models.CheckConstraint(
                condition=Q(retention_consent_years__gte=RETENTION_CONSENT_YEARS_MIN,
                            retention_consent_years__lte=RETENTION_CONSENT_YEARS_MAX),
                name="organization_retention_consent_years_range",
            ),
            models.CheckConstraint(
                condition=(Q(frequency_cap_count__isnull=True) | Q(frequency_cap_count__gte=FREQUENCY_CAP_COUNT_MIN,
                                                                   frequency_cap_count__lte=FREQUENCY_CAP_COUNT_MAX))
                & Q(frequency_cap_days__gte=FREQUENCY_CAP_DAYS_MIN, frequency_cap_days__lte=FREQUENCY_CAP_DAYS_MAX),
                name="organization_frequency_cap_range",
            ),
        ]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MARKETER = "marketer", _("Marketer")
    OPERATOR = "operator", _("Operator")
    VIEWER = "viewer", _("Viewer")


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    # The member's own choice (accounts.notifications): also e-mail them what the console notifies.
    notify_by_email = models.BooleanField(
        _("e-mail me when a conversation is assigned to me"), default=False, db_default=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user_per_org"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"


class GatewayKind(models.TextChoices):
    RBM = "rbm", _("RCS (RBM REST v1)")
    CM = "cm", _("SMS (CM.com Business Messaging)")


def validate_media_hosts(value) -> None:
    """A JSON list of bare host names (no scheme, port or path): where inbound files may come from."""
    if not isinstance(value, list) or not all(isinstance(host, str) and host.strip() for host in value):
        raise ValidationError(_('Give a list of host names, like ["media.example.com"].'))
    for host in value:
        name = host.strip().lower()
        if any(char in name for char in "/:@?#* ") and not (name.startswith("[") and name.endswith("]")):
            raise ValidationError(_('Give a list of host names, like ["media.example.com"].'))


class GatewayAccount(models.Model):
    """Where an official account's messages go: the adapter kind, its base URL and credentials.

    Credentials (bearer token, RBM client token, CM product token, callback secret) stay in
    ``credentials``; they are never shown back in full and never logged.

    Inbound files (a photo a person sends) are downloaded only from ``media_hosts``, exact host
    names; empty means only the host of ``base_url`` — the sandbox carrier and a provider that
    serves files from its API host need nothing more. The egress guard's address checks apply to
    these hosts too (see ``messaging.inbound_media``).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="gateways")
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=GatewayKind.choices)
    base_url = models.URLField(_("base URL"), max_length=500)
    credentials = models.JSONField(_("credentials"), default=dict, blank=True)
    rate_per_second = models.PositiveIntegerField(_("sends per second"), default=100)
    sms_char_limit = models.PositiveIntegerField(_("SMS character limit"), default=660)
    provider_fallback = models.BooleanField(
        _("provider-side RCS→SMS fallback"),
        default=False,
        help_text=_("CM.com only: send once with allowedChannels RCS+SMS and let the provider fall back."),
    )
    media_hosts = models.JSONField(
        _("media hosts"),
        default=list,
        blank=True,
        validators=[validate_media_hosts],
        help_text=_(
            'Host names inbound files may be downloaded from, e.g. ["media.example.com"]. '
            "Empty: only the host of the base URL."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("gateway account")
        verbose_name_plural = _("gateway accounts")
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="gateway_unique_name_per_org"),
            models.CheckConstraint(condition=Q(kind__in=GatewayKind.values), name="gateway_kind_valid"),
            models.CheckConstraint(condition=Q(rate_per_second__gte=1), name="gateway_rate_positive"),
            models.CheckConstraint(
                condition=Q(sms_char_limit__gte=70, sms_char_limit__lte=670), name="gateway_sms_limit_range"
            ),
            models.CheckConstraint(
                condition=Q(provider_fallback=False) | Q(kind=GatewayKind.CM), name="gateway_provider_fallback_cm_only"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def masked_credentials(self):
        return {key: mask_secret(value) for key, value in (self.credentials or {}).items()}

    def media_allowed_hosts(self) -> list[str]:
        """The hosts an inbound file of this gateway account may be fetched from (see the docstring)."""
        hosts = [str(host).strip().lower() for host in (self.media_hosts or []) if str(host).strip()]
        if hosts:
            return hosts
        base_host = urlsplit(self.base_url or "").hostname
        return [base_host] if base_host else []


class PriceUnit(models.TextChoices):
    """What a gateway account charges for: each +Message message, or each SMS segment."""

    RCS_MESSAGE = "rcs", _("per +Message message")
    SMS_SEGMENT = "sms", _("per SMS segment")


# The carriers a price may name ("" = every carrier without a price of its own). Rakuten Mobile has
# no +Message, so only SMS prices name it (accounts.pricing.PRICE_COLUMNS).
PRICE_CARRIERS = [
    ("", _("Any carrier")),
    ("docomo", _("docomo")),
    ("au", _("au")),
    ("softbank", _("SoftBank")),
    ("rakuten", _("Rakuten Mobile")),
]


class GatewayPrice(models.Model):
    """One price of a gateway account's price table, in yen (with decimals; never a float):
    per +Message message or per SMS segment, for one carrier or for any (see accounts.pricing)."""

    gateway = models.ForeignKey(GatewayAccount, on_delete=models.CASCADE, related_name="prices")
    unit = models.CharField(_("unit"), max_length=3, choices=PriceUnit.choices)
    carrier = models.CharField(_("carrier"), max_length=10, blank=True, choices=PRICE_CARRIERS)
    price = models.DecimalField(_("price (yen)"), max_digits=10, decimal_places=4)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("gateway price")
        verbose_name_plural = _("gateway prices")
        ordering = ["gateway", "unit", "carrier"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "unit", "carrier"], name="gateway_price_unique"),
            models.CheckConstraint(condition=Q(unit__in=PriceUnit.values), name="gateway_price_unit_valid"),
            models.CheckConstraint(
                condition=Q(carrier__in=[value for value, _label in PRICE_CARRIERS]), name="gateway_price_carrier_valid"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="gateway_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.gateway_id} {self.unit} {self.carrier or '*'} = {self.price}"


def mask_secret(value) -> str:
    text = str(value)
    if len(text) <= 4:
        return "••••"
    return "••••" + text[-4:]


class OfficialAccount(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="official_accounts")
    display_name = models.CharField(_("display name"), max_length=100)
    legal_name = models.CharField(_("formal legal name"), max_length=200)
    logo = models.ImageField(_("logo"), upload_to="logos/", blank=True)
    description = models.TextField(_("description"), blank=True, max_length=1000)
    brand_color = models.CharField(_("brand colour"), max_length=7, default="#0B57D0")
    sms_sender_id = models.CharField(_("SMS sender id"), max_length=11)
    fixed_menu = models.JSONField(_("fixed menu"), default=empty_menu, validators=[validate_fixed_menu_field])
    rcs_gateway = models.ForeignKey(
        GatewayAccount, verbose_name=_("RCS gateway"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sms_gateway = models.ForeignKey(
        GatewayAccount, verbose_name=_("SMS gateway"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Where SMS legs go while the SMS gateway is down (core.gateway_health): another SMS-capable
    # gateway account of the same organization (checked by OfficialAccountForm).
    backup_sms_gateway = models.ForeignKey(
        GatewayAccount, verbose_name=_("backup SMS gateway"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
        help_text=_("SMS messages go through this gateway while the SMS gateway is not answering."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("official account")
        verbose_name_plural = _("official accounts")
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "display_name"], name="official_account_unique_name"),
            models.CheckConstraint(condition=Q(brand_color__regex=r"^#[0-9A-Fa-f]{6}$"), name="official_account_color_hex"),
            models.CheckConstraint(condition=~Q(legal_name=""), name="official_account_legal_name_required"),
            models.CheckConstraint(condition=~Q(sms_sender_id=""), name="official_account_sms_sender_required"),
        ]

    def __str__(self):
        return self.display_name

    @property
    def can_send(self) -> bool:
        """Only an account approved by at least one carrier may send. A queryset that needs it for
        many rows, or on a hot path, annotates ``approved`` (see ``with_approval``) instead."""
        approved = getattr(self, "approved", None)
        if approved is not None:
            return approved
        return self.reviews.filter(status=ReviewStatus.APPROVED).exists()

    @property
    def approved_carriers(self) -> frozenset[str]:
        """The carriers whose review approved the account: +Message goes only to numbers on these
        (``core.carriers.carrier_approved``). One query, or none when ``reviews`` were prefetched."""
        return frozenset(r.carrier for r in self.reviews.all() if r.status == ReviewStatus.APPROVED)

    @classmethod
    def with_approval(cls, queryset):
        """``queryset`` with ``approved`` read in the same query."""
        approvals = CarrierReview.objects.filter(account=models.OuterRef("pk"), status=ReviewStatus.APPROVED)
        return queryset.annotate(approved=models.Exists(approvals))


class Carrier(models.TextChoices):
    DOCOMO = "docomo", _("docomo")
    AU = "au", _("au")
    SOFTBANK = "softbank", _("SoftBank")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class CarrierReview(models.Model):
    """One carrier's review (審査) of an official account."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="reviews")
    carrier = models.CharField(_("carrier"), max_length=10, choices=Carrier.choices)
    status = models.CharField(_("status"), max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("carrier review")
        verbose_name_plural = _("carrier reviews")
        ordering = ["account", "carrier"]
        constraints = [
            models.UniqueConstraint(fields=["account", "carrier"], name="review_unique_carrier_per_account"),
            models.CheckConstraint(condition=Q(carrier__in=Carrier.values), name="review_carrier_valid"),
            models.CheckConstraint(condition=Q(status__in=ReviewStatus.values), name="review_status_valid"),
            models.CheckConstraint(
                condition=Q(status=ReviewStatus.PENDING) | Q(decided_at__isnull=False), name="review_decision_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(status=ReviewStatus.REJECTED) | ~Q(reason=""), name="review_rejection_has_reason"
            ),
        ]

    def __str__(self):
        return f"{self.account} / {self.get_carrier_display()}: {self.get_status_display()}"


class ApiScope(models.TextChoices):
    SEND = "send", _("Send messages")
    CONTACTS = "contacts", _("Contacts")
    CAMPAIGNS = "campaigns", _("Campaigns")
    READ_ONLY = "read_only", _("Read only")


class ApiKeyQuerySet(models.QuerySet):
    def with_creator_membership(self):
        """Keys with their organization and creator, and whether the creator is still a member of the
        key's organization (``creator_is_member``): one query, so every request can check it."""
        return self.select_related("organization", "created_by").annotate(
            creator_is_member=Exists(
                Membership.objects.filter(user=OuterRef("created_by"), organization=OuterRef("organization"))
            )
        )


class ApiKey(models.Model):
    """An API key of one organization. Only a SHA-256 hash of the secret is stored.

    A key acts for the member who created it: it works only while that member is an active user and
    still a member of the organization (an active superuser also counts). A creator who leaves or is
    deactivated stops the key at once; it works again only if they come back.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def generate(cls, organization, name, scopes, created_by=None):
        """Create a key; returns (key, secret). The secret is shown once and never stored."""
        prefix = secrets.token_hex(4)
        secret = f"pm_{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            organization=organization,
            name=name,
            prefix=prefix,
            key_hash=cls.hash_secret(secret),
            scopes=list(scopes),
            created_by=created_by,
        )
        return key, secret

    @property
    def is_active(self):
        return self.revoked_at is None

    @property
    def creator_is_active_member(self) -> bool:
        """The creator is an active user and a member of the key's organization (or an active superuser)."""
        creator = self.created_by
        if creator is None or not creator.is_active:
            return False
        if creator.is_superuser:
            return True
        is_member = getattr(self, "creator_is_member", None)
        if is_member is None:
            is_member = Membership.objects.filter(user=creator, organization_id=self.organization_id).exists()
        return is_member

    @property
    def works(self) -> bool:
        """Not revoked and its creator still an active member: the API accepts it."""
        return self.is_active and self.creator_is_active_member

    def revoke(self):
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


# --- REST API: idempotency and outbound webhooks ------------------------------------------------


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed for a repeat of it.

    One row per (API key, Idempotency-Key). ``request_hash`` is SHA-256 over method, path and raw
    body: the same key with a different request answers 409. ``status_code`` is NULL while the first
    request is still being processed. Rows are kept at least ``API_IDEMPOTENCY_TTL_SECONDS`` (24 h).
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_unique_key_per_api_key"),
        ]

    def __str__(self):
        return f"{self.api_key_id}:{self.key}"


class WebhookEvent(models.TextChoices):
    MESSAGE_SENT = "message.sent", "message.sent"
    MESSAGE_DELIVERED = "message.delivered", "message.delivered"
    MESSAGE_READ = "message.read", "message.read"
    MESSAGE_FAILED = "message.failed", "message.failed"
    MESSAGE_FELL_BACK = "message.fell_back", "message.fell_back"
    INBOUND_RECEIVED = "inbound.received", "inbound.received"
    CONTACT_OPTED_OUT = "contact.opted_out", "contact.opted_out"


class WebhookEndpoint(models.Model):
    """An organization's URL that receives signed event notifications.

    ``previous_secret`` keeps signing (next to ``secret``) until ``previous_secret_expires_at``, so a
    receiver can switch secrets without losing events. An endpoint that keeps failing is disabled
    (``disabled_at`` and ``disabled_reason`` set) and the organization is told.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled because"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"), name="webhook_endpoint_http_url"
            ),
        ]

    def __str__(self):
        return self.url

    @staticmethod
    def new_secret() -> str:
        return f"whsec_{secrets.token_urlsafe(32)}"

    def signing_secrets(self, now=None) -> list[str]:
        now = now or timezone.now()
        found = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            found.append(self.previous_secret)
        return found


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Gave up")


class WebhookDelivery(models.Model):
    """One event for one endpoint: its body (signed as sent) and where its retries stand."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event"), max_length=32, choices=WebhookEvent.choices)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=WebhookDeliveryStatus.values), name="webhook_delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """The log: one row per HTTP attempt, with the response (or the error) we got."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    response_body = models.TextField(_("response"), blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-attempted_at"]

    def __str__(self):
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"


# --- team access: invitations and sign-in sessions ----------------------------------------------


class InvitationQuerySet(models.QuerySet):
    def pending(self, now=None):
        """Not accepted, not revoked and not expired: the link still works."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class Invitation(models.Model):
    """An e-mailed invitation to join an organization with a role (accounts.invitations).

    Only a SHA-256 hash of the link's token is stored. An invitation ends when it is accepted,
    revoked or past ``expires_at``; inviting the same address again revokes the open one.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("invited at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_valid"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True), name="invitation_accepted_or_revoked"
            ),
        ]
        indexes = [models.Index(fields=["organization", "email"], name="invitation_org_email")]

    def __str__(self):
        return f"{self.email} → {self.organization} ({self.get_role_display()})"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class MemberSession(models.Model):
    """One signed-in browser session of a user: what the member sees under *Sessions* and can end.

    Written at sign-in (accounts.sessions, from the ``user_logged_in`` signal) and touched at most once
    a minute by ``accounts.middleware.MemberSessionMiddleware``; the session itself lives wherever
    ``SESSION_ENGINE`` keeps it, and ending one deletes it there by its key.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="member_sessions")
    session_key = models.CharField(max_length=64, unique=True)
    user_agent = models.CharField(_("device"), max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("signed in at"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)

    class Meta:
        verbose_name = _("sign-in session")
        verbose_name_plural = _("sign-in sessions")
        ordering = ["-last_activity_at"]
        indexes = [models.Index(fields=["user", "-last_activity_at"], name="member_session_user_recent")]

    def __str__(self):
        return f"{self.user} @ {self.ip_address or '?'}"


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A member's recovery codes as one django-otp device: each code is kept only as its SHA-256
    (django-otp's own static device stores them in clear) and works once (accounts.two_factor)."""

    class Meta:
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def get_throttle_factor(self):
        return 1

    @staticmethod
    def hash_code(code: str) -> str:
        return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()

    def verify_token(self, token) -> bool:
        allowed, _reason = self.verify_is_allowed()
        if not allowed:
            return False
        deleted, _rows = self.codes.filter(code_hash=self.hash_code(str(token))).delete()
        if deleted:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment()
        return False


def normalize_recovery_code(code: str) -> str:
    """Recovery codes are read back from paper: case, spaces and hyphens do not matter."""
    return "".join(code.split()).replace("-", "").lower()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(_("code hash"), max_length=64)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="recovery_code_unique_per_device"),
        ]

    def __str__(self):
        return f"recovery code of device {self.device_id}"


class NotificationKind(models.TextChoices):
    CONVERSATION_ASSIGNED = "conversation_assigned", _("Conversation assigned")


class Notification(models.Model):
    """Something a member should see (the bell in the console's header): who it is for, in which
    organization, what happened and where to look. Written by ``accounts.notifications``; read once
    the member opens it or marks them all read."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=40, choices=NotificationKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    subject = models.CharField(_("about"), max_length=200, blank=True)  # e.g. the person's number or name
    url = models.CharField(_("link"), max_length=300)  # a path inside the console
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]  # newest first, paged by id (core.paging)
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"),
            models.CheckConstraint(condition=Q(url__startswith="/"), name="notification_url_is_a_path"),
        ]
        indexes = [
            models.Index(fields=["recipient", "organization", "-id"], name="notification_recipient_recent"),
            models.Index(
                fields=["recipient", "organization"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self):
        return f"{self.kind} → {self.recipient_id}"
