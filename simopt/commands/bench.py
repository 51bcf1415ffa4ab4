"""`simopt bench`: decide whether a candidate version is really faster than a baseline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simopt import __version__
from simopt.errors import UserError
from simopt.sandbox.option import add_option, apply_option

EXIT_NO_MEASUREMENT = 1  # the candidate crashed or computed something else
EXIT_BUSY = 3  # the machine gave the runners too little CPU to decide: nothing is known
SCENARIO_MIN_EFFECT = 0.01


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt bench`."""
    parser.add_argument("--repo", type=Path, metavar="PATH",
                        help="the target repository (default: the one around the current directory)")
    parser.add_argument("--scenario", metavar="NAME|PATH", help="the benchmark scenario, read from the baseline (scenario targets)")
    parser.add_argument("--baseline", required=True, metavar="REV|PATH", help="a git revision of the repository or a directory")
    parser.add_argument("--candidate", required=True, metavar="REV|PATH", help="a git revision of the repository or a directory")
    parser.add_argument("--max-seconds", type=float, default=60.0, metavar="S", help="measuring budget (default: 60)")
    parser.add_argument("--min-effect", type=float, metavar="F",
                        help="smallest change that counts (default: 0.01 = 1%% for scenario targets, 0.03 for command targets)")
    parser.add_argument("--metric", choices=("time", "instructions"), default="time",
                        help="paired CPU timing (default) or valgrind instruction counts of one run each")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    add_option(parser)


def main(args: argparse.Namespace, env) -> int:
    """Materialize both versions, measure, print the verdict."""
    from simopt.commands.command_bench import command_target, main_command

    target = command_target(args.repo)
    if target is not None:
        return main_command(args, env, target)
    if args.scenario is None:
        raise UserError("--scenario is required: the repository's target runs scenarios (or name a command target with --repo)")
    if args.min_effect is None:
        args.min_effect = SCENARIO_MIN_EFFECT
    return _main_scenario(args, env)


def _main_scenario(args: argparse.Namespace, env) -> int:
    """The scenario (netsim) path: paired lanes of engine workers on one instance."""
    from contextlib import ExitStack

    from simopt.engine import DEFAULT_ENGINE
    from simopt.measure import compare_versions
    from simopt.measure.instructions import compare_instructions
    from simopt.measure.versions import materialize
    from simopt.scenario import build_instance, load_scenario

    apply_option(args)
    if args.max_seconds <= 0:
        raise UserError(f"--max-seconds(={args.max_seconds:g}) must be > 0")
    if not 0 < args.min_effect < 1:
        raise UserError(f"--min-effect(={args.min_effect:g}) must be between 0 and 1")
    with ExitStack() as stack:
        repo_dir = args.repo or Path.cwd()
        baseline = stack.enter_context(materialize(args.baseline, repo_dir=repo_dir, engine=DEFAULT_ENGINE))
        candidate = stack.enter_context(materialize(args.candidate, repo_dir=repo_dir, engine=DEFAULT_ENGINE))
        scenario = load_scenario(args.scenario, repo=baseline)  # a candidate cannot change the workload
        if args.metric == "instructions":
            result = compare_instructions(baseline, candidate, build_instance(scenario), min_effect=args.min_effect)
        else:
            def workload(seed: int) -> dict:  # every lane a fresh instance of the scenario
                return build_instance(load_scenario(str(scenario.path), seed=seed))

            with _progress_bar(env, args.max_seconds) as progress:
                result = compare_versions(
                    baseline, candidate, workload, max_seconds=args.max_seconds, min_effect=args.min_effect, progress=progress
                )
    result = {**result, "scenario": scenario.name, "seed": scenario.seed, "baseline": args.baseline,
              "candidate": args.candidate, "simopt_version": __version__}
    if args.json:
        print(json.dumps(result, indent=2), file=env.stdout)
    else:
        console = env.console()
        for line in summary_lines(result):
            console.print(line)
    if result["verdict"] == "busy":
        return EXIT_BUSY
    return EXIT_NO_MEASUREMENT if result["verdict"] in ("crash", "different-output", "tamper") else 0


def _progress_bar(env, max_seconds: float):
    """A rich progress bar over the time budget on stderr; yields the callback compare_versions takes."""
    from contextlib import contextmanager

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def bar():
        columns = (TextColumn("measuring"), BarColumn(), TextColumn("{task.fields[pairs]} pairs"), TimeElapsedColumn())
        with Progress(*columns, console=env.console(stderr=True), transient=True) as progress:
            task = progress.add_task("bench", total=max_seconds, pairs=0)

            def update(elapsed_s: float, pairs: int) -> None:
                progress.update(task, completed=min(elapsed_s, max_seconds), pairs=pairs)

            yield update

    return bar()


def summary_lines(result: dict) -> list[str]:
    """The readable summary of a bench result, one line each."""
    lines = [f"verdict      {result['verdict']}"]
    if result["verdict"] in ("crash", "tamper"):
        what = "candidate crashed:" if result["verdict"] == "crash" else "candidate caught tampering:"
        return lines + [what, *str(result.get("error")).splitlines()]
    if result["verdict"] == "busy":
        share = result.get("cpu_share")
        lines.append(f"busy         the runners got {share:.0%} of a CPU; {result.get('lanes') or 0} lane(s) in "
                     f"{result['seconds']:.0f} s (a verdict needs 4): rerun when the machine is quieter, or with more --max-seconds")
    if result["verdict"] == "different-output":
        return lines + [f"digests      baseline {result['digest_baseline']}", f"             candidate {result['digest_candidate']}"]
    if result["ratio"] is not None:
        ci = result.get("ci")
        interval = f"  (CI {ci[0]:.4f} .. {ci[1]:.4f})" if ci else ""
        lines.append(f"ratio        {result['ratio']:.4f}{interval}  candidate/baseline; speedup {1 / result['ratio']:.3f}x")
    if result["metric"] == "instructions":
        lines.append(f"instructions baseline {result['baseline_instructions']:,}  candidate {result['candidate_instructions']:,}")
    else:
        confidence = f"{result['confidence']:.1f}" if result["confidence"] is not None else "-"
        lanes = f" over {result['lanes']} lanes" if result.get("lanes") else ""
        if result.get("layout"):
            lanes += f" ({result['layout']} layout)"
        lines.append(f"pairs        {result['pairs']}{lanes} in {result['seconds']:.1f} s, confidence {confidence}")
        if result["baseline_s"] is not None:
            lines.append(f"per run      baseline {result['baseline_s']:.4f} s  candidate {result['candidate_s']:.4f} s (CPU)")
    seeds = result.get("lane_seeds")
    drawn = f"{len(seeds)} fresh instances" if seeds else f"seed {result['seed']}"
    lines.append(f"min effect   {result['min_effect']:.1%}  scenario {result['scenario']} ({drawn})")
    if result.get("sandbox"):
        lines.append(f"sandbox      {result['sandbox']}, CPU clock {result.get('clock')} (read outside the runners)")
    return lines
