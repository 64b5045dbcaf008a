"""Forms of the contact pages: lists, search and filters, import upload and column mapping."""

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.fields import choices_parse
from campaigns.imports import import_requirements, target_choices
from campaigns.models import ConsentMethod, ContactList, CustomField, FieldKind


class ContactListForm(forms.ModelForm):
    class Meta:
        model = ContactList
        fields = ["name", "purpose", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "purpose": _("Promotional lists need each person's prior consent (特定電子メール法); transactional lists do not."),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.instance.organization = organization

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = ContactList.objects.filter(organization=self.organization, name=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("A list with this name already exists."))
        return name


class ContactSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Phone number or name")}))
    list = forms.ModelChoiceField(label=_("List"), queryset=ContactList.objects.none(), required=False,
                                  empty_label=_("All lists"))
    opted_out = forms.ChoiceField(
        label=_("Opt-out"),
        required=False,
        choices=[("", _("Everyone")), ("no", _("Reachable")), ("yes", _("Opted out"))],
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["list"].queryset = ContactList.objects.filter(organization=organization)


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (UTF-8, or Shift_JIS as Excel saves it) or Excel .xlsx. The first row names the columns."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx,text/csv"}),
    )
    contact_list = forms.ModelChoiceField(label=_("Add to list"), queryset=ContactList.objects.none(),
                                          empty_label=_("Choose a list"))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        lists = ContactList.objects.filter(organization=organization)
        self.fields["contact_list"].queryset = lists
        self.fields["contact_list"].label_from_instance = lambda item: f"{item.name} ({item.get_purpose_display()})"


class ImportMappingForm(forms.Form):
    """One choice per column of the file, plus consent defaults for rows (or files) without them."""

    attested = forms.BooleanField(
        label=_("I confirm that every person in this file gave prior consent to receive promotional messages, "
                "and that the records of that consent are kept."),
        required=False,
    )
    method = forms.ChoiceField(label=_("Consent method"), choices=ConsentMethod.choices, initial=ConsentMethod.IMPORT,
                               help_text=_("Used for rows without a method column."))
    source = forms.CharField(label=_("Consent source"), max_length=300, required=False,
                             help_text=_("Where consent was collected: a form URL, a shop… Defaults to the file name."))
    wording_version = forms.CharField(
        label=_("Consent wording version"), max_length=50, required=False,
        help_text=_("The version of the text people agreed to, e.g. “2024-04 v2”. Needed when no consent date "
                    "column is mapped; with one, a missing version is recorded as “not stated”."),
    )

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.column_fields = []
        self.column_errors = []  # about the mapping as a whole, shown above the columns
        choices = target_choices(job.organization_id)
        for index, header in enumerate(job.headers):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=job.mapping.get(str(index), "")
            )
            samples = [row[index] for row in job.sample_rows if index < len(row) and row[index]]
            self.column_fields.append((self[name], samples))
        # Marked required as the service will require them, for the columns as submitted (or guessed).
        self.requirements = import_requirements(job.contact_list, self._chosen_targets())
        self.fields["attested"].required_mark = self.requirements.attestation_needed
        self.fields["wording_version"].required_mark = self.requirements.wording_needed

    def _chosen_targets(self):
        if self.is_bound:
            return [self.data.get(self.add_prefix(f"col_{index}"), "") for index in range(len(self.job.headers))]
        return [self.job.mapping.get(str(index), "") for index in range(len(self.job.headers))]

    def mapping(self):
        return {str(index): self.cleaned_data.get(f"col_{index}", "") for index in range(len(self.job.headers))}

    def consent_defaults(self):
        return {
            "attested": self.cleaned_data["attested"],
            "method": self.cleaned_data["method"],
            "source": self.cleaned_data["source"].strip(),
            "wording_version": self.cleaned_data["wording_version"].strip(),
        }

    def add_service_errors(self, error):
        """Put the import service's refusal (``import_job_set_mapping``) beside what it is about."""
        for key, messages in error.message_dict.items():
            if key.startswith("column_") and f"col_{key.removeprefix('column_')}" in self.fields:
                self.add_error(f"col_{key.removeprefix('column_')}", messages)
            elif key in self.fields:
                self.add_error(key, messages)
            else:
                self.column_errors.extend(messages)

class CustomFieldForm(forms.ModelForm):
    """A typed custom field; its choices are typed one per line."""

    choices_text = forms.CharField(
        label=_("Choices"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For a choice field: one choice per line, e.g. ゴールド, シルバー, ブロンズ."),
    )

    class Meta:
        model = CustomField
        fields = ["label", "key", "kind"]
        help_texts = {"kind": _("Values are checked against the type at import and on the contact page.")}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.organization = organization
        if self.instance.pk:
            self.fields["choices_text"].initial = "\n".join(self.instance.choices)
            # The key names stored values and the type decides how they compare: fixed once made.
            self.fields["key"].disabled = True
            self.fields["kind"].disabled = True

    def clean(self):
        cleaned = super().clean()
        self.instance.choices = choices_parse(cleaned.get("choices_text", ""))
        return cleaned


class ContactFieldsForm(forms.Form):
    """The contact page's editor of custom field values, one input per field of its type."""

    def __init__(self, *args, fields, contact, **kwargs):
        super().__init__(*args, **kwargs)
        attributes = contact.attributes or {}
        for field in fields:
            initial = attributes.get(field.key, "")
            if field.kind == FieldKind.CHOICE:
                form_field = forms.ChoiceField(choices=[("", "—"), *[(c, c) for c in field.choices]])
            elif field.kind == FieldKind.DATE:
                form_field = forms.CharField(widget=forms.DateInput(attrs={"type": "date"}))
            elif field.kind == FieldKind.NUMBER:
                form_field = forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}))
            else:
                form_field = forms.CharField(max_length=1000)
            form_field.label = field.label
            form_field.required = False
            form_field.initial = initial
            self.fields[field.key] = form_field
