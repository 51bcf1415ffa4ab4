"""benchmarks/mutation.py: its mutants still apply to netsim and compile (the score itself is a
benchmark figure, never a test: docs/guards.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_benchmark", REPO / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_gate_site_is_in_netsim_and_every_gate_mutant_compiles(mutation):
    mutants = mutation.gate_mutants()
    assert len(mutants) == len(mutation.SITES) * len(mutation.GATES)
    for mutant in mutants:
        compile(mutant["source"], mutant["id"], "exec")
        assert "self._gate = bool(" in mutant["source"]


def test_cosmic_ray_mutants_change_one_line_and_compile(mutation):
    pytest.importorskip("cosmic_ray")
    mutants = mutation.cosmic_ray_mutants()
    assert len(mutants) > 100 and len({m["id"] for m in mutants}) == len(mutants)
    assert sum(not mutation._compiles(m["source"]) for m in mutants) <= 5  # `*` of a signature made `//`, and the like
    for mutant in mutants:
        original = (REPO / "simopt" / "netsim" / mutant["file"]).read_text(encoding="utf-8")
        assert mutant["source"] != original


def test_a_gate_mutant_off_the_benchmark_keeps_its_digest(mutation, tmp_path):
    from guards.golden import load_goldens, scenario_instances

    mutant = next(m for m in mutation.gate_mutants() if m["id"] == "gate:skip-route-install:nodes>250")
    root = mutation.materialize(mutant, tmp_path)
    _, benchmark = scenario_instances()["fattree"]
    assert mutation.benchmark_digest(root, "gate_mutant", benchmark) == ("ok", load_goldens()["scenarios"]["fattree"]["digest"])
