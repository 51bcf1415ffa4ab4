"""Child processes in their own process group, so a timeout or Ctrl-C kills all they started."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group `process` leads, then reap it (draining its pipes, if any)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def run_in_group(command: list[str] | str, *, cwd: Path, timeout_s: float, env: dict[str, str] | None = None,
                 merge_stderr: bool = False) -> subprocess.CompletedProcess:
    """Run `command` (a string runs in a shell) and capture its output as text.

    On timeout the whole group is killed and `subprocess.TimeoutExpired` is raised carrying the
    output so far; on any other interruption the group is killed and the exception goes on.
    """
    process = subprocess.Popen(
        command, cwd=cwd, env=env, shell=isinstance(command, str), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True, errors="replace", start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise subprocess.TimeoutExpired(command, timeout_s, output=stdout, stderr=stderr) from None
    except BaseException:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
