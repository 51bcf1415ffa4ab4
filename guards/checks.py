"""Invariants of a traced run (docs/semantics.md), checked from the result alone.

Each check takes the instance and a result produced with `trace=True` and raises
AssertionError with a message that names the flow, packet, port and times involved.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from guards.oracle import CAUSES, ecmp_index, ser_ns

PHASE = {"inject": 0, "arrive": 0, "send": 1, "deliver": 1, "drop": 1}
OUTCOME_FIELDS = {
    "id", "src", "dst", "bytes", "packets", "sent", "delivered", "delivered_bytes", "dropped", "in_flight",
    "first_delivery_ns", "last_delivery_ns", "latency_sum_ns", "latency_max_ns", "hop_sum",
}


def _link_key(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


def packet_size(instance: dict[str, Any], flow: dict[str, Any], seq: int) -> int:
    """Bytes of packet `seq` of `flow` (§2)."""
    mtu = instance["mtu_bytes"]
    packets = -(-flow["bytes"] // mtu)
    return mtu if seq < packets - 1 else flow["bytes"] - (packets - 1) * mtu


def packet_histories(trace: list[list[Any]]) -> dict[tuple[int, int], list[list[Any]]]:
    """Each packet's records in the order they happened."""
    histories = defaultdict(list)
    for record in trace:
        histories[(record[2], record[3])].append(record)
    for records in histories.values():
        records.sort(key=lambda r: (r[1], PHASE[r[0]]))
    return histories


