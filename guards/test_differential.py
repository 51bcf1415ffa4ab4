"""Differential guards: the target and the naive oracle agree on digest and trace, byte for byte."""

from __future__ import annotations

from hypothesis import given, strategies as st

from guards import oracle, record, strategies
from guards.profiles import examples, thorough


def assert_same_as_oracle(engine, case: strategies.Case) -> None:
    """Digest, outcomes, packet-hops and the sorted trace of the target equal the oracle's."""
    record.show(case.kind, case.instance)
    expected = oracle.simulate(case.instance, trace=True)
    got = engine.simulate(case.instance, trace=True)
    if got["digest"] != expected["digest"]:
        wrong = [(o["id"], {k: (o[k], e[k]) for k in o if o[k] != e[k]})
                 for o, e in zip(got["flows"], expected["flows"]) if o != e]
        raise AssertionError(f"digest differs from the oracle's; flows (target, oracle): {wrong[:3]}")
    assert got["packet_hops"] == expected["packet_hops"], f"packet_hops {got['packet_hops']} != oracle {expected['packet_hops']}"
    trace, expected_trace = sorted(got["trace"]), sorted(expected["trace"])
    if trace != expected_trace:
        extra = [r for r in trace if r not in expected_trace][:3]
        missing = [r for r in expected_trace if r not in trace][:3]
        raise AssertionError(f"trace differs from the oracle's: unexpected {extra}, missing {missing}")


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
