"""Hypothesis strategies for guard instances (docs/semantics.md §1), built as plain dicts.

Every strategy has keyword-only bounds and builds its invariants by construction: connected
graphs join each new node to an earlier one (which shrinks toward a path), events get distinct
(link, time) keys by construction, flows get distinct endpoints by drawing the destination from
the other nodes. Topologies are independent of simopt.workload so the guards never depend on a
single builder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Topology = dict[str, Any]  # {"kind": str, "nodes": [(name, kind)], "edges": [(a, b)], "hosts": [ids]}



@dataclass(frozen=True)
class Case:
    """A generated instance and a short description of how it was built (for counterexamples)."""

    kind: str
    instance: dict[str, Any]


BANDWIDTHS = (100_000_000, 1_000_000_000, 10_000_000_000, 40_000_000_000, 999_999_937, 3_000_000_001)
# Past every scenario's range on both sides (the rare draws; guards/rare.py puts them on traffic's path)
EXTREME_BANDWIDTHS = st.one_of(st.integers(1_000, 999_999), st.integers(100_000_000_000, 4_000_000_000_000))
DEEP_BUFFERS = st.one_of(st.integers(1_000_000, 3_000_000), st.just(2**40))
# Built once: link_params and flows_for draw these per link and per flow, and building (and
# validating) a strategy anew for every link of a benchmark-size graph cost more than drawing.
_BANDWIDTH = st.one_of(st.sampled_from(BANDWIDTHS), st.integers(50_000_000, 50_000_000_000), EXTREME_BANDWIDTHS)
_DELAY = st.one_of(st.sampled_from((0, 500, 1000)), st.integers(0, 5000), st.integers(100_001, 2_000_000))
_BUFFER = st.one_of(st.sampled_from((0, 1500, 3000, 150_000)), st.integers(0, 20_000), DEEP_BUFFERS)
_WEIGHT = st.one_of(st.integers(1, 4), st.integers(1, 4), st.integers(60_000, 2**20))
_LINK = {weighted: st.fixed_dictionaries({"bandwidth_bps": _BANDWIDTH, "delay_ns": _DELAY, "buffer_bytes": _BUFFER,
                                          "weight": _WEIGHT if weighted else st.just(1)})
         for weighted in (False, True)}
_RATE = st.one_of(st.sampled_from(BANDWIDTHS), st.integers(50_000_000, 50_000_000_000))


def _check_bounds(name: str, low: int, high: int, floor: int) -> None:
    if low < floor:
        raise ValueError(f"min_{name}(={low}) must be >= {floor}")
    if high < low:
        raise ValueError(f"max_{name}(={high}) must be >= min_{name}(={low})")


def build_topology(kind: str, n: int, edges: set[tuple[int, int]] | list[tuple[int, int]], hosts=None, names=None) -> Topology:
    """A topology of n nodes named `names` (default n0, n1, ...), hosts `hosts` (default: every node), edges sorted."""
    names = names or [f"n{i}" for i in range(n)]
    hosts = list(range(n)) if hosts is None else sorted(hosts)
    host_set = set(hosts)
    nodes = [(names[i], "host" if i in host_set else "switch") for i in range(n)]
    ordered = sorted((min(a, b), max(a, b)) for a, b in edges)
    return {"kind": kind, "nodes": nodes, "edges": ordered, "hosts": hosts}


def fattree_topology(k: int) -> Topology:
    """The k-ary FatTree: (k/2)^2 cores, k pods of k/2 aggregation and k/2 edge switches, k^3/4 hosts."""
    if k < 2 or k % 2:
        raise ValueError(f"k(={k}) must be an even number >= 2")
    half = k // 2
    names, edges, hosts = [], [], []

    def add(name: str) -> int:
        names.append(name)
        return len(names) - 1

    cores = [add(f"core{i}") for i in range(half * half)]
    for pod in range(k):
        aggs = [add(f"agg{pod}_{i}") for i in range(half)]
        edge_switches = [add(f"edge{pod}_{i}") for i in range(half)]
        for i, agg in enumerate(aggs):
            edges.extend((agg, cores[i * half + j]) for j in range(half))
            edges.extend((agg, e) for e in edge_switches)
        for i, e in enumerate(edge_switches):
            for h in range(half):
                host = add(f"h{pod}_{i}_{h}")
                hosts.append(host)
                edges.append((e, host))
    return build_topology(f"fattree(k={k})", len(names), edges, hosts, names)


def workload_fattree_topology(k: int) -> Topology:
    """The harness's own FatTree (simopt.workload: its names and id layout), when it is importable."""
    from simopt.workload.topology import fattree

    built = fattree(k=k)
    hosts = [i for i, (_, kind) in enumerate(built.nodes) if kind == "host"]
    return build_topology(f"workload fattree(k={k})", len(built.nodes), [(l.a, l.b) for l in built.links], hosts,
                     [name for name, _ in built.nodes])


