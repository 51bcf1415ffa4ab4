"""How big an instance is, estimated before it is built, and the limits past which it is refused.

A scenario can ask for more than a machine can hold or finish (a FatTree with k = 1000, a
trillion random pairs): each stage of `simopt.scenario.build_instance` estimates what the next
one would make and refuses, with one line naming the size and how to raise the limit, before
making it. Six quantities are bounded (docs/scenarios.md, "Size limits"):

- nodes and links of the topology (from the family's parameters, before building it);
- flows (from the traffic pattern and the number of endpoints, before drawing them);
- packets: the MTU-sized pieces of every flow (exact, from the flow sizes);
- events the simulator will process, estimated from the packets injected before the horizon
  and their mean path length: about one injection plus a transmission start and an arrival
  per hop;
- routes: next-hop table entries computed over the run, destinations x nodes for the
  initial tables and again after every link event.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields, replace

QUANTITIES = ("nodes", "links", "flows", "packets", "events", "routes")
HOP_SAMPLES = 32
"""Sources whose shortest paths are measured to estimate the mean path length."""
FILE_BYTES_PER_ITEM = 256
"""A graph file may hold this many bytes per allowed node and link; a larger one is refused unread."""


@dataclass(frozen=True)
class Limits:
    """The largest instance accepted; raise one with `--max-<quantity>` or a scenario's [limits]."""

    nodes: int = 100_000
    links: int = 500_000
    flows: int = 200_000
    packets: int = 10_000_000
    events: int = 100_000_000
    routes: int = 20_000_000

    def raised(self, **limits: int | None) -> Limits:
        """These limits with some replaced (None keeps a limit as it is)."""
        return replace(self, **{key: value for key, value in limits.items() if value is not None})

    def check(self, quantity: str, count: int, *, estimated: bool = False) -> None:
        """ValueError when `count` of `quantity` is past the limit, naming the size and how to raise it."""
        limit = getattr(self, quantity)
        if count > limit:
            about = "about " if estimated else ""
            raise ValueError(
                f"the instance is too big: {about}{_count(count)} {quantity} (limit {limit:,}); if you mean it, "
                f"raise the limit with --max-{quantity} {_suggest(count)} or `{quantity} = {_suggest(count)}` "
                "in the scenario's [limits] table"
            )


def limits_from_table(table) -> Limits:
    """The limits of a scenario's [limits] table (a `simopt.workload.spec.Table`), defaults elsewhere."""
    defaults = Limits()
    values = {f.name: table.integer(f.name, minimum=1, default=getattr(defaults, f.name)) for f in fields(Limits)}
    table.finish()
    return Limits(**values)


def topology_size(kind: str, params: dict) -> tuple[int, int] | None:
    """(nodes, links) a topology family would build from `params`; None when unknown before building."""
    def whole(name: str) -> int | None:
        value = params.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    if kind == "fattree" and whole("k") is not None:
        k = whole("k")
        return k**3 // 4 + 5 * k * k // 4, 3 * k**3 // 4
    if kind in ("mesh", "torus") and None not in (whole("rows"), whole("cols")):
        rows, cols = whole("rows"), whole("cols")
        return rows * cols, (2 * rows * cols if kind == "torus" else rows * (cols - 1) + cols * (rows - 1))
    if kind in ("ring", "line", "star") and whole("n") is not None:
        n = whole("n")
        return {"ring": (n, n), "line": (n, max(n - 1, 0)), "star": (n + 1, n)}[kind]
    if kind == "tree" and None not in (whole("depth"), whole("fanout")):
        nodes = _tree_nodes(whole("fanout"), whole("depth"))
        return nodes, max(nodes - 1, 0)
    if kind == "dumbbell" and whole("hosts_per_side") is not None:
        return 2 * whole("hosts_per_side") + 2, 2 * whole("hosts_per_side") + 1
    if kind == "gnm" and None not in (whole("n"), whole("m")):
        return whole("n"), whole("m")
    if kind == "random_regular" and None not in (whole("n"), whole("d")):
        return whole("n"), whole("n") * whole("d") // 2
    if kind == "watts_strogatz" and None not in (whole("n"), whole("k")):
        return whole("n"), whole("n") * whole("k") // 2
    return None


