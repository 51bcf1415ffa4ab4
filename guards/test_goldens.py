"""Golden guards: the target reproduces the oracle's digest of every shipped scenario, at its file
seed (guards/golden.json) and at seeds nobody chose in advance."""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, strategies as st

from guards import golden, oracle, record
from guards.profiles import examples

SCENARIOS = golden.scenario_instances()
GOLDENS = golden.load_goldens()["scenarios"]


def test_every_shipped_scenario_has_a_golden():
    missing = sorted(set(SCENARIOS) - set(GOLDENS))
    assert not missing, f"no golden digest for {missing}: run python3 -m guards.golden"


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_scenario_matches_golden(engine, name):
    seed, instance = SCENARIOS[name]
    expected = GOLDENS[name]
    assert seed == expected["seed"], f"scenario {name}: file seed {seed}, golden made at seed {expected['seed']}: regenerate"
    record.show(f"scenario {name} (seed {seed})", instance)
    result = engine.simulate(instance)
    assert result["digest"] == expected["digest"], f"scenario {name} seed {seed}: digest {result['digest'][:12]} != golden {expected['digest'][:12]}"
    assert result["packet_hops"] == expected["packet_hops"], f"scenario {name}: packet_hops {result['packet_hops']} != golden {expected['packet_hops']}"


@pytest.mark.parametrize("name", sorted(GOLDENS))
@examples(1, phases=[Phase.explicit, Phase.generate])  # a smaller seed is no simpler example
@given(seed=st.integers(0, 2**31 - 1))
def test_scenario_at_another_seed_matches_oracle(engine, name, seed):
    """The same scenario with fresh traffic and failures (over a fifth of its horizon, to save time):
    nothing keyed on the benchmark survives."""
    from simopt.scenario import build_instance, load_scenario

    instance = build_instance(load_scenario(name, repo=golden.REPO, seed=seed))
    instance["horizon_ns"] //= 5
    record.show(f"scenario {name} (seed {seed})", instance)
    expected = oracle.simulate(instance)
    result = engine.simulate(instance)
    assert result["digest"] == expected["digest"], f"scenario {name} at seed {seed}: digest differs from the oracle's"
