"""Start a process tree inside a sandbox, with its CPU clock read from outside; run a command in one.

Spawn from a thread that outlives the sandbox (the main thread, or a pool thread kept until the
sandbox closes): the parent-death signal that kills a sandbox whose parent dies fires when the
*thread* that started it exits.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Sequence

from simopt.errors import UserError
from simopt.processes import guard_sandbox, release_sandbox
from simopt.sandbox import backends
from simopt.sandbox.cpu import Cgroup, ProcessTreeClock
from simopt.sandbox.policy import Policy

BACKENDS = ("bwrap", "landlock", "none")
CHOICE_VARIABLE = "SIMOPT_SANDBOX"  # auto | bwrap | landlock | none; --no-sandbox sets none
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"


class SandboxUnavailable(UserError):
    """No sandbox can be built here, and the user did not pass --no-sandbox."""


def available(backend: str) -> bool:
    """Whether `backend` works on this machine."""
    if backend == "bwrap":
        return backends.bwrap_works()
    if backend == "landlock":
        return backends.landlock_abi() >= 1
    return backend == "none"


def choose(requested: str | None = None) -> str:
    """The backend to use: `requested`, else $SIMOPT_SANDBOX, else the best one that works.

    SandboxUnavailable (one line, naming the package) when none works and none was asked for.
    """
    wanted = requested or os.environ.get(CHOICE_VARIABLE) or "auto"
    if wanted not in (*BACKENDS, "auto"):
        raise UserError(f"{CHOICE_VARIABLE}(={wanted!r}) must be one of auto, {', '.join(BACKENDS)}")
    if wanted != "auto":
        if not available(wanted):
            raise SandboxUnavailable(f"the {wanted} sandbox does not work on this machine: {INSTALL_HINT}")
        return wanted
    for backend in ("bwrap", "landlock"):
        if available(backend):
            return backend
    raise SandboxUnavailable(
        f"no sandbox for candidate code: {INSTALL_HINT}, or use a kernel with Landlock; "
        "--no-sandbox runs candidates unconfined (recorded in the session)")


def description(backend: str) -> str:
    """How a backend confines, for session lines, reports and notices."""
    return {
        "bwrap": "bubblewrap: own namespaces, read-only system, private /tmp, no network",
        "landlock": "Landlock: read-only allow-list, private temp, no TCP, no signals outside (bubblewrap not installed)",
        "none": "none: candidate code runs unconfined",
    }[backend]


class Sandboxed:
    """A process tree started under a policy: its Popen, its CPU clock, and how to end it."""

    def __init__(self, process: subprocess.Popen, backend: str, cgroup: Cgroup | None, tmp: Path | None,
                 guard: str | None = None) -> None:
        self.process, self.backend, self.cgroup, self.tmp, self.guard = process, backend, cgroup, tmp, guard
        self.clock = cgroup if cgroup is not None else ProcessTreeClock(process.pid)
        self._closed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def usage_ns(self) -> int:
        """CPU nanoseconds the tree has used so far (kernel accounting, read from outside)."""
        return self.clock.usage_ns()

    def memory_exceeded(self) -> bool:
        """Whether the tree hit its memory limit (known with a cgroup only)."""
        return self.cgroup is not None and self.cgroup.memory_exceeded()

    def kill(self) -> None:
        """SIGKILL the whole tree."""
        if self.cgroup is not None:
            self.cgroup.kill()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.kill()

    def close(self) -> None:
        """Kill the tree, reap it, remove its cgroup and its temporary directory."""
        if self._closed:
            return
        self._closed = True
        self.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.guard is not None:
            release_sandbox(self.guard)


def spawn(argv: Sequence[str], policy: Policy, *, backend: str | None = None, pass_fds: Sequence[int] = (),
          cpu: int | None = None, stdin: int | IO | None = subprocess.DEVNULL, stdout: int | IO | None = None,
          stderr: int | IO | None = None) -> Sandboxed:
    """Start `argv` confined by `policy` with the chosen backend; pinned to `cpu` when given."""
    backend = choose(backend)
    cgroup = Cgroup.create(memory_bytes=policy.memory_bytes, max_processes=policy.max_processes)
    tmp = None if backend == "bwrap" else Path(tempfile.mkdtemp(prefix="simopt-sandbox-"))
    limits = backends.common_limits(policy)
    libc = backends.load_libc()
    confine = backends.landlock_confinement(policy, tmp) if backend == "landlock" else None

    def before_exec() -> None:
        if cgroup is not None:
            cgroup.attach_self()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if confine is not None:
            confine()
        else:
            limits()
            if backend == "none":
                resource.setrlimit(resource.RLIMIT_AS, (policy.memory_bytes, policy.memory_bytes))
                backends.drop_capabilities(libc)

    if backend == "bwrap":
        command, env, cwd = backends.bwrap_argv(policy, list(argv), private_tmp=None), {}, None
    else:
        env = {**policy.env, "HOME": str(tmp), "TMPDIR": str(tmp)}
        command, cwd = list(argv), (tmp if policy.cwd == "/tmp" else policy.cwd)
    # Should simopt die first, the watchdog kills the cgroup's processes and removes it and the
    # private folder: the parent-death signal reaches only the sandbox's first process, and under
    # Landlock (no pid namespace) a descendant that called setsid() would outlive it.
    guard = guard_sandbox(list(cgroup.paths.values()) if cgroup is not None else [], tmp) if cgroup or tmp else None
    try:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr,
                                   pass_fds=tuple(pass_fds), start_new_session=True, preexec_fn=before_exec)
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if guard is not None:
            release_sandbox(guard)
        raise
    return Sandboxed(process, backend, cgroup, tmp, guard)
