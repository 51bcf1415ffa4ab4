"""How the loop checks and times one version of a target: smoke, digest, guards, bench.

A `ScenarioEvaluator` runs an engine package (netsim) on scenario files, always in a subprocess
so a candidate that crashes or hangs costs one experiment, never the session. A command target's
evaluator lives in simopt/command_target.py. Both raise `CheckFailed` with a status from
docs/history.md and the evidence for it.

Scenario targets run candidate code only in sandboxed runners (simopt.runner); command
targets run their commands in a sandbox on a throwaway copy of the tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from simopt.processes import run_in_group
from simopt.target import Target

TAIL_LINES = 15


class CheckFailed(Exception):
    """A version failed a check: `status` is `crash`, `timeout`, `tamper` or `different_output`."""

    def __init__(self, status: str, reason: str, evidence: dict[str, Any] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.evidence = evidence or {}


def tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last non-empty `lines` lines of `text`."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


def run_command(
    command: list[str] | str, *, cwd: Path, timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command in its own process group; kill the whole group on timeout or Ctrl-C."""
    try:
        return run_in_group(command, cwd=cwd, timeout_s=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise CheckFailed("timeout", f"exceeded its time limit of {timeout_s:g} s") from None


class Evaluator(Protocol):
    """What the loop asks of a target kind; each check raises `CheckFailed` when the version fails it."""

    scenario_name: str

    def calibrate(self, root: Path) -> str | None:
        """Check the base version and return its benchmark digest (None: the target has no digest)."""

    def smoke(self, root: Path) -> str | None:
        """Run the smoke check; return the benchmark digest if that run produced it."""

    def digest(self, root: Path) -> str | None:
        """The benchmark digest of `root` (None: the target has no digest)."""

    def guards(self, root: Path, *, guards_dir: Path | None, profile: str) -> dict[str, Any]:
        """Run a guard suite against `root`: {passed, failed, seed, failures}."""

    def bench(self, baseline: Path, candidate: Path, *, max_seconds: float, min_effect: float,
              progress: Callable | None, stop_when_not_faster: bool = False) -> dict[str, Any]:
        """Time `candidate` against `baseline`: {verdict, ratio, ci, pairs, confidence, ...}.

        `stop_when_not_faster`: the caller keeps only `faster`, so the timing may stop as soon as
        that is ruled out (verdict `not-faster`), where the evaluator supports it.
        """


class ScenarioEvaluator:
    """Checks and times versions of an engine package on the target's scenario files.

    Candidate code runs only in sandboxed runners (simopt.runner): every check is a fresh run
    whose result is validated and hashed here, and the bench draws a fresh instance per lane.
    """

    def __init__(self, target: Target, scenario: str, *, seed: int | None = None):
        from simopt.scenario import build_instance, load_scenario

        self.target = target
        self.benchmark = load_scenario(self._scenario_ref(scenario), repo=target.root, seed=seed)
        self.smoke_scenario = (
            load_scenario(self._scenario_ref(target.smoke_scenario), repo=target.root)
            if target.smoke_scenario
            else self.benchmark
        )
        self.instance = build_instance(self.benchmark)
        self.seed = self.benchmark.seed
        self.digest_timeout_s = target.smoke_timeout

    @property
    def scenario_name(self) -> str:
        """The benchmark scenario's name."""
        return self.benchmark.name

    def workload(self, seed: int) -> dict[str, Any]:
        """The benchmark scenario at `seed`: what each bench lane draws, fresh, from the harness side."""
        from simopt.scenario import build_instance, load_scenario

        return build_instance(load_scenario(str(self.benchmark.path), seed=seed))

    def _scenario_ref(self, name: str) -> str:
        path = self.target.root / self.target.scenarios / f"{name}.toml"
        return str(path) if path.is_file() else name

    def calibrate(self, root: Path) -> str:
        """The benchmark digest of a known-good version; sets the digest run's time limit from it."""
        started = time.perf_counter()
        digest = self._run(root, self.instance, self.benchmark.name, self.target.smoke_timeout, "the base version")
        self.digest_timeout_s = max(self.target.smoke_timeout, 10 * (time.perf_counter() - started))
        return digest

    def smoke(self, root: Path) -> str | None:
        """Run the smoke scenario; return the benchmark digest when that is what the smoke ran."""
        from simopt.scenario import build_instance

        if self.smoke_scenario is self.benchmark:
            return self._run(root, self.instance, self.benchmark.name, self.target.smoke_timeout, "the smoke run")
        self._run(root, build_instance(self.smoke_scenario), self.smoke_scenario.name, self.target.smoke_timeout,
                  "the smoke run")
        return None

    def digest(self, root: Path) -> str | None:
        """The candidate's digest on the benchmark scenario."""
        return self._run(root, self.instance, self.benchmark.name, self.digest_timeout_s, "the digest run")

    def guards(self, root: Path, *, guards_dir: Path | None, profile: str) -> dict[str, Any]:
        """Run a guard suite against `root` with a fresh seed: the harness's own unless `guards_dir`.

        The visible suite is the installed harness's guards/ (its pytest plugin and oracle live
        there); the copy in the candidate's checkout is never what judges the candidate. The run
        stops at the first failing guard, shrunk: one minimal counterexample is what a proposer
        needs, and a wrong candidate then costs seconds instead of minutes of shrinking every
        other failure (`simopt guard` still runs them all).
        """
        from simopt.guard import run_guards

        report = run_guards(root, seed=None, profile=profile, guards_dir=guards_dir, timeout_s=self.target.guard_timeout,
                            stop_at_first_failure=True)
        if report.get("tamper"):
            tamper = report["tamper"]
            raise CheckFailed("tamper", f"a guard run caught the candidate tampering: {tamper['reason']}",
                              {"tamper": tamper, "seed": report.get("seed")})
        return report

    def bench(
        self, baseline: Path, candidate: Path, *, max_seconds: float, min_effect: float, progress: Callable | None,
        stop_when_not_faster: bool = False,
    ) -> dict[str, Any]:
        """Paired timing of `candidate` against `baseline`, each lane on a fresh instance of the benchmark."""
        from simopt.measure import compare_versions

        return compare_versions(
            baseline, candidate, self.workload, max_seconds=max_seconds, min_effect=min_effect, progress=progress,
            engine=self.target.engine, stop_when_not_faster=stop_when_not_faster,
        )

    def _run(self, root: Path, instance: dict[str, Any], name: str, timeout_s: float, what: str) -> str:
        """One sandboxed run of `instance` on the engine at `root`: its digest, computed here."""
        from simopt.runner.client import RunCrash, Runner, RunnerError, RunTimeout, Tamper
        from simopt.runner.engine import cuts_for

        try:
            with Runner(root, engine=self.target.engine, step_timeout_s=timeout_s) as runner:
                return runner.simulate(instance, cuts=cuts_for(instance))["digest"]
        except RunTimeout:
            raise CheckFailed("timeout", f"{what} on {name} exceeded its time limit of {timeout_s:g} s",
                              {"scenario": name}) from None
        except Tamper as tamper:
            raise CheckFailed("tamper", f"{what} on {name} caught the candidate tampering: {tamper.reason}",
                              {"scenario": name, "tamper": {"reason": tamper.reason, "evidence": tamper.evidence}}) from None
        except (RunCrash, RunnerError) as crash:
            lines = crash.evidence.get("traceback") or crash.evidence.get("stderr") or []
            raise CheckFailed("crash", f"{what} on {name} crashed: {crash.reason}",
                              {"scenario": name, "traceback": lines}) from None


def make_evaluator(target: Target, scenario: str | None) -> Evaluator:
    """The evaluator for `target`: scenario targets need a scenario name."""
    if target.kind == "command":
        from simopt.command_target import CommandEvaluator

        return CommandEvaluator(target)
    return ScenarioEvaluator(target, scenario)
