"""Guard the guards: every known cheat applied to a copy of netsim makes the standard suite fail."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from guards.cheats import CHEATS, make_target
from guards.input_cheats import CHEAT_CLASS, INPUT_SPACE_CHEATS
from simopt.guard import fresh_seed, run_guards

REPO = Path(__file__).resolve().parents[1]
FIXED_SEED = 20261126
# The input-space guards run first for the input-space cheats: the same suite and the same draws,
# only the first failure comes sooner (most of these are caught there, by a big or rare example).
INPUT_SPACE_FIRST = ("test_input_space.py",)
# One guard process per cheat: every cheat here fails, and a failing run found its failure in
# 5-10 s, where pytest-xdist's start-up (two more interpreters, runners and oracles) cost 3 s more.
WORKERS = 1
ALL_CHEATS = sorted(CHEATS) + sorted(INPUT_SPACE_CHEATS)


@pytest.mark.slow
def test_unchanged_copy_passes(fixed_seed_reports):
    """The control: the copy every cheat is applied to passes at the cheats' seed."""
    report = fixed_seed_reports[None]
    assert report["failed"] == 0, report["failures"]
    assert report["passed"] > 20


@pytest.fixture(scope="module")
def fixed_seed_reports(tmp_path_factory) -> dict[str, dict]:
    """Every cheat's stop-at-first-failure run at FIXED_SEED, two at a time: each run is one guard
    process plus its sandbox and oracle, which alternate more than they overlap, so two runs side
    by side take about two thirds of the time of one after the other."""
    scratch = tmp_path_factory.mktemp("cheats")

    def run(cheat: str | None) -> dict:
        first = INPUT_SPACE_FIRST if cheat in INPUT_SPACE_CHEATS else ()
        return run_guards(make_target(REPO, scratch / str(cheat), cheat), seed=FIXED_SEED, profile="standard",
                          stop_at_first_failure=True, shrink=False, workers=WORKERS, first=first)

    runs = [None, *ALL_CHEATS]  # None: the unchanged copy
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(runs, pool.map(run, runs)))


@pytest.mark.slow
@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_cheat_is_caught(fixed_seed_reports, cheat):
    report = fixed_seed_reports[cheat]
    assert report["failed"] > 0, f"cheat {cheat} passed every guard (seed {FIXED_SEED})"
    assert report["failures"][0]["test"] != "(suite)", report["failures"][0]["message"]


FRESH_SEED = fresh_seed()
FRESH_SAMPLE = sorted(random.Random(FRESH_SEED).sample(sorted(CHEATS), 5))


@pytest.mark.slow
@pytest.mark.parametrize("cheat", FRESH_SAMPLE)
def test_cheat_is_caught_with_a_fresh_seed(tmp_path, cheat):
    """Five cheats a run, drawn with the seed: no fixed seed can be tuned to catch them by luck."""
    report = run_guards(make_target(REPO, tmp_path, cheat), seed=FRESH_SEED, profile="standard", stop_at_first_failure=True, shrink=False, workers=WORKERS)
    assert report["failed"] > 0, f"cheat {cheat} passed every guard with seed {FRESH_SEED}"


def test_a_cheat_whose_text_is_gone_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setitem(CHEATS, "stale", [("routing.py", "text that netsim never contained", "x")])
    with pytest.raises(AssertionError, match="no longer contains"):
        make_target(REPO, tmp_path, "stale")


# The input-space cheats (guards/input_cheats.py): each keeps the benchmark's digest, each is
# caught at a fixed seed (stop at the first failure), and a sample of them at a fresh seed.

@pytest.mark.slow
def test_every_input_space_cheat_keeps_the_benchmark_digest(tmp_path):
    """What makes them cheats rather than bugs: the optimize loop's digest step lets them through."""
    from guards.golden import load_goldens, scenario_instances
    from simopt.engine import load_engine

    _, benchmark = scenario_instances()["fattree"]
    golden = load_goldens()["scenarios"]["fattree"]
    for i, cheat in enumerate(sorted(INPUT_SPACE_CHEATS)):
        engine = load_engine(make_target(REPO, tmp_path / cheat, cheat), name=f"input_space_cheat_{i}")
        result = engine.simulate(benchmark)
        assert (result["digest"], result["events"]) == (golden["digest"], golden["events"]), f"cheat {cheat} changes the benchmark"


@pytest.mark.slow
@pytest.mark.parametrize("cheat", sorted(INPUT_SPACE_CHEATS))
def test_input_space_cheat_is_caught(fixed_seed_reports, cheat):
    report = fixed_seed_reports[cheat]
    assert report["failed"] > 0, f"cheat {cheat} ({CHEAT_CLASS[cheat]}) passed every guard (seed {FIXED_SEED})"
    assert report["failures"][0]["test"] != "(suite)", report["failures"][0]["message"]


FRESH_INPUT_SPACE_SAMPLE = sorted(random.Random(FRESH_SEED).sample(sorted(INPUT_SPACE_CHEATS), 5))


@pytest.mark.slow
@pytest.mark.parametrize("cheat", FRESH_INPUT_SPACE_SAMPLE)
def test_input_space_cheat_is_caught_with_a_fresh_seed(tmp_path, cheat):
    report = run_guards(make_target(REPO, tmp_path, cheat), seed=FRESH_SEED, profile="standard", stop_at_first_failure=True, workers=WORKERS,
                        shrink=False, first=INPUT_SPACE_FIRST)
    assert report["failed"] > 0, f"cheat {cheat} ({CHEAT_CLASS[cheat]}) passed every guard with seed {FRESH_SEED}"
