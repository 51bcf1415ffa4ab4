"""Compare two versions of the engine on one instance: lockstep slices in pinned, warm workers.

A lane is one fresh pair of workers (baseline, candidate) that build the same instance and
advance it through the same slices of simulated time, one version after the other in random
order; each step (build, a slice, the final result) is one pair of timings. Lanes roll: one is
measured at a time and retires after a fixed share of the budget, while the next one starts and
warms up on another CPU. The verdict comes from the spread of the lanes' medians, because
per-process effects are shared by every pair a lane times.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from simopt.engine import DEFAULT_ENGINE
from simopt.errors import UserError
from simopt.measure import layout
from simopt.measure.client import Worker, WorkerCrash, start_pair
from simopt.measure.sequential import Progress, run_sequential
from simopt.measure.stats import (ALPHA, Decision, decide_lanes, look_alpha, median, median_interval,
                                  median_standard_error)

LANE_SHARE = 1 / 24  # a lane retires at the end of a run once its timed CPU reaches this share of the budget
# (fraction of the budget, error rate spent): a strict look at half time stops clear cases early,
# the final look keeps most of alpha (Haybittle-Peto style); earlier looks would hold too few lanes.
LANE_LOOKS = ((0.5, ALPHA / 10), (1.0, ALPHA * 9 / 10))
# With stop_when_not_faster, looks at a quarter and three quarters may only stop a candidate whose
# interval (at FUTILITY_ALPHA) already rules out the minimum speedup; they spend no error rate.
FUTILITY_LOOKS = ((0.25, 0.0), (0.5, ALPHA / 10), (0.75, 0.0), (1.0, ALPHA * 9 / 10))
FUTILITY_ALPHA = ALPHA
WARMUP_RUNS = 1  # whole runs of each lane before it is measured: a fresh process's first run is slow
TARGET_STEP_S = 0.015  # slices sized for 10-20 ms of work
MIN_UNIT_S = 0.001  # a step this short on both sides times the protocol, not the engine
PROFILE_STEPS = 4000  # resolution of the probe run that places the slice boundaries
MAX_PADDING = 4096  # environment padding of a lane, in bytes: moves the stack anywhere within a page
LANE_LAYOUTS = ("paired", "fixed", "random")


class Stopped(Exception):
    """The decision is over: a lane still warming up is abandoned."""


class DifferentOutput(Exception):
    """The two versions finished a run with different digests."""

    def __init__(self, baseline: str, candidate: str) -> None:
        super().__init__(f"digests differ: baseline {baseline}, candidate {candidate}")
        self.baseline, self.candidate = baseline, candidate


class Lane:
    """One worker pair advancing one simulation in lockstep."""

    def __init__(self, baseline: Worker, candidate: Worker, boundaries: list[int], rng: random.Random,
                 closer=None) -> None:
        self.baseline, self.candidate = baseline, candidate
        self._closer = closer  # stops both workers (and reaps their zygote) when given
        self.boundaries = boundaries
        self.horizon_ns = boundaries[-1] if boundaries else 0
        self.rng = rng
        self.next_slice = 0
        self.now = 0
        self.built = False
        self.completed = 0  # runs finished
        self.runs = 0.0  # full runs advanced, counting the current one by its fraction
        self.seconds = [0.0, 0.0]  # CPU seconds spent by (baseline, candidate), warm-up included
        self.digests: tuple[str, str] | None = None
        self.ratios: list[float] = []  # measured log ratios (CPU), warm-up excluded
        self.measured_s = 0.0  # CPU seconds of the measured steps, both versions

    def record(self, baseline_s: float, candidate_s: float) -> None:
        """Count one measured pair."""
        self.ratios.append(math.log(candidate_s / baseline_s))
        self.measured_s += baseline_s + candidate_s

    def retired(self, lane_seconds: float) -> bool:
        """At the end of a measured run, with at least `lane_seconds` of timed CPU."""
        return not self.built and self.completed > WARMUP_RUNS and self.measured_s >= lane_seconds

    def pin(self, cpu: int) -> None:
        """Move both workers to one CPU."""
        self.baseline.pin(cpu)
        self.candidate.pin(cpu)

    def close(self) -> None:
        """Stop both workers."""
        if self._closer is not None:
            self._closer()
            return
        self.baseline.close()
        self.candidate.close()

    def step(self) -> tuple[dict, dict]:
        """Time the next step on both versions, in random order; return (baseline, candidate) replies."""
        if not self.built:
            request = {"op": "build"}
        elif self.next_slice < len(self.boundaries):
            request = {"op": "advance", "until": self.boundaries[self.next_slice]}
        else:
            request = {"op": "finish"}
        if self.rng.random() < 0.5:
            base = self.baseline.request(**request)
            cand = self.candidate.request(**request)
        else:
            cand = self.candidate.request(**request)
            base = self.baseline.request(**request)
        self._advance(request, base, cand)
        return base, cand

    def _advance(self, request: dict, base: dict, cand: dict) -> None:
        self.seconds[0] += base["seconds"]
        self.seconds[1] += cand["seconds"]
        if request["op"] == "build":
            self.built, self.now, self.next_slice = True, 0, 0
        elif request["op"] == "advance":
            self.runs += (request["until"] - self.now) / self.horizon_ns
            self.now = request["until"]
            self.next_slice += 1
        else:
            self.built = False
            self.completed += 1
            self.runs += 0 if self.horizon_ns else 1
            self.digests = (base["digest"], cand["digest"])
            if base["digest"] != cand["digest"]:
                raise DifferentOutput(base["digest"], cand["digest"])


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
    """Move this thread off the quietest CPU and yield that CPU for the workers; restore on exit."""
    original = os.sched_getaffinity(0)
    cpus = sorted(original)
    worker_cpu = quietest_cpu(cpus) if len(cpus) > 1 else cpus[0]
    if len(cpus) > 1:
        os.sched_setaffinity(0, original - {worker_cpu})
    try:
        yield worker_cpu
    finally:
        os.sched_setaffinity(0, original)


def compare_versions(
    baseline_root: Path | str,
    candidate_root: Path | str,
    instance: dict,
    *,
    max_seconds: float = 60,
    min_effect: float = 0.01,
    progress: Progress | None = None,
    engine: str = DEFAULT_ENGINE,
    lane_layout: str = "paired",
    stop_when_not_faster: bool = False,
) -> dict:
    """Decide whether the candidate's engine runs `instance` faster than the baseline's.

    `lane_layout`: "paired" (default): both workers of a lane are forked from one zygote with a
    fresh random layout (simopt.measure.zygote), so they share its placement and lanes differ;
    "fixed": every worker runs without ASLR, lanes differ only by a stack padding
    (simopt.measure.layout); "random": every worker gets its own random layout.
    `stop_when_not_faster`: for callers that keep only `faster` (the optimize loop): stop with
    `not-faster` at the first look whose interval rules out the minimum speedup.
    """
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    lane_seconds = LANE_SHARE * max_seconds
    looks = FUTILITY_LOOKS if stop_when_not_faster else LANE_LOOKS
    futility_alpha = FUTILITY_ALPHA if stop_when_not_faster else None
    wall_ratios: list[float] = []
    lanes: list[Lane] = []  # every lane measured so far, the active one last
    lane_medians: list[float] = []  # of retired lanes only: each covers the same amount of work
    lane_errors: list[float] = []  # standard error of each of them, from its own pairs
    lane_ends: list[float] = []  # seconds from the start at which each of them retired
    layouts: set[str] = set()  # "paired" / "fixed" / "randomized": how the workers were laid out
    if lane_layout not in LANE_LAYOUTS:
        raise ValueError(f"lane_layout(={lane_layout!r}) must be one of {', '.join(LANE_LAYOUTS)}")
    stopping = threading.Event()
    report = {
        "version": 1,
        "metric": "time",
        "min_effect": min_effect,
        "seed": seed,
        "lane_seconds": lane_seconds,
        "alpha": ALPHA,
        "looks": [list(look) for look in looks],
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="simopt-bench-") as scratch:
        instance_path = Path(scratch) / "instance.json"
        instance_path.write_text(json.dumps(instance), encoding="utf-8")
        worker_cpu = stack.enter_context(pinned_orchestrator())
        spare_cpu = bool(os.sched_getaffinity(0) - {worker_cpu})  # the orchestrator's CPUs, where lanes warm up
        timeout_s = max(60.0, float(max_seconds))
        executor = ThreadPoolExecutor(max_workers=1)
        pending: Future | None = None  # the next lane, warming up

        def start(root, role: str, hash_seed: int, cpu: int | None, padding: int) -> Worker:
            if stopping.is_set():
                raise Stopped
            environment = layout.lane_environment(padding) if lane_layout == "fixed" else None
            worker = Worker(Path(root), cpu=cpu, hash_seed=hash_seed, engine=engine, timeout_s=timeout_s, role=role,
                            environment=environment)
            stack.callback(worker.close)
            worker.request(op="load", path=str(instance_path))
            return worker

        def prepare_lane(boundaries: list[int], hash_seed: int, padding: int, lane_rng: random.Random) -> Lane:
            # cpu None: the workers inherit the orchestrator's CPUs, off the one being timed.
            cpu = None if spare_cpu else worker_cpu
            # One hash seed (and one layout) per lane, shared by its two workers: string hashing
            # (dict layouts) and placement are then paired away within a lane and still vary
            # across lanes.
            if lane_layout == "paired":
                if stopping.is_set():
                    raise Stopped
                pair = start_pair(Path(baseline_root), Path(candidate_root), cpu=cpu, hash_seed=hash_seed,
                                  engine=engine, timeout_s=timeout_s)
                stack.callback(pair.close)
                layouts.add("paired")
                for worker in (pair.baseline, pair.candidate):
                    worker.request(op="load", path=str(instance_path))
                lane = Lane(pair.baseline, pair.candidate, boundaries, lane_rng, closer=pair.close)
            else:
                baseline = start(baseline_root, "baseline", hash_seed, cpu, padding)
                lane = Lane(baseline, start(candidate_root, "candidate", hash_seed, cpu, padding), boundaries, lane_rng)
                layouts.update("randomized" if worker.randomized else "fixed" for worker in (lane.baseline, lane.candidate))
            while lane.completed < WARMUP_RUNS:
                if stopping.is_set():
                    raise Stopped
                lane.step()
            return lane

        def order_lane(boundaries: list[int]) -> Future:
            future = executor.submit(prepare_lane, boundaries, rng.randrange(2**32), rng.randrange(MAX_PADDING),
                                     random.Random(rng.randrange(2**32)))
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
                pending = order_lane(lane.boundaries)
            lane = lanes[-1]
            base, cand = lane.step()
            if max(base["seconds"], cand["seconds"]) < MIN_UNIT_S or min(base["seconds"], cand["seconds"]) <= 0:
                return None
            wall_ratios.append(math.log(cand["wall"] / base["wall"]))
            lane.record(base["seconds"], cand["seconds"])
            return base["seconds"], cand["seconds"]

        def judge(ratios: list[float], alpha: float, final: bool) -> Decision:
            return decide_lanes(lane_medians, pairs=len(ratios), min_effect=min_effect, alpha=alpha, final=final,
                                futility_alpha=futility_alpha)

        def confirm(verdict: str) -> bool:
            return verdict != "faster" or not wall_clock_disagrees(wall_ratios)

        try:
            # The probe runs in a worker of its own: an extra run in one lane worker would make
            # that side's process history differ from its partner's.
            probe = start(baseline_root, "baseline", rng.randrange(2**32), worker_cpu, rng.randrange(MAX_PADDING))
            boundaries = slice_boundaries(probe.request(op="profile", steps=PROFILE_STEPS)["marks"], instance["horizon_ns"])
            probe.close()
            pending = order_lane(boundaries)
            decision, ratios = run_sequential(
                next_pair, max_seconds=max_seconds, min_effect=min_effect, progress=progress, confirm=confirm,
                started=started, judge=judge, looks=looks,
            )
        except WorkerCrash as crash:
            if crash.role == "baseline":
                raise UserError(f"the baseline crashed: {crash.message.splitlines()[-1]}") from crash
            return {**report, "layout": layout_label(layouts), **_empty(lanes), "verdict": "crash", "error": crash.message,
                    "seconds": time.monotonic() - started}
        except DifferentOutput as different:
            return {**report, "layout": layout_label(layouts), **_empty(lanes), "verdict": "different-output",
                    "digest_baseline": different.baseline, "digest_candidate": different.candidate,
                    "seconds": time.monotonic() - started}
        finally:
            stopping.set()
            executor.shutdown(wait=True, cancel_futures=True)
    return {
        **report,
        "layout": layout_label(layouts),
        **_costs(lanes),
        "verdict": decision.verdict,
        "ratio": math.exp(decision.median) if decision.median is not None else None,
        "ci": [math.exp(bound) for bound in decision.ci] if decision.ci else None,
        "pairs": decision.pairs,
        "lanes": len(lane_medians),
        "confidence": decision.confidence,
        "pair_ratio": math.exp(median(ratios)) if ratios else None,
        "wall_ratio": math.exp(median(wall_ratios)) if wall_ratios else None,
        "lane_ratios": [math.exp(value) for value in lane_medians],
        "lane_errors": lane_errors,
        "lane_ends": lane_ends,
        "seconds": time.monotonic() - started,
    }


def layout_label(layouts: set[str]) -> str | None:
    """How the lanes' workers were laid out: "paired", "fixed", "randomized", "mixed", or None."""
    return ("mixed" if len(layouts) > 1 else next(iter(layouts))) if layouts else None


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
