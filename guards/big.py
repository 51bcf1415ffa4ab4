"""Instances at the benchmark's size and beyond it, each built from one seed.

A size gate (`if nodes > 120:` around a shortcut) hides from a suite whose graphs stay small, and
a shortcut keyed on the benchmark's shape hides from a suite whose only big instances are the
benchmark itself. So every run draws, whatever its profile:
- `fattree-1x`: the benchmark's k=8 FatTree with simopt.workload's names and ids (what a shortcut
  keyed on the benchmark recognizes), perturbed: extra links, weighted links, link failures on
  traffic's path, several flows per pair, shuffled link and flow order;
- `2x`: 1.5-2x the benchmark's nodes, links and packets (a k=10 FatTree with opaque names, or a
  random graph of FatTree density), more flows and packets than any shipped scenario (thousands
  of small flows around the large ones, bursts of flows per pair starting together), with the
  same perturbations;
and the thorough profile adds a random graph and a torus at the benchmark's size.
Hypothesis draws only the seed: these instances are too large to shrink usefully, and a seed
mixed with the run's seed (guards.profiles.salted) makes every run's instance a fresh one.
The number of destinations is bounded (the target recomputes a table per destination at every
route install), so one example costs about one benchmark run.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from guards import strategies
from guards.coverage import features
from guards.routes import initial_route, route_links

SHAPES = ("fattree-1x", "2x", "random-1x", "torus-1x")


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, int]:
    """The largest value of each size feature over the shipped scenarios, and the fattree benchmark's."""
    from guards.golden import scenario_instances

    found = {name: features(instance) for name, (_, instance) in scenario_instances().items()}
    sizes = {f"most_{key}": max(f[key][1] for f in found.values()) for key in ("nodes", "links", "flows", "packets")}
    bench = found.get("fattree") or max(found.values(), key=lambda f: f["nodes"][1])
    sizes.update({f"bench_{key}": bench[key][1] for key in ("nodes", "links", "flows", "packets")})
    return sizes


