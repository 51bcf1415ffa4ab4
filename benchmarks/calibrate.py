"""Calibrate the bench decision on this machine: false verdicts, detection rates, decision time.

    python3 benchmarks/calibrate.py [--scenario fattree] [--aa 20] [--hook 5] [--changes 10]
                                    [--max-seconds 60] [--out calibration.jsonl]

Cases, each a fresh copy of the current netsim (so edits to the checkout cannot leak in):
  A/A       the engine against an identical copy: any faster/slower verdict is a false one;
  hook      the candidate installs a no-op sys.setprofile hook: must be `slower` every time;
  +2%/-2%,  +5%/-5%: the candidate (or, for -, the baseline) burns a calibrated amount of extra
            work per event processed, checked in-process before the runs start.
Cases run round-robin so a busy period on the shared machine does not hit one case only.
Prints a Markdown table; every decision is appended as one JSON line to --out.
"""

from __future__ import annotations

import argparse
import json
import math
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


def extra_work_copy(base: Path, scratch: Path, instance: dict, effect: float, check_seconds: float) -> tuple[Path, float]:
    """A copy of the engine slower by about `effect`: extra loop iterations after every event.

    A first guess comes from in-process medians of the CPU time per event and per loop iteration;
    one paired measurement of that copy against the base then rescales it (the loop costs
    differ inside the workers). Returns the copy and the ratio that check measured.
    """
    engine = load_engine(base, name="calibration_base")
    events = engine.simulate(instance)["events"]
    per_event = median_cpu(lambda: engine.simulate(instance), 5) / events

    def loop() -> None:
        for _ in range(1_000_000):
            pass

    per_iteration = median_cpu(loop, 5) / 1_000_000
    iterations = max(1, round(effect * per_event / per_iteration))
    guess = copy_engine(base, scratch / f"guess-{effect:g}", EXTRA_WORK.format(iterations=iterations))
    checked = compare_versions(base, guess, instance, max_seconds=check_seconds, min_effect=effect / 2)["ratio"]
    if checked and checked > 1:
        iterations = max(1, round(iterations * math.log1p(effect) / math.log(checked)))
    return copy_engine(base, scratch / f"extra-{effect:g}", EXTRA_WORK.format(iterations=iterations)), checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--aa", type=int, default=20, help="A/A decisions")
    parser.add_argument("--hook", type=int, default=5, help="injected sys.setprofile decisions")
    parser.add_argument("--changes", type=int, default=10, help="decisions per real change (+-2%%, +-5%%)")
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
        for effect in (0.02, 0.05):
            slowed, checked = extra_work_copy(base, scratch, instance, effect, args.max_seconds / 2)
            print(f"extra work for {effect:.0%}: first guess measured ratio {checked}, rescaled", file=sys.stderr)
            cases.append((f"+{effect:.0%} slower", base, slowed, args.changes, ("slower",)))
            cases.append((f"-{effect:.0%} faster", slowed, base, args.changes, ("faster",)))
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
                      f"pairs {result['pairs']:>5} {result['seconds']:5.1f} s", file=sys.stderr)
    print(table(cases, results, args))
    return 0


def table(cases: list, results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The calibration table in Markdown."""
    lines = [f"scenario {args.scenario}, max {args.max_seconds:g} s, min effect {args.min_effect:.0%}", "",
             "| case | runs | faster | slower | same | inconclusive | other | expected | median ratio | median s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
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
        lines.append(f"| {name} | {len(runs)} | {' | '.join(map(str, counts))} | {other} | {hits}/{len(runs)} "
                     f"{'/'.join(expected)} | {ratio} | {seconds:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
