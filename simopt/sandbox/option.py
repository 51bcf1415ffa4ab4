"""The `--no-sandbox` option of the commands that run candidate code (run, guard, bench, optimize)."""

from __future__ import annotations

import argparse
import os

from simopt.sandbox.launch import CHOICE_VARIABLE


def add_option(parser: argparse.ArgumentParser) -> None:
    """Add `--no-sandbox` to a command's parser."""
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run candidate code unconfined (only where no sandbox can be built; recorded)")


def apply_option(args: argparse.Namespace) -> None:
    """Make this process and its children run candidate code unconfined when the user asked for it."""
    if getattr(args, "no_sandbox", False):
        os.environ[CHOICE_VARIABLE] = "none"
