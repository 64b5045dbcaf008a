"""Forms of the inbox automation page: the choices come from the organization; the rules
themselves are checked by ``messaging.automation`` (the one place every path calls)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership, Role
from campaigns.models import ContactList
from messaging.models import KeywordAction, KeywordMatch, QuickReply


class KeywordRuleForm(forms.Form):
    keyword = forms.CharField(label=_("Keyword"), max_length=100,
                              help_text=_("Full-width and half-width letters, and upper and lower case, count as the same."))
    match = forms.ChoiceField(label=_("Match"), choices=KeywordMatch.choices, initial=KeywordMatch.EXACT)
    action = forms.ChoiceField(label=_("Action"), choices=KeywordAction.choices)
    quick_reply = forms.TypedChoiceField(label=_("Saved message"), required=False, coerce=int, empty_value=None)
    tag = forms.CharField(label=_("Tag"), max_length=50, required=False)
    contact_list = forms.TypedChoiceField(label=_("List"), required=False, coerce=int, empty_value=None)
    assignee = forms.TypedChoiceField(label=_("Assign to"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        empty = [("", "—")]
        self.fields["quick_reply"].choices = empty + [
            (q.pk, q.title) for q in QuickReply.objects.filter(organization=organization)]
        self.fields["contact_list"].choices = empty + [
            (c.pk, c.name) for c in ContactList.objects.filter(organization=organization)]
        self.fields["assignee"].choices = empty + [
            (m.user_id, m.user.get_username()) for m in Membership.objects.filter(
                organization=organization, role__in=[Role.OWNER, Role.ADMIN, Role.OPERATOR]
            ).select_related("user").order_by("user__username")]


class AwayMessageForm(forms.Form):
    text = forms.CharField(label=_("Away message"), max_length=1000, required=False, widget=forms.Textarea(
        attrs={"rows": 3}), help_text=_("Sent outside business hours, once per conversation until the next opening."))
    enabled = forms.BooleanField(label=_("Send the away message"), required=False)
