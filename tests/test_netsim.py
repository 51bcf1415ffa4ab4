"""netsim against hand-computed cases of docs/semantics.md: arithmetic, routing, queues, failures."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from simopt.engine import load_engine

ROOT = Path(__file__).resolve().parents[1]
netsim = load_engine(ROOT)
routing = sys.modules["netsim_target.routing"]

GBPS = 1_000_000_000


def link(a, b, *, bw=GBPS, delay=1000, buffer=100_000, weight=1):
    return {"a": a, "b": b, "bandwidth_bps": bw, "delay_ns": delay, "buffer_bytes": buffer, "weight": weight}


def flow(fid, src, dst, nbytes, *, start=0, rate=GBPS):
    return {"id": fid, "src": src, "dst": dst, "bytes": nbytes, "start_ns": start, "rate_bps": rate}


def instance(node_count, links, flows, *, events=(), horizon=10_000_000, reconvergence=0, mtu=1500):
    return {
        "version": 1,
        "nodes": [{"name": f"n{i}", "kind": "host"} for i in range(node_count)],
        "links": list(links),
        "flows": list(flows),
        "link_events": list(events),
        "mtu_bytes": mtu,
        "reconvergence_ns": reconvergence,
        "horizon_ns": horizon,
    }


def outcome(result, fid=0):
    return next(f for f in result["flows"] if f["id"] == fid)


def sorted_trace(result):
    return sorted(json.dumps(record) for record in result["trace"])


# -- arithmetic on a 2-host line -------------------------------------------------------------


def test_serialization_rounds_up_in_integers():
    ser = sys.modules["netsim_target.packets"].serialization_ns
    assert ser(1500, GBPS) == 12_000
    assert ser(1, 3) == 2_666_666_667  # 8e9 / 3 = 2666666666.67 -> up
    assert ser(1500, 10 * GBPS) == 1_200
    assert ser(1, 8_000_000_000) == 1


def test_two_packets_over_one_link_arrive_at_serialization_plus_propagation():
    # 3000 bytes = 2 packets of 1500; each takes 12,000 ns on the wire plus 1,000 ns propagation;
    # the host paces at line rate, so packet 1 is injected at 12,000 and starts at once.
    result = netsim.simulate(instance(2, [link(0, 1)], [flow(0, 0, 1, 3000)]))
    got = outcome(result)
    assert (got["sent"], got["delivered"], got["delivered_bytes"]) == (2, 2, 3000)
    assert got["first_delivery_ns"] == 13_000
    assert got["last_delivery_ns"] == 25_000
    assert got["latency_sum_ns"] == 26_000 and got["latency_max_ns"] == 13_000
    assert got["hop_sum"] == 2 and result["packet_hops"] == 2


def test_last_packet_carries_the_remainder_and_store_and_forward_adds_per_hop():
    # 1600 bytes = 1500 + 100; line 0-1-2 at 1 Gb/s, 1,000 ns per link.
    result = netsim.simulate(instance(3, [link(0, 1), link(1, 2)], [flow(0, 0, 2, 1600)]))
    got = outcome(result)
    # packet 0: 12,000 + 1,000 to node 1, again to node 2 -> 26,000
    assert got["first_delivery_ns"] == 26_000
    # packet 1 (100 bytes, 800 ns) injected at 12,000: 12,800 + 1,000 = 13,800 at node 1, but the
    # port 1->2 is busy with packet 0 until 13,000 + 12,000 = 25,000; then 800 + 1,000 -> 26,800
    assert got["last_delivery_ns"] == 26_800
    assert got["hop_sum"] == 4


def test_pacing_follows_the_flow_rate_not_the_link():
    # a 1 Gb/s flow over a 10 Gb/s link: packets leave every 12,000 ns, each takes 1,200 on the wire
    result = netsim.simulate(instance(2, [link(0, 1, bw=10 * GBPS)], [flow(0, 0, 1, 4500)]), trace=True)
    sends = [record[1] for record in result["trace"] if record[0] == "send"]
    assert sends == [0, 12_000, 24_000]
    assert outcome(result)["last_delivery_ns"] == 24_000 + 1_200 + 1_000


# -- queues -----------------------------------------------------------------------------------


def test_drop_tail_counts_waiting_bytes_only():
    # Three flows from 0, 1, 2 into node 3 and then over the slow link 3->4 whose buffer holds
    # exactly one waiting packet. All three 1500-byte packets arrive at node 3 at 1,200 + 0 ns:
    # by packet id, flow 0 queues, flow 1 queues (the first is still waiting: 3000 > 1500 -> drop)...
    links = [link(i, 3, bw=10 * GBPS, delay=0) for i in range(3)] + [link(3, 4, bw=GBPS, delay=0, buffer=1500)]
    flows = [flow(i, i, 4, 1500, rate=10 * GBPS) for i in range(3)]
    result = netsim.simulate(instance(5, links, flows), trace=True)
    # at t=1,200 arrivals are processed before the transmission start: flow 0 waits (1500 bytes),
    # flows 1 and 2 do not fit; then the port starts flow 0's packet.
    drops = sorted((r[2], r[5]) for r in result["trace"] if r[0] == "drop")
    assert drops == [(1, "queue_full"), (2, "queue_full")]
    assert outcome(result, 0)["delivered"] == 1
    assert result["totals"]["dropped"]["queue_full"] == 2


def test_the_packet_on_the_wire_frees_its_buffer_space():
    # buffer of one packet: while packet 0 is serialized (12,000 ns), packet 1 may wait.
    links = [link(0, 1, bw=10 * GBPS, delay=0), link(1, 2, bw=GBPS, delay=0, buffer=1500)]
    result = netsim.simulate(instance(3, links, [flow(0, 0, 2, 3000, rate=10 * GBPS)]))
    assert outcome(result)["delivered"] == 2
    assert outcome(result)["last_delivery_ns"] == 1_200 + 12_000 + 12_000


def test_zero_buffer_still_sends_nothing_it_cannot_hold():
    result = netsim.simulate(instance(2, [link(0, 1, buffer=0)], [flow(0, 0, 1, 1500)]))
    assert outcome(result)["dropped"]["queue_full"] == 1


# -- routing ----------------------------------------------------------------------------------


def test_ecmp_hash_is_the_documented_splitmix64():
    # reference values computed from the formula in docs/semantics.md §4
    assert routing.splitmix64(0) == 0xE220A8397B1DCDAF
    assert routing.splitmix64(1) == 0x910A2DEC89025CC1
    x = (7 * 0x100000001B3 + 11) % 2**64
    assert routing.ecmp_index(7, 11, 5) == routing.splitmix64(x) % 5


def test_next_hop_sets_are_complete_and_canonical_against_networkx():
    graph = nx.random_regular_graph(4, 24, seed=3)
    view = routing.routing_view(24, ((a, b, 1) for a, b in graph.edges))
    for destination in range(24):
        table = routing.next_hops_toward(view, destination)
        for node in range(24):
            expected = sorted({path[1] for path in nx.all_shortest_paths(graph, node, destination)}) \
                if node != destination else []
            assert list(table[node]) == expected


def test_weights_steer_routes():
    # 0-1-3 costs 1+1, 0-2-3 costs 5+1: only node 1 is a next hop from 0 toward 3
    view = routing.routing_view(4, [(0, 1, 1), (1, 3, 1), (0, 2, 5), (2, 3, 1)])
    assert routing.next_hops_toward(view, 3)[0] == (1,)


def test_flows_spread_over_equal_cost_paths_by_the_hash():
    # 0 connects to 1..4, all of which connect to 5: four equal paths
    links = [link(0, m) for m in range(1, 5)] + [link(m, 5) for m in range(1, 5)]
    flows = [flow(f, 0, 5, 1500, start=f * 20_000) for f in range(40)]
    result = netsim.simulate(instance(6, links, flows), trace=True)
    middle = {r[2]: r[5] for r in result["trace"] if r[0] == "send" and r[4] == 0}
    assert all(middle[f] == 1 + routing.ecmp_index(f, 0, 4) for f in range(40))
    assert set(middle.values()) == {1, 2, 3, 4}


def test_disconnected_destination_drops_as_no_route():
    result = netsim.simulate(instance(4, [link(0, 1), link(2, 3)], [flow(0, 0, 3, 4500)]))
    assert outcome(result)["dropped"]["no_route"] == 3
    assert outcome(result)["delivered"] == 0


# -- failures ---------------------------------------------------------------------------------


def square_with_failure(*, fail_at, recover_at=None, reconvergence=5_000):
    # 0-1-3 and 0-2-3; flow 0 hashes onto one of them: fail that one
    first_hop = 1 + routing.ecmp_index(0, 0, 2)
    links = [link(0, 1), link(1, 3), link(0, 2), link(2, 3)]
    events = [{"time_ns": fail_at, "a": 0, "b": first_hop, "action": "fail"}]
    if recover_at is not None:
        events.append({"time_ns": recover_at, "a": first_hop, "b": 0, "action": "recover"})
    flows = [flow(0, 0, 3, 1500 * 20)]
    return instance(4, links, flows, events=events, reconvergence=reconvergence), first_hop


def test_failure_drops_what_the_link_holds_then_stale_routes_drop_until_reconvergence():
    inst, first_hop = square_with_failure(fail_at=6_000, reconvergence=30_000)
    result = netsim.simulate(inst, trace=True)
    got = outcome(result)
    # packet 0 is on the wire at 6,000 (sent 0, due 13,000): link_failed.
    assert got["dropped"]["link_failed"] == 1
    # packets injected at 12,000 and 24,000 meet the stale table: link_down; from 36,000 on the
    # new table (installed at 36,000: link changes, installs, arrivals, injections) routes around.
    assert got["dropped"]["link_down"] == 2
    assert got["delivered"] == 17
    hops = {r[5] for r in result["trace"] if r[0] == "send" and r[4] == 0}
    assert hops == {1, 2}


def test_recovery_restores_the_original_path_after_the_next_install():
    inst, first_hop = square_with_failure(fail_at=6_000, recover_at=100_000, reconvergence=30_000)
    result = netsim.simulate(inst, trace=True)
    late_hops = {r[5] for r in result["trace"] if r[0] == "send" and r[4] == 0 and r[1] >= 130_000}
    assert late_hops == {first_hop}
    assert outcome(result)["delivered"] == 17


def test_failure_at_the_arrival_time_drops_the_arriving_packet():
    inst, _ = square_with_failure(fail_at=13_000)
    assert outcome(netsim.simulate(inst))["dropped"]["link_failed"] == 2  # arriving + the next on the wire


def test_conservation_holds_at_the_horizon():
    inst, _ = square_with_failure(fail_at=6_000)
    inst["horizon_ns"] = 50_000
    got = outcome(netsim.simulate(inst))
    assert got["sent"] == got["delivered"] + sum(got["dropped"].values()) + got["in_flight"]
    assert got["in_flight"] > 0


# -- the run API ------------------------------------------------------------------------------


def contended_instance():
    links = [link(a, b, buffer=6000) for a, b in
             [(0, 4), (1, 4), (2, 5), (3, 5), (4, 6), (4, 7), (5, 6), (5, 7)]]
    flows = [flow(f, f % 4, (f + 2) % 4, 30_000, start=f * 500) for f in range(8)]
    events = [{"time_ns": 40_000, "a": 4, "b": 6, "action": "fail"},
              {"time_ns": 90_000, "a": 4, "b": 6, "action": "recover"}]
    return instance(8, links, flows, events=events, horizon=400_000, reconvergence=10_000)


@pytest.mark.parametrize("step", [1, 977, 13_000, 400_000])
def test_any_slicing_gives_the_same_result(step):
    whole = netsim.simulate(contended_instance())
    sim = netsim.Simulation(contended_instance())
    for until in range(0, 400_001, step):
        sim.run(until)
        assert sim.now == min(until, 400_000) or until == 0
    sliced = sim.result()
    assert (sliced["digest"], sliced["events"], sliced["packet_hops"]) == \
        (whole["digest"], whole["events"], whole["packet_hops"])


def test_tracing_changes_nothing():
    plain = netsim.simulate(contended_instance())
    traced = netsim.simulate(contended_instance(), trace=True)
    assert traced["digest"] == plain["digest"] and traced["events"] == plain["events"]
    assert sum(r[0] == "arrive" for r in traced["trace"]) == plain["packet_hops"]


def test_order_of_flows_and_links_in_the_instance_does_not_matter():
    base = contended_instance()
    shuffled = dict(base, flows=base["flows"][::-1], links=base["links"][::-1])
    a, b = netsim.simulate(base, trace=True), netsim.simulate(shuffled, trace=True)
    assert a["digest"] == b["digest"] and sorted_trace(a) == sorted_trace(b)


def test_nothing_happens_at_or_after_the_horizon():
    inst = contended_instance()
    inst["horizon_ns"] = 30_000
    result = netsim.simulate(inst, trace=True)
    assert max(record[1] for record in result["trace"]) < 30_000


def test_same_digest_in_separate_processes():
    script = (
        "import json, sys; from pathlib import Path; from simopt.engine import load_engine; "
        "print(load_engine(Path(sys.argv[1])).simulate(json.loads(sys.stdin.read()))['digest'])"
    )
    payload = json.dumps(contended_instance())
    digests = {
        subprocess.run([sys.executable, "-c", script, str(ROOT)], input=payload, text=True,
                       capture_output=True, check=True, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {netsim.simulate(contended_instance())["digest"]}


def test_digest_is_sha256_of_the_canonical_outcomes():
    import hashlib

    result = netsim.simulate(contended_instance())
    body = json.dumps({"version": 1, "flows": result["flows"]}, sort_keys=True, separators=(",", ":"))
    assert result["digest"] == hashlib.sha256(body.encode()).hexdigest()
    assert [f["id"] for f in result["flows"]] == sorted(f["id"] for f in result["flows"])
    assert set(itertools.chain.from_iterable(f["dropped"] for f in result["flows"])) == \
        {"link_down", "link_failed", "no_route", "queue_full"}
