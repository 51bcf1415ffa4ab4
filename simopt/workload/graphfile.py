"""User graphs from files: GraphML or a plain edge list.

Edge list: one link per line, `a b [key=value ...]`, `#` starts a comment; every node is a host.
GraphML: an undirected graph; a node attribute `kind` (host or switch) is optional (default
host). In both, integer link attributes `bandwidth_bps`, `delay_ns`, `buffer_bytes` and `weight`
override the scenario's link defaults. Node ids follow the order of first appearance in the file.
Errors name the file, the line (or node) and the rule, never the file's contents; a file past
the size limits is refused as soon as that is known.
"""

from __future__ import annotations

from pathlib import Path

from simopt.workload.size import FILE_BYTES_PER_ITEM, Limits
from simopt.workload.topology import GraphBuilder, Topology

LINK_KEYS = ("bandwidth_bps", "delay_ns", "buffer_bytes", "weight")


def read_graph(path: Path, limits: Limits | None = None) -> Topology:
    """Read a GraphML file (by its `.graphml` suffix) or an edge list, within `limits` (default: the defaults)."""
    limits = limits or Limits()
    if not path.is_file():
        raise ValueError(f"path(={path.name!r}) is not a file in the scenario's folder")
    most = FILE_BYTES_PER_ITEM * (limits.nodes + limits.links)
    if path.stat().st_size > most:
        raise ValueError(f"{path.name}: {path.stat().st_size:,} bytes is more than a graph within the size limits "
                         f"needs ({most:,}); raise --max-nodes / --max-links to read it")
    if path.suffix.lower() == ".graphml":
        topology = read_graphml(path)
        limits.check("nodes", len(topology.nodes))
        limits.check("links", len(topology.links))
        return topology
    return read_edge_list(path, limits)


def read_edge_list(path: Path, limits: Limits) -> Topology:
    """Read `a b [key=value ...]` lines."""
    g = GraphBuilder()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name}: not UTF-8 text (at byte offset {error.start})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path.name} line {number}"
        if len(fields) < 2:
            raise ValueError(f"{where}: expected 'a b [key=integer ...]' (two node names, then link attributes)")
        params = {}
        for index, item in enumerate(fields[2:], start=3):
            key, sep, value = item.partition("=")
            if not sep or not value.lstrip("-").isdigit():
                raise ValueError(f"{where}: field {index} must be key=integer")
            if key not in LINK_KEYS:
                raise ValueError(f"{where}: field {index} is not a link attribute (expected one of {', '.join(LINK_KEYS)})")
            params[key] = int(value)
        ends = [g.ids[name] if name in g.ids else g.node(name) for name in fields[:2]]
        limits.check("nodes", len(g.nodes))
        _link(g, ends, params, where)
        limits.check("links", len(g.links))
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
    for number, (name, data) in enumerate(graph.nodes(data=True), start=1):
        if data.get("kind", "host") not in ("host", "switch"):
            raise ValueError(f"{path.name}: node {number} (in file order): its kind must be host or switch")
        if str(name) in g.ids:
            raise ValueError(f"{path.name}: node {number} (in file order): its id is used twice")
        g.node(str(name), data.get("kind", "host"))
    for number, (a, b, data) in enumerate(graph.edges(data=True), start=1):
        params = {key: value for key, value in data.items() if key != "id"}
        _link(g, [g.ids[str(a)], g.ids[str(b)]], params, f"{path.name} link {number} (in file order)")
    return g.build()


def _link(g: GraphBuilder, ends: list[int], params: dict, where: str) -> None:
    for key, value in params.items():
        if key not in LINK_KEYS:
            raise ValueError(f"{where}: an attribute is not a link attribute (expected one of {', '.join(LINK_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: {key} must be an integer")
    if ends[0] == ends[1]:
        raise ValueError(f"{where}: the link joins a node to itself")
    if (min(ends), max(ends)) in g.links:
        raise ValueError(f"{where}: a second link between the same two nodes")
    g.link(ends[0], ends[1], params=params)
