"""The openai agent end to end on the flagship, with a scripted model instead of a real one.

A local OpenAI-compatible server (tests/llm_server.py) plays a model that profiles fattree,
memoizes `ecmp_index` (a pure function) with two exact edits, checks the digest with
run_scenario and submits. `simopt optimize --agent openai` runs one experiment on a fresh clone
of this repository (never on the checkout itself) and prints the verdict the loop reached.

    python3 benchmarks/openai_agent_scripted.py [--keep-clone]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from llm_server import LLMServer, tool_calls  # noqa: E402

ROUTING = "simopt/netsim/routing.py"
SCRIPT = [
    tool_calls(("profile_scenario", {})),
    tool_calls(("edit_file", {"path": ROUTING, "old_text": "from typing import Iterable\n",
                              "new_text": "import functools\nfrom typing import Iterable\n"}),
               ("edit_file", {"path": ROUTING, "old_text": "def ecmp_index(",
                              "new_text": "@functools.lru_cache(maxsize=None)\ndef ecmp_index("})),
    tool_calls(("run_scenario", {})),
    tool_calls(("submit", {"description": "memoize ecmp_index, a pure function of (flow, node, choices)",
                           "hypothesis": "the splitmix64 hash runs once per (flow, node, k), not per packet-hop"})),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-clone", action="store_true", help="leave the temporary clone for inspection")
    args = parser.parse_args()
    from simopt.cli import main as simopt_main

    clone = Path(tempfile.mkdtemp(prefix="simopt-openai-")) / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    try:
        with LLMServer(SCRIPT) as server:
            os.environ["OPENAI_BASE_URL"] = server.base_url
            started = time.perf_counter()
            code = simopt_main(["optimize", "--repo", str(clone), "--scenario", "fattree", "--agent", "openai",
                                "--model", "scripted", "--budget", "1", "--quiet", "--tag", "scripted"])
            elapsed = time.perf_counter() - started
        record = json.loads((clone / "results" / "scripted" / "history.jsonl").read_text().splitlines()[-1])
        metric = record.get("metric") or {}
        print(f"exit {code} after {elapsed:.1f} s, {len(server.requests)} model requests")
        print(f"status: {record['status']}")
        if metric:
            print(f"ratio: {metric['ratio']:.4f}  ci: [{metric['ci'][0]:.4f}, {metric['ci'][1]:.4f}]  pairs: {metric['pairs']}")
        print(f"guards: {record.get('guards')}")
        print(f"timings: {record['timings']}")
    finally:
        if args.keep_clone:
            print(f"clone left at {clone}")
        else:
            shutil.rmtree(clone.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
