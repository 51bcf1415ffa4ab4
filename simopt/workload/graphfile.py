"""User graphs from files: GraphML or a plain edge list.

Edge list: one link per line, `a b [key=value ...]`, `#` starts a comment; every node is a host.
GraphML: an undirected graph; a node attribute `kind` (host or switch) is optional (default
host). In both, integer link attributes `bandwidth_bps`, `delay_ns`, `buffer_bytes` and `weight`
override the scenario's link defaults. Node ids follow the order of first appearance in the file.
"""

from __future__ import annotations

from pathlib import Path

from simopt.workload.topology import Topology, GraphBuilder

LINK_KEYS = ("bandwidth_bps", "delay_ns", "buffer_bytes", "weight")


def read_graph(path: Path) -> Topology:
    """Read a GraphML file (by its `.graphml` suffix) or an edge list."""
    if not path.is_file():
        raise ValueError(f"path(={str(path)!r}) is not a file")
    if path.suffix.lower() == ".graphml":
        return read_graphml(path)
    return read_edge_list(path)


def read_edge_list(path: Path) -> Topology:
    """Read `a b [key=value ...]` lines."""
    g = GraphBuilder()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path.name} line {number}"
        if len(fields) < 2:
            raise ValueError(f"{where}: expected 'a b [key=value ...]', got {raw.strip()!r}")
        params = {}
        for item in fields[2:]:
            key, sep, value = item.partition("=")
            if not sep or not value.lstrip("-").isdigit():
                raise ValueError(f"{where}: attribute {item!r} must be key=integer")
            params[key] = int(value)
        ends = [g.ids[name] if name in g.ids else g.node(name) for name in fields[:2]]
        _link(g, ends, params, where)
    return g.build()


def read_graphml(path: Path) -> Topology:
    """Read an undirected GraphML graph with optional node `kind` and integer link attributes."""
    import networkx as nx

    try:
        graph = nx.read_graphml(path)
    except Exception as error:  # the parser raises several unrelated types for bad XML
        raise ValueError(f"{path.name}: not readable as GraphML ({' '.join(str(error).split())})") from None
    if graph.is_directed():
        raise ValueError(f"{path.name}: the graph must be undirected (edgedefault=\"undirected\")")
    g = GraphBuilder()
    for name, data in graph.nodes(data=True):
        kind = data.get("kind", "host")
        if kind not in ("host", "switch"):
            raise ValueError(f"{path.name}: node {name!r} kind(={kind!r}) must be host or switch")
        g.node(str(name), kind)
    for a, b, data in graph.edges(data=True):
        params = {key: value for key, value in data.items() if key != "id"}
        _link(g, [g.ids[str(a)], g.ids[str(b)]], params, f"{path.name} link {a}-{b}")
    return g.build()


def _link(g: GraphBuilder, ends: list[int], params: dict, where: str) -> None:
    for key, value in params.items():
        if key not in LINK_KEYS:
            raise ValueError(f"{where}: unknown link attribute {key!r} (expected one of {', '.join(LINK_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: {key}(={value!r}) must be an integer")
    try:
        g.link(ends[0], ends[1], params=params)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
