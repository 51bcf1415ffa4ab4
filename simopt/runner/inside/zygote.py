"""The runner's zygote: the sandboxed parent of every run of candidate code. Harness code, stdlib only.

Run inside a sandbox as `python -I zygote.py`, with stdin a unix socket to the harness (the
control channel). It never imports candidate code: it pre-imports the engine's dependencies so
runs start fast, makes itself undumpable (no run can ptrace it or write its memory), then forks
one child per run. The child installs the audit tripwire (audit.py), takes its own data socket,
imports the engine and serves one run (serve.py), then exits. After every run the zygote reaps
what the child left and empties the private temporary directory, so no run can see anything of
an earlier one, in memory or on disk.

Control messages, one JSON object per line:
    harness -> zygote  {"op": "configure", "engine": DIR, "module": NAME}    once, first
                       {"op": "run", "id": N}          fork run N; its data socket comes back
                       {"op": "exit"}
    zygote -> harness  {"ready": true, "pid": P, "randomized": bool}        once, at start
                       {"started": N} + the data socket (SCM_RIGHTS)
                       {"audit": N, "event": E, "detail": D}    an operation run N attempted and was refused
                       {"ended": N, "status": S, "leftover": bool}    after the run's clean-up
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402  the run's side, loaded before any fork

del sys.path[0]

CONTROL_FD = 0
MAX_LINE = 1 << 20


def _harden() -> bool:
    """Undumpable, subreaper for orphans of a run; True if the address space was randomized."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/PID/mem from the runs
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: a run's orphans come back to us
    randomized = not libc.personality(ctypes.c_ulong(0xFFFFFFFF)) & 0x0040000
    del libc
    for name in [name for name in sys.modules if name == "ctypes" or name.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]  # no ready-made foreign functions left for a run to call
    return randomized


def _preload() -> None:
    """Import what every engine run needs, once, before any fork (never candidate code)."""
    import hashlib  # noqa: F401
    import heapq  # noqa: F401
    import traceback  # noqa: F401

    try:
        import networkx  # noqa: F401
        import simpy  # noqa: F401
    except ImportError:
        pass  # the run reports the import error of the engine itself


MAX_SOURCE_FILES, MAX_SOURCE_BYTES = 2000, 20 * 1024 * 1024


def _compile_engine(directory: str) -> dict:
    """Every .py file of the engine compiled (never executed): runs import from these, not from .pyc.

    A file that does not compile is left out; the run's own import then reports its error.
    """
    codes, total = {}, 0
    for folder, subfolders, files in os.walk(directory):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py") or len(codes) >= MAX_SOURCE_FILES:
                continue
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as source:
                    data = source.read(MAX_SOURCE_BYTES + 1)
                total += len(data)
                if total > MAX_SOURCE_BYTES:
                    return codes
                codes[path] = compile(data, path, "exec", dont_inherit=True)
            except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
                continue
    return codes


