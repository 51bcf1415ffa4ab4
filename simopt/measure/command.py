"""Compare two versions of a command target through its benchmark shell command.

A *lane* is one pair of whole-process runs, one per version, in random order, each in its
version's root and pinned to the workers' CPU. The unit of timing is what the command prints:

- one `METRIC name=value` line per iteration (lower is better): iteration i of the candidate's
  run is paired with iteration i of the baseline's (the first iteration of each run is a
  warm-up when there are three or more), and the lane's value is the median of those log ratios;
- a single `METRIC` line: the lane's value is the log ratio of the two values;
- no `METRIC` line: the wall time of each run (the fallback, and the noisiest).

With `interleave` (config `bench_clock = "cpu"`: the METRIC values are CPU time), the two runs
of a lane execute at the same time on the one pinned CPU, so the scheduler interleaves them
every few milliseconds and whatever else loads the machine (a busy sibling hyperthread, caches)
weighs on both versions alike; without it they run one after the other. Measured on this shared
machine at load 6-7: A/A lane values of +-1.4% interleaved against +-27-47% one after the other.

The verdict uses the lane statistics of scenario comparisons (stats.decide_lanes: 20% trimmed
mean of the lane values, Yuen's t interval, at least MIN_LANES lanes) with the same looks and
the same early `not-faster` stop; the whole-process wall-clock ratio of the same lanes is
reported beside it, and vetoes a `faster` that the wall clock surely contradicts.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from simopt.errors import UserError
from simopt.measure.paired import pinned_orchestrator
from simopt.measure.sequential import Progress, run_sequential
from simopt.measure.stats import (
    ALPHA, LANE_TRIM, MIN_LANES, Decision, decide_lanes, median, student_t_quantile, trimmed_mean,
)

COMMAND_MIN_EFFECT = 0.03
WARMUP_LANES = 1  # the first lane warms the disk cache and the interpreter's bytecode cache
WARMUP_ITERATIONS = 1  # dropped from the front of each run that prints at least three METRIC lines
TAIL_LINES = 12
# the looks of scenario lanes (docs/measurement.md): (fraction of the budget, error rate spent)
LANE_LOOKS = ((0.5, ALPHA / 10), (1.0, ALPHA * 9 / 10))
FUTILITY_LOOKS = ((0.25, 0.0), (0.5, ALPHA / 10), (0.75, 0.0), (1.0, ALPHA * 9 / 10))
FUTILITY_ALPHA = ALPHA
PROBE_LANES = 3  # A/A lanes timed on the base to plan a session's budget
PLAN_MIN_LANES = 8  # a budget is planned for at least this many lanes
PLAN_SAFETY = 1.5  # the probe's spread, from three lanes, is inflated by this much
PLAN_FILL = 0.8  # share of a budget that ends up in measured lanes (looks, start-up, the warm-up lane)
PLAN_MAX_SECONDS = 1800.0

METRIC_LINE = re.compile(r"^METRIC ([A-Za-z0-9_.-]+)=(\S+)$")
_METRIC_LIKE = re.compile(r"^\s*metric\b", re.IGNORECASE)

Runner = Callable[[str, Path, float], subprocess.CompletedProcess]  # (command, tree, timeout_s)


class RunFailed(Exception):
    """One run of the command failed: non-zero exit, timeout, or no usable metric."""

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.message, self.role = message, role


@dataclass(frozen=True)
class Run:
    """One process of the bench command: its metric name, one value per unit, its wall time."""

    metric: str
    values: tuple[float, ...]
    wall_s: float


def parse_metrics(output: str) -> tuple[str, list[float]] | None:
    """Every `METRIC name=value` line of the output as (name, values); None when there is none.

    A line that looks like a metric but is not exactly `METRIC name=value` with one name for
    every line and a finite value > 0 is a `ValueError`, never silently ignored.
    """
    name, values = None, []
    for line in output.splitlines():
        if not _METRIC_LIKE.match(line):
            continue
        match = METRIC_LINE.match(line.rstrip())
        if match is None:
            raise ValueError(f"malformed metric line {line.strip()[:80]!r}: the format is `METRIC name=value`")
        try:
            value = float(match.group(2))
        except ValueError:
            raise ValueError(f"metric line {line.strip()[:80]!r}: {match.group(2)!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"METRIC {match.group(1)}={match.group(2)}: a metric must be finite and > 0 (lower is better)")
        if name not in (None, match.group(1)):
            raise ValueError(f"the bench prints two metrics, {name} and {match.group(1)}: print one")
        name = match.group(1)
        values.append(value)
    return (name, values) if name is not None else None


def default_runner(command: str, tree: Path, timeout_s: float) -> subprocess.CompletedProcess:
    """Run the command through simopt.target_process with simopt's own environment."""
    from simopt.target_process import run_target_command

    return run_target_command(command, tree=tree, timeout_s=timeout_s)


