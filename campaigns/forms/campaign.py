"""The composer's campaign settings form (name, account, classification, SMS text, audience, TTL,
schedule) and the small forms of the campaign page: a test send and sending a campaign back."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import OfficialAccount, ReviewStatus
from campaigns.compliance import TOKYO
from campaigns.forms.recurrence import RecurrenceForm
from campaigns.models import Campaign, Classification, ContactList, Segment
from core.phone import normalize_mobile
from core.sms_text import DEFAULT_LIMIT, validate_sms_text


class ScheduleMode:
    NOW = "now"
    AT = "at"
    RECURRING = "recurring"
    CHOICES = [(NOW, _("Send now (when launched)")), (AT, _("At a date and time")), (RECURRING, _("Recurring"))]


def approved_accounts(organization):
    return (
        OfficialAccount.objects.filter(organization=organization, reviews__status=ReviewStatus.APPROVED)
        .distinct()
        .order_by("display_name")
    )


class CampaignForm(RecurrenceForm, forms.ModelForm):
    """The composer's settings; the recurrence (in words, or a crontab) comes from RecurrenceForm."""

    schedule_mode = forms.ChoiceField(label=_("When"), choices=ScheduleMode.CHOICES, initial=ScheduleMode.NOW,
                                      widget=forms.RadioSelect)
    scheduled_at = forms.DateTimeField(
        label=_("Date and time (Japan time)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )

    class Meta:
        model = Campaign
        fields = ["name", "official_account", "classification", "sms_text", "audience_lists", "exclusion_lists",
                  "audience_segments", "exclusion_segments", "ttl_seconds", "scheduled_at", "recurrence"]
        widgets = {
            "classification": forms.RadioSelect,
            "sms_text": forms.Textarea(attrs={"rows": 5}),
            "audience_lists": forms.CheckboxSelectMultiple,
            "exclusion_lists": forms.CheckboxSelectMultiple,
            "audience_segments": forms.CheckboxSelectMultiple,
            "exclusion_segments": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["official_account"].queryset = approved_accounts(organization)
        self.fields["official_account"].empty_label = _("— choose an approved official account —")
        lists = ContactList.objects.filter(organization=organization).order_by("name")
        self.fields["audience_lists"].queryset = lists
        self.fields["exclusion_lists"].queryset = lists
        self.fields["audience_lists"].required = False
        self.fields["exclusion_lists"].required = False
        segments = Segment.objects.filter(organization=organization).order_by("name")
        for name in ("audience_segments", "exclusion_segments"):
            self.fields[name].queryset = segments
            self.fields[name].required = False
        self.fields["classification"].choices = Classification.choices
        self.fields["name"].widget.attrs.update({"placeholder": _("e.g. Winter sale coupon"), "autocomplete": "off"})
        self.fields["sms_text"].required = True
        # The limit is on the text as sent (validate_sms_text): a tracked link's URL is typed longer
        # than the short URL that replaces it, so the typed length is bounded only by the links' rules.
        self.fields["sms_text"].max_length = None
        self.fields["sms_text"].validators = [
            v for v in self.fields["sms_text"].validators if not isinstance(v, MaxLengthValidator)
        ]
        self.fields["sms_text"].widget.attrs.pop("maxlength", None)
        self.fields["sms_text"].widget.attrs.update({"data-sms-limit": str(self.sms_limit())})
        self.fields["ttl_seconds"].widget.attrs.update({"min": 60, "max": 30 * 86400, "step": 60})
        instance = self.instance
        if instance and instance.pk and not self.is_bound:
            if instance.recurrence:
                self.initial["schedule_mode"] = ScheduleMode.RECURRING
            elif instance.scheduled_at:
                self.initial["schedule_mode"] = ScheduleMode.AT
                self.initial["scheduled_at"] = timezone.localtime(instance.scheduled_at, TOKYO)

    def sms_limit(self) -> int:
        account = None
        if self.is_bound:
            try:
                account = self.fields["official_account"].clean(self.data.get("official_account"))
            except ValidationError:
                account = None
        elif self.instance and self.instance.official_account_id:
            account = self.instance.official_account
        if account and account.sms_gateway_id:
            return account.sms_gateway.sms_char_limit
        return DEFAULT_LIMIT

    def clean_sms_text(self):
        text = self.cleaned_data.get("sms_text") or ""
        try:
            validate_sms_text(
                text, limit=self.sms_limit(), field="sms_text",
                short_link_base_setting=self.organization.short_link_base,
            )
        except ValidationError as error:
            raise ValidationError(error.message_dict["sms_text"]) from None
        return text

    def clean_recurrence(self):
        return (self.cleaned_data.get("recurrence") or "").strip()

    def recurrence_applies(self) -> bool:
        return self.cleaned_data.get("schedule_mode") == ScheduleMode.RECURRING

    def clean(self):
        data = super().clean()
        mode = data.get("schedule_mode")
        if mode == ScheduleMode.AT:
            when = data.get("scheduled_at")
            if not when:
                self.add_error("scheduled_at", _("Choose the date and time to send."))
            elif when <= timezone.now():
                self.add_error("scheduled_at", _("The time must be in the future."))
            data["recurrence"] = ""
        elif mode == ScheduleMode.RECURRING:
            data["scheduled_at"] = None  # the recurrence was turned into its crontab (RecurrenceForm)
        else:
            data["scheduled_at"] = None
            data["recurrence"] = ""
        include = {item.pk for item in data.get("audience_lists") or []}
        exclude = {item.pk for item in data.get("exclusion_lists") or []}
        if include & exclude:
            self.add_error("exclusion_lists", _("A list cannot be both included and excluded."))
        chosen = {item.pk for item in data.get("audience_segments") or []}
        if chosen & {item.pk for item in data.get("exclusion_segments") or []}:
            self.add_error("exclusion_segments", _("A segment cannot be both included and excluded."))
        return data


class TestSendForm(forms.Form):
    phone = forms.CharField(label=_("Mobile number"), max_length=32,
                            widget=forms.TextInput(attrs={"placeholder": "090-1234-5678", "inputmode": "tel"}))

    def clean_phone(self):
        return normalize_mobile(self.cleaned_data["phone"])


class SendBackForm(forms.Form):
    reason = forms.CharField(label=_("What should change?"), max_length=300,
                             widget=forms.Textarea(attrs={"rows": 3}))
