"""`simopt run`: run one scenario on a version of netsim and print its outcome."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simopt import __version__

PROFILE_TOP = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt run`."""
    parser.add_argument("--scenario", required=True, metavar="NAME|PATH", help="a scenario name (scenarios/NAME.toml) or a TOML file")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--repo", type=Path, help="the checkout whose engine and scenarios to use (default: this simopt's)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    parser.add_argument("--profile", action="store_true", help="profile the run (cProfile) and print the top functions")
    add_limit_arguments(parser)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-nodes ... --max-routes: raise (or lower) the instance size limits (docs/scenarios.md)."""
    from simopt.workload.size import QUANTITIES, Limits

    group = parser.add_argument_group("size limits", "refuse instances bigger than this (docs/scenarios.md)")
    for quantity in QUANTITIES:
        group.add_argument(f"--max-{quantity}", type=_at_least_one, metavar="N",
                           help=f"default {getattr(Limits(), quantity):,}")


def limit_overrides(args: argparse.Namespace) -> dict[str, int | None]:
    """The size limits given on the command line."""
    from simopt.workload.size import QUANTITIES

    return {quantity: getattr(args, f"max_{quantity}") for quantity in QUANTITIES}


def _at_least_one(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def main(args: argparse.Namespace, env) -> int:
    """Build the instance, time the simulation alone, print the summary."""
    from simopt.engine import load_engine
    from simopt.scenario import build_instance, default_repo, load_scenario

    repo = (args.repo or default_repo()).resolve()
    scenario = load_scenario(args.scenario, repo=repo, seed=args.seed, limits=limit_overrides(args))
    instance = build_instance(scenario)
    engine = load_engine(repo)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    result, wall_s, cpu_s = _timed_run(engine, instance, profiler)
    summary = summarize(scenario.name, scenario.seed, instance, result, wall_s, cpu_s)
    if args.json:
        print(json.dumps(summary, indent=2), file=env.stdout)
    else:
        env.console().print(_table(summary))
    if profiler is not None:
        _print_profile(profiler, env.stderr if args.json else env.stdout)
    return 0


def _timed_run(engine, instance: dict, profiler) -> tuple[dict, float, float]:
    """Run the engine once; wall and CPU seconds cover the simulation only, not the build."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    result = engine.simulate(instance)
    if profiler is not None:
        profiler.disable()
    return result, time.perf_counter() - wall_start, time.process_time() - cpu_start


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


def _print_profile(profiler, stream) -> None:
    import pstats

    print(f"\nprofile: top {PROFILE_TOP} functions by cumulative time (times include profiling overhead)", file=stream)
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(PROFILE_TOP)
