"""Topology families: each builder returns a `Topology` with canonical node and link order.

Node ids are positions in `Topology.nodes`; links are `(a, b)` with `a < b`, sorted. Builders
take keyword parameters named as in the scenario file and raise `ValueError` naming the bad
parameter and its rule, e.g. "k(=7) must be even and >= 4". The seeded families implement
their own generators (not networkx's) so an instance never depends on a library version.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Link:
    """An undirected link between node ids `a < b`; `params` overrides the scenario's link defaults."""

    a: int
    b: int
    tier: str = "link"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    """Nodes as (name, kind) in canonical order, links sorted by (a, b), and the tiers in use."""

    nodes: list[tuple[str, str]]
    links: list[Link]
    tiers: tuple[str, ...] = ("link",)

    def hosts(self) -> list[int]:
        """The ids of the nodes of kind host: the traffic endpoints."""
        return [i for i, (_, kind) in enumerate(self.nodes) if kind == "host"]


class GraphBuilder:
    """Collects named nodes and links, then freezes them into a canonical `Topology`."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, str]] = []
        self.ids: dict[str, int] = {}
        self.links: dict[tuple[int, int], Link] = {}

    def node(self, name: str, kind: str = "host") -> int:
        if name in self.ids:
            raise ValueError(f"node name {name!r} is used twice")
        self.ids[name] = len(self.nodes)
        self.nodes.append((name, kind))
        return self.ids[name]

    def link(self, a: int, b: int, tier: str = "link", params: dict | None = None) -> None:
        if a == b:
            raise ValueError(f"link {self.nodes[a][0]!r}-{self.nodes[a][0]!r} joins a node to itself")
        key = (min(a, b), max(a, b))
        if key in self.links:
            raise ValueError(f"link {self.nodes[a][0]!r}-{self.nodes[b][0]!r} appears twice")
        self.links[key] = Link(key[0], key[1], tier, params or {})

    def build(self, tiers: tuple[str, ...] = ("link",)) -> Topology:
        return Topology(list(self.nodes), [self.links[key] for key in sorted(self.links)], tiers)


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}(={value!r}) must be an integer >= {minimum}")
    return value


def fattree(*, k: int) -> Topology:
    """A k-ary FatTree: k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 cores, k^3/4 hosts."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 4 or k % 2:
        raise ValueError(f"k(={k!r}) must be even and >= 4")
    half = k // 2
    g = GraphBuilder()
    hosts = [[[g.node(f"h{pod}_{e}_{i}") for i in range(half)] for e in range(half)] for pod in range(k)]
    edges = [[g.node(f"e{pod}_{e}", "switch") for e in range(half)] for pod in range(k)]
    aggs = [[g.node(f"a{pod}_{j}", "switch") for j in range(half)] for pod in range(k)]
    cores = [[g.node(f"c{i}_{j}", "switch") for j in range(half)] for i in range(half)]
    for pod in range(k):
        for e in range(half):
            for host in hosts[pod][e]:
                g.link(host, edges[pod][e], "edge")
            for agg in aggs[pod]:
                g.link(edges[pod][e], agg, "aggregation")
        for i, agg in enumerate(aggs[pod]):
            for core in cores[i]:
                g.link(agg, core, "core")
    return g.build(("edge", "aggregation", "core"))


def mesh(*, rows: int, cols: int) -> Topology:
    """A rows x cols grid; every node is a host named n{row}_{col}."""
    _check_int("rows", rows, 1)
    _check_int("cols", cols, 1)
    if rows * cols < 2:
        raise ValueError(f"rows * cols(={rows * cols}) must be >= 2")
    return _grid(rows, cols, wrap=False)


def torus(*, rows: int, cols: int) -> Topology:
    """A rows x cols grid with wrap-around links; every node is a host of degree 4."""
    _check_int("rows", rows, 3)
    _check_int("cols", cols, 3)
    return _grid(rows, cols, wrap=True)


