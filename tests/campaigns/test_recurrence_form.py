"""The recurrence chosen in words (campaigns.forms.recurrence.RecurrenceForm): every day, every week on
chosen days, every month on a day, at a time — or a raw crontab as the advanced option."""

from datetime import time

import pytest
from django.utils import translation

from campaigns.forms.recurrence import RecurrenceForm, posted_crontab


@pytest.mark.parametrize(
    ("data", "crontab"),
    [
        ({"repeat_kind": "daily", "repeat_time": "09:30"}, "30 9 * * *"),
        ({"repeat_kind": "weekly", "repeat_time": "10:00", "repeat_weekdays": ["1"]}, "0 10 * * 1"),
        ({"repeat_kind": "weekly", "repeat_time": "22:00", "repeat_weekdays": ["3", "1", "0"]}, "0 22 * * 1,3,0"),
        ({"repeat_kind": "monthly", "repeat_time": "12:00", "repeat_day": "1"}, "0 12 1 * *"),
        ({"repeat_kind": "custom", "recurrence": "0 9,18 * * 1-5"}, "0 9,18 * * 1-5"),
        # A post without the words (an old page, the API's shape) carries the crontab itself.
        ({"recurrence": " 0 10 * * 1 "}, "0 10 * * 1"),
    ],
)
def test_words_become_the_crontab(data, crontab):
    form = RecurrenceForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["recurrence"] == crontab


def test_words_ignore_a_stale_raw_crontab():
    form = RecurrenceForm({"repeat_kind": "daily", "repeat_time": "08:00", "recurrence": "0 9,18 * * *"})
    assert form.is_valid()
    assert form.cleaned_data["recurrence"] == "0 8 * * *"


@pytest.mark.parametrize(
    ("data", "field", "message", "japanese"),
    [
        ({"repeat_kind": "weekly", "repeat_time": "10:00"}, "repeat_weekdays",
         "Choose at least one day of the week.", "曜日を1つ以上選んでください。"),
        ({"repeat_kind": "daily", "repeat_time": ""}, "repeat_time", "Choose the time to send.",
         "送信する時刻を選んでください。"),
        ({"repeat_kind": "monthly", "repeat_time": "10:00"}, "repeat_day", "Choose the day of the month.",
         "毎月何日に送るかを選んでください。"),
        ({"repeat_kind": "custom", "recurrence": "* 10 * * *"}, "recurrence",
         "Sending every minute is not allowed; give a fixed minute, e.g. “0 10 * * 1”.", None),
    ],
)
def test_a_missing_part_is_named_at_its_field(data, field, message, japanese):
    form = RecurrenceForm(data)
    assert not form.is_valid()
    assert form.errors == {field: [message]}
    if japanese:
        with translation.override("ja"):
            assert RecurrenceForm(data).errors == {field: [japanese]}


def test_a_time_that_is_not_a_time_is_refused():
    form = RecurrenceForm({"repeat_kind": "daily", "repeat_time": "25:00"})
    assert not form.is_valid()
    assert list(form.errors) == ["repeat_time"]


@pytest.mark.parametrize("day", ["0", "32", "x"])
def test_a_day_outside_the_month_is_refused(day):
    form = RecurrenceForm({"repeat_kind": "monthly", "repeat_time": "10:00", "repeat_day": day})
    assert not form.is_valid()
    assert list(form.errors) == ["repeat_day"]


def test_a_stored_crontab_opens_in_words():
    form = RecurrenceForm(initial={"recurrence": "0 10 * * 1,3"})
    assert form.initial["repeat_kind"] == "weekly"
    assert form.initial["repeat_time"] == time(10, 0)
    assert form.initial["repeat_weekdays"] == ["1", "3"]
    html = str(form["repeat_weekdays"])
    assert 'value="1" id="id_repeat_weekdays_0" checked' in html
    assert 'value="2" id="id_repeat_weekdays_1">' in html
    assert 'value="10:00"' in str(form["repeat_time"])
    monthly = RecurrenceForm(initial={"recurrence": "30 9 15 * *"})
    assert (monthly.initial["repeat_kind"], monthly.initial["repeat_day"]) == ("monthly", 15)


def test_a_crontab_without_words_opens_as_the_advanced_option():
    form = RecurrenceForm(initial={"recurrence": "0 9,18 * * *"})
    assert form.initial["repeat_kind"] == "custom"
    assert 'value="0 9,18 * * *"' in str(form["recurrence"])


def test_weekday_choices_read_monday_first_in_japanese():
    with translation.override("ja"):
        labels = [str(label) for _value, label in RecurrenceForm().fields["repeat_weekdays"].choices]
    assert labels == ["月曜", "火曜", "水曜", "木曜", "金曜", "土曜", "日曜"]


def test_posted_crontab_is_empty_while_incomplete():
    assert posted_crontab({"repeat_kind": "weekly", "repeat_time": "10:00"}) == ""
    assert posted_crontab({"repeat_kind": "weekly", "repeat_time": "10:00", "repeat_weekdays": ["2"]}) == "0 10 * * 2"


def test_a_new_recurrence_starts_weekly_at_ten():
    form = RecurrenceForm()
    assert (form.initial["repeat_kind"], form.initial["repeat_time"]) == ("weekly", time(10, 0))
