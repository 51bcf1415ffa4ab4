"""The example each guard is checking: a short readable summary for counterexamples, and the
input-space coverage of the run.

A guard calls `show(kind, instance)` at the start of every example. Hypothesis runs the shrunk
falsifying example last before reporting a failure, so the summary kept for a failed test is that
example. Every instance shown also widens the run's drawn feature ranges (guards/coverage.py),
except the fixed ones (`drawn=False`: a shipped scenario at its file seed is not a draw).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from guards import coverage

MAX_LISTED_LINKS = 60
MAX_LISTED_FLOWS = 12

_current: str | None = None
_last: dict[str, dict[str, Any]] = {}
_drawn: dict[str, list[int] | None] = {}


def start(test: str) -> None:
    """Mark the start of a test (called by the conftest)."""
    global _current
    _current = test
    _last.pop(test, None)


def current() -> str | None:
    """The test running now (None between tests)."""
    return _current


def show(kind: str, instance: dict[str, Any], *, drawn: bool = True, **details: Any) -> None:
    """Remember the example now being checked by the current test (and its features, if drawn)."""
    if _current is not None:
        _last[_current] = {**summarize(kind, instance), **details}
    if drawn:
        coverage.merge(_drawn, instance)


def drawn_ranges() -> dict[str, list[int] | None]:
    """Each feature's range over every drawn instance shown so far (guards/coverage.py)."""
    return dict(_drawn)


def last(test: str) -> dict[str, Any] | None:
    """The summary of the last example the test checked, or None."""
    return _last.get(test)


def summarize(kind: str, instance: dict[str, Any]) -> dict[str, Any]:
    """Topology kind and size, its edges (or a degree summary), link parameters, flows, failure events."""
    links = instance["links"]
    summary: dict[str, Any] = {"topology": kind, "nodes": len(instance["nodes"]), "links": len(links)}
    if len(links) <= MAX_LISTED_LINKS:
        summary["edges"] = " ".join(f"{l['a']}-{l['b']}" for l in links)
    else:
        degrees = Counter()
        for link in links:
            degrees[link["a"]] += 1
            degrees[link["b"]] += 1
        summary["degree_histogram"] = dict(sorted(Counter(degrees.values()).items()))
    params = Counter(
        f"{l['bandwidth_bps']}bps delay={l['delay_ns']}ns buffer={l['buffer_bytes']}B weight={l['weight']}" for l in links)
    summary["link_params"] = [f"{count}x {text}" for text, count in params.most_common(4)]
    if len(params) > 4:
        summary["link_params"].append(f"... {len(params) - 4} more kinds")
    flows = [f"#{f['id']} {f['src']}->{f['dst']} {f['bytes']}B at {f['start_ns']}ns rate={f['rate_bps']}bps"
             for f in instance["flows"]]
    summary["flows"] = flows[:MAX_LISTED_FLOWS] + ([f"... {len(flows) - MAX_LISTED_FLOWS} more"] if len(flows) > MAX_LISTED_FLOWS else [])
    summary["link_events"] = [f"{e['action']} {e['a']}-{e['b']} at {e['time_ns']}ns" for e in instance["link_events"]]
    for key in ("mtu_bytes", "reconvergence_ns", "horizon_ns"):
        summary[key] = instance[key]
    return summary
