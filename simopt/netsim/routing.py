"""Shortest-path routing tables with complete, canonically ordered ECMP next-hop sets."""

from __future__ import annotations

from typing import Iterable

import networkx as nx

_MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The splitmix64 finalizer of docs/semantics.md §4 (all arithmetic modulo 2^64)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def ecmp_index(flow_id: int, node: int, choices: int) -> int:
    """Which of `choices` next hops flow `flow_id` takes at `node`."""
    return splitmix64((flow_id * 0x100000001B3 + node) & _MASK) % choices


NextHops = dict[int, tuple[int, ...]]
"""node -> its next hops toward one destination, in ascending node id (empty: unreachable)."""


def routing_view(node_count: int, live_links: Iterable[tuple[int, int, int]]) -> nx.Graph:
    """The graph routing sees: every node, and the live links as (a, b, weight)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(node_count))
    graph.add_weighted_edges_from(live_links)
    return graph


def next_hops_toward(view: nx.Graph, destination: int) -> NextHops:
    """Every node's complete next-hop set toward `destination` in `view`."""
    dist = nx.single_source_dijkstra_path_length(view, destination, weight="weight")
    table: NextHops = {}
    for node in view.nodes:
        if node == destination or node not in dist:
            table[node] = ()
            continue
        table[node] = tuple(sorted(
            neighbour for neighbour, attrs in view.adj[node].items()
            if neighbour in dist and attrs["weight"] + dist[neighbour] == dist[node]
        ))
    return table


def routing_tables(view: nx.Graph, destinations: Iterable[int]) -> dict[int, NextHops]:
    """Next-hop tables toward each of `destinations`."""
    return {destination: next_hops_toward(view, destination) for destination in destinations}
