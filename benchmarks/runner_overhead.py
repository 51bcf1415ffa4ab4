"""What judging from outside costs: one netsim run in this process against one in a sandboxed runner.

For a scenario, alternating in one run so both see the same load:
  in-process   simulate() of netsim imported here, CPU by time.process_time()
  runner       a fresh run of a sandboxed runner (fork, import from source, build, run, finish),
               CPU of its steps read from outside (cgroup or schedstat), and the wall time of the
               whole run including the fork and the harness's checks (schema, digest)
and once: the CPU and wall time to start a runner (sandbox + zygote).

    python3 benchmarks/runner_overhead.py [--scenario fattree] [--runs 7] [--backend bwrap|landlock|none]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simopt.engine import load_engine  # noqa: E402
from simopt.runner.client import Runner  # noqa: E402
from simopt.scenario import build_instance, load_scenario  # noqa: E402


def in_process(engine, instance: dict) -> tuple[float, str]:
    started = time.process_time()
    result = engine.simulate(instance)
    return time.process_time() - started, result["digest"]


def in_runner(runner: Runner, instance: dict) -> tuple[float, float, float, str]:
    """(CPU of the timed steps, CPU of the whole sandbox during the run, wall of the whole run, digest)."""
    wall = time.perf_counter()
    before = runner.usage_ns()
    run = runner.start_run()
    steps = [run.load(), run.build(instance), run.advance(instance["horizon_ns"])]
    result = run.finish()
    steps.append(run.last_step)
    run.close()
    total_cpu = (runner.usage_ns() - before) / 1e9
    return sum(step.cpu_s for step in steps), total_cpu, time.perf_counter() - wall, result["digest"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="fattree")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", default=None, help="sandbox backend (default: the best available)")
    args = parser.parse_args()

    instance = build_instance(load_scenario(args.scenario, repo=ROOT))
    engine = load_engine(ROOT)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    runner = Runner(ROOT, backend=args.backend)
    start = {"wall_s": time.perf_counter() - started_wall, "harness_cpu_s": time.process_time() - started_cpu,
             "sandbox_cpu_s": runner.usage_ns() / 1e9}
    inside, steps, whole, walls = [], [], [], []
    try:
        in_process(engine, instance)  # this process's first run warms its imports
        for _ in range(args.runs):
            seconds, digest = in_process(engine, instance)
            inside.append(seconds)
            step_s, total_s, wall_s, remote_digest = in_runner(runner, instance)
            assert remote_digest == digest, "the runner computed another digest"
            steps.append(step_s)
            whole.append(total_s)
            walls.append(wall_s)
    finally:
        runner.close()
    median = statistics.median
    report = {
        "scenario": args.scenario, "runs": args.runs, "backend": runner.backend,
        "clock": "cgroup" if runner.sandbox.cgroup is not None else "schedstat",
        "runner_start": start,
        "in_process_cpu_s": median(inside), "runner_steps_cpu_s": median(steps),
        "runner_total_cpu_s": median(whole), "runner_wall_s": median(walls),
        "steps_over_in_process": median(steps) / median(inside),
        "total_over_in_process": median(whole) / median(inside),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
