"""compare_versions against tiny stand-in engines that burn a known amount of CPU per event."""

import itertools
import math
import random
import textwrap
from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.measure import compare_versions
from simopt.measure.paired import slice_boundaries
from simopt.measure.sequential import run_sequential
from simopt.measure.stats import MIN_LANES

STAND_IN = '''
import hashlib

WORK = {work}


class Simulation:
    """One event every step_ns; each event burns WORK loop iterations."""

    def __init__(self, instance, trace=False):
        self.horizon = instance["horizon_ns"]
        self.step = instance["step_ns"]
        self.now = 0
        self.events = 0
        self.state = 0

    def run(self, until):
        {before_run}
        end = min(until, self.horizon)
        while self.events * self.step < end:
            burn = 0
            for i in range(WORK):
                burn = (burn * 31 + i) % 1000003
            self.state = (self.state * 7 + self.events) % 1000003
            self.events += 1
        self.now = max(self.now, end)

    def result(self):
        self.run(self.horizon)
        digest = hashlib.sha256(f"{{self.events}}:{{self.state}}{salt}".encode()).hexdigest()
        return {{"version": 1, "digest": digest, "events": self.events}}
'''

INSTANCE = {"horizon_ns": 1_000_000, "step_ns": 250}  # 4,000 events


def stand_in(tmp_path: Path, name: str, *, work: int = 300, before_run: str = "pass", salt: str = "") -> Path:
    """Write a version root holding a stand-in engine at simopt/netsim."""
    package = tmp_path / name / "simopt" / "netsim"
    package.mkdir(parents=True)
    source = STAND_IN.format(work=work, before_run=before_run, salt=salt)
    (package / "__init__.py").write_text(textwrap.dedent(source))
    return tmp_path / name


def test_a_version_against_itself_is_never_faster_or_slower(tmp_path):
    root = stand_in(tmp_path, "base")
    result = compare_versions(root, root, INSTANCE, max_seconds=4)
    assert result["verdict"] in ("same", "inconclusive")
    assert result["digest_baseline"] == result["digest_candidate"]
    assert result["pairs"] > 0 and result["baseline_s"] > 0
    assert result["ci"][0] <= result["ratio"] <= result["ci"][1]
    assert result["lanes"] >= MIN_LANES and len(result["lane_ratios"]) == result["lanes"]


def test_a_much_slower_candidate_is_slower(tmp_path):
    result = compare_versions(stand_in(tmp_path, "base"), stand_in(tmp_path, "slow", work=450), INSTANCE, max_seconds=4)
    assert result["verdict"] == "slower"
    assert 1.2 < result["ratio"] < 1.9
    assert result["candidate_s"] > result["baseline_s"]


def test_a_much_faster_candidate_is_faster(tmp_path):
    result = compare_versions(stand_in(tmp_path, "base"), stand_in(tmp_path, "fast", work=200), INSTANCE, max_seconds=4)
    assert result["verdict"] == "faster"
    assert result["ci"][1] < 0.99


def test_a_crashing_candidate_gets_a_crash_verdict_with_its_traceback(tmp_path):
    crashing = stand_in(tmp_path, "crash", before_run="raise RuntimeError('boom in run')")
    result = compare_versions(stand_in(tmp_path, "base"), crashing, INSTANCE, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "boom in run" in result["error"]


def test_a_candidate_that_cannot_be_imported_crashes(tmp_path):
    broken = stand_in(tmp_path, "broken")
    (broken / "simopt" / "netsim" / "__init__.py").write_text("import no_such_module_anywhere\n")
    result = compare_versions(stand_in(tmp_path, "base"), broken, INSTANCE, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "no_such_module_anywhere" in result["error"]


def test_a_different_digest_is_different_output(tmp_path):
    other = stand_in(tmp_path, "other", salt="x")
    result = compare_versions(stand_in(tmp_path, "base"), other, INSTANCE, max_seconds=4)
    assert result["verdict"] == "different-output"
    assert result["digest_baseline"] != result["digest_candidate"]


def test_a_crashing_baseline_is_a_user_error(tmp_path):
    crashing = stand_in(tmp_path, "crash", before_run="raise RuntimeError('baseline boom')")
    with pytest.raises(UserError, match="baseline crashed.*baseline boom"):
        compare_versions(crashing, stand_in(tmp_path, "base"), INSTANCE, max_seconds=4)


def test_an_engine_printing_to_stdout_does_not_break_the_protocol(tmp_path):
    chatty = stand_in(tmp_path, "chatty", before_run="print('hello from the engine')")
    result = compare_versions(stand_in(tmp_path, "base"), chatty, INSTANCE, max_seconds=3)
    assert result["verdict"] not in ("crash", "different-output")


def test_slices_are_cut_at_every_target_of_profiled_work():
    marks = [[100, 0.004], [200, 0.012], [300, 0.016], [400, 0.040], [500, 0.041]]
    assert slice_boundaries(marks, 500, target_s=0.010) == [200, 400, 500]
    assert slice_boundaries([], 0) == []


def test_sequential_stops_at_the_first_look_with_a_verdict():
    clock = itertools.count(0.0, 0.01).__next__  # every call advances 10 ms
    pairs = itertools.cycle([(1.0, 0.80), (1.0, 0.82), (1.0, 0.78)])
    decision, ratios = run_sequential(lambda: next(pairs), max_seconds=100, min_effect=0.01, clock=clock)
    assert decision.verdict == "faster"
    assert len(ratios) < 2000  # decided at the first look (100 s / 32), long before the budget


def test_sequential_ends_inconclusive_at_the_budget():
    clock = itertools.count(0.0, 0.01).__next__
    rng = random.Random(1)  # a 1% effect under 20% noise: 500 pairs cannot settle it
    decision, ratios = run_sequential(
        lambda: (1.0, math.exp(rng.gauss(-0.01, 0.2))), max_seconds=5, min_effect=0.01, clock=clock
    )
    assert decision.verdict == "inconclusive"
    assert 400 <= len(ratios) <= 502


def test_sequential_holds_a_verdict_the_confirmation_rejects():
    clock = itertools.count(0.0, 0.01).__next__
    pairs = itertools.cycle([(1.0, 0.80), (1.0, 0.82), (1.0, 0.78)])
    decision, _ = run_sequential(lambda: next(pairs), max_seconds=5, min_effect=0.01, clock=clock,
                                 confirm=lambda verdict: False)
    assert decision.verdict == "inconclusive"


def test_the_optimize_loop_setting_looks_four_times_and_stops_a_slower_candidate_early(tmp_path):
    from simopt.measure.paired import FUTILITY_LOOKS

    result = compare_versions(stand_in(tmp_path, "base"), stand_in(tmp_path, "slow", work=360), INSTANCE,
                              max_seconds=8, stop_when_not_faster=True)
    assert result["looks"] == [list(look) for look in FUTILITY_LOOKS]
    assert result["verdict"] in ("not-faster", "slower")
    assert result["seconds"] < 8 * 0.75 + 1  # stopped at a look before the last one
    assert len(result["lane_ends"]) == result["lanes"] == len(result["lane_errors"])
