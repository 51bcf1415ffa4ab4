"""Replay recorded bench decisions with and without the early `not-faster` stop.

    python3 benchmarks/futility.py benchmarks/calibrate_run5.jsonl [...]

Every decision recorded by benchmarks/calibrate.py (from run 5 on: it needs `lane_ends`) holds
each lane's median and the second it retired, which is all a look sees. So the looks can be
replayed (exactly for the last look; an earlier look may differ by a lane that retired in the one
step between the look's time and the look): first the plain looks (which must reproduce the recorded verdict: a check of
the replay), then the looks of `compare_versions(..., stop_when_not_faster=True)`, the optimize
loop's setting. Prints per case how many decisions stop early, when, and whether any `faster`
verdict would have been lost.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from simopt.measure.paired import FUTILITY_ALPHA, FUTILITY_LOOKS, LANE_LOOKS, LANE_SHARE
from simopt.measure.stats import decide_lanes


def replay(record: dict, looks, futility_alpha: float | None) -> tuple[str, float]:
    """(verdict, second of the look that gave it) for one recorded decision."""
    budget = record["lane_seconds"] / LANE_SHARE
    medians = [math.log(ratio) for ratio in record["lane_ratios"]]
    for index, (fraction, alpha) in enumerate(looks):
        at = fraction * budget
        final = index == len(looks) - 1
        # The last look saw every recorded lane; an earlier one, the lanes retired by its time
        # (a lane that retired in the one step between the look's time and the look is missed).
        retired = medians if final else [m for m, end in zip(medians, record["lane_ends"]) if end <= at]
        decision = decide_lanes(retired, pairs=record["pairs"], min_effect=record["min_effect"], alpha=alpha,
                                final=final, futility_alpha=futility_alpha)
        if decision.verdict is not None:
            return decision.verdict, at
    raise AssertionError("the final look always gives a verdict")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    args = parser.parse_args()
    rows: dict[str, list[tuple[dict, tuple, tuple]]] = defaultdict(list)
    mismatches = 0
    for log in args.logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "lane_ends" not in record or record.get("verdict") in ("crash", "different-output"):
                continue
            plain = replay(record, LANE_LOOKS, None)
            if plain[0] != record["verdict"]:
                mismatches += 1
                print(f"replay differs: {record['case']} recorded {record['verdict']}, replayed {plain[0]}",
                      file=sys.stderr)
            rows[record["case"]].append((record, plain, replay(record, FUTILITY_LOOKS, FUTILITY_ALPHA)))
    print("| case | decisions | stopped early as not-faster | faster lost | median s, plain | median s, with the stop |")
    print("|---|---|---|---|---|---|")
    for case, decisions in rows.items():
        early = sum(futile[0] == "not-faster" for _, _, futile in decisions)
        lost = sum(plain[0] == "faster" and futile[0] != "faster" for _, plain, futile in decisions)
        plain_s = statistics.median(plain[1] for _, plain, _ in decisions)
        futile_s = statistics.median(futile[1] for _, _, futile in decisions)
        print(f"| {case} | {len(decisions)} | {early} | {lost} | {plain_s:.0f} | {futile_s:.0f} |")
    print(f"\nreplayed plain verdicts differing from the recorded ones: {mismatches}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
