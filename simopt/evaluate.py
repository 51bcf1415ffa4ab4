"""How the loop checks and times one version of a target: smoke, digest, guards, bench.

A `ScenarioEvaluator` runs an engine package (netsim) on scenario files, always in a subprocess
so a candidate that crashes or hangs costs one experiment, never the session. A command target's
evaluator lives in simopt/command_target.py. Both raise `CheckFailed` with a status from
docs/history.md and the evidence for it.

`python -m simopt.evaluate ROOT ENGINE SCENARIO_PATH` is the subprocess side: it prints one JSON
line with the digest and the wall time of a run.
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
    """A version failed a check: `status` is `crash`, `timeout` or `different_output`."""

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
    """Checks and times versions of an engine package on the target's scenario files."""

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

    def _scenario_ref(self, name: str) -> str:
        path = self.target.root / self.target.scenarios / f"{name}.toml"
        return str(path) if path.is_file() else name

    def calibrate(self, root: Path) -> str:
        """The benchmark digest of a known-good version; sets the digest run's time limit from it."""
        started = time.perf_counter()
        digest = self._run(root, self.benchmark, self.target.smoke_timeout, "the base version")["digest"]
        self.digest_timeout_s = max(self.target.smoke_timeout, 10 * (time.perf_counter() - started))
        return digest

    def smoke(self, root: Path) -> str | None:
        """Run the smoke scenario; return the benchmark digest when that is what the smoke ran."""
        outcome = self._run(root, self.smoke_scenario, self.target.smoke_timeout, "the smoke run")
        return outcome["digest"] if self.smoke_scenario is self.benchmark else None

    def digest(self, root: Path) -> str | None:
        """The candidate's digest on the benchmark scenario."""
        return self._run(root, self.benchmark, self.digest_timeout_s, "the digest run")["digest"]

    def guards(self, root: Path, *, guards_dir: Path | None, profile: str) -> dict[str, Any]:
        """Run a guard suite against `root` with a fresh seed: the harness's own unless `guards_dir`.

        The visible suite is the installed harness's guards/ (its pytest plugin and oracle live
        there); the copy in the candidate's checkout is never what judges the candidate.
        """
        from simopt.guard import run_guards

        return run_guards(root, seed=None, profile=profile, guards_dir=guards_dir, timeout_s=self.target.guard_timeout)

    def bench(
        self, baseline: Path, candidate: Path, *, max_seconds: float, min_effect: float, progress: Callable | None,
        stop_when_not_faster: bool = False,
    ) -> dict[str, Any]:
        """Paired timing of `candidate` against `baseline` on the benchmark instance."""
        from simopt.measure import compare_versions

        return compare_versions(
            baseline, candidate, self.instance, max_seconds=max_seconds, min_effect=min_effect, progress=progress,
            engine=self.target.engine, stop_when_not_faster=stop_when_not_faster,
        )

    def _run(self, root: Path, scenario, timeout_s: float, what: str) -> dict[str, Any]:
        # -P: the harness comes from the installed simopt, never from the checkout under test
        command = [sys.executable, "-P", "-m", "simopt.evaluate", str(root), self.target.engine, str(scenario.path)]
        if scenario.seed is not None:
            command.append(str(scenario.seed))
        try:
            completed = run_command(command, cwd=root, timeout_s=timeout_s)
        except CheckFailed as failure:
            raise CheckFailed("timeout", f"{what} on {scenario.name} {failure.reason}", {"scenario": scenario.name})
        if completed.returncode != 0:
            lines = tail(completed.stderr)
            last = lines[-1] if lines else f"exit code {completed.returncode}"
            raise CheckFailed(
                "crash", f"{what} on {scenario.name} crashed: {last}", {"scenario": scenario.name, "traceback": lines}
            )
        return json.loads(completed.stdout.strip().splitlines()[-1])


def make_evaluator(target: Target, scenario: str | None) -> Evaluator:
    """The evaluator for `target`: scenario targets need a scenario name."""
    if target.kind == "command":
        from simopt.command_target import CommandEvaluator

        return CommandEvaluator(target)
    return ScenarioEvaluator(target, scenario)


def _main(argv: list[str]) -> int:
    root, engine_path, scenario_path, *seed = argv
    from simopt.engine import load_engine
    from simopt.scenario import build_instance, load_scenario

    scenario = load_scenario(scenario_path, seed=int(seed[0]) if seed else None)
    instance = build_instance(scenario)
    engine = load_engine(Path(root), engine_path)
    started = time.perf_counter()
    result = engine.simulate(instance)
    wall_s = time.perf_counter() - started
    print(json.dumps({"digest": result["digest"], "events": result["events"], "wall_s": wall_s}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
