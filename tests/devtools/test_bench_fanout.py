"""bench_fanout's --workers/--chains sweep: the options give every combination, fewest processes first."""

import pytest
from django.core.management import CommandError

from devtools.management.commands.bench_fanout import Command, sweep_combinations, sweep_summary


def _options(*argv):
    return vars(Command().create_parser("manage.py", "bench_fanout").parse_args(list(argv)))


def test_sweep_options_give_every_combination():
    options = _options("--workers", "1,2", "--chains", "1,2,4")

    assert sweep_combinations(options) == [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4)]


def test_without_sweep_one_run_as_before():
    assert sweep_combinations(_options()) == [(4, 8)]


@pytest.mark.parametrize("value", ["0", "a,b", ""])
def test_bad_sweep_lists_are_refused(value):
    with pytest.raises(CommandError):
        _options("--workers", value)


def test_summary_shows_the_rate_against_the_first_run():
    runs = [
        {
            "workers": w,
            "chains": 2,
            "workers_chains": f"{w}x2",
            "sends_per_s": rate,
            "ratio": 0.5,
            "cpu_sends": {"cpu_s_per_1000": 1.0},
        }
        for w, rate in ((1, 500.0), (2, 900.0))
    ]

    summary = sweep_summary(runs)

    assert [row["speedup"] for row in summary["sweep"]] == [1.0, 1.8]
    assert summary["sweep"][1]["sends_per_s_per_process"] == 450.0
    assert summary["best"] == "2x2"