def _empty(directory: str) -> None:
    """Remove what a run left in `directory`, never crossing into another file system: the
    sandbox mounts read-only trees under /tmp when they live there (a checkout or a virtual
    environment in /tmp), and walking one of those cost 150 ms per run for nothing. Iterative,
    so no depth of nesting a run leaves behind can exhaust the stack."""
    device = os.stat(directory).st_dev
    pending, emptied = [directory], []
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.stat(follow_symlinks=False).st_dev == device:  # else a mount point: left alone
                        pending.append(entry.path)
                        emptied.append(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
    for path in reversed(emptied):  # deepest first
        try:
            os.rmdir(path)
        except OSError:
            continue


class Control:
    """The control socket: JSON lines in and out."""

    def __init__(self) -> None:
        self.sock = socket.socket(fileno=CONTROL_FD)
        self.buffer = b""

    def send(self, message: dict, fds: list[int] | None = None) -> None:
        data = (json.dumps(message) + "\n").encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def receive(self) -> dict | None:
        """The next message, or None at end of input."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
            if len(self.buffer) > MAX_LINE:
                return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)


MAX_AUDIT_RECORDS = 20  # per run: an attempt is evidence enough, a flood must not block the zygote


def _run(control: Control, run_id: int, engine: str, module: str, tmp: str, codes: dict) -> None:
    """Fork run `run_id`, relay its audit records, wait for it, clean up after it."""
    mine, theirs = socket.socketpair()
    audit_read, audit_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.close(audit_read)
            mine.close()
            control.sock.close()
            code = serve.serve(theirs.detach(), audit_write, engine, module, tmp, codes)
        finally:
            os._exit(code)
    os.close(audit_write)
    theirs.close()
    control.send({"started": run_id}, [mine.fileno()])
    mine.close()
    pidfd = os.pidfd_open(pid)
    watched = [pidfd, audit_read, control.sock]
    audit_buffer, forwarded, dropped = b"", 0, 0
    while True:
        ready, _, _ = select.select(watched, [], [])
        if audit_read in ready:
            chunk = os.read(audit_read, 65536)
            if not chunk:
                watched.remove(audit_read)
                if not select.select([pidfd], [], [], 0.2)[0]:  # the run lives on without its audit channel
                    control.send({"audit": run_id, "event": "audit channel closed",
                                  "detail": "the run closed the descriptor its refused operations are reported on"})
            audit_buffer += chunk
            while b"\n" in audit_buffer:
                line, _, audit_buffer = audit_buffer.partition(b"\n")
                if forwarded >= MAX_AUDIT_RECORDS:
                    dropped += 1
                    continue
                forwarded += 1
                control.send({"audit": run_id, **_audit_record(line)})
        if control.sock in ready:
            message = control.receive()
            if message is None or message.get("op") in ("exit", "kill"):
                os.kill(pid, signal.SIGKILL)
                if message is None:
                    watched.remove(control.sock)
        if pidfd in ready:
            break
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    os.close(audit_read)
    if dropped:
        control.send({"audit": run_id, "event": "more refused operations", "detail": f"{dropped} more not listed"})
    leftover = _reap_orphans()
    _empty(tmp)
    control.send({"ended": run_id, "status": status, "leftover": leftover})


def _audit_record(line: bytes) -> dict:
    try:
        record = json.loads(line)
        return {"event": str(record["event"])[:100], "detail": str(record["detail"])[:500]}
    except (ValueError, KeyError, TypeError):
        return {"event": "garbled audit record", "detail": line[:200].decode("utf-8", "replace")}


def _reap_orphans() -> bool:
    """Reap what the run left behind; True if a process of it was still running (then killed)."""
    leftover = False
    for _ in range(100):
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return leftover
        if pid == 0:  # children remain and none has exited: the run left a process running
            leftover = True
            children = _children()
            if not children:
                return leftover  # cannot see them here: the harness ends this sandbox
            for child in children:
                try:
                    os.kill(child, signal.SIGKILL)
                except OSError:
                    pass
            select.select([], [], [], 0.01)
    return leftover


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as children:
            return [int(pid) for pid in children.read().split()]
    except OSError:
        return []


def main() -> int:
    randomized = _harden()
    _preload()
    control = Control()
    control.send({"ready": True, "pid": os.getpid(), "randomized": randomized})
    configure = control.receive()
    if not configure or configure.get("op") != "configure":
        return 2
    engine, module = str(configure["engine"]), str(configure["module"])
    codes = _compile_engine(engine)
    tmp = os.environ.get("TMPDIR", "/tmp")
    import gc

    gc.freeze()  # the preloaded modules and compiled engine: no collection in a run touches (copies) their pages
    while True:
        message = control.receive()
        if message is None or message.get("op") == "exit":
            return 0
        if message.get("op") == "run" and "--single" in sys.argv:
            return _run_here(control, int(message["id"]), engine, module, tmp, codes)
        if message.get("op") == "run":
            _run(control, int(message["id"]), engine, module, tmp, codes)


def _run_here(control: Control, run_id: int, engine: str, module: str, tmp: str, codes: dict) -> int:
    """One run in this very process, then exit: for counting its instructions under valgrind.

    The zygote gives up its own trust here (it loads the engine), so nothing it says after the
    run is believed; what is counted is read by valgrind and what is answered is validated.
    """
    mine, theirs = socket.socketpair()
    control.send({"started": run_id}, [mine.fileno()])
    mine.close()
    control.sock.close()
    return serve.serve(theirs.detach(), os.open(os.devnull, os.O_WRONLY), engine, module, tmp, codes)


if __name__ == "__main__":
    sys.exit(main())
