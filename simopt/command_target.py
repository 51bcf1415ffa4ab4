"""How the loop checks and times one version of a command target: smoke, guards, bench.

A command target is any git repository with a benchmark command and a guard command
(simopt/target.py). `CommandEvaluator` runs them in a version's checkout and raises `CheckFailed`
with a status from docs/history.md and the evidence for it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from simopt.evaluate import CheckFailed, run_command, tail
from simopt.target import Target

_PYTEST_SUMMARY = ("passed", "failed", "error", "errors")


class CommandEvaluator:
    """Checks and times versions of a generic target through its shell commands."""

    def __init__(self, target: Target):
        self.target = target
        self.scenario_name = target.bench

    def calibrate(self, root: Path) -> None:
        """Generic targets have no digest; the base must pass its smoke command."""
        self.smoke(root)

    def smoke(self, root: Path) -> None:
        """Run the smoke command (when configured) in `root`; a non-zero exit is a crash."""
        if not self.target.smoke:
            return None
        try:
            completed = run_command(self.target.smoke, cwd=root, timeout_s=self.target.smoke_timeout)
        except CheckFailed as failure:
            raise CheckFailed("timeout", f"the smoke command {failure.reason}", {"command": self.target.smoke})
        if completed.returncode != 0:
            lines = tail(completed.stderr + completed.stdout)
            last = lines[-1] if lines else f"exit code {completed.returncode}"
            raise CheckFailed(
                "crash", f"the smoke command crashed: {last}", {"command": self.target.smoke, "traceback": lines}
            )
        return None

    def digest(self, root: Path) -> None:
        """Generic targets have no output digest: correctness rests on the guards."""
        return None

    def guards(self, root: Path, *, guards_dir: Path | None, profile: str) -> dict[str, Any]:
        """Run the guard command, or pytest over a guard folder, in `root`."""
        if guards_dir is not None or not self.target.guard_command:
            directory = guards_dir or self.target.root / self.target.guard
            command: list[str] | str = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)]
        else:
            command = self.target.guard_command
        started = time.perf_counter()
        # a wide "terminal", so pytest's one-line failure summaries keep the whole message
        env = {**os.environ, "COLUMNS": "500"}
        completed = run_command(command, cwd=root, timeout_s=self.target.guard_timeout, env=env)
        output = completed.stdout + completed.stderr
        passed, failed = _pytest_counts(output)
        failures = [] if completed.returncode == 0 else _pytest_failures(output) or [
            {"test": command if isinstance(command, str) else " ".join(command),
             "message": "\n".join(tail(output)), "counterexample": None}
        ]
        return {"passed": passed, "failed": max(failed, len(failures)), "seed": None,
                "duration_s": time.perf_counter() - started, "failures": failures}

    def bench(
        self, baseline: Path, candidate: Path, *, max_seconds: float, min_effect: float, progress: Callable | None,
        stop_when_not_faster: bool = False,
    ) -> dict[str, Any]:
        """Alternating whole-process runs of the bench command in both checkouts (always to a full answer)."""
        from simopt.measure.command import compare_commands

        return compare_commands(
            self.target.bench, baseline, candidate, max_seconds=max_seconds, min_effect=min_effect, progress=progress
        )


def _pytest_counts(output: str) -> tuple[int, int]:
    """(passed, failed) from pytest's summary line, (0, 0) when there is none."""
    passed = failed = 0
    for line in reversed(output.splitlines()):
        words = line.replace(",", " ").split()
        if any(word in _PYTEST_SUMMARY for word in words):
            for count, word in zip(words, words[1:]):
                if count.isdigit() and word == "passed":
                    passed = int(count)
                elif count.isdigit() and word in ("failed", "error", "errors"):
                    failed += int(count)
            break
    return passed, failed


def _pytest_failures(output: str) -> list[dict[str, Any]]:
    """One failure per `FAILED test - message` line of pytest's short summary."""
    failures = []
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            test, _, message = line.split(" ", 1)[1].partition(" - ")
            failures.append({"test": test.strip(), "message": message.strip(), "counterexample": None})
    return failures
