"""simopt report TAG: results/TAG/report.md with its PNG plots, and report.html with --html."""

from __future__ import annotations

import argparse

from simopt.commands.history import warn
from simopt.errors import UserError
from simopt.history import load_session
from simopt.results.repo import add_repo_argument, resolve_repo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `simopt report`."""
    parser.add_argument("tag", help="the session's tag (results/TAG/history.jsonl)")
    add_repo_argument(parser)
    parser.add_argument("--html", action="store_true", help="also write one self-contained report.html")


def main(args: argparse.Namespace, env) -> int:
    """Write the report files and print their paths."""
    from simopt.results.report import write_report

    repo = resolve_repo(args.repo)
    history = load_session(repo, args.tag)
    warn(history, env)
    try:
        paths = write_report(history, repo, html=args.html)
    except OSError as error:
        where = error.filename or history.path.parent
        raise UserError(f"cannot write the report to {where}: {error.strerror or error}") from None
    for path in paths:
        print(f"wrote {path}", file=env.stdout)
    return 0