def build(shape: str, seed: int) -> strategies.Case:
    """The instance of `shape` (one of SHAPES) drawn from `seed`."""
    if shape not in SHAPES:
        raise ValueError(f"shape(={shape!r}) must be one of {', '.join(SHAPES)}")
    rng = random.Random(seed)
    ref = reference()
    if shape == "fattree-1x":
        topo = strategies.workload_fattree_topology(8) if strategies.workload_available() else strategies.fattree_topology(8)
        plan = {"flows": rng.randint(ref["bench_flows"], 2 * ref["bench_flows"]), "packets": rng.randint(3000, 6000),
                "destinations": rng.randint(32, 96), "start_max": 150_000, "horizon": rng.randint(250_000, 450_000)}
    elif shape == "2x":
        nodes = rng.randint(3 * ref["bench_nodes"] // 2, 2 * ref["bench_nodes"])
        topo = strategies.fattree_topology(10) if rng.random() < 0.5 else _random_graph(rng, nodes, ref)
        packets = max(ref["most_packets"], 3 * ref["bench_packets"] // 2)  # 1.5x the benchmark, past every scenario
        plan = {"flows": rng.randint(ref["most_flows"] * 21 // 20, ref["most_flows"] * 6 // 5),
                "packets": rng.randint(packets * 21 // 20, packets * 6 // 5),
                "destinations": rng.randint(16, 32), "start_max": 300_000, "horizon": rng.randint(350_000, 550_000)}
    else:
        topo = _random_graph(rng, rng.randint(ref["bench_nodes"], 5 * ref["bench_nodes"] // 4), ref) if shape == "random-1x" \
            else _torus(rng.randint(13, 15), rng.randint(15, 17))
        plan = {"flows": rng.randint(ref["bench_flows"], 2 * ref["bench_flows"]), "packets": rng.randint(2000, 4000),
                "destinations": rng.randint(32, 64), "start_max": 150_000, "horizon": rng.randint(250_000, 450_000)}
    return _perturbed(rng, shape, topo, plan)


def _random_graph(rng: random.Random, n: int, ref: dict[str, int]) -> strategies.Topology:
    """A random spanning tree plus chords up to the benchmark's link density."""
    edges = {(rng.randrange(i), i) for i in range(1, n)}
    target = n * ref["bench_links"] // ref["bench_nodes"]
    while len(edges) < target:
        a, b = rng.sample(range(n), 2)
        edges.add((min(a, b), max(a, b)))
    return strategies.build_topology(f"random(n={n},m={len(edges)})", n, edges)


def _torus(rows: int, cols: int) -> strategies.Topology:
    edges = set()
    for r in range(rows):
        for c in range(cols):
            here = r * cols + c
            edges.add(tuple(sorted((here, r * cols + (c + 1) % cols))))
            edges.add(tuple(sorted((here, ((r + 1) % rows) * cols + c))))
    return strategies.build_topology(f"torus({rows}x{cols})", rows * cols, edges)


def _perturbed(rng: random.Random, shape: str, topo: strategies.Topology, plan: dict[str, int]) -> strategies.Case:
    """Extra links, weights, traffic with several flows per pair, failures on its path, shuffled order."""
    n = len(topo["nodes"])
    edges = list(topo["edges"])
    existing = set(edges)
    extra = []
    while len(extra) < rng.randint(1, 4):
        a, b = sorted(rng.sample(range(n), 2))
        if (a, b) not in existing:
            existing.add((a, b))
            extra.append((a, b))
    topo = {**topo, "edges": edges + extra}
    params = [_link(rng) for _ in topo["edges"]]
    hosts = topo["hosts"] if len(topo["hosts"]) >= 2 else list(range(n))
    flows = _traffic(rng, hosts, **{k: plan[k] for k in ("flows", "packets", "destinations", "start_max")})
    instance = strategies.assemble(topo, params, flows, [], mtu=1500, reconvergence_ns=rng.choice((0, rng.randint(2_000, 40_000))),
                                   horizon_ns=plan["horizon"])
    instance["link_events"] = _failures_on_paths(rng, instance)
    names = "workload names" if shape == "fattree-1x" else "opaque ids"
    if shape != "fattree-1x" and topo["kind"].startswith("fattree"):
        order = list(range(n))
        rng.shuffle(order)
        instance = strategies.relabel(instance, order, [str(rng.randrange(10**9)) for _ in range(n)])
    instance = strategies.shuffled(instance, rng.randrange(2**32))
    kind = (f"{shape} {topo['kind']} ({names}): {len(extra)} extra links, {len(instance['flows'])} flows, "
            f"{len(instance['link_events'])} link events")
    return strategies.Case(kind, instance)


def _link(rng: random.Random) -> dict[str, int]:
    """Mostly the benchmark's link; some slower, faster, near-equal, shallow-buffered or heavier ones."""
    bandwidth = 10_000_000_000
    roll = rng.random()
    if roll < 0.08:
        bandwidth = rng.choice((1_000_000_000, 40_000_000_000, 2_500_000_007))
    elif roll < 0.14:
        bandwidth -= rng.randint(1, bandwidth // 1000)  # within one part in a thousand of the others
    return {
        "bandwidth_bps": bandwidth,
        "delay_ns": rng.choice((500, 500, 500, 0, 1_000, 2_000)),
        "buffer_bytes": rng.choice((100_000, 100_000, 100_000, 150_000, rng.randint(3_000, 30_000))),
        "weight": rng.choice((1,) * 6 + (2, 3)),
    }


def _traffic(rng: random.Random, hosts: list[int], *, flows: int, packets: int, destinations: int, start_max: int) -> list[dict[str, int]]:
    """Pairs with 1-6 flows each (bursts starting together) carrying most packets, small flows for the rest."""
    targets = rng.sample(hosts, min(destinations, len(hosts) - 1))
    ids = rng.sample(range(2**32), flows)
    out: list[dict[str, int]] = []
    budget = packets
    while budget > packets // 3 and len(out) < flows // 3:
        dst = rng.choice(targets)
        src = rng.choice([h for h in hosts if h != dst]) if len(hosts) < 64 else _other(rng, hosts, dst)
        start = rng.randint(0, start_max)
        burst = rng.random() < 0.5
        for _ in range(rng.choice((1, 1, 2, 3, 4, 6))):
            size = rng.randint(10, 60) * 1500 - rng.choice((0, 0, 1, rng.randint(1, 1499)))
            out.append({"src": src, "dst": dst, "bytes": size, "start_ns": start if burst else rng.randint(0, start_max),
                        "rate_bps": rng.choice((10_000_000_000,) * 4 + (5_000_000_000, 9_999_999_001))})
            budget -= -(-size // 1500)
    while len(out) < flows:
        dst = rng.choice(targets)
        size = rng.randint(1, 3_000) if budget > 0 else rng.randint(1, 1_500)
        out.append({"src": _other(rng, hosts, dst), "dst": dst, "bytes": size, "start_ns": rng.randint(0, start_max),
                    "rate_bps": 10_000_000_000})
        budget -= -(-size // 1500)
    return [{"id": fid, **flow} for fid, flow in zip(ids, out)]


def _other(rng: random.Random, hosts: list[int], not_this: int) -> int:
    while True:
        pick = rng.choice(hosts)
        if pick != not_this:
            return pick


def _failures_on_paths(rng: random.Random, instance: dict[str, Any]) -> list[dict[str, Any]]:
    """Two to four link events on the route of large flows while they send: a failure, often its
    recovery, and another change on an adjacent link within one reconvergence interval."""
    large = sorted((f for f in instance["flows"] if f["bytes"] > 15_000), key=lambda f: f["id"])
    events: dict[tuple[int, int, int], dict[str, Any]] = {}
    for flow in rng.sample(large, min(2, len(large))):
        links = route_links(initial_route(instance, flow))
        if not links:
            continue
        a, b = rng.choice(links)
        fail = flow["start_ns"] + rng.randint(1_000, 20_000)
        events[(a, b, fail)] = {"time_ns": fail, "a": a, "b": b, "action": "fail"}
        if rng.random() < 0.7:
            back = fail + rng.randint(3_000, 60_000)
            events[(a, b, back)] = {"time_ns": back, "a": b, "b": a, "action": "recover"}
        touching = [l for l in links if l != (a, b) and {a, b} & set(l)]
        if touching:
            c, d = rng.choice(touching)
            later = fail + rng.randint(0, max(1, instance["reconvergence_ns"]))
            events[(c, d, later)] = {"time_ns": later, "a": c, "b": d, "action": rng.choice(("fail", "recover"))}
    return [events[key] for key in sorted(events)]
