"""Run the offline demo session as a new user would: on a fresh clone, timed end to end.

    python3 benchmarks/optimize_demo.py [extra `simopt optimize` options...]
    python3 benchmarks/optimize_demo.py --guard-profile quick --max-seconds 30

Clones the committed HEAD of this repository into a temporary folder, runs
`simopt optimize --scenario fattree --quiet` there, prints its output, the wall time and whether
the clone's checkout was left untouched, and removes the clone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="simopt-demo-") as scratch:
        clone = Path(scratch) / "simopt"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        before = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
        started = time.perf_counter()
        command = [sys.executable, "-m", "simopt.cli", "optimize", "--scenario", "fattree", "--quiet", *extra]
        code = subprocess.run(command, cwd=clone).returncode
        elapsed = time.perf_counter() - started
        after = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
        print(f"exit code: {code}")
        print(f"wall time: {elapsed:.0f} s")
        print(f"clone's checkout untouched: {before == after}")
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
