"""Calibrate the bench decision on this machine: false verdicts, detection rates, decision time.

    python3 benchmarks/calibrate.py [--scenario fattree] [--aa 20] [--hook 5] [--changes 10]
                                    [--large-changes 5] [--size-pairs 40] [--max-seconds 60]
                                    [--out calibration.jsonl]

Cases, each a fresh copy of the current netsim (so edits to the checkout cannot leak in):
  A/A       the engine against an identical copy: any faster/slower verdict is a false one;
  hook      the candidate installs a no-op sys.setprofile hook: must be `slower` every time;
  +2%/-2%,  +5%/-5%: the candidate (or, for -, the baseline) burns a calibrated amount of extra
            work per event processed, its size measured on its own (in-process alternating whole
            runs, a size check) before the decisions start.
Cases run round-robin so a busy period on the shared machine does not hit one case only.
Prints a Markdown table; every decision is appended as one JSON line to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from simopt.engine import load_engine
from simopt.measure import compare_versions
from simopt.scenario import build_instance, default_repo, load_scenario

HOOK = "\nimport sys as _sys\n_sys.setprofile(lambda *args: None)\n"
EXTRA_WORK = """
_EXTRA_PER_EVENT = {iterations}
_plain_run = Simulation.run


def _run_with_extra_work(self, until_ns):
    before = self.events
    _plain_run(self, until_ns)
    for _ in range((self.events - before) * _EXTRA_PER_EVENT):
        pass


Simulation.run = _run_with_extra_work
"""


def copy_engine(source: Path, destination: Path, append: str = "") -> Path:
    """A version root holding a copy of the engine at `source`, with `append` added to its package."""
    package = destination / "simopt" / "netsim"
    shutil.copytree(source / "simopt" / "netsim", package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(package / "__init__.py", "a", encoding="utf-8") as init:
        init.write(append)
    return destination


def median_cpu(action, repeats: int) -> float:
    """Median CPU seconds of `repeats` calls of `action`."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return statistics.median(times)


def size_check(base_engine, slowed_engine, instance: dict, pairs: int) -> float:
    """The slowdown of `slowed_engine` measured on its own: in-process whole runs, alternating in
    random order, median of the per-pair CPU time ratios."""
    rng = random.Random(0)
    ratios = []
    for _ in range(pairs):
        times = {}
        for engine in rng.sample([base_engine, slowed_engine], 2):
            times[engine] = median_cpu(lambda: engine.simulate(instance), 1)
        ratios.append(math.log(times[slowed_engine] / times[base_engine]))
    return math.exp(statistics.median(ratios))


def extra_work_copy(base: Path, scratch: Path, instance: dict, effect: float, pairs: int) -> tuple[Path, float]:
    """A copy of the engine slower by about `effect`: extra loop iterations after every event.

    The count comes from in-process medians of the CPU time per event and per loop iteration
    (one iteration is about 0.6% of an event on fattree, so sizes come in steps of that); a size
    check of `pairs` run pairs then measures the size the copy really has. Returns the copy and
    that measured ratio.
    """
    engine = load_engine(base, name="calibration_base")
    events = engine.simulate(instance)["events"]
    per_event = median_cpu(lambda: engine.simulate(instance), 5) / events

    def loop() -> None:
        for _ in range(1_000_000):
            pass

    per_iteration = median_cpu(loop, 5) / 1_000_000
    iterations = max(1, round(effect * per_event / per_iteration))
    slowed = copy_engine(base, scratch / f"extra-{effect:g}", EXTRA_WORK.format(iterations=iterations))
    name = f"calibration_extra_{effect:g}".replace(".", "_")
    return slowed, size_check(engine, load_engine(slowed, name=name), instance, pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--aa", type=int, default=20, help="A/A decisions")
    parser.add_argument("--hook", type=int, default=5, help="injected sys.setprofile decisions")
    parser.add_argument("--changes", type=int, default=10, help="decisions per direction of the 2%% change")
    parser.add_argument("--large-changes", type=int, default=5, help="decisions per direction of the 5%% change")
    parser.add_argument("--size-pairs", type=int, default=40, help="in-process run pairs of each size check")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--min-effect", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("calibration.jsonl"))
    args = parser.parse_args()

    instance = build_instance(load_scenario(args.scenario))
    with tempfile.TemporaryDirectory(prefix="simopt-calibrate-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = copy_engine(default_repo(), scratch / "base")
        cases = [("A/A", base, copy_engine(base, scratch / "same"), args.aa, ("same", "inconclusive")),
                 ("hook", base, copy_engine(base, scratch / "hook", HOOK), args.hook, ("slower",))]
        for effect, count in ((0.02, args.changes), (0.05, args.large_changes)):
            if not count:
                continue
            slowed, measured = extra_work_copy(base, scratch, instance, effect, args.size_pairs)
            print(f"extra work for {effect:.0%}: size check measured ratio {measured:.4f}", file=sys.stderr)
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps({"case": f"size check {effect:.0%}", "ratio": measured,
                                      "pairs": args.size_pairs}) + "\n")
            cases.append((f"+{effect:.0%} slower", base, slowed, count, ("slower",)))
            cases.append((f"-{effect:.0%} faster", slowed, base, count, ("faster",)))
        results: dict[str, list[dict]] = {name: [] for name, *_ in cases}
        for round_index in range(max(count for *_, count, _ in cases)):
            for name, baseline, candidate, count, _ in cases:
                if round_index >= count:
                    continue
                result = compare_versions(baseline, candidate, instance, max_seconds=args.max_seconds,
                                          min_effect=args.min_effect)
                results[name].append(result)
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps({"case": name, **result}) + "\n")
                print(f"{name:>12} #{round_index + 1}: {result['verdict']:<12} ratio {result['ratio'] or 0:.4f} "
                      f"pairs {result['pairs']:>5} lanes {result.get('lanes', 0):>3} {result['seconds']:5.1f} s",
                      file=sys.stderr)
    print(table(cases, results, args))
    return 0


def table(cases: list, results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The calibration table in Markdown."""
    lines = [f"scenario {args.scenario}, max {args.max_seconds:g} s, min effect {args.min_effect:.0%}", "",
             "| case | runs | faster | slower | same | inconclusive | other | expected | median ratio | median lanes | median s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, _, _, _, expected in cases:
        runs = results[name]
        if not runs:
            continue
        verdicts = [run["verdict"] for run in runs]
        counts = [verdicts.count(verdict) for verdict in ("faster", "slower", "same", "inconclusive")]
        other = len(verdicts) - sum(counts)
        hits = sum(verdict in expected for verdict in verdicts)
        ratios = [run["ratio"] for run in runs if run["ratio"]]
        ratio = f"{statistics.median(ratios):.4f}" if ratios else "-"
        seconds = statistics.median(run["seconds"] for run in runs)
        lanes = statistics.median(run.get("lanes", 0) for run in runs)
        lines.append(f"| {name} | {len(runs)} | {' | '.join(map(str, counts))} | {other} | {hits}/{len(runs)} "
                     f"{'/'.join(expected)} | {ratio} | {lanes:g} | {seconds:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
