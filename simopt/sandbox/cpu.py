"""CPU time of a sandboxed process tree, read from outside it: the kernel's own accounting.

Preferred: a cgroup per sandbox (v2 `cpu.stat`, or v1 `cpuacct.usage` in nanoseconds), which
counts every thread and every process of the tree, exited ones included, and also caps its
memory and its number of processes. Where no cgroup can be created (not root, no delegated
subtree), the fallback sums the CPU clocks of the live processes of the tree (every thread,
exited threads included; `/proc/PID/task/TID/schedstat` where that clock cannot be read); CPU
of a process that already exited is then lost, so the runner keeps every process alive until
its time has been read. Nothing here runs in the sandboxed process.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpuacct", "pids", "memory")
GROUP = "simopt"


class Cgroup:
    """A cgroup (v1: one per controller; v2: one) holding a sandbox's processes."""

    def __init__(self, paths: dict[str, Path], version: int) -> None:
        self.paths, self.version = paths, version

    @classmethod
    def create(cls, *, memory_bytes: int, max_processes: int) -> Cgroup | None:
        """A fresh cgroup with the limits set, or None when this process may not create one."""
        name = f"{GROUP}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        unified = CGROUP_ROOT / "cgroup.controllers"
        if unified.is_file():
            return cls._create_v2(name, memory_bytes, max_processes)
        return cls._create_v1(name, memory_bytes, max_processes)

    @classmethod
    def _create_v1(cls, name: str, memory_bytes: int, max_processes: int) -> Cgroup | None:
        if not os.access(CGROUP_ROOT / "cpuacct", os.W_OK):
            return None
        paths = {}
        try:
            for controller in V1_CONTROLLERS:
                base = CGROUP_ROOT / controller
                if not base.is_dir():
                    continue
                path = base / GROUP / name
                path.mkdir(parents=True)
                paths[controller] = path
            group = cls(paths, 1)
            if "pids" in paths:
                (paths["pids"] / "pids.max").write_text(str(max_processes))
            if "memory" in paths:
                (paths["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                swap = paths["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(memory_bytes))
            return group
        except OSError:
            cls(paths, 1).remove()
            return None

    @classmethod
    def _create_v2(cls, name: str, memory_bytes: int, max_processes: int) -> Cgroup | None:
        parent = CGROUP_ROOT / GROUP
        try:
            parent.mkdir(exist_ok=True)
            wanted = set((CGROUP_ROOT / "cgroup.controllers").read_text().split()) & {"cpu", "pids", "memory"}
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
            if wanted - enabled:
                (CGROUP_ROOT / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
                (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
            path = parent / name
            path.mkdir()
        except OSError:
            return None
        group = cls({"unified": path}, 2)
        try:
            if (path / "pids.max").exists():
                (path / "pids.max").write_text(str(max_processes))
            if (path / "memory.max").exists():
                (path / "memory.max").write_text(str(memory_bytes))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
        except OSError:
            group.remove()
            return None
        return group

    def attach_self(self) -> None:
        """Move the calling process into the cgroup (run in a child between fork and exec)."""
        for path in self.paths.values():
            with open(path / "cgroup.procs", "w") as procs:
                procs.write("0")

    def usage_ns(self) -> int:
        """CPU nanoseconds used by every process that ever ran in the cgroup."""
        if self.version == 1:
            return int(read_bytes(str(self.paths["cpuacct"] / "cpuacct.usage")))
        for line in read_bytes(str(self.paths["unified"] / "cpu.stat")).splitlines():
            key, _, value = line.partition(b" ")
            if key == b"usage_usec":
                return int(value) * 1000
        raise OSError("cpu.stat has no usage_usec")

    def pids(self) -> list[int]:
        """The processes in the cgroup now."""
        path = self.paths.get("cpuacct", self.paths.get("unified"))
        try:
            return [int(line) for line in read_bytes(str(path / "cgroup.procs")).split()]
        except (OSError, ValueError):
            return []

    def memory_exceeded(self) -> bool:
        """Whether the memory limit was hit (the kernel killed or refused for it)."""
        try:
            if self.version == 1 and "memory" in self.paths:
                if int((self.paths["memory"] / "memory.failcnt").read_text()) > 0:
                    return True
                # Recent kernels may leave failcnt at 0 after an OOM kill (seen on 6.18); the kill is counted.
                control = (self.paths["memory"] / "memory.oom_control").read_text().split()
                counts = dict(zip(control[::2], control[1::2]))
                return int(counts.get("oom_kill", 0)) > 0
            if self.version == 2:
                events = (self.paths["unified"] / "memory.events").read_text().split()
                counts = dict(zip(events[::2], map(int, events[1::2])))
                return counts.get("max", 0) > 0 or counts.get("oom_kill", 0) > 0
        except (OSError, ValueError):
            pass
        return False

    def kill(self) -> None:
        """SIGKILL every process in the cgroup."""
        if self.version == 2 and (self.paths["unified"] / "cgroup.kill").exists():
            try:
                (self.paths["unified"] / "cgroup.kill").write_text("1")
                return
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self, timeout_s: float = 5.0) -> None:
        """Kill what is left and delete the cgroup (retrying while the kernel reaps)."""
        deadline = time.monotonic() + timeout_s
        for path in self.paths.values():
            while path.exists():
                self.kill()
                try:
                    path.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)


class ProcessTreeClock:
    """CPU nanoseconds of the live processes descending from `root_pid` (schedstat, per thread)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid

    def pids(self) -> list[int]:
        """`root_pid` and its live descendants."""
        found, frontier = [], [self.root_pid]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{pid}/task/{tid}/children") as children:
                        frontier.extend(int(child) for child in children.read().split())
                except OSError:
                    pass
        return found

    def usage_ns(self) -> int:
        """Sum of on-CPU nanoseconds of every thread of the tree (of its live processes)."""
        total = 0
        for pid in self.pids():
            try:
                # The process's own CPU clock (what clock_getcpuclockid(pid) names): every thread it
                # ever had, exited ones included. The schedstat of /proc/PID/task/* below forgets a
                # thread as soon as it exits, so work done in a short-lived thread would be lost.
                total += time.clock_gettime_ns((~pid << 3) | 2)
                continue
            except OSError:
                pass
            for stat in task_files(pid, "schedstat"):
                try:
                    total += int(stat.split()[0])
                except (ValueError, IndexError):
                    pass
        return total


def read_bytes(path: str) -> bytes:
    """A kernel file's whole content, without Python's buffered file objects: the runner reads
    these several times per step, and io.open cost more than the read itself. (A seq file may
    hand out a page per read: read to the end.)"""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1]:
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks)
    finally:
        os.close(fd)


def task_files(pid: int, name: str) -> list[bytes]:
    """`/proc/PID/task/TID/<name>` of every thread of `pid` still there (none if `pid` is gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for tid in tasks:
        try:
            found.append(read_bytes(f"/proc/{pid}/task/{tid}/{name}"))
        except OSError:
            continue
    return found


def any_running(pids: list[int]) -> bool:
    """Whether any thread of these processes is running or runnable (state R)."""
    for pid in pids:
        for stat in task_files(pid, "stat"):
            fields = stat.rsplit(b")", 1)[-1].split(None, 1)
            if fields and fields[0] == b"R":
                return True
    return False
