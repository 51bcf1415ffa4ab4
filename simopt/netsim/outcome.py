"""Per-flow outcomes and the digest: the canonical serialization of docs/semantics.md §9-10."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from .packets import DROP_CAUSES, Flow


def flow_outcome(flow: Flow) -> dict[str, Any]:
    in_flight = flow.sent - flow.delivered - sum(flow.dropped.values())
    return {
        "id": flow.id,
        "src": flow.src,
        "dst": flow.dst,
        "bytes": flow.bytes,
        "packets": flow.packets,
        "sent": flow.sent,
        "delivered": flow.delivered,
        "delivered_bytes": flow.delivered_bytes,
        "dropped": dict(flow.dropped),
        "in_flight": in_flight,
        "first_delivery_ns": flow.first_delivery_ns,
        "last_delivery_ns": flow.last_delivery_ns,
        "latency_sum_ns": flow.latency_sum_ns,
        "latency_max_ns": flow.latency_max_ns,
        "hop_sum": flow.hop_sum,
    }


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def digest(outcomes: list[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON of the outcomes, in ascending flow id."""
    return hashlib.sha256(canonical_json({"version": 1, "flows": outcomes})).hexdigest()


def totals(outcomes: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sums over all flows; a flow is completed when every one of its packets was delivered."""
    outcomes = list(outcomes)
    dropped = dict.fromkeys(DROP_CAUSES, 0)  # all four causes, with no flow at all too
    for outcome in outcomes:
        for cause, count in outcome["dropped"].items():
            dropped[cause] = dropped.get(cause, 0) + count
    return {
        "flows": len(outcomes),
        "completed": sum(o["delivered"] == o["packets"] for o in outcomes),
        "sent": sum(o["sent"] for o in outcomes),
        "delivered": sum(o["delivered"] for o in outcomes),
        "in_flight": sum(o["in_flight"] for o in outcomes),
        "dropped": dropped,
    }
