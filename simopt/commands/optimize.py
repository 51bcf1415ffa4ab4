"""`simopt optimize`: let a proposer change the target; keep only correct, faster changes."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from simopt.sandbox.option import add_option

if TYPE_CHECKING:
    from simopt.cli import Env


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):  # a NaN limit never trips; an infinite one is no limit
            raise argparse.ArgumentTypeError(f"{text} must be a finite number")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be > 0")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be > 0 and < 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt optimize`."""
    parser.add_argument("--repo", type=Path, default=Path("."), help="the target repository (default: .)")
    parser.add_argument("--scenario", help="the benchmark scenario (scenario targets)")
    parser.add_argument("--agent", help="demo, patches:DIR, command:CMD or openai (default: openai when "
                        "OPENAI_API_KEY or OPENAI_BASE_URL is set, else demo)")
    parser.add_argument("--model", help="the model of the openai agent")
    parser.add_argument("--program", type=Path, help="the openai agent's program file (default: simopt/agents/program.md)")
    parser.add_argument("--max-cost", type=_positive(float), metavar="USD",
                        help="stop the session once the openai agent has spent this much")
    parser.add_argument("--tag", help="the session's name (default: a UTC timestamp)")
    parser.add_argument("--resume", action="store_true", help="continue the session --tag")
    parser.add_argument("--budget", type=_positive(int), help="number of experiments (default 20)")
    parser.add_argument("--max-hours", type=_positive(float), help="stop starting experiments after this long")
    parser.add_argument("--holdout", type=Path, help="a guard folder outside the repo, run after the visible guards")
    parser.add_argument("--max-seconds", type=_positive(float), help="time budget of one benchmark (default 60; "
                        "a command target's is raised when its bench needs more to decide)")
    parser.add_argument("--min-effect", type=_fraction, help="smallest speedup worth keeping (default 0.01 for "
                        "scenario targets, 0.03 for command targets)")
    parser.add_argument("--guard-profile", help="guard suite profile (default: standard)")
    parser.add_argument("--quiet", action="store_true", help="one plain line per experiment, no live display")
    add_option(parser)


def main(args: argparse.Namespace, env: Env) -> int:
    """Run or resume an optimization session."""
    from simopt.progress import make_reporter
    from simopt.sandbox.option import apply_option
    from simopt.session import Options, run_session

    apply_option(args)
    options = Options(
        repo=args.repo, scenario=args.scenario, agent=args.agent, model=args.model, tag=args.tag,
        resume=args.resume, budget=args.budget, max_hours=args.max_hours, holdout=args.holdout,
        max_seconds=args.max_seconds, min_effect=args.min_effect, guard_profile=args.guard_profile,
        program=args.program, max_cost_usd=args.max_cost,
    )
    return run_session(options, make_reporter(env.console(), quiet=args.quiet),
                       warn=lambda text: print(f"simopt: warning: {text}", file=env.stderr))
