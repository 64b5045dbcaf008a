"""Deliveries (one per campaign and contact) and the provider events that move them forward."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import GatewayAccount, Organization
from campaigns.models import Campaign, Contact
from core.private_files import private_storage, random_name


class Channel(models.TextChoices):
    RCS = "rcs", _("+Message")
    SMS = "sms", _("SMS")


class DeliveryStatus(models.IntegerChoices):
    """Ordered: a delivery's status only ever moves to a higher value (a database trigger refuses less)."""

    QUEUED = 0, _("Queued")
    SENT = 20, _("Sent")
    DELIVERED = 30, _("Delivered")
    READ = 40, _("Read")
    FAILED = 50, _("Failed")
    CANCELLED = 60, _("Cancelled")


class FallbackReason(models.TextChoices):
    NOT_CAPABLE = "not_capable", _("Not +Message capable")
    NOT_REACHABLE = "not_reachable", _("+Message send refused (not reachable)")
    TTL_EXPIRED = "ttl_expired", _("Not delivered before the TTL")
    PROVIDER = "provider", _("Fallen back by the provider")
    CARRIER_NOT_APPROVED = "carrier_not_approved", _("The number's carrier has not approved the official account")


class Delivery(models.Model):
    uuid = models.UUIDField(_("message id"), default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="deliveries")
    # Indexed by delivery_campaign_keyset (campaign, id); a second index on campaign alone would only
    # cost every non-HOT update one more index entry.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="deliveries")
    # A message sent on its own (API, test send, inbox reply) carries its content; a campaign's
    # deliveries take it from the campaign.
    # Indexed only where set (delivery_single_account): a campaign's rows leave it empty, and each
    # status change of theirs then adds no entry to this index.
    official_account = models.ForeignKey(
        "accounts.OfficialAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    content = models.JSONField(_("+Message content"), null=True, blank=True)
    sms_text = models.TextField(_("SMS text"), blank=True)
    classification = models.CharField(_("classification"), max_length=16, blank=True)
    ttl_seconds = models.PositiveIntegerField(_("TTL (seconds)"), null=True, blank=True)
    client_reference = models.CharField(_("client reference"), max_length=100, blank=True)
    # The consent a promotional delivery relied on (特定電子メール法): fixed when the audience is frozen.
    consent = models.ForeignKey(  # indexed only where set (delivery_consent), as official_account
        "campaigns.Consent", verbose_name=_("consent relied on"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="deliveries", db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=3, choices=Channel.choices, blank=True)
    status = models.PositiveSmallIntegerField(_("status"), choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    rcs_provider_id = models.CharField(_("RCS provider id"), max_length=100, blank=True)
    sms_provider_id = models.CharField(_("SMS provider id"), max_length=100, blank=True)
    # The gateway account the SMS leg was (or may have been) handed to, written before it is sent:
    # a retry goes through the same gateway unless that one definitely refused it (see
    # messaging.engine.failover), so the carrier's deduplication on the reference still holds.
    sms_gateway = models.ForeignKey(
        GatewayAccount, verbose_name=_("SMS sent through"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", db_index=False,
    )
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    error_reason = models.CharField(_("error reason"), max_length=500, blank=True)
    fallback_reason = models.CharField(_("fallback reason"), max_length=20, choices=FallbackReason.choices, blank=True)
    # The network the number is on, as the gateway reported it when the channel was decided
    # (``core.carriers``; "" when it did not say). Never guessed from the number's prefix.
    carrier = models.CharField(_("carrier"), max_length=10, blank=True, default="", db_default="")
    # Segments of the SMS text as this person was sent it (core.sms_text), written with the send's
    # record; 0 until an SMS leg went out (or when a receipt recorded the send first). What costs count.
    sms_segments = models.PositiveSmallIntegerField(_("SMS segments"), default=0, db_default=0)
    pending_fallback = models.BooleanField(_("SMS fallback pending"), default=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    # A promotion sent on its own inside quiet hours is held until they end: not sent before this
    # (its lease runs until then too, which is what the claim checks). Null: as soon as possible.
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact"],
                condition=Q(campaign__isnull=False),
                name="delivery_unique_per_campaign_contact",
            ),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(
                condition=Q(campaign__isnull=False) | Q(official_account__isnull=False),
                name="delivery_single_has_account",
            ),
            models.CheckConstraint(condition=Q(channel__in=["", *Channel.values]), name="delivery_channel_valid"),
            models.CheckConstraint(
                condition=Q(fallback_reason="") | Q(channel=Channel.SMS), name="delivery_fallback_means_sms"
            ),
            models.CheckConstraint(
                condition=Q(status__lt=DeliveryStatus.SENT) | Q(status__gte=DeliveryStatus.FAILED) | ~Q(channel=""),
                name="delivery_sent_has_channel",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "id"], name="delivery_campaign_status"),
            models.Index(fields=["campaign", "id"], name="delivery_campaign_keyset"),
            models.Index(
                fields=["campaign", "id"], condition=Q(pending_fallback=True), name="delivery_pending_fallback"
            ),
            # What is left to send, in order: the claim reads it (no entry is added when a row is sent).
            models.Index(fields=["campaign", "id"], condition=Q(status=0), name="delivery_queued"),
            models.Index(
                fields=["official_account"], condition=Q(official_account__isnull=False), name="delivery_single_account"
            ),
            models.Index(fields=["consent"], condition=Q(consent__isnull=False), name="delivery_consent"),
            # Sent and not yet delivered, by send time (the TTL sweep). Its condition names the status
            # only: a column in an index condition is an indexed column, and the channel is written
            # while a row is QUEUED, which must stay a heap-only (HOT) update.
            models.Index(fields=["sent_at"], condition=Q(status=20), name="delivery_sent_awaiting_receipt"),
        ]

    def __str__(self):
        return str(self.uuid)


class ProviderEvent(models.Model):
    """A webhook event as received, stored before we answer 200; applied later, exactly once."""

    provider = models.CharField(_("provider"), max_length=16)
    event_id = models.CharField(_("event id"), max_length=200)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_unique"),
        ]
        indexes = [
            # Only the events not applied yet (the sweeper's work): applying one adds no entry here.
            models.Index(fields=["id"], condition=Q(applied_at__isnull=True), name="provider_event_pending"),
        ]

    def __str__(self):
        return f"{self.provider}:{self.event_id}"


class Metric(models.TextChoices):
    TARGETED = "targeted", _("Targeted")
    SKIPPED = "skipped", _("Skipped")  # detail: opted_out, no_consent
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FELL_BACK = "fell_back", _("Fell back to SMS")  # detail: the FallbackReason
    FAILED = "failed", _("Failed")  # detail: the error code
    CANCELLED = "cancelled", _("Cancelled")
    CLICKED = "clicked", _("Clicked")
    REPLIED = "replied", _("Replied")
    # The carrier split (detail: the delivery's carrier, "" when the gateway did not say).
    DELIVERED_ON = "delivered_on", _("Delivered, by carrier")
    READ_ON = "read_on", _("Read, by carrier")
    FELL_BACK_ON = "fell_back_on", _("Fell back to SMS, by carrier")


class CounterDelta(models.Model):
    """Append-only increments written by the engine and receipts, in bulk; folded periodically."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    channel = models.CharField(max_length=3, blank=True)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    detail = models.CharField(max_length=50, blank=True)
    delta = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["campaign"], name="counter_delta_campaign")]

    def __str__(self):
        return f"{self.campaign_id} {self.metric} {self.delta:+d}"


class CampaignCounter(models.Model):
    """Folded counters per (campaign, minute, channel, metric, detail): what stats pages read.
    ``minute`` is the start of the counter's 10-second bucket (``messaging.counters.counter_bucket``)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counters")
    minute = models.DateTimeField()
    channel = models.CharField(max_length=3, blank=True)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    detail = models.CharField(max_length=50, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "minute", "channel", "metric", "detail"], name="campaign_counter_unique"
            ),
        ]

    def __str__(self):
        return f"{self.campaign_id} {self.minute:%H:%M} {self.channel} {self.metric} {self.detail} = {self.count}"


