"""simopt history TAG: the experiments of a session and its summary."""

from __future__ import annotations

import argparse
import json

from simopt.history import History, load_session
from simopt.results.repo import add_repo_argument, resolve_repo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `simopt history`."""
    parser.add_argument("tag", help="the session's tag (results/TAG/history.jsonl)")
    add_repo_argument(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the summary and experiments as JSON")
    output.add_argument(
        "--format", choices=("table", "pi"), default="table",
        help="table (default) or pi: pi-autoresearch-compatible JSONL on stdout",
    )


def main(args: argparse.Namespace, env) -> int:
    """Print the session's experiments and summary."""
    from simopt.results.summary import summarize

    history = load_session(resolve_repo(args.repo), args.tag)
    warn(history, env)
    if args.format == "pi":
        from simopt.results.pi_export import pi_records

        for record in pi_records(history):
            print(json.dumps(record, ensure_ascii=False), file=env.stdout)
        return 0
    summary = summarize(history)
    if args.json:
        document = {
            "version": 1, "summary": summary, "experiments": history.experiments,
            "checkpoints": history.checkpoints,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False), file=env.stdout)
        return 0
    from simopt.results.tables import experiments_table
    from simopt.results.text import summary_lines

    console = env.console()
    if history.experiments:
        console.print(experiments_table(history))
    else:
        console.print(f"session {history.tag}: no experiments yet")
    for line in summary_lines(summary):
        console.print(line)
    return 0


def warn(history: History, env) -> None:
    """One line on stderr per skipped history line."""
    for warning in history.warnings:
        print(f"simopt: warning: {warning}", file=env.stderr)
