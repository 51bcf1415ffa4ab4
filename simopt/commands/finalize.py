"""simopt finalize TAG: one reviewable commit with every kept change, on simopt/TAG-final."""

from __future__ import annotations

import argparse

from simopt.commands.history import warn
from simopt.history import load_session
from simopt.results.repo import add_repo_argument, resolve_repo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `simopt finalize`."""
    parser.add_argument("tag", help="the session's tag (results/TAG/history.jsonl)")
    add_repo_argument(parser)


def main(args: argparse.Namespace, env) -> int:
    """Create the branch and print its commit and message."""
    from simopt.results.finalize import finalize

    repo = resolve_repo(args.repo)
    history = load_session(repo, args.tag)
    warn(history, env)
    result = finalize(history, repo)
    print(f"created {result.branch} at {result.commit[:12]} (tree of {result.source[:12]})", file=env.stdout)
    print("", file=env.stdout)
    print(result.message, end="", file=env.stdout)
    return 0
