"""Golden digests: the ORACLE's digest of every shipped scenario at its file seed.

Regenerate after a deliberate change of the spec or of a scenario file, never from netsim:

    python3 -m guards.golden            # rewrite guards/golden.json
    python3 -m guards.golden --check    # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from guards import oracle

GOLDEN_PATH = Path(__file__).resolve().with_name("golden.json")
REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=4)
def scenario_instances(repo: Path = REPO) -> dict[str, tuple[int, dict[str, Any]]]:
    """Every shipped scenario of `repo`: name -> (file seed, instance); built once per process (do not mutate)."""
    from simopt.scenario import available_scenarios, build_instance, load_scenario

    found = {}
    for name in available_scenarios(repo):
        scenario = load_scenario(name, repo=repo)
        found[name] = (scenario.seed, build_instance(scenario))
    return found


def compute_goldens(repo: Path = REPO) -> dict[str, Any]:
    """The golden document: the oracle's digest, events and packet-hops per scenario."""
    scenarios = {}
    for name, (seed, instance) in scenario_instances(repo).items():
        result = oracle.simulate(instance)
        scenarios[name] = {"seed": seed, "digest": result["digest"], "events": result["events"], "packet_hops": result["packet_hops"]}
    return {"version": 1, "source": "guards/oracle.py", "scenarios": scenarios}


def load_goldens(path: Path = GOLDEN_PATH) -> dict[str, Any]:
    """The stored golden document."""
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Rewrite golden.json from the oracle, or check that it is current."""
    parser = argparse.ArgumentParser(prog="python3 -m guards.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if golden.json differs from the oracle's digests")
    args = parser.parse_args(argv)
    document = compute_goldens()
    if args.check:
        stale = load_goldens() != document
        print("golden.json is stale" if stale else "golden.json is current")
        return 1 if stale else 0
    GOLDEN_PATH.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN_PATH} ({len(document['scenarios'])} scenarios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
