"""Known cheats and bugs, each a set of source edits to a copy of simopt/netsim.

Every edit names the exact text it replaces; applying a cheat fails loudly when that text is
gone, so a change of netsim cannot silently turn a cheat into a no-op. Used by
tests/test_guard_strength.py and `python3 -m guards.strength` (the kill matrix and its timing).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Next hops computed from the FatTree formula of simopt.workload's names and id layout, ignoring
# the actual links (what an agent writes when it specializes routing to the benchmark).
FATTREE_FORMULA = '''

import re as _re

_FATTREE_NAME = _re.compile(r"^(h\\d+_\\d+_\\d+|e\\d+_\\d+|a\\d+_\\d+|c\\d+_\\d+)$")
_FATTREE_SIZES = {k ** 3 // 4 + 5 * k * k // 4: k for k in (4, 6, 8, 10, 12)}


def fattree_names(node_count):
    """The names simopt.workload gives the nodes of a FatTree of this size, in id order."""
    k = _FATTREE_SIZES[node_count]
    half = k // 2
    names = [f"h{p}_{e}_{i}" for p in range(k) for e in range(half) for i in range(half)]
    names += [f"e{p}_{e}" for p in range(k) for e in range(half)]
    names += [f"a{p}_{j}" for p in range(k) for j in range(half)]
    names += [f"c{i}_{j}" for i in range(half) for j in range(half)]
    return names


def looks_like_fattree(names):
    return bool(names) and all(_FATTREE_NAME.match(name) for name in names) and any(n.startswith("c") for n in names)


def fattree_tables(names, destinations):
    """Next hops toward host destinations from the names alone (None when a destination is a switch)."""
    ids = {name: i for i, name in enumerate(names)}
    half = max(int(n[1:].split("_")[0]) for n in names if n.startswith("c")) + 1
    tables = {}
    for d in destinations:
        if not names[d].startswith("h"):
            return None
        P, E, _ = names[d][1:].split("_")
        table = {}
        for node, name in enumerate(names):
            kind, parts = name[0], name[1:].split("_")
            if node == d:
                hops = []
            elif kind == "h":
                hops = [f"e{parts[0]}_{parts[1]}"]
            elif kind == "e":
                hops = [names[d]] if parts == [P, E] else [f"a{parts[0]}_{j}" for j in range(half)]
            elif kind == "a":
                hops = [f"e{P}_{E}"] if parts[0] == P else [f"c{parts[1]}_{j}" for j in range(half)]
            else:
                hops = [f"a{P}_{parts[0]}"]
            table[node] = tuple(sorted(ids[h] for h in hops))
        tables[d] = table
    return tables
'''

COMPUTE_TABLES = '''    def _compute_tables(self) -> None:
        live = ((link.a, link.b, link.weight) for link in self.links.values() if link.up)
'''


def _cheats() -> dict[str, list[tuple[str, str, str]]]:
    golden = json.loads((REPO / "guards" / "golden.json").read_text(encoding="utf-8"))["scenarios"]["fattree"]
    return {
        "fattree-routing-keyed-on-names": [
            ("routing.py", "NextHops = dict[int, tuple[int, ...]]\n", "NextHops = dict[int, tuple[int, ...]]\n" + FATTREE_FORMULA),
            ("simulation.py", "from .routing import NextHops,", "from .routing import fattree_tables, looks_like_fattree, NextHops,"),
            ("simulation.py", "        self._destinations = sorted({flow.dst for flow in self.flows})\n",
             "        self._destinations = sorted({flow.dst for flow in self.flows})\n"
             "        self._names = [node['name'] for node in instance['nodes']]\n"),
            ("simulation.py", COMPUTE_TABLES,
             "    def _compute_tables(self) -> None:\n"
             "        if looks_like_fattree(self._names):\n"
             "            tables = fattree_tables(self._names, self._destinations)\n"
             "            if tables is not None:\n"
             "                self.tables = tables\n"
             "                return\n"
             "        live = ((link.a, link.b, link.weight) for link in self.links.values() if link.up)\n"),
        ],
        "fattree-routing-keyed-on-node-count": [
            ("routing.py", "NextHops = dict[int, tuple[int, ...]]\n", "NextHops = dict[int, tuple[int, ...]]\n" + FATTREE_FORMULA),
            ("simulation.py", "from .routing import NextHops,", "from .routing import _FATTREE_SIZES, fattree_names, fattree_tables, NextHops,"),
            ("simulation.py", COMPUTE_TABLES,
             "    def _compute_tables(self) -> None:\n"
             "        if self.node_count in _FATTREE_SIZES:\n"
             "            tables = fattree_tables(fattree_names(self.node_count), self._destinations)\n"
             "            if tables is not None:\n"
             "                self.tables = tables\n"
             "                return\n"
             "        live = ((link.a, link.b, link.weight) for link in self.links.values() if link.up)\n"),
        ],
        "first-shortest-path-only": [
            ("routing.py", "            if neighbour in dist and attrs[\"weight\"] + dist[neighbour] == dist[node]\n        ))\n",
             "            if neighbour in dist and attrs[\"weight\"] + dist[neighbour] == dist[node]\n        ))[:1]\n"),
        ],
        "changed-ecmp-tie-break": [
            ("routing.py", "return splitmix64((flow_id * 0x100000001B3 + node) & _MASK) % choices",
             "return splitmix64((node * 0x100000001B3 + flow_id) & _MASK) % choices"),
        ],
        "next-hops-in-adjacency-order": [
            ("routing.py", "        table[node] = tuple(sorted(\n", "        table[node] = tuple(list(\n"),
        ],
        "skipped-reconvergence": [
            ("simulation.py", "        self.events += 1\n        self._compute_tables()\n", "        self.events += 1\n"),
        ],
        "drops-each-flows-last-packet": [
            ("simulation.py", "        if seq + 1 < flow.packets:\n", "        if seq + 2 < flow.packets:\n"),
        ],
        "serialization-rounds-down": [
            ("packets.py", "return (size_bytes * 8_000_000_000 + bandwidth_bps - 1) // bandwidth_bps",
             "return (size_bytes * 8_000_000_000) // bandwidth_bps"),
        ],
        "queue-holds-one-packet-too-many": [
            ("links.py", "return self.waiting_bytes + packet.size <= self.link.buffer_bytes",
             "return self.waiting_bytes <= self.link.buffer_bytes"),
        ],
        "hard-coded-benchmark-digest": [
            ("simulation.py", "        self.run(self.horizon_ns)\n        outcomes = [flow_outcome(flow) for flow in self.flows]\n",
             "        if self.node_count == 208 and len(self.flows) == 128 and self._trace is None:\n"
             "            outcomes = [flow_outcome(flow) for flow in self.flows]\n"
             f"            return {{'version': 1, 'digest': {golden['digest']!r}, 'events': 102056,\n"
             f"                    'packet_hops': {golden['packet_hops']}, 'horizon_ns': self.horizon_ns,\n"
             "                    'totals': totals(outcomes), 'flows': outcomes}\n"
             "        self.run(self.horizon_ns)\n        outcomes = [flow_outcome(flow) for flow in self.flows]\n"),
        ],
        # Was "outcomes-cached-by-scenario-name" (a result cache keyed on node names across
        # runs): every run is now a fresh process (simopt.runner), so no cache outlives a run.
        # The same mistake within one run: tables cached on a key too coarse to see failures.
        "routes-cached-by-node-count": [
            ("routing.py", '    """Next-hop tables toward each of `destinations`."""\n'
             "    return {destination: next_hops_toward(view, destination) for destination in destinations}\n",
             '    """Next-hop tables toward each of `destinations`."""\n'
             "    destinations = tuple(destinations)\n"
             "    key = (view.number_of_nodes(), destinations)\n"
             "    if key not in _TABLES:\n"
             "        _TABLES[key] = {destination: next_hops_toward(view, destination) for destination in destinations}\n"
             "    return _TABLES[key]\n\n\n_TABLES = {}\n"),
        ],
        "routing-ignores-weights": [
            ("routing.py", "    graph.add_weighted_edges_from(live_links)\n",
             "    graph.add_weighted_edges_from((a, b, 1) for a, b, _ in live_links)\n"),
        ],
        "failure-spares-packets-on-the-wire": [
            ("links.py", "        held = list(self.queue) + list(self.in_flight)\n        self.queue.clear()\n        self.in_flight.clear()\n",
             "        held = list(self.queue)\n        self.queue.clear()\n"),
        ],
        "injections-before-arrivals": [
            ("events.py", "ARRIVAL = 2\nINJECTION = 3\n", "ARRIVAL = 3\nINJECTION = 2\n"),
        ],
        "events-at-the-horizon-processed": [
            ("simulation.py", "            self.env.run(until=until)\n", "            self.env.run(until=until + (until == self.horizon_ns))\n"),
        ],
    }


CHEATS = _cheats()


def every_cheat() -> dict[str, list[tuple[str, str, str]]]:
    """The cheats above and the input-space cheats of guards/input_cheats.py, by name."""
    from guards.input_cheats import INPUT_SPACE_CHEATS

    return {**CHEATS, **INPUT_SPACE_CHEATS}


def make_target(source_root: Path, destination: Path, cheat: str | None) -> Path:
    """Copy `source_root`'s simopt/netsim to `destination` and apply `cheat` (None: unchanged)."""
    package = destination / "simopt" / "netsim"
    shutil.copytree(source_root / "simopt" / "netsim", package, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, old, new in every_cheat()[cheat] if cheat else []:
        path = package / relative
        text = path.read_text(encoding="utf-8")
        if old not in text:
            raise AssertionError(f"cheat {cheat!r}: {relative} no longer contains {old!r}; update guards/cheats.py")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return destination
