"""Cheats hidden in the input space: each is right on the benchmark and wrong somewhere else.

Every one keeps the fattree benchmark's digest and touches only simopt/netsim/, like the cheats of
guards/cheats.py, but hides where a suite that draws small, tame instances never looks:
- size gates: a shortcut switched on above the sizes the guards used to draw (nodes, flows, packets);
- parameter extremes: buffers of a megabyte, kb/s and 100 Gb/s links, ms delays, jumbo MTUs, 17-bit weights;
- rare timing: link events microseconds apart, flaps, events just before the horizon, equal-time order;
- near-equal parameters: caches keyed on rounded rates and sizes, float tolerance on distances;
- unchecked outputs: the event count and the time reached.
Each entry is (class, edits); the edits are exact (file, old text, new text) replacements.
"""

from __future__ import annotations

from guards.cheats import COMPUTE_TABLES, FATTREE_FORMULA

DESTINATIONS = "        self._destinations = sorted({flow.dst for flow in self.flows})\n"
INSTALL = "        self.events += 1\n        self._compute_tables()\n"
SCHEDULE_INSTALL = "        At(self.env, self.reconvergence_ns, ev.priority(ev.ROUTE_INSTALL), self._on_route_install)\n"
PICK_PORT = "        port = self.ports[(node, next_hops[ecmp_index(flow.id, node, len(next_hops))])]\n"
BUSY = "        busy_ns = port.serialization_ns(packet)\n"
PACE = "            At(self.env, serialization_ns(packet.size, flow.rate_bps),\n"
FITS = "return self.waiting_bytes + packet.size <= self.link.buffer_bytes"
SER = "    return (size_bytes * 8_000_000_000 + bandwidth_bps - 1) // bandwidth_bps\n"
EVENTS_LOOP = '        for change in instance.get("link_events", ()):\n'
RUN = "            self.env.run(until=until)\n"


def _after_destinations(lines: str) -> tuple[str, str, str]:
    """An edit that adds `lines` to Simulation.__init__ right after the destinations are known."""
    return ("simulation.py", DESTINATIONS, DESTINATIONS + lines)


