"""The orchestrator's side of a timing worker: start it, pin it, ask it, stop it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

from simopt.engine import DEFAULT_ENGINE

STDERR_TAIL_LINES = 12


class WorkerCrash(Exception):
    """The worker's version failed: an engine exception, a dead process, or no answer in time."""

    def __init__(self, message: str, role: str) -> None:
        super().__init__(message)
        self.message, self.role = message, role


class Worker:
    """One persistent worker process running one version's engine."""

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
        self.root = Path(root)
        self.role = role
        self.timeout_s = timeout_s
        self._stderr = tempfile.TemporaryFile()
        # -P keeps the version's own directory off sys.path: the harness stays the installed one.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "simopt.measure.worker", str(self.root), "--engine", engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=self.root,
            env={**os.environ, **(environment or {}), "PYTHONHASHSEED": str(hash_seed)},
            text=True,
            encoding="utf-8",
        )
        if cpu is not None:
            os.sched_setaffinity(self._process.pid, {cpu})
        ready = self._expect(self._read())
        self.randomized: bool = ready.get("randomized", True)  # laid out with ASLR

    def pin(self, cpu: int) -> None:
        """Move the worker process to one CPU."""
        os.sched_setaffinity(self._process.pid, {cpu})

    def request(self, **message) -> dict:
        """Send one request and return its reply; raise WorkerCrash when the version failed."""
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._crash("the worker process died")
        return self._expect(self._read())

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self._process.poll() is None:
            try:
                self._process.stdin.write('{"op": "exit"}\n')
                self._process.stdin.flush()
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            stream.close()
        self._stderr.close()

    def _read(self) -> dict:
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout_s)
        if not ready:
            self._process.kill()
            self._process.wait()
            self._crash(f"no answer within {self.timeout_s:g} s")
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._crash(f"the worker process died (exit code {self._process.returncode})")
        return json.loads(line)

    def _expect(self, reply: dict) -> dict:
        if "error" in reply:
            raise WorkerCrash(reply["error"], self.role)
        return reply

    def _crash(self, what: str) -> None:
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").splitlines()[-STDERR_TAIL_LINES:]
        raise WorkerCrash("\n".join([what, *lines]).rstrip(), self.role)
