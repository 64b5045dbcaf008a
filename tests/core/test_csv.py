"""The CSV formula guard and the streamed lines every export uses."""

import csv
import io

import pytest

from core.csv import csv_lines, csv_safe, phone_cell


@pytest.mark.parametrize(
    "value,expected",
    [("=SUM(A1)", "'=SUM(A1)"), ("=1+1", "'=1+1"), ("+81", "'+81"), ("-1", "'-1"), ("@cmd", "'@cmd"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("山田", "山田"), ("safe", "safe"), ("", ""), (None, ""), (5, "5")],
)
def test_csv_safe_neutralises_formula_cells(value, expected):
    assert csv_safe(value) == expected


def test_csv_lines_start_with_a_bom_and_guard_every_cell():
    lines = list(csv_lines(["Name", "Mobile number"], iter([["=HYPERLINK(\"x\")", "+819012345678"], [None, 7]])))
    assert lines[0] == "\ufeff"
    rows = list(csv.reader(io.StringIO("".join(lines[1:]))))
    assert rows == [["Name", "Mobile number"], ["'=HYPERLINK(\"x\")", "'+819012345678"], ["", "7"]]


def test_a_phone_cell_reads_as_on_screen_and_needs_no_guard():
    assert phone_cell("+819012345678") == "090-1234-5678"
    assert csv_safe(phone_cell("+819012345678")) == "090-1234-5678"  # a digit first: no visible '
    assert phone_cell(None) == "" and phone_cell("") == ""
    # anything that is not a Japanese mobile number stays as it is, and the guard still applies
    assert csv_safe(phone_cell("+14155550100")) == "'+14155550100"
    assert csv_safe(phone_cell("=cmd|' /C calc'!A0")) == "'=cmd|' /C calc'!A0"
