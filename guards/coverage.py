"""Input-space coverage: the range of every instance feature the guards drew, against the scenarios'.

A feature maps an instance (docs/semantics.md §1) to a range (low, high), or to None where it is
undefined (the spacing of link events needs two events). The drawn range of a run is the union
of the ranges of every instance the guards checked; it *dominates* a scenario's range when it
reaches past it on both sides: strictly below its low end (or equal to the feature's floor, the
smallest value the spec allows, when the scenario sits on it) and strictly above its high end.
Everything here is a pure function of instances, so a run's report depends only on what it drew.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

Range = tuple[int, int]


def _spread(values: list[int]) -> Range | None:
    return (min(values), max(values)) if values else None


def _one(value: int) -> Range:
    return (value, value)


def _event_gaps(instance: dict[str, Any]) -> Range | None:
    times = sorted(event["time_ns"] for event in instance["link_events"])
    return _spread([later - earlier for earlier, later in zip(times, times[1:])])


def _flows_per_pair(instance: dict[str, Any]) -> Range | None:
    pairs = Counter((flow["src"], flow["dst"]) for flow in instance["flows"])
    return _spread(list(pairs.values()))


def _packets(instance: dict[str, Any]) -> Range:
    mtu = instance["mtu_bytes"]
    return _one(sum(-(-flow["bytes"] // mtu) for flow in instance["flows"]))


# name -> (feature, floor): the floor is the smallest value docs/semantics.md §1 allows.
FEATURES: dict[str, tuple[Callable[[dict[str, Any]], Range | None], int]] = {
    "nodes": (lambda i: _one(len(i["nodes"])), 0),
    "links": (lambda i: _one(len(i["links"])), 0),
    "flows": (lambda i: _one(len(i["flows"])), 0),
    "flows_per_pair": (_flows_per_pair, 1),
    "packets": (_packets, 0),
    "bandwidth_bps": (lambda i: _spread([l["bandwidth_bps"] for l in i["links"]]), 1),
    "delay_ns": (lambda i: _spread([l["delay_ns"] for l in i["links"]]), 0),
    "buffer_bytes": (lambda i: _spread([l["buffer_bytes"] for l in i["links"]]), 0),
    "weight": (lambda i: _spread([l["weight"] for l in i["links"]]), 1),
    "mtu_bytes": (lambda i: _one(i["mtu_bytes"]), 1),
    "flow_bytes": (lambda i: _spread([f["bytes"] for f in i["flows"]]), 1),
    "flow_rate_bps": (lambda i: _spread([f["rate_bps"] for f in i["flows"]]), 1),
    "flow_start_ns": (lambda i: _spread([f["start_ns"] for f in i["flows"]]), 0),
    "link_events": (lambda i: _one(len(i["link_events"])), 0),
    "link_event_gap_ns": (_event_gaps, 0),
    "reconvergence_ns": (lambda i: _one(i["reconvergence_ns"]), 0),
    "horizon_ns": (lambda i: _one(i["horizon_ns"]), 0),
}


def features(instance: dict[str, Any]) -> dict[str, Range | None]:
    """Every feature's range in one instance."""
    return {name: feature(instance) for name, (feature, _) in FEATURES.items()}


def merge(drawn: dict[str, list[int] | None], instance: dict[str, Any]) -> None:
    """Widen the drawn ranges (name -> [low, high] or None) by one more instance, in place."""
    for name, found in features(instance).items():
        if found is None:
            drawn.setdefault(name, None)
            continue
        current = drawn.get(name)
        drawn[name] = [min(current[0], found[0]), max(current[1], found[1])] if current else list(found)


def merged(one: dict[str, list[int] | None], other: dict[str, list[int] | None]) -> dict[str, list[int] | None]:
    """The ranges drawn by two runs together (a feature absent or undefined in both stays None)."""
    both = {}
    for name in one.keys() | other.keys():
        ranges = [found for found in (one.get(name), other.get(name)) if found]
        both[name] = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
    return both


def dominates(drawn: list[int] | None, scenario: Range | list[int] | None, floor: int) -> bool | None:
    """Whether the drawn range reaches past the scenario's on both sides (None: undefined there)."""
    if scenario is None:
        return None
    if drawn is None:
        return False
    low, high = scenario
    below = drawn[0] < low or drawn[0] == low == floor
    return below and drawn[1] > high


def report(drawn: dict[str, list[int] | None], scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per feature: the drawn range, each scenario's range and whether the drawn one dominates it."""
    rows = []
    for name, (feature, floor) in FEATURES.items():
        ranges = {scenario: feature(instance) for scenario, instance in sorted(scenarios.items())}
        verdicts = {scenario: dominates(drawn.get(name), found, floor) for scenario, found in ranges.items()}
        rows.append({"feature": name, "drawn": drawn.get(name), "floor": floor,
                     "scenarios": {s: list(r) if r else None for s, r in ranges.items()}, "dominated": verdicts})
    undominated = [f"{row['feature']} ({scenario})" for row in rows for scenario, ok in row["dominated"].items() if ok is False]
    return {"version": 1, "features": rows, "undominated": undominated}