def check_digest(result: dict[str, Any]) -> None:
    """The digest is sha256 of the canonical JSON of exactly the returned outcomes (§10)."""
    for outcome in result["flows"]:
        assert set(outcome) == OUTCOME_FIELDS, f"flow {outcome.get('id')}: fields {sorted(outcome)} are not §9's"
        assert set(outcome["dropped"]) == set(CAUSES), f"flow {outcome['id']}: drop causes {sorted(outcome['dropped'])}"
    ids = [outcome["id"] for outcome in result["flows"]]
    assert ids == sorted(ids), f"flows are not in ascending id order: {ids[:10]}"
    text = json.dumps({"version": 1, "flows": result["flows"]}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert result["digest"] == expected, f"digest {result['digest'][:12]} is not the hash of the returned outcomes ({expected[:12]})"


def check_outcomes_match_trace(instance: dict[str, Any], result: dict[str, Any]) -> None:
    """Per-flow counts, drops by cause, latencies and hop sums agree with the trace (conservation)."""
    flows = {f["id"]: f for f in instance["flows"]}
    assert sorted(flows) == [o["id"] for o in result["flows"]], "the outcomes do not cover exactly the instance's flows"
    histories = packet_histories(result["trace"])
    arrivals = sum(1 for r in result["trace"] if r[0] == "arrive")
    assert result["packet_hops"] == arrivals, f"packet_hops {result['packet_hops']} != {arrivals} arrive records"
    for outcome in result["flows"]:
        fid = outcome["id"]
        flow = flows[fid]
        expected = {"sent": 0, "delivered": 0, "delivered_bytes": 0, "dropped": {c: 0 for c in CAUSES},
                    "latency_sum_ns": 0, "latency_max_ns": 0, "hop_sum": 0, "first": None, "last": None}
        for seq in range(outcome["packets"]):
            records = histories.get((fid, seq), [])
            if not records:
                continue
            assert records[0][0] == "inject", f"flow {fid} packet {seq}: first record {records[0]} is not its injection"
            ends = [r for r in records if r[0] in ("deliver", "drop")]
            assert len(ends) <= 1, f"flow {fid} packet {seq} ends more than once: {ends}"
            expected["sent"] += 1
            if ends and ends[0][0] == "drop":
                expected["dropped"][ends[0][5]] += 1
            elif ends:
                t = ends[0][1]
                latency = t - records[0][1]
                expected["delivered"] += 1
                expected["delivered_bytes"] += packet_size(instance, flow, seq)
                expected["latency_sum_ns"] += latency
                expected["latency_max_ns"] = max(expected["latency_max_ns"], latency)
                expected["hop_sum"] += sum(1 for r in records if r[0] == "arrive")
                expected["first"] = t if expected["first"] is None else min(expected["first"], t)
                expected["last"] = t if expected["last"] is None else max(expected["last"], t)
        got = {key: outcome[key] for key in ("sent", "delivered", "delivered_bytes", "dropped", "latency_sum_ns", "latency_max_ns", "hop_sum")}
        got["first"], got["last"] = outcome["first_delivery_ns"], outcome["last_delivery_ns"]
        assert got == expected, f"flow {fid}: outcome {got} disagrees with its trace {expected}"
        in_flight = outcome["sent"] - outcome["delivered"] - sum(outcome["dropped"].values())
        assert outcome["in_flight"] == in_flight >= 0, f"flow {fid}: in_flight {outcome['in_flight']} != {in_flight}"


def check_injections(instance: dict[str, Any], result: dict[str, Any]) -> None:
    """Every packet injected before the horizon is sent, paced at the flow's rate (§3)."""
    injected = {(r[2], r[3]): r for r in result["trace"] if r[0] == "inject"}
    for flow in instance["flows"]:
        t, packets = flow["start_ns"], -(-flow["bytes"] // instance["mtu_bytes"])
        for seq in range(packets):
            record = injected.get((flow["id"], seq))
            if t >= instance["horizon_ns"]:
                assert record is None, f"flow {flow['id']} packet {seq} injected at {record[1]} ns, at/after the horizon"
                break
            assert record == ["inject", t, flow["id"], seq, flow["src"]], (
                f"flow {flow['id']} packet {seq}: expected injection at {t} ns at node {flow['src']}, got {record}")
            t += ser_ns(packet_size(instance, flow, seq), flow["rate_bps"])


def check_trace(instance: dict[str, Any], result: dict[str, Any]) -> None:
    """Horizon, store-and-forward causality, live links, FIFO and work-conserving ports, buffer limits."""
    horizon = instance["horizon_ns"]
    for record in result["trace"]:
        assert 0 <= record[1] < horizon, f"{record} happens outside [0, horizon={horizon})"
    links = {_link_key(l["a"], l["b"]): l for l in instance["links"]}
    fails = defaultdict(list)
    for event in instance["link_events"]:
        fails[_link_key(event["a"], event["b"])].append((event["time_ns"], event["action"]))
    flows = {f["id"]: f for f in instance["flows"]}

    def up_at(key: tuple[int, int], t: int) -> bool:
        state = True
        for time_ns, action in sorted(fails[key]):
            if time_ns <= t:
                state = action == "recover"
        return state

    def fails_between(key: tuple[int, int], start: int, end: int) -> bool:
        return any(action == "fail" and start < t <= end for t, action in fails[key])

    port_sends = defaultdict(list)  # (u, v) -> [(send time, offer key, size)]
    for (fid, seq), records in packet_histories(result["trace"]).items():
        flow, size = flows[fid], packet_size(instance, flows[fid], seq)
        where, offer = flow["src"], None
        for record in records:
            kind, t = record[0], record[1]
            if kind in ("inject", "arrive"):
                node = record[4] if kind == "inject" else record[5]
                offer = (t, 3 if kind == "inject" else 2, fid, seq)
                where = node
            elif kind == "send":
                u, v = record[4], record[5]
                key = _link_key(u, v)
                assert u == where and offer is not None, f"flow {fid} packet {seq} sent from {u} but it is at {where}: {records}"
                assert key in links, f"flow {fid} packet {seq} sent over {u}->{v}, which is not a link"
                assert up_at(key, t), f"flow {fid} packet {seq} sent over {u}->{v} at {t} ns while the link is down"
                port_sends[(u, v)].append((t, offer, size))
                offer = None
        for before, after in zip(records, records[1:]):
            if before[0] == "send" and after[0] == "arrive":
                link = links[_link_key(before[4], before[5])]
                due = before[1] + ser_ns(size, link["bandwidth_bps"]) + link["delay_ns"]
                assert after[1] == due and after[4:6] == before[4:6], (
                    f"flow {fid} packet {seq}: sent {before[4]}->{before[5]} at {before[1]} ns must arrive at {due} ns, got {after}")
                assert not fails_between(_link_key(before[4], before[5]), before[1], after[1]), (
                    f"flow {fid} packet {seq} arrived over {before[4]}->{before[5]} at {after[1]} ns though the link failed on the way")
            if before[0] == "send" and after[0] not in ("arrive", "drop"):
                raise AssertionError(f"flow {fid} packet {seq}: {after} follows {before}")
    for (u, v), sends in port_sends.items():
        link = links[_link_key(u, v)]
        sends.sort()
        for (t1, offer1, size1), (t2, offer2, _) in zip(sends, sends[1:]):
            assert offer1 < offer2, f"port {u}->{v} is not FIFO: sent {offer2} at {t2} ns after {offer1}, offered later"
            if fails_between(_link_key(u, v), t1, t2):
                continue
            expected = max(t1 + ser_ns(size1, link["bandwidth_bps"]), offer2[0])
            assert t2 == expected, f"port {u}->{v}: packet offered at {offer2[0]} ns sent at {t2} ns, expected {expected} ns"
        _check_buffer(u, v, link, sends, fails[_link_key(u, v)])


def _check_buffer(u: int, v: int, link: dict[str, Any], sends: list, events: list) -> None:
    """Waiting bytes of the packets that were sent never exceed the buffer (a lower bound of the real queue)."""
    changes = []
    for t, offer, size in sends:
        changes.append(((offer[0], offer[1]), size))
        changes.append(((t, 4), -size))
    waiting = 0
    for _, delta in sorted(changes, key=lambda c: c[0]):
        waiting += delta
        assert waiting <= link["buffer_bytes"], f"port {u}->{v} held {waiting} waiting bytes, above its buffer of {link['buffer_bytes']}"


def check_routes(instance: dict[str, Any], result: dict[str, Any]) -> None:
    """With no link events: every hop is the spec's ECMP pick from networkx's complete next-hop set,
    delivered packets follow shortest paths, and no_route happens only when the destination is unreachable."""
    import networkx as nx

    assert not instance["link_events"], "check_routes needs an instance without link events"
    graph = nx.Graph()
    graph.add_nodes_from(range(len(instance["nodes"])))
    for link in instance["links"]:
        graph.add_edge(link["a"], link["b"], weight=link["weight"])
    flows = {f["id"]: f for f in instance["flows"]}
    distances = {}
    for (fid, seq), records in packet_histories(result["trace"]).items():
        dst = flows[fid]["dst"]
        if dst not in distances:
            distances[dst] = nx.single_source_dijkstra_path_length(graph, dst)
        dist = distances[dst]
        weight_travelled = 0
        for before, after in zip(records, records[1:]):
            node = before[4] if before[0] == "inject" else before[5] if before[0] == "arrive" else None
            if node is None:
                if before[0] == "send":
                    weight_travelled += graph[before[4]][before[5]]["weight"]
                continue
            hops = sorted(v for v in graph[node] if node in dist and v in dist
                          and graph[node][v]["weight"] + dist[v] == dist[node])
            if after[0] == "drop" and after[5] == "no_route":
                assert not hops, f"flow {fid} packet {seq} dropped as no_route at {node}, but networkx next hops are {hops}"
            if after[0] == "send":
                assert hops, f"flow {fid} packet {seq} forwarded from {node} though {dst} is unreachable"
                pick = hops[ecmp_index(fid, node, len(hops))]
                assert after[5] == pick, (
                    f"flow {fid} packet {seq} at node {node} toward {dst}: went to {after[5]}, but the ECMP pick from the "
                    f"complete next-hop set {hops} is {pick}")
        if records[-1][0] == "deliver":
            src = flows[fid]["src"]
            assert weight_travelled == dist[src], (
                f"flow {fid} packet {seq} travelled a path of weight {weight_travelled}, shortest is {dist[src]}")


def check_event_count(instance: dict[str, Any], result: dict[str, Any]) -> None:
    """events = injections + sends + arrivals + link events + route installs before the horizon (§7)."""
    horizon, reconvergence = instance["horizon_ns"], instance["reconvergence_ns"]
    kinds = defaultdict(int)
    for record in result["trace"]:
        kinds[record[0]] += 1
    changes = sum(1 for event in instance["link_events"] if event["time_ns"] < horizon)
    installs = sum(1 for event in instance["link_events"] if event["time_ns"] + reconvergence < horizon)
    expected = kinds["inject"] + kinds["send"] + kinds["arrive"] + changes + installs
    assert result["events"] == expected, (
        f"events {result['events']} != {kinds['inject']} injections + {kinds['send']} sends + {kinds['arrive']} arrivals "
        f"+ {changes} link events + {installs} route installs = {expected} (docs/semantics.md §7)")
