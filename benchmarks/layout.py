"""Lane-to-lane spread under each lane layout (fixed, random), side by side.

    python3 benchmarks/layout.py [--scenario fattree] [--rounds 2] [--max-seconds 60]
                                 [--layouts fixed,random] [--case aa] [--case stretch]
                                 [--case PATCH.diff ...] [--out layout.jsonl]

Each round runs every case once per lane layout (`compare_versions(..., lane_layout=...)`),
alternating, so every setting sees the same load; every lane draws a freshly seeded instance of
the scenario, as `simopt bench` does. Cases: `aa` (an identical copy), `stretch`
(exactly 2% slower: benchmarks/calibrate.py's self-timed stretch), or a patch file applied to a
copy of the engine (`patch -p1`, e.g. simopt/agents/demo_patches/04-skip-idle-transmission-starts.diff).
Prints, per case and setting, the standard deviation of the lane medians next to the lanes' own
standard errors: a spread well above the latter is per-process luck, which is what a shared
layout removes. (`paired`, a zygote forking both versions' workers, is gone with the sandboxed
runners: each version has a runner of its own.)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from calibrate import copy_engine, copy_stretched, scenario_workload

from simopt.measure import compare_versions
from simopt.measure.paired import LANE_LAYOUTS
from simopt.scenario import default_repo


def candidate_for(case: str, base: Path, scratch: Path) -> Path:
    """The candidate root of one case."""
    if case == "aa":
        return copy_engine(base, scratch / "aa")
    if case == "stretch":
        return copy_stretched(base, scratch / "stretch", 1.02)
    patched = copy_engine(base, scratch / Path(case).stem)
    subprocess.run(["patch", "-p1", "-s", "-d", str(patched), "-i", str(Path(case).resolve())], check=True)
    return patched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--layouts", default=",".join(LANE_LAYOUTS),
                        help=f"comma-separated lane layouts, of {', '.join(LANE_LAYOUTS)} (default: both)")
    parser.add_argument("--case", action="append", dest="cases", help="aa, stretch or a patch file (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("layout.jsonl"))
    args = parser.parse_args()
    cases = args.cases or ["aa", "stretch"]
    layouts = args.layouts.split(",")
    unknown = [layout for layout in layouts if layout not in LANE_LAYOUTS]
    if unknown:
        parser.error(f"unknown lane layout {', '.join(unknown)} (choose from {', '.join(LANE_LAYOUTS)})")
    workload = scenario_workload(args.scenario)  # every lane a fresh seed of the scenario
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="simopt-layout-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = copy_engine(default_repo(), scratch / "base")
        candidates = {case: candidate_for(case, base, scratch) for case in cases}
        for round_index in range(args.rounds):
            for case in cases:
                for lane_layout in layouts:
                    result = compare_versions(base, candidates[case], workload, max_seconds=args.max_seconds,
                                              lane_layout=lane_layout)
                    setting = result["layout"] or lane_layout
                    rows.setdefault((case, setting), []).append(result)
                    with open(args.out, "a", encoding="utf-8") as out:
                        out.write(json.dumps({"case": case, **result}) + "\n")
                    print(f"{case} #{round_index + 1} {setting}: {result['verdict']} ratio {result['ratio'] or 0:.4f} "
                          f"lanes {result['lanes']}", file=sys.stderr)
    print("| case | layout | decisions | lanes | sd of lane medians | lanes' own standard error | ratio |")
    print("|---|---|---|---|---|---|---|")
    for (case, setting), results in rows.items():
        spreads = [statistics.stdev(math.log(r) for r in result["lane_ratios"]) for result in results
                   if len(result.get("lane_ratios") or ()) > 1]  # a crash or tamper result has none
        errors = [statistics.mean(result["lane_errors"]) for result in results if result.get("lane_errors")]
        lanes = ", ".join(str(result["lanes"]) for result in results)
        spread = ", ".join(f"{100 * value:.2f}%" for value in spreads)
        error = ", ".join(f"{100 * value:.2f}%" for value in errors)
        ratios = ", ".join(f"{result['ratio']:.4f}" for result in results if result["ratio"])
        print(f"| {Path(case).stem} | {setting} | {len(results)} | {lanes} | {spread} | {error} | {ratios} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
