"""One experiment end to end on a throwaway repository, with a scripted proposer and checks."""

import dataclasses
import json
import time

import pytest
from test_workspace import git, make_repo

from simopt.agents.base import Brief, NoProposal, Proposal, ProposerExhausted, Usage
from simopt.evaluate import CheckFailed
from simopt.loop import Experiment, run_experiment
from simopt.target import load_target
from simopt.workspace import create_workspace, open_repo, parse_trailer

SECRET = "holdout detail the proposer must never see"


class ScriptedProposer:
    """Runs `action(worktree)` as its edit; the action may raise to act out a failure."""

    name = "scripted"

    def __init__(self, action, hypothesis="because"):
        self.action = action
        self.hypothesis = hypothesis

    def propose(self, brief, worktree):
        description = self.action(worktree)
        return Proposal(description=description or "an edit", hypothesis=self.hypothesis, usage=Usage(10, 5, 0.001))


def edit(code):
    def action(worktree):
        (worktree / "src" / "fast.py").write_text(f"def f():\n    return 1  # {code}\n")
        return f"edit {code}"

    return action


class MarkerEvaluator:
    """Behaves according to a marker word the proposal wrote into src/fast.py."""

    scenario_name = "tiny"

    def __init__(self, holdout=None):
        self.holdout = holdout
        self.early_stops = []  # stop_when_not_faster of every bench call, in order

    def _code(self, root):
        return (root / "src" / "fast.py").read_text()

    def calibrate(self, root):
        return self.digest(root)

    def smoke(self, root):
        code = self._code(root)
        if "CRASH" in code:
            raise CheckFailed("crash", "the smoke run on tiny crashed: ZeroDivisionError: division by zero",
                              {"scenario": "tiny", "traceback": ["Traceback ...", "ZeroDivisionError: division by zero"]})
        if "HANG" in code:
            raise CheckFailed("timeout", "the smoke run on tiny exceeded its time limit of 1 s", {"scenario": "tiny"})
        return None

    def digest(self, root):
        return "d1" if "DIFF" in self._code(root) else "d0"

    def guards(self, root, *, guards_dir, profile):
        code = self._code(root)
        if guards_dir is not None:
            assert guards_dir == self.holdout
            failed = int("HOLDOUT" in code)
            return {"passed": 3 - failed, "failed": failed, "seed": 7,
                    "failures": [{"test": "test_secret", "message": SECRET, "counterexample": {"k": 4}}] * failed}
        if "GUARD" in code:
            return {"passed": 30, "failed": 1, "seed": 42, "failures": [
                {"test": "test_ring_matches_oracle", "message": "AssertionError: digests differ\nmore",
                 "counterexample": {"nodes": 5}}]}
        return {"passed": 31, "failed": 0, "seed": 42, "failures": []}

    def bench(self, baseline, candidate, *, max_seconds, min_effect, progress, stop_when_not_faster=False):
        self.early_stops.append(stop_when_not_faster)
        code = self._code(candidate)
        if "INTERRUPT" in code:
            raise KeyboardInterrupt
        progress(0.5, 40)
        self.benches = getattr(self, "benches", 0) + 1
        if "BUSY" in code and (self.benches < 3 or "ALWAYS" in code):
            return {"verdict": "busy", "ratio": None, "ci": None, "pairs": 12, "lanes": 1, "confidence": None,
                    "baseline_s": 1.0, "candidate_s": 1.0, "cpu_share": 0.21, "seconds": 60.0}
        if "NOGAIN" in code:
            return {"verdict": "not-faster", "ratio": 1.002, "ci": [0.992, 1.012], "pairs": 300, "confidence": 0.4,
                    "baseline_s": 1.0, "candidate_s": 1.0}
        if "FAST" in code:
            return {"verdict": "faster", "ratio": 0.8, "ci": [0.78, 0.82], "pairs": 80, "confidence": 5.0,
                    "baseline_s": 1.0, "candidate_s": 0.8}
        if "SLOW" in code:
            return {"verdict": "slower", "ratio": 1.1, "ci": [1.08, 1.12], "pairs": 60, "confidence": 4.0,
                    "baseline_s": 1.0, "candidate_s": 1.1}
        return {"verdict": "same", "ratio": 1.001, "ci": [0.995, 1.006], "pairs": 400, "confidence": 0.2,
                "baseline_s": 1.0, "candidate_s": 1.0}


