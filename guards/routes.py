"""The route a flow's packets take before any link event (docs/semantics.md §4), for building
instances whose link events and near-equal links sit on traffic's actual path."""

from __future__ import annotations

from typing import Any

from guards.oracle import ecmp_index, shortest_distances


def initial_route(instance: dict[str, Any], flow: dict[str, Any]) -> list[int]:
    """The nodes a packet of `flow` visits with every link up, source first; [] when unreachable."""
    n = len(instance["nodes"])
    adjacency = {u: {} for u in range(n)}
    for link in instance["links"]:
        adjacency[link["a"]][link["b"]] = link["weight"]
        adjacency[link["b"]][link["a"]] = link["weight"]
    dist = shortest_distances(n, adjacency, flow["dst"])
    here, route = flow["src"], [flow["src"]]
    if dist[here] == float("inf"):
        return []
    while here != flow["dst"]:
        hops = sorted(v for v, weight in adjacency[here].items() if weight + dist[v] == dist[here])
        here = hops[ecmp_index(flow["id"], here, len(hops))]
        route.append(here)
    return route


def route_links(route: list[int]) -> list[tuple[int, int]]:
    """The links of a route as (a, b) with a < b, in travel order."""
    return [(min(u, v), max(u, v)) for u, v in zip(route, route[1:])]
