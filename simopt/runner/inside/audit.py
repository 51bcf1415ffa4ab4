"""The audit tripwire of a run: refuse and report what an engine has no business doing.

Installed in every run child before the engine is imported (`sys.addaudithook`: it cannot be
removed). An engine computes; it never opens the network, starts or signals processes, writes
outside its private temporary directory, reads outside its own tree and the Python
installation, loads foreign libraries or walks the garbage collector's object graph. Each such
attempt is refused with PermissionError and reported to the zygote, which tells the harness:
the run ends as `tamper` whether or not the engine caught the error.

This is a tripwire, not the wall: code that corrupts its own interpreter can get past an audit
hook. The sandbox around the process (bubblewrap or Landlock, cgroup limits, clocks read from
outside) is what holds; the tripwire makes an attempt visible and its refusal deterministic.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys

REFUSED = (
    "socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.system",
    "os.kill", "os.killpg", "os.startfile", "signal.pthread_kill", "pty.", "urllib.", "http.", "ftplib.",
    "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "ctypes.dlsym", "ctypes.cdata", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.call_function", "os.add_dll_directory", "sqlite3.connect",
)
REFUSED_MODULES = frozenset({"_posixsubprocess", "_socket", "_ctypes_test", "resource", "_multiprocessing"})
FILE_CHANGES = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                "os.symlink", "os.truncate", "os.utime", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
                "shutil.copytree", "shutil.move", "shutil.rmtree", "shutil.chown", "shutil.make_archive",
                "shutil.unpack_archive", "tempfile.mkstemp", "tempfile.mkdtemp")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _path(value) -> str | None:
    if isinstance(value, int):
        return None  # a descriptor already open
    try:
        text = os.fsdecode(os.fspath(value))
    except TypeError:
        return None
    return os.path.abspath(text)


def install(audit_fd: int, *, readable: tuple[str, ...], writable: tuple[str, ...]) -> None:
    """Add the tripwire for this process: reads under `readable`, writes under `writable` only."""
    flags = fcntl.fcntl(audit_fd, fcntl.F_GETFL)
    fcntl.fcntl(audit_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    readable = tuple(readable) + tuple(writable)
    dumps, write = json.dumps, os.write

    def refuse(event: str, detail: str) -> None:
        try:
            write(audit_fd, (dumps({"event": event, "detail": detail[:300]}) + "\n").encode())
        except OSError:
            pass  # a full or closed channel: the refusal still stands
        raise PermissionError(f"refused by the simopt sandbox: {event} ({detail[:200]})")

    def judge(event: str, args: tuple) -> None:
        if event == "open":
            path = _path(args[0])
            if path is None:
                return
            mode, flag_bits = args[1], args[2] if len(args) > 2 else 0
            writing = (any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flag_bits or 0) & WRITE_FLAGS))
            if writing and not _under(path, writable):
                refuse("write outside the private temporary directory", path)
            if not writing and not _under(path, readable):
                refuse("read outside the engine's tree", path)
        elif event in ("os.listdir", "os.scandir"):
            path = _path(args[0] if args and args[0] is not None else ".")
            if path is not None and not _under(path, readable):
                refuse("listed a directory outside the engine's tree", path)
        elif event == "import":
            module, filename = args[0], args[1] if len(args) > 1 else None
            if module in REFUSED_MODULES:
                refuse("imported a module that reaches outside the process", str(module))
            if filename and not _under(os.path.abspath(filename), readable):
                refuse("imported code from outside the engine's tree", str(filename))
        elif event == "ctypes.dlopen":
            if args and args[0] is not None:
                refuse("loaded a foreign library", str(args[0]))
        elif event.startswith(FILE_CHANGES):
            for value in args:
                path = _path(value) if isinstance(value, (str, bytes, os.PathLike)) else None
                if path is not None and not _under(path, writable):
                    refuse("changed a file outside the private temporary directory", f"{event} {path}")
        elif event.startswith(REFUSED):
            refuse(event, repr(args)[:300])

    sys.addaudithook(judge)
