"""The one field of saving or renaming a campaign template: its name (the rules are in
campaigns.campaign_templates)."""

from django import forms
from django.utils.translation import gettext_lazy as _


class TemplateNameForm(forms.Form):
    name = forms.CharField(label=_("Template name"), max_length=200,
                           widget=forms.TextInput(attrs={"autofocus": True}))