def workload_available() -> bool:
    try:
        import simopt.workload.topology  # noqa: F401
    except ImportError:
        return False
    return True


@st.composite
def fattrees(draw, *, ks: tuple[int, ...] = (4, 6)) -> Topology:
    """An intact FatTree with k drawn from `ks` (shrinks toward the first), from either builder:
    ours, or simopt.workload's (other names and id layout) when it is there."""
    k = draw(st.sampled_from(ks))
    if workload_available() and draw(st.booleans()):
        return workload_fattree_topology(k)
    return fattree_topology(k)


@st.composite
def meshes(draw, *, min_side: int = 2, max_side: int = 5) -> Topology:
    """A rows x cols grid, or a torus (wrap-around links) when both sides are at least 3."""
    _check_bounds("side", min_side, max_side, 2)
    rows = draw(st.integers(min_side, max_side))
    cols = draw(st.integers(min_side, max_side))
    torus = rows >= 3 and cols >= 3 and draw(st.booleans())
    edges = set()
    for r in range(rows):
        for c in range(cols):
            here = r * cols + c
            if c + 1 < cols or torus:
                edges.add(tuple(sorted((here, r * cols + (c + 1) % cols))))
            if r + 1 < rows or torus:
                edges.add(tuple(sorted((here, ((r + 1) % rows) * cols + c))))
    kind = "torus" if torus else "mesh"
    return build_topology(f"{kind}({rows}x{cols})", rows * cols, edges)


@st.composite
def rings(draw, *, min_nodes: int = 3, max_nodes: int = 12) -> Topology:
    """A cycle of n nodes (two equal-cost directions when n is even)."""
    _check_bounds("nodes", min_nodes, max_nodes, 3)
    n = draw(st.integers(min_nodes, max_nodes))
    return build_topology(f"ring(n={n})", n, {(i, (i + 1) % n) for i in range(n)})


@st.composite
def trees(draw, *, min_nodes: int = 2, max_nodes: int = 20) -> Topology:
    """A random tree: node i joins a random earlier node (shrinks toward a path)."""
    _check_bounds("nodes", min_nodes, max_nodes, 2)
    n = draw(st.integers(min_nodes, max_nodes))
    edges = {(draw(st.integers(0, i - 1)), i) for i in range(1, n)}
    return build_topology(f"tree(n={n})", n, edges)


@st.composite
def random_connected(draw, *, min_nodes: int = 3, max_nodes: int = 24, max_extra: int = 20) -> Topology:
    """A random tree plus random chords (shrinks toward a path with no chords)."""
    _check_bounds("nodes", min_nodes, max_nodes, 2)
    n = draw(st.integers(min_nodes, max_nodes))
    edges = {(draw(st.integers(0, i - 1)), i) for i in range(1, n)}
    for _ in range(draw(st.integers(0, max_extra))):
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(0, n - 1))
        if a != b:
            edges.add((min(a, b), max(a, b)))
    return build_topology(f"random-chords(n={n})", n, edges)


