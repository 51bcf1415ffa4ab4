"""Lane-to-lane spread under each lane layout (paired, fixed, random), side by side.

    python3 benchmarks/layout.py [--scenario fattree] [--rounds 2] [--max-seconds 60]
                                 [--layouts paired,random] [--case aa] [--case stretch]
                                 [--case PATCH.diff ...] [--out layout.jsonl]

Each round runs every case once per lane layout (`compare_versions(..., lane_layout=...)`),
alternating, so every setting sees the same load. Cases: `aa` (an identical copy), `stretch`
(exactly 2% slower: benchmarks/calibrate.py's self-timed stretch), or a patch file applied to a
copy of the engine (`patch -p1`, e.g. simopt/agents/demo_patches/04-skip-idle-transmission-starts.diff).
Prints, per case and setting, the standard deviation of the lane medians next to the lanes' own
standard errors: a spread well above the latter is per-process luck, which is what a shared
layout removes.
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

from calibrate import copy_engine, stretch

from simopt.measure import compare_versions
from simopt.scenario import build_instance, default_repo, load_scenario


def candidate_for(case: str, base: Path, scratch: Path) -> Path:
    """The candidate root of one case."""
    if case == "aa":
        return copy_engine(base, scratch / "aa")
    if case == "stretch":
        return copy_engine(base, scratch / "stretch", stretch(1.02))
    patched = copy_engine(base, scratch / Path(case).stem)
    subprocess.run(["patch", "-p1", "-s", "-d", str(patched), "-i", str(Path(case).resolve())], check=True)
    return patched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--layouts", default="paired,random", help="comma-separated lane layouts")
    parser.add_argument("--case", action="append", dest="cases", help="aa, stretch or a patch file (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("layout.jsonl"))
    args = parser.parse_args()
    cases = args.cases or ["aa", "stretch"]
    instance = build_instance(load_scenario(args.scenario))
    rows: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="simopt-layout-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = copy_engine(default_repo(), scratch / "base")
        candidates = {case: candidate_for(case, base, scratch) for case in cases}
        for round_index in range(args.rounds):
            for case in cases:
                for lane_layout in args.layouts.split(","):
                    result = compare_versions(base, candidates[case], instance, max_seconds=args.max_seconds,
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
                   if len(result["lane_ratios"]) > 1]
        errors = [statistics.mean(result["lane_errors"]) for result in results if result["lane_errors"]]
        lanes = ", ".join(str(result["lanes"]) for result in results)
        spread = ", ".join(f"{100 * value:.2f}%" for value in spreads)
        error = ", ".join(f"{100 * value:.2f}%" for value in errors)
        ratios = ", ".join(f"{result['ratio']:.4f}" for result in results if result["ratio"])
        print(f"| {Path(case).stem} | {setting} | {len(results)} | {lanes} | {spread} | {error} | {ratios} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
