"""compare_commands on tiny shell benchmarks in two version roots."""

import pytest

from simopt.errors import UserError
from simopt.measure import compare_commands
from simopt.measure.command import parse_metric

# Each run reads and bumps a counter in its root: its +-1% noise is a fixed sequence, not luck.
BENCH = """
run=$(cat runs.txt 2>/dev/null || echo 0)
echo $((run + 1)) > runs.txt
echo "METRIC cost=$(({cost} + (run * {stride}) % 21 - 10))"
"""


def version(tmp_path, name, *, cost=1000, stride=2, script=None):
    root = tmp_path / name
    root.mkdir()
    (root / "bench.sh").write_text(script if script is not None else BENCH.format(cost=cost, stride=stride))
    return root


def test_parse_metric_takes_the_last_metric_line():
    assert parse_metric("METRIC cost=2.5\nnoise\nMETRIC cost=1.5\n") == ("cost", 1.5)
    assert parse_metric("no metric here") is None
    assert parse_metric("METRIC cost=abc") is None


def test_a_lower_metric_is_faster(tmp_path):
    result = compare_commands(
        "sh bench.sh", version(tmp_path, "base"), version(tmp_path, "cand", cost=800, stride=5), max_seconds=4
    )
    assert result["verdict"] == "faster"
    assert result["metric"] == "cost"
    assert 0.78 < result["ratio"] < 0.82
    assert result["pairs"] >= 20


def test_the_same_metric_is_never_faster_or_slower(tmp_path):
    result = compare_commands("sh bench.sh", version(tmp_path, "a"), version(tmp_path, "b", stride=5), max_seconds=4)
    assert result["verdict"] == "same", result


def test_wall_time_is_the_metric_without_a_metric_line(tmp_path):
    result = compare_commands("true", version(tmp_path, "a", script=""), version(tmp_path, "b", script=""), max_seconds=2)
    assert result["metric"] == "wall_s"
    assert result["baseline_s"] > 0


def test_a_failing_candidate_crashes_with_its_output(tmp_path):
    failing = version(tmp_path, "cand", script="echo candidate broke >&2; exit 1")
    result = compare_commands("sh bench.sh", version(tmp_path, "base"), failing, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "candidate broke" in result["error"]


def test_a_candidate_without_the_metric_line_crashes(tmp_path):
    silent = version(tmp_path, "cand", script="")
    result = compare_commands("sh bench.sh", version(tmp_path, "base"), silent, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "different metrics" in result["error"]


def test_a_hanging_candidate_times_out(tmp_path):
    hanging = version(tmp_path, "cand", script="sleep 30")
    result = compare_commands("sh bench.sh", version(tmp_path, "base"), hanging, max_seconds=4, timeout_s=1)
    assert result["verdict"] == "crash"
    assert "timed out" in result["error"]


def test_a_failing_baseline_is_a_user_error(tmp_path):
    failing = version(tmp_path, "base", script="exit 3")
    with pytest.raises(UserError, match="baseline"):
        compare_commands("sh bench.sh", failing, version(tmp_path, "cand"), max_seconds=4)
