"""`simopt init`: write a commented simopt.toml template into a repository."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from simopt.errors import UserError

if TYPE_CHECKING:
    from simopt.cli import Env

TEMPLATE = '''\
# simopt target config: what an agent may change, and how simopt checks and times it.
# Docs: docs/optimize.md. Globs follow .gitignore rules: `*` stays within a folder, `**` spans
# folders, a pattern without `/` matches at any depth.

# A changed path is in scope when it matches an editable glob and no protected glob.
editable = ["src/**"]
protected = ["tests/**", "bench.py", "simopt.toml"]

# The benchmark: a command run in a checkout of each version, printing `METRIC seconds=<float>`.
bench = "python bench.py"

# Correctness: a command that exits 0 when the version is correct (or `guard = "tests"`, a
# pytest folder). It runs in the candidate's checkout after every change.
guard_command = "python -m pytest -q tests"

# Optional: a quick command that must succeed before the guards run.
# smoke = "python -c 'import mymodule'"

# Time limits in seconds (defaults: smoke 120, propose 1800, guard 1800).
# smoke_timeout = 120
# propose_timeout = 1800
# guard_timeout = 1800

# For a scenario engine like netsim, replace `bench` and the guard keys with the lines below;
# such a target is always judged by simopt's own guard suite and its oracle.
# engine = "path/to/engine_package"
# scenarios = "scenarios"
# scenario = "default-benchmark-name"
# smoke_scenario = "a-small-scenario"
'''


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt init`."""
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: .)")


def main(args: argparse.Namespace, env: Env) -> int:
    """Write simopt.toml at the repository root, never over an existing one."""
    from simopt.target import CONFIG_FILE

    if not args.repo.is_dir():
        raise UserError(f"{args.repo} is not a directory")
    path = args.repo / CONFIG_FILE
    if path.exists():
        raise UserError(f"{path} already exists: not overwriting it")
    path.write_text(TEMPLATE, encoding="utf-8")
    print(f"wrote {path}: edit `editable`, `bench` and `guard_command` for your repository", file=env.stdout)
    return 0
