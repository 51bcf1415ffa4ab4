"""The command line: one error boundary in front of small subcommands.

Each subcommand lives in `simopt/commands/<name>.py` and defines `HELP`, `add_arguments(parser)`
and `main(args, env) -> int`. Modules are imported only when their command runs, so
`simopt --help` stays instant; their heavy imports happen inside `main`.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Sequence

from simopt import __version__
from simopt.errors import UserError

COMMANDS = {
    "run": "Run one scenario on netsim and print its outcome.",
    "guard": "Run the guard suite against a version of the target.",
    "bench": "Decide whether a candidate version is really faster than a baseline.",
    "check": "Run a session's checks once on a command target's base and say what a session would do.",
    "optimize": "Let a proposer change the target; keep only correct, faster changes.",
    "init": "Look at a repository and write a simopt config (and a bench template) for it.",
    "history": "Show the experiments of a session.",
    "compare": "Compare sessions side by side.",
    "report": "Write a session's report (Markdown, PNG plots, optional HTML).",
    "finalize": "Squash a session's kept changes into one reviewable commit.",
}


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    USAGE = 2
    ABORTED = 3
    INTERRUPTED = 130


@dataclass
class Env:
    """Where a command reads and writes; tests pass their own streams."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)

    def console(self, *, stderr: bool = False):
        """A rich console over one of the streams, markup off so user text is never markup."""
        from rich.console import Console

        stream = self.stderr if stderr else self.stdout
        # logs and pipes get wide tables instead of rich's 80-column default, unless COLUMNS says
        width = None if stream.isatty() or "COLUMNS" in os.environ else 120
        return Console(file=stream, markup=False, highlight=False, soft_wrap=True, width=width)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simopt", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"simopt {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        sub.add_parser(name, help=summary, description=summary, add_help=False)
    return parser


def _command_module(name: str):
    return importlib.import_module(f"simopt.commands.{name}")


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    env = env or Env()
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in argv
    try:
        args = _parse(argv)
        if args.command is None:
            build_parser().print_help(env.stdout)
            return ExitStatus.USAGE
        return int(_command_module(args.command).main(args, env))
    except UserError as error:
        if show_traceback:
            raise
        print(f"simopt: error: {_one_line(error)}", file=env.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("simopt: interrupted", file=env.stderr)
        return ExitStatus.INTERRUPTED


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse in two steps so only the chosen command's module is imported."""
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    if top.command is None:
        if rest:
            raise UserError(f"unrecognized arguments: {' '.join(rest)}")
        return top
    module = _command_module(top.command)
    command_parser = _Parser(prog=f"simopt {top.command}", description=COMMANDS[top.command])
    module.add_arguments(command_parser)
    command_parser.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)
    command_args = command_parser.parse_args(rest)
    command_args.command = top.command
    command_args.traceback = top.traceback or command_args.traceback
    return command_args


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
