"""Compare two versions of a generic target through its benchmark shell command.

Whole process runs alternate, in random order within each pair, each in its version's root and
pinned to the workers' CPU. The metric is the wall time of a run, or the value of the last
`METRIC name=value` line the command prints (lower is better). Same statistics as scenarios;
whole processes are noisier, hence a larger default minimum effect.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import time
from pathlib import Path

from simopt.errors import UserError
from simopt.measure.paired import pinned_orchestrator
from simopt.measure.sequential import Progress, run_sequential
from simopt.measure.stats import ALPHA, LOOKS, median

COMMAND_MIN_EFFECT = 0.03
WARMUP_PAIRS = 1  # the first runs warm the disk cache and the interpreter's bytecode cache
TAIL_LINES = 12
METRIC_LINE = re.compile(r"^METRIC\s+([A-Za-z0-9_.-]+)=(\S+)\s*$", re.MULTILINE)


class RunFailed(Exception):
    """One run of the command failed: non-zero exit, timeout, or no usable metric."""

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.message, self.role = message, role


def parse_metric(output: str) -> tuple[str, float] | None:
    """The last `METRIC name=value` line of the output, or None."""
    matches = METRIC_LINE.findall(output)
    if not matches:
        return None
    name, value = matches[-1]
    try:
        return name, float(value)
    except ValueError:
        return None


def run_once(command: str, root: Path, *, cpu: int, timeout_s: float, role: str) -> tuple[str, float]:
    """Run the command once in `root`; return its metric as (name, value), wall time when it prints none."""
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, shell=True, cwd=root, capture_output=True, text=True, timeout=timeout_s,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )
    except subprocess.TimeoutExpired:
        raise RunFailed(f"the bench command timed out after {timeout_s:g} s in {root}", role) from None
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        lines = (completed.stderr + completed.stdout).splitlines()[-TAIL_LINES:]
        raise RunFailed("\n".join([f"the bench command exited with code {completed.returncode}", *lines]), role)
    metric = parse_metric(completed.stdout)
    if metric is None:
        return "wall_s", wall
    if not metric[1] > 0:
        raise RunFailed(f"METRIC {metric[0]}={metric[1]:g}: a metric must be > 0 (lower is better)", role)
    return metric


def compare_commands(
    command: str,
    baseline_root: Path | str,
    candidate_root: Path | str,
    *,
    max_seconds: float = 120,
    min_effect: float = COMMAND_MIN_EFFECT,
    timeout_s: float | None = None,
    progress: Progress | None = None,
) -> dict:
    """Decide whether `command` runs faster (or reports a lower METRIC) in the candidate's root."""
    started = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    roots = {"baseline": Path(baseline_root), "candidate": Path(candidate_root)}
    timeout_s = timeout_s or max(float(max_seconds), 10.0)
    values: dict[str, list[float]] = {"baseline": [], "candidate": []}
    names: set[str] = set()
    pair_count = 0
    report = {"version": 1, "command": command, "min_effect": min_effect, "seed": seed, "alpha": ALPHA,
              "looks": LOOKS, "digest_baseline": None, "digest_candidate": None}
    with pinned_orchestrator() as cpu:

        def next_pair() -> tuple[float, float] | None:
            nonlocal pair_count
            order = ["baseline", "candidate"]
            rng.shuffle(order)
            measured = {}
            for role in order:
                name, value = run_once(command, roots[role], cpu=cpu, timeout_s=timeout_s, role=role)
                measured[role] = value
                names.add(name)
            if len(names) > 1:
                raise RunFailed(f"the two versions report different metrics: {', '.join(sorted(names))}", "candidate")
            pair_count += 1
            if pair_count <= WARMUP_PAIRS:
                return None
            for role, value in measured.items():
                values[role].append(value)
            return measured["baseline"], measured["candidate"]

        try:
            decision, _ = run_sequential(
                next_pair, max_seconds=max_seconds, min_effect=min_effect, progress=progress, started=started
            )
        except RunFailed as failure:
            if failure.role == "baseline":
                raise UserError(f"the baseline's bench command failed: {failure.message.splitlines()[0]}") from failure
            return {**report, "metric": next(iter(names), None), "verdict": "crash", "error": failure.message,
                    "ratio": None, "ci": None, "pairs": len(values["candidate"]), "confidence": None,
                    "baseline_s": None, "candidate_s": None, "seconds": time.monotonic() - started}
    return {
        **report,
        "metric": names.pop(),
        "verdict": decision.verdict,
        "ratio": math.exp(decision.median) if decision.median is not None else None,
        "ci": [math.exp(bound) for bound in decision.ci] if decision.ci else None,
        "pairs": decision.pairs,
        "confidence": decision.confidence,
        "baseline_s": median(values["baseline"]) if values["baseline"] else None,
        "candidate_s": median(values["candidate"]) if values["candidate"] else None,
        "seconds": time.monotonic() - started,
    }
