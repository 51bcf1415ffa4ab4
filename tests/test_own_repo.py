"""Your own simulator: init, check, bench, guard and optimize on a small seeded queue simulator (offline)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_cli as cli
from simopt.command_target import CommandEvaluator
from simopt.evaluate import CheckFailed
from simopt.target import load_target
from simopt.target_process import command_environment

FIXTURE = Path(__file__).parent / "fixtures" / "queuesim"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def queuesim(tmp_path) -> Path:
    """A fresh git repository of the queue simulator: its commands say plain `python3`."""
    repo = tmp_path / "queuesim"
    shutil.copytree(FIXTURE / "repo", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    commit_all(repo, "queue simulator")
    return repo


def edit(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    text = file.read_text()
    assert old in text, (path, old)
    file.write_text(text.replace(old, new))


def test_commands_run_sandboxed_with_simopts_interpreter_first_on_path(queuesim):
    from simopt.target_process import run_target_command

    evaluator = CommandEvaluator(load_target(queuesim))
    os.environ["SIMOPT_TEST_OPENAI_API_KEY"] = "never inside"
    try:
        completed = run_target_command(
            "python3 -c 'import os, sys; print(sys.prefix); print(os.environ.get(\"SIMOPT_TEST_OPENAI_API_KEY\"))'"
            " && touch written-inside", tree=queuesim, timeout_s=60, env=evaluator.env, python=evaluator.python)
    finally:
        del os.environ["SIMOPT_TEST_OPENAI_API_KEY"]
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [sys.prefix, "None"]
    assert not (queuesim / "written-inside").exists()  # the command ran on a throwaway copy


def test_a_configured_interpreter_and_env_lead(queuesim):
    venv = queuesim / "fakeenv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    (queuesim / "simopt.toml").write_text((queuesim / "simopt.toml").read_text()
                                          + 'python = "fakeenv/bin/python"\nenv = { QUEUE_MODE = "fast" }\n')
    assert command_environment(load_target(queuesim)) == {"VIRTUAL_ENV": str(venv), "QUEUE_MODE": "fast"}

    (queuesim / "simopt.toml").write_text((queuesim / "simopt.toml").read_text().replace("fakeenv", "missing"))
    code, _, err = cli("check", "--repo", str(queuesim))
    assert code == 2 and "python(='missing/bin/python') is not an executable file" in err

    (queuesim / "simopt.toml").write_text((queuesim / "simopt.toml").read_text().replace("QUEUE_MODE", "API_TOKEN"))
    code, _, err = cli("check", "--repo", str(queuesim))
    assert code == 2 and "env API_TOKEN: secrets never enter the sandbox" in err


def test_a_base_that_cannot_import_says_which_interpreter_ran_it(queuesim):
    edit(queuesim, "queuesim/sim.py", "import random", "import random\nimport simpy_not_installed_anywhere")
    evaluator = CommandEvaluator(load_target(queuesim))
    with pytest.raises(CheckFailed) as failure:
        evaluator.calibrate(queuesim)
    assert "No module named 'simpy_not_installed_anywhere'" in failure.value.reason
    assert f"simopt's own python {sys.executable} first on PATH" in failure.value.reason
    assert 'python = ".venv/bin/python"' in failure.value.reason


def test_equal_output_catches_a_behaviour_change_with_its_seed_and_diff(queuesim, tmp_path):
    evaluator = CommandEvaluator(load_target(queuesim))
    assert evaluator.calibrate(queuesim) is None
    assert sorted(evaluator.equality.goldens) == [1, 2]
    candidate = tmp_path / "candidate"
    shutil.copytree(queuesim, candidate)
    clean = evaluator.guards(candidate, guards_dir=None, profile="standard")
    assert clean["failed"] == 0 and clean["passed"] == 3 + 4  # three tests, two golden and two fresh seeds

    edit(candidate, "queuesim/sim.py", "rng.expovariate(SERVICE_RATE)", "rng.expovariate(SERVICE_RATE * 1.01)")
    report = evaluator.guards(candidate, guards_dir=None, profile="standard")
    (failure,) = report["failures"]
    assert failure["test"] == "equal_output" and report["seed"] == 1
    assert "differs from the base on seed 1 at line 1" in failure["message"]
    assert failure["counterexample"]["command"] == "python3 run.py 1"
    assert any(line.startswith("+{") for line in failure["counterexample"]["diff"])


def test_a_nondeterministic_base_is_refused(queuesim):
    edit(queuesim, "run.py", "simulate(int(sys.argv[1]))", "simulate(int(sys.argv[1]) + int.from_bytes(__import__('os').urandom(4), 'big'))")
    with pytest.raises(CheckFailed, match="equal_output is not deterministic: two runs of the base on seed 1"):
        CommandEvaluator(load_target(queuesim)).calibrate(queuesim)


def test_a_failing_guard_is_quoted_by_its_failure_not_its_first_line(queuesim):
    (queuesim / "check.sh").write_text("echo case 1 ok\necho case 2 ok\necho 'case 3 FAILED: 7 != 8'\necho done\nexit 1\n")
    edit(queuesim, "simopt.toml", 'guard_command = "python3 -m pytest -q -p no:cacheprovider tests/check_sim.py"',
         'guard_command = "sh check.sh"')
    report = CommandEvaluator(load_target(queuesim))._guard_command(queuesim, None)
    assert report["failures"][0]["message"].splitlines()[0] == "case 3 FAILED: 7 != 8"


def test_check_runs_the_pipeline_on_head_and_plans_the_budget(queuesim):
    code, out, err = cli("check", "--repo", str(queuesim), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["checked"] == "HEAD" and report["warnings"] == []
    assert set(report["steps"]) == {"smoke", "equal_output", "guard", "runs_the_checkout", "bench"}
    assert report["steps"]["runs_the_checkout"]["ok"]
    bench = report["steps"]["bench"]
    assert bench["metric"] == "seconds" and bench["unit"] == "iteration" and bench["units_per_run"] == 12
    assert report["max_seconds"] >= 60

    edit(queuesim, "simopt.toml", 'editable = ["queuesim/**"]\nprotected = ["tests/**", "bench.py", "run.py", "simopt.toml"]',
         'editable = ["queuesim/**", "*.py"]\nprotected = ["tests/**", "run.py", "simopt.toml"]')
    code, out, _ = cli("check", "--repo", str(queuesim))
    assert "warning      simopt.toml has uncommitted changes" in out
    assert "warning      bench.py (used by `bench`) is editable" in out
    assert "checking     the checkout as it is" in out


def test_check_notices_commands_that_do_not_run_the_checkout(queuesim, tmp_path, monkeypatch):
    # unconfined: bubblewrap's private /tmp hides an interpreter that lives under /tmp, as tmp_path does
    monkeypatch.setenv("SIMOPT_SANDBOX", "none")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    shutil.copytree(queuesim / "queuesim", site / "queuesim")  # an installed copy of the package
    edit(queuesim, "simopt.toml", "[1, 2]", f"[1, 2]\npython = \"{venv / 'bin' / 'python'}\"")
    edit(queuesim, "simopt.toml", "python3 -m pytest -q -p no:cacheprovider tests/check_sim.py", "python3 run.py 3")  # no pytest there
    edit(queuesim, "run.py", "import json", "import sys\nsys.path.remove(sys.path[0])\nimport json")
    edit(queuesim, "bench.py", "import time", "import sys\nsys.path.remove(sys.path[0])\nimport time")
    commit_all(queuesim, "an installed copy")
    code, out, err = cli("check", "--repo", str(queuesim))
    assert code == 0, out + err
    assert "still succeeds with every editable file broken: the commands do not run the checkout's code" in out


def test_bench_and_guard_take_a_command_target(queuesim):
    base = git(queuesim, "rev-parse", "HEAD").strip()
    edit(queuesim, "queuesim/sim.py", "        running_means.append(sum(waits) / len(waits))",
         "        running_means.append(0.0)")
    commit_all(queuesim, "wrong and fast")
    code, out, err = cli("bench", "--repo", str(queuesim), "--baseline", base, "--candidate", "HEAD",
                         "--max-seconds", "8", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["verdict"] == "faster" and result["unit"] == "iteration" and result["metric"] == "seconds"
    assert result["process_ratio"] is not None and result["bench"] == "python3 bench.py"

    code, out, _ = cli("guard", "--repo", str(queuesim), "--reference", base, "--seed", "9")
    assert code == 1
    assert "FAIL equal_output" in out and "seed: 1" in out and "guard FAILED: 0 passed, 1 failed" in out
    code, out, _ = cli("guard", "--repo", str(queuesim), "--revision", base, "--reference", base)
    assert code == 0 and "guard ok: 7 passed, 0 failed" in out

    code, _, err = cli("bench", "--repo", str(queuesim), "--baseline", base, "--candidate", "HEAD", "--scenario", "x")
    assert code == 2 and "--scenario is for scenario targets" in err


@pytest.mark.parametrize("setup, message", [
    (lambda path: None, "does not exist"),
    (lambda path: path.mkdir(), "is not a git repository"),
])
def test_init_refuses_what_is_not_a_git_repository(tmp_path, setup, message):
    path = tmp_path / "target"
    setup(path)
    code, _, err = cli("init", "--repo", str(path))
    assert code == 2 and message in err and err.count("\n") == 1
    assert not path.exists() or list(path.iterdir()) == []


def test_init_never_shadows_a_pyproject_config(queuesim):
    (queuesim / "simopt.toml").unlink()
    (queuesim / "pyproject.toml").write_text('[project]\nname = "queuesim"\n\n[tool.simopt]\neditable = ["queuesim/**"]\n')
    commit_all(queuesim, "config in pyproject")
    code, _, err = cli("init", "--repo", str(queuesim))
    assert code == 2 and "already has [tool.simopt]" in err
    assert not (queuesim / "simopt.toml").exists()


def test_init_looks_at_the_repository(queuesim):
    (queuesim / "simopt.toml").unlink()
    (queuesim / "pyproject.toml").write_text('[project]\nname = "queuesim"\n')
    (queuesim / "benchmarks").mkdir()
    (queuesim / "benchmarks" / "bench_queue.py").write_text("import pyperf\n")
    (queuesim / ".venv" / "bin").mkdir(parents=True)
    (queuesim / ".venv" / "bin" / "python").symlink_to(sys.executable)
    commit_all(queuesim, "a project")
    code, out, err = cli("init", "--repo", str(queuesim))
    assert code == 0, err
    assert "editable    queuesim/**" in out and "python      .venv/bin/python" in out
    assert "benchmarks/bench_queue.py (pyperf)" in out and "git add simopt.toml simopt_bench.py" in out
    target = load_target(queuesim)
    assert target.editable == ("queuesim/**",) and target.python == ".venv/bin/python"
    for judged in ("simopt.toml", "simopt_bench.py", "tests/check_sim.py", "pyproject.toml", "benchmarks/bench_queue.py"):
        assert not target.in_scope(judged), judged
    assert target.guard_command == "python -m pytest -q -x -p no:cacheprovider tests"
    assert target.equal_output == "python simopt_bench.py --output {seed}"
    completed = subprocess.run([sys.executable, "simopt_bench.py"], cwd=queuesim, capture_output=True, text=True)
    assert "write workload(seed)" in completed.stderr  # the template refuses to time nothing


@pytest.mark.slow
def test_a_session_gives_keep_early_discard_guard_fail_and_scope_violation(queuesim):
    before = git(queuesim, "status", "--porcelain")
    code, out, err = cli("optimize", "--repo", str(queuesim), "--tag", "own", "--agent",
                         f"patches:{FIXTURE / 'patches'}", "--max-seconds", "20", "--quiet")
    assert code == 0, err + out
    lines = [json.loads(line) for line in (queuesim / "results" / "own" / "history.jsonl").read_text().splitlines()]
    session, *experiments = lines
    assert session["metric"] == "METRIC" and session["config"]["max_seconds"] == 20
    statuses = [(e["status"], (e["metric"] or {}).get("verdict")) for e in experiments]
    print(json.dumps(experiments, indent=1))
    # the no-op stops early at a look whose interval rules out the minimum speedup; on a busy
    # machine the early looks may hold too few lanes, and it ends `same` at the budget instead
    assert statuses[1] in (("discard", "not-faster"), ("discard", "same")), statuses
    assert [statuses[0], *statuses[2:]] == [("keep", "faster"), ("guard_fail", None), ("scope_violation", None)]
    keep, no_op, behaviour, scope = experiments
    assert keep["metric"]["ratio"] < 0.5 and keep["metric"]["name"] == "seconds"
    if statuses[1][1] == "not-faster":
        assert no_op["timings"]["bench_s"] < session["config"]["max_seconds"] * 0.8  # stopped early
        assert "stopped early" in no_op["asi"]["next_action_hint"]
    assert behaviour["guards"]["failures"][0]["test"] == "equal_output"
    assert scope["asi"]["out_of_scope"] == ["bench.py"]
    assert "per run (12 METRIC seconds lines per run, timed per iteration, both versions' runs interleaved" in out
    assert git(queuesim, "status", "--porcelain") == before  # results/ is ignored, nothing else written
    assert not (queuesim / ".simopt" / "worktrees" / "own").exists()  # the worktree goes with the session


def test_the_budget_advice_raises_only_a_default_budget():
    from simopt.command_target import budget_advice
    from simopt.measure.command import BudgetPlan

    slow = BudgetPlan(metric="seconds", unit="iteration", units_per_run=10, run_seconds=4.0, lane_seconds=8.0,
                      spread=0.02, lanes_needed=12, seconds=130.0, interleaved=True)
    seconds, message = budget_advice(slow, 60.0, chosen=False, min_effect=0.03)
    assert seconds == 130.0 and "each decision gets --max-seconds 130" in message and "interleaved" in message
    seconds, message = budget_advice(slow, 60.0, chosen=True, min_effect=0.03)
    assert seconds == 60.0 and "expect inconclusive discards" in message
    seconds, message = budget_advice(slow, 200.0, chosen=True, min_effect=0.03)
    assert seconds == 200.0 and "a verdict at 3% needs ~12" in message
    hopeless = BudgetPlan(metric="wall_s", unit="process", units_per_run=1, run_seconds=30.0, lane_seconds=60.0,
                          spread=0.4, lanes_needed=None, seconds=None)
    seconds, message = budget_advice(hopeless, 60.0, chosen=False, min_effect=0.03)
    assert seconds == 60.0 and "print one METRIC line per iteration, or raise --min-effect" in message
