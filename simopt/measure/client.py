"""The orchestrator's side of a timing worker: start it, pin it, ask it, stop it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from simopt.engine import DEFAULT_ENGINE

STDERR_TAIL_LINES = 12
CLOSE_TIMEOUT_S = 5.0


class WorkerCrash(Exception):
    """The worker's version failed: an engine exception, a dead process, or no answer in time."""

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.message, self.role = message, role


class Worker:
    """One persistent worker process running one version's engine.

    Either a child of this process (`Worker(root, ...)`), or one of the two children of a lane's
    zygote (`start_pair`), which this process reaches only through its pipes and its pid.
    """

    def __init__(
        self,
        root: Path,
        *,
        cpu: int | None,
        hash_seed: int,
        engine: str = DEFAULT_ENGINE,
        timeout_s: float = 60.0,
        role: str = "worker",
        environment: dict[str, str] | None = None,
    ) -> None:
        stderr = tempfile.TemporaryFile()
        # -P keeps the version's own directory off sys.path: the harness stays the installed one.
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "simopt.measure.worker", str(root), "--engine", engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=root,
            env={**os.environ, **(environment or {}), "PYTHONHASHSEED": str(hash_seed)},
            text=True,
            encoding="utf-8",
        )
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        self._attach(role, timeout_s, process.stdin, process.stdout, stderr, process)

    @classmethod
    def _forked(cls, role: str, timeout_s: float, stdin: IO[str], stdout: IO[str], stderr: IO[bytes]) -> Worker:
        worker = cls.__new__(cls)
        worker._attach(role, timeout_s, stdin, stdout, stderr, None)
        return worker

    def _attach(self, role: str, timeout_s: float, stdin: IO[str], stdout: IO[str], stderr: IO[bytes],
                process: subprocess.Popen | None) -> None:
        self.role = role
        self.timeout_s = timeout_s
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._process = process  # None for a zygote's child: not ours to wait for
        self.pid: int | None = process.pid if process else None
        self._closed = False
        ready = self._expect(self._read())
        self.pid = ready.get("pid", self.pid)
        self.randomized: bool = ready.get("randomized", True)  # laid out with ASLR

    def pin(self, cpu: int) -> None:
        """Move the worker process to one CPU."""
        os.sched_setaffinity(self.pid, {cpu})

    def request(self, **message) -> dict:
        """Send one request and return its reply; raise WorkerCrash when the version failed."""
        try:
            self._stdin.write(json.dumps(message) + "\n")
            self._stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._crash("the worker process died")
        return self._expect(self._read())

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stdin.write('{"op": "exit"}\n')
            self._stdin.flush()
            if self._process is not None:
                self._process.wait(timeout=CLOSE_TIMEOUT_S)
            else:
                self._await_end_of_output(CLOSE_TIMEOUT_S)
        except (OSError, ValueError, subprocess.TimeoutExpired, TimeoutError):
            self._kill()
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()

    def _await_end_of_output(self, timeout_s: float) -> None:
        """Wait until the worker closes its end of the reply pipe (it exited)."""
        while True:
            ready, _, _ = select.select([self._stdout], [], [], timeout_s)
            if not ready:
                raise TimeoutError
            if not self._stdout.readline():
                return

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        elif self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _read(self) -> dict:
        ready, _, _ = select.select([self._stdout], [], [], self.timeout_s)
        if not ready:
            self._kill()
            self._crash(f"no answer within {self.timeout_s:g} s")
        line = self._stdout.readline()
        if not line:
            if self._process is not None:
                self._process.wait()
                self._crash(f"the worker process died (exit code {self._process.returncode})")
            self._crash("the worker process died")
        return json.loads(line)

    def _expect(self, reply: dict) -> dict:
        if "error" in reply:
            raise WorkerCrash(reply["error"], self.role)
        return reply

    def _crash(self, what: str) -> None:
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").splitlines()[-STDERR_TAIL_LINES:]
        raise WorkerCrash("\n".join([what, *lines]).rstrip(), self.role)


class WorkerPair:
    """A lane's two workers, forked from one zygote: same address-space layout, one per version."""

    def __init__(self, zygote: subprocess.Popen, workers: list[Worker]) -> None:
        self._zygote = zygote
        self.baseline, self.candidate = workers

    def close(self) -> None:
        """Stop both workers, then reap the zygote."""
        self.baseline.close()
        self.candidate.close()
        try:
            self._zygote.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._zygote.kill()
            self._zygote.wait()


def start_pair(
    baseline_root: Path,
    candidate_root: Path,
    *,
    cpu: int | None,
    hash_seed: int,
    engine: str = DEFAULT_ENGINE,
    timeout_s: float = 60.0,
) -> WorkerPair:
    """Start a zygote (fresh random layout) that forks one worker per version; wait until both are ready."""
    specs, parent_ends, child_ends, stderr_files = [], [], [], []
    for root in (baseline_root, candidate_root):
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        stderr = tempfile.TemporaryFile()
        stderr_files.append(stderr)
        child_ends += [requests_read, replies_write]
        parent_ends.append((requests_write, replies_read))
        specs += ["--worker", str(root), str(requests_read), str(replies_write), str(stderr.fileno())]
    command = [sys.executable, "-P", "-m", "simopt.measure.zygote", "--engine", engine, *specs]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    try:
        zygote = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_files[0],
            pass_fds=child_ends + [stderr.fileno() for stderr in stderr_files],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        )
    finally:
        for fd in child_ends:
            os.close(fd)
    workers = []
    try:
        for role, (requests_write, replies_read), stderr in zip(("baseline", "candidate"), parent_ends, stderr_files):
            stdin = os.fdopen(requests_write, "w", encoding="utf-8")
            stdout = os.fdopen(replies_read, "r", encoding="utf-8")
            workers.append(Worker._forked(role, timeout_s, stdin, stdout, stderr))
    except BaseException:
        for worker in workers:
            worker.close()
        zygote.kill()
        zygote.wait()
        raise
    return WorkerPair(zygote, workers)
