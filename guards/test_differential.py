"""Differential guards: the target and the naive oracle agree on digest, events and trace, byte for byte."""

from __future__ import annotations

from hypothesis import given, strategies as st

from guards import strategies
from guards.differential import assert_same_as_oracle
from guards.profiles import examples, thorough


@examples(50)
@given(strategies.cases(topology=strategies.topologies(thorough=thorough())))
def test_any_topology_matches_oracle(engine, case):
    assert_same_as_oracle(engine, case)


@examples(25)
@given(strategies.perturbed_fattrees(ks=(4, 6, 8) if thorough() else (4, 6)))
def test_perturbed_fattree_matches_oracle(engine, case):
    assert_same_as_oracle(engine, case)


@examples(15)
@given(strategies.cases(topology=strategies.fattrees(ks=(4, 6, 8) if thorough() else (4, 6)), max_flows=16))
def test_fattree_with_failures_matches_oracle(engine, case):
    assert_same_as_oracle(engine, case)


@examples(20)
@given(strategies.cases(topology=st.one_of(strategies.equal_cost(), strategies.meshes()), weighted=True))
def test_weighted_equal_cost_matches_oracle(engine, case):
    assert_same_as_oracle(engine, case)
