"""bench_soak: the embedded default (SQLite, filesystem broker, every Procfile process under the
supervisor) used as a shop would, briefly; nothing may be lost, duplicated or restarted."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.engine


def test_bench_soak_short_run_loses_nothing(tmp_path):
    out = StringIO()
    call_command(
        "bench_soak", minutes=0.5, cycle_minutes=0.25, recipients=300, new_per_cycle=30, rate=500,
        var_dir=str(tmp_path / "soak"), stdout=out,
    )
    result = json.loads(out.getvalue())

    assert result["settled"] is True
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["at_carrier_not_marked_sent"] == 0
    assert result["restarts"] == 0
    assert set(result["restarts_by_process"]) == {"web", "bulk", "priority", "beat", "sandbox"}
    assert [row["status"] for row in result["imports"]] == ["done"] * len(result["imports"])
    assert sum(row["created"] for row in result["imports"]) == 300 + 30 * (len(result["imports"]) - 1)
    assert result["first_promotion_recipients"] == 300
    assert len(result["promotions"]) >= 2
    assert all(row["status"] == "completed" for row in result["promotions"])
    assert result["api_sent"] > 0 and result["api_errors"] == 0
    assert result["replies"] > 0
    # Every message the console made is accounted for: sent to a handset, or failed with a reason.
    assert result["deliveries"] == sum(result["deliveries_by_status"].values())
    assert result["deliveries"] >= 300 + 330 - result["opt_outs"] + result["api_sent"]
    for process in ("web", "bulk", "priority", "beat", "sandbox"):
        assert result["memory"][process]["peak_rss_mb"] > 10
