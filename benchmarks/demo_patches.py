"""Measure the demo patch queue: each patch against the version before it, side by side.

    python3 benchmarks/demo_patches.py [--scenario fattree] [--runs 9]

The committed tree (git archive HEAD) is unpacked into a temporary folder; the patches are
applied in queue order, each to a copy of the current baseline. Both versions are loaded in
this process under their own module names and run the scenario alternately (random order
within each pair, gc between runs, CPU time of the run after the build); the ratio is the median of the per-pair time ratios
(patched / baseline, below 1 is faster), with the smallest and largest pair ratio beside it,
and the ratio of the two fastest runs (robust when other jobs share the machine). The process
is pinned to one CPU.
A patch whose header says `Expect: keep` becomes the baseline of the next ones, as in a session
where it is kept. Last, the final version is timed against the original.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simopt.agents.demo import DEMO_PATCHES  # noqa: E402
from simopt.agents.patches import PatchDoesNotApply, apply_patch, patch_queue  # noqa: E402
from simopt.agents.patches import parse_header  # noqa: E402
from simopt.engine import load_engine  # noqa: E402
from simopt.scenario import build_instance, load_scenario  # noqa: E402


def expectation(patch: Path) -> str:
    """The `Expect:` header of a demo patch (what a session should decide), or '?'."""
    return parse_header(patch.read_text(encoding="utf-8")).expect or "?"


def unpack_head(repo: Path, into: Path) -> Path:
    """The committed tree of `repo`, unpacked into `into`."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=repo, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def timed_run(engine: ModuleType, instance: dict) -> tuple[float, str]:
    simulation = engine.Simulation(instance)  # not timed: the loop's bench weighs the build as one
    gc.collect()                              # step among dozens of slices, so it barely counts
    started = time.process_time()  # CPU time: less disturbed than wall time on a shared box
    digest = simulation.result()["digest"]
    return time.process_time() - started, digest


def compare(baseline: ModuleType, candidate: ModuleType, instance: dict, runs: int) -> dict:
    """Alternate the two engines `runs` times; per-pair ratios and both digests."""
    timed_run(baseline, instance)  # warm-up, discarded
    timed_run(candidate, instance)
    ratios, digests = [], set()
    best = {"base": float("inf"), "cand": float("inf")}
    for _ in range(runs):
        order = [("base", baseline), ("cand", candidate)]
        random.shuffle(order)
        times = {}
        for label, engine in order:
            times[label], digest = timed_run(engine, instance)
            digests.add((label, digest))
            best[label] = min(best[label], times[label])
        ratios.append(times["cand"] / times["base"])
    return {
        "ratio": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "best_ratio": best["cand"] / best["base"],
        "same_digest": len({digest for _, digest in digests}) == 1,
    }


def describe(result: dict) -> str:
    speedup = (1 / result["ratio"] - 1) * 100
    digest = "digest same" if result["same_digest"] else "DIGEST DIFFERS"
    return (f"ratio {result['ratio']:.3f} [{result['low']:.3f}..{result['high']:.3f}]  "
            f"speedup {speedup:+.1f}%  best-of ratio {result['best_ratio']:.3f}  {digest}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree", help="scenario name or path (default fattree)")
    parser.add_argument("--runs", type=int, default=9, help="timed pairs per patch (default 9)")
    parser.add_argument("--queue", type=Path, default=DEMO_PATCHES, help="patch folder (default: the demo queue)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # both versions share one CPU's noise

    instance = build_instance(load_scenario(args.scenario, repo=REPO))
    print(f"scenario {args.scenario}: {len(instance['nodes'])} nodes, {len(instance['flows'])} flows, "
          f"{args.runs} pairs per patch")
    with tempfile.TemporaryDirectory(prefix="simopt-demo-bench-") as scratch:
        original_root = unpack_head(REPO, Path(scratch) / "v0")
        original = load_engine(original_root, name="netsim_bench_v0")
        baseline_root, baseline = original_root, original
        for index, patch in enumerate(patch_queue(args.queue), start=1):
            expected = expectation(patch)
            candidate_root = Path(scratch) / f"v{index}"
            shutil.copytree(baseline_root, candidate_root)
            try:
                apply_patch(patch, candidate_root)
                candidate = load_engine(candidate_root, name=f"netsim_bench_v{index}")
                outcome = describe(compare(baseline, candidate, instance, args.runs))
            except PatchDoesNotApply as error:
                print(f"{patch.name:<36} expect {expected:<17} DOES NOT APPLY: {error}")
                continue
            except Exception as error:  # the crash patch is expected to land here
                outcome = f"crashed: {type(error).__name__}: {error}"
            print(f"{patch.name:<36} expect {expected:<17} {outcome}", flush=True)
            if expected == "keep":
                baseline_root, baseline = candidate_root, candidate
        if baseline is not original:
            print(f"{'all kept patches vs original':<36} {'':<24} {describe(compare(original, baseline, instance, args.runs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