SIZE_GATES = {
    "big-graphs-skip-route-installs": [
        ("simulation.py", INSTALL, "        self.events += 1\n        if self.node_count <= 120:  # big fabrics keep their first tables\n"
                                   "            self._compute_tables()\n"),
    ],
    "big-graphs-ignore-weights": [
        ("simulation.py", "        live = ((link.a, link.b, link.weight) for link",
         "        live = ((link.a, link.b, link.weight if self.node_count <= 150 else 1) for link"),
    ],
    "route-cache-per-pair-on-many-flows": [
        _after_destinations("        self._pair_ports = {} if len(self.flows) > 100 and self.node_count > 100 else None\n"),
        ("simulation.py", COMPUTE_TABLES.splitlines(keepends=True)[0],
         COMPUTE_TABLES.splitlines(keepends=True)[0] + "        if self._pair_ports:\n            self._pair_ports.clear()\n"),
        ("simulation.py", PICK_PORT,
         "        if self._pair_ports is None:\n"
         "            port = self.ports[(node, next_hops[ecmp_index(flow.id, node, len(next_hops))])]\n"
         "        else:  # one route per (source, destination): a big workload's flows share it\n"
         "            port = self._pair_ports.get((flow.src, flow.dst, node))\n"
         "            if port is None:\n"
         "                port = self.ports[(node, next_hops[ecmp_index(flow.id, node, len(next_hops))])]\n"
         "                self._pair_ports[(flow.src, flow.dst, node)] = port\n"),
    ],
    "big-graphs-failure-spares-packets-on-the-wire": [
        ("links.py", "    def flush(self) -> list[Packet]:\n", "    def flush(self, keep_wire: bool = False) -> list[Packet]:\n"),
        ("links.py", "        held = list(self.queue) + list(self.in_flight)\n        self.queue.clear()\n        self.in_flight.clear()\n",
         "        held = list(self.queue) + ([] if keep_wire else list(self.in_flight))\n        self.queue.clear()\n"
         "        if not keep_wire:\n            self.in_flight.clear()\n"),
        ("simulation.py", "                for packet in port.flush():\n",
         "                for packet in port.flush(keep_wire=self.node_count > 150):\n"),
    ],
    "huge-workloads-queue-one-packet-too-long": [
        ("links.py", '"weight", "up", "ports")', '"weight", "up", "ports", "slack")'),
        ("links.py", "        self.up = True\n", "        self.up = True\n        self.slack = 0\n"),
        ("links.py", FITS, FITS + " + self.link.slack"),
        _after_destinations("        if sum(flow.packets for flow in self.flows) > 13_000:\n"
                            "            for link in self.links.values():\n"
                            "                link.slack = mtu\n"),
    ],
    "fattree-k8-closed-form-routing": [
        ("routing.py", "NextHops = dict[int, tuple[int, ...]]\n", "NextHops = dict[int, tuple[int, ...]]\n" + FATTREE_FORMULA),
        ("simulation.py", "from .routing import NextHops,", "from .routing import fattree_tables, looks_like_fattree, NextHops,"),
        _after_destinations("        self._names = [node['name'] for node in instance['nodes']]\n"),
        ("simulation.py", COMPUTE_TABLES,
         "    def _compute_tables(self) -> None:\n"
         "        if self.node_count >= 208 and looks_like_fattree(self._names):\n"
         "            tables = fattree_tables(self._names, self._destinations)\n"
         "            if tables is not None:\n"
         "                self.tables = tables\n"
         "                return\n"
         "        live = ((link.a, link.b, link.weight) for link in self.links.values() if link.up)\n"),
    ],
    "bulk-injection-in-instance-order": [
        ("simulation.py", "        for flow in self.flows:\n            At(self.env, flow.start_ns, ev.priority(ev.INJECTION, flow.id, 0),",
         "        listed = {f['id']: i for i, f in enumerate(instance['flows'])} if len(self.flows) > 4096 else None\n"
         "        for flow in self.flows:\n"
         "            At(self.env, flow.start_ns, ev.priority(ev.INJECTION, listed[flow.id] if listed else flow.id, 0),"),
    ],
    "big-graphs-next-hops-in-adjacency-order": [
        ("routing.py", "        table[node] = tuple(sorted(\n",
         "        table[node] = tuple((list if view.number_of_nodes() > 200 else sorted)(\n"),
    ],
}

PARAMETER_EXTREMES = {
    "deep-buffers-never-fill": [
        ("links.py", FITS, "return self.link.buffer_bytes >= 1_000_000 or self.waiting_bytes + packet.size <= self.link.buffer_bytes"),
    ],
    "slow-links-round-to-nearest": [
        ("packets.py", SER, "    if bandwidth_bps < 1_000_000:  # slow links: the nearest ns is plenty\n"
                            "        return max(1, (size_bytes * 8_000_000_000 + bandwidth_bps // 2) // bandwidth_bps)\n" + SER),
    ],
    "fast-links-round-down": [
        ("packets.py", SER, "    if bandwidth_bps >= 100_000_000_000:  # sub-ns remainders do not matter on fast links\n"
                            "        return max(1, size_bytes * 8_000_000_000 // bandwidth_bps)\n" + SER),
    ],
    "long-delays-on-a-microsecond-wheel": [
        ("simulation.py", "        At(self.env, busy_ns + port.link.delay_ns, ev.priority(ev.ARRIVAL",
         "        delay = port.link.delay_ns\n"
         "        if delay >= 100_000:  # long-haul links: a microsecond timer wheel\n"
         "            delay -= delay % 1000\n"
         "        At(self.env, busy_ns + delay, ev.priority(ev.ARRIVAL"),
    ],
    "jumbo-mtu-capped-at-9000": [
        ("simulation.py", '        mtu = instance["mtu_bytes"]\n', '        mtu = min(instance["mtu_bytes"], 9000)  # jumbo frames top out at 9000\n'),
    ],
    "weights-clipped-to-16-bits": [
        ("links.py", "        self.weight = weight\n", "        self.weight = min(weight, 65535)  # OSPF costs are 16-bit\n"),
    ],
    "long-flows-paced-in-closed-form": [
        ("simulation.py", PACE,
         "            gap = serialization_ns(packet.size, flow.rate_bps)\n"
         "            if flow.packets > 1000:  # long flows: pace from the start, no rounding drift\n"
         "                gap = flow.start_ns - (-(seq + 1) * flow.mtu * 8_000_000_000 // flow.rate_bps) - now\n"
         "            At(self.env, gap,\n"),
    ],
    "link-events-just-before-the-horizon-skipped": [
        ("simulation.py", EVENTS_LOOP,
         EVENTS_LOOP + '            if 0 < self.horizon_ns - change["time_ns"] <= 1000:  # too late to matter\n                continue\n'),
    ],
    "last-packet-size-off-the-default-mtu": [
        ("packets.py", "        return self.bytes - (self.packets - 1) * self.mtu\n",
         "        return self.bytes % self.mtu if self.mtu != 1500 else self.bytes - (self.packets - 1) * self.mtu\n"),
    ],
}

