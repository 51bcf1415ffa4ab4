"""The naive oracle: a second, independent implementation of docs/semantics.md.

Deliberately simple and never optimized: one heap of events keyed exactly as the spec's
canonical order (§6), routing tables recomputed from scratch with a plain Dijkstra per
destination, every packet a small dict. It shares nothing with simopt/netsim but the instance
format. When the two disagree, read the spec, not either implementation.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from typing import Any

CAUSES = ("link_down", "link_failed", "no_route", "queue_full")
MASK64 = (1 << 64) - 1

LINK_EVENT, ROUTE_INSTALL, ARRIVAL, INJECTION, TX_START = range(5)


def ser_ns(size: int, bandwidth_bps: int) -> int:
    """Serialization time in ns of `size` bytes at `bandwidth_bps` (§3), rounded up."""
    return (size * 8 * 1_000_000_000 + bandwidth_bps - 1) // bandwidth_bps


def splitmix64(x: int) -> int:
    """The spec's 64-bit mixer (§4)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def ecmp_index(flow: int, node: int, k: int) -> int:
    """Index into a next-hop set of length k for flow `flow` at node `node` (§4)."""
    return splitmix64((flow * 0x100000001B3 + node) & MASK64) % k


def digest_of(flows: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the per-flow outcomes (§10)."""
    text = json.dumps({"version": 1, "flows": flows}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shortest_distances(n: int, adjacency: dict[int, dict[int, int]], target: int) -> list[float]:
    """Weighted hop distance from every node to `target` over the live links (plain Dijkstra)."""
    dist = [float("inf")] * n
    dist[target] = 0
    heap = [(0, target)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, weight in adjacency[u].items():
            if d + weight < dist[v]:
                dist[v] = d + weight
                heapq.heappush(heap, (d + weight, v))
    return dist


class Simulation:
    """One run of one instance; `run(until)` may be called repeatedly, `result()` finishes it."""

    def __init__(self, instance: dict[str, Any], trace: bool = False):
        self.instance = instance
        self.n = len(instance["nodes"])
        self.mtu = instance["mtu_bytes"]
        self.horizon = instance["horizon_ns"]
        self.reconvergence = instance["reconvergence_ns"]
        self.links = {}
        for link in instance["links"]:
            key = (min(link["a"], link["b"]), max(link["a"], link["b"]))
            self.links[key] = {**link, "up": True}
        self.ports = {}
        for a, b in self.links:
            for u, v in ((a, b), (b, a)):
                self.ports[(u, v)] = {"queue": [], "waiting": 0, "pending": None}
        self.flows = {f["id"]: f for f in instance["flows"]}
        self.outcomes = {fid: self._empty_outcome(f) for fid, f in self.flows.items()}
        self.trace = [] if trace else None
        self.now = 0
        self.events = 0
        self.packet_hops = 0
        self.heap = []
        self.pushed = 0
        self.in_transit = {}  # (u, v) -> {entry number: arrival entry} of packets on that direction
        self._install_tables()
        for event in instance.get("link_events", []):
            key = (min(event["a"], event["b"]), max(event["a"], event["b"]))
            self._push(event["time_ns"], LINK_EVENT, key, {"link": key, "action": event["action"]})
        for fid, flow in self.flows.items():
            self._push(flow["start_ns"], INJECTION, (fid, 0), {"flow": fid, "seq": 0})

    # --- bookkeeping -------------------------------------------------------------------------

    def _empty_outcome(self, flow: dict[str, Any]) -> dict[str, Any]:
        packets = -(-flow["bytes"] // self.mtu)
        return {
            "id": flow["id"], "src": flow["src"], "dst": flow["dst"], "bytes": flow["bytes"],
            "packets": packets, "sent": 0, "delivered": 0, "delivered_bytes": 0,
            "dropped": {cause: 0 for cause in CAUSES}, "in_flight": 0,
            "first_delivery_ns": None, "last_delivery_ns": None,
            "latency_sum_ns": 0, "latency_max_ns": 0, "hop_sum": 0,
        }

    def _push(self, time: int, cls: int, key: tuple, payload: dict[str, Any]) -> list:
        self.pushed += 1
        entry = [time, cls, key, self.pushed, payload, False]  # the last field marks a cancelled event
        heapq.heappush(self.heap, entry)
        return entry

    def _record(self, *record: Any) -> None:
        if self.trace is not None:
            self.trace.append(list(record))

    def _size(self, flow: int, seq: int) -> int:
        packets = self.outcomes[flow]["packets"]
        if seq < packets - 1:
            return self.mtu
        return self.flows[flow]["bytes"] - (packets - 1) * self.mtu

    # --- routing ----------------------------------------------------------------------------

    def _install_tables(self) -> None:
        adjacency = {u: {} for u in range(self.n)}
        for (a, b), link in self.links.items():
            if link["up"]:
                adjacency[a][b] = link["weight"]
                adjacency[b][a] = link["weight"]
        self.adjacency = adjacency
        self.distances = {}  # destination -> distances, filled on demand
        self.hops = {}  # (node, destination) -> next hops, filled on demand: the view is fixed until the next install

    def next_hops(self, u: int, d: int) -> list[int]:
        """All neighbours of u on a shortest path to d in the installed view, ascending."""
        if (u, d) in self.hops:
            return self.hops[(u, d)]
        if d not in self.distances:
            self.distances[d] = shortest_distances(self.n, self.adjacency, d)
        dist = self.distances[d]
        hops = [] if dist[u] == float("inf") else sorted(v for v, w in self.adjacency[u].items() if w + dist[v] == dist[u])
        self.hops[(u, d)] = hops
        return hops

    # --- the event loop ---------------------------------------------------------------------

    def run(self, until: int) -> None:
        """Process every event with time < min(until, horizon) not yet processed."""
        limit = min(until, self.horizon)
        while self.heap and self.heap[0][0] < limit:
            time, cls, key, _, payload, cancelled = heapq.heappop(self.heap)
            if cancelled:
                continue
            self.now = time
            if cls == TX_START:
                self.events += self._transmission_start(key)  # a start that sends nothing is no event (§7)
                continue
            self.events += 1
            if cls == LINK_EVENT:
                self._link_event(payload["link"], payload["action"])
            elif cls == ROUTE_INSTALL:
                self._install_tables()
            elif cls == ARRIVAL:
                self._arrive(payload)
            else:
                self._inject(payload["flow"], payload["seq"])
        self.now = max(self.now, limit)

    def _link_event(self, key: tuple[int, int], action: str) -> None:
        link = self.links[key]
        if action == "fail" and link["up"]:
            link["up"] = False
            a, b = key
            for u, v in ((a, b), (b, a)):
                port = self.ports[(u, v)]
                for packet in port["queue"]:
                    self._drop(packet, u, "link_failed")
                port["queue"] = []
                port["waiting"] = 0
                if port["pending"] is not None:
                    port["pending"][5] = True
                    port["pending"] = None
                for entry in self.in_transit.pop((u, v), {}).values():
                    entry[5] = True
                    self._drop(entry[4]["packet"], u, "link_failed")
        elif action == "recover":
            link["up"] = True
        self._push(self.now + self.reconvergence, ROUTE_INSTALL, (), {})

    def _inject(self, flow: int, seq: int) -> None:
        outcome = self.outcomes[flow]
        size = self._size(flow, seq)
        packet = {"flow": flow, "seq": seq, "size": size, "injected": self.now, "hops": 0}
        outcome["sent"] += 1
        self._record("inject", self.now, flow, seq, self.flows[flow]["src"])
        if seq + 1 < outcome["packets"]:
            later = self.now + ser_ns(size, self.flows[flow]["rate_bps"])
            self._push(later, INJECTION, (flow, seq + 1), {"flow": flow, "seq": seq + 1})
        self._at_node(packet, self.flows[flow]["src"])

    def _arrive(self, payload: dict[str, Any]) -> None:
        packet, u, v = payload["packet"], payload["u"], payload["v"]
        del self.in_transit[(u, v)][payload["number"]]
        packet["hops"] += 1
        self.packet_hops += 1
        self._record("arrive", self.now, packet["flow"], packet["seq"], u, v)
        self._at_node(packet, v)

    def _at_node(self, packet: dict[str, Any], u: int) -> None:
        flow = self.flows[packet["flow"]]
        if u == flow["dst"]:
            self._deliver(packet, u)
            return
        hops = self.next_hops(u, flow["dst"])
        if not hops:
            self._drop(packet, u, "no_route")
            return
        v = hops[ecmp_index(flow["id"], u, len(hops))]
        link = self.links[(min(u, v), max(u, v))]
        if not link["up"]:
            self._drop(packet, u, "link_down")
            return
        port = self.ports[(u, v)]
        if port["waiting"] + packet["size"] > link["buffer_bytes"]:
            self._drop(packet, u, "queue_full")
            return
        port["queue"].append(packet)
        port["waiting"] += packet["size"]
        if port["pending"] is None:
            port["pending"] = self._push(self.now, TX_START, (u, v), {})

    def _transmission_start(self, port_key: tuple[int, int]) -> bool:
        """Start sending the head of the port's queue; False when the queue is empty (the port idles)."""
        port = self.ports[port_key]
        port["pending"] = None
        if not port["queue"]:
            return False
        packet = port["queue"].pop(0)
        port["waiting"] -= packet["size"]
        u, v = port_key
        link = self.links[(min(u, v), max(u, v))]
        serialization = ser_ns(packet["size"], link["bandwidth_bps"])
        self._record("send", self.now, packet["flow"], packet["seq"], u, v)
        payload = {"packet": packet, "u": u, "v": v}
        entry = self._push(self.now + serialization + link["delay_ns"], ARRIVAL, (packet["flow"], packet["seq"]), payload)
        payload["number"] = entry[3]
        self.in_transit.setdefault((u, v), {})[entry[3]] = entry
        port["pending"] = self._push(self.now + serialization, TX_START, port_key, {})
        return True

    def _deliver(self, packet: dict[str, Any], node: int) -> None:
        outcome = self.outcomes[packet["flow"]]
        latency = self.now - packet["injected"]
        outcome["delivered"] += 1
        outcome["delivered_bytes"] += packet["size"]
        if outcome["first_delivery_ns"] is None:
            outcome["first_delivery_ns"] = self.now
        outcome["last_delivery_ns"] = self.now
        outcome["latency_sum_ns"] += latency
        outcome["latency_max_ns"] = max(outcome["latency_max_ns"], latency)
        outcome["hop_sum"] += packet["hops"]
        self._record("deliver", self.now, packet["flow"], packet["seq"], node)

    def _drop(self, packet: dict[str, Any], node: int, cause: str) -> None:
        self.outcomes[packet["flow"]]["dropped"][cause] += 1
        self._record("drop", self.now, packet["flow"], packet["seq"], node, cause)

    # --- the outcome ------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """Advance to the horizon and return the outcome in the engine API's shape."""
        self.run(self.horizon)
        flows = []
        for fid in sorted(self.outcomes):
            outcome = self.outcomes[fid]
            outcome["in_flight"] = outcome["sent"] - outcome["delivered"] - sum(outcome["dropped"].values())
            flows.append(outcome)
        dropped = {cause: sum(f["dropped"][cause] for f in flows) for cause in CAUSES}
        result = {
            "version": 1,
            "digest": digest_of(flows),
            "events": self.events,
            "packet_hops": self.packet_hops,
            "horizon_ns": self.horizon,
            "totals": {
                "flows": len(flows),
                "completed": sum(1 for f in flows if f["delivered"] == f["packets"]),
                "sent": sum(f["sent"] for f in flows),
                "delivered": sum(f["delivered"] for f in flows),
                "in_flight": sum(f["in_flight"] for f in flows),
                "dropped": dropped,
            },
            "flows": flows,
        }
        if self.trace is not None:
            result["trace"] = self.trace
        return result


def simulate(instance: dict[str, Any], trace: bool = False) -> dict[str, Any]:
    """Run `instance` to its horizon and return the result (the engine API's shape)."""
    return Simulation(instance, trace=trace).result()
