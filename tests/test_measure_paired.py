"""compare_versions against stand-in engines: netsim copies that burn a known amount of CPU per event."""

import itertools
import math
import random
import shutil
import textwrap
from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.measure import compare_versions
from simopt.measure.paired import slice_boundaries
from simopt.measure.sequential import run_sequential
from simopt.measure.stats import MIN_LANES
from simopt.scenario import build_instance, load_scenario

NETSIM = Path(__file__).resolve().parents[1] / "simopt" / "netsim"
STAND_IN = '''
import time

from .outcome import digest
from .simulation import Simulation as _Netsim

WORK = {work}
STRETCH = {stretch}


def _stretch(started):
    until_cpu = started + (time.thread_time() - started) * STRETCH
    while time.thread_time() < until_cpu:
        pass


class Simulation(_Netsim):
    """netsim, burning WORK loop iterations per event it processes; building and running use
    STRETCH times their CPU time (so a ratio does not depend on the instance drawn)."""

    def __init__(self, *args, **kwargs):
        started = time.thread_time()
        super().__init__(*args, **kwargs)
        _stretch(started)

    def run(self, until):
        {before_run}
        started = time.thread_time()
        before = self.events
        super().run(until)
        burn = 0
        for i in range(WORK * (self.events - before)):
            burn = (burn * 31 + i) % 1000003
        _stretch(started)

    def result(self):
        result = super().result()
        {after_result}
        return result


def simulate(instance, *, trace=False):
    return Simulation(instance, trace=trace).result()
'''
TINY = """
seed = 3
horizon_us = 100
[topology]
kind = "mesh"
rows = 3
cols = 3
[links]
bandwidth_bps = 10_000_000_000
delay_ns = 200
buffer_bytes = 60_000
[traffic]
pattern = "random_pairs"
count = 8
bytes = 15_000
start_us = {dist = "uniform", min = 0, max = 20}
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """A tiny scenario: each lane draws its own instance of it."""
    path = tmp_path_factory.mktemp("scenario") / "tiny.toml"
    path.write_text(TINY)
    return lambda seed: build_instance(load_scenario(str(path), seed=seed))


def stand_in(tmp_path: Path, name: str, *, work: int = 150, stretch: float = 1.0, before_run: str = "pass",
             after_result: str = "pass") -> Path:
    """A version root holding netsim with a stand-in __init__ at simopt/netsim."""
    package = tmp_path / name / "simopt" / "netsim"
    shutil.copytree(NETSIM, package, ignore=shutil.ignore_patterns("__pycache__"))
    source = STAND_IN.format(work=work, stretch=stretch, before_run=before_run, after_result=after_result)
    (package / "__init__.py").write_text(textwrap.dedent(source))
    return tmp_path / name


def test_a_version_against_itself_is_never_faster_or_slower(tmp_path, workload):
    root = stand_in(tmp_path, "base")
    result = compare_versions(root, root, workload, max_seconds=12)
    assert result["verdict"] in ("same", "inconclusive")
    assert result["digest_baseline"] == result["digest_candidate"]
    assert result["pairs"] > 0 and result["baseline_s"] > 0
    assert result["ci"][0] <= result["ratio"] <= result["ci"][1]
    assert result["lanes"] >= MIN_LANES and len(result["lane_ratios"]) == result["lanes"]
    assert len(set(result["lane_seeds"])) == len(result["lane_seeds"]) > result["lanes"]  # a fresh instance per lane
    assert result["clock"] in ("cgroup", "schedstat") and result["layout"] == "fixed"


# Three times the CPU of every build and run() call, whatever the instance: each lane draws its own instance
# and a run's fixed cost (fork, import, build) is not stretched, so a burn per event made the
# lanes' ratios swing with the instance's event count (1.13 on CI for 400 against 150; with 1500,
# lanes from 1.15 to 2.7 and an `inconclusive` there).
MUCH_SLOWER = 3.0


def test_a_much_slower_candidate_is_slower(tmp_path, workload):
    result = compare_versions(stand_in(tmp_path, "base"), stand_in(tmp_path, "slow", stretch=MUCH_SLOWER), workload,
                              max_seconds=12)
    assert result["verdict"] == "slower", result
    assert 1.3 < result["ratio"] < MUCH_SLOWER * 1.2
    assert result["candidate_s"] > result["baseline_s"]


def test_a_much_faster_candidate_is_faster(tmp_path, workload):
    result = compare_versions(stand_in(tmp_path, "base", stretch=MUCH_SLOWER), stand_in(tmp_path, "fast"), workload,
                              max_seconds=12)
    assert result["verdict"] == "faster", result
    assert result["ci"][1] < 0.99


def test_a_crashing_candidate_gets_a_crash_verdict_with_its_traceback(tmp_path, workload):
    crashing = stand_in(tmp_path, "crash", before_run="raise RuntimeError('boom in run')")
    result = compare_versions(stand_in(tmp_path, "base"), crashing, workload, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "boom in run" in result["error"]


def test_a_candidate_that_cannot_be_imported_crashes(tmp_path, workload):
    broken = stand_in(tmp_path, "broken")
    (broken / "simopt" / "netsim" / "__init__.py").write_text("import no_such_module_anywhere\n")
    result = compare_versions(stand_in(tmp_path, "base"), broken, workload, max_seconds=4)
    assert result["verdict"] == "crash"
    assert "no_such_module_anywhere" in result["error"]


def test_a_different_outcome_is_different_output(tmp_path, workload):
    changed = "result['flows'][0]['hop_sum'] += 1; result['digest'] = digest(result['flows'])"
    other = stand_in(tmp_path, "other", after_result=changed)
    result = compare_versions(stand_in(tmp_path, "base"), other, workload, max_seconds=4)
    assert result["verdict"] == "different-output"
    assert result["digest_baseline"] != result["digest_candidate"]


def test_a_digest_that_is_not_the_outcomes_digest_is_tamper(tmp_path, workload):
    forged = stand_in(tmp_path, "forged", after_result="result['digest'] = '0' * 64")
    result = compare_versions(stand_in(tmp_path, "base"), forged, workload, max_seconds=4)
    assert result["verdict"] == "tamper" and "forged digest" in result["error"]


def test_a_different_event_count_is_different_output(tmp_path, workload):
    other = stand_in(tmp_path, "other", after_result="result['events'] += 1")
    result = compare_versions(stand_in(tmp_path, "base"), other, workload, max_seconds=4)
    assert result["verdict"] == "different-output"
    assert result["events_candidate"] == result["events_baseline"] + 1


def test_a_crashing_baseline_is_a_user_error(tmp_path, workload):
    crashing = stand_in(tmp_path, "crash", before_run="raise RuntimeError('baseline boom')")
    with pytest.raises(UserError, match="baseline failed.*baseline boom"):
        compare_versions(crashing, stand_in(tmp_path, "base"), workload, max_seconds=4)


def test_an_engine_printing_to_stdout_does_not_break_the_protocol(tmp_path, workload):
    chatty = stand_in(tmp_path, "chatty", before_run="print('hello from the engine')")
    result = compare_versions(stand_in(tmp_path, "base"), chatty, workload, max_seconds=4)
    assert result["verdict"] not in ("crash", "different-output", "tamper")


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


def test_the_optimize_loop_setting_looks_four_times_and_stops_a_slower_candidate_early(tmp_path, workload):
    from simopt.measure.paired import FUTILITY_LOOKS

    result = compare_versions(stand_in(tmp_path, "base"), stand_in(tmp_path, "slow", work=400), workload,
                              max_seconds=16, stop_when_not_faster=True)
    assert result["looks"] == [list(look) for look in FUTILITY_LOOKS]
    assert result["verdict"] in ("not-faster", "slower")
    assert result["seconds"] < 16 * 0.75 + 1  # stopped at a look before the last one
    assert len(result["lane_ends"]) == result["lanes"] == len(result["lane_errors"])