# ---------------------------------------------------------------------------------------------
# Two-way conversations (the inbox): one conversation per (official account, contact), every
# message both ways, saved quick replies, and the first click / reply per campaign and person.


class ConversationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")


class Conversation(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversations")
    official_account = models.ForeignKey(
        "accounts.OfficialAccount", verbose_name=_("official account"), on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey(Contact, verbose_name=_("contact"), on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(
        _("status"), max_length=8, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assigned to"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    unread_count = models.PositiveIntegerField(_("unread"), default=0)
    last_campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)
    last_inbound_at = models.DateTimeField(_("last inbound at"), null=True, blank=True)
    # The last away message of this conversation: one per closed window (messaging.automation).
    away_message_sent_at = models.DateTimeField(_("away message sent at"), null=True, blank=True)
    # The person's first message that nobody in the team has answered yet (messaging.inbox): set by
    # an inbound message when empty, cleared by a member's reply or by "done". Null: nothing waits.
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.UniqueConstraint(fields=["official_account", "contact"], name="conversation_unique_account_contact"),
            models.CheckConstraint(condition=Q(status__in=ConversationStatus.values), name="conversation_status_valid"),
        ]
        indexes = [
            models.Index(fields=["organization", "-last_message_at"], name="conversation_org_recent"),
            models.Index(
                fields=["organization", "waiting_since"], condition=Q(waiting_since__isnull=False),
                name="conversation_org_waiting",
            ),
        ]

    def __str__(self):
        return f"{self.official_account_id}:{self.contact_id}"


class MessageDirection(models.TextChoices):
    INBOUND = "in", _("Received")
    OUTBOUND = "out", _("Sent")


class MessageKind(models.TextChoices):
    TEXT = "text", _("Text")
    POSTBACK = "postback", _("Chip tapped")
    LOCATION = "location", _("Location")
    FILE = "file", _("File")


class MediaStatus(models.TextChoices):
    NONE = "", _("No file")
    PENDING = "pending", _("Downloading")
    STORED = "stored", _("Stored")
    TOO_LARGE = "too_large", _("Too large")
    FAILED = "failed", _("Download failed")


def inbound_file_name(instance, filename):
    """A random name in private storage: nothing the sender chose (name, extension) and nothing
    the sender can compute (such as a hash of the bytes)."""
    return random_name("inbox")


class ConversationMessage(models.Model):
    """One message of a conversation. Inbound rows come from provider events (unique per provider
    event, so a repeated webhook adds nothing); outbound rows point at the Delivery that carries
    them, whose status (sent, delivered, read, failed) the thread shows."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(_("direction"), max_length=3, choices=MessageDirection.choices)
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT)
    channel = models.CharField(_("channel"), max_length=3, choices=Channel.choices, blank=True)
    text = models.TextField(_("text"), blank=True)
    postback = models.CharField(_("postback data"), max_length=2048, blank=True)
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    file_url = models.URLField(_("file URL"), max_length=2048, blank=True)
    file_mime = models.CharField(_("file type"), max_length=100, blank=True)
    # The stored bytes, in private storage under a random name: a re-encoded image (file_is_image),
    # or else the opaque bytes as received, whose declared type stays in file_mime only.
    file = models.FileField(_("file"), upload_to=inbound_file_name, storage=private_storage, blank=True)
    file_is_image = models.BooleanField(_("re-encoded image"), default=False)
    media_status = models.CharField(_("file status"), max_length=10, choices=MediaStatus.choices, blank=True)
    # Why a download failed, as an untranslated message (shown translated) or "HTTP <status>".
    media_error = models.CharField(_("file error"), max_length=200, blank=True)
    # The gateway account the message came in through: its media hosts bound where the file is fetched.
    gateway = models.ForeignKey(
        GatewayAccount, verbose_name=_("gateway account"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )
    provider = models.CharField(_("provider"), max_length=16, blank=True)
    provider_event_id = models.CharField(_("provider event id"), max_length=200, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # An answer the inbox sent by itself (messaging.automation): "keyword_rule" or "away_message".
    automation = models.CharField(_("sent automatically by"), max_length=16, choices=[
        ("keyword_rule", _("Keyword rule")), ("away_message", _("Away message"))], blank=True, default="",
        db_default="")
    read_at = models.DateTimeField(_("read by an operator at"), null=True, blank=True)
    read_receipt_sent_at = models.DateTimeField(_("read receipt sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("conversation message")
        verbose_name_plural = _("conversation messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id"],
                condition=~Q(provider_event_id=""),
                name="conversation_message_unique_event",
            ),
            models.CheckConstraint(
                condition=Q(direction__in=MessageDirection.values), name="conversation_message_direction_valid"
            ),
        ]
        indexes = [models.Index(fields=["conversation", "created_at"], name="conv_message_thread")]

    def __str__(self):
        return f"{self.direction} {self.kind} {self.text[:30]}"


class QuickReply(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="quick_replies")
    title = models.CharField(_("title"), max_length=60)
    text = models.TextField(_("text"), max_length=1000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["organization", "title"], name="quick_reply_unique_title")]

    def __str__(self):
        return self.title


# Inbox automation (messaging.automation): keyword rules and the away message, per official account.


class KeywordMatch(models.TextChoices):
    EXACT = "exact", _("The whole message is the keyword")
    CONTAINS = "contains", _("The message contains the keyword")


class KeywordAction(models.TextChoices):
    REPLY = "reply", _("Reply with a saved message")
    TAG = "tag", _("Add a tag to the contact")
    LIST = "list", _("Add the contact to a list")
    ASSIGN = "assign", _("Assign the conversation")
    CONSENT = "consent", _("Record consent (opt-in)")


class KeywordRule(models.Model):
    """When a person's text matches ``keyword`` (compared as the opt-out keywords are), do ``action``.
    ``fired_count`` says how often it did."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    official_account = models.ForeignKey(
        "accounts.OfficialAccount", verbose_name=_("official account"), on_delete=models.CASCADE,
        related_name="keyword_rules",
    )
    keyword = models.CharField(_("keyword"), max_length=100)
    match = models.CharField(_("match"), max_length=8, choices=KeywordMatch.choices, default=KeywordMatch.EXACT)
    action = models.CharField(_("action"), max_length=8, choices=KeywordAction.choices)
    quick_reply = models.ForeignKey(
        QuickReply, verbose_name=_("saved message"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tag = models.CharField(_("tag"), max_length=50, blank=True)
    # A deleted list or member leaves the rule in place, doing nothing until it is changed.
    contact_list = models.ForeignKey(
        "campaigns.ContactList", verbose_name=_("list"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assign to"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    fired_count = models.PositiveIntegerField(_("fired"), default=0)
    last_fired_at = models.DateTimeField(_("last fired at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(match__in=KeywordMatch.values), name="keyword_rule_match_valid"),
            models.CheckConstraint(condition=Q(action__in=KeywordAction.values), name="keyword_rule_action_valid"),
        ]
        indexes = [models.Index(fields=["official_account", "enabled"], name="keyword_rule_account")]

    def __str__(self):
        return f"{self.keyword} → {self.action}"


class AwayMessage(models.Model):
    """What an official account answers outside the organization's business hours, once per
    conversation per closed window."""

    official_account = models.OneToOneField(
        "accounts.OfficialAccount", verbose_name=_("official account"), on_delete=models.CASCADE,
        related_name="away_message",
    )
    text = models.TextField(_("away message"), max_length=1000, blank=True)
    enabled = models.BooleanField(_("enabled"), default=False)
    fired_count = models.PositiveIntegerField(_("sent"), default=0)
    last_fired_at = models.DateTimeField(_("last sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("away message")
        verbose_name_plural = _("away messages")

    def __str__(self):
        return self.text[:30]


class EngagementKind(models.TextChoices):
    CLICKED = "clicked", _("Clicked")
    REPLIED = "replied", _("Replied")


class CampaignEngagement(models.Model):
    """The first click and the first reply of a person to a campaign: counted once each."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=EngagementKind.choices)
    # The A/B variant the person got, when the campaign has variants (none yet: issue 17 item 3).
    variant = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact", "kind"], name="campaign_engagement_unique"),
        ]

    def __str__(self):
        return f"{self.campaign_id}:{self.contact_id}:{self.kind}"


class Heartbeat(models.Model):
    """The last time a background process showed it was alive: the beat scheduler ("beat") and a
    worker of each queue ("worker:celery", "worker:priority"). Read by /readyz."""

    name = models.CharField(max_length=40, primary_key=True)
    seen_at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return f"{self.name} {self.seen_at:%H:%M:%S}"


class TestNumber(models.Model):
    """A number of the organization's own staff that test sends may go to (messaging.test_sends).

    Owners and admins register it; it takes test sends only once the code sent to it was typed back
    (``confirmed_at``). Only a hash of the code is kept, with its expiry and the wrong tries so far."""

    __test__ = False  # not a pytest test class, whatever its name

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="test_numbers")
    phone = models.CharField(_("mobile number"), max_length=16)
    label = models.CharField(_("label"), max_length=100, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    code_hash = models.CharField(max_length=64, blank=True, editable=False)
    code_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    code_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    code_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("test number")
        verbose_name_plural = _("test numbers")
        ordering = ["phone"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone"], name="test_number_unique_per_org"),
        ]

    def __str__(self):
        return self.phone
