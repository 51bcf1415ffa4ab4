"""Calibrate the bench decision on this machine: false verdicts, detection rates, decision time.

    python3 benchmarks/calibrate.py [--scenario fattree] [--aa 20] [--null 10] [--hook 3]
                                    [--changes 5] [--large-changes 2] [--max-seconds 60]
                                    [--lane-layout fixed|random] [--out calibration.jsonl]

Cases, each on fresh copies of the current netsim (edits to the checkout cannot leak in):
  A/A       the engine against an identical copy: any faster/slower verdict is a false one;
  null      the candidate's heap is laid out differently (a random number of objects kept alive
            from import on, so every later allocation lands elsewhere) but it does the same work:
            a change of layout only, which must not be called faster or slower either;
  hook      the candidate installs a no-op sys.setprofile hook: must be `slower` every time;
  +2%/-2%,  +5%/-5%: one version is *exactly* that much slower: at the end of its import and of
            every Simulation call (build, run, result) it reads its thread's CPU clock and spins
            until the CPU used since the previous stretch is 1.02 (1.05) times what it was (so the
            timed steps, import included, all take that much longer, as read from outside the
            sandboxed runner); for the "faster" cases the baseline is the stretched one, by 1/0.98
            (1/0.95), so the candidate's true ratio is 0.98 (0.95). The stretched copy also
            carries a random layout shift as in `null`, so its layout luck is that of a real
            code change, not that of an identical copy.
Every decision gets fresh copies (a fresh layout shift), and every lane of a decision a freshly
seeded instance of the scenario (as `simopt bench` does). Cases run round-robin so a busy period on
the shared machine does not hit one case only. Prints a Markdown table; every decision is
appended as one JSON line to --out.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from simopt.measure import compare_versions
from simopt.measure.paired import LANE_LAYOUTS
from simopt.scenario import build_instance, default_repo, load_scenario


HOOK = "\nimport sys as _sys\n_sys.setprofile(lambda *args: None)\n"
LAYOUT_SHIFT = "\n_LAYOUT_SHIFT = [[None] * (i % 13) for i in range({objects})]\n"
# The stretch reads the thread's CPU clock (time.thread_time: CLOCK_THREAD_CPUTIME_ID, exact to the
# nanosecond), not time.process_time: wherever a process-wide CPU limit is set (the sandbox set
# RLIMIT_CPU until 2026-12-02), the kernel serves CLOCK_PROCESS_CPUTIME_ID from its tick-updated
# group timer, process_time() moves in 4 ms steps and a spin on it overshoots by up to a tick per
# call (measured then: a "2%" stretch read 1.06-1.08 per step from outside). The engine is
# single-threaded, so its thread's clock is all of its work.
# STRETCH_MARK goes at the top of the package (after its docstring and __future__ imports): the
# import is a timed step (load), so it is stretched too. Each stretch covers all the CPU the thread
# used since the previous one ended, so the request parsing between two engine calls (the
# instance's JSON before a build) is stretched as well, not only the engine's calls.
STRETCH_MARK = """import time as _stretch_time

_stretch_mark = [_stretch_time.thread_time()]  # calibration: the load step starts here
"""
STRETCH = """

_STRETCH = {factor!r}
_stretch_depth = [0]


def _stretch():
    \"\"\"Spin until the CPU used since the last mark is exactly _STRETCH times what it was; mark again.\"\"\"
    started = _stretch_mark[0]
    until = started + (_stretch_time.thread_time() - started) * _STRETCH
    while _stretch_time.thread_time() < until:
        pass
    _stretch_mark[0] = _stretch_time.thread_time()


def _stretched(method):
    def stretched(*args, **kwargs):
        _stretch_depth[0] += 1
        try:
            return method(*args, **kwargs)
        finally:
            _stretch_depth[0] -= 1
            if not _stretch_depth[0]:  # result() calls run(): stretch at the outermost call only
                _stretch()
    return stretched


