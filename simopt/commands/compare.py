"""simopt compare TAG TAG ...: sessions side by side, and their best-so-far curves in one chart."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simopt.commands.history import warn
from simopt.errors import UserError
from simopt.history import load_session
from simopt.results.repo import add_repo_argument, resolve_repo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `simopt compare`."""
    parser.add_argument("tags", nargs="+", metavar="TAG", help="the sessions to compare")
    add_repo_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the best-so-far chart to FILE (PNG)")


def main(args: argparse.Namespace, env) -> int:
    """Print the comparison table (or JSON) and write the chart when asked."""
    from simopt.results.summary import summarize

    duplicates = sorted({tag for tag in args.tags if args.tags.count(tag) > 1})
    if duplicates:
        raise UserError(f"tag given twice: {', '.join(duplicates)}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UserError(f"--plot {args.plot}: the chart is a PNG, name it *.png")
    repo = resolve_repo(args.repo)
    histories = [load_session(repo, tag) for tag in args.tags]
    for history in histories:
        warn(history, env)
    summaries = [summarize(history) for history in histories]
    plot = None
    if args.plot:
        from simopt.results.plots import compare_chart

        try:
            plot = compare_chart(histories, Path(args.plot))
        except OSError as error:
            raise UserError(f"cannot write the chart to {args.plot}: {error.strerror or error}") from None
    if args.json:
        document = {"version": 1, "sessions": summaries, "plot": str(plot) if plot else None}
        print(json.dumps(document, indent=2, ensure_ascii=False), file=env.stdout)
        return 0
    from simopt.results.tables import compare_table

    console = env.console()
    console.print(compare_table(summaries))
    if plot:
        console.print(f"chart: {plot}")
    return 0
