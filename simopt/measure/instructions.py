"""Instruction counts under `valgrind --tool=cachegrind`: slow, but repeatable to the instruction.

One run per version in a sandboxed runner started in single-run mode under valgrind (the run
happens in the zygote's own process, which then exits). valgrind writes its count to a
descriptor of its own that the run cannot reach. The count of a run that only loads the
engine is subtracted, so what remains is the simulation (build, run, result), not the
interpreter's start-up. The digests are computed here from the validated results.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path

from simopt.errors import UserError
from simopt.runner.client import DEFAULT_ENGINE, Runner, RunnerError

HASH_SEED = 0  # fixed: dict and set layouts, hence the instruction stream, do not vary by run
TOTAL_LINE = re.compile(r"I\s+refs:\s+([\d,]+)")
VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")


class CountFailed(Exception):
    """The version crashed or valgrind printed no count."""


def count_instructions(root: Path, instance: dict, *, engine: str = DEFAULT_ENGINE, simulate: bool,
                       timeout_s: float) -> tuple[int, str | None]:
    """Instructions of one single-run runner at `root` (with or without the simulation) and its digest."""
    log_read, log_write = os.pipe()
    digest = None
    try:
        runner = Runner(root, engine=engine, hash_seed=HASH_SEED, step_timeout_s=timeout_s, single=True,
                        wrapper=[*VALGRIND, f"--log-fd={log_write}"], pass_fds=[log_write])
    except RunnerError as error:
        os.close(log_read)
        os.close(log_write)
        raise CountFailed(error.reason) from None
    os.close(log_write)
    try:
        run = runner.start_run()
        run.load()
        if simulate:
            run.build(instance)
            run.advance(instance["horizon_ns"])
            digest = run.finish()["digest"]
        run.close()
        runner.sandbox.process.wait(timeout=timeout_s)
    except RunnerError as error:
        raise CountFailed(error.reason) from None
    finally:
        runner.close()
        with os.fdopen(log_read, encoding="utf-8", errors="replace") as log:
            text = log.read()
    total = TOTAL_LINE.findall(text)
    if not total:
        raise CountFailed("\n".join(text.splitlines()[-12:]) or "valgrind printed no count")
    return int(total[-1].replace(",", "")), digest


def compare_instructions(
    baseline_root: Path | str, candidate_root: Path | str, instance: dict, *, min_effect: float = 0.01,
    engine: str = DEFAULT_ENGINE, timeout_s: float = 1800,
) -> dict:
    """Compare the instructions each version spends on `instance`; the same verdicts as timing."""
    if shutil.which("valgrind") is None:
        raise UserError("--metric instructions needs valgrind, which is not installed (apt-get install valgrind)")
    started = time.monotonic()
    counts, digests = {}, {}
    report = {"version": 1, "metric": "instructions", "min_effect": min_effect, "pairs": 1, "ci": None,
              "confidence": None}
    for role, root in (("baseline", Path(baseline_root)), ("candidate", Path(candidate_root))):
        try:
            startup, _ = count_instructions(root, instance, engine=engine, simulate=False, timeout_s=timeout_s)
            total, digests[role] = count_instructions(root, instance, engine=engine, simulate=True, timeout_s=timeout_s)
        except CountFailed as failure:
            if role == "baseline":
                raise UserError(f"the baseline failed under valgrind: {str(failure).splitlines()[-1]}") from None
            return {**report, "verdict": "crash", "error": str(failure), "ratio": None, "baseline_s": None,
                    "candidate_s": None, "baseline_instructions": counts.get("baseline"),
                    "candidate_instructions": None, "digest_baseline": digests.get("baseline"),
                    "digest_candidate": None, "seconds": time.monotonic() - started}
        counts[role] = max(1, total - startup)
    ratio = counts["candidate"] / counts["baseline"]
    bound = math.log1p(min_effect)
    if digests["baseline"] != digests["candidate"]:
        verdict = "different-output"
    elif math.log(ratio) < -bound:
        verdict = "faster"
    elif math.log(ratio) > bound:
        verdict = "slower"
    else:
        verdict = "same"
    return {
        **report, "verdict": verdict, "ratio": ratio, "baseline_s": None, "candidate_s": None,
        "baseline_instructions": counts["baseline"], "candidate_instructions": counts["candidate"],
        "digest_baseline": digests["baseline"], "digest_candidate": digests["candidate"],
        "seconds": time.monotonic() - started,
    }
