"""`simopt bench` through the CLI boundary, on copies of netsim with a tiny scenario."""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from simopt import cli

NETSIM = Path(__file__).resolve().parents[1] / "simopt" / "netsim"
TINY = """
seed = 3
horizon_us = 200

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
count = 12
bytes = 30_000
start_us = {dist = "uniform", min = 0, max = 50}
"""


def version(tmp_path: Path, name: str, *, append: str = "") -> Path:
    """A version root: a copy of netsim (with `append` added to its package) and the tiny scenario."""
    root = tmp_path / name
    shutil.copytree(NETSIM, root / "simopt" / "netsim", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "scenarios").mkdir()
    (root / "scenarios" / "tiny.toml").write_text(TINY)
    with open(root / "simopt" / "netsim" / "__init__.py", "a") as init:
        init.write(append)
    return root


def bench(*argv: str) -> tuple[int, str, str]:
    env = cli.Env(stdout=io.StringIO(), stderr=io.StringIO())
    status = cli.main(["bench", *argv], env)
    return status, env.stdout.getvalue(), env.stderr.getvalue()


def test_json_prints_exactly_one_document_with_the_contract_fields(tmp_path):
    root = version(tmp_path, "base")
    status, out, _ = bench("--scenario", "tiny", "--baseline", str(root), "--candidate", str(root), "--max-seconds", "3", "--json")
    assert status == 0
    result = json.loads(out)
    for key in ("verdict", "ratio", "ci", "pairs", "confidence", "baseline_s", "candidate_s", "min_effect", "seconds",
                "digest_baseline", "digest_candidate"):
        assert key in result
    assert result["verdict"] in ("same", "inconclusive")
    assert result["scenario"] == "tiny" and result["version"] == 1


def test_an_injected_profile_hook_is_slower_and_summarized(tmp_path):
    slow = version(tmp_path, "slow", append="\nimport sys\nsys.setprofile(lambda *args: None)\n")
    status, out, _ = bench("--scenario", "tiny", "--baseline", str(version(tmp_path, "base")), "--candidate", str(slow),
                           "--max-seconds", "12")
    assert status == 0
    assert out.splitlines()[0].split() == ["verdict", "slower"]
    assert "speedup" in out and "pairs" in out


def test_a_crashing_candidate_exits_1_with_its_traceback(tmp_path):
    broken = version(tmp_path, "broken", append="\nSimulation.run = lambda self, until: 1 / 0\n")
    status, out, _ = bench("--scenario", "tiny", "--baseline", str(version(tmp_path, "base")), "--candidate", str(broken),
                           "--max-seconds", "3")
    assert status == 1
    assert "crash" in out and "ZeroDivisionError" in out


def test_revisions_are_benched_in_temporary_worktrees_that_are_removed(tmp_path, monkeypatch):
    repo = version(tmp_path, "repo")
    for command in (["git", "init", "-q"], ["git", "add", "."],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1"]):
        subprocess.run(command, cwd=repo, check=True)
    monkeypatch.chdir(repo)
    status, out, _ = bench("--scenario", "tiny", "--baseline", "HEAD", "--candidate", "HEAD", "--max-seconds", "2", "--json")
    assert status == 0 and json.loads(out)["baseline"] == "HEAD"
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert len(worktrees.splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--baseline", "no-such-rev-xyz", "--candidate", "."], "neither a directory nor a revision"),
        (["--baseline", "{root}", "--candidate", "{root}", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["--baseline", "{root}", "--candidate", "{empty}"], "not a version of the target"),
        (["--baseline", "{root}", "--candidate", "{root}", "--min-effect", "2"], "--min-effect"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, argv, message):
    root, empty = version(tmp_path, "base"), tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)  # not a git repository
    argv = [arg.format(root=root, empty=empty) for arg in argv]
    if "--scenario" not in argv:
        argv += ["--scenario", "tiny"]
    status, out, err = bench(*argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_instructions_without_valgrind_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr("simopt.measure.instructions.shutil.which", lambda name: None)
    root = version(tmp_path, "base")
    status, _, err = bench("--scenario", "tiny", "--baseline", str(root), "--candidate", str(root), "--metric", "instructions")
    assert status == 2 and "valgrind" in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instruction_counts_repeat_to_the_instruction_and_see_extra_work(tmp_path):
    base = version(tmp_path, "base")
    slow = version(tmp_path, "slow", append="\n_plain = Simulation.run\n"
                   "Simulation.run = lambda self, until: (_plain(self, until), sum(range(200_000)))[0]\n")
    status, out, _ = bench("--scenario", "tiny", "--baseline", str(base), "--candidate", str(base),
                           "--metric", "instructions", "--json")
    same = json.loads(out)
    assert status == 0 and same["verdict"] == "same"
    assert abs(same["ratio"] - 1) < 1e-4
    status, out, _ = bench("--scenario", "tiny", "--baseline", str(base), "--candidate", str(slow),
                           "--metric", "instructions", "--json")
    slower = json.loads(out)
    assert slower["verdict"] == "slower"
    assert slower["candidate_instructions"] > slower["baseline_instructions"]