def _grid(rows: int, cols: int, *, wrap: bool) -> Topology:
    g = GraphBuilder()
    ids = [[g.node(f"n{r}_{c}") for c in range(cols)] for r in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols or wrap:
                g.link(ids[r][c], ids[r][(c + 1) % cols])
            if r + 1 < rows or wrap:
                g.link(ids[r][c], ids[(r + 1) % rows][c])
    return g.build()


def ring(*, n: int) -> Topology:
    """n hosts in a cycle."""
    _check_int("n", n, 3)
    g = GraphBuilder()
    ids = [g.node(f"n{i}") for i in range(n)]
    for i in range(n):
        g.link(ids[i], ids[(i + 1) % n])
    return g.build()


def line(*, n: int) -> Topology:
    """n hosts in a path."""
    _check_int("n", n, 2)
    g = GraphBuilder()
    ids = [g.node(f"n{i}") for i in range(n)]
    for i in range(n - 1):
        g.link(ids[i], ids[i + 1])
    return g.build()


def star(*, n: int) -> Topology:
    """n hosts around one switch."""
    _check_int("n", n, 2)
    g = GraphBuilder()
    hosts = [g.node(f"h{i}") for i in range(n)]
    center = g.node("s0", "switch")
    for host in hosts:
        g.link(host, center)
    return g.build()


def tree(*, depth: int, fanout: int) -> Topology:
    """A complete tree: switches s{level}_{i} down to fanout^depth host leaves h{i}."""
    _check_int("depth", depth, 1)
    _check_int("fanout", fanout, 2)
    g = GraphBuilder()
    levels = [[g.node(f"s{level}_{i}", "switch") for i in range(fanout**level)] for level in range(depth)]
    leaves = [g.node(f"h{i}") for i in range(fanout**depth)]
    for level, children in enumerate(levels[1:] + [leaves]):
        for i, child in enumerate(children):
            g.link(levels[level][i // fanout], child)
    return g.build()


def dumbbell(*, hosts_per_side: int) -> Topology:
    """Two switches joined by one bottleneck link, each with hosts_per_side hosts (l{i}, r{i})."""
    _check_int("hosts_per_side", hosts_per_side, 1)
    g = GraphBuilder()
    left = [g.node(f"l{i}") for i in range(hosts_per_side)]
    right = [g.node(f"r{i}") for i in range(hosts_per_side)]
    s_left, s_right = g.node("s0", "switch"), g.node("s1", "switch")
    for host in left:
        g.link(host, s_left, "access")
    for host in right:
        g.link(host, s_right, "access")
    g.link(s_left, s_right, "bottleneck")
    return g.build(("access", "bottleneck"))


def gnm(*, n: int, m: int, rng: random.Random) -> Topology:
    """A connected random graph of n hosts and exactly m links: a random spanning tree plus uniform extra links."""
    _check_int("n", n, 2)
    most = n * (n - 1) // 2
    if not isinstance(m, int) or isinstance(m, bool) or not n - 1 <= m <= most:
        raise ValueError(f"m(={m!r}) must be between n - 1(={n - 1}) and n(n-1)/2(={most})")
    order = list(range(n))
    rng.shuffle(order)
    chosen = {_pair(order[i], order[rng.randrange(i)]) for i in range(1, n)}
    # The extra links are a uniform sample of the other pairs in lexicographic order. Sampling
    # their positions (`range` draws exactly as a list of that length would) and mapping each
    # position to its pair avoids listing all n(n-1)/2 pairs.
    taken = sorted(_pair_rank(n, a, b) for a, b in chosen)
    positions = rng.sample(range(most - (n - 1)), m - (n - 1))
    chosen.update(_rank_pair(n, _free_rank(taken, position)) for position in positions)
    return _numbered(n, chosen)


def _pair_rank(n: int, a: int, b: int) -> int:
    """The position of pair (a, b), a < b, among all pairs of range(n) in lexicographic order."""
    return a * n - a * (a + 1) // 2 + (b - a - 1)


def _rank_pair(n: int, rank: int) -> tuple[int, int]:
    """The pair at position `rank` in lexicographic order (inverse of `_pair_rank`)."""
    low, high = 0, n - 2
    while low < high:  # the last a whose first pair (a, a + 1) is at or before rank
        middle = (low + high + 1) // 2
        if _pair_rank(n, middle, middle + 1) <= rank:
            low = middle
        else:
            high = middle - 1
    return low, rank - _pair_rank(n, low, low + 1) + low + 1


def _free_rank(taken: list[int], position: int) -> int:
    """The rank of the `position`-th pair (0-based) whose rank is not in the sorted list `taken`."""
    rank = position
    while True:
        before = bisect.bisect_right(taken, rank)
        if rank - before == position and (before == 0 or taken[before - 1] != rank):
            return rank
        rank = position + before


def random_regular(*, n: int, d: int, rng: random.Random) -> Topology:
    """A connected random d-regular graph on n hosts (stub pairing, retried until simple and connected)."""
    _check_int("d", d, 3)
    if not isinstance(n, int) or isinstance(n, bool) or n <= d or (n * d) % 2:
        raise ValueError(f"n(={n!r}) must be > d(={d}) with n * d even")
    for _ in range(100):
        links = _pair_stubs(n, d, rng)
        if links is not None and _connected(n, links):
            return _numbered(n, links)
    raise ValueError(f"no connected {d}-regular graph on n(={n}) nodes found in 100 attempts")


def _pair_stubs(n: int, d: int, rng: random.Random) -> set[tuple[int, int]] | None:
    """Pair up d stubs per node avoiding loops and repeats; None when stuck."""
    links: set[tuple[int, int]] = set()
    stubs = [v for v in range(n) for _ in range(d)]
    while stubs:
        rng.shuffle(stubs)
        leftover: list[int] = []
        for u, v in zip(stubs[::2], stubs[1::2]):
            if u != v and _pair(u, v) not in links:
                links.add(_pair(u, v))
            else:
                leftover += [u, v]
        open_nodes = sorted(set(leftover))
        if leftover and not any(_pair(u, v) not in links for i, u in enumerate(open_nodes) for v in open_nodes[i + 1 :]):
            return None
        stubs = leftover
    return links


def watts_strogatz(*, n: int, k: int, p: float, rng: random.Random) -> Topology:
    """A connected small-world graph: a k-nearest-neighbour ring, each link rewired with probability p."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 2 or k % 2:
        raise ValueError(f"k(={k!r}) must be even and >= 2")
    if not isinstance(n, int) or isinstance(n, bool) or n <= k:
        raise ValueError(f"n(={n!r}) must be an integer > k(={k})")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"p(={p!r}) must be a number in [0, 1]")
    for _ in range(100):
        links = _rewired_ring(n, k, p, rng)
        if _connected(n, links):
            return _numbered(n, links)
    raise ValueError(f"no connected graph found in 100 attempts with p(={p})")


def _rewired_ring(n: int, k: int, p: float, rng: random.Random) -> set[tuple[int, int]]:
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for u in range(n):
        for j in range(1, k // 2 + 1):
            neighbours[u].add((u + j) % n)
            neighbours[(u + j) % n].add(u)
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            if v not in neighbours[u] or len(neighbours[u]) >= n - 1 or rng.random() >= p:
                continue
            w = rng.randrange(n)
            while w == u or w in neighbours[u]:
                w = rng.randrange(n)
            neighbours[u].discard(v)
            neighbours[v].discard(u)
            neighbours[u].add(w)
            neighbours[w].add(u)
    return {_pair(u, v) for u in range(n) for v in neighbours[u]}


def _pair(u: int, v: int) -> tuple[int, int]:
    return (u, v) if u < v else (v, u)


def _numbered(n: int, links: set[tuple[int, int]]) -> Topology:
    g = GraphBuilder()
    for i in range(n):
        g.node(f"n{i}")
    for a, b in sorted(links):
        g.link(a, b)
    return g.build()


def _connected(n: int, links: set[tuple[int, int]]) -> bool:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        parent[root(a)] = root(b)
    return len({root(x) for x in range(n)}) == 1


def from_file(*, path: str, base: Path, limits=None) -> Topology:
    """A user graph: GraphML (`.graphml`) or an edge list (any other name), inside the folder `base`.

    The path may not lead out of `base` (by `..`, an absolute path or a symlink): a scenario
    reads only files that sit beside it.
    """
    from simopt.workload.graphfile import read_graph
    from simopt.workload.size import Limits

    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"path(={path!r}) must be a file name relative to the scenario file")
    folder = Path(base).resolve()
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder):
        raise ValueError(f"path(={path!r}) must stay inside the scenario's folder {folder}")
    return read_graph(resolved, limits or Limits())


BUILDERS = {
    "fattree": fattree,
    "mesh": mesh,
    "torus": torus,
    "ring": ring,
    "line": line,
    "star": star,
    "tree": tree,
    "dumbbell": dumbbell,
    "gnm": gnm,
    "random_regular": random_regular,
    "watts_strogatz": watts_strogatz,
    "file": from_file,
}
