"""Run every scenario N times on a version of netsim; print median wall time and packet-hops/s.

    python3 benchmarks/scenarios.py [--runs 3] [--repo DIR] [SCENARIO ...]

Each scenario's instance is built once; only `simulate` is timed (wall and CPU), with a
garbage collection before every run. One warm-up run per scenario is discarded. Single runs on
a shared machine vary by ~20%: these are orientation figures, not a comparison (that is
`simopt bench`).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

from simopt.engine import load_engine
from simopt.scenario import available_scenarios, build_instance, default_repo, load_scenario


def time_scenario(engine, instance: dict, runs: int) -> dict:
    """Median wall and CPU seconds of `runs` timed simulations, after one discarded warm-up."""
    engine.simulate(instance)
    walls, cpus = [], []
    for _ in range(runs):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = engine.simulate(instance)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    wall_s = statistics.median(walls)
    return {
        "wall_s": wall_s,
        "wall_min_s": min(walls),
        "cpu_s": statistics.median(cpus),
        "events": result["events"],
        "packet_hops": result["packet_hops"],
        "packet_hops_per_s": result["packet_hops"] / wall_s,
        "digest": result["digest"],
    }


def format_rows(rows: list[tuple[str, dict]], runs: int) -> list[str]:
    """A plain-text table, one line per scenario."""
    header = f"{'scenario':<18} {'events':>9} {'pkt-hops':>9} {'wall s (med)':>12} {'wall s (min)':>12} {'cpu s (med)':>11} {'pkt-hops/s':>11}  digest"
    lines = [f"{runs} timed runs each (median), after one warm-up", header, "-" * len(header)]
    for name, row in rows:
        lines.append(
            f"{name:<18} {row['events']:>9,} {row['packet_hops']:>9,} {row['wall_s']:>12.3f} {row['wall_min_s']:>12.3f}"
            f" {row['cpu_s']:>11.3f} {row['packet_hops_per_s']:>11,.0f}  {row['digest'][:12]}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario (default 3)")
    parser.add_argument("--repo", type=Path, default=default_repo(), help="the checkout whose engine and scenarios to use")
    args = parser.parse_args(argv)
    engine = load_engine(args.repo)
    rows = []
    for name in args.scenarios or available_scenarios(args.repo):
        instance = build_instance(load_scenario(name, repo=args.repo))
        rows.append((name, time_scenario(engine, instance, args.runs)))
    print("\n".join(format_rows(rows, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
