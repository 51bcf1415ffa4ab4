"""The naive oracle (guards/oracle.py) on cases worked out by hand from docs/semantics.md,
and the guard strategies' invariants by construction."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings

from guards import oracle, strategies

settings.register_profile("guard-tests", deadline=None, max_examples=30)


def line(n_nodes: int, *, buffer: int = 150_000, delay: int = 100, bandwidth: int = 10**9) -> list[dict]:
    return [{"a": i, "b": i + 1, "bandwidth_bps": bandwidth, "delay_ns": delay, "buffer_bytes": buffer, "weight": 1}
            for i in range(n_nodes - 1)]


def instance(links, flows, events=(), *, n=None, horizon=1_000_000, reconvergence=1000) -> dict:
    n = n or 1 + max(max(l["a"], l["b"]) for l in links)
    return {"version": 1, "nodes": [{"name": f"n{i}", "kind": "host"} for i in range(n)], "links": links,
            "flows": flows, "link_events": list(events), "mtu_bytes": 1500, "reconvergence_ns": reconvergence,
            "horizon_ns": horizon}


def flow(fid=0, src=0, dst=2, size=4000, start=0, rate=10**9) -> dict:
    return {"id": fid, "src": src, "dst": dst, "bytes": size, "start_ns": start, "rate_bps": rate}


def test_serialization_rounds_up():
    assert oracle.ser_ns(1500, 10**9) == 12_000
    assert oracle.ser_ns(1, 3) == 2_666_666_667


def test_store_and_forward_on_a_line():
    # 3 packets (1500, 1500, 1000 B) at 1 Gb/s over two 100 ns hops; the last is queued behind the second.
    result = oracle.simulate(instance(line(3), [flow()]), trace=True)
    (outcome,) = result["flows"]
    assert (outcome["delivered"], outcome["first_delivery_ns"], outcome["last_delivery_ns"]) == (3, 24_200, 44_200)
    assert outcome["latency_sum_ns"] == 24_200 + (36_200 - 12_000) + (44_200 - 24_000)
    assert ["send", 36_100, 0, 2, 1, 2] in result["trace"] and result["packet_hops"] == 6


def test_failure_drops_what_the_link_holds_and_reconvergence_reroutes():
    # Ring 0-1-2-3: flow 0->1 goes direct; link 0-1 fails at 5 us with packet 0 on the wire.
    links = line(4) + [{"a": 3, "b": 0, "bandwidth_bps": 10**9, "delay_ns": 100, "buffer_bytes": 150_000, "weight": 1}]
    result = oracle.simulate(instance(links, [flow(dst=1, size=3000)], [{"time_ns": 5000, "a": 1, "b": 0, "action": "fail"}],
                                      reconvergence=10_000), trace=True)
    (outcome,) = result["flows"]
    assert outcome["dropped"]["link_failed"] == 1  # packet 0, serializing from 0 to 12 us
    assert outcome["dropped"]["link_down"] == 1  # packet 1, offered at 12 us before the install at 15 us
    assert ["drop", 5000, 0, 0, 0, "link_failed"] in result["trace"]


def test_reroute_after_install_takes_the_long_way():
    links = line(4) + [{"a": 3, "b": 0, "bandwidth_bps": 10**9, "delay_ns": 100, "buffer_bytes": 150_000, "weight": 1}]
    result = oracle.simulate(instance(links, [flow(dst=1, size=1500, start=20_000)],
                                      [{"time_ns": 0, "a": 0, "b": 1, "action": "fail"}], reconvergence=0))
    assert result["flows"][0]["hop_sum"] == 3 and result["flows"][0]["delivered"] == 1


def test_unreachable_destination_is_no_route_and_full_buffer_is_queue_full():
    result = oracle.simulate(instance(line(2, buffer=1000), [flow(dst=2, size=10), flow(1, 0, 1, 3000)], n=3))
    assert result["flows"][0]["dropped"]["no_route"] == 1
    assert result["flows"][1]["dropped"]["queue_full"] == 2  # 1500 B never fit a 1000 B buffer


def test_nothing_at_or_after_the_horizon():
    result = oracle.simulate(instance(line(3), [flow(size=3000)], horizon=12_000), trace=True)
    assert result["flows"][0]["sent"] == 1 and max(r[1] for r in result["trace"]) < 12_000
    assert result["flows"][0]["in_flight"] == 1


def test_ecmp_picks_from_the_complete_set_in_canonical_order():
    # Diamond 0-{1,2}-3: both middle nodes are next hops of 0 toward 3.
    links = [{"a": a, "b": b, "bandwidth_bps": 10**9, "delay_ns": 0, "buffer_bytes": 10**6, "weight": 1}
             for a, b in ((0, 1), (0, 2), (1, 3), (2, 3))]
    result = oracle.simulate(instance(links, [flow(f, 0, 3, 100) for f in range(8)]), trace=True)
    firsts = {r[2]: r[5] for r in result["trace"] if r[0] == "send" and r[4] == 0}
    assert firsts == {f: [1, 2][oracle.ecmp_index(f, 0, 2)] for f in range(8)}
    assert set(firsts.values()) == {1, 2}


def test_slicing_gives_the_same_digest():
    case = instance(line(3), [flow(size=9000), flow(1, 2, 0, 5000, 3000)])
    whole = oracle.simulate(case)
    sim = oracle.Simulation(case)
    for cut in (0, 1, 12_000, 12_001, 40_000):
        sim.run(cut)
    assert sim.result()["digest"] == whole["digest"]


@settings(settings.get_profile("guard-tests"))
@given(strategies.connected_topologies())
def test_connected_families_are_connected(topology):
    graph = nx.Graph(topology["edges"])
    graph.add_nodes_from(range(len(topology["nodes"])))
    assert nx.is_connected(graph) and all(a < b for a, b in topology["edges"])


@settings(settings.get_profile("guard-tests"))
@given(strategies.cases())
def test_cases_are_valid_instances(case):
    from simopt.scenario import validate_instance

    validate_instance(case.instance)


@pytest.mark.parametrize("k", [4, 6])
def test_both_fattree_builders_have_the_fattree_shape(k):
    for topology in (strategies.fattree_topology(k), strategies.workload_fattree_topology(k)):
        graph = nx.Graph(topology["edges"])
        assert len(topology["hosts"]) == k**3 // 4 and graph.number_of_nodes() == k**3 // 4 + 5 * k * k // 4
        assert graph.number_of_edges() == 3 * k**3 // 4


def test_relabelling_keeps_the_graph():
    case = instance(line(4), [flow(dst=3)])
    moved = strategies.relabel(case, [3, 1, 0, 2])
    old = {frozenset((l["a"], l["b"])) for l in case["links"]}
    back = {0: 3, 1: 1, 2: 0, 3: 2}
    assert {frozenset((back[l["a"]], back[l["b"]])) for l in moved["links"]} == old
    assert (moved["flows"][0]["src"], moved["flows"][0]["dst"]) == (2, 0)
