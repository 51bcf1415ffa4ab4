"""Instruction counts under `valgrind --tool=cachegrind`: slow, but repeatable to the instruction.

One full run per version, driven through the timing worker's protocol on stdin. The count of a
run that only loads the engine and the instance is subtracted, so what remains is the simulation
(build, run, result) and not the interpreter's start-up.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simopt.engine import DEFAULT_ENGINE
from simopt.errors import UserError

HASH_SEED = "0"  # fixed: dict and set layouts, hence the instruction stream, do not vary by run
TAIL_LINES = 12
TOTAL_LINE = re.compile(r"I\s+refs:\s+([\d,]+)")


class CountFailed(Exception):
    """The version crashed or printed no count."""


def count_instructions(root: Path, instance_path: Path, *, engine: str = DEFAULT_ENGINE, simulate: bool, timeout_s: float) -> tuple[int, str | None]:
    """Instructions of one worker session at `root` (with or without the run) and the run's digest."""
    requests = [{"op": "load", "path": str(instance_path)}]
    if simulate:
        horizon = json.loads(instance_path.read_text(encoding="utf-8"))["horizon_ns"]
        requests += [{"op": "build"}, {"op": "advance", "until": horizon}, {"op": "finish"}]
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-P", "-m", "simopt.measure.worker", str(root), "--engine", engine,
    ]
    try:
        completed = subprocess.run(
            command, input="".join(json.dumps(request) + "\n" for request in requests), capture_output=True,
            text=True, cwd=root, timeout=timeout_s,
            # No bytecode writes: a session that compiled and cached a module would count that work
            # while the next session did not (the start-up session is subtracted from the full one).
            env={**os.environ, "PYTHONHASHSEED": HASH_SEED, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired:
        raise CountFailed(f"no count within {timeout_s:g} s") from None
    replies = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    errors = [reply["error"] for reply in replies if "error" in reply]
    if errors:
        raise CountFailed(errors[0])
    total = TOTAL_LINE.findall(completed.stderr)
    if completed.returncode != 0 or not total:
        raise CountFailed("\n".join(completed.stderr.splitlines()[-TAIL_LINES:]) or f"exit code {completed.returncode}")
    digest = replies[-1].get("digest") if simulate and replies else None
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
    with tempfile.TemporaryDirectory(prefix="simopt-instructions-") as scratch:
        instance_path = Path(scratch) / "instance.json"
        instance_path.write_text(json.dumps(instance), encoding="utf-8")
        for role, root in (("baseline", Path(baseline_root)), ("candidate", Path(candidate_root))):
            try:
                startup, _ = count_instructions(root, instance_path, engine=engine, simulate=False, timeout_s=timeout_s)
                total, digests[role] = count_instructions(root, instance_path, engine=engine, simulate=True, timeout_s=timeout_s)
            except CountFailed as failure:
                if role == "baseline":
                    raise UserError(f"the baseline crashed under valgrind: {str(failure).splitlines()[-1]}") from None
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
