"""Run a target's shell command (bench, guard, smoke) in a sandbox, on a throwaway copy of its tree."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from simopt.sandbox.launch import spawn
from simopt.sandbox.policy import BASE_ENV, Policy, hidden_harness_paths, python_paths, sandbox_env

SKIPPED = (".git", ".simopt", "results", "__pycache__")


@functools.lru_cache(maxsize=16)
def interpreter_paths(python: str) -> tuple[Path, ...]:
    """The prefixes and site-packages of the interpreter `python` (asked of it, once)."""
    # not resolved: two virtual environments of one base interpreter resolve to the same binary
    if Path(python).absolute() == Path(sys.executable).absolute():
        return tuple(python_paths())
    probe = ("import json, site, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, "
             "sys.base_exec_prefix, *site.getsitepackages()]))")
    done = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise OSError(f"{python} cannot report its prefixes: {done.stderr.strip().splitlines()[-1:]}")
    found = {Path(p) for p in json.loads(done.stdout)} | {Path(python).parent, Path(python).resolve().parent}
    return tuple(sorted(p for p in found if p.exists()))


def copy_tree(tree: Path) -> Path:
    """A throwaway copy of `tree` (without git metadata, caches or simopt's own folders)."""
    scratch = Path(tempfile.mkdtemp(prefix="simopt-tree-"))
    destination = scratch / Path(tree).name
    shutil.copytree(tree, destination, symlinks=True, ignore=shutil.ignore_patterns(*SKIPPED))
    return destination


def run_command(command: str | list[str], *, tree: Path, timeout_s: float, env: dict[str, str] | None = None,
                python: Path | None = None) -> subprocess.CompletedProcess:
    """Run `command` (a string goes to /bin/sh) in a sandbox whose cwd is a writable copy of `tree`.

    Nothing written there reaches `tree`. The environment is the allow-list plus `env`; the
    interpreter `python` (default: simopt's own) is first on PATH. Raises
    subprocess.TimeoutExpired (with the output so far) when the time limit passes.
    """
    python = Path(python or sys.executable)
    copy = copy_tree(Path(tree))
    path = f"{python.parent}:{BASE_ENV['PATH']}"
    policy = Policy(writable=((copy.parent, str(copy.parent)),), read_only=interpreter_paths(str(python)),
                    hidden=tuple(hidden_harness_paths()), env={**sandbox_env(env), "PATH": path}, cwd=str(copy))
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    sandbox = spawn(argv, policy, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        try:
            stdout, stderr = sandbox.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            stdout, stderr = sandbox.process.communicate()
            raise subprocess.TimeoutExpired(command, timeout_s, output=_text(stdout), stderr=_text(stderr)) from None
        return subprocess.CompletedProcess(command, sandbox.process.returncode, _text(stdout), _text(stderr))
    finally:
        sandbox.close()
        shutil.rmtree(copy.parent, ignore_errors=True)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")
