"""`simopt guard`: run the guard suite against a version of the target."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simopt.errors import UserError
from simopt.guard import PROFILES
from simopt.sandbox.option import add_option, apply_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt guard`."""
    parser.add_argument("--repo", type=Path, metavar="PATH",
                        help="a command target's repository (default: the one around the current directory)")
    parser.add_argument("--revision", metavar="REV", help="command targets: the revision to guard (default: the checkout as it is)")
    parser.add_argument("--reference", default="HEAD", metavar="REV",
                        help="command targets: the revision whose equal_output is the reference (default: HEAD)")
    parser.add_argument("--target", type=Path, metavar="PATH", help="a directory holding simopt/netsim/ (default: this simopt's repo)")
    parser.add_argument("--seed", type=int, help="the hypothesis seed, or a command target's equal_output seed "
                        "(default: fresh ones, always printed)")
    parser.add_argument("--profile", choices=PROFILES, default="standard", help="example budget (default: standard)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    add_option(parser)
    parser.add_argument("--coverage", action="store_true",
                        help="also print the range of every instance feature drawn in this run beside each shipped scenario's")


def main(args: argparse.Namespace, env) -> int:
    """Run the suite; exit 0 when every guard passes, 1 when one fails."""
    from simopt.commands.command_bench import command_target, guard_command
    from simopt.guard import HARNESS_ROOT, check_target, fresh_seed, run_guards

    apply_option(args)
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed(={args.seed}) must be >= 0")
    target_config = command_target(args.repo)
    if target_config is not None:
        return guard_command(args, env, target_config)
    if args.revision is not None:
        raise UserError("--revision is for command targets; for netsim pass a directory with --target")
    target = check_target(args.target or HARNESS_ROOT)
    seed = fresh_seed() if args.seed is None else args.seed
    if not args.json:
        print(f"guards: profile {args.profile}, seed {seed}, target {target}", file=env.stdout, flush=True)
    report = run_guards(target, seed=seed, profile=args.profile)
    if args.json:
        print(json.dumps(report, indent=2), file=env.stdout)
    else:
        for line in format_report(report, args.target):
            print(line, file=env.stdout)
        if args.coverage:
            for line in format_coverage(report.get("coverage")):
                print(line, file=env.stdout)
    return 0 if report["failed"] == 0 else 1


def format_report(report: dict, target_arg: Path | None) -> list[str]:
    """The human summary: each failure with its counterexample, a totals line, how to reproduce."""
    lines = []
    for failure in report["failures"]:
        lines.append(f"FAIL {failure['test']}")
        lines.append(f"  {failure['message']}")
        for key, value in (failure["counterexample"] or {}).items():
            text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
            lines.append(f"    {key}: {text}")
    if report.get("tamper"):
        lines.append(f"TAMPER {report['tamper']['reason']}")
    status = "ok" if report["failed"] == 0 else "FAILED"
    workers = report.get("workers", 1)
    lines.append(f"guards {status}: {report['passed']} passed, {report['failed']} failed in {report['duration_s']:.1f} s "
                 f"(profile {report['profile']}, {workers} worker{'s' if workers != 1 else ''}, seed {report['seed']})")
    if report["failed"]:
        target = f" --target {target_arg}" if target_arg else ""
        lines.append(f"reproduce: simopt guard{target} --profile {report['profile']} --seed {report['seed']}")
    return lines


def format_coverage(coverage: dict | None) -> list[str]:
    """Per feature, the range drawn in this run beside each scenario's; `!` marks a scenario the draws
    do not reach past on both sides (guards/coverage.py)."""
    if not coverage:
        return ["coverage: the guards drew no instance"]
    scenarios = sorted(coverage["features"][0]["scenarios"])
    rows = [["feature", "drawn", *scenarios]]
    for row in coverage["features"]:
        cells = [row["feature"], _span(row["drawn"])]
        for name in scenarios:
            mark = "!" if row["dominated"][name] is False else ""
            cells.append(_span(row["scenarios"][name]) + mark)
        rows.append(cells)
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    lines = ["coverage: feature ranges drawn in this run, and each shipped scenario's (! = not dominated)"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in rows]
    missed = coverage["undominated"]
    lines.append("coverage: every shipped scenario is dominated in every feature" if not missed
                 else f"coverage: NOT dominated: {', '.join(missed)}")
    return lines


def _span(found: list[int] | None) -> str:
    if found is None:
        return "-"
    low, high = (_quantity(value) for value in found)
    return low if found[0] == found[1] else f"{low}..{high}"


def _quantity(value: int) -> str:
    """An integer with an SI suffix and up to four significant digits (999, 1.5k, 10G, 1.1T)."""
    for suffix, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return str(value)