@st.composite
def generated_connected(draw, *, min_nodes: int = 4, max_nodes: int = 30) -> Topology:
    """A networkx random graph (gnp, Barabasi-Albert, Watts-Strogatz, regular), components joined."""
    import networkx as nx

    _check_bounds("nodes", min_nodes, max_nodes, 4)
    n = draw(st.integers(min_nodes, max_nodes))
    seed = draw(st.integers(0, 2**32 - 1))
    generator = draw(st.sampled_from(("gnp", "barabasi-albert", "watts-strogatz", "regular")))
    if generator == "gnp":
        graph = nx.gnp_random_graph(n, draw(st.sampled_from((0.1, 0.2, 0.4))), seed=seed)
    elif generator == "barabasi-albert":
        graph = nx.barabasi_albert_graph(n, draw(st.integers(1, 3)), seed=seed)
    elif generator == "watts-strogatz":
        graph = nx.watts_strogatz_graph(n, 4, draw(st.sampled_from((0.1, 0.3))), seed=seed)
    else:
        degree = 3 if n % 2 == 0 else 4
        graph = nx.random_regular_graph(degree, n, seed=seed)
    edges = {(min(a, b), max(a, b)) for a, b in graph.edges()}
    components = [sorted(c) for c in nx.connected_components(graph)]
    components.sort()
    for previous, current in zip(components, components[1:]):
        edges.add((previous[0], current[0]))
    return build_topology(f"{generator}(n={n},seed={seed})", n, edges)


@st.composite
def equal_cost(draw, *, max_width: int = 4, max_layers: int = 4) -> Topology:
    """Graphs with many equal-cost paths: hypercubes, complete bipartite graphs, layered diamonds."""
    shape = draw(st.sampled_from(("hypercube", "bipartite", "layers")))
    if shape == "hypercube":
        dim = draw(st.integers(2, 4))
        n = 2**dim
        edges = {(i, i ^ (1 << b)) for i in range(n) for b in range(dim) if i < i ^ (1 << b)}
        return build_topology(f"hypercube(dim={dim})", n, edges)
    if shape == "bipartite":
        left = draw(st.integers(2, max_width + 1))
        right = draw(st.integers(2, max_width + 1))
        edges = {(i, left + j) for i in range(left) for j in range(right)}
        return build_topology(f"complete-bipartite({left},{right})", left + right, edges)
    widths = [1] + [draw(st.integers(1, max_width)) for _ in range(draw(st.integers(1, max_layers)))] + [1]
    starts = [sum(widths[:i]) for i in range(len(widths))]
    edges = set()
    for layer in range(len(widths) - 1):
        for i in range(widths[layer]):
            for j in range(widths[layer + 1]):
                edges.add((starts[layer] + i, starts[layer + 1] + j))
    return build_topology(f"layered-diamond(widths={widths})", sum(widths), edges)


@st.composite
def disconnected(draw) -> Topology:
    """Two or three components side by side, no link between them."""
    parts = draw(st.lists(st.one_of(trees(max_nodes=8), rings(max_nodes=6), random_connected(max_nodes=8, max_extra=4)),
                          min_size=2, max_size=3))
    edges, offset = [], 0
    for part in parts:
        edges.extend((a + offset, b + offset) for a, b in part["edges"])
        offset += len(part["nodes"])
    kinds = "+".join(part["kind"] for part in parts)
    return build_topology(f"disconnected({kinds})", offset, edges)


def connected_topologies(*, thorough: bool = False) -> st.SearchStrategy[Topology]:
    """Every connected family, FatTrees included (k=8 too when `thorough`)."""
    ks = (4, 6, 8) if thorough else (4, 6)
    return st.one_of(
        trees(), rings(), meshes(), random_connected(), generated_connected(), equal_cost(),
        fattrees(ks=ks), random_connected(min_nodes=36, max_nodes=36, max_extra=30),
    )


def topologies(*, thorough: bool = False) -> st.SearchStrategy[Topology]:
    """Every family: the connected ones and disconnected graphs."""
    return st.one_of(connected_topologies(thorough=thorough), disconnected())


# --- turning a topology into an instance ----------------------------------------------------------

@st.composite
def link_params(draw, *, count: int, weighted: bool | None = None, uniform: bool | None = None) -> list[dict[str, int]]:
    """Bandwidth, delay, buffer and weight for `count` links, all alike or each its own."""
    weighted = draw(st.booleans()) if weighted is None else weighted
    uniform = draw(st.booleans()) if uniform is None else uniform
    one = _LINK[weighted]
    if uniform:
        return [draw(one)] * count
    return [draw(one) for _ in range(count)]