RARE_TIMING = {
    "sub-microsecond-flaps-coalesced": [
        ("simulation.py", EVENTS_LOOP,
         '        flaps = {}\n'
         '        for change in instance.get("link_events", ()):\n'
         '            flaps.setdefault((min(change["a"], change["b"]), max(change["a"], change["b"])), []).append(change["time_ns"])\n'
         + EVENTS_LOOP +
         '            times = flaps[(min(change["a"], change["b"]), max(change["a"], change["b"]))]\n'
         '            if any(change["time_ns"] < t <= change["time_ns"] + 1000 for t in times):  # a flap: keep its last action\n'
         '                continue\n'),
    ],
    "route-installs-debounced": [
        _after_destinations("        self._last_change = (None, None)\n        self._superseded = set()\n"),
        ("simulation.py", SCHEDULE_INSTALL,
         "        install = At(self.env, self.reconvergence_ns, ev.priority(ev.ROUTE_INSTALL), self._on_route_install)\n"
         "        last_ns, last_install = self._last_change\n"
         "        if last_ns is not None and self.env.now - last_ns <= 2000:  # a burst of changes: one SPF run\n"
         "            self._superseded.add(last_install)\n"
         "        self._last_change = (self.env.now, install)\n"),
        ("simulation.py", INSTALL, "        self.events += 1\n        if event not in self._superseded:\n            self._compute_tables()\n"),
    ],
    "flap-damping": [
        _after_destinations("        self._recovered = {}\n"),
        ("simulation.py", '        if action == "fail" and link.up:\n',
         '        if action == "fail" and link.up and self.env.now - self._recovered.get((link.a, link.b), -10**18) > 10_000:\n'),
        ("simulation.py", '        elif action == "recover":\n            link.up = True\n',
         '        elif action == "recover":\n            if not link.up:\n                self._recovered[(link.a, link.b)] = self.env.now\n'
         '            link.up = True\n'),
    ],
    "arrivals-before-link-events": [
        ("events.py", "LINK_EVENT = 0\nROUTE_INSTALL = 1\nARRIVAL = 2\n", "LINK_EVENT = 1\nROUTE_INSTALL = 2\nARRIVAL = 0\n"),
    ],
    "install-uses-the-view-at-event-time": [
        ("simulation.py", SCHEDULE_INSTALL,
         "        At(self.env, self.reconvergence_ns, ev.priority(ev.ROUTE_INSTALL), self._on_route_install,\n"
         "           [(l.a, l.b, l.weight) for l in self.links.values() if l.up])  # slow reconvergence: SPF now, install later\n"),
        ("simulation.py", INSTALL,
         "        self.events += 1\n"
         "        if self.reconvergence_ns > 100_000:\n"
         "            self.tables = routing_tables(routing_view(self.node_count, event.value), self._destinations)\n"
         "        else:\n"
         "            self._compute_tables()\n"),
    ],
    "no-op-link-events-skip-installs": [
        ("simulation.py", '        elif action == "recover":\n            link.up = True\n' + SCHEDULE_INSTALL,
         '        elif action == "recover" and not link.up:\n            link.up = True\n'
         "        else:  # nothing changed, so the tables cannot: count the install, skip it\n"
         "            self.events += self.env.now + self.reconvergence_ns < self.horizon_ns\n"
         "            return\n" + SCHEDULE_INSTALL),
    ],
}

