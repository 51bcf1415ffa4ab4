"""Measure the size of calibrate.py's injected change on its own, outside the bench.

    python3 benchmarks/calibrate_size.py --iterations 3 [--pairs 60] [--scenario fattree]

One process loads the current netsim and a copy with `--iterations` extra loop iterations per
event (calibrate.py's EXTRA_WORK), then times whole runs of both, alternating in random order,
each after a gc.collect(). Prints the per-event and per-iteration costs, the iteration count
calibrate.py's formula picks for 2% and 5% on this machine now, and the median ratio of the
pairs with a sign-test 95% interval.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from calibrate import EXTRA_WORK, copy_engine, median_cpu

from simopt.engine import load_engine
from simopt.measure.stats import median, median_interval
from simopt.scenario import build_instance, default_repo, load_scenario


def run_cpu(engine, instance: dict) -> float:
    """CPU seconds of one whole run, after a gc.collect()."""
    gc.collect()
    started = time.process_time()
    engine.simulate(instance)
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--scenario", default="fattree")
    args = parser.parse_args()

    instance = build_instance(load_scenario(args.scenario))
    scratch = Path(tempfile.mkdtemp(prefix="simopt-size-"))
    base = copy_engine(default_repo(), scratch / "base")
    plain = load_engine(base, name="size_plain")
    slowed = load_engine(copy_engine(base, scratch / "slowed", EXTRA_WORK.format(iterations=args.iterations)),
                         name="size_slowed")
    events = plain.simulate(instance)["events"]
    per_event = median_cpu(lambda: plain.simulate(instance), 5) / events

    def loop() -> None:
        for _ in range(1_000_000):
            pass

    per_iteration = median_cpu(loop, 5) / 1_000_000
    picks = {effect: max(1, round(effect * per_event / per_iteration)) for effect in (0.02, 0.05)}
    rng = random.Random(0)
    ratios = []
    for _ in range(args.pairs):
        times = {}
        for engine in rng.sample([plain, slowed], 2):
            times[engine.__name__] = run_cpu(engine, instance)
        ratios.append(math.log(times["size_slowed"] / times["size_plain"]))
    low, high = median_interval(ratios, 0.05)
    print(f"per event {per_event * 1e6:.3f} us, per iteration {per_iteration * 1e9:.1f} ns, "
          f"formula picks {picks[0.02]} iterations for 2%, {picks[0.05]} for 5%")
    print(f"iterations {args.iterations}: ratio {math.exp(median(ratios)):.4f} "
          f"(95% CI {math.exp(low):.4f} .. {math.exp(high):.4f}) over {args.pairs} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
