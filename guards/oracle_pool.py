"""The oracle in a worker process, so that it runs while the target does.

`expect(instance, trace=..., cuts=...)` submits the oracle's run of `instance` to one worker
process (spawned once per guard session, importing only guards.oracle) and returns a future.
Its result is the oracle's result document, its trace replaced by `trace_sha256` (the hash of
the sorted trace), plus `slices`: the time reached and the event count after each `run(cut)`,
and `now` after `result()`. A guard
submits, runs the target, then waits: on two CPUs the two runs overlap instead of queueing.
"""

from __future__ import annotations

import atexit
import hashlib
import json
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from guards import oracle

_pool: ProcessPoolExecutor | None = None


def run_oracle(instance: dict[str, Any], trace: bool = False, cuts: tuple[int, ...] = ()) -> dict[str, Any]:
    """The oracle's run of `instance`, sliced at `cuts`: its result, sorted trace, slices and final `now`."""
    sim = oracle.Simulation(instance, trace=trace)
    slices = []
    for cut in cuts:
        sim.run(cut)
        slices.append((sim.now, sim.events))
    result = sim.result()
    result["slices"] = slices
    result["now"] = sim.now
    if trace:  # a hash travels back fast; the trace itself (10^5 small lists) would cost seconds to pickle
        result["trace_sha256"] = trace_sha256(result.pop("trace"))
    return result


def trace_sha256(trace: list[list[Any]]) -> str:
    """sha256 of the canonical JSON of the sorted trace: equal for two traces equal as multisets (§11)."""
    text = json.dumps(sorted(map(list, trace)), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def expect(instance: dict[str, Any], *, trace: bool = False, cuts: tuple[int, ...] = ()) -> Future:
    """A future of `run_oracle(instance, trace, cuts)`, computed in the worker process."""
    return _executor().submit(run_oracle, instance, trace, tuple(cuts))


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        import multiprocessing

        # spawn, never fork: the guard process holds pytest's and hypothesis's state and maybe threads
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(_pool.shutdown, cancel_futures=True)
    return _pool
