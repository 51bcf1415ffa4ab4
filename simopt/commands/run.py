"""`simopt run`: run one scenario on a version of netsim and print its outcome.

The instance is built here; the engine runs in a sandboxed runner (simopt.runner), which
reports the CPU time of the simulation read from outside and a result whose digest is
computed here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simopt import __version__
from simopt.errors import UserError

PROFILE_TOP = 25


PROGRESS_SLICES = 100  # a long run advances in this many slices, so the user sees it move
SLOW_RUN_S = 2.0  # show progress once a run has taken this long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt run`."""
    from simopt.sandbox.option import add_option

    parser.add_argument("--scenario", required=True, metavar="NAME|PATH", help="a scenario name (scenarios/NAME.toml) or a TOML file")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--repo", type=Path, help="the checkout whose engine and scenarios to use (default: this simopt's)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    parser.add_argument("--profile", action="store_true", help="profile the run (cProfile) and print the top functions")
    add_option(parser)


def main(args: argparse.Namespace, env) -> int:
    """Build the instance here, run it in a sandboxed runner, print the summary."""
    from simopt.runner.client import Runner, RunnerError
    from simopt.sandbox.option import apply_option
    from simopt.scenario import build_instance, default_repo, load_scenario

    apply_option(args)
    repo = (args.repo or default_repo()).resolve()
    scenario = load_scenario(args.scenario, repo=repo, seed=args.seed)
    instance = build_instance(scenario)
    if not (repo / "simopt" / "netsim" / "__init__.py").is_file():
        raise UserError(f"no engine package at {repo / 'simopt' / 'netsim'} (expected __init__.py there)")
    profile = None
    try:
        with Runner(repo) as runner:
            run = runner.start_run()
            run.load()
            started = time.perf_counter()
            if args.profile:
                result, profile = run.profile(instance, PROFILE_TOP)
                cpu_s = run.last_step.cpu_s
            else:
                cpu_s = run.build(instance).cpu_s + _advance(run, instance["horizon_ns"], env, started)
                result = run.finish()
                cpu_s += run.last_step.cpu_s
            wall_s = time.perf_counter() - started
            run.close()
    except RunnerError as error:
        for line in error.evidence.get("traceback") or error.evidence.get("stderr") or []:
            print(line, file=env.stderr)
        print(f"simopt: the engine at {repo} failed ({error.status}): {error.reason}", file=env.stderr)
        return 1
    summary = summarize(scenario.name, scenario.seed, instance, result, wall_s, cpu_s)
    if args.json:
        print(json.dumps(summary, indent=2), file=env.stdout)
    else:
        env.console().print(_table(summary))
    if profile is not None:
        stream = env.stderr if args.json else env.stdout
        print(f"\nprofile: top {PROFILE_TOP} functions by cumulative time (times include profiling overhead)",
              file=stream)
        print(profile.rstrip(), file=stream)
    return 0


def _advance(run, horizon_ns: int, env, started: float) -> float:
    """Advance the run to its horizon in slices, with a progress bar once it turns out long; CPU seconds."""
    cpu_s, bar = 0.0, None
    try:
        for index in range(1, PROGRESS_SLICES + 1):
            cpu_s += run.advance(horizon_ns * index // PROGRESS_SLICES).cpu_s
            if bar is None and env.stderr.isatty() and time.perf_counter() - started > SLOW_RUN_S:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                bar = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                               TimeElapsedColumn(), console=env.console(stderr=True), transient=True)
                bar.start()
                task = bar.add_task("run", total=PROGRESS_SLICES)
            if bar is not None:
                bar.update(task, completed=index)
    finally:
        if bar is not None:
            bar.stop()
    return cpu_s


def summarize(name: str, seed: int, instance: dict, result: dict, wall_s: float, cpu_s: float) -> dict:
    """The versioned summary document of one run (what `--json` prints)."""
    totals = result["totals"]
    hosts = sum(1 for node in instance["nodes"] if node["kind"] == "host")
    return {
        "version": 1,
        "simopt_version": __version__,
        "scenario": name,
        "seed": seed,
        "digest": result["digest"],
        "topology": {"nodes": len(instance["nodes"]), "hosts": hosts, "switches": len(instance["nodes"]) - hosts, "links": len(instance["links"])},
        "link_events": len(instance["link_events"]),
        "horizon_ns": result["horizon_ns"],
        "events": result["events"],
        "packet_hops": result["packet_hops"],
        "packet_hops_per_s": result["packet_hops"] / wall_s if wall_s > 0 else None,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "flows": {"count": totals["flows"], "completed": totals["completed"]},
        "packets": {
            "sent": totals["sent"],
            "delivered": totals["delivered"],
            "in_flight": totals["in_flight"],
            "dropped": sum(totals["dropped"].values()),
            "dropped_by_cause": dict(sorted(totals["dropped"].items())),
        },
    }


def _table(summary: dict):
    from rich.table import Table

    table = Table(title=f"simopt run: {summary['scenario']}", show_header=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    topology, packets = summary["topology"], summary["packets"]
    rows = [
        ("scenario", summary["scenario"]),
        ("seed", str(summary["seed"])),
        ("topology", f"{topology['nodes']} nodes ({topology['hosts']} hosts, {topology['switches']} switches), {topology['links']} links"),
        ("link events", str(summary["link_events"])),
        ("horizon", f"{summary['horizon_ns']:,} ns"),
        ("flows", f"{summary['flows']['count']:,} ({summary['flows']['completed']:,} completed)"),
        ("packets sent", f"{packets['sent']:,}"),
        ("packets delivered", f"{packets['delivered']:,}"),
        ("packets in flight", f"{packets['in_flight']:,}"),
        *((f"dropped: {cause}", f"{count:,}") for cause, count in packets["dropped_by_cause"].items()),
        ("events", f"{summary['events']:,}"),
        ("packet-hops", f"{summary['packet_hops']:,}"),
        ("packet-hops/s", f"{summary['packet_hops_per_s']:,.0f}" if summary["packet_hops_per_s"] else "-"),
        ("wall", f"{summary['wall_s']:.3f} s"),
        ("cpu", f"{summary['cpu_s']:.3f} s"),
        ("digest", summary["digest"]),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table
