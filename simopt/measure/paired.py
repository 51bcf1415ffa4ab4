"""Compare two versions of the engine on one instance: lockstep slices in pinned, warm workers.

Each lane is one fresh pair of workers (baseline, candidate) that build the same instance and
advance it through the same slices of simulated time, one version after the other in random
order; each step (build, a slice, the final result) is one pair of timings. Lanes take turns.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from simopt.engine import DEFAULT_ENGINE
from simopt.errors import UserError
from simopt.measure.client import Worker, WorkerCrash
from simopt.measure.sequential import Progress, run_sequential
from simopt.measure.stats import ALPHA, LOOKS, look_alpha, median, median_interval

WORKER_PAIRS = 3  # fresh lanes per decision: averages out per-process memory-layout luck
WARMUP_RUNS = 1  # whole runs of each lane timed but not counted: a fresh process's first run is slow
TARGET_STEP_S = 0.015  # slices sized for 10-20 ms of work
MIN_UNIT_S = 0.001  # a step this short on both sides times the protocol, not the engine
PROFILE_STEPS = 4000  # resolution of the probe run that places the slice boundaries


class DifferentOutput(Exception):
    """The two versions finished a run with different digests."""

    def __init__(self, baseline: str, candidate: str) -> None:
        super().__init__(f"digests differ: baseline {baseline}, candidate {candidate}")
        self.baseline, self.candidate = baseline, candidate


class Lane:
    """One worker pair advancing one simulation in lockstep."""

    def __init__(self, baseline: Worker, candidate: Worker, boundaries: list[int], rng: random.Random) -> None:
        self.baseline, self.candidate = baseline, candidate
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
) -> dict:
    """Decide whether the candidate's engine runs `instance` faster than the baseline's."""
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    wall_ratios: list[float] = []
    lane_ratios: dict[int, list[float]] = {}
    lanes: list[Lane] = []
    report = {
        "version": 1,
        "metric": "time",
        "min_effect": min_effect,
        "seed": seed,
        "worker_pairs": WORKER_PAIRS,
        "alpha": ALPHA,
        "looks": LOOKS,
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="simopt-bench-") as scratch:
        instance_path = Path(scratch) / "instance.json"
        instance_path.write_text(json.dumps(instance), encoding="utf-8")
        worker_cpu = stack.enter_context(pinned_orchestrator())
        timeout_s = max(60.0, float(max_seconds))

        def start(root, role: str, hash_seed: int) -> Worker:
            worker = Worker(Path(root), cpu=worker_cpu, hash_seed=hash_seed, engine=engine, timeout_s=timeout_s, role=role)
            stack.callback(worker.close)
            worker.request(op="load", path=str(instance_path))
            return worker

        turn = itertools.count()

        def next_pair() -> tuple[float, float] | None:
            index = next(turn) % len(lanes)
            lane = lanes[index]
            warming_up = lane.completed < WARMUP_RUNS
            base, cand = lane.step()
            if warming_up or max(base["seconds"], cand["seconds"]) < MIN_UNIT_S:
                return None
            if min(base["seconds"], cand["seconds"]) <= 0:
                return None
            wall_ratios.append(math.log(cand["wall"] / base["wall"]))
            lane_ratios.setdefault(index, []).append(math.log(cand["seconds"] / base["seconds"]))
            return base["seconds"], cand["seconds"]

        def confirm(verdict: str) -> bool:
            return lanes_agree(verdict, list(lane_ratios.values()), len(lanes)) and (
                verdict != "faster" or not wall_clock_disagrees(wall_ratios)
            )

        try:
            # The probe runs in a worker of its own: an extra run in one lane worker would make
            # that side's process history differ from its partner's.
            probe = start(baseline_root, "baseline", rng.randrange(2**32))
            boundaries = slice_boundaries(probe.request(op="profile", steps=PROFILE_STEPS)["marks"], instance["horizon_ns"])
            probe.close()
            for _ in range(WORKER_PAIRS):
                # One hash seed per lane, shared by its two workers: string hashing (dict layouts)
                # is then paired away within a lane and still varies across lanes.
                hash_seed = rng.randrange(2**32)
                baseline = start(baseline_root, "baseline", hash_seed)
                lanes.append(Lane(baseline, start(candidate_root, "candidate", hash_seed), boundaries, rng))
            decision, _ = run_sequential(
                next_pair, max_seconds=max_seconds, min_effect=min_effect, progress=progress, confirm=confirm,
                started=started,
            )
        except WorkerCrash as crash:
            if crash.role == "baseline":
                raise UserError(f"the baseline crashed: {crash.message.splitlines()[-1]}") from crash
            return {**report, **_empty(lanes), "verdict": "crash", "error": crash.message,
                    "seconds": time.monotonic() - started}
        except DifferentOutput as different:
            return {**report, **_empty(lanes), "verdict": "different-output",
                    "digest_baseline": different.baseline, "digest_candidate": different.candidate,
                    "seconds": time.monotonic() - started}
    return {
        **report,
        **_costs(lanes),
        "verdict": decision.verdict,
        "ratio": math.exp(decision.median) if decision.median is not None else None,
        "ci": [math.exp(bound) for bound in decision.ci] if decision.ci else None,
        "pairs": decision.pairs,
        "confidence": decision.confidence,
        "wall_ratio": math.exp(median(wall_ratios)) if wall_ratios else None,
        "lane_ratios": [math.exp(median(ratios)) for ratios in lane_ratios.values()],
        "seconds": time.monotonic() - started,
    }


def lanes_agree(verdict: str, lane_ratios: list[list[float]], lane_count: int) -> bool:
    """Every lane measured, and every lane's median log ratio on the verdict's side of zero.

    Per-process luck (memory layout) shifts a whole lane; pooled pairs hide it, lanes show it.
    """
    if len(lane_ratios) < lane_count or not all(lane_ratios):
        return False
    sign = -1 if verdict == "faster" else 1
    return all(sign * median(ratios) > 0 for ratios in lane_ratios)


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
    return {**_costs(lanes), "ratio": None, "ci": None, "pairs": 0, "confidence": None, "wall_ratio": None}
