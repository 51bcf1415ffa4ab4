"""The simulation: one SimPy environment, the network, the flows and the event handlers."""

from __future__ import annotations

from typing import Any, Mapping

import simpy

from . import events as ev
from .events import At
from .links import Link, Port
from .outcome import digest, flow_outcome, totals
from .packets import Flow, Packet, serialization_ns
from .routing import NextHops, ecmp_index, routing_tables, routing_view


class Simulation:
    """A run of one instance (docs/semantics.md), advanced with `run(until)` in any slices."""

    def __init__(self, instance: Mapping[str, Any], *, trace: bool = False):
        self.env = simpy.Environment(initial_time=0)
        self.horizon_ns: int = instance["horizon_ns"]
        self.reconvergence_ns: int = instance["reconvergence_ns"]
        self.node_count = len(instance["nodes"])
        self.events = 0
        self.packet_hops = 0
        self._trace: list[list[Any]] | None = [] if trace else None

        self.links: dict[tuple[int, int], Link] = {}
        self.ports: dict[tuple[int, int], Port] = {}
        for spec in instance["links"]:
            link = Link(spec["a"], spec["b"], spec["bandwidth_bps"], spec["delay_ns"],
                        spec["buffer_bytes"], spec.get("weight", 1))
            self.links[(link.a, link.b)] = link
            for port in link.ports:
                self.ports[(port.source, port.target)] = port

        mtu = instance["mtu_bytes"]
        self.flows = sorted(
            (Flow(f["id"], f["src"], f["dst"], f["bytes"], f["start_ns"], f["rate_bps"], mtu)
             for f in instance["flows"]),
            key=lambda flow: flow.id,
        )
        self._destinations = sorted({flow.dst for flow in self.flows})
        self.tables: dict[int, NextHops] = {}
        self._compute_tables()

        for flow in self.flows:
            At(self.env, flow.start_ns, ev.priority(ev.INJECTION, flow.id, 0), self._on_injection, (flow, 0))
        for change in instance.get("link_events", ()):
            key = (min(change["a"], change["b"]), max(change["a"], change["b"]))
            At(self.env, change["time_ns"], ev.priority(ev.LINK_EVENT, *key), self._on_link_event,
               (self.links[key], change["action"]))

    @property
    def now(self) -> int:
        return self.env.now

    def run(self, until: int) -> None:
        """Process every event with time < min(until, horizon) not processed yet."""
        until = min(until, self.horizon_ns)
        if until > self.env.now:
            self.env.run(until=until)

    def result(self) -> dict[str, Any]:
        """Run to the horizon; the outcomes, totals and digest (and the trace, if recorded)."""
        self.run(self.horizon_ns)
        outcomes = [flow_outcome(flow) for flow in self.flows]
        result = {
            "version": 1,
            "digest": digest(outcomes),
            "events": self.events,
            "packet_hops": self.packet_hops,
            "horizon_ns": self.horizon_ns,
            "totals": totals(outcomes),
            "flows": outcomes,
        }
        if self._trace is not None:
            result["trace"] = self._trace
        return result

    # -- routing -------------------------------------------------------------------------------

    def _compute_tables(self) -> None:
        live = ((link.a, link.b, link.weight) for link in self.links.values() if link.up)
        self.tables = routing_tables(routing_view(self.node_count, live), self._destinations)

    def _on_route_install(self, event: simpy.events.Event) -> None:
        self.events += 1
        self._compute_tables()

    # -- link state ----------------------------------------------------------------------------

    def _on_link_event(self, event: simpy.events.Event) -> None:
        self.events += 1
        link, action = event.value
        if action == "fail" and link.up:
            link.up = False
            for port in link.ports:
                for packet in port.flush():
                    packet.alive = False
                    self._drop(packet, port.source, "link_failed")
        elif action == "recover":
            link.up = True
        At(self.env, self.reconvergence_ns, ev.priority(ev.ROUTE_INSTALL), self._on_route_install)

    # -- packets -------------------------------------------------------------------------------

    def _on_injection(self, event: simpy.events.Event) -> None:
        self.events += 1
        flow, seq = event.value
        now = self.env.now
        packet = Packet(flow, seq, now)
        flow.sent += 1
        self._record("inject", now, flow.id, seq, flow.src)
        if seq + 1 < flow.packets:
            At(self.env, serialization_ns(packet.size, flow.rate_bps),
               ev.priority(ev.INJECTION, flow.id, seq + 1), self._on_injection, (flow, seq + 1))
        self._at_node(packet, flow.src)

    def _on_arrival(self, event: simpy.events.Event) -> None:
        packet: Packet = event.value
        if not packet.alive:  # dropped when its link failed; the arrival no longer happens
            return
        self.events += 1
        port: Port = packet.port
        port.in_flight.popleft()
        packet.hops += 1
        self.packet_hops += 1
        self._record("arrive", self.env.now, packet.flow.id, packet.seq, port.source, port.target)
        self._at_node(packet, port.target)

    def _at_node(self, packet: Packet, node: int) -> None:
        flow = packet.flow
        if node == flow.dst:
            self._deliver(packet)
            return
        next_hops = self.tables[flow.dst][node]
        if not next_hops:
            self._drop(packet, node, "no_route")
            return
        port = self.ports[(node, next_hops[ecmp_index(flow.id, node, len(next_hops))])]
        if not port.link.up:
            self._drop(packet, node, "link_down")
        elif not port.fits(packet):
            self._drop(packet, node, "queue_full")
        else:
            port.enqueue(packet)
            if port.pending_start is None:
                self._schedule_start(port, 0)

    def _schedule_start(self, port: Port, delay: int) -> None:
        port.pending_start = At(self.env, delay, ev.priority(ev.TRANSMISSION_START, port.source, port.target),
                                self._on_transmission_start, port)

    def _on_transmission_start(self, event: simpy.events.Event) -> None:
        port: Port = event.value
        if port.pending_start is not event:  # cancelled by a link failure
            return
        port.pending_start = None
        if not port.queue:  # an idle start: not an event of the spec's count (§7)
            return
        self.events += 1
        packet = port.dequeue()
        now = self.env.now
        busy_ns = port.serialization_ns(packet)
        packet.port = port
        port.in_flight.append(packet)
        self._record("send", now, packet.flow.id, packet.seq, port.source, port.target)
        At(self.env, busy_ns + port.link.delay_ns, ev.priority(ev.ARRIVAL, packet.flow.id, packet.seq),
           self._on_arrival, packet)
        self._schedule_start(port, busy_ns)

    def _deliver(self, packet: Packet) -> None:
        flow = packet.flow
        now = self.env.now
        latency = now - packet.injected_ns
        flow.delivered += 1
        flow.delivered_bytes += packet.size
        if flow.first_delivery_ns is None:
            flow.first_delivery_ns = now
        flow.last_delivery_ns = now
        flow.latency_sum_ns += latency
        flow.latency_max_ns = max(flow.latency_max_ns, latency)
        flow.hop_sum += packet.hops
        self._record("deliver", now, flow.id, packet.seq, packet.flow.dst)

    def _drop(self, packet: Packet, node: int, cause: str) -> None:
        packet.flow.dropped[cause] += 1
        self._record("drop", self.env.now, packet.flow.id, packet.seq, node, cause)

    def _record(self, *record: Any) -> None:
        if self._trace is not None:
            self._trace.append(list(record))


def simulate(instance: Mapping[str, Any], *, trace: bool = False) -> dict[str, Any]:
    """Run `instance` to its horizon and return the result."""
    return Simulation(instance, trace=trace).result()
