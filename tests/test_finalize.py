"""simopt finalize on a throwaway git repository: one squashed commit, the user's checkout untouched."""

import subprocess
from pathlib import Path

import pytest

from simopt.history import append_record
from cli_helpers import run_cli


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit_file(repo: Path, name: str, content: str, message: str) -> str:
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def experiment(n, status, *, parent, commit=None, ratio=None, ci=None, description=""):
    metric = {"verdict": "faster", "ratio": ratio, "ci": ci} if ratio else None
    return {
        "type": "experiment", "n": n, "parent": parent, "commit": commit, "status": status,
        "description": description, "metric": metric, "guards": None,
        "asi": {} if status == "keep" else {"rollback_reason": "r", "next_action_hint": "h"},
        "timestamp": f"2026-11-26T10:0{n}:00+00:00",
    }


@pytest.fixture
def session_repo(tmp_path):
    """A repo whose session simopt/t1 kept two of four changes; the user sits on a dirty main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    commit_file(repo, "engine.py", "def run():\n    return 1\n", "base")
    commit_file(repo, "links.py", "QUEUE = []\n", "base links")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "simopt/t1")
    first = commit_file(repo, "engine.py", "def run():\n    return 1  # cached\n", "simopt: keep #1")
    second = commit_file(repo, "links.py", "QUEUE = ()\n", "simopt: keep #3")
    git(repo, "checkout", "-q", "main")
    (repo / "engine.py").write_text("user edit in progress\n")
    (repo / "notes.txt").write_text("untracked\n")
    history = repo / "results" / "t1" / "history.jsonl"
    append_record(history, {
        "type": "session", "tag": "t1", "scenario": "fattree", "base_commit": base,
        "branch": "simopt/t1", "agent": "demo", "started": "2026-11-26T10:00:00+00:00",
    })
    append_record(history, experiment(1, "keep", parent=base, commit=first, ratio=0.8, ci=[0.78, 0.82], description="cache routes"))
    append_record(history, experiment(2, "discard", parent=first, ratio=1.0, ci=[0.99, 1.01], description="no-op"))
    append_record(history, experiment(3, "keep", parent=first, commit=second, ratio=0.9, ci=[0.88, 0.92], description="tuple queues"))
    append_record(history, experiment(4, "guard_fail", parent=second, description="fattree-only routing"))
    return repo, base, second


def checkout_state(repo: Path) -> tuple[str, str, str, str]:
    return (
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain"),
        (repo / "engine.py").read_text(),
    )


def test_finalize_squashes_the_kept_changes_into_one_commit(session_repo):
    repo, base, last_kept = session_repo
    before = checkout_state(repo)
    code, out, err = run_cli("finalize", "t1", "--repo", str(repo))
    assert code == 0, err
    assert out.startswith("created simopt/t1-final at ")
    head = git(repo, "rev-parse", "refs/heads/simopt/t1-final")
    assert git(repo, "rev-list", "--count", f"{base}..{head}") == "1"
    assert git(repo, "rev-parse", f"{head}^") == base
    assert git(repo, "rev-parse", f"{head}^{{tree}}") == git(repo, "rev-parse", f"{last_kept}^{{tree}}")
    message = git(repo, "log", "-1", "--format=%B", head)
    assert message.splitlines()[0] == "simopt t1: 2 kept changes, 1.389x faster on fattree"
    assert "1.389x (product of kept ratios)" in message
    assert "- #1 cache routes: 1.250x [1.220x, 1.282x]" in message
    assert "- #3 tuple queues: 1.111x [1.087x, 1.136x]" in message
    assert "no-op" not in message and "fattree-only" not in message
    assert message in out
    assert checkout_state(repo) == before  # HEAD, branch, index, working tree all as they were


def test_finalize_uses_the_checkpoint_interval_and_flags_later_keeps(session_repo):
    repo, base, last_kept = session_repo
    history = repo / "results" / "t1" / "history.jsonl"
    lines = history.read_text().splitlines()
    checkpoint = (
        '{"version": 1, "type": "checkpoint", "after": 2, "best_commit": "x", "metric": '
        '{"ratio": 0.8, "ci": [0.79, 0.81]}, "cumulative_speedup": 1.25}'
    )
    history.write_text("\n".join(lines[:3] + [checkpoint] + lines[3:]) + "\n")
    code, out, _ = run_cli("finalize", "t1", "--repo", str(repo))
    assert code == 0
    assert "1.250x [1.235x, 1.266x] (checkpoint after 2)" in out
    assert "Kept after that checkpoint: #3; with them the product of the kept speedups is 1.389x." in out


def test_finalize_refuses_an_existing_branch(session_repo):
    repo, _, _ = session_repo
    assert run_cli("finalize", "t1", "--repo", str(repo))[0] == 0
    first = git(repo, "rev-parse", "refs/heads/simopt/t1-final")
    code, out, err = run_cli("finalize", "t1", "--repo", str(repo))
    assert code == 2 and out == ""
    assert err == "simopt: error: branch simopt/t1-final already exists; delete it first to finalize again\n"
    assert git(repo, "rev-parse", "refs/heads/simopt/t1-final") == first


def test_finalize_refuses_a_session_without_kept_changes(session_repo):
    repo, base, _ = session_repo
    history = repo / "results" / "t2" / "history.jsonl"
    append_record(history, {"type": "session", "tag": "t2", "base_commit": base, "branch": "simopt/t2"})
    append_record(history, experiment(1, "crash", parent=base, description="boom"))
    code, _, err = run_cli("finalize", "t2", "--repo", str(repo))
    assert code == 2
    assert err == "simopt: error: session t2 has no kept change to finalize\n"
    assert git(repo, "branch", "--list", "simopt/t2-final") == ""


def test_finalize_defaults_to_the_current_git_toplevel(session_repo, monkeypatch):
    repo, _, _ = session_repo
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    code, _, err = run_cli("finalize", "t1")
    assert code == 0, err
    assert git(repo, "branch", "--list", "simopt/t1-final").strip() == "simopt/t1-final"


def test_finalize_unknown_tag_lists_the_sessions(session_repo):
    repo, _, _ = session_repo
    code, _, err = run_cli("finalize", "t9", "--repo", str(repo))
    assert code == 2
    assert err.rstrip().endswith("(available tags: t1)")


def test_finalize_needs_the_base_commit_in_the_repository(session_repo):
    repo, _, _ = session_repo
    history = repo / "results" / "t3" / "history.jsonl"
    append_record(history, {"type": "session", "tag": "t3", "base_commit": "f" * 40, "branch": "simopt/t3"})
    append_record(history, experiment(1, "keep", parent="f" * 40, commit="e" * 40, ratio=0.9, ci=[0.8, 0.95]))
    code, _, err = run_cli("finalize", "t3", "--repo", str(repo))
    assert code == 2
    assert err == f"simopt: error: base commit ffffffffffff of session t3 is not in {repo}\n"
