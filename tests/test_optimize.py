"""`simopt optimize` and `simopt init` from the command line, on the tiny non-netsim fixture repo."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simopt.cli import Env, main

FIXTURE = Path(__file__).parent / "fixtures" / "tinyrepo"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tinyrepo(tmp_path) -> Path:
    """A fresh git repository holding the fixture: a slow function, a guard, a bench, a simopt.toml."""
    repo = tmp_path / "tiny"
    shutil.copytree(FIXTURE / "repo", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tiny target")
    return repo


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Env(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


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
    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "taken")
    assert code == 2 and "session 'taken' already exists: pass --resume" in err

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "bad/tag")
    assert code == 2 and "tag(='bad/tag')" in err

    (tinyrepo / "slow.py").write_text("# uncommitted\n")
    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "t")
    assert code == 2 and "uncommitted changes in the target's files (slow.py)" in err

    code, _, err = cli("optimize", "--repo", str(tinyrepo), "--min-effect", "0")
    assert code == 2 and "must be > 0 and < 1" in err
    assert "Traceback" not in err


def test_init_writes_a_template_once(tmp_path):
    code, out, _ = cli("init", "--repo", str(tmp_path))
    assert code == 0 and "simopt.toml" in out
    from simopt.target import load_target

    target = load_target(tmp_path)  # the template is a valid config as written
    assert target.kind == "command" and target.editable == ("src/**",)
    before = (tmp_path / "simopt.toml").read_text()
    code, _, err = cli("init", "--repo", str(tmp_path))
    assert code == 2 and "already exists" in err
    assert (tmp_path / "simopt.toml").read_text() == before
