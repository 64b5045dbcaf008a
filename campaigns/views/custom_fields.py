"""Custom fields: the organization's typed contact fields (list, create, edit), and setting a
contact's values on its page. Conversion and checks live in campaigns.fields."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from accounts.decorators import member_required
from campaigns.fields import contact_fields_update, custom_field_save
from campaigns.forms.contacts import ContactFieldsForm, CustomFieldForm
from campaigns.models import Contact, CustomField


@member_required("view")
def field_index(request):
    fields = CustomField.objects.filter(organization=request.organization)
    return render(request, "contacts/fields.html", {"fields": fields})


def _save(request, form):
    try:
        custom_field_save(form.instance)
    except ValidationError as error:
        for name, messages_ in error.message_dict.items():
            form.add_error("choices_text" if name == "choices" else name, messages_)
        return False
    return True


@member_required("compose")
def field_create(request):
    form = CustomFieldForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid() and _save(request, form):
        messages.success(request, _("The field “%(label)s” was created.") % {"label": form.instance.label})
        return redirect("contacts:fields")
    return render(request, "contacts/field_form.html", {"form": form, "custom_field": None})


@member_required("compose")
def field_edit(request, pk):
    custom_field = get_object_or_404(CustomField, pk=pk, organization=request.organization)
    form = CustomFieldForm(request.POST or None, instance=custom_field, organization=request.organization)
    if request.method == "POST" and form.is_valid() and _save(request, form):
        messages.success(request, _("Saved."))
        return redirect("contacts:fields")
    return render(request, "contacts/field_form.html", {"form": form, "custom_field": custom_field})


@member_required("compose")
def contact_fields_edit(request, pk):
    contact = get_object_or_404(Contact, pk=pk, organization=request.organization)
    fields = list(CustomField.objects.filter(organization=request.organization))
    form = ContactFieldsForm(request.POST or None, fields=fields, contact=contact)
    if request.method == "POST" and form.is_valid():
        try:
            contact_fields_update(contact, form.cleaned_data)
        except ValidationError as error:
            for key, messages_ in error.message_dict.items():
                form.add_error(key, messages_)
        else:
            messages.success(request, _("Saved."))
            return redirect("contacts:detail", pk=contact.pk)
    return render(request, "contacts/contact_fields.html", {"form": form, "contact": contact, "fields": fields})
