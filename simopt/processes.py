"""Child processes that die with simopt, however simopt dies.

Every child simopt starts goes through `spawn` (or `run_in_group`, built on it), which gives it
three guarantees, so that a kill -9 of a session leaves nothing running in its worktrees:

- it leads a process group of its own, so `kill_group` (a timeout, Ctrl-C) ends all it started;
- the kernel SIGKILLs it when the thread that spawned it dies (Linux `PR_SET_PDEATHSIG`);
- its group is registered with a *watchdog*: a tiny process in a session of its own that holds
  the read end of a pipe from this process. When the pipe closes (this process ended, even by
  SIGKILL) the watchdog SIGKILLs every group still registered: the grandchildren that the
  parent-death signal does not reach (a shell's commands, pytest's helpers).

A session also marks its children through the environment (`mark_session`): every descendant
inherits `SIMOPT_SESSION`, so `kill_marked` can find and stop whatever a killed session left
behind before `--resume` touches its worktree (should the watchdog itself have been killed).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

MARKER = "SIMOPT_SESSION"
_PR_SET_PDEATHSIG = 1
_WATCHDOG = r"""
import os, shutil, signal, sys, time
groups, trees = {}, {}
for line in sys.stdin:
    op, pgid, start = (line.split() + ["", "", ""])[:3]
    if op == "+":
        groups[int(pgid)] = start
    elif op == "-":
        groups.pop(int(pgid), None)
    elif op == "c":  # a sandbox: its cgroup folders (comma-separated) and its private folder or "-"
        trees[pgid] = (pgid.split(","), start)
    elif op == "u":
        trees.pop(pgid, None)
for folders, private in trees.values():
    for _ in range(100):  # a setsid() or a fork between two reads escapes the group, not the cgroup
        pids = set()
        for folder in folders:
            try:
                with open(os.path.join(folder, "cgroup.procs")) as procs:
                    pids.update(int(pid) for pid in procs.read().split())
            except (OSError, ValueError):
                pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            pass
    if private != "-":
        shutil.rmtree(private, ignore_errors=True)
for pgid, start in groups.items():
    try:
        with open(f"/proc/{pgid}/stat", "rb") as stat:
            now = stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except OSError:
        now = start  # the leader is gone; its group id cannot be reused while members remain
    if now == start:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # resolved now: nothing to look up after fork
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


class _Watchdog:
    """The process that kills our registered groups once we are gone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._groups: dict[int, str] = {}
        self._trees: dict[str, str] = {}  # cgroup folders -> private folder of a sandbox

    def register(self, pgid: int) -> None:
        with self._lock:
            self._groups[pgid] = _start_time(pgid)
            self._send(f"+ {pgid} {self._groups[pgid]}\n")

    def release(self, pgid: int) -> None:
        with self._lock:
            if self._groups.pop(pgid, None) is not None:
                self._send(f"- {pgid}\n")

    def guard_tree(self, folders: list[str], private: str | None) -> str:
        key = ",".join(folders)
        with self._lock:
            self._trees[key] = private or "-"
            self._send(f"c {key} {self._trees[key]}\n")
        return key

    def release_tree(self, key: str) -> None:
        with self._lock:
            if self._trees.pop(key, None) is not None:
                self._send(f"u {key}\n")

    def _send(self, line: str) -> None:
        for _ in range(2):
            if self._process is None or self._process.poll() is not None:
                self._start()
            try:
                self._process.stdin.write(line)
                self._process.stdin.flush()
                return
            except (BrokenPipeError, OSError, ValueError):
                self._process = None  # killed by someone: start a new one, told every live group

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True, cwd="/",
        )
        self._process.stdin.write("".join(f"+ {pgid} {start}\n" for pgid, start in self._groups.items())
                                  + "".join(f"c {key} {private}\n" for key, private in self._trees.items()))
        self._process.stdin.flush()


_watchdog = _Watchdog()


def guard_sandbox(cgroup_folders: list[Path], private: Path | None) -> str:
    """Have the watchdog kill every process of these cgroups and remove them and `private` if we die
    first (a process that called setsid() escapes its group and the parent-death signal, not its
    cgroup). Returns the key for `release_sandbox` (paths must hold no whitespace or comma)."""
    folders = [str(folder) for folder in cgroup_folders]
    if any(any(c.isspace() or c == "," for c in text) for text in [*folders, str(private or "")]):
        raise ValueError(f"cannot guard paths with whitespace or commas: {folders}, {private}")
    return _watchdog.guard_tree(folders, str(private) if private else None)


def release_sandbox(key: str) -> None:
    """The sandbox was closed and cleaned up by us: the watchdog forgets it."""
    _watchdog.release_tree(key)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), "" when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _die_with(parent: int, then: Callable[[], Any] | None) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(137)
        if then is not None:
            then()

    return setup


def spawn(command: list[str] | str, **popen: Any) -> subprocess.Popen:
    """A `subprocess.Popen` of `command` that dies with this process, even on kill -9.

    Takes Popen's keyword arguments (`preexec_fn` runs after ours). The child leads its own
    process group; end it with `kill_group`. The parent-death signal follows the *thread* that
    spawns: start a child that must outlive the current thread from a longer-lived one.
    """
    popen["preexec_fn"] = _die_with(os.getpid(), popen.get("preexec_fn"))
    popen["start_new_session"] = True
    popen.setdefault("shell", isinstance(command, str))
    process = subprocess.Popen(command, **popen)
    _watchdog.register(process.pid)
    return process


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group `process` leads, then reap it (draining its pipes, if any).

    Safe after the leader was reaped too: then only what is left of its group is killed.
    """
    if process.returncode is None or _leftover_group(process.pid):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.communicate()
    _watchdog.release(process.pid)


