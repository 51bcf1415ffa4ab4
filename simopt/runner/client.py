"""The harness's side of a runner: a sandboxed zygote for one version of an engine, and its runs.

    runner = Runner(root)                  # one sandbox, one zygote; nothing of the version imported here
    run = runner.start_run()               # a fresh child of the zygote: a run that has never simulated
    run.load(); run.build(instance)        # every step's CPU time is read from outside (cgroup / schedstat)
    run.advance(until); result = run.finish()
    run.close(); runner.close()

Whatever a run answers is checked: the protocol (one reply per request, nothing else), the
result's schema and digest (simopt.runner.results), the time reached and the event count's
monotonicity, the CPU it burns between steps, the processes it leaves behind and every
operation the audit tripwire refused. A breach raises Tamper with the evidence; a candidate
that fails honestly raises RunCrash or RunTimeout.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from simopt.runner.results import ForgedDigest, InvalidResult, check_result
from simopt.sandbox.cpu import any_running

INSIDE = Path(__file__).resolve().parent / "inside"
DEFAULT_ENGINE = "simopt/netsim"
MODULE = "netsim_target"
ENGINE_MOUNT = "/target"
RUNNER_MOUNT = "/runner"
START_TIMEOUT_S = 60.0
END_TIMEOUT_S = 10.0
MAX_REPLY = 512 * 1024 * 1024
IDLE_GAP_NS = 3_000_000  # CPU a run may use between two of its steps (reading a request, writing a reply)
IDLE_TOTAL_NS = 30_000_000  # ... and in all, in one run
SETTLE_S = 0.005  # at most this long for the run to fall asleep after a reply, before its CPU is read
STDERR_TAIL = 12


class RunnerError(Exception):
    """A run of candidate code went wrong; `evidence` says how."""

    status = "crash"

    def __init__(self, reason: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.evidence = evidence or {}


class RunCrash(RunnerError):
    """The engine raised, died, or answered something that is not a valid result."""


class RunTimeout(RunnerError):
    """A step did not finish within its time limit."""

    status = "timeout"


class Tamper(RunnerError):
    """The run tried to deceive or escape its judges: refused operations, forged answers, hidden work."""

    status = "tamper"


@dataclass
class Step:
    """One request's answer and its cost, measured from outside."""

    reply: dict[str, Any]
    cpu_s: float
    wall_s: float


