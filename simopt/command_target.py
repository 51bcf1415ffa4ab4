"""How the loop checks and times one version of a command target: smoke, equal_output, guard, bench.

A command target is any git repository with a benchmark command and a guard command
(simopt/target.py, docs/own-repo.md). `CommandEvaluator` runs them in a version's checkout, every
process through simopt.target_process (one documented environment, one place for the sandbox),
and raises `CheckFailed` with a status from docs/history.md and the evidence for it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from simopt.equal_output import EqualOutput
from simopt.evaluate import CheckFailed, tail
from simopt.target import Target
from simopt.target_process import command_environment, describe_interpreter, interpreter, run_target_command

HOLDOUT_FOLDER = "simopt-holdout"
_NOT_COPIED = (".git", ".simopt", "results", "__pycache__")
_FAILURE_WORDS = re.compile(r"error|fail|assert|exception|traceback|not ok", re.IGNORECASE)


class CommandEvaluator:
    """Checks and times versions of a generic target through its shell commands."""

    def __init__(self, target: Target):
        self.target = target
        self.scenario_name = target.bench
        self.python = interpreter(target)
        self.env = command_environment(target)
        self.equality = EqualOutput(target, self._checked_run) if target.equal_output else None
        self.base_root: Path | None = None
        self.metric_name: str | None = None  # what the bench prints, known once it ran

    def run(self, command: str | list[str], root: Path, timeout_s: float, *,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run one of the target's commands in `root` with the target's environment."""
        return run_target_command(command, tree=root, timeout_s=timeout_s, env=env or self.env, python=self.python)

    def calibrate(self, root: Path) -> str | None:
        """The base must pass its smoke command, its guard and (when set) a deterministic equal_output.

        Records the equal_output goldens. Returns None: a command target has no digest stage, its
        equality guard runs with the guards. A failure says which interpreter ran the commands,
        the usual cause of a base that cannot import.
        """
        try:
            self.smoke(root)
            if self.equality is not None:
                self.equality.record(root)
            guards = self.guards(root, guards_dir=None, profile="standard")
            if guards["failed"]:
                first = guards["failures"][0] if guards["failures"] else {"test": "the guard", "message": ""}
                message = (first.get("message") or "").splitlines()
                raise CheckFailed("guard_fail", f"the guard fails on the base: {first['test']}"
                                  + (f": {message[0]}" if message else ""), {"failures": guards["failures"]})
        except CheckFailed as failure:
            raise CheckFailed(failure.status, f"{failure.reason} ({describe_interpreter(self.target)})",
                              failure.evidence) from None
        self.base_root = root
        return None

    def smoke(self, root: Path) -> None:
        """Run the smoke command (when configured) in `root`; a non-zero exit is a crash."""
        if self.target.smoke:
            self._checked_run(self.target.smoke, root, "the smoke command", timeout_s=self.target.smoke_timeout)

    def digest(self, root: Path) -> None:
        """Command targets have no digest: equal_output (an equality guard) runs with the guards."""
        return None

    def guards(self, root: Path, *, guards_dir: Path | None, profile: str) -> dict[str, Any]:
        """equal_output against the base, then the guard command (or pytest over a guard folder), in `root`.

        A `guards_dir` (a holdout folder) runs pytest over that folder alone.
        """
        started = time.perf_counter()
        equal = 0
        if guards_dir is None and self.equality is not None:
            try:
                equal = len(self.equality.check(root))
            except CheckFailed as failure:
                if failure.status != "different_output":
                    raise CheckFailed(failure.status, f"(equal_output) {failure.reason}", failure.evidence) from None
                counterexample = {key: failure.evidence[key] for key in ("seed", "command", "line", "diff")}
                return {"passed": 0, "failed": 1, "seed": failure.evidence["seed"],
                        "duration_s": time.perf_counter() - started,
                        "failures": [{"test": "equal_output", "message": failure.reason, "counterexample": counterexample}]}
        report = self._guard_command(root, guards_dir)
        return {**report, "passed": report["passed"] + equal, "duration_s": time.perf_counter() - started}

    def _guard_command(self, root: Path, guards_dir: Path | None) -> dict[str, Any]:
        if guards_dir is not None:
            # the sandbox sees only the tree: the holdout folder goes into a copy of it
            with tempfile.TemporaryDirectory(prefix="simopt-holdout-") as scratch:
                tree = Path(scratch) / root.name
                shutil.copytree(root, tree, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_COPIED))
                shutil.copytree(guards_dir, tree / HOLDOUT_FOLDER, symlinks=True)
                return self._pytest_report(tree, self._pytest(HOLDOUT_FOLDER))
        # `guard`, a folder of the repository, is protected: the candidate's copy is the base's
        return self._pytest_report(root, self.target.guard_command or self._pytest(self.target.guard))

    def _pytest(self, folder: str) -> list[str]:
        return [str(self.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", folder]

    def _pytest_report(self, root: Path, command: str | list[str]) -> dict[str, Any]:
        """Run a guard command in `root`; counts and failures from its JUnit report, else its exit code."""
        started = time.perf_counter()
        try:
            completed = self.run(_with_junit(command), root, self.target.guard_timeout)
        except subprocess.TimeoutExpired:
            raise CheckFailed("timeout", f"exceeded its time limit of {self.target.guard_timeout:g} s",
                              {"command": _shown(command)}) from None
        reports = junit_reports(completed.stderr, [root])
        passed = sum(report["passed"] for report in reports)
        failures = [failure for report in reports for failure in report["failures"]]
        if completed.returncode != 0 and not failures:
            output = _JUNIT.sub("", completed.stdout + completed.stderr)
            failures = [{"test": _shown(command), "message": _failure_message(output, completed.returncode),
                         "counterexample": None}]
        return {"passed": passed, "failed": len(failures), "seed": None,
                "duration_s": time.perf_counter() - started, "failures": failures}

    def bench(
        self, baseline: Path, candidate: Path, *, max_seconds: float, min_effect: float, progress: Callable | None,
        stop_when_not_faster: bool = False,
    ) -> dict[str, Any]:
        """Lanes of alternating runs of the bench command in both checkouts (simopt.measure.command)."""
        from simopt.measure.command import compare_commands

        result = compare_commands(
            self.target.bench, baseline, candidate, max_seconds=max_seconds, min_effect=min_effect, progress=progress,
            stop_when_not_faster=stop_when_not_faster, runner=self._bench_runner,
            interleave=self.target.bench_clock == "cpu",
        )
        self.metric_name = result.get("metric") or self.metric_name
        return result

    def plan_budget(self, min_effect: float, *, root: Path | None = None):
        """Time A/A lanes of the bench on the base (`root`, default: the calibrated one) and plan a budget."""
        from simopt.measure.command import plan_budget, probe_command

        root = root or self.base_root
        if root is None:
            raise RuntimeError("plan_budget needs a calibrated base or a root")
        probe = probe_command(self.target.bench, root, runner=self._bench_runner,
                              timeout_s=max(self.target.smoke_timeout, 600.0), interleave=self.target.bench_clock == "cpu")
        self.metric_name = probe["metric"]
        return plan_budget(probe, min_effect)

    def _bench_runner(self, command: str, tree: Path, timeout_s: float) -> subprocess.CompletedProcess:
        return self.run(command, tree, timeout_s)

    def _checked_run(self, command: str, root: Path, what: str, *, timeout_s: float | None = None
                     ) -> subprocess.CompletedProcess:
        """Run a command that must exit 0: `CheckFailed` (timeout or crash) otherwise."""
        limit = timeout_s or self.target.smoke_timeout
        try:
            completed = self.run(command, root, limit)
        except subprocess.TimeoutExpired:
            raise CheckFailed("timeout", f"{what} exceeded its time limit of {limit:g} s", {"command": command}) from None
        if completed.returncode != 0:
            lines = tail(completed.stderr + completed.stdout)
            last = lines[-1] if lines else f"exit code {completed.returncode}"
            raise CheckFailed("crash", f"{what} crashed: {last}", {"command": command, "traceback": lines})
        return completed


def budget_advice(plan, max_seconds: float, *, chosen: bool, min_effect: float) -> tuple[float, str]:
    """The bench budget a session should use, and one line that says why."""
    unit = (f"{plan.units_per_run} METRIC {plan.metric} lines per run, timed per iteration" if plan.unit == "iteration"
            else f"metric {plan.metric}, one value per run (whole-process timing)")
    if plan.interleaved:
        unit += ", both versions' runs interleaved on one CPU"
    measured = (f"the bench takes {plan.run_seconds:.2f} s per run ({unit}); A/A lane spread "
                f"{plan.spread:.2%}")
    if plan.seconds is None:
        return max_seconds, (f"{measured}: even a {plan.lanes_in(1800):d}-lane decision could not resolve "
                             f"{min_effect:.0%}: print one METRIC line per iteration, or raise --min-effect")
    if plan.seconds <= max_seconds:
        return max_seconds, (f"{measured}: a {max_seconds:g} s decision holds ~{plan.lanes_in(max_seconds)} "
                             f"lanes; a verdict at {min_effect:.0%} needs ~{plan.lanes_needed}")
    if chosen:
        return max_seconds, (f"{measured}: --max-seconds {max_seconds:g} holds ~{plan.lanes_in(max_seconds)} lanes "
                             f"but a verdict at {min_effect:.0%} needs ~{plan.lanes_needed} (about {plan.seconds:g} s): "
                             "expect inconclusive discards")
    return float(plan.seconds), (f"{measured}: the default {max_seconds:g} s would hold ~{plan.lanes_in(max_seconds)} "
                                 f"lanes, a verdict at {min_effect:.0%} needs ~{plan.lanes_needed}: "
                                 f"each decision gets --max-seconds {plan.seconds:g}")


def _shown(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _failure_message(output: str, returncode: int) -> str:
    """The line that says what failed first (the last line naming an error or failure), then the tail."""
    lines = tail(output)
    key = next((line for line in reversed(lines) if _FAILURE_WORDS.search(line)), lines[-1] if lines else "")
    return "\n".join([key or f"exit code {returncode}", *lines])


def _with_junit(command: str | list[str]) -> str:
    """The command in a shell that has pytest write a JUnit XML report and prints it on stderr.

    Counts and failures then come from that structured report, not from pytest's human
    summary; the report is written in the (throwaway) copy the command runs in. When the command
    runs pytest more than once, the last report is the one read.
    """
    shown = command if isinstance(command, str) else shlex.join(command)
    return (f'{_JUNIT_PREFIX}export PYTEST_ADDOPTS="${{PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }}--junitxml=$simopt_junit"\n'
            f"( {shown}\n)\nsimopt_status=$?\n"
            '[ -f "$simopt_junit" ] && cat "$simopt_junit" >&2\nexit $simopt_status\n')


_JUNIT_PREFIX = 'simopt_junit="$PWD/.simopt-junit.xml"\n'


def junit_reports(stderr: str, bases: list[Path]) -> list[dict[str, Any]]:
    """Each JUnit XML document in `stderr` as {passed, failures}; test ids as pytest names them."""
    import xml.etree.ElementTree as ElementTree

    reports = []
    for match in _JUNIT.finditer(stderr):
        try:
            tree = ElementTree.fromstring(match.group(0))
        except ElementTree.ParseError:
            continue
        passed, failures = 0, []
        for case in tree.iter("testcase"):
            problem = next((child for child in case if child.tag in ("failure", "error")), None)
            if problem is None:
                passed += case.find("skipped") is None
                continue
            failures.append({"test": _node_id(case.get("classname", ""), case.get("name", ""), bases),
                             "message": (problem.get("message") or problem.text or "").strip(),
                             "counterexample": None})
        reports.append({"passed": passed, "failures": failures})
    return reports


def _node_id(classname: str, name: str, bases: list[Path]) -> str:
    """pytest's node id from a JUnit class name: the longest dotted prefix that is a file in a base folder."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if any((base / path).is_file() for base in bases):
            return "::".join([path, *parts[cut:], name])
    return "::".join(filter(None, [classname, name]))


_JUNIT = re.compile(r"<\?xml[^>]*\?>\s*<testsuites.*?</testsuites>", re.DOTALL)
