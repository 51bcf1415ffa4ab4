"""A timing worker: one persistent process per version, driven by JSON lines on stdin/stdout.

Run as `python -P -m simopt.measure.worker ROOT [--engine DIR]`. It loads the engine of the
version at ROOT (first re-executing itself without ASLR when SIMOPT_FIXED_LAYOUT=1 asks for it:
simopt.measure.layout), answers `{"ready": true, "randomized": bool}` (or `{"error": ...}`), then
one reply line per request:

    {"op": "load", "path": P}        read the instance JSON at P (untimed)
    {"op": "build"}                  time Simulation(instance) on a fresh copy of the instance
    {"op": "advance", "until": T}    time sim.run(T); reply also carries events and now
    {"op": "finish"}                 time sim.result(); reply also carries digest and events
    {"op": "profile", "steps": N}    one whole run in N equal slices of simulated time: the CPU
                                     seconds reached at each slice end, as [[until_ns, seconds], ...]
    {"op": "exit"}

Timed replies carry `seconds` (CPU time of the process, all threads) and `wall` (wall clock);
every timed step starts after a gc.collect().
An exception in the engine is answered with `{"error": <last traceback lines>}`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from typing import Any, Callable

from simopt.engine import DEFAULT_ENGINE, load_engine
from simopt.measure import layout

TRACEBACK_LINES = 12


def traceback_tail(lines: int = TRACEBACK_LINES) -> str:
    """The last lines of the traceback of the exception being handled."""
    return "".join(traceback.format_exc().splitlines(keepends=True)[-lines:]).rstrip()


def timed(action: Callable[[], Any]) -> tuple[Any, dict]:
    """Run `action` after a gc.collect(); return its value and its CPU and wall seconds."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    return value, {"seconds": time.process_time() - cpu, "wall": time.perf_counter() - wall}


class Session:
    """The state of one worker: its engine, the instance text, the current simulation."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.instance_text: str | None = None
        self.simulation = None

    def handle(self, request: dict) -> dict:
        """Answer one request."""
        op = request.get("op")
        if op == "load":
            with open(request["path"], encoding="utf-8") as file:
                self.instance_text = file.read()
            return {"ok": True}
        if op == "build":
            instance = json.loads(self.instance_text)  # a fresh copy: a build may not see another's mutations
            self.simulation, times = timed(lambda: self.engine.Simulation(instance))
            return times
        if op == "advance":
            _, times = timed(lambda: self.simulation.run(request["until"]))
            return {**times, "events": self.simulation.events, "now": self.simulation.now}
        if op == "finish":
            result, times = timed(self.simulation.result)
            self.simulation = None
            return {**times, "digest": result["digest"], "events": result["events"]}
        if op == "profile":
            return {"marks": self.profile(request["steps"])}
        raise ValueError(f"unknown op {op!r}")

    def profile(self, steps: int) -> list[list[float]]:
        """Where the work of a run lies in simulated time, measured on a fresh simulation."""
        instance = json.loads(self.instance_text)
        horizon_ns = instance["horizon_ns"]
        simulation = self.engine.Simulation(instance)
        marks, start = [], time.process_time()
        for index in range(1, steps + 1):
            until = horizon_ns * index // steps
            simulation.run(until)
            marks.append([until, time.process_time() - start])
        simulation.result()
        return marks


def serve(engine, requests, reply: Callable[[dict], None]) -> None:
    """Answer requests until `exit` or the end of input."""
    session = Session(engine)
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "exit":
            return
        try:
            answer = session.handle(request)
        except Exception:
            answer = {"error": traceback_tail()}
        reply(answer)


def main(argv: list[str] | None = None) -> int:
    """Load a version's engine and serve timing requests on stdin/stdout."""
    layout.fix_layout()
    parser = argparse.ArgumentParser(description="simopt timing worker")
    parser.add_argument("root")
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    args = parser.parse_args(argv)
    # The protocol owns the real stdout; anything the engine prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(answer: dict) -> None:
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()

    try:
        engine = load_engine(args.root, args.engine)
    except BaseException:
        reply({"error": traceback_tail()})
        return 1
    gc.freeze()  # the engine's modules never die: keep them out of every gc.collect() between steps
    reply({"ready": True, "pid": os.getpid(), "randomized": layout.randomized()})
    serve(engine, sys.stdin, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
