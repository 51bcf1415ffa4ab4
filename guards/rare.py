"""Strategies for the rare: parameter extremes, clustered link events and near-equal parameters.

Uniform draws over everyday ranges almost never meet a megabyte buffer, two link events a
microsecond apart or two rates one part in ten thousand apart, so a shortcut switched on there
survives them. These strategies put the rare case in every example, and put it on traffic's
path by construction (the route of docs/semantics.md §4, guards/routes.py), so that a wrong
answer shows in the outcome:
- `extremes(side="low")`: MTUs below 64 bytes, links of kb/s, zero delays and buffers, 1-byte
  flows, a flow of over a thousand packets at an odd rate, long horizons;
- `extremes(side="high")`: jumbo MTUs, 0.1-4 Tb/s links, ms delays, buffers of 1 MB to 2^40
  bytes overflowed by an incast of multi-megabyte flows, weights past 16 bits on a detour that
  clipping would get wrong, reconvergence of 0.1-2 ms;
- `clustered_events(pattern=...)`: fail/recover/fail of one link microseconds apart, changes on
  adjacent links within one reconvergence interval, a no-op event whose install exposes a later
  change, a failure at the very nanosecond a packet arrives, a horizon just after an event, and
  storms of more events than any scenario, with reconvergence shorter and longer than the gaps;
- `near_equal()`: link bandwidths and flow rates within one part in a thousand of each other,
  packets one or two bytes below the MTU, sizes one byte apart, huge weights whose path sums
  differ by one.
They shrink toward smaller graphs and fewer flows, never away from the rare case.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from guards import strategies
from guards.oracle import ser_ns
from guards.routes import initial_route, route_links
from guards.strategies import Case

PATTERNS = ("flap", "adjacent", "no-op-between", "at-an-arrival", "near-the-horizon", "storm")


def _ids(draw, count: int) -> list[int]:
    return draw(st.lists(st.integers(0, 2**32 - 1), min_size=count, max_size=count, unique=True))


def _set_links(instance: dict[str, Any], links: list[tuple[int, int]], **values: int) -> None:
    """Give the links (a, b), a < b, of `instance` these parameter values, in place."""
    chosen = set(links)
    for link in instance["links"]:
        if (min(link["a"], link["b"]), max(link["a"], link["b"])) in chosen:
            link.update(values)


@st.composite
def extremes(draw, *, side: str) -> Case:
    """Every parameter axis at its `side` ("low" or "high") extreme, on links that traffic crosses."""
    if side not in ("low", "high"):
        raise ValueError(f"side(={side!r}) must be 'low' or 'high'")
    return draw(_low_extremes() if side == "low" else _high_extremes())


@st.composite
def _low_extremes(draw) -> Case:
    topo = draw(strategies.random_connected(min_nodes=3, max_nodes=8, max_extra=4))
    n, edges = len(topo["nodes"]), topo["edges"]
    mtu = draw(st.integers(1, 63))
    params = [{"bandwidth_bps": draw(st.integers(1_000_000, 3_000_000_000)), "delay_ns": draw(st.sampled_from((0, 0, 1, 700))),
               "buffer_bytes": draw(st.integers(0, 1_000)) + 64 * mtu, "weight": 1} for _ in edges]
    long_link = draw(st.integers(0, len(edges) - 1))
    a, b = edges[long_link]
    params[long_link].update(bandwidth_bps=draw(st.integers(3_000_000_001, 10_000_000_000)), buffer_bytes=2_000 * mtu, delay_ns=0)
    others = [i for i in range(len(edges)) if i != long_link]
    ids = _ids(draw, 4)
    flows = [
        {"id": ids[0], "src": a, "dst": b, "bytes": mtu * draw(st.integers(1001, 1400)) - draw(st.sampled_from((0, 1 % mtu))),
         "start_ns": 0, "rate_bps": draw(st.integers(1_000_000_001, 3_000_000_000))},  # over a thousand packets, one hop
        {"id": ids[1], "src": b, "dst": a, "bytes": 1, "start_ns": 0, "rate_bps": draw(st.integers(1_000, 999_999))},
    ]
    for fid in ids[2:2 + draw(st.integers(1, 2))]:
        src = draw(st.integers(0, n - 1))
        dst = draw(st.integers(0, n - 1).filter(lambda x: x != src))
        flows.append({"id": fid, "src": src, "dst": dst, "bytes": mtu * draw(st.integers(1, 8)) - draw(st.integers(0, mtu - 1)),
                      "start_ns": draw(st.integers(0, 1_000)), "rate_bps": draw(st.integers(100_000, 999_999))})
    instance = strategies.assemble(topo, params, flows, [], mtu=mtu, reconvergence_ns=0,
                                   horizon_ns=draw(st.integers(20_000_000, 50_000_000)))
    slow = [link for flow in flows[2:] for link in route_links(initial_route(instance, flow)) if link != (a, b)]
    if slow:  # a slow link on the small flows' path: packets of a few bytes cross it in ms
        _set_links(instance, [slow[draw(st.integers(0, len(slow) - 1))]], bandwidth_bps=draw(st.integers(100_000, 999_999)))
    if others:  # and a slower one anywhere, which nothing crosses in time, with no buffer at all
        instance["links"][draw(st.sampled_from(others))].update(bandwidth_bps=draw(st.integers(1_000, 99_999)), buffer_bytes=0)
    return Case(f"low extremes on {topo['kind']}: mtu {mtu}", instance)


@st.composite
def _high_extremes(draw) -> Case:
    core = draw(strategies.random_connected(min_nodes=3, max_nodes=7, max_extra=4))
    n = len(core["nodes"])
    sink, s, x = n, n + 1, n + 2
    attach, d0 = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
    w1 = draw(st.integers(100_001, 2**20))
    w2 = draw(st.integers(40_000, (w1 - 1) // 2))
    edges = list(core["edges"]) + [(attach, sink), (d0, s), (s, x), (d0, x)]
    topo = strategies.build_topology(f"high extremes on {core['kind']} + sink + diamond", n + 3, edges)
    fast = st.one_of(st.integers(100_000_000_000, 999_999_999_999), st.integers(1_000_000_000_000, 4_000_000_000_000))
    params = [{"bandwidth_bps": draw(fast), "delay_ns": draw(st.integers(100_001, 5_000_000)),
               "buffer_bytes": draw(st.sampled_from((2**40, 4_000_000))), "weight": draw(st.integers(1, 3))} for _ in core["edges"]]
    bottleneck = draw(st.integers(10_000_000_000, 40_000_000_000))
    params.append({"bandwidth_bps": bottleneck, "delay_ns": draw(st.integers(0, 3_000)),
                   "buffer_bytes": draw(st.integers(1_000_000, 1_500_000)), "weight": 1})
    diamond = {"bandwidth_bps": draw(fast), "delay_ns": draw(st.integers(100_001, 1_000_000)), "buffer_bytes": 2**40}
    params += [{**diamond, "weight": w1}, {**diamond, "weight": w2}, {**diamond, "weight": w2}]
    mtu = draw(st.integers(9001, 65_535))
    senders = [node for node in range(n) if node != attach] or [attach]
    ids = _ids(draw, 6)
    flows = [{"id": ids[i], "src": draw(st.sampled_from(senders)) if len(senders) > 1 else senders[0], "dst": sink,
              "bytes": draw(st.integers(1_000_001, 3_000_000)), "start_ns": 0, "rate_bps": draw(fast)}
             for i in range(draw(st.integers(2, 3)))]  # an incast well past the bottleneck's megabyte buffer
    flows.append({"id": ids[4], "src": s, "dst": d0, "bytes": mtu * draw(st.integers(2, 5)), "start_ns": draw(st.integers(0, 5_000)),
                  "rate_bps": draw(fast)})  # a multiple of the MTU, along the 17-bit-weight detour
    flows.append({"id": ids[5], "src": sink, "dst": d0, "bytes": draw(st.integers(300_001, 9_000_000)), "start_ns": 0,
                  "rate_bps": draw(st.integers(1_000_000_000, bottleneck))})
    instance = strategies.assemble(topo, params, flows, [], mtu=mtu, reconvergence_ns=draw(st.integers(100_001, 2_000_000)),
                                   horizon_ns=draw(st.integers(5_000_000, 50_000_000)))
    return Case(topo["kind"] + f": mtu {mtu}, weights {w1} vs 2x{w2}", instance)


@st.composite
def clustered_events(draw, *, pattern: str) -> Case:
    """Link events in one of PATTERNS on the route of a flow whose packets keep crossing it, at line
    rate, until every route install of the pattern has happened (so each install shows)."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern(={pattern!r}) must be one of {', '.join(PATTERNS)}")
    topo = draw(st.one_of(strategies.fattrees(ks=(4,)), strategies.meshes(min_side=2, max_side=4),
                          strategies.random_connected(min_nodes=4, max_nodes=14, max_extra=8), strategies.rings(min_nodes=4, max_nodes=8)))
    link = {"bandwidth_bps": draw(st.sampled_from((1_000_000_000, 10_000_000_000, 2_500_000_001))),
            "delay_ns": draw(st.sampled_from((0, 500, 1_000))), "buffer_bytes": draw(st.sampled_from((30_000, 100_000))), "weight": 1}
    offsets, reconvergence = _pattern_timing(draw, pattern)
    span = max(offset for offset, _, _ in offsets) + reconvergence + 10_000
    # the smallest MTU whose packets cover the whole span within ~1,200 packets: dense traffic, bounded work
    mtu = next((m for m in (64, 256, 1500, 9000) if ser_ns(m, link["bandwidth_bps"]) * 1_200 >= 4 * span), 9000)
    link["buffer_bytes"] = max(link["buffer_bytes"], 8 * mtu)
    hop_ns = ser_ns(mtu, link["bandwidth_bps"]) + link["delay_ns"]
    hosts = topo["hosts"] if len(topo["hosts"]) >= 2 else list(range(len(topo["nodes"])))
    flows = draw(strategies.flows_for(endpoints=hosts, min_flows=2, max_flows=5, mtu=mtu, max_packets=20, max_start_ns=5_000))
    victim = {**flows[0], "start_ns": 0, "rate_bps": link["bandwidth_bps"]}
    others = [{**f, "src": f["src"] if f["src"] != victim["src"] else f["dst"]} for f in flows[1:]]
    others = [f for f in others if f["src"] != f["dst"]]
    instance = strategies.assemble(topo, [link] * len(topo["edges"]), [victim] + others, [], mtu=mtu,
                                   reconvergence_ns=reconvergence, horizon_ns=0)
    route = route_links(initial_route(instance, victim))
    index = draw(st.integers(0, len(route) - 1))
    here = route[index]
    touching = [(min(l["a"], l["b"]), max(l["a"], l["b"])) for l in instance["links"] if {l["a"], l["b"]} & set(here)]
    near = [l for l in route[max(0, index - 1):index + 2] if l != here] or [l for l in touching if l != here] or [here]
    other = near[draw(st.integers(0, len(near) - 1))]
    every = [(min(l["a"], l["b"]), max(l["a"], l["b"])) for l in instance["links"]]
    t = (index + draw(st.integers(1, 8))) * hop_ns + draw(st.integers(0, hop_ns))  # the victim's packets are on `here`
    if pattern == "at-an-arrival":  # the victim's first packet arrives over its first link at exactly this time
        here, t = route[0], ser_ns(mtu, link["bandwidth_bps"]) + link["delay_ns"]
    if pattern == "near-the-horizon":
        t = min(t, 300_000)  # early, so that this run's horizons also reach below every scenario's
    chosen = {"here": here, "other": other}
    events = [(t + offset, chosen[which] if which in chosen else every[draw(st.integers(0, len(every) - 1))], action)
              for offset, which, action in offsets]
    packets = min(3_000, -(-(t + span) // ser_ns(mtu, link["bandwidth_bps"])) + 2)
    instance["flows"][0]["bytes"] = packets * mtu - draw(st.sampled_from((0, 1, mtu // 2)))
    unique = {}
    for time_ns, (a, b), action in events:
        ends = (a, b) if draw(st.booleans()) else (b, a)
        unique.setdefault((a, b, time_ns), {"time_ns": time_ns, "a": ends[0], "b": ends[1], "action": action})
    instance["link_events"] = [unique[key] for key in sorted(unique)]
    last = max(e["time_ns"] for e in instance["link_events"])
    if pattern == "near-the-horizon":
        instance["horizon_ns"] = last + draw(st.integers(1, 1_000))
    else:
        instance["horizon_ns"] = draw(st.sampled_from((last + reconvergence, last + reconvergence + 1, t + span, t + span + 200_000)))
    if pattern == "storm" or draw(st.booleans()):
        instance = strategies.shuffled(instance, draw(st.integers(0, 2**32 - 1)))
    return Case(f"{pattern} events on {topo['kind']}, reconvergence {reconvergence} ns", instance)


def _pattern_timing(draw, pattern: str) -> tuple[list[tuple[int, str, str]], int]:
    """The pattern's events as (offset from the first, which link, action) and its reconvergence:
    `here` is a link of the victim's route, `other` one next to it, `any` any link."""
    if pattern == "flap":  # fail, recover under a microsecond later, fail again within 10 us; installs sooner than the recovery
        first, second = draw(st.integers(1, 1_000)), draw(st.integers(1, 10_000))
        return [(0, "here", "fail"), (first, "here", "recover"), (first + second, "here", "fail")], \
            draw(st.one_of(st.just(0), st.integers(0, first - 1)))
    if pattern == "adjacent":  # the neighbour fails within one (long) reconvergence interval
        gap = draw(st.integers(2_001, 50_000))  # (equal-time changes come from the everyday draws)
        return [(0, "here", "fail"), (gap, "other", "fail"), (gap + draw(st.integers(1, 20_000)), "here", "recover")], \
            draw(st.integers(max(gap + 1, 100_001), 300_000))
    if pattern == "no-op-between":  # a no-op whose install comes after, and so shows, a real failure
        gap = draw(st.integers(2_000, 20_000))
        return [(0, "any", "recover"), (gap, "here", "fail")], draw(st.integers(gap + 1, gap + 50_000))
    if pattern == "at-an-arrival":
        return [(0, "here", "fail"), (draw(st.integers(1, 5_000)), "here", "recover")], draw(st.integers(0, 20_000))
    if pattern == "near-the-horizon":
        return [(0, "here", "fail")], draw(st.integers(0, 50_000))
    offsets, clock = [], 0  # a storm: more events than any scenario, clusters and one long quiet gap
    for i in range(draw(st.integers(20, 28))):
        clock += draw(st.integers(60_001, 90_000)) if i == 9 else draw(st.one_of(st.integers(1, 1_000), st.integers(1_001, 8_000)))
        offsets.append((clock, "here" if i % 3 == 0 else "any", draw(st.sampled_from(("fail", "recover")))))
    return offsets, draw(st.one_of(st.just(0), st.integers(1, 1_000), st.integers(8_001, 200_000)))


@st.composite
def near_equal(draw) -> Case:
    """Bandwidths, rates, sizes and weights that differ by less than one part in a thousand."""
    topo = draw(st.one_of(strategies.rings(min_nodes=4, max_nodes=8), strategies.meshes(min_side=2, max_side=4),
                          strategies.equal_cost(max_width=3, max_layers=3), strategies.random_connected(min_nodes=4, max_nodes=10)))
    base = draw(st.integers(50_000_000, 3_000_000_000))
    near = st.integers(0, min(base // 1000, 999_999))
    weighted = draw(st.booleans())
    big_weight = draw(st.integers(10_000, 1_000_000))
    params = [{"bandwidth_bps": base + draw(near), "delay_ns": draw(st.sampled_from((0, 500))),
               "buffer_bytes": draw(st.integers(20_000, 200_000)), "weight": big_weight + draw(st.integers(0, 2)) if weighted else 1}
              for _ in topo["edges"]]
    mtu = draw(st.one_of(st.just(1500), st.integers(64, 9000)))
    n = len(topo["nodes"])
    ids = _ids(draw, 6)
    flows = []
    for i, fid in enumerate(ids[:draw(st.integers(2, 6))]):
        src = draw(st.integers(0, n - 1))
        dst = draw(st.integers(0, n - 1).filter(lambda x: x != src))
        below = draw(st.sampled_from((1, 2, 0))) if i % 2 == 0 else draw(st.integers(0, mtu - 1))
        flows.append({"id": fid, "src": src, "dst": dst, "bytes": mtu * draw(st.integers(1, 6)) - min(below, mtu - 1),
                      "start_ns": draw(st.integers(0, 20_000)), "rate_bps": base + draw(near)})
    if len(flows) >= 2:  # two flows one byte apart in size
        flows[1]["bytes"] = max(1, flows[0]["bytes"] + draw(st.sampled_from((-1, 1))))
    instance = strategies.assemble(topo, params, flows, [], mtu=mtu, reconvergence_ns=0, horizon_ns=draw(st.integers(1_000_000, 5_000_000)))
    return Case(f"near-equal parameters on {topo['kind']}" + (f", weights ~{big_weight}" if weighted else ""), instance)