@st.composite
def flow_bytes(draw, *, mtu: int, max_packets: int) -> int:
    """A flow size of 1 to `max_packets` packets whose last packet is full (a multiple of the MTU),
    one byte short of full, one byte, or anything between: the packet count, not the MTU, bounds the work."""
    packets = draw(st.integers(1, max_packets))
    last = draw(st.one_of(st.integers(1, mtu), st.sampled_from((mtu, max(1, mtu - 1), 1))))
    return (packets - 1) * mtu + last


@st.composite
def flows_for(draw, *, endpoints: list[int], min_flows: int = 1, max_flows: int = 8, mtu: int = 1500, max_packets: int = 8,
              max_start_ns: int = 60_000) -> list[dict[str, int]]:
    """Flows between distinct endpoints (the destination is drawn from the other endpoints)."""
    if len(endpoints) < 2:
        raise ValueError(f"endpoints(={endpoints}) must hold at least two nodes")
    _check_bounds("packets", 1, max_packets, 1)
    count = draw(st.integers(min_flows, max_flows))
    pattern = draw(st.sampled_from(("random", "incast", "same-pair")))
    fixed_src = _pick(draw, endpoints)
    fixed_dst = _pick(draw, endpoints, besides=fixed_src)
    ids = draw(st.lists(st.integers(0, 10_000), min_size=count, max_size=count, unique=True))
    size, start = flow_bytes(mtu=mtu, max_packets=max_packets), st.one_of(st.just(0), st.integers(0, max_start_ns))
    flows = []
    for fid in ids:
        if pattern == "same-pair":
            src, dst = fixed_src, fixed_dst
        elif pattern == "incast":
            dst = fixed_dst
            src = _pick(draw, endpoints, besides=dst)
        else:
            src = _pick(draw, endpoints)
            dst = _pick(draw, endpoints, besides=src)
        flows.append({
            "id": fid, "src": src, "dst": dst,
            "bytes": draw(size),
            "start_ns": draw(start),
            "rate_bps": draw(_RATE),
        })
    return flows


def _pick(draw, items: list[int], besides: int | None = None) -> int:
    """One of `items` (other than `besides`), drawn as an index: like sampled_from, shrinking
    towards the first, without building a strategy over a new list for every flow."""
    others = items if besides is None else [item for item in items if item != besides]
    return others[draw(st.integers(0, len(others) - 1))]


@st.composite
def link_events_for(draw, *, links: list[tuple[int, int]], max_events: int = 6, max_time_ns: int = 200_000) -> list[dict[str, Any]]:
    """Fail/recover events on existing links, at most one per link per time (keyed by construction)."""
    if not links:
        return []
    events = {}
    # spread over the run, or clustered: a few moments with events nanoseconds to microseconds after them
    centers = draw(st.lists(st.integers(0, max_time_ns), min_size=1, max_size=2))
    clustered = draw(st.booleans())
    for _ in range(draw(st.integers(0, max_events))):
        a, b = draw(st.sampled_from(links))
        if clustered:
            time_ns = draw(st.sampled_from(centers)) + draw(st.one_of(st.just(0), st.integers(1, 1_000), st.integers(1, 20_000)))
        else:
            time_ns = draw(st.one_of(st.just(0), st.integers(0, max_time_ns)))
        action = draw(st.sampled_from(("fail", "recover")))
        ends = (a, b) if draw(st.booleans()) else (b, a)
        events[(min(a, b), max(a, b), time_ns)] = {"time_ns": time_ns, "a": ends[0], "b": ends[1], "action": action}
    return [events[key] for key in sorted(events)]


def assemble(topology: Topology, params: list[dict[str, int]], flows: list[dict[str, int]],
             link_events: list[dict[str, Any]], *, mtu: int, reconvergence_ns: int, horizon_ns: int) -> dict[str, Any]:
    """The instance document of docs/semantics.md §1."""
    return {
        "version": 1,
        "nodes": [{"name": name, "kind": kind} for name, kind in topology["nodes"]],
        "links": [{"a": a, "b": b, **p} for (a, b), p in zip(topology["edges"], params)],
        "flows": flows,
        "link_events": link_events,
        "mtu_bytes": mtu,
        "reconvergence_ns": reconvergence_ns,
        "horizon_ns": horizon_ns,
    }


