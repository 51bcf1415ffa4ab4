"""Invariant guards: properties every correct run has, checked on the target's own traces."""

from __future__ import annotations

from hypothesis import given, strategies as st

from guards import checks, record, strategies
from guards.profiles import examples


def traced(engine, case: strategies.Case) -> dict:
    record.show(case.kind, case.instance)
    return engine.simulate(case.instance, trace=True)


@examples(30)
@given(strategies.cases())
def test_trace_invariants(engine, case):
    """Conservation by cause, pacing, causality, live links, FIFO, buffers, the horizon, the digest."""
    result = traced(engine, case)
    checks.check_digest(result)
    checks.check_outcomes_match_trace(case.instance, result)
    checks.check_injections(case.instance, result)
    checks.check_trace(case.instance, result)


@examples(15)
@given(strategies.perturbed_fattrees())
def test_trace_invariants_on_perturbed_fattrees(engine, case):
    result = traced(engine, case)
    checks.check_outcomes_match_trace(case.instance, result)
    checks.check_trace(case.instance, result)


@examples(25)
@given(strategies.cases(topology=strategies.topologies(), failures=False))
def test_routes_are_complete_ecmp_shortest_paths(engine, case):
    """Without failures, every hop is the ECMP pick from networkx's complete next-hop set."""
    checks.check_routes(case.instance, traced(engine, case))


@examples(15)
@given(strategies.cases(topology=strategies.fattrees(), failures=False, max_flows=16))
def test_fattree_routes_are_complete_ecmp_shortest_paths(engine, case):
    checks.check_routes(case.instance, traced(engine, case))


@examples(15)
@given(strategies.cases(), st.lists(st.integers(0, 2_000_000), max_size=6))
def test_trace_and_slicing_change_nothing(engine, case, cuts):
    """The digest is the same with or without a trace, and however the run is sliced."""
    whole = traced(engine, case)
    untraced = engine.simulate(case.instance)
    assert untraced["digest"] == whole["digest"], "tracing changes the digest"
    assert "trace" not in untraced, "a run without trace=True returned a trace"
    sim = engine.Simulation(case.instance)
    for cut in sorted(cuts):
        sim.run(cut)
        assert sim.now <= case.instance["horizon_ns"], f"now={sim.now} passed the horizon after run({cut})"
    sliced = sim.result()
    assert sliced["digest"] == whole["digest"], f"slicing at {sorted(cuts)} ns changes the digest"


@examples(1)
@given(strategies.cases(max_flows=6))
def test_same_digest_in_two_processes(engine, target_root, case):
    """Two fresh runners with other string-hash seeds give the digest of this one."""
    from simopt.runner.engine import RemoteEngine

    record.show(case.kind, case.instance)
    expected = engine.simulate(case.instance)["digest"]
    for hash_seed in (1, 2):
        other = RemoteEngine(target_root, hash_seed=hash_seed)
        try:
            assert other.simulate(case.instance)["digest"] == expected, f"PYTHONHASHSEED={hash_seed} gives another digest"
        finally:
            other.close()
