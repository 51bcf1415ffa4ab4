"""Per-iteration METRIC timing against whole-process timing, side by side in one run.

    python3 benchmarks/command_precision.py --repo R --baseline main --candidate fast [--lanes 12]

R is a command target whose bench prints one `METRIC` line of CPU time per iteration (the Ciw
repository that benchmarks/own_repo.py builds, with --workdir to keep it). Lanes of three kinds
take turns, so the machine's load falls on all of them alike:

- sequential lanes (the two versions' runs one after the other), read two ways: the runs' wall
  times (whole-process timing, what command targets used before) and their METRIC lines paired
  per iteration;
- interleaved lanes (`bench_clock = "cpu"`: both runs at once on one CPU), per iteration.

For an A/A (the baseline against itself) and the A/B comparison it prints each reading's lane
estimate, its 95% Yuen interval (the final look's error rate), the half-width, the lane spread,
and how many lanes the whole-process reading would need to match each per-iteration one.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from contextlib import ExitStack
from pathlib import Path

from simopt.command_target import CommandEvaluator
from simopt.measure.command import LANE_LOOKS, Lanes, lane_interval
from simopt.measure.paired import pinned_orchestrator
from simopt.measure.versions import materialize
from simopt.target import load_target

FINAL_ALPHA = LANE_LOOKS[-1][1]


def measure(evaluator: CommandEvaluator, baseline: Path, candidate: Path, lanes: int) -> dict[str, list[float]]:
    """The lane values of each reading, lanes of the two kinds taking turns."""
    roots = {"baseline": baseline, "candidate": candidate}
    with pinned_orchestrator() as cpu:
        kinds = {interleave: Lanes(evaluator.target.bench, roots, cpu=cpu, timeout_s=600,
                                    runner=evaluator._bench_runner, rng=random.Random(), interleave=interleave)
                 for interleave in (False, True)}
        for lane in range(lanes + 1):  # + the warm-up lane of each kind
            for interleave in ((False, True) if lane % 2 else (True, False)):
                kinds[interleave].next()
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return {"whole process, sequential (wall)": kinds[False].process_values,
            "per iteration, sequential": kinds[False].values,
            "per iteration, interleaved": kinds[True].values}


def report(name: str, readings: dict[str, list[float]]) -> list[str]:
    lines = [f"{name}:", f"  {'reading':<34} {'ratio':>7} {'95% interval':>18} {'half-width':>10} {'lane sd':>8} "
                         f"{'lanes for whole-process':>24}"]
    widths = {}
    for reading, values in readings.items():
        center, ci = lane_interval(values, FINAL_ALPHA)
        sd = math.sqrt(sum((v - sum(values) / len(values)) ** 2 for v in values) / (len(values) - 1))
        widths[reading] = (ci[1] - ci[0]) / 2 if ci else None
        interval = f"[{math.exp(ci[0]):.4f}, {math.exp(ci[1]):.4f}]" if ci else "n/a"
        lines.append(f"  {reading:<34} {math.exp(center):>7.4f} {interval:>18} "
                     f"{(widths[reading] or 0):>10.2%} {sd:>8.2%}")
    whole = widths["whole process, sequential (wall)"]
    for reading, width in widths.items():
        if reading.startswith("per iteration") and whole and width:
            lines.append(f"  whole-process timing needs ~{(whole / width) ** 2:.0f}x the lanes of '{reading}' "
                         f"for the same interval ({whole / width:.1f}x wider)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--baseline", required=True, metavar="REV")
    parser.add_argument("--candidate", required=True, metavar="REV")
    parser.add_argument("--lanes", type=int, default=12, help="measured lanes of each kind per comparison (default 12)")
    args = parser.parse_args()
    target = load_target(args.repo)
    evaluator = CommandEvaluator(target)
    lines = [f"repo {target.root}, bench {target.bench!r}, {args.lanes} lanes of each kind per comparison"]
    with ExitStack() as stack:
        baseline = stack.enter_context(materialize(args.baseline, repo_dir=target.root, engine=None))
        candidate = stack.enter_context(materialize(args.candidate, repo_dir=target.root, engine=None))
        copy = stack.enter_context(materialize(args.baseline, repo_dir=target.root, engine=None))
        lines += report(f"A/A ({args.baseline} against a second checkout of itself)",
                        measure(evaluator, baseline, copy, args.lanes))
        lines += report(f"A/B ({args.baseline} against {args.candidate})", measure(evaluator, baseline, candidate, args.lanes))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