@st.composite
def cases(draw, *, topology=None, failures: bool = True, max_flows: int = 8, weighted: bool | None = None,
          uniform_links: bool | None = None) -> Case:
    """A full instance over `topology` (default: every family), with traffic and optional failures."""
    topo = draw(topology if topology is not None else topologies())
    lockstep = draw(st.booleans())
    params = draw(link_params(count=len(topo["edges"]), weighted=weighted, uniform=True if lockstep else uniform_links))
    endpoints = topo["hosts"] if len(topo["hosts"]) >= 2 else list(range(len(topo["nodes"])))
    mtu = draw(st.one_of(st.just(1500), st.integers(64, 9000), st.integers(1, 63), st.integers(9001, 65_535)))
    flows = draw(flows_for(endpoints=endpoints, max_flows=max_flows, mtu=mtu))
    if lockstep:
        params = [{**params[0], "buffer_bytes": max(params[0]["buffer_bytes"], 4 * mtu)}] * len(params)
        flows = _in_lockstep(draw, flows, params[0], mtu) + draw(convoy(topo, link=params[0], mtu=mtu))
    events = draw(link_events_for(links=topo["edges"])) if failures else []
    reconvergence = draw(st.one_of(st.sampled_from((0, 50_000)), st.integers(0, 100_000)))
    moments = sorted({f["start_ns"] for f in flows} | {e["time_ns"] for e in events}
                     | {e["time_ns"] + reconvergence for e in events})
    just_after = st.sampled_from(moments).flatmap(lambda t: st.integers(t + 1, t + 1_000))
    instance = assemble(
        topo, params, flows, events,
        mtu=mtu,
        reconvergence_ns=reconvergence,
        horizon_ns=draw(st.one_of(st.just(2_000_000), st.integers(0, 2_000_000), st.sampled_from(moments), just_after)),
    )
    if draw(st.booleans()):
        instance = shuffled(instance, draw(st.integers(0, 2**32 - 1)))
    return Case(topo["kind"], instance)


def _in_lockstep(draw, flows: list[dict[str, int]], link: dict[str, int], mtu: int) -> list[dict[str, int]]:
    """Flows at line rate starting on multiples of one hop's time, so arrivals, injections and
    transmission starts fall on the same nanoseconds and the canonical order of §6 decides."""
    hop_ns = (mtu * 8 * 1_000_000_000 + link["bandwidth_bps"] - 1) // link["bandwidth_bps"] + link["delay_ns"]
    return [{**f, "rate_bps": link["bandwidth_bps"], "start_ns": hop_ns * draw(st.integers(0, 4))} for f in flows]


@st.composite
def convoy(draw, topology: Topology, *, link: dict[str, int], mtu: int) -> list[dict[str, int]]:
    """Flows from successive nodes of the first flow's route toward its end, each starting when the
    first flow's packets reach its source: injections meet arrivals at one port at the same time.
    Links must be uniform (so the route follows hop counts)."""
    import networkx as nx

    graph = nx.Graph(topology["edges"])
    graph.add_nodes_from(range(len(topology["nodes"])))
    src = draw(st.integers(0, len(topology["nodes"]) - 1))
    reachable = sorted(nx.node_connected_component(graph, src) - {src})
    if not reachable:
        return []
    dst = draw(st.sampled_from(reachable))
    first_id = draw(st.integers(10_001, 20_000))
    dist = nx.single_source_shortest_path_length(graph, dst)
    route = [src]
    while route[-1] != dst:
        here = route[-1]
        hops = sorted(v for v in graph[here] if dist[v] + 1 == dist[here])
        route.append(hops[_ecmp(first_id, here, len(hops))])
    hop_ns = (mtu * 8 * 1_000_000_000 + link["bandwidth_bps"] - 1) // link["bandwidth_bps"] + link["delay_ns"]
    return [{"id": first_id + i, "src": node, "dst": dst, "bytes": draw(st.integers(mtu, 4 * mtu)),
             "start_ns": i * hop_ns, "rate_bps": link["bandwidth_bps"]} for i, node in enumerate(route[:-1])]