@contextmanager
def _pinned_thread(cpu: int) -> Iterator[None]:
    """Pin this thread to `cpu` for a while: a process started meanwhile inherits the pinning."""
    original = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, original)


def run_once(command: str, root: Path, *, cpu: int, timeout_s: float, role: str, runner: Runner = default_runner) -> Run:
    """Run the command once in `root`, pinned to `cpu`; its METRIC values, or its wall time without any."""
    started = time.perf_counter()
    try:
        with _pinned_thread(cpu):
            completed = runner(command, root, timeout_s)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"the bench command timed out after {timeout_s:g} s in {root}", role) from None
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        lines = (completed.stderr + completed.stdout).splitlines()[-TAIL_LINES:]
        raise RunFailed("\n".join([f"the bench command exited with code {completed.returncode}", *lines]), role)
    try:
        metrics = parse_metrics(completed.stdout)
    except ValueError as error:
        raise RunFailed(str(error), role) from None
    if metrics is None:
        return Run("wall_s", (wall,), wall)
    return Run(metrics[0], tuple(metrics[1]), wall)


def lane_value(baseline: Run, candidate: Run) -> tuple[float, int]:
    """The lane's log ratio (median over its paired units) and how many unit pairs it holds."""
    if baseline.metric != candidate.metric:
        raise RunFailed(f"the two versions report different metrics: {baseline.metric}, {candidate.metric}", "candidate")
    if len(baseline.values) != len(candidate.values):
        raise RunFailed(f"the candidate printed {len(candidate.values)} METRIC lines, the baseline "
                        f"{len(baseline.values)}: a run must do the same iterations", "candidate")
    skip = WARMUP_ITERATIONS if len(baseline.values) >= 3 else 0
    ratios = [math.log(cand / base) for base, cand in zip(baseline.values[skip:], candidate.values[skip:])]
    return median(ratios), len(ratios)


