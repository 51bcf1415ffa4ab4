"""`simopt optimize` and `simopt init` from the command line, on the tiny non-netsim fixture repo."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import run_cli as cli

FIXTURE = Path(__file__).parent / "fixtures" / "tinyrepo"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tinyrepo(tmp_path) -> Path:
    """A fresh git repository holding the fixture: a slow function, a guard, a bench, a simopt.toml."""
    repo = tmp_path / "tiny"
    shutil.copytree(FIXTURE / "repo", repo)
    config = repo / "simopt.toml"  # this interpreter, not whatever `python3` is on PATH
    config.write_text(config.read_text().replace("python3 ", f"{sys.executable} "))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tiny target")
    return repo


def user_state(repo: Path) -> tuple[str, list[str]]:
    """HEAD and `git status`, leaving out results/ (the one place a session may write)."""
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    return git(repo, "rev-parse", "HEAD"), [line for line in status if not line[3:].startswith("results/")]


def test_clean_errors(tmp_path, tinyrepo):
    code, _, err = cli("optimize", "--repo", str(tmp_path), "--agent", f"patches:{FIXTURE / 'patches'}")
    assert code == 2 and err == f"simopt: error: {tmp_path} is not a git repository\n"

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--resume", "--tag", "never")
    assert code == 2 and "cannot resume 'never': no session with that tag" in err

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--resume")
    assert code == 2 and "--resume needs the --tag" in err

    git(tinyrepo, "branch", "simopt/taken")
    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "taken", "--agent", f"patches:{FIXTURE / 'patches'}")
    assert code == 2 and "branch simopt/taken exists but session 'taken' never recorded its start" in err

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "bad/tag")
    assert code == 2 and "tag(='bad/tag')" in err

    (tinyrepo / "slow.py").write_text("# uncommitted\n")
    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "t")
    assert code == 2 and "uncommitted changes in the target's files (slow.py)" in err

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--min-effect", "0")
    assert code == 2 and "must be > 0 and < 1" in err
    assert "Traceback" not in err


def test_init_writes_a_valid_config_once(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "notes.txt").write_text("no package here\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "notes")
    code, out, _ = cli("init", "--repo", str(tmp_path))
    assert code == 0 and "simopt.toml" in out and "no package found" in out
    from simopt.target import load_target

    target = load_target(tmp_path)  # the config is valid as written
    assert target.kind == "command" and target.editable == ("src/**",) and target.bench_clock == "cpu"
    before = (tmp_path / "simopt.toml").read_text()
    code, _, err = cli("init", "--repo", str(tmp_path))
    assert code == 2 and "already exists" in err
    assert (tmp_path / "simopt.toml").read_text() == before


def optimize(repo: Path, tag: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "simopt.cli", "optimize", "--repo", str(repo), "--tag", tag,
               "--agent", f"patches:{FIXTURE / 'patches'}", "--max-seconds", "10", "--quiet", *extra]
    # a background job's children inherit an ignored SIGINT: Ctrl-C must reach the session all the same
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} lines")


def test_generic_session_survives_kill_9_and_resumes(tinyrepo):
    before = user_state(tinyrepo)
    history = tinyrepo / "results" / "k" / "history.jsonl"
    process = optimize(tinyrepo, "k")
    wait_for_lines(history, 3, process)  # the session line, experiments 1 and 2
    time.sleep(1.0)  # well into experiment 3's checks
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    written = history.read_bytes()

    resumed = subprocess.run(
        [sys.executable, "-m", "simopt.cli", "optimize", "--repo", str(tinyrepo), "--tag", "k", "--resume",
         "--quiet"], capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = history.read_bytes()
    assert after.startswith(written)  # nothing earlier lost or rewritten
    lines = [json.loads(line) for line in after.splitlines()]
    assert [line["type"] for line in lines] == ["session", "experiment", "experiment", "resume", "experiment"]
    assert lines[0]["config"]["budget"] == 3  # no --budget: the patch queue's length, not 20
    # --max-seconds 10 was the user's choice: the resumed session keeps it instead of planning
    # its own (100 s here, when it did: the resume then took minutes)
    assert (lines[0]["config"]["max_seconds"], lines[0]["config"]["max_seconds_chosen"]) == (10, True)
    assert "each decision gets --max-seconds" not in resumed.stdout + resumed.stderr
    experiments = [line for line in lines if line["type"] == "experiment"]
    assert [(e["n"], e["status"]) for e in experiments] == [(1, "guard_fail"), (2, "scope_violation"), (3, "keep")]

    guard_fail, scope, keep = experiments
    tests = [failure["test"] for failure in guard_fail["guards"]["failures"]]
    assert tests == ["guard/check_slow.py::test_matches_the_definition", "guard/check_slow.py::test_large_n"]
    assert guard_fail["asi"]["hypothesis"] == "fewer operations per term"
    assert scope["asi"]["out_of_scope"] == ["guard/check_slow.py"]
    assert (tinyrepo / "results" / "k" / "patches" / "0002.diff").read_text().count("guard/check_slow.py") >= 2
    assert keep["metric"]["verdict"] == "faster" and keep["metric"]["ratio"] < 0.5
    assert git(tinyrepo, "rev-parse", "simopt/k").strip() == keep["commit"]
    assert git(tinyrepo, "log", "--format=%s", "-2", "simopt/k").splitlines() == [
        "Closed-form sum of squares", "tiny target"]
    assert "closed form" in git(tinyrepo, "show", "simopt/k:slow.py")

    assert user_state(tinyrepo) == before  # the user's checkout: untouched
    assert "#3 keep" in resumed.stdout and "experiments: 3 (keep 1, scope_violation 1, guard_fail 1)" in resumed.stdout


def test_ctrl_c_records_the_experiment_as_interrupted(tinyrepo):
    history = tinyrepo / "results" / "c" / "history.jsonl"
    marker = tinyrepo.parent / "proposing"
    # the session line comes first, then the base's calibration: the marker says experiment 1 began
    process = optimize(tinyrepo, "c", "--agent", f"command:touch {marker} && sleep 30")
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err + out + history.read_text()
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert [line.get("status") for line in lines] == [None, "interrupted"]
    assert lines[1]["asi"]["rollback_reason"] == "the user stopped the session during this experiment"
    assert "stopped: interrupted by the user" in out
    assert git(tinyrepo, "rev-parse", "simopt/c") == git(tinyrepo, "rev-parse", "HEAD")


def test_command_guards_and_holdout_folders_report_each_failing_test(tinyrepo, tmp_path):
    from simopt.command_target import CommandEvaluator
    from simopt.target import load_target

    evaluator = CommandEvaluator(load_target(tinyrepo))
    visible = evaluator.guards(tinyrepo, guards_dir=None, profile="quick")
    assert (visible["passed"], visible["failed"], visible["failures"]) == (2, 0, [])

    holdout = tmp_path / "holdout"
    holdout.mkdir()
    (holdout / "test_hidden.py").write_text(
        "from slow import sum_of_squares\n\n"
        "def test_one():\n    assert sum_of_squares(2) == 1\n\n"
        "def test_wrong_on_purpose():\n    assert sum_of_squares(3) == 6, 'hidden case'\n"
    )
    hidden = evaluator.guards(tinyrepo, guards_dir=holdout, profile="quick")
    assert (hidden["passed"], hidden["failed"]) == (1, 1)
    (failure,) = hidden["failures"]
    assert failure["test"].endswith("test_hidden.py::test_wrong_on_purpose")
    assert "hidden case" in failure["message"]


@pytest.mark.parametrize("flag", ["--max-seconds", "--max-hours", "--max-cost", "--budget"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_limits_must_be_finite(flag, value):
    code, _, err = cli("optimize", flag, value)
    assert code == 2 and err.startswith(f"simopt: error: argument {flag}: ") and err.count("\n") == 1
