"""Run a guard suite against a version of the target, in a subprocess, and collect its failures.

The suite is pytest + hypothesis (guards/). It reaches the target only through the engine's
public API, loaded from `target_root` inside the subprocess; results come back as a JSON file
written by the guards' pytest plugin, never by reading pytest's output.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from simopt.errors import UserError
from simopt.processes import run_in_group

HARNESS_ROOT = Path(__file__).resolve().parents[1]
GUARDS_DIR = HARNESS_ROOT / "guards"
PROFILES = ("quick", "standard", "thorough")
DEFAULT_TIMEOUT_S = 600.0
MAX_WORKERS = 4  # guard processes in parallel (pytest-xdist), each with its own runner and oracle


def default_workers() -> int:
    """One guard process per CPU this process may use, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def check_target(target_root: Path) -> Path:
    """The resolved target root; UserError unless it holds an engine package (simopt/netsim/)."""
    root = Path(target_root).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"target {target_root} is not a directory")
    if not (root / "simopt" / "netsim" / "__init__.py").is_file():
        raise UserError(f"target {target_root} is not a target root: it has no simopt/netsim/__init__.py")
    return root


def fresh_seed() -> int:
    """A new hypothesis seed, from the OS (never the global `random`)."""
    return secrets.randbelow(2**32)


def run_guards(target_root: Path, *, seed: int | None = None, profile: str = "standard",
               guards_dir: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
               stop_at_first_failure: bool = False, shrink: bool = True, first: Sequence[str] = (),
               workers: int | None = None) -> dict[str, Any]:
    """Run the guards in `guards_dir` (default: this harness's guards/) against `target_root`.

    `stop_at_first_failure` and `shrink=False` make "does any guard fail?" cheap: the first
    failure ends the run, reported as found (not shrunk to a smaller counterexample); `first`
    names test files of the folder to run before the others (what each test draws does not
    depend on the order: every test's examples come from the seed and its own name). `workers`
    guard processes share the tests (default: one per usable CPU, at most MAX_WORKERS).

    Returns {version, passed, failed, tamper, seed, profile, duration_s, failures: [{test, message,
    counterexample}], coverage}: `tamper` is the first tampering a runner caught ({reason, evidence}),
    or None; coverage is guards/coverage.py's report of the drawn input space (None when nothing was drawn).
    """
    root = check_target(target_root)
    folder = Path(guards_dir or GUARDS_DIR).resolve()
    if not folder.is_dir():
        raise UserError(f"guards folder {guards_dir} is not a directory")
    if profile not in PROFILES:
        raise UserError(f"profile(={profile!r}) must be one of {', '.join(PROFILES)}")
    from simopt.sandbox import choose

    choose()  # SandboxUnavailable (one line) here, before pytest starts runners that would each fail
    seed = fresh_seed() if seed is None else seed
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="simopt-guard-") as scratch:
        results_path = Path(scratch) / "results.json"
        env = {
            **os.environ,
            "SIMOPT_TARGET_ROOT": str(root),
            "SIMOPT_GUARD_PROFILE": profile,
            "SIMOPT_GUARD_RESULTS": str(results_path),
            "PYTHONPATH": os.pathsep.join([str(HARNESS_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "SIMOPT_GUARD_SHRINK": "1" if shrink else "0",
        }
        files = [folder / name for name in first]
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise UserError(f"no such guard file: {', '.join(missing)}")
        rest = [path for path in sorted(folder.glob("test_*.py")) if path not in files]
        targets = [str(path) for path in files + rest] if files else [str(folder)]
        workers = default_workers() if workers is None else max(1, workers)
        command = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", "-p", "guards.plugin",
                   f"--hypothesis-seed={seed}", "--rootdir", str(folder)] + (["-x"] if stop_at_first_failure else [])
        if workers > 1:  # a crashed worker (a tamper ends its process) is not replaced: the run ends
            command += ["-n", str(workers), "--dist", "load", "--max-worker-restart", "0"]
        returncode, output = _run(command, env, Path(scratch), timeout_s)
        document = _read_results(results_path)
        tests = document["tests"]
    duration = time.perf_counter() - started
    failures = [{"test": t["test"], "message": t["message"], "counterexample": t.get("counterexample")}
                for t in tests if t["outcome"] == "failed"]
    if returncode is None:
        failures.append({"test": "(suite)", "message": f"the guard suite exceeded its {timeout_s:g} s time limit",
                         "counterexample": None})
    elif returncode not in (0, 1, 2) or (returncode in (1, 2) and not failures):
        # (2: pytest-xdist ends an -x run that found a failure as "interrupted")
        tail = " | ".join(line for line in output.strip().splitlines()[-5:])
        failures.append({"test": "(suite)", "message": f"pytest exited with code {returncode}: {tail}", "counterexample": None})
    tamper = next((t["tamper"] for t in tests if t.get("tamper")), None)
    return {
        "version": 1,
        "passed": sum(1 for t in tests if t["outcome"] == "passed"),
        "failed": len(failures),
        "tamper": tamper,
        "seed": seed,
        "profile": profile,
        "workers": workers,
        "target": str(root),
        "duration_s": round(duration, 3),
        "failures": failures,
        "coverage": document.get("coverage"),
    }


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> tuple[int | None, str]:
    """Run pytest in its own process group; (returncode or None on timeout, combined output)."""
    try:
        done = run_in_group(command, cwd=cwd, timeout_s=timeout_s, env=env, merge_stderr=True)
    except subprocess.TimeoutExpired as timeout:
        return None, timeout.output or ""
    return done.returncode, done.stdout


def _read_results(path: Path) -> dict[str, Any]:
    """The plugin's document: {tests, coverage}; no tests when pytest wrote none."""
    if not path.is_file():
        return {"tests": []}
    return json.loads(path.read_text(encoding="utf-8"))
