"""Compare two versions of the engine: lockstep slices of fresh runs in sandboxed runners.

A lane is a pair of runners (simopt.runner), one per version, started alike (same string-hash
seed, same layout) and pinned to one CPU while measured. Each lane draws its own instance from
the workload with a fresh seed, and both versions run that instance; every run is a fresh child
of its runner's zygote that has never simulated, so no run can profit from an earlier one. A run
is timed step by step (load, build, each slice, finish), one version after the other in random
order; each step is one pair. CPU time is read from outside the runners (their cgroups); the
digests of both versions are computed here from their outcomes and compared after every run,
so every lane is also a correctness check on an instance nobody saw before. Lanes roll: one is
measured while the next warms up on another CPU; the verdict comes from the spread of the
lanes' medians, because per-process effects are shared by every pair a lane times.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from simopt.errors import UserError
from simopt.measure.sequential import Progress, run_sequential
from simopt.measure.stats import (ALPHA, MIN_LANES, Decision, decide_lanes, look_alpha, median, median_interval,
                                  median_standard_error)
from simopt.runner.client import DEFAULT_ENGINE, Runner, RunnerError

Workload = Callable[[int], dict]  # a seed -> a fresh instance of the benchmark

LANE_SHARE = 1 / 24  # a lane retires at the end of a run once its timed CPU reaches this share of the budget
# (fraction of the budget, error rate spent): a strict look at half time stops clear cases early,
# the final look keeps most of alpha (Haybittle-Peto style); earlier looks would hold too few lanes.
LANE_LOOKS = ((0.5, ALPHA / 10), (1.0, ALPHA * 9 / 10))
# With stop_when_not_faster, looks at a quarter and three quarters may only stop a candidate whose
# interval (at FUTILITY_ALPHA) already rules out the minimum speedup; they spend no error rate.
FUTILITY_LOOKS = ((0.25, 0.0), (0.5, ALPHA / 10), (0.75, 0.0), (1.0, ALPHA * 9 / 10))
FUTILITY_ALPHA = ALPHA
# Every run is a fresh fork of its zygote, so no run is warmer than another: lanes need no warm-up.
# Only the first lane runs one unmeasured probe run, which places the slice boundaries for all.
TARGET_STEP_S = 0.015  # slices sized for 10-20 ms of work
MIN_UNIT_S = 0.001  # a step this short on both sides times the protocol, not the engine
PROBE_SLICES = 200  # equal slices of simulated time in the warm-up run that places the boundaries
# Below this share of a CPU while timed, a decision without enough lanes is `busy`. Steps of a
# few milliseconds read about 0.55 on a quiet machine (the protocol's own wall time); load 8-20
# on 2 CPUs gives 0.1-0.2.
BUSY_SHARE = 0.25
MAX_PADDING = 4096  # environment padding of a lane, in bytes: moves the stack anywhere within a page
LANE_LAYOUTS = ("fixed", "random")


class Stopped(Exception):
    """The decision is over: a lane still warming up is abandoned."""


class DifferentOutput(Exception):
    """The two versions finished a run of the same instance with different outcomes."""

    def __init__(self, baseline: dict, candidate: dict, seed: int) -> None:
        super().__init__(f"digests differ: baseline {baseline['digest']}, candidate {candidate['digest']}")
        self.baseline, self.candidate, self.seed = baseline, candidate, seed


class CandidateFailed(Exception):
    """The candidate's runner raised (crash, timeout or tamper) during the comparison."""

    def __init__(self, error: RunnerError) -> None:
        super().__init__(error.reason)
        self.error = error