NEAR_EQUAL = {
    "link-serialization-cached-by-megabit": [
        _after_destinations("        self._ser_cache = {}\n"),
        ("simulation.py", BUSY,
         "        key = (packet.size, port.link.bandwidth_bps // 1_000_000)\n"
         "        busy_ns = self._ser_cache.get(key)\n"
         "        if busy_ns is None:\n"
         "            busy_ns = self._ser_cache[key] = port.serialization_ns(packet)\n"),
    ],
    "near-mtu-packets-serialized-as-mtu": [
        ("simulation.py", BUSY,
         "        size = packet.flow.mtu if packet.size * 1000 >= packet.flow.mtu * 999 else packet.size\n"
         "        busy_ns = serialization_ns(size, port.link.bandwidth_bps)\n"),
    ],
    "pacing-cached-by-three-significant-digits": [
        _after_destinations("        self._pace_cache = {}\n"),
        ("simulation.py", PACE,
         '            key = (packet.size, float(f"{flow.rate_bps:.3g}"))\n'
         "            if key not in self._pace_cache:\n"
         "                self._pace_cache[key] = serialization_ns(packet.size, flow.rate_bps)\n"
         "            At(self.env, self._pace_cache[key],\n"),
    ],
    "float-tolerant-shortest-paths": [
        ("routing.py", '            if neighbour in dist and attrs["weight"] + dist[neighbour] == dist[node]\n',
         '            if neighbour in dist and abs(attrs["weight"] + dist[neighbour] - dist[node]) <= 1e-4 * dist[node]\n'),
    ],
}

UNCHECKED_OUTPUTS = {
    "stop-after-the-last-packet": [
        ("simulation.py", "import simpy\n", "import simpy\nfrom simpy.core import StopSimulation\n"),
        _after_destinations("        self._outstanding = sum(flow.packets for flow in self.flows)\n"),
        ("simulation.py", "        if until > self.env.now:\n" + RUN,
         "        if until > self.env.now and self._outstanding:\n" + RUN +
         "        if until > self.env.now:  # every packet is done: nothing left worth simulating\n"
         "            self.env._now = until\n"),
        ("simulation.py", '        self._record("deliver", now, flow.id, packet.seq, packet.flow.dst)\n',
         '        self._record("deliver", now, flow.id, packet.seq, packet.flow.dst)\n        self._one_done()\n'),
        ("simulation.py", '        self._record("drop", self.env.now, packet.flow.id, packet.seq, node, cause)\n',
         '        self._record("drop", self.env.now, packet.flow.id, packet.seq, node, cause)\n        self._one_done()\n\n'
         "    def _one_done(self) -> None:\n"
         "        self._outstanding -= 1\n"
         "        if not self._outstanding:\n"
         "            raise StopSimulation(None)\n"),
    ],
    "time-reached-is-the-last-event": [
        ("simulation.py", RUN, "            while self.env.peek() < until:\n                self.env.step()\n"),
    ],
    "no-op-link-events-not-counted": [
        ("simulation.py", "        self.events += 1\n        link, action = event.value\n",
         '        link, action = event.value\n        self.events += (action == "fail") == link.up  # a no-op is no event\n'),
    ],
    "equal-time-installs-counted-once": [
        _after_destinations("        self._last_install_ns = None\n"),
        ("simulation.py", INSTALL,
         "        if self.env.now != self._last_install_ns:  # equal-time installs are one install\n"
         "            self.events += 1\n"
         "            self._compute_tables()\n"
         "        self._last_install_ns = self.env.now\n"),
    ],
}

CLASSES = {
    "size gate": SIZE_GATES, "parameter extreme": PARAMETER_EXTREMES, "rare timing": RARE_TIMING,
    "near-equal parameters": NEAR_EQUAL, "unchecked output": UNCHECKED_OUTPUTS,
}
INPUT_SPACE_CHEATS = {name: edits for cheats in CLASSES.values() for name, edits in cheats.items()}
CHEAT_CLASS = {name: label for label, cheats in CLASSES.items() for name in cheats}
