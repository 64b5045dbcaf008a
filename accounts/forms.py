"""Forms of the console's account pages: official accounts, logo, fixed-menu items, members, quiet
hours, API keys and webhook endpoints."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import password_validators_help_texts
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    ApiScope,
    GatewayAccount,
    GatewayKind,
    OfficialAccount,
    PriceUnit,
    Role,
    SecondApprover,
    WebhookEvent,
)
from accounts.pricing import CARRIER_LABELS, MAX_PRICE, PRICE_COLUMNS
from accounts.services import frequency_cap_problems, retention_problems
from core.egress import EgressProblem, check_url
from core.rich_content import CARD_TITLE_MAX, LABEL_MAX, POSTBACK_MAX, URL_MAX


class OfficialAccountForm(forms.ModelForm):
    class Meta:
        model = OfficialAccount
        fields = [
            "display_name",
            "legal_name",
            "description",
            "brand_color",
            "sms_sender_id",
            "rcs_gateway",
            "sms_gateway",
            "backup_sms_gateway",
        ]
        widgets = {
            "brand_color": forms.TextInput(attrs={"type": "color"}),
            "description": forms.Textarea(attrs={"rows": 4}),
        }
        help_texts = {
            "legal_name": _("Shown in every promotional message, as the law requires."),
            "sms_sender_id": _("Up to 11 letters or digits; shown as the sender of SMS fallback messages."),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        gateways = GatewayAccount.objects.filter(organization=organization)
        self.fields["rcs_gateway"].queryset = gateways.filter(kind=GatewayKind.RBM)
        self.fields["sms_gateway"].queryset = gateways.filter(kind=GatewayKind.CM)
        self.fields["rcs_gateway"].empty_label = _("— none —")
        self.fields["sms_gateway"].empty_label = _("— none —")
        self.fields["backup_sms_gateway"].queryset = gateways.filter(kind=GatewayKind.CM)
        self.fields["backup_sms_gateway"].empty_label = _("— none —")
        self.instance.organization = organization
        self.organization = organization

    def clean_display_name(self):
        # The (organization, display name) constraint involves a field the form does not show, so
        # Django's constraint validation skips it; check it here to answer beside the field.
        name = self.cleaned_data["display_name"].strip()
        others = OfficialAccount.objects.filter(organization=self.organization, display_name=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another official account already has this name."))
        return name

    def clean(self):
        cleaned = super().clean()
        primary, backup = cleaned.get("sms_gateway"), cleaned.get("backup_sms_gateway")
        if backup is not None:
            if primary is None:
                self.add_error("backup_sms_gateway", _("Choose the SMS gateway first; the backup stands in for it."))
            elif backup == primary:
                self.add_error("backup_sms_gateway", _("The backup must be another gateway than the SMS gateway."))
        return cleaned

    def clean_sms_sender_id(self):
        value = self.cleaned_data["sms_sender_id"].strip()
        if not value.isascii() or not value.replace(" ", "").isalnum():
            raise forms.ValidationError(_("Use letters and digits only."))
        return value

    def clean_brand_color(self):
        value = self.cleaned_data["brand_color"].strip()
        if len(value) != 7 or not value.startswith("#"):
            raise forms.ValidationError(_("Use a colour like #0B57D0."))
        return value.upper()


class LogoForm(forms.Form):
    logo = forms.FileField(
        label=_("Logo"),
        help_text=_("PNG, JPEG, GIF or WebP, square, at least 64×64 and at most 2048×2048 pixels, up to 2 MB. SVG is not accepted."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )


ITEM_TYPES = [
    ("reply", _("Reply (postback)")),
    ("open_url", _("Open a URL")),
    ("dial", _("Call a number")),
    ("location", _("Show a location")),
    ("calendar", _("Add to calendar")),
    ("submenu", _("Submenu")),
]

# Which form fields each item type uses, in display order.
TYPE_FIELDS = {
    "reply": ["postback"],
    "open_url": ["url"],
    "dial": ["phone"],
    "location": ["latitude", "longitude", "query"],
    "calendar": ["title", "start", "end"],
    "submenu": [],
}


def _local_iso(value):
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    return value.isoformat()


class MenuItemForm(forms.Form):
    """One fixed-menu entry. The whole menu is validated by accounts.fixed_menu after this."""

    type = forms.ChoiceField(label=_("Action"), choices=ITEM_TYPES)
    label = forms.CharField(label=_("Label"), max_length=LABEL_MAX, help_text=_("Up to 25 characters."))
    postback = forms.CharField(label=_("Postback data"), max_length=POSTBACK_MAX, required=False,
                               help_text=_("Sent back to you when the customer taps the item."))
    url = forms.CharField(label=_("URL"), max_length=URL_MAX, required=False, help_text=_("http:// or https:// only."))
    phone = forms.CharField(label=_("Phone number"), max_length=20, required=False)
    latitude = forms.FloatField(label=_("Latitude"), required=False)
    longitude = forms.FloatField(label=_("Longitude"), required=False)
    query = forms.CharField(label=_("Place name"), max_length=CARD_TITLE_MAX, required=False)
    title = forms.CharField(label=_("Event title"), max_length=CARD_TITLE_MAX, required=False)
    start = forms.DateTimeField(label=_("Starts"), required=False,
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    end = forms.DateTimeField(label=_("Ends"), required=False,
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    def __init__(self, *args, allow_submenu=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not allow_submenu:
            self.fields["type"].choices = [choice for choice in ITEM_TYPES if choice[0] != "submenu"]

    def current_type(self):
        if self.is_bound:
            value = self.data.get(self.add_prefix("type"))
        else:
            value = self.initial.get("type")
        return value if value in TYPE_FIELDS else "reply"

    def type_fields(self):
        return [self[name] for name in TYPE_FIELDS[self.current_type()]]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("type")
        required = {"open_url": ["url"], "dial": ["phone"], "location": ["latitude", "longitude"],
                    "calendar": ["title", "start", "end"], "reply": ["postback"]}.get(kind, [])
        for name in required:
            if cleaned.get(name) in (None, ""):
                self.add_error(name, _("This field is required."))
        return cleaned

    def to_item(self) -> dict:
        data = self.cleaned_data
        kind = data["type"]
        if kind == "submenu":
            return {"label": data["label"], "items": []}
        item = {"type": kind, "label": data["label"]}
        if kind == "reply":
            item["postback"] = data["postback"]
        elif kind == "open_url":
            item["url"] = data["url"].strip()
        elif kind == "dial":
            item["phone"] = data["phone"].strip()
        elif kind == "location":
            item["latitude"] = data["latitude"]
            item["longitude"] = data["longitude"]
            if data.get("query"):
                item["query"] = data["query"]
        elif kind == "calendar":
            item["title"] = data["title"]
            item["start"] = _local_iso(data["start"])
            item["end"] = _local_iso(data["end"])
        return item

    @staticmethod
    def initial_from_item(item: dict) -> dict:
        if "items" in item:
            return {"type": "submenu", "label": item.get("label", "")}
        initial = dict(item)
        for key in ("start", "end"):
            if initial.get(key):
                initial[key] = initial[key][:16]
        return initial

    def add_menu_errors(self, messages: dict[str, list], item_path: str, *, only_own=False, skip_children=False):
        """Put errors from validate_fixed_menu beside the field they concern (or at the top).

        ``only_own``: ignore errors about other items; ``skip_children``: leave the errors of this
        item's submenu entries to the child form.
        """
        prefix = "fixed_menu.items[" + "].items[".join(item_path.split(".")) + "]"
        for field_path, errors in messages.items():
            if only_own and not field_path.startswith(prefix + "."):
                continue
            if skip_children and field_path.startswith(prefix + ".items["):
                continue
            target = None
            if field_path.startswith(prefix + "."):
                name = field_path[len(prefix) + 1:].split(".")[0].split("[")[0]
                if name in self.fields:
                    target = name
            for error in errors:
                self.add_error(target, error)


class MemberAddForm(forms.Form):
    identifier = forms.CharField(label=_("Username or e-mail address"), max_length=254,
                                 help_text=_("The person must already have an account on this console."))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.VIEWER)


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254,
                             help_text=_("We send this address a link to join; it works for a limited time."))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.VIEWER)


class InvitationAcceptForm(forms.Form):
    """A new account's username and password; the rules (unique username, Django's password
    validators) are checked by accounts.invitations.invitation_accept_new_account."""

    username = forms.CharField(label=_("Username"), max_length=150,
                               help_text=_("You sign in with it. Letters, digits and @ . + - _ only."),
                               widget=forms.TextInput(attrs={"autocomplete": "username"}))
    password1 = forms.CharField(label=_("Password"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Password (again)"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = " ".join(password_validators_help_texts())

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", _("The two passwords differ."))
        return cleaned


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class QuietHoursForm(forms.Form):
    start = forms.TimeField(label=_("Quiet hours start"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end = forms.TimeField(label=_("Quiet hours end"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))


class BusinessHoursForm(forms.Form):
    """When the organization's people answer the inbox; outside them, away messages go out."""

    DAYS = [("1", _("Monday")), ("2", _("Tuesday")), ("3", _("Wednesday")), ("4", _("Thursday")),
            ("5", _("Friday")), ("6", _("Saturday")), ("7", _("Sunday"))]

    start = forms.TimeField(label=_("Opens at"), required=False,
                            widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end = forms.TimeField(label=_("Closes at"), required=False,
                          widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    days = forms.MultipleChoiceField(label=_("Business days"), choices=DAYS, required=False,
                                     widget=forms.CheckboxSelectMultiple)

    def clean(self):
        cleaned = super().clean()
        start, end, days = cleaned.get("start"), cleaned.get("end"), cleaned.get("days")
        if start is None and end is None:
            return cleaned  # no business hours: no away message
        if start is None:
            self.add_error("start", _("Enter the opening time, or clear both times."))
        elif end is None:
            self.add_error("end", _("Enter the closing time, or clear both times."))
        elif start >= end:
            self.add_error("end", _("The closing time must be after the opening time (on the same day)."))
        if not days:
            self.add_error("days", _("Choose at least one business day."))
        return cleaned


class SecondApproverForm(forms.Form):
    second_approver = forms.ChoiceField(
        label=_("A second person approves"), choices=SecondApprover.choices, widget=forms.RadioSelect,
        help_text=_("Under this rule nobody approves a campaign they submitted, in the console or through an API key."),
    )


class RetentionForm(forms.Form):
    """Bounds are checked by accounts.services.retention_problems, the rule every path calls."""

    message_days = forms.IntegerField(label=_("Keep message bodies and conversations (days)"),
                                      widget=forms.NumberInput(attrs={"min": 1}))
    consent_years = forms.IntegerField(label=_("Keep an erased person's consent and opt-out history (years)"),
                                       widget=forms.NumberInput(attrs={"min": 1}))

    def clean(self):
        cleaned = super().clean()
        if "message_days" in cleaned and "consent_years" in cleaned:
            for field, messages in retention_problems(cleaned["message_days"], cleaned["consent_years"]).items():
                for message in messages:
                    self.add_error(field, message)
        return cleaned


class OptInKeywordForm(forms.Form):
    keyword = forms.CharField(
        label=_("Opt-in keyword"), max_length=20, required=False,
        help_text=_("A person who texts this word (e.g. 登録) to one of your official accounts gets a consent "
                    "record (method: reply keyword, evidence: their message) and a confirmation. Empty: off."),
    )


class ShortLinkBaseForm(forms.Form):
    short_link_base = forms.CharField(
        label=_("Short-link base"), max_length=100, required=False,
        help_text=_("Where the tracked links of SMS texts point, e.g. https://s.example.jp/s/ — that address "
                    "must reach this console's /s/ path (and be in ALLOWED_HOSTS). Empty: the console's own address."),
    )


class TestNumberForm(forms.Form):
    phone = forms.CharField(label=_("Mobile number"), max_length=32,
                            widget=forms.TextInput(attrs={"placeholder": "090-1234-5678", "inputmode": "tel"}))
    label = forms.CharField(label=_("Whose phone"), max_length=100, required=False)


class TestNumberConfirmForm(forms.Form):
    code = forms.RegexField(label=_("Code"), regex=r"^\s*\d{6}\s*$",
                            widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}))


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("Which system uses it, e.g. “order system (production)”."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple,
        help_text=_("Read only allows every GET and nothing else."),
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError(_("Only http and https URLs."))
        # The egress guard's check now (a refused address, or a host that does not resolve: a typo is
        # better caught here), and again at every delivery attempt.
        try:
            check_url(url)
        except EgressProblem as error:
            raise forms.ValidationError(error.user_message, code="egress") from None
        return url


class FrequencyCapForm(forms.Form):
    """Bounds are checked by accounts.services.frequency_cap_problems, the rule every path calls."""

    count = forms.IntegerField(label=_("At most this many promotions per person"), required=False,
                               widget=forms.NumberInput(attrs={"min": 1}),
                               help_text=_("Leave empty to switch the cap off."))
    days = forms.IntegerField(label=_("In this many days"), widget=forms.NumberInput(attrs={"min": 1}))

    def clean(self):
        cleaned = super().clean()
        if "count" in cleaned and "days" in cleaned:
            for field, messages in frequency_cap_problems(cleaned["count"], cleaned["days"]).items():
                for message in messages:
                    self.add_error(field, message)
        return cleaned


def _plain(amount: Decimal | None) -> str | None:
    """3.3 rather than the column's 3.3000 (and 100, not 1E+2)."""
    return None if amount is None else format(amount.normalize(), "f")


class GatewayPriceForm(forms.Form):
    """A gateway account's price table: one yen amount per (unit, carrier) of
    ``accounts.pricing.PRICE_COLUMNS``; a blank carrier price falls back to the any-carrier one."""

    def __init__(self, *args, gateway: GatewayAccount, **kwargs):
        super().__init__(*args, **kwargs)
        self.gateway = gateway
        current = {(p.unit, p.carrier): p.price for p in gateway.prices.all()}
        for unit, carriers in PRICE_COLUMNS.items():
            for carrier in carriers:
                self.fields[self.field_name(unit, carrier)] = forms.DecimalField(
                    label=CARRIER_LABELS[carrier],
                    required=False,
                    min_value=Decimal("0"),
                    max_value=MAX_PRICE,
                    max_digits=10,
                    decimal_places=4,
                    initial=_plain(current.get((unit, carrier))),
                    widget=forms.NumberInput(attrs={"step": "0.0001", "min": "0", "inputmode": "decimal"}),
                    error_messages={
                        "invalid": _("Enter an amount in yen, e.g. 3.3."),
                        "max_decimal_places": _("Use at most 4 decimal places."),
                        "min_value": _("A price cannot be negative."),
                    },
                )

    @staticmethod
    def field_name(unit: str, carrier: str) -> str:
        return f"{unit}_{carrier or 'any'}"

    def rows(self):
        """(unit label, [bound fields]) per unit, for the table."""
        return [
            (PriceUnit(unit).label, [self[self.field_name(unit, carrier)] for carrier in carriers])
            for unit, carriers in PRICE_COLUMNS.items()
        ]

    def prices(self) -> dict[tuple[str, str], Decimal | None]:
        return {
            (unit, carrier): self.cleaned_data.get(self.field_name(unit, carrier))
            for unit, carriers in PRICE_COLUMNS.items()
            for carrier in carriers
        }
