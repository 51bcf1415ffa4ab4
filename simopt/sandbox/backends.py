"""The two ways to confine a process: bubblewrap (preferred) and Landlock (a pip-installable fallback).

bubblewrap (Debian package `bubblewrap`, what Codex CLI and Claude Code use on Linux) builds a
new mount, pid, network, ipc, uts and user namespace: only the listed paths exist, read-only
unless listed writable, with a private size-limited /tmp, no network, an unprivileged user and
no capabilities, and the whole tree dies with its parent.

Landlock (a Linux security module, kernel >= 5.13; the `landlockpy` binding from PyPI) is for
machines without bubblewrap: the process may read only the listed paths and write only its
private temporary directory, may not connect or bind TCP, signal or reach abstract sockets
outside its domain, or ptrace anything outside it; where the kernel lets it, it also gets a
network namespace of its own. It cannot hide paths inside a readable directory, remap paths or
give a pid namespace of its own: docs/threat-model.md says what that costs.
"""

from __future__ import annotations

import ctypes
import functools
import operator
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Callable

from simopt.sandbox.policy import SYSTEM_PATHS, Policy

ADDR_NO_RANDOMIZE = 0x0040000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NOBODY = 65534


def bwrap_path() -> str | None:
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def bwrap_works() -> bool:
    """Whether bubblewrap can build its namespaces here (it cannot in some containers)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return False
    argv = bwrap_argv(Policy(read_only=(), hidden=()), ["/bin/sh", "-c", "exit 0"], private_tmp=None)
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=None)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none, or the binding is not installed)."""
    try:
        import landlockpy
    except ImportError:
        return 0
    try:
        return landlockpy.abi_version()
    except Exception:
        return 0


def _system_binds(args: list[str]) -> None:
    for name in SYSTEM_PATHS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.exists():
            args += ["--ro-bind", name, name]


def bwrap_argv(policy: Policy, argv: list[str], *, private_tmp: Path | None) -> list[str]:
    """The bubblewrap command line that runs `argv` under `policy`.

    `private_tmp`: a host directory bound as /tmp (its contents stay reachable from outside);
    None gives a size-limited tmpfs.
    """
    args = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    _system_binds(args)
    args += ["--proc", "/proc", "--dev", "/dev"]
    if private_tmp is None:
        args += ["--size", str(policy.tmp_bytes), "--tmpfs", "/tmp"]
    else:
        args += ["--bind", str(private_tmp), "/tmp"]
    # Everything else after /tmp, which would hide what lies under it (a checkout or a venv in
    # /tmp), and the hidden paths last, over whatever bind holds them.
    for path in policy.read_only:
        args += ["--ro-bind", str(path), str(path)]
    for source, inside in policy.binds:
        args += ["--ro-bind", str(source), inside]
    for source, inside in policy.writable:
        args += ["--bind", str(source), inside]
    for hidden in policy.hidden:
        if hidden.is_dir():
            args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
        elif hidden.exists():
            args += ["--ro-bind", "/dev/null", str(hidden)]
    args += ["--remount-ro", "/dev", "--clearenv"]
    for name, value in policy.env.items():
        args += ["--setenv", name, value]
    args += ["--chdir", policy.cwd, "--", *argv]
    return args


def load_libc():
    return ctypes.CDLL(None, use_errno=True)


def drop_capabilities(libc) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable capability sets.

    A root process keeps its file permissions as the owner of root's files but can no longer
    reboot, load modules, bypass permissions or regain anything by exec.
    """
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)  # fails harmlessly past the last one
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def common_limits(policy: Policy) -> Callable[[], None]:
    """Resource limits and parent-death signal, applied between fork and exec.

    No RLIMIT_CPU: with a CPU limit armed the kernel updates the process's CPU clock only at
    scheduler ticks (time.process_time() moved in 4 ms steps inside, 0.8 ms at most without),
    which spoils any bench that times itself; time is bounded by the harness's wall-clock
    timeouts on every step and command instead, which kill the whole sandbox."""
    libc = load_libc()

    def apply() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if policy.fixed_layout:
            libc.personality(ctypes.c_ulong(libc.personality(ctypes.c_ulong(0xFFFFFFFF)) | ADDR_NO_RANDOMIZE))
        resource.setrlimit(resource.RLIMIT_FSIZE, (policy.file_bytes, policy.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def landlock_confinement(policy: Policy, private_tmp: Path) -> Callable[[], None]:
    """The function a child runs before exec to confine itself with Landlock (and limits)."""
    from landlockpy import AccessFS, Ruleset, Scope

    libc = load_libc()
    read = AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.EXECUTE
    everything = functools.reduce(operator.or_, AccessFS)
    on_files = AccessFS.READ_FILE | AccessFS.EXECUTE  # a rule on a file may grant only file rights
    readable = [Path(p) for p in SYSTEM_PATHS if Path(p).exists()]
    readable += [*policy.read_only, *(source for source, _ in policy.binds), Path("/dev/null"), Path("/dev/urandom")]
    hidden = set(policy.hidden)
    limits = common_limits(policy)

    def expand(path: Path) -> list[Path]:
        # Landlock only adds rights, so a readable directory that holds a hidden entry is
        # granted entry by entry instead.
        if not any(h.parent == path for h in hidden):
            return [path]
        return [entry for entry in path.iterdir() if entry not in hidden]

    def apply() -> None:
        limits()
        resource.setrlimit(resource.RLIMIT_AS, (policy.memory_bytes, policy.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (policy.max_processes, policy.max_processes))
        if libc.unshare(CLONE_NEWNET) != 0:
            libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)  # without a namespace, Landlock still refuses TCP
        with Ruleset(scoped=Scope.SIGNAL | Scope.ABSTRACT_UNIX_SOCKET) as ruleset:
            for path in readable:
                for allowed in expand(path):
                    ruleset.allow_path(allowed, read if allowed.is_dir() else read & on_files)
            for path, _ in policy.writable:
                ruleset.allow_path(path, everything)
            ruleset.allow_path(private_tmp, everything)
            ruleset.restrict()  # every TCP bind and connect is handled, and none is granted
        drop_capabilities(libc)

    return apply
