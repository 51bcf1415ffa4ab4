"""Every process of a command target's commands starts here: bench, guard, smoke, equal_output.

One function runs them all, so that every one of them gets the same sandbox (simopt.sandbox:
a throwaway writable copy of the tree, read-only system, no network) and the same documented
environment: the sandbox's allow-list, the configured `python`'s folder (a virtual
environment's `bin/`), else simopt's own interpreter's folder, first on PATH, so `python` and
`python3` in a command mean that interpreter; `VIRTUAL_ENV` for a virtual environment; then the
config's `env`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simopt.errors import UserError
from simopt.target import Target


def run_target_command(
    command: str | list[str], *, tree: Path, timeout_s: float, env: dict[str, str] | None = None,
    python: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run `command` (a string runs in a shell) sandboxed, its cwd a throwaway copy of `tree`.

    `env` adds to the sandbox's allow-listed environment; `python` leads PATH and its prefix is
    visible inside. Raises `subprocess.TimeoutExpired` on timeout.
    """
    from simopt.sandbox import run_command

    return run_command(command, tree=tree, timeout_s=timeout_s, env=env, python=python)


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
    """What a target's commands get beyond the sandbox's allow-list: VIRTUAL_ENV, then `env`.

    (PATH is the sandbox's, led by the interpreter's folder: run_target_command's `python`.)
    """
    folder = interpreter(target).parent  # not resolved: a virtual environment's python is a symlink out of it
    environment = {"VIRTUAL_ENV": str(folder.parent)} if (folder.parent / "pyvenv.cfg").is_file() else {}
    environment.update(dict(target.env))
    return environment


def describe_interpreter(target: Target) -> str:
    """Which interpreter ran the commands, in words, for error messages about a failing base."""
    if target.interpreter is not None:
        return f"commands ran with python {target.interpreter} (`python` in {target.config_path.name})"
    return (f"commands ran with simopt's own python {sys.executable} first on PATH; set python = "
            f"\".venv/bin/python\" in {target.config_path.name} if the target needs its own environment")