class Lane:
    """Two runners advancing fresh runs of one instance in lockstep."""

    def __init__(self, baseline: Runner, candidate: Runner, instance: dict, seed: int, rng: random.Random) -> None:
        self.runners = (baseline, candidate)
        self.instance, self.seed, self.rng = instance, seed, rng
        self.horizon_ns = instance["horizon_ns"]
        self.boundaries: list[int] = []
        self.completed = 0  # measured runs finished
        self.runs = 0.0  # full runs advanced, counting the current one by its fraction
        self.seconds = [0.0, 0.0]  # CPU seconds spent by (baseline, candidate), warm-up included
        self.digests: tuple[str, str] | None = None
        self.ratios: list[float] = []  # measured log ratios (CPU), warm-up excluded
        self.measured_s = 0.0  # CPU seconds of the measured steps, both versions
        self._runs = None
        self._plan: list[tuple[str, int | None]] = []

    def record(self, baseline_s: float, candidate_s: float) -> None:
        """Count one measured pair."""
        self.ratios.append(math.log(candidate_s / baseline_s))
        self.measured_s += baseline_s + candidate_s

    def retired(self, lane_seconds: float) -> bool:
        """At the end of a measured run, with at least `lane_seconds` of timed CPU."""
        return not self._plan and self.completed >= 1 and self.measured_s >= lane_seconds

    def pin(self, cpu: int) -> None:
        """Move both runners to one CPU."""
        for runner in self.runners:
            runner.pin(cpu)

    def close(self) -> None:
        """Stop both runners."""
        for runner in self.runners:
            runner.close()

    def probe(self) -> list[int]:
        """An unmeasured run in equal slices of simulated time; the baseline's CPU per slice places the boundaries."""
        horizon = self.horizon_ns
        cuts = sorted({horizon * k // PROBE_SLICES for k in range(1, PROBE_SLICES + 1)} - {0})
        marks: list[list[float]] = []
        results = []
        for index, runner in enumerate(self.runners):
            run = self._guarded(index, runner.start_run)
            self._guarded(index, run.load)
            self._guarded(index, lambda: run.build(self.instance))
            spent = 0.0
            for cut in cuts:
                step = self._guarded(index, lambda: run.advance(cut))
                spent += step.cpu_s
                if index == 0:
                    marks.append([cut, spent])
            results.append(self._guarded(index, run.finish))
            self.seconds[index] += spent + run.last_step.cpu_s
            self._guarded(index, run.close)
        self._compare(*results)
        self.runs += 1
        return slice_boundaries(marks, horizon)

    def step(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Time the next step of the current run on both versions, in random order.

        Returns ((baseline CPU s, wall s), (candidate CPU s, wall s)).
        """
        if not self._plan:
            self._runs = [self._guarded(i, runner.start_run) for i, runner in enumerate(self.runners)]
            self._plan = [("load", None), ("build", None), *(("advance", t) for t in self.boundaries), ("finish", None)]
        op, until = self._plan.pop(0)
        order = (0, 1) if self.rng.random() < 0.5 else (1, 0)
        steps: dict[int, Any] = {}
        results: dict[int, dict] = {}
        for index in order:
            run = self._runs[index]
            if op == "load":
                steps[index] = self._guarded(index, run.load)
            elif op == "build":
                steps[index] = self._guarded(index, lambda: run.build(self.instance))
            elif op == "advance":
                steps[index] = self._guarded(index, lambda: run.advance(until))
            else:
                results[index] = self._guarded(index, run.finish)
                steps[index] = run.last_step
        if op == "finish":
            for index, run in enumerate(self._runs):
                self._guarded(index, run.close)
            self._compare(results[0], results[1])
            self.completed += 1
            self.runs += 0 if self.horizon_ns else 1
        elif op == "advance" and self.horizon_ns:
            self.runs += self._slice_fraction(until)
        self.seconds[0] += steps[0].cpu_s
        self.seconds[1] += steps[1].cpu_s
        return (steps[0].cpu_s, steps[0].wall_s), (steps[1].cpu_s, steps[1].wall_s)

    def _slice_fraction(self, until: int) -> float:
        index = self.boundaries.index(until)
        start = self.boundaries[index - 1] if index else 0
        return (until - start) / self.horizon_ns

    def _compare(self, baseline: dict, candidate: dict) -> None:
        self.digests = (baseline["digest"], candidate["digest"])
        same = all(baseline[key] == candidate[key] for key in ("digest", "events", "packet_hops"))
        if not same:
            raise DifferentOutput(baseline, candidate, self.seed)

    def _guarded(self, index: int, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except RunnerError as error:
            if index == 0:
                raise UserError(f"the baseline failed during the benchmark: {error.reason}") from error
            raise CandidateFailed(error) from error


def slice_boundaries(marks: list[list[float]], horizon_ns: int, target_s: float = TARGET_STEP_S) -> list[int]:
    """Cut the run at every `target_s` of profiled work: [(until_ns, cumulative seconds), ...] -> slice ends."""
    boundaries, cut_at = [], target_s
    for until, seconds in marks:
        if seconds >= cut_at and until < horizon_ns:
            boundaries.append(int(until))
            cut_at = seconds + target_s
    return boundaries + [horizon_ns] if horizon_ns > 0 else []


def quietest_cpu(cpus: list[int], *, sample_s: float = 0.25) -> int:
    """The CPU with the most idle time over a short sample of /proc/stat (the last one if unreadable)."""

    def idle_times() -> dict[int, int]:
        times = {}
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu":
                    times[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
        return times

    try:
        before = idle_times()
        time.sleep(sample_s)
        after = idle_times()
    except (OSError, ValueError, IndexError):
        return cpus[-1]
    return max(reversed(cpus), key=lambda cpu: after.get(cpu, 0) - before.get(cpu, 0))


@contextmanager
def pinned_orchestrator() -> Iterator[int]:
    """Move this thread off the quietest CPU and yield that CPU for the runners; restore on exit."""
    original = os.sched_getaffinity(0)
    cpus = sorted(original)
    worker_cpu = quietest_cpu(cpus) if len(cpus) > 1 else cpus[0]
    if len(cpus) > 1:
        os.sched_setaffinity(0, original - {worker_cpu})
    try:
        yield worker_cpu
    finally:
        os.sched_setaffinity(0, original)


def fixed_workload(instance: dict) -> Workload:
    """A workload that is always `instance` (tests, or a scenario without randomness)."""
    return lambda seed: instance


def compare_versions(
    baseline_root: Path | str,
    candidate_root: Path | str,
    workload: Workload | dict,
    *,
    max_seconds: float = 60,
    min_effect: float = 0.01,
    progress: Progress | None = None,
    engine: str = DEFAULT_ENGINE,
    lane_layout: str = "fixed",
    stop_when_not_faster: bool = False,
) -> dict:
    """Decide whether the candidate's engine runs the workload faster than the baseline's.

    `workload`: seed -> instance, called once per lane with a fresh seed (a dict: always that
    instance). `lane_layout`: "fixed" (default: every runner without ASLR, both of a lane with
    one stack padding, lanes differing by it) or "random" (ASLR: every runner its own layout).
    `stop_when_not_faster`: for callers that keep only `faster` (the optimize loop): stop with
    `not-faster` at the first look whose interval rules out the minimum speedup.
    """
    if lane_layout not in LANE_LAYOUTS:
        raise ValueError(f"lane_layout(={lane_layout!r}) must be one of {', '.join(LANE_LAYOUTS)}")
    make_instance = fixed_workload(workload) if isinstance(workload, dict) else workload
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    lane_seconds = LANE_SHARE * max_seconds
    looks = FUTILITY_LOOKS if stop_when_not_faster else LANE_LOOKS
    futility_alpha = FUTILITY_ALPHA if stop_when_not_faster else None
    wall_ratios: list[float] = []
    timed = [0.0, 0.0]  # CPU and wall seconds of every timed step: how much of the CPU the runners got
    lanes: list[Lane] = []  # every lane measured so far, the active one last
    lane_medians: list[float] = []  # of retired lanes only: each covers the same amount of work
    lane_errors: list[float] = []  # standard error of each of them, from its own pairs
    lane_ends: list[float] = []  # seconds from the start at which each of them retired
    lane_seeds: list[int] = []
    boundaries: list[int] = []  # slice ends, placed by the first lane's probe run
    layouts: set[str] = set()
    backends: set[str] = set()
    stopping = threading.Event()
    report = {
        "version": 1,
        "metric": "cpu_s",
        "clock": None,
        "min_effect": min_effect,
        "seed": seed,
        "lane_seconds": lane_seconds,
        "alpha": ALPHA,
        "looks": [list(look) for look in looks],
    }
    with ExitStack() as stack:
        worker_cpu = stack.enter_context(pinned_orchestrator())
        spare_cpu = bool(os.sched_getaffinity(0) - {worker_cpu})  # the orchestrator's CPUs, where lanes warm up
        timeout_s = max(60.0, float(max_seconds))
        executor = ThreadPoolExecutor(max_workers=1)  # one long-lived thread starts every runner
        pending: Future | None = None  # the next lane, warming up

        def prepare_lane(lane_seed: int, hash_seed: int, padding: int, lane_rng: random.Random) -> Lane:
            if stopping.is_set():
                raise Stopped
            instance = make_instance(lane_seed)
            cpu = None if spare_cpu else worker_cpu
            runners = []
            for role, root in (("baseline", baseline_root), ("candidate", candidate_root)):
                try:
                    runner = Runner(Path(root), engine=engine, hash_seed=hash_seed, padding=padding, cpu=cpu,
                                    fixed_layout=lane_layout == "fixed", step_timeout_s=timeout_s, role=role)
                except RunnerError as error:
                    for started_runner in runners:
                        started_runner.close()
                    if role == "baseline":
                        raise UserError(f"the baseline failed during the benchmark: {error.reason}") from error
                    raise CandidateFailed(error) from error
                stack.callback(runner.close)
                runners.append(runner)
                layouts.add("randomized" if runner.randomized else "fixed")
                backends.add(runner.backend)
            lane = Lane(runners[0], runners[1], instance, lane_seed, lane_rng)
            if stopping.is_set():
                raise Stopped
            if not boundaries:
                boundaries.extend(lane.probe())
            lane.boundaries = [b for b in boundaries if b < lane.horizon_ns] + ([lane.horizon_ns] if lane.horizon_ns else [])
            return lane

        def order_lane() -> Future:
            future = executor.submit(prepare_lane, rng.randrange(2**31), rng.randrange(2**32),
                                     rng.randrange(MAX_PADDING), random.Random(rng.randrange(2**32)))
            if not spare_cpu:
                wait([future])  # one CPU: a warm-up beside the timed steps would disturb them
            return future

        def next_pair() -> tuple[float, float] | None:
            nonlocal pending
            if not lanes or lanes[-1].retired(lane_seconds):
                if lanes:
                    lanes[-1].close()
                    lane_medians.append(median(lanes[-1].ratios))
                    lane_errors.append(median_standard_error(lanes[-1].ratios))
                    lane_ends.append(time.monotonic() - started)
                lane = pending.result()
                lane.pin(worker_cpu)
                lanes.append(lane)
                lane_seeds.append(lane.seed)
                pending = order_lane()
            (base_s, base_wall), (cand_s, cand_wall) = lanes[-1].step()
            timed[0] += base_s + cand_s
            timed[1] += base_wall + cand_wall
            if max(base_s, cand_s) < MIN_UNIT_S or min(base_s, cand_s) <= 0 or min(base_wall, cand_wall) <= 0:
                return None
            wall_ratios.append(math.log(cand_wall / base_wall))
            lanes[-1].record(base_s, cand_s)
            return base_s, cand_s

        def judge(ratios: list[float], alpha: float, final: bool) -> Decision:
            return decide_lanes(lane_medians, pairs=len(ratios), min_effect=min_effect, alpha=alpha, final=final,
                                futility_alpha=futility_alpha)

        def confirm(verdict: str) -> bool:
            return verdict != "faster" or not wall_clock_disagrees(wall_ratios)

        def failure(verdict: str, **extra) -> dict:
            return {**report, "layout": layout_label(layouts), "sandbox": _one(backends), **_empty(lanes),
                    "verdict": verdict, "seconds": time.monotonic() - started, "lane_seeds": lane_seeds, **extra}

        try:
            pending = order_lane()
            decision, ratios = run_sequential(
                next_pair, max_seconds=max_seconds, min_effect=min_effect, progress=progress, confirm=confirm,
                started=started, judge=judge, looks=looks,
            )
        except CandidateFailed as failed:
            error = failed.error
            verdict = {"tamper": "tamper", "timeout": "crash"}.get(error.status, "crash")
            return failure(verdict, error=error.reason, evidence=error.evidence)
        except DifferentOutput as different:
            return failure("different-output", digest_baseline=different.baseline["digest"],
                           digest_candidate=different.candidate["digest"], instance_seed=different.seed,
                           events_baseline=different.baseline["events"], events_candidate=different.candidate["events"])
        finally:
            stopping.set()
            if pending is not None:
                try:
                    lane = pending.result()
                except BaseException:
                    lane = None
                if lane is not None:
                    lane.close()
            executor.shutdown(wait=True, cancel_futures=True)
    cpu_share = timed[0] / timed[1] if timed[1] > 0 else None
    verdict = decision.verdict
    if verdict == "inconclusive" and len(lane_medians) < MIN_LANES and cpu_share is not None and cpu_share < BUSY_SHARE:
        verdict = "busy"  # the machine, not the candidate: too little CPU to fill enough lanes
    return {
        **report,
        "clock": "cgroup" if lanes and lanes[0].runners[0].sandbox.cgroup is not None else "schedstat",
        "cpu_share": cpu_share,
        "layout": layout_label(layouts),
        "sandbox": _one(backends),
        **_costs(lanes),
        "verdict": verdict,
        "ratio": math.exp(decision.median) if decision.median is not None else None,
        "ci": [math.exp(bound) for bound in decision.ci] if decision.ci else None,
        "pairs": decision.pairs,
        "lanes": len(lane_medians),
        "lane_seeds": lane_seeds,
        "confidence": decision.confidence,
        "pair_ratio": math.exp(median(ratios)) if ratios else None,
        "wall_ratio": math.exp(median(wall_ratios)) if wall_ratios else None,
        "lane_ratios": [math.exp(value) for value in lane_medians],
        "lane_errors": lane_errors,
        "lane_ends": lane_ends,
        "seconds": time.monotonic() - started,
    }


def _one(values: set[str]) -> str | None:
    return ("mixed" if len(values) > 1 else next(iter(values))) if values else None


def layout_label(layouts: set[str]) -> str | None:
    """How the lanes' runners were laid out: "fixed", "randomized", "mixed", or None."""
    return _one(layouts)


def wall_clock_disagrees(wall_ratios: list[float]) -> bool:
    """The wall-clock interval lies wholly at or above zero: work moved out of the process."""
    interval = median_interval(wall_ratios, look_alpha()) if wall_ratios else None
    return interval is not None and interval[0] >= 0


def _costs(lanes: list[Lane]) -> dict:
    """CPU seconds per full run of each version, estimated from every timed step, and the digests."""
    runs = sum(lane.runs for lane in lanes)
    digests = next((lane.digests for lane in lanes if lane.digests), (None, None))
    return {
        "baseline_s": sum(lane.seconds[0] for lane in lanes) / runs if runs else None,
        "candidate_s": sum(lane.seconds[1] for lane in lanes) / runs if runs else None,
        "runs": runs,
        "digest_baseline": digests[0],
        "digest_candidate": digests[1],
    }


def _empty(lanes: list[Lane]) -> dict:
    return {**_costs(lanes), "ratio": None, "ci": None, "pairs": 0, "lanes": 0, "confidence": None, "wall_ratio": None}