@pytest.fixture
def session(tmp_path):
    repo = make_repo(tmp_path / "repo")
    target = dataclasses.replace(load_target(repo), propose_timeout=0.5)
    workspace = create_workspace(open_repo(repo), "loop", target)
    holdout = tmp_path / "holdout"
    holdout.mkdir()

    def run(action, n=1, **options):
        setup = Experiment(target=target, workspace=workspace, evaluator=MarkerEvaluator(holdout),
                           proposer=ScriptedProposer(action), base_digest="d0", min_effect=0.01,
                           max_seconds=5, guard_profile="quick", **options)
        brief = Brief(goal="faster", experiment=n, scenario="tiny", editable=target.editable,
                      protected=target.protected, best_commit=workspace.best_commit, best_speedup=1.0)
        stages = []
        record = run_experiment(setup, n, brief, stages.append)
        assert workspace.changed_paths() == []  # every experiment leaves the worktree at the best
        json.dumps(record)  # a history line
        return record, stages

    run.repo, run.workspace, run.holdout = repo, workspace, holdout
    yield run
    workspace.close()


def test_keep_commits_and_records_the_measurement(session):
    record, stages = session(edit("FAST"))
    assert record["status"] == "keep"
    assert record["commit"] == session.workspace.best_commit != record["parent"]
    assert record["metric"]["ratio"] == 0.8 and record["metric"]["ci"] == [0.78, 0.82]
    assert record["guards"] == {"passed": 31, "failed": 0, "seed": 42, "failures": []}
    assert record["asi"] is None and record["patch"] is None
    assert record["changed_paths"] == ["src/fast.py"]
    assert record["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001}
    assert set(record["timings"]) == {"propose_s", "guard_s", "bench_s"}
    assert stages[:5] == ["propose", "scope", "smoke", "digest", "guards"] and stages[-1] == "keep"
    assert "bench: 40 pairs" in stages
    trailer = parse_trailer(git(session.repo, "log", "-1", "--format=%B", "simopt/loop"))
    assert trailer["n"] == 1 and trailer["ratio"] == 0.8 and trailer["guard_seed"] == 42


@pytest.mark.parametrize(
    "code, status, reason, hint",
    [
        ("SLOW", "discard", "verdict slower, ratio 1.100 (interval 1.080..1.120)", "10.0% slower"),
        ("SAME", "discard", "verdict same", "no measurable effect"),
        ("NOGAIN", "discard", "verdict not-faster, ratio 1.002 (interval 0.9920..1.012)", "stopped early"),
        ("CRASH", "crash", "ZeroDivisionError", "ZeroDivisionError: division by zero"),
        ("HANG", "timeout", "time limit", "never ends"),
        ("DIFF", "different_output", "digest on tiny differs", "altered the simulation's outcome"),
        ("GUARD", "guard_fail", "test_ring_matches_oracle: AssertionError: digests differ", "simopt guard --seed 42"),
    ],
)
def test_rolled_back_experiments_carry_their_evidence(session, code, status, reason, hint):
    record, _ = session(edit(code), n=3)
    assert record["status"] == status
    assert record["commit"] is None
    assert reason in record["asi"]["rollback_reason"]
    assert hint in record["asi"]["next_action_hint"]
    assert record["asi"]["hypothesis"] == "because"
    assert record["patch"] == "patches/0003.diff"
    assert f"# {code}" in (session.workspace.results / "patches" / "0003.diff").read_text()


def test_guard_failures_are_recorded_with_counterexamples(session):
    record, _ = session(edit("GUARD"))
    assert record["guards"]["failures"][0]["counterexample"] == {"nodes": 5}
    assert record["asi"]["seed"] == 42 and record["metric"] is None


def test_scope_violation_names_the_paths(session):
    def action(worktree):
        (worktree / "src" / "fast.py").write_text("# FAST\n")
        (worktree / "tests" / "test_f.py").write_text("def test_f():\n    assert True\n")
        (worktree / "simopt.toml").unlink()

    record, _ = session(action)
    assert record["status"] == "scope_violation"
    assert record["asi"]["out_of_scope"] == ["simopt.toml", "tests/test_f.py"]
    assert "simopt.toml, tests/test_f.py" in record["asi"]["rollback_reason"]
    assert "src/**" in record["asi"]["next_action_hint"]


def test_writes_outside_the_worktree_are_scope_violations(session):
    def action(worktree):
        (worktree / "src" / "fast.py").write_text("# FAST\n")
        (session.repo / "src" / "fast.py").write_text("# escaped into the user's checkout\n")

    record, _ = session(action)
    assert record["status"] == "scope_violation"
    assert record["asi"]["out_of_scope"] == ["<checkout>/src/fast.py"]
    git(session.repo, "checkout", "--", "src/fast.py")


def test_holdout_failures_tell_nothing_more(session):
    record, _ = session(edit("HOLDOUT"), holdout=session.holdout)
    assert record["status"] == "holdout_fail"
    assert record["asi"]["rollback_reason"] == "a holdout guard failed"
    text = json.dumps(record)
    assert SECRET not in text and "test_secret" not in text
    assert record["guards"]["failed"] == 0  # the visible guards' result only
    passed, _ = session(edit("FAST"), n=2, holdout=session.holdout)
    assert passed["status"] == "keep"


def test_proposer_outcomes(session):
    def nothing(worktree):
        return "no edit at all"

    def refuse(worktree):
        raise NoProposal("nothing left worth trying")

    def explode(worktree):
        (worktree / "src" / "fast.py").write_text("half an edit\n")
        raise RuntimeError("patch does not apply")

    def hang(worktree):
        time.sleep(2)

    assert session(nothing)[0]["status"] == "no_proposal"
    record = session(refuse)[0]
    assert record["status"] == "no_proposal" and "nothing left worth trying" in record["asi"]["rollback_reason"]
    record = session(explode, n=4)[0]
    assert record["status"] == "crash"
    assert "patch does not apply" in record["asi"]["rollback_reason"]
    assert "RuntimeError: patch does not apply" in record["asi"]["traceback"][-1]
    assert record["patch"] == "patches/0004.diff"  # the partial edit is kept for inspection
    record = session(hang)[0]
    assert record["status"] == "timeout" and "0.5 s" in record["asi"]["rollback_reason"]


def test_exhausted_proposer_propagates_with_the_worktree_reset(session):
    def done(worktree):
        (worktree / "src" / "fast.py").write_text("stray\n")
        raise ProposerExhausted("queue empty")

    with pytest.raises(ProposerExhausted):
        session(done)
    assert session.workspace.changed_paths() == []


def test_ctrl_c_records_an_interrupted_experiment(session):
    record, _ = session(edit("FAST INTERRUPT"), n=2)
    assert record["status"] == "interrupted"
    assert record["asi"]["next_action_hint"] == "resume the session with --resume"
    assert record["patch"] == "patches/0002.diff"


def test_scenario_evaluator_runs_each_version_in_a_subprocess(tmp_path):
    import shutil
    from pathlib import Path

    from simopt.evaluate import ScenarioEvaluator

    repo = Path(__file__).resolve().parents[1]
    target = dataclasses.replace(load_target(repo), smoke_timeout=20)
    evaluator = ScenarioEvaluator(target, "dumbbell")
    good = tmp_path / "good"
    shutil.copytree(repo / "simopt" / "netsim", good / "simopt" / "netsim")
    digest = evaluator.calibrate(good)
    assert len(digest) == 64 and evaluator.smoke(good) == digest  # smoke = benchmark: one run gives both

    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    init = broken / "simopt" / "netsim" / "__init__.py"
    init.write_text(init.read_text() + "\nraise ZeroDivisionError('planted')\n")
    with pytest.raises(CheckFailed) as crash:
        evaluator.smoke(broken)
    assert crash.value.status == "crash"
    assert crash.value.evidence["traceback"][-1] == "ZeroDivisionError: planted"

    init.write_text(init.read_text().replace("raise ZeroDivisionError('planted')", "while True: pass"))
    evaluator.target = dataclasses.replace(target, smoke_timeout=1)
    with pytest.raises(CheckFailed) as hang:
        evaluator.smoke(broken)
    assert hang.value.status == "timeout" and "1 s" in hang.value.reason


def test_an_entry_named_git_is_a_scope_violation_and_is_removed(session):
    def action(worktree):
        (worktree / "src" / "fast.py").write_text("# FAST\n")
        (worktree / "src" / ".git").mkdir()
        (worktree / "src" / ".git" / "answers.json").write_text("{}\n")  # memory across experiments

    record, _ = session(action)
    assert record["status"] == "scope_violation" and record["asi"]["out_of_scope"] == ["src/.git"]
    assert not (session.workspace.worktree / "src" / ".git").exists()


def test_what_git_ignores_is_dropped_before_the_checks(session):
    (session.repo / ".git" / "info" / "exclude").write_text("*.so\n/.simopt/\n")
    seen = []

    def action(worktree):
        (worktree / "src" / "fast.py").write_text("# FAST\n")
        (worktree / "src" / "fast.so").write_bytes(b"\x7fELF precomputed answers")

    class Watching(MarkerEvaluator):
        def smoke(self, root):
            seen.append((root / "src" / "fast.so").exists())
            return super().smoke(root)

    workspace = session.workspace
    target = dataclasses.replace(load_target(session.repo), propose_timeout=5)
    setup = Experiment(target=target, workspace=workspace, evaluator=Watching(), proposer=ScriptedProposer(action),
                       base_digest="d0", min_effect=0.01, max_seconds=5, guard_profile="quick")
    brief = Brief(goal="faster", experiment=1, scenario="tiny", editable=target.editable,
                  protected=target.protected, best_commit=workspace.best_commit, best_speedup=1.0)
    record = run_experiment(setup, 1, brief)
    assert seen == [False]
    assert record["status"] == "keep" and record["changed_paths"] == ["src/fast.py"]


@pytest.mark.parametrize("metric, words", [
    ({"verdict": "inconclusive", "ratio": 0.90, "ci": [0.80, 0.99], "lanes": 6}, "too wide for this budget"),
    ({"verdict": "inconclusive", "ratio": 0.99, "ci": [0.95, 1.03], "lanes": 20}, "short of the 3.0% minimum"),
    ({"verdict": "inconclusive", "ratio": 0.90, "ci": None, "lanes": 2}, "too few lanes (2)"),
    ({"verdict": "not-faster", "ratio": 1.0, "ci": [0.99, 1.01], "lanes": 5}, "stopped early"),
])
def test_the_discard_hint_tells_a_wide_interval_from_a_small_effect(metric, words):
    from simopt.loop import _discard_hint

    assert words in _discard_hint(metric, 0.03)


def test_a_busy_machine_is_retried_then_stops_without_a_verdict(session, monkeypatch):
    import simopt.loop

    monkeypatch.setattr(simopt.loop, "BUSY_WAIT_S", 0.01)
    record, stages = session(edit("BUSY FAST"))  # busy twice, then measured: the third try decides
    assert record["status"] == "keep"
    assert sum("the machine is busy (the runners got 21% of a CPU)" in stage for stage in stages) == 2

    record, _ = session(edit("BUSY ALWAYS"), n=2)
    assert record["status"] == "busy" and record["commit"] is None
    assert "too busy to measure, 3 times: 1 lane(s) in 60 s, the runners got 21% of a CPU" in record["asi"]["rollback_reason"]
    assert "nothing is known against this change" in record["asi"]["next_action_hint"]
    assert record["metric"]["verdict"] == "busy"
