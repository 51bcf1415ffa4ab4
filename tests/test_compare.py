"""simopt compare on recorded fixture sessions: numbers computed by hand, the chart is a real PNG."""

import json
from pathlib import Path

import pytest

from cli_helpers import run_cli, png_size

FIXTURES = Path(__file__).parent / "fixtures" / "histories"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def test_compare_json_numbers_match_a_hand_computation():
    code, out, _ = run_cli("compare", "alpha", "beta", "--repo", str(FIXTURES), "--json")
    alpha, beta = json.loads(out)["sessions"]
    assert code == 0
    # alpha keeps 0.80, 0.90, 0.95: best so far 1.25 after #2, 1.3889 after #5, 1.4620 after #9.
    assert alpha["best_so_far"] == pytest.approx(1 / (0.8 * 0.9 * 0.95))
    # ln 1.4620 = 0.3798; half of it (0.1899) is passed at #2 (ln 1.25 = 0.2231), 90% (0.3418)
    # only at #9 (#5 reaches ln 1.3889 = 0.3285).
    assert (alpha["experiments_to_50"], alpha["experiments_to_90"]) == (2, 9)
    assert alpha["cumulative_speedup"] == pytest.approx(1.4493)  # the checkpoint, not the product
    assert alpha["keep_rate"] == pytest.approx(3 / 12)
    # guard_fail #3 + different_output #6 + scope_violation #7 + holdout_fail #10
    assert alpha["guard_caught_rate"] == pytest.approx(4 / 12)
    assert alpha["crash_rate"] == pytest.approx(1 / 12)
    assert alpha["wall_s"] == 1440.0
    assert (alpha["tokens"], alpha["cost_usd"]) == (30000, pytest.approx(0.12))
    # beta: line 4 is corrupt and line 8 torn, so 4 experiments; keeps 0.70 then 0.85.
    assert beta["experiments"] == 4
    assert beta["cumulative_speedup"] == pytest.approx(1 / (0.7 * 0.85))
    assert beta["cumulative_speedup_source"] == "product of kept ratios"
    assert (beta["experiments_to_50"], beta["experiments_to_90"]) == (1, 4)
    assert beta["keep_rate"] == 0.5 and beta["guard_caught_rate"] == 0.25
    assert beta["crash_rate"] == 0.0
    assert beta["wall_s"] == 720.0  # two 6-minute stretches around the resume
    assert (beta["tokens"], beta["cost_usd"]) == (None, None)


def test_compare_table_cells():
    code, out, err = run_cli("compare", "alpha", "gamma", "--repo", str(FIXTURES))
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[1:]
    assert code == 0 and err == ""
    assert rows["scenario"] == ["fattree", "mesh"] and rows["agent"] == ["openai", "command:aider"]
    assert rows["best cumulative speedup"] == ["1.449x [1.429x, 1.471x]", "1.031x"]
    assert rows["measured by"] == ["checkpoint after 10", "product of kept ratios"]
    assert rows["experiments to 90% of best"] == ["9", "2"]
    assert rows["keep rate"] == ["25.0%", "50.0%"]
    assert rows["guard-caught rate"] == ["33.3%", "0.0%"]
    assert rows["crash rate"] == ["8.3%", "0.0%"]
    assert rows["wall time"] == ["24m00s", "10m00s"]
    assert rows["tokens"] == ["30,000", "—"]
    assert rows["cost"] == ["$0.12", "—"]


def test_compare_writes_a_png_chart(tmp_path):
    chart = tmp_path / "charts" / "compare.png"
    code, out, err = run_cli(
        "compare", "alpha", "beta", "gamma", "--repo", str(FIXTURES), "--plot", str(chart)
    )
    assert code == 0
    assert f"chart: {chart}" in out
    assert len(err.splitlines()) == 2  # beta's corrupt and torn lines
    width, height = png_size(chart)
    assert 800 <= width <= 2400 and 500 <= height <= 1600
    assert chart.stat().st_size > 10_000


def test_compare_an_empty_session_has_no_rates():
    code, out, _ = run_cli("compare", "empty", "gamma", "--repo", str(FIXTURES), "--json")
    empty = json.loads(out)["sessions"][0]
    assert code == 0
    assert empty["experiments"] == 0 and empty["keep_rate"] is None
    assert empty["experiments_to_50"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (("alpha", "nope"), "no session 'nope'"),
        (("alpha", "alpha"), "tag given twice: alpha"),
        (("alpha", "--plot", "chart.svg"), "--plot chart.svg: the chart is a PNG"),
    ],
)
def test_compare_user_errors(argv, message):
    code, out, err = run_cli("compare", *argv, "--repo", str(FIXTURES))
    assert code == 2 and out == ""
    assert err.startswith("simopt: error: ") and message in err
    assert len(err.splitlines()) == 1
