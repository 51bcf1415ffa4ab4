"""Every process of a command target's commands starts here: bench, guard, smoke, equal_output.

One function runs them all, so that every one of them gets the same documented environment and
(issue 11) the same sandbox. The environment: simopt's own environment, with the configured
`python`'s folder (a virtual environment's `bin/`), else simopt's own interpreter's folder, first
on PATH, so `python`/`python3` in a command mean that interpreter; then the config's `env`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simopt.errors import UserError
from simopt.processes import run_in_group
from simopt.target import Target


def run_target_command(
    command: str | list[str], *, tree: Path, timeout_s: float, env: dict[str, str] | None = None,
    python: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run `command` (a string runs in a shell) with its cwd at `tree`; `TimeoutExpired` on timeout.

    `python` is the interpreter the command runs with, whose prefix a sandbox must make visible.
    """
    return run_in_group(command, cwd=tree, timeout_s=timeout_s, env=env)


def interpreter(target: Target) -> Path:
    """The interpreter a target's commands run with: the configured `python`, else simopt's own."""
    configured = target.interpreter
    if configured is None:
        return Path(sys.executable)
    if not configured.is_file() or not os.access(configured, os.X_OK):
        raise UserError(f"{target.config_path.name}: python(={target.python!r}) is not an executable file "
                        f"({configured}): create that virtual environment or fix the path")
    return configured


def command_environment(target: Target) -> dict[str, str]:
    """The environment of a target's commands: PATH led by its interpreter's folder, then `env`."""
    python = interpreter(target)
    environment = dict(os.environ)
    environment.pop("PYTHONHOME", None)  # would point a virtual environment's interpreter elsewhere
    folder = python.parent  # not resolved: a virtual environment's python is a symlink out of it
    environment["PATH"] = os.pathsep.join([str(folder), environment.get("PATH", "")]).rstrip(os.pathsep)
    if (folder.parent / "pyvenv.cfg").is_file():
        environment["VIRTUAL_ENV"] = str(folder.parent)
    environment.update(dict(target.env))
    return environment


def describe_interpreter(target: Target) -> str:
    """Which interpreter ran the commands, in words, for error messages about a failing base."""
    if target.interpreter is not None:
        return f"commands ran with python {target.interpreter} (`python` in {target.config_path.name})"
    return (f"commands ran with simopt's own python {sys.executable} first on PATH; set python = "
            f"\".venv/bin/python\" in {target.config_path.name} if the target needs its own environment")