def _tree_nodes(fanout: int, depth: int) -> int:
    """1 + f + ... + f^depth, stopping early once it is astronomically large (f^depth can be huge)."""
    total, level = 0, 1
    for _ in range(depth + 1):
        total += level
        if total > 10**18:
            return total
        level *= fanout
    return total


def pattern_flows(pattern: str, params: dict, endpoints: int) -> int | None:
    """How many flows a traffic pattern would draw over `endpoints` hosts; None when unknown."""
    if pattern == "permutation":
        return endpoints
    if pattern == "all_to_all":
        return endpoints * (endpoints - 1)
    if pattern == "random_pairs":
        count = params.get("count")
        return count if isinstance(count, int) and not isinstance(count, bool) else None
    if pattern == "incast":
        senders = params.get("senders")
        return senders if isinstance(senders, int) and not isinstance(senders, bool) else max(endpoints - 1, 0)
    return None


@dataclass(frozen=True)
class Size:
    """An instance's size: exact nodes, links, flows and packets; estimated events and routes."""

    nodes: int
    links: int
    flows: int
    packets: int
    events: int
    routes: int


def instance_size(instance: dict) -> Size:
    """The size of a built instance (docs/semantics.md section 1)."""
    flows = instance["flows"]
    mtu, horizon = instance["mtu_bytes"], instance["horizon_ns"]
    packets = sum(-(-flow["bytes"] // mtu) for flow in flows)
    injected = sum(_injected(flow, mtu, horizon) for flow in flows)
    hops = _mean_hops(len(instance["nodes"]), instance["links"], flows)
    link_events = len(instance["link_events"])
    destinations = len({flow["dst"] for flow in flows})
    return Size(
        nodes=len(instance["nodes"]),
        links=len(instance["links"]),
        flows=len(flows),
        packets=packets,
        events=math.ceil(injected * (1 + 2 * hops)) + 2 * link_events,
        routes=destinations * len(instance["nodes"]) * (1 + link_events),
    )


def check_instance(instance: dict, limits: Limits) -> Size:
    """The instance's size; ValueError naming the first quantity past its limit."""
    size = instance_size(instance)
    for quantity in QUANTITIES:
        limits.check(quantity, getattr(size, quantity), estimated=quantity in ("events", "routes"))
    return size


def _injected(flow: dict, mtu: int, horizon: int) -> int:
    """Packets the flow injects before the horizon: one every MTU serialization time from its start."""
    if flow["start_ns"] >= horizon:
        return 0
    gap = max((mtu * 8_000_000_000 + flow["rate_bps"] - 1) // flow["rate_bps"], 1)
    return min(-(-flow["bytes"] // mtu), -(-(horizon - flow["start_ns"]) // gap))


def _mean_hops(node_count: int, links: list[dict], flows: list[dict]) -> float:
    """The mean hop count of a sample of flows' shortest paths (0 for flows without a route)."""
    if not flows:
        return 0.0
    step = max(len(flows) // HOP_SAMPLES, 1)
    sample = flows[::step][:HOP_SAMPLES]
    neighbours: list[list[int]] = [[] for _ in range(node_count)]
    for link in links:
        neighbours[link["a"]].append(link["b"])
        neighbours[link["b"]].append(link["a"])
    distances: dict[int, dict[int, int]] = {}
    total = 0
    for flow in sample:
        if flow["src"] not in distances:
            distances[flow["src"]] = _bfs(neighbours, flow["src"])
        total += distances[flow["src"]].get(flow["dst"], 0)
    return total / len(sample)


def _bfs(neighbours: list[list[int]], source: int) -> dict[int, int]:
    distance = {source: 0}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for other in neighbours[node]:
            if other not in distance:
                distance[other] = distance[node] + 1
                queue.append(other)
    return distance


def _count(value: int) -> str:
    return f"{value:,}" if value < 10**15 else f"{value:.2e}"


def _suggest(count: int) -> str:
    """A round limit just above `count`, to copy into a flag or the scenario."""
    if count >= 10**15:
        return str(count)
    magnitude = 10 ** max(len(str(count)) - 2, 0)
    return str(-(-count // magnitude) * magnitude)