def _ecmp(flow: int, node: int, k: int) -> int:
    """The spec's ECMP index (docs/semantics.md §4), to lay a convoy along a flow's actual route."""
    mask = (1 << 64) - 1
    x = ((flow * 0x100000001B3 + node) + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) % k


# --- perturbations ------------------------------------------------------------------------------

def relabel(instance: dict[str, Any], order: list[int], names: list[str] | None = None) -> dict[str, Any]:
    """The same network with old node `order[i]` renamed to new id i (names replaced when given)."""
    new_id = {old: new for new, old in enumerate(order)}
    nodes = [dict(instance["nodes"][old]) for old in order]
    if names is not None:
        for node, name in zip(nodes, names):
            node["name"] = name
    moved = dict(instance)
    moved["nodes"] = nodes
    moved["links"] = [{**link, "a": new_id[link["a"]], "b": new_id[link["b"]]} for link in instance["links"]]
    moved["flows"] = [{**f, "src": new_id[f["src"]], "dst": new_id[f["dst"]]} for f in instance["flows"]]
    moved["link_events"] = [{**e, "a": new_id[e["a"]], "b": new_id[e["b"]]} for e in instance["link_events"]]
    return moved


@st.composite
def opaque_relabelling(draw, instance: dict[str, Any]) -> dict[str, Any]:
    """Permute node ids and replace names with shuffled opaque integers."""
    n = len(instance["nodes"])
    order = draw(st.permutations(range(n)))
    labels = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True))
    return relabel(instance, list(order), [str(label) for label in labels])


def shuffled(instance: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same instance with its links, flows and link events in another order, link ends swapped at random."""
    rng = random.Random(seed)
    moved = dict(instance)
    for key in ("links", "flows", "link_events"):
        items = list(instance[key])
        rng.shuffle(items)
        moved[key] = items
    moved["links"] = [{**link, "a": link["b"], "b": link["a"]} if rng.random() < 0.5 else link for link in moved["links"]]
    return moved


@st.composite
def perturbed_fattrees(draw, *, ks: tuple[int, ...] = (4, 6)) -> Case:
    """A FatTree instance with failed links, an extra link, opaque relabelling and shuffled links."""
    topo = draw(fattrees(ks=ks))
    n = len(topo["nodes"])
    existing = set(topo["edges"])
    edges = list(topo["edges"])
    notes = []
    if draw(st.booleans()):
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(0, n - 1).filter(lambda x: x != a))
        if (min(a, b), max(a, b)) not in existing:
            edges.append((min(a, b), max(a, b)))
            notes.append(f"extra link {min(a, b)}-{max(a, b)}")
    topo = {**topo, "edges": edges}
    params = draw(link_params(count=len(edges), weighted=False))
    flows = draw(flows_for(endpoints=topo["hosts"]))
    failed = draw(st.lists(st.sampled_from(edges), min_size=0, max_size=2, unique=True))
    fail_time = draw(st.one_of(st.just(0), st.integers(0, 100_000)))
    events = [{"time_ns": fail_time, "a": a, "b": b, "action": "fail"} for a, b in sorted(failed)]
    events += draw(link_events_for(links=edges, max_events=2))
    unique = {}
    for event in events:
        unique.setdefault((min(event["a"], event["b"]), max(event["a"], event["b"]), event["time_ns"]), event)
    instance = assemble(topo, params, flows, list(unique.values()), mtu=1500,
                        reconvergence_ns=draw(st.sampled_from((0, 20_000, 50_000))), horizon_ns=2_000_000)
    if draw(st.booleans()):
        instance = draw(opaque_relabelling(instance))
        notes.append("opaque relabelling")
    instance = shuffled(instance, draw(st.integers(0, 2**32 - 1)))
    if failed:
        notes.append(f"{len(failed)} failed link(s) at {fail_time} ns")
    return Case("perturbed " + topo["kind"] + (": " + ", ".join(notes) if notes else ""), instance)
