"""Session-level rules with a scripted proposer and scripted checks: stops, checkpoints, defaults."""

import io
import json

import pytest
from rich.console import Console
from test_loop import MarkerEvaluator
from test_workspace import git, make_repo

from simopt.agents.base import Proposal, ProposerExhausted, ProposerUnavailable
from simopt.history import read_history
from simopt.progress import PlainReporter
from simopt.session import Options, run_session


class QueueProposer:
    """Experiment n writes the n-th marker into src/fast.py; the queue's end exhausts it."""

    name = "queue"

    def __init__(self, markers, *, then=ProposerExhausted):
        self.markers = markers
        self.then = then

    def propose(self, brief, worktree):
        if brief.experiment > len(self.markers):
            raise self.then("queue done")
        marker = self.markers[brief.experiment - 1]
        (worktree / "src" / "fast.py").write_text(f"def f():\n    return {brief.experiment}  # {marker}\n")
        return Proposal(description=f"try {marker}")


def session(repo, markers, *, tag="s", then=ProposerExhausted, environ=None, evaluator=None, **options):
    out = io.StringIO()
    reporter = PlainReporter(Console(file=out, markup=False, highlight=False, width=200))
    options.setdefault("agent", "scripted")
    code = run_session(Options(repo=repo, tag=tag, **options), reporter, proposer=QueueProposer(markers, then=then),
                       evaluator=evaluator or MarkerEvaluator(), environ=environ or {})
    return code, out.getvalue(), read_history(repo / "results" / tag / "history.jsonl")


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def test_checkpoint_every_ten_experiments(repo):
    evaluator = MarkerEvaluator()
    code, out, history = session(repo, ["SAME", "FAST"] + ["SLOW"] * 9, evaluator=evaluator)
    assert code == 0 and "stopped: the proposer has nothing more to propose" in out
    assert [e["n"] for e in history.experiments] == list(range(1, 12))
    (checkpoint,) = history.checkpoints
    assert checkpoint["after"] == 10 and checkpoint["best_commit"] == history.experiments[1]["commit"]
    assert checkpoint["cumulative_speedup"] == pytest.approx(1.25)
    assert "checkpoint after 10: cumulative speedup 1.250x" in out
    assert "best speedup: 1.250x" in out
    assert "next: simopt report s   (kept changes: branch simopt/s; continue: simopt optimize --tag s --resume)" in out
    lines = (repo / "results" / "s" / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[11])["type"] == "checkpoint"  # right after experiment 10
    # experiments may stop their bench early (only `faster` is kept); the checkpoint measures fully
    assert evaluator.early_stops == [True] * 10 + [False] + [True]


def test_budget_and_resume_continue_the_numbering(repo):
    code, _, history = session(repo, ["SAME", "FAST", "SLOW", "FAST"], budget=2)
    assert code == 0 and [e["n"] for e in history.experiments] == [1, 2]
    code, out, history = session(repo, ["SAME", "FAST", "SLOW", "FAST"], resume=True, budget=4, agent=None)
    assert [e["status"] for e in history.experiments] == ["discard", "keep", "discard", "keep"]
    assert len(history.resumes) == 1 and history.session["agent"] == "scripted"
    assert git(repo, "rev-parse", "simopt/s").strip() == history.experiments[3]["commit"]
    assert history.experiments[3]["parent"] == history.experiments[1]["commit"]


def test_ten_consecutive_crashes_stop_the_session(repo):
    code, out, history = session(repo, ["CRASH"] * 12)
    assert code == 1 and "stopped: 10 consecutive crashes" in out
    assert len(history.experiments) == 10


def test_an_unavailable_proposer_stops_with_exit_3(repo):
    code, out, history = session(repo, ["SAME"], then=ProposerUnavailable)
    assert code == 3 and "the proposer is unavailable: queue done" in out
    assert [e["status"] for e in history.experiments] == ["discard"]


def test_demo_is_the_default_offline_and_says_so_first(repo):
    _, out, history = session(repo, [], agent=None)
    assert out.splitlines()[0] == "no --agent and no OPENAI_API_KEY/OPENAI_BASE_URL set: using the offline demo proposer"
    assert history.session["agent"] == "demo"
    _, out, history = session(repo, [], tag="o", agent=None, environ={"OPENAI_BASE_URL": "http://localhost:1/v1"})
    assert "offline demo" not in out and history.session["agent"] == "openai"


def test_session_line_records_the_configuration(repo):
    _, _, history = session(repo, [], max_seconds=7, min_effect=0.05, guard_profile="quick")
    line = history.session
    assert line["type"] == "session" and line["tag"] == "s" and line["branch"] == "simopt/s"
    assert line["base_commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert line["config"]["editable"] == ["src/**"] and line["config"]["max_seconds"] == 7
    assert line["config"]["min_effect"] == 0.05 and line["config"]["guard_profile"] == "quick"
    assert line["metric"] == "cpu_s" and line["direction"] == "lower" and line["sandbox"] == "bwrap"


def test_max_hours_stops_before_the_next_experiment(repo):
    code, out, history = session(repo, ["SAME"] * 5, max_hours=1e-9)
    assert code == 0 and "stopped: time limit of 1e-09 h reached" in out
    assert history.experiments == []


def test_a_patch_queue_is_recorded_by_absolute_path(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, _, history = session(repo, [], agent="patches:queue")
    assert history.session["agent"] == f"patches:{tmp_path / 'queue'}"


def test_an_existing_session_needs_resume(repo):
    from simopt.errors import UserError

    session(repo, [])
    with pytest.raises(UserError, match="session 's' already exists: pass --resume"):
        session(repo, [])


def test_live_panel_shows_progress_counts_and_the_last_verdict():
    from simopt.progress import LiveReporter, make_reporter

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, markup=False, highlight=False)
    reporter = make_reporter(console, quiet=False)
    assert isinstance(reporter, LiveReporter)
    reporter.started({"tag": "t", "agent": "demo", "scenario": "fattree", "budget": 5, "branch": "simopt/t",
                      "results": "results/t", "previous": [{"n": 1, "status": "keep"}], "best_speedup": 1.25})
    reporter.stage(2, "guards")
    record = {"n": 2, "status": "guard_fail", "description": "[bold]not markup[/bold]", "metric": None,
              "asi": {"rollback_reason": "1 guard(s) failed, first test_ring"}}
    reporter.experiment(record, 1.25)
    reporter.stage(3, "bench: 40 pairs")
    reporter.live.refresh()
    reporter.close()
    text = out.getvalue()
    assert "3 of 5   stage: bench: 40 pairs" in text
    assert "1.250x" in text and "keep 1  guard_fail 1" in text
    assert "#2 guard_fail: 1 guard(s) failed, first test_ring" in text
    assert "[bold]not markup[/bold]" in text  # user text printed as is, never as rich markup
    assert isinstance(make_reporter(console, quiet=True), PlainReporter)
