"""The patches, command and demo proposers and the agent registry, on throwaway git repos."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simopt.agents.base import Brief, NoProposal, ProposerExhausted
from simopt.agents.command import CommandFailed, CommandProposer, read_description
from simopt.agents.patches import PatchDoesNotApply, PatchQueueProposer, parse_header
from simopt.agents.registry import make_proposer
from simopt.errors import UserError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "slow.py").write_text("def work(n):\n    return sum(range(n))\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return root


def brief(n: int) -> Brief:
    return Brief(
        goal="make it faster", experiment=n, scenario="s", editable=("src/**",), protected=(),
        best_commit="0" * 40, best_speedup=1.0,
    )


def make_diff(repo: Path, new_text: str, header: str = "") -> str:
    """A patch that rewrites src/slow.py to `new_text`, made with git and then undone."""
    target = repo / "src" / "slow.py"
    old = target.read_text()
    target.write_text(new_text)
    diff = git(repo, "diff")
    target.write_text(old)
    return header + diff


def test_parse_header_reads_description_and_hypothesis_before_the_diff():
    text = "Description: cache routes\nHypothesis: lookups dominate\nExpect: keep\n\ndiff --git a/x b/x\n+Description: no\n"
    assert parse_header(text).description == "cache routes"
    assert parse_header(text).hypothesis == "lookups dominate"
    assert parse_header(text).expect == "keep"
    assert parse_header("diff --git a/x b/x\nDescription: inside\n").description is None


def test_patches_apply_in_name_order_one_per_experiment(repo, tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "02-second.patch").write_text(make_diff(repo, "def work(n):\n    return n * (n - 1) // 2\n"))
    (queue / "01-first.diff").write_text(
        make_diff(repo, "def work(n):\n    return sum(range(n))  # first\n", "Description: first\nHypothesis: h\n")
    )
    (queue / "notes.txt").write_text("not a patch")
    proposer = PatchQueueProposer(queue)
    first = proposer.propose(brief(1), repo)
    assert (first.description, first.hypothesis) == ("first", "h")
    assert "# first" in (repo / "src" / "slow.py").read_text()
    git(repo, "checkout", "-q", "--", ".")
    second = proposer.propose(brief(2), repo)
    assert (second.description, second.hypothesis) == ("02-second.patch", None)
    assert "n * (n - 1)" in (repo / "src" / "slow.py").read_text()
    with pytest.raises(ProposerExhausted):
        proposer.propose(brief(3), repo)


def test_resumed_session_continues_the_queue_at_its_experiment_number(repo, tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    for index, marker in enumerate(["a", "b", "c"]):
        (queue / f"{index}.diff").write_text(
            make_diff(repo, f"def work(n):\n    return sum(range(n))  # {marker}\n", f"Description: {marker}\n")
        )
    assert PatchQueueProposer(queue).propose(brief(3), repo).description == "c"
    git(repo, "checkout", "-q", "--", ".")
    # experiment 2 could not be measured (a busy machine): experiment 3 proposes patch 2 again
    again = dataclasses.replace(brief(3), unmeasured=1)
    assert PatchQueueProposer(queue).propose(again, repo).description == "b"


def test_a_patch_that_does_not_apply_raises_with_gits_message(repo, tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "stale.diff").write_text(make_diff(repo, "def work(n):\n    return 0\n"))
    (repo / "src" / "slow.py").write_text("def work(n):\n    return -1\n")
    with pytest.raises(PatchDoesNotApply, match="(?s)stale.diff does not apply: .*patch does not apply"):
        PatchQueueProposer(queue).propose(brief(1), repo)
    assert (repo / "src" / "slow.py").read_text() == "def work(n):\n    return -1\n"


def test_patch_directory_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        PatchQueueProposer(tmp_path / "missing")
    with pytest.raises(UserError, match="no \\*.diff"):
        PatchQueueProposer(tmp_path)


def test_read_description_splits_off_the_hypothesis(tmp_path):
    path = tmp_path / "d.txt"
    assert read_description(path) == ("(no description)", None)
    path.write_text("Unroll the loop\nHypothesis: fewer bytecodes\n")
    assert read_description(path) == ("Unroll the loop", "fewer bytecodes")
    path.write_text("\n")
    assert read_description(path) == ("(no description)", None)


def test_command_edits_worktree_and_reads_brief_and_description(repo):
    script = (
        'grep -q "experiment 4" "$SIMOPT_BRIEF" && '
        'echo "    # edited" >> src/slow.py && '
        'printf "Append a comment\\nHypothesis: none\\n" > "$SIMOPT_DESCRIPTION"'
    )
    proposal = CommandProposer(script).propose(brief(4), repo)
    assert (proposal.description, proposal.hypothesis) == ("Append a comment", "none")
    assert "# edited" in (repo / "src" / "slow.py").read_text()


def test_command_without_description_file_gets_a_placeholder(repo):
    proposal = CommandProposer("touch src/new.py").propose(brief(1), repo)
    assert proposal.description == "(no description)"


def test_command_that_changes_nothing_is_no_proposal(repo):
    with pytest.raises(NoProposal):
        CommandProposer("echo thinking; echo idea > \"$SIMOPT_DESCRIPTION\"").propose(brief(1), repo)


def test_command_nonzero_exit_is_a_crash_with_its_stderr_tail(repo):
    script = "for i in $(seq 1 50); do echo line$i >&2; done; echo noise; exit 3"
    with pytest.raises(CommandFailed) as raised:
        CommandProposer(script).propose(brief(1), repo)
    message = str(raised.value)
    assert "exited 3" in message and "line50" in message and "line1\n" not in message
    assert "noise" not in message


def test_command_timeout_kills_the_whole_process_group(repo, tmp_path):
    pid_file = tmp_path / "child.pid"
    # The shell starts a background grandchild that would outlive a kill of the shell alone.
    script = f"{sys.executable} -c 'import time; time.sleep(60)' & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        CommandProposer(script, timeout_s=1.0).propose(brief(1), repo)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_command_leftovers_die_with_the_command(repo, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"{sys.executable} -c 'import time; time.sleep(60)' & echo $! > {pid_file}; touch src/new.py"
    CommandProposer(script).propose(brief(1), repo)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child of an exited shell may linger as a zombie until reaped by init
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_registry_builds_each_kind_and_rejects_bad_specs(repo, tmp_path):
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "a.diff").write_text(make_diff(repo, "x = 1\n"))
    assert make_proposer(f"patches:{tmp_path / 'q'}", repo=repo).name == f"patches:{tmp_path / 'q'}"
    assert make_proposer("command:true", repo=repo).name == "command:true"
    assert make_proposer("command:true", repo=repo, timeout_s=5).timeout_s == 5
    for bad in ("nope", "patches:", "command:", "demo:x", "openai:x", ""):
        with pytest.raises(UserError, match="agent"):
            make_proposer(bad, repo=repo)


def test_demo_needs_a_repo_with_netsim(repo):
    with pytest.raises(UserError, match="has no simopt/netsim"):
        make_proposer("demo", repo=repo)
