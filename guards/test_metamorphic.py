"""Metamorphic guards: changes to an instance that must not change (or must predictably change) the run."""

from __future__ import annotations

from hypothesis import assume, given, strategies as st

from guards import record, strategies
from guards.profiles import examples
from guards.strategies import Case

OUTCOME_KEYS = ("sent", "delivered", "delivered_bytes", "dropped", "in_flight", "first_delivery_ns", "last_delivery_ns",
                "latency_sum_ns", "latency_max_ns", "hop_sum")


@st.composite
def uncontended_flows(draw) -> Case:
    """One flow at line rate over uniform, unweighted links with room in every buffer."""
    case = draw(strategies.cases(topology=strategies.connected_topologies(), failures=False, max_flows=1,
                                 weighted=False, uniform_links=True))
    instance = dict(case.instance)
    bandwidth = instance["links"][0]["bandwidth_bps"]
    instance["links"] = [{**link, "buffer_bytes": max(link["buffer_bytes"], 10 * instance["mtu_bytes"])} for link in instance["links"]]
    instance["flows"] = [{**flow, "rate_bps": bandwidth} for flow in instance["flows"][:1]]
    return Case(case.kind + ", one uncontended flow", instance)


@examples(20)
@given(uncontended_flows(), st.data())
def test_relabelling_keeps_an_uncontended_flow(engine, case, data):
    """Permuting node ids and names keeps a lone flow's outcome (every shortest path costs the same)."""
    record.show(case.kind, case.instance)
    before = engine.simulate(case.instance)["flows"][0]
    moved = data.draw(strategies.opaque_relabelling(case.instance))
    record.show(case.kind + ", relabelled", moved, before_relabelling=before)
    after = engine.simulate(moved)["flows"][0]
    changed = {k: (before[k], after[k]) for k in OUTCOME_KEYS if before[k] != after[k]}
    assert not changed, f"relabelling changed the lone flow's outcome (before, after): {changed}"


@examples(15)
@given(strategies.cases(topology=strategies.connected_topologies(), failures=False), st.data())
def test_link_off_every_shortest_path_changes_nothing(engine, case, data):
    """A new link heavier than the distance between its ends is on no shortest path: same digest."""
    import networkx as nx

    instance = case.instance
    n = len(instance["nodes"])
    joined = {(min(l["a"], l["b"]), max(l["a"], l["b"])) for l in instance["links"]}
    free = [(a, b) for a in range(n) for b in range(a + 1, n) if (a, b) not in joined]
    assume(free)
    a, b = data.draw(st.sampled_from(free))
    graph = nx.Graph((l["a"], l["b"], {"weight": l["weight"]}) for l in instance["links"])
    weight = nx.dijkstra_path_length(graph, a, b) + 1
    extra = {**instance["links"][0], "a": a, "b": b, "weight": weight}
    wider = {**instance, "links": instance["links"] + [extra]}
    record.show(case.kind, instance, extra_link=f"{a}-{b} weight {weight}")
    assert engine.simulate(wider)["digest"] == engine.simulate(instance)["digest"], (
        f"adding link {a}-{b} of weight {weight} (on no shortest path) changed the outcome")


@examples(15)
@given(strategies.cases(), st.integers(0, 2**32 - 1))
def test_order_of_links_flows_and_events_changes_nothing(engine, case, seed):
    """The order of links, flows and link events in the instance carries no meaning (§1)."""
    record.show(case.kind, case.instance)
    reordered = strategies.shuffled(case.instance, seed)
    assert engine.simulate(reordered)["digest"] == engine.simulate(case.instance)["digest"], (
        "reordering the instance's links, flows and link events changed the digest")


@examples(10)
@given(strategies.cases(), st.sampled_from(("opaque", "fattree")), st.integers(0, 2**32 - 1))
def test_node_names_change_nothing(engine, case, style, seed):
    """Names are for people: opaque names, or FatTree-like names on any graph, keep the digest."""
    import random

    record.show(case.kind, case.instance, names=style)
    rng = random.Random(seed)
    n = len(case.instance["nodes"])
    if style == "opaque":
        names = [str(x) for x in rng.sample(range(10**9), n)]
    else:
        pool = [name for name, _ in strategies.fattree_topology(8)["nodes"]]
        if strategies.workload_available():
            pool = [name for name, _ in strategies.workload_fattree_topology(8)["nodes"]] if seed % 2 else pool
        names = rng.sample(pool, n) if n <= len(pool) else [f"h{i}_0_0" for i in range(n)]
    renamed = {**case.instance, "nodes": [{**node, "name": name} for node, name in zip(case.instance["nodes"], names)]}
    assert engine.simulate(renamed)["digest"] == engine.simulate(case.instance)["digest"], (
        f"renaming nodes ({style} names) changed the digest")