class Lanes:
    """Measures lanes of the command in two roots, in random order within each lane."""

    def __init__(self, command: str, roots: dict[str, Path], *, cpu: int, timeout_s: float, runner: Runner,
                 rng: random.Random, interleave: bool = False) -> None:
        self.command, self.roots, self.cpu, self.timeout_s, self.runner, self.rng = (
            command, roots, cpu, timeout_s, runner, rng)
        self.interleave = interleave
        self.started = 0
        self.values: list[float] = []  # each measured lane's value (log ratio)
        self.process_values: list[float] = []  # each measured lane's whole-process wall log ratio
        self.unit_pairs = 0
        self.units: list[int] = []
        self.metric: str | None = None
        self.lines = 0  # METRIC lines per run (1 without any: the wall time)
        self.samples: dict[str, list[float]] = {"baseline": [], "candidate": []}
        self.run_seconds: list[float] = []

    def next(self) -> tuple[float, float] | None:
        """Measure one more lane; None while warming up, else its median unit values."""
        order = ["baseline", "candidate"]
        self.rng.shuffle(order)
        runs = self._interleaved(order) if self.interleave else {role: self._run(role) for role in order}
        self.started += 1
        value, units = lane_value(runs["baseline"], runs["candidate"])
        self.metric = runs["baseline"].metric
        self.lines = len(runs["baseline"].values)
        self.run_seconds += [runs["baseline"].wall_s, runs["candidate"].wall_s]
        if self.started <= WARMUP_LANES:
            return None
        self.values.append(value)
        self.process_values.append(math.log(runs["candidate"].wall_s / runs["baseline"].wall_s))
        self.unit_pairs += units
        self.units.append(units)
        for role, run in runs.items():
            self.samples[role].append(median(run.values))
        return self.samples["baseline"][-1], self.samples["candidate"][-1]

    def _run(self, role: str) -> Run:
        run = run_once(self.command, self.roots[role], cpu=self.cpu, timeout_s=self.timeout_s, role=role,
                       runner=self.runner)
        if self.interleave and run.metric == "wall_s":
            raise RunFailed('bench_clock = "cpu" needs METRIC lines of CPU time, and the bench printed none', role)
        return run

    def _interleaved(self, order: list[str]) -> dict[str, Run]:
        """Both runs at once, each started from a thread of its own (pinned to the same CPU)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="simopt-lane") as pool:
            futures = {role: pool.submit(self._run, role) for role in order}
            failures = [future.exception() for future in futures.values() if future.exception() is not None]
        if failures:  # the baseline's first: it says the bench itself is broken
            raise min(failures, key=lambda failure: getattr(failure, "role", "") != "baseline")
        return {role: future.result() for role, future in futures.items()}


def compare_commands(
    command: str,
    baseline_root: Path | str,
    candidate_root: Path | str,
    *,
    max_seconds: float = 120,
    min_effect: float = COMMAND_MIN_EFFECT,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    stop_when_not_faster: bool = False,
    runner: Runner = default_runner,
    interleave: bool = False,
) -> dict:
    """Decide whether `command` reports a lower METRIC (or runs faster) in the candidate's root.

    `stop_when_not_faster`: for callers that keep only `faster` (the optimize loop): stop with
    `not-faster` at the first look whose interval rules out the minimum speedup. `interleave`:
    the METRIC is CPU time, so both runs of a lane may execute at once on one CPU.
    """
    started = time.monotonic()
    seed = random.randrange(2**32)
    roots = {"baseline": Path(baseline_root), "candidate": Path(candidate_root)}
    timeout_s = timeout_s or max(float(max_seconds), 10.0)
    looks = FUTILITY_LOOKS if stop_when_not_faster else LANE_LOOKS
    futility_alpha = FUTILITY_ALPHA if stop_when_not_faster else None
    report = {"version": 1, "command": command, "interleaved": interleave, "min_effect": min_effect, "seed": seed,
              "alpha": ALPHA,
              "looks": [list(look) for look in looks], "digest_baseline": None, "digest_candidate": None}
    with pinned_orchestrator() as cpu:
        lanes = Lanes(command, roots, cpu=cpu, timeout_s=timeout_s, runner=runner, rng=random.Random(seed),
                       interleave=interleave)

        def judge(_: list, alpha: float, final: bool) -> Decision:
            return decide_lanes(lanes.values, pairs=lanes.unit_pairs, min_effect=min_effect, alpha=alpha,
                                final=final, futility_alpha=futility_alpha)

        def confirm(verdict: str) -> bool:
            return verdict != "faster" or not wall_clock_disagrees(lanes.process_values)

        try:
            decision, _ = run_sequential(lanes.next, max_seconds=max_seconds, min_effect=min_effect, progress=progress,
                                         confirm=confirm, started=started, judge=judge, looks=looks)
        except RunFailed as failure:
            if failure.role == "baseline":
                raise UserError(f"the baseline's bench command failed: {failure.message.splitlines()[0]}") from failure
            return {**report, **_evidence(lanes), "verdict": "crash", "error": failure.message, "ratio": None,
                    "ci": None, "confidence": None, "seconds": time.monotonic() - started}
    return {
        **report,
        **_evidence(lanes),
        "verdict": decision.verdict,
        "ratio": math.exp(decision.median) if decision.median is not None else None,
        "ci": [math.exp(bound) for bound in decision.ci] if decision.ci else None,
        "confidence": decision.confidence,
        "seconds": time.monotonic() - started,
    }


def wall_clock_disagrees(process_values: list[float]) -> bool:
    """True when the whole-process wall-clock interval lies wholly at or above 1 (not faster, surely)."""
    _, interval = lane_interval(process_values, ALPHA)
    return interval is not None and interval[0] >= 0


def lane_interval(values: list[float], alpha: float) -> tuple[float | None, tuple[float, float] | None]:
    """The lane estimate (trimmed mean) of log ratios and its Yuen t interval at `alpha`.

    Below MIN_LANES lanes or at zero spread: the median (None when empty) and no interval.
    """
    estimate = trimmed_mean(values, LANE_TRIM) if len(values) >= MIN_LANES else None
    if estimate is None:
        return (median(values) if values else None), None
    center, standard_error, df = estimate
    half = student_t_quantile(1 - alpha / 2, df) * standard_error
    return center, (center - half, center + half)


def _evidence(lanes: Lanes) -> dict:
    """What the lanes measured, for the result document."""
    process_center, process = lane_interval(lanes.process_values, LANE_LOOKS[-1][1])
    return {
        "metric": lanes.metric,
        "unit": "iteration" if lanes.units and max(lanes.units) > 1 else "process",
        "pairs": lanes.unit_pairs,
        "lanes": len(lanes.values),
        "lane_ratios": [math.exp(value) for value in lanes.values],
        "process_ratio": math.exp(process_center) if process_center is not None else None,
        "process_ci": [math.exp(bound) for bound in process] if process else None,
        "baseline_s": median(lanes.samples["baseline"]) if lanes.samples["baseline"] else None,
        "candidate_s": median(lanes.samples["candidate"]) if lanes.samples["candidate"] else None,
        "run_seconds": median(lanes.run_seconds) if lanes.run_seconds else None,
    }


@dataclass(frozen=True)
class BudgetPlan:
    """How long one bench decision needs at a minimum effect, from an A/A probe on the base."""

    metric: str
    unit: str
    units_per_run: int
    run_seconds: float
    lane_seconds: float
    spread: float  # root mean square of the probe's A/A lane log ratios
    lanes_needed: int | None  # None: not even PLAN_MAX_SECONDS would do
    seconds: float | None
    interleaved: bool = False

    def lanes_in(self, max_seconds: float) -> int:
        """About how many measured lanes a budget of `max_seconds` holds."""
        return max(0, int(max_seconds * PLAN_FILL / self.lane_seconds) - WARMUP_LANES)


def probe_command(command: str, root: Path | str, *, lanes: int = PROBE_LANES, timeout_s: float = 600.0,
                  runner: Runner = default_runner, interleave: bool = False) -> dict:
    """Time `lanes` A/A lanes (plus the warm-up lane) of the command in `root`: its cost and noise."""
    started = time.monotonic()
    with pinned_orchestrator() as cpu:
        measured = Lanes(command, {"baseline": Path(root), "candidate": Path(root)}, cpu=cpu, timeout_s=timeout_s,
                          runner=runner, rng=random.Random(), interleave=interleave)
        try:
            for _ in range(WARMUP_LANES + lanes):
                measured.next()
        except RunFailed as failure:
            raise UserError(f"the bench command fails on the base: {failure.message.splitlines()[0]}") from failure
    return {"metric": measured.metric, "values": measured.values, "process_values": measured.process_values,
            "units": measured.lines, "interleaved": interleave, "run_seconds": median(measured.run_seconds),
            "lane_seconds": (time.monotonic() - started) / (WARMUP_LANES + lanes)}


def plan_budget(probe: dict, min_effect: float) -> BudgetPlan:
    """The budget a decision needs so its final interval can be narrower than +-min_effect.

    With the probe's A/A lane spread s (inflated by PLAN_SAFETY), n lanes give a final half
    width of about t(1 - alpha_final / 2, n - 1) * s / sqrt(n); the plan is the smallest
    n >= PLAN_MIN_LANES where that is at most ln(1 + min_effect), then a no-op can end `same`
    and a change of twice the minimum effect is kept about half the time or more.
    """
    spread = math.sqrt(sum(value * value for value in probe["values"]) / len(probe["values"]))
    bound = math.log1p(min_effect)
    final_alpha = LANE_LOOKS[-1][1]
    lane_seconds = probe["lane_seconds"]
    needed = None
    for lanes in range(PLAN_MIN_LANES, 10_000):
        if (lanes + WARMUP_LANES) * lane_seconds / PLAN_FILL > PLAN_MAX_SECONDS:
            break
        kept = lanes - 2 * math.floor(0.2 * lanes)
        half = student_t_quantile(1 - final_alpha / 2, kept - 1) * PLAN_SAFETY * spread / math.sqrt(lanes)
        if half <= bound:
            needed = lanes
            break
    seconds = None if needed is None else math.ceil((needed + WARMUP_LANES) * lane_seconds / PLAN_FILL / 10) * 10
    unit = "iteration" if probe["units"] > 1 else "process"
    return BudgetPlan(metric=probe["metric"], unit=unit, units_per_run=probe["units"], run_seconds=probe["run_seconds"],
                      lane_seconds=lane_seconds, spread=spread, lanes_needed=needed, seconds=seconds,
                      interleaved=bool(probe.get("interleaved")))

