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
    checks.check_event_count(case.instance, result)


@examples(15)
@given(strategies.perturbed_fattrees())
def test_trace_invariants_on_perturbed_fattrees(engine, case):
    result = traced(engine, case)
    checks.check_outcomes_match_trace(case.instance, result)
    checks.check_trace(case.instance, result)
    checks.check_event_count(case.instance, result)


@examples(25)
@given(strategies.cases(topology=strategies.topologies(), failures=False))
def test_routes_are_complete_ecmp_shortest_paths(engine, case):
    """Without failures, every hop is the ECMP pick from networkx's complete next-hop set."""
    checks.check_routes(case.instance, traced(engine, case))


@examples(15)
@given(strategies.cases(topology=strategies.fattrees(), failures=False, max_flows=16))
def test_fattree_routes_are_complete_ecmp_shortest_paths(engine, case):
    checks.check_routes(case.instance, traced(engine, case))


@st.composite
def cuts_for(draw, instance: dict) -> list[int]:
    """Slice ends: anywhere, on and around event times and the horizon, sometimes earlier than the last."""
    moments = sorted({0, instance["horizon_ns"]} | {e["time_ns"] for e in instance["link_events"]}
                     | {e["time_ns"] + instance["reconvergence_ns"] for e in instance["link_events"]}
                     | {f["start_ns"] for f in instance["flows"]})
    near = st.sampled_from(moments).flatmap(lambda t: st.sampled_from((max(0, t - 1), t, t + 1)))
    cuts = draw(st.lists(st.one_of(st.integers(0, 2_200_000), near), max_size=6))
    return cuts if draw(st.booleans()) else sorted(cuts)


@examples(15)
@given(strategies.cases(), st.data())
def test_trace_and_slicing_change_nothing(engine, case, data):
    """The digest is the same with or without a trace and however the run is sliced; after every
    slice the time reached and the event count are the oracle's (docs/semantics.md §7-8)."""
    from guards import oracle_pool

    cuts = data.draw(cuts_for(case.instance), label="cuts")
    expected = oracle_pool.expect(case.instance, cuts=tuple(cuts))
    whole = traced(engine, case)
    untraced = engine.simulate(case.instance)
    assert untraced["digest"] == whole["digest"], "tracing changes the digest"
    assert untraced["events"] == whole["events"], f"tracing changes the event count ({whole['events']} -> {untraced['events']})"
    assert "trace" not in untraced, "a run without trace=True returned a trace"
    sim = engine.Simulation(case.instance)
    horizon, reached, slices = case.instance["horizon_ns"], 0, []
    for cut in cuts:
        sim.run(cut)
        reached = max(reached, min(cut, horizon))
        assert sim.now == reached, f"now={sim.now} after run({cut}) in slices {cuts}; the spec says {reached} (§8)"
        slices.append((sim.now, sim.events))
    sliced = sim.result()
    assert sim.now == horizon, f"now={sim.now} after result(); the spec says the horizon {horizon} (§8)"
    assert sliced["digest"] == whole["digest"], f"slicing at {cuts} ns changes the digest"
    assert sliced["events"] == whole["events"], f"slicing at {cuts} ns changes the event count"
    oracle = expected.result()
    for (now, events), (_, oracle_events), cut in zip(slices, oracle["slices"], cuts):
        assert events == oracle_events, f"{events} events after run({cut}) in slices {cuts}, the oracle processed {oracle_events}"
    assert sliced["events"] == oracle["events"], f"events {sliced['events']} != oracle {oracle['events']} (§7)"


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