Simulation.__init__ = _stretched(Simulation.__init__)
Simulation.run = _stretched(Simulation.run)
Simulation.result = _stretched(Simulation.result)
_stretch()  # the import itself (the load step)
"""
MAX_SHIFT_OBJECTS = 5000


def copy_engine(source: Path, destination: Path, append: str = "", prepend: str = "") -> Path:
    """A version root holding a copy of the engine at `source`, with `append` added to its package.

    `prepend` goes at the top of the package's __init__.py, after its docstring and __future__ imports.
    """
    package = destination / "simopt" / "netsim"
    shutil.copytree(source / "simopt" / "netsim", package, ignore=shutil.ignore_patterns("__pycache__"))
    init = package / "__init__.py"
    text = init.read_text(encoding="utf-8")
    if prepend:
        text = insert_at_top(text, prepend)
    init.write_text(text + append, encoding="utf-8")
    return destination


def insert_at_top(text: str, code: str) -> str:
    """`text` (a module's source) with `code` after its docstring and __future__ imports."""
    body = ast.parse(text).body
    line = 0
    for index, node in enumerate(body):
        docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if not (docstring or isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
        line = node.end_lineno
    lines = text.splitlines(keepends=True)
    head = "".join(lines[:line])
    return head + ("" if not head or head.endswith("\n") else "\n") + "\n" + code + "\n" + "".join(lines[line:])


def layout_shift(rng: random.Random) -> str:
    """Source that keeps a random number of small lists alive from import on."""
    return LAYOUT_SHIFT.format(objects=rng.randrange(1, MAX_SHIFT_OBJECTS))


def stretch(ratio: float) -> str:
    """Source (appended; STRETCH_MARK goes at the top) that makes the run's work take exactly `ratio` times its CPU."""
    return STRETCH.format(factor=ratio)


def copy_stretched(source: Path, destination: Path, ratio: float, extra: str = "") -> Path:
    """A copy of the engine at `source` that uses exactly `ratio` times the CPU (`extra` appended before)."""
    return copy_engine(source, destination, extra + stretch(ratio), prepend=STRETCH_MARK)


def case_versions(name: str, base: Path, scratch: Path, rng: random.Random) -> tuple[Path, Path]:
    """(baseline, candidate) roots for one decision of case `name`."""
    if name == "A/A":
        return base, copy_engine(base, scratch / "same")
    if name == "null":
        return base, copy_engine(base, scratch / "null", layout_shift(rng))
    if name == "hook":
        return base, copy_engine(base, scratch / "hook", HOOK)
    sign, percent = name[0], int(name[1:].split("%")[0])
    effect = percent / 100
    if sign == "+":
        return base, copy_stretched(base, scratch / "stretched", 1 + effect, layout_shift(rng))
    return copy_stretched(base, scratch / "stretched", 1 / (1 - effect), layout_shift(rng)), base


def scenario_workload(name: str):
    """seed -> a fresh instance of scenario `name`: what every lane of a decision draws, as the real bench does."""
    path = str(load_scenario(name).path)
    return lambda seed: build_instance(load_scenario(path, seed=seed))


EXPECTED = {"A/A": ("same", "inconclusive"), "null": ("same", "inconclusive"), "hook": ("slower",),
            "+2% slower": ("slower",), "-2% faster": ("faster",), "+5% slower": ("slower",), "-5% faster": ("faster",)}
TRUE_RATIO = {"A/A": 1.0, "null": 1.0, "+2% slower": 1.02, "-2% faster": 0.98, "+5% slower": 1.05, "-5% faster": 0.95}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--aa", type=int, default=20, help="A/A decisions")
    parser.add_argument("--null", type=int, default=10, help="layout-only change decisions")
    parser.add_argument("--hook", type=int, default=3, help="injected sys.setprofile decisions")
    parser.add_argument("--changes", type=int, default=5, help="decisions per direction of the 2%% change")
    parser.add_argument("--large-changes", type=int, default=2, help="decisions per direction of the 5%% change")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--min-effect", type=float, default=0.01)
    parser.add_argument("--lane-layout", default="fixed", choices=LANE_LAYOUTS,
                        help="how the two runners of a lane are laid out (compare_versions' lane_layout)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the layout shifts (default: random)")
    parser.add_argument("--out", type=Path, default=Path("calibration.jsonl"))
    args = parser.parse_args()

    counts = {"A/A": args.aa, "null": args.null, "hook": args.hook,
              "+2% slower": args.changes, "-2% faster": args.changes,
              "+5% slower": args.large_changes, "-5% faster": args.large_changes}
    cases = [name for name, count in counts.items() if count]
    rng = random.Random(args.seed)
    workload = scenario_workload(args.scenario)  # every lane a fresh seed of the scenario
    results: dict[str, list[dict]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="simopt-calibrate-") as scratch_dir:
        base = copy_engine(default_repo(), Path(scratch_dir) / "base")
        for round_index in range(max(counts.values())):
            for name in cases:
                if round_index >= counts[name]:
                    continue
                with tempfile.TemporaryDirectory(dir=scratch_dir) as decision_dir:
                    baseline, candidate = case_versions(name, base, Path(decision_dir), rng)
                    result = compare_versions(baseline, candidate, workload, max_seconds=args.max_seconds,
                                              min_effect=args.min_effect, lane_layout=args.lane_layout)
                results[name].append(result)
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps({"case": name, **result}) + "\n")
                print(f"{name:>12} #{round_index + 1}: {result['verdict']:<12} ratio {result['ratio'] or 0:.4f} "
                      f"pairs {result['pairs']:>5} lanes {result.get('lanes', 0):>3} {result['seconds']:5.1f} s"
                      + (f" ({result['error']})" if result.get("error") else ""), file=sys.stderr)
    print(table(cases, results, args))
    return 0


def table(cases: list[str], results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The calibration table in Markdown."""
    lines = [f"scenario {args.scenario}, max {args.max_seconds:g} s, min effect {args.min_effect:.0%}, "
             f"lane layout {args.lane_layout}", "",
             "| case | true ratio | runs | faster | slower | same | inconclusive | other | expected | median ratio "
             "| median lanes | median s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in cases:
        runs = results[name]
        if not runs:
            continue
        verdicts = [run["verdict"] for run in runs]
        counts = [verdicts.count(verdict) for verdict in ("faster", "slower", "same", "inconclusive")]
        other = len(verdicts) - sum(counts)
        hits = sum(verdict in EXPECTED[name] for verdict in verdicts)
        ratios = [run["ratio"] for run in runs if run["ratio"]]
        ratio = f"{statistics.median(ratios):.4f}" if ratios else "-"
        seconds = statistics.median(run["seconds"] for run in runs)
        lanes = statistics.median(run.get("lanes", 0) for run in runs)
        true = f"{TRUE_RATIO[name]:.2f}" if name in TRUE_RATIO else "-"
        lines.append(f"| {name} | {true} | {len(runs)} | {' | '.join(map(str, counts))} | {other} | {hits}/{len(runs)} "
                     f"{'/'.join(EXPECTED[name])} | {ratio} | {lanes:g} | {seconds:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
