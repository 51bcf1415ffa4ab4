"""compare_commands on tiny shell benchmarks in two version roots."""

import math

import pytest

from simopt.errors import UserError
from simopt.measure import compare_commands
from simopt.measure.command import PLAN_MIN_LANES, parse_metrics, plan_budget, probe_command

# Each run's metric wobbles by up to +-1% (urandom: every run works on a throwaway copy of its
# root, so no counter file could carry state from run to run).
BENCH = """
noise=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
echo "METRIC cost=$(({cost} + noise % 21 - 10))"
"""


def version(tmp_path, name, *, cost=1000, script=None):
    root = tmp_path / name
    root.mkdir()
    (root / "bench.sh").write_text(script if script is not None else BENCH.format(cost=cost))
    return root


# One METRIC line per iteration: {cost} plus a wobble of up to +-1% each.
ITERATIONS = """
i=0
while [ $i -lt {count} ]; do
  noise=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  echo "METRIC cost=$(({cost} + noise % 21 - 10))"
  i=$((i + 1))
done
"""


def test_parse_metrics_reads_every_metric_line():
    assert parse_metrics("METRIC cost=2.5\nnoise\nMETRIC cost=1.5\n") == ("cost", [2.5, 1.5])
    assert parse_metrics("no metric here") is None


@pytest.mark.parametrize("output, message", [
    ("METRIC cost=abc", "not a number"),
    ("METRIC: cost 1.5", "malformed metric line"),
    ("metric cost=1.5", "malformed metric line"),
    ("METRIC cost=1.5 s", "malformed metric line"),
    ("METRIC cost=0", "must be finite and > 0"),
    ("METRIC cost=nan", "must be finite and > 0"),
    ("METRIC cost=1\nMETRIC seconds=2", "two metrics"),
])
def test_anything_like_a_metric_but_not_one_is_an_error(output, message):
    with pytest.raises(ValueError, match=message):
        parse_metrics(output)


def test_a_lower_metric_is_faster(tmp_path):
    result = compare_commands(
        "sh bench.sh", version(tmp_path, "base"), version(tmp_path, "cand", cost=800), max_seconds=4
    )
    assert result["verdict"] == "faster"
    assert result["metric"] == "cost" and result["unit"] == "process"
    assert 0.78 < result["ratio"] < 0.82
    assert result["lanes"] >= 4 and result["pairs"] == result["lanes"]
    assert result["process_ratio"] > 0 and len(result["lane_ratios"]) == result["lanes"]


def test_the_same_metric_is_never_faster_or_slower(tmp_path):
    result = compare_commands("sh bench.sh", version(tmp_path, "a"), version(tmp_path, "b"), max_seconds=4)
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


def test_one_metric_line_per_iteration_is_timed_per_iteration(tmp_path):
    base = version(tmp_path, "base", script=ITERATIONS.format(count=10, cost=1000))
    cand = version(tmp_path, "cand", script=ITERATIONS.format(count=10, cost=900))
    result = compare_commands("sh bench.sh", base, cand, max_seconds=4)
    assert result["verdict"] == "faster" and result["unit"] == "iteration"
    assert result["pairs"] == 9 * result["lanes"]  # the first iteration of each run is a warm-up
    assert 0.89 < result["ratio"] < 0.91


def test_a_different_number_of_iterations_is_a_crash(tmp_path):
    base = version(tmp_path, "base", script=ITERATIONS.format(count=10, cost=1000))
    cand = version(tmp_path, "cand", script=ITERATIONS.format(count=9, cost=900))
    result = compare_commands("sh bench.sh", base, cand, max_seconds=4)
    assert result["verdict"] == "crash" and "printed 9 METRIC lines, the baseline 10" in result["error"]


def test_a_malformed_metric_line_is_a_crash_not_wall_time(tmp_path):
    cand = version(tmp_path, "cand", script="echo 'METRIC: cost 5'")
    result = compare_commands("sh bench.sh", version(tmp_path, "base"), cand, max_seconds=4)
    assert result["verdict"] == "crash" and "malformed metric line" in result["error"]
    with pytest.raises(UserError, match="malformed metric line"):
        compare_commands("sh bench.sh", cand, version(tmp_path, "other"), max_seconds=4)


def test_the_loop_stops_a_no_op_early_as_not_faster(tmp_path):
    result = compare_commands("sh bench.sh", version(tmp_path, "a"), version(tmp_path, "b"),
                              max_seconds=8, stop_when_not_faster=True)
    assert result["verdict"] == "not-faster"
    assert result["seconds"] < 6  # at the quarter or the half look, not the budget


def test_a_budget_plan_grows_with_the_noise_and_the_lane_time():
    quiet = plan_budget({"metric": "s", "values": [0.0, 0.0, 0.0], "units": 20, "run_seconds": 1.0,
                         "lane_seconds": 2.0}, 0.03)
    assert quiet.lanes_needed == PLAN_MIN_LANES and quiet.unit == "iteration"
    assert quiet.seconds == math.ceil((PLAN_MIN_LANES + 1) * 2.0 / 0.8 / 10) * 10
    noisy = plan_budget({"metric": "wall_s", "values": [0.03, -0.03, 0.03], "units": 1, "run_seconds": 1.0,
                         "lane_seconds": 2.0}, 0.03)
    assert noisy.lanes_needed > PLAN_MIN_LANES and noisy.seconds > quiet.seconds and noisy.unit == "process"
    hopeless = plan_budget({"metric": "wall_s", "values": [0.5, -0.5, 0.5], "units": 1, "run_seconds": 10.0,
                            "lane_seconds": 20.0}, 0.03)
    assert hopeless.lanes_needed is None and hopeless.seconds is None
    assert quiet.lanes_in(60) == int(60 * 0.8 / 2.0) - 1


def test_the_probe_times_a_b_lanes_of_the_base(tmp_path):
    root = version(tmp_path, "base", script=ITERATIONS.format(count=5, cost=1000))
    probe = probe_command("sh bench.sh", root, lanes=3)
    assert probe["metric"] == "cost" and probe["units"] == 5 and len(probe["values"]) == 3
    assert all(abs(value) < 0.02 for value in probe["values"])
    assert probe["lane_seconds"] > 0
    with pytest.raises(UserError, match="fails on the base"):
        probe_command("exit 1", root, lanes=1)


def test_interleaved_runs_execute_together_and_need_a_metric(tmp_path):
    base = version(tmp_path, "base", script=ITERATIONS.format(count=10, cost=1000))
    cand = version(tmp_path, "cand", script=ITERATIONS.format(count=10, cost=900))
    result = compare_commands("sh bench.sh", base, cand, max_seconds=4, interleave=True)
    assert result["verdict"] == "faster" and result["interleaved"] and 0.89 < result["ratio"] < 0.91
    silent = version(tmp_path, "silent", script="")
    result = compare_commands("sh bench.sh", base, silent, max_seconds=4, interleave=True)
    assert result["verdict"] == "crash" and 'bench_clock = "cpu" needs METRIC lines' in result["error"]