def _leftover_group(pgid: int) -> bool:
    """Whether processes of the group whose reaped leader was `pgid` still run.

    The id of a group with members is never given to a new process, so when no process has that
    id but the group answers, the group is still the one we started.
    """
    if os.path.exists(f"/proc/{pgid}"):
        return False  # a new process took the number: not ours
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_in_group(command: list[str] | str, *, cwd: Path, timeout_s: float, env: dict[str, str] | None = None,
                 merge_stderr: bool = False) -> subprocess.CompletedProcess:
    """Run `command` (a string runs in a shell) and capture its output as text.

    On timeout the whole group is killed and `subprocess.TimeoutExpired` is raised carrying the
    output so far; on any other interruption the group is killed and the exception goes on. When
    the command exits, what it left running in its group is killed too, so a background helper
    that still holds the output pipes cannot keep us waiting.
    """
    process = spawn(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
    )
    pipes = {stream: bytearray() for stream in (process.stdout, process.stderr) if stream is not None}
    try:
        exited = _read_until_exit(process, pipes, timeout_s)
        os.killpg(process.pid, signal.SIGKILL)  # safe: the unreaped leader still holds the group's id
        _read_rest(pipes)
        process.wait()
    except BaseException:
        kill_group(process)
        raise
    finally:
        _watchdog.release(process.pid)
    stdout, *stderr = (bytes(data).decode("utf-8", "replace") for data in pipes.values())
    stderr = stderr[0] if stderr else None
    if not exited:
        raise subprocess.TimeoutExpired(command, timeout_s, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _read_until_exit(process: subprocess.Popen, pipes: dict, timeout_s: float) -> bool:
    """Collect the pipes' output until `process` exits (left unreaped); False when `timeout_s` passed first."""
    import selectors

    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for stream in pipes:
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ)
        exit_fd = _pidfd(process.pid)  # readable once the process exits; None: poll instead
        if exit_fd is not None:
            selector.register(exit_fd, selectors.EVENT_READ)
        try:
            while not _exited(process.pid):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for key, _ in selector.select(left if exit_fd is not None else min(left, 0.05)):
                    if key.fileobj == exit_fd:
                        continue
                    chunk = os.read(key.fileobj.fileno(), 65536)
                    if chunk:
                        pipes[key.fileobj] += chunk
                    else:
                        selector.unregister(key.fileobj)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
    return True


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(pid: int) -> bool:
    """Whether child `pid` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _read_rest(pipes: dict, timeout_s: float = 5.0) -> None:
    """Read what is left in the pipes once the group is dead, for at most `timeout_s` (a process
    that left the group may still hold them open), then close them."""
    deadline = time.monotonic() + timeout_s
    for stream, data in pipes.items():
        while time.monotonic() < deadline:
            try:
                chunk = os.read(stream.fileno(), 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                break
            data += chunk
        stream.close()


def mark_session(name: str) -> str:
    """Mark every process this one starts from now on as belonging to session `name`; the marker."""
    marker = f"{name}#{os.getpid()}"
    os.environ[MARKER] = marker
    return marker


def marked(name: str) -> list[int]:
    """The pids of live processes (other than this one) marked as session `name` by another process."""
    ours = os.environ.get(MARKER)
    found = []
    for entry in _proc_entries():
        value = _environ_value(entry, MARKER)
        if value is not None and value != ours and value.rpartition("#")[0] == name:
            found.append(entry)
    return found


def kill_marked(name: str, *, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL every process marked as session `name` by another process, and wait until they are gone.

    Returns the pids killed; raises `TimeoutError` naming those that would not die.
    """
    killed: list[int] = []
    deadline = time.monotonic() + timeout_s
    while True:
        alive = marked(name)
        if not alive:
            return killed
        if time.monotonic() > deadline:
            raise TimeoutError(f"process(es) {', '.join(map(str, alive))} would not stop")
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            if pid not in killed:
                killed.append(pid)
        time.sleep(0.05)


def _proc_entries() -> list[int]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return [int(name) for name in names if name.isdigit() and int(name) != me]


def _environ_value(pid: int, key: str) -> str | None:
    """The value of `key` in the environment process `pid` started with; None if unset, gone or a zombie."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            data = file.read()
    except OSError:
        return None
    prefix = key.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode("utf-8", "replace")
    return None
