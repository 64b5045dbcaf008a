"""Recurring campaigns in the composer: the recurrence chosen in words (every day, every week on
chosen days, every month on a day, at a time) or, as the advanced option, a raw five-field crontab
(Japan time); checking a crontab and reading it out to a person."""

from __future__ import annotations

from datetime import time

from cron_descriptor import Options, get_description
from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from campaigns.recurrence import WEEKDAY_ORDER, Recurrence, RepeatKind, recurrence_parse, recurrence_words

_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def crontab_problem(expression: str) -> str | None:
    """Why a five-field crontab is not acceptable, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return str(_("Give five fields: minute hour day-of-month month day-of-week, e.g. “0 10 * * 1”."))
    names = [_("minute"), _("hour"), _("day of month"), _("month"), _("day of week")]
    for text, (low, high), name in zip(fields, _CRON_RANGES, names, strict=True):
        for part in text.split(","):
            body, _slash, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return str(_("The %(field)s field “%(value)s” is not valid.") % {"field": name, "value": text})
            if body == "*":
                continue
            bounds = body.split("-", 1)
            if not all(b.isdigit() and low <= int(b) <= high for b in bounds):
                return str(_("The %(field)s field “%(value)s” is not valid (%(low)d–%(high)d).")
                           % {"field": name, "value": text, "low": low, "high": high})
    if fields[0] == "*" or fields[0].startswith("*/"):
        return str(_("Sending every minute is not allowed; give a fixed minute, e.g. “0 10 * * 1”."))
    return None


def crontab_summary(expression: str) -> str:
    """A short human reading of a crontab: its words (「毎週月曜 10:00」) when it has them, else
    cron-descriptor's reading of the raw crontab (the composer's live hint)."""
    if not (expression or "").strip() or crontab_problem(expression):
        return ""
    words = recurrence_words(expression)
    if words:
        return words
    try:
        options = Options()
        options.use_24hour_time_format = True
        return get_description(expression, options)
    except Exception:  # noqa: BLE001 - a summary is a nicety; the expression was validated above
        return ""


WEEKDAY_CHOICES = [
    (str(number), label)
    for number, label in zip(
        WEEKDAY_ORDER,
        [pgettext_lazy("recurrence weekday", "Monday"), pgettext_lazy("recurrence weekday", "Tuesday"),
         pgettext_lazy("recurrence weekday", "Wednesday"), pgettext_lazy("recurrence weekday", "Thursday"),
         pgettext_lazy("recurrence weekday", "Friday"), pgettext_lazy("recurrence weekday", "Saturday"),
         pgettext_lazy("recurrence weekday", "Sunday")],
        strict=True,
    )
]


class RecurrenceForm(forms.Form):
    """The recurrence in words, or a raw crontab as the advanced option; ``cleaned_data["recurrence"]``
    is the crontab either way. The composer's campaign form inherits these fields (and checks them only
    when the campaign recurs: ``recurrence_applies``)."""

    repeat_kind = forms.ChoiceField(
        label=_("Repeat"), required=False, initial=RepeatKind.WEEKLY, widget=forms.RadioSelect,
        choices=[(RepeatKind.DAILY, _("Every day")), (RepeatKind.WEEKLY, _("Every week")),
                 (RepeatKind.MONTHLY, _("Every month")), (RepeatKind.CUSTOM, _("Advanced (crontab)"))],
    )
    repeat_time = forms.TimeField(
        label=_("Time (Japan time)"), required=False, input_formats=["%H:%M", "%H:%M:%S"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    repeat_weekdays = forms.MultipleChoiceField(
        label=_("Days of the week"), required=False, choices=WEEKDAY_CHOICES, widget=forms.CheckboxSelectMultiple,
    )
    repeat_day = forms.TypedChoiceField(
        label=_("Day of the month"), required=False, coerce=int, empty_value=None,
        choices=[("", "—")] + [(day, str(day)) for day in range(1, 32)],
    )
    recurrence = forms.CharField(
        label=_("Crontab (Japan time)"), required=False, max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "0 10 * * 1", "spellcheck": "false"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.update(recurrence_initial(self.initial.get("recurrence") or ""))

    def recurrence_applies(self) -> bool:
        return True

    def clean(self):
        data = super().clean()
        if self.recurrence_applies():
            self.clean_recurrence_words(data)
        return data

    def clean_recurrence_words(self, data: dict) -> None:
        """Turn the words into the crontab (or check the raw crontab), with a message at the field."""
        raw = (data.get("recurrence") or "").strip()
        # A post without the words (the API's shape, an old page) carries the crontab itself.
        kind = data.get("repeat_kind") or (RepeatKind.CUSTOM if raw else RepeatKind.WEEKLY)
        if kind == RepeatKind.CUSTOM:
            data["recurrence"] = raw
            problem = crontab_problem(raw)
            if problem:
                self.add_error("recurrence", problem)
            return
        at = data.get("repeat_time")
        if at is None and "repeat_time" not in self.errors:
            self.add_error("repeat_time", _("Choose the time to send."))
        weekdays = tuple(int(day) for day in data.get("repeat_weekdays") or ())
        if kind == RepeatKind.WEEKLY and not weekdays:
            self.add_error("repeat_weekdays", _("Choose at least one day of the week."))
        day = data.get("repeat_day")
        if kind == RepeatKind.MONTHLY and day is None:
            self.add_error("repeat_day", _("Choose the day of the month."))
        if self.errors.keys() & {"repeat_time", "repeat_weekdays", "repeat_day"}:
            return
        data["recurrence"] = Recurrence(kind, at.replace(second=0), weekdays=weekdays, day=day).crontab()


def recurrence_initial(expression: str) -> dict:
    """The form's words for a stored crontab; the advanced option for one that has none."""
    recurrence = recurrence_parse(expression)
    if recurrence is None:
        if expression:
            return {"repeat_kind": RepeatKind.CUSTOM}
        return {"repeat_kind": RepeatKind.WEEKLY, "repeat_time": time(10, 0)}  # a starting point
    return {
        "repeat_kind": recurrence.kind,
        "repeat_time": recurrence.at,
        "repeat_weekdays": [str(day) for day in recurrence.weekdays],
        "repeat_day": recurrence.day,
    }


def posted_crontab(data) -> str:
    """The crontab a posted composer means (for its live hints), or "" while it is incomplete."""
    form = RecurrenceForm(data)
    return form.cleaned_data["recurrence"] if form.is_valid() else ""