class Runner:
    """A sandbox holding a zygote for the engine package at `root/engine`.

    `hash_seed` and `padding` shape the process (string hashing, stack position); two runners
    with equal values and a fixed layout start identical but for the engine they load.
    """

    def __init__(self, root: Path | str, *, engine: str = DEFAULT_ENGINE, hash_seed: int | None = None,
                 padding: int = 0, cpu: int | None = None, backend: str | None = None, fixed_layout: bool = True,
                 step_timeout_s: float = 600.0, role: str = "candidate", wrapper: Sequence[str] = (),
                 pass_fds: Sequence[int] = (), single: bool = False) -> None:
        from simopt.sandbox import Policy, choose, sandbox_env, spawn

        self.backend = choose(backend)
        self.root = Path(root).resolve()
        package = self.root / engine
        if not (package / "__init__.py").is_file():
            raise RunCrash(f"no engine package at {package}", {"path": str(package)})
        self.role, self.single = role, single
        self.idle_strikes: list[float] = []  # ms of each gap over IDLE_GAP_NS, in any run of this runner
        self.step_timeout_s = step_timeout_s
        self.hash_seed = random.randrange(2**32) if hash_seed is None else hash_seed
        env = sandbox_env({"PYTHONHASHSEED": str(self.hash_seed), "PAD": "x" * padding})
        policy = Policy(binds=((package, f"{ENGINE_MOUNT}/{engine}"), (INSIDE, RUNNER_MOUNT)), env=env,
                        fixed_layout=fixed_layout)
        self._control, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        try:
            # -s -P, not -I: the environment is already an allow-list, and -I would ignore PYTHONHASHSEED
            argv = [*wrapper, sys.executable, "-s", "-P", self._inside(INSIDE, RUNNER_MOUNT, "zygote.py")]
            self.sandbox = spawn(argv + (["--single"] if single else []), policy, backend=self.backend, cpu=cpu,
                                 stdin=theirs, stdout=subprocess.DEVNULL, stderr=self._stderr, pass_fds=pass_fds)
        finally:
            theirs.close()
        self._buffer = b""
        self._pending_fds: list[int] = []
        self._messages: list[dict[str, Any]] = []
        self._runs = 0
        self._closed = False
        self.active: Run | None = None
        try:
            ready = self._expect("ready", START_TIMEOUT_S)
            self.randomized = bool(ready.get("randomized", True))
            engine_inside = self._inside(package, f"{ENGINE_MOUNT}/{engine}")
            self._send({"op": "configure", "engine": engine_inside, "module": MODULE})
        except BaseException:
            self.close()
            raise

    def _inside(self, host: Path, mount: str, *names: str) -> str:
        """Where a bound path is seen by the sandboxed process (Landlock cannot remap paths)."""
        base = mount if self.backend == "bwrap" else str(host)
        return "/".join([base, *names])

    # --- the control channel ---------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._control.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            raise self._dead("the runner's control channel is closed") from None

    def _read_control(self, timeout_s: float | None) -> bool:
        """Read what the zygote sent (waiting up to `timeout_s`); False when nothing came."""
        ready, _, _ = select.select([self._control], [], [], timeout_s)
        if not ready:
            return False
        data, fds, _, _ = socket.recv_fds(self._control, 1 << 20, 4)
        self._pending_fds.extend(fds)
        if not data:
            raise self._dead("the runner's zygote died")
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self._messages.append(json.loads(line))
        return True

    def _expect(self, key: str, timeout_s: float) -> dict[str, Any]:
        """The next control message carrying `key`; audit records met on the way go to the active run."""
        deadline = time.monotonic() + timeout_s
        while True:
            while self._messages:
                message = self._messages.pop(0)
                if "audit" in message and self.active is not None:
                    self.active.audits.append({"event": message.get("event"), "detail": message.get("detail")})
                elif key in message:
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or not self._read_control(left):
                raise self._dead(f"the runner's zygote did not answer within {timeout_s:g} s")

    def poll_audits(self) -> None:
        """Collect audit records already sent, without waiting."""
        while self._read_control(0):
            pass
        remaining = []
        for message in self._messages:
            if "audit" in message and self.active is not None:
                self.active.audits.append({"event": message.get("event"), "detail": message.get("detail")})
            else:
                remaining.append(message)
        self._messages = remaining

    def _dead(self, what: str) -> RunnerError:
        tail = self.stderr_tail()
        if self.sandbox.memory_exceeded():
            return RunCrash(f"{what}: the sandbox exceeded its memory limit", {"stderr": tail})
        if self.active is not None or self._runs:
            return Tamper(f"{what} while a run of candidate code was in it", {"stderr": tail})
        return RunCrash(what, {"stderr": tail})

    def stderr_tail(self, since: int = 0) -> list[str]:
        """The last lines the sandbox wrote to stderr (after byte offset `since`)."""
        self._stderr.seek(since)
        text = self._stderr.read().decode("utf-8", "replace")
        self._stderr.seek(0, os.SEEK_END)
        return [line for line in text.splitlines() if line.strip()][-STDERR_TAIL:]

    # --- runs ------------------------------------------------------------------------------

    def start_run(self) -> Run:
        """A fresh run: a child forked from the zygote, before it has imported anything of the engine."""
        if self._closed:
            raise RunCrash("the runner is closed")
        if self.active is not None:
            self.active.close()
        self._runs += 1
        self._stderr.seek(0, os.SEEK_END)
        stderr_at = self._stderr.tell()
        self._send({"op": "run", "id": self._runs})
        self._expect("started", START_TIMEOUT_S)
        while not self._pending_fds:
            if not self._read_control(START_TIMEOUT_S):
                raise self._dead("the runner sent no data channel")
        data = socket.socket(fileno=self._pending_fds.pop(0))
        for fd in self._pending_fds:
            os.close(fd)
        self._pending_fds.clear()
        self.active = Run(self, self._runs, data, stderr_at)
        return self.active

    def simulate(self, instance: dict[str, Any], *, trace: bool = False, cuts: list[int] = ()) -> dict[str, Any]:
        """One whole run of `instance` (advanced through `cuts` first): the validated result."""
        run = self.start_run()
        try:
            run.load()
            run.build(instance, trace=trace)
            for cut in cuts:
                run.advance(cut)
            result = run.finish()
        except BaseException:
            run.close(check=False)
            raise
        run.close()
        return result

    def pin(self, cpu: int) -> None:
        """Move every process of the sandbox to one CPU."""
        for pid in self.sandbox.clock.pids():
            try:
                os.sched_setaffinity(pid, {cpu})
            except OSError:
                pass

    def usage_ns(self) -> int:
        """CPU nanoseconds of the whole sandbox so far."""
        return self.sandbox.usage_ns()

    def settled_usage_ns(self, wait_s: float = SETTLE_S) -> int:
        """`usage_ns` once no thread of the sandbox is running (waiting at most `wait_s`).

        The kernel adds a running task's CPU time to its cgroup's counter at scheduler ticks and
        when it stops running, so a read while the run is still returning from its reply can
        miss up to a tick (4 ms here) of the step, which then shows up between steps. Once every
        thread sleeps, the counter is exact.
        """
        deadline = time.perf_counter() + wait_s
        while any_running(self.sandbox.clock.pids()) and time.perf_counter() < deadline:
            time.sleep(0.0001)
        return self.sandbox.usage_ns()

    def close(self) -> None:
        """End the active run, the zygote and the sandbox."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.active is not None:
                self.active.close(check=False)
            self._send({"op": "exit"})
        except (RunnerError, OSError):
            pass
        self._control.close()
        for fd in self._pending_fds:
            os.close(fd)
        self.sandbox.close()
        self._stderr.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Run:
    """One run of the engine in a fresh child of the zygote."""

    runner: Runner
    number: int
    sock: socket.socket
    stderr_at: int
    audits: list[dict[str, Any]] = field(default_factory=list)
    instance: dict[str, Any] | None = None
    trace: bool = False
    now: int = 0
    events: int = 0
    idle_ns: int = 0
    steps: int = 0
    _last_ns: int | None = None
    _buffer: bytes = b""
    closed: bool = False

    # -- the steps; each returns its Step (the reply, CPU and wall seconds) ------------------

    def load(self) -> Step:
        """Import the engine package (a timed step: work at import is the run's work)."""
        return self._step({"op": "load"}, "ok")

    def build(self, instance: dict[str, Any], *, trace: bool = False) -> Step:
        """Construct the simulation of `instance`."""
        self.instance, self.trace = instance, trace
        return self._step({"op": "build", "instance": instance, "trace": trace}, "ok")

    def advance(self, until: int) -> Step:
        """Run to `until` (the engine caps it at the horizon); `now` and `events` as the run reports them."""
        step = self._step({"op": "advance", "until": until}, "now")
        self._reached(step, f"advance({until})")
        return step

    def _reached(self, step: Step, what: str) -> None:
        if "now" not in step.reply or "events" not in step.reply:  # the runner's code always sends both
            raise Tamper(f"{what} was answered without now and events: not the runner's reply",
                         {"check": "protocol", "reply": _short(step.reply)})
        now, events = step.reply["now"], step.reply["events"]
        if type(now) is not int or type(events) is not int or events < self.events or now < self.now:
            raise RunCrash(f"{what} answered now={now!r}, events={events!r}: not integers, or behind "
                           f"what it answered before (now {self.now}, events {self.events})", {"reply": _short(step.reply)})
        self.now, self.events = now, events

    def finish(self) -> dict[str, Any]:
        """The run's result, validated, with the digest computed here (also: `last_step`)."""
        step = self._step({"op": "finish"}, "result")
        try:
            result = check_result(self.instance, step.reply["result"], trace=self.trace)
        except ForgedDigest as forged:
            raise Tamper(f"forged digest: {forged}", {"check": "digest"}) from None
        except InvalidResult as invalid:
            raise RunCrash(f"the result breaks the contract (docs/semantics.md §9): {invalid}") from None
        self._reached(step, "finish")
        self.last_step = step
        return result

    def profile(self, instance: dict[str, Any], top: int = 25) -> tuple[dict[str, Any], str]:
        """One run under cProfile: the validated result and the profile's text (informative only)."""
        self.instance, self.trace = instance, False
        step = self._step({"op": "profile", "instance": instance, "top": top}, "result")
        try:
            result = check_result(instance, step.reply["result"], trace=False)
        except ForgedDigest as forged:
            raise Tamper(f"forged digest: {forged}", {"check": "digest"}) from None
        except InvalidResult as invalid:
            raise RunCrash(f"the result breaks the contract (docs/semantics.md §9): {invalid}") from None
        self.last_step = step
        return result, str(step.reply.get("profile", ""))[:200_000]

    # -- plumbing -----------------------------------------------------------------------------

    def _step(self, request: dict[str, Any], key: str) -> Step:
        runner = self.runner
        before = runner.settled_usage_ns()
        if self._last_ns is not None:
            self._idle(before - self._last_ns)
        wall = time.perf_counter()
        reply = self._exchange(request, key, runner.step_timeout_s)
        wall = time.perf_counter() - wall
        after = runner.settled_usage_ns()
        self._last_ns = after
        self.steps += 1
        return Step(reply, (after - before) / 1e9, wall)

    def _idle(self, ns: int, where: str = "between two of its timed steps") -> None:
        """CPU used while no step was timed. A gap over IDLE_GAP_NS is a strike; the second strike in
        a runner, or more than IDLE_TOTAL_NS in one run, is tamper. Work hidden on purpose recurs
        in every run; a lone strike is what a host stealing the CPU at the wrong moment looks like."""
        self.idle_ns += max(0, ns)
        strikes = self.runner.idle_strikes
        if ns > IDLE_GAP_NS:
            strikes.append(round(ns / 1e6, 3))
        if len(strikes) >= 2 or self.idle_ns > IDLE_TOTAL_NS:
            earlier = f"; earlier gaps over {IDLE_GAP_NS / 1e6:g} ms in this runner: {strikes[:-1]} ms" if len(strikes) >= 2 else ""
            raise Tamper(f"the run used {ns / 1e6:.1f} ms of CPU {where} "
                         f"({self.idle_ns / 1e6:.1f} ms in this run{earlier}): work hidden outside the measured steps",
                         {"check": "idle cpu", "idle_ms": round(self.idle_ns / 1e6, 3), "strikes_ms": list(strikes)})

    def _exchange(self, request: dict[str, Any], key: str, timeout_s: float) -> dict[str, Any]:
        if self.closed:
            raise RunCrash("the run is over")
        self.runner.poll_audits()
        self._check_audits()
        try:
            self.sock.sendall((json.dumps(request) + "\n").encode())
        except OSError:
            raise self._ended("the run closed its data channel") from None
        line = self._read_line(timeout_s)
        try:
            reply = json.loads(line)
        except ValueError:
            raise Tamper("the run answered something that is not the protocol", {"answer": line[:200].decode("utf-8", "replace")}) from None
        self.runner.poll_audits()
        self._check_audits()
        if not isinstance(reply, dict):
            raise Tamper("the run answered something that is not the protocol", {"answer": str(reply)[:200]})
        if "error" in reply and len(reply) == 1:
            lines = [line for line in str(reply["error"]).splitlines() if line.strip()][-STDERR_TAIL:]
            raise RunCrash(f"the engine raised: {lines[-1] if lines else 'an error'}", {"traceback": lines})
        if key not in reply:
            raise Tamper(f"the run answered {request['op']!r} without {key!r}", {"answer": _short(reply)})
        return reply

    def _read_line(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready = select.select([self.sock], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                tail = self.runner.stderr_tail(self.stderr_at)
                self.closed = True
                self.runner.close()  # a run that does not answer takes its runner with it
                raise RunTimeout(f"no answer within {timeout_s:g} s", {"stderr": tail})
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise self._ended("the run ended without answering")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY:
                raise Tamper(f"the run answered more than {MAX_REPLY >> 20} MiB", {"check": "answer size"})
        line, _, rest = self._buffer.partition(b"\n")
        if rest:
            raise Tamper("the run sent more than one answer to one request", {"answer": rest[:200].decode("utf-8", "replace")})
        self._buffer = b""
        return line

    def _unread(self) -> bool:
        """Whether the (now ended) run left bytes on its data channel; closes the channel."""
        extra = bool(self._buffer)
        try:
            self.sock.setblocking(False)
            extra = extra or bool(self.sock.recv(1))
        except (BlockingIOError, OSError):
            pass
        self.sock.close()
        return extra

    def _check_audits(self) -> None:
        if self.audits:
            first = self.audits[0]
            raise Tamper(f"the run attempted something the sandbox refused: {first['event']} ({first['detail']})",
                         {"check": "audit", "refused": self.audits[:10]})

    def _ended(self, what: str) -> RunnerError:
        try:
            ended = self.runner._expect("ended", END_TIMEOUT_S)
        except RunnerError:
            ended = {}
        self.closed = True
        self.runner.active = None
        self.sock.close()
        self._check_audits()
        tail = self.runner.stderr_tail(self.stderr_at)
        status = ended.get("status")
        if self.runner.sandbox.memory_exceeded():
            return RunCrash(f"{what}: it exceeded the sandbox's memory limit", {"stderr": tail})
        detail = _wait_status(status)
        last = tail[-1] if tail else detail
        return RunCrash(f"{what} ({detail}): {last}", {"stderr": tail, "exit": detail})

    def close(self, *, check: bool = True) -> None:
        """End the run: the child exits; its audit records, leftover processes and idle CPU are checked."""
        if self.closed:
            return
        self.closed = True
        runner = self.runner
        hidden_ns = runner.settled_usage_ns() - self._last_ns if self._last_ns is not None else 0
        if runner.single:  # the process ends with its only run; nothing after it is believed
            self.sock.close()
            runner.active = None
            return
        try:
            try:
                self.sock.sendall(b'{"op": "exit"}\n')
            except OSError:
                pass
            ended = runner._expect("ended", END_TIMEOUT_S)
        except RunnerError:
            self.sock.close()
            if check:
                raise
            return
        finally:
            runner.active = None
        if not check:
            return
        self._check_audits()
        if self._unread():
            raise Tamper("the run wrote more on its data channel than it was asked for", {"check": "protocol"})
        self._idle(hidden_ns, "after its last timed step")
        if ended.get("leftover"):
            runner.close()
            raise Tamper("a process the run started outlived it", {"check": "leftover process"})


def _short(reply: dict[str, Any]) -> str:
    return json.dumps(reply)[:200]


def _wait_status(status: Any) -> str:
    if type(status) is not int:
        return "no exit status"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"
