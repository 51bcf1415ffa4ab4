"""What a run may answer: the strict schema of a result, and its digest computed by the harness.

An engine's answer is untrusted data. `check_result` accepts exactly the result document of
docs/semantics.md §9-11 for the instance that was sent (every field, its type, the relations
between fields), recomputes the totals and the digest itself, and refuses the rest: a broken
contract raises InvalidResult (the candidate is wrong), a digest that disagrees with the
outcomes it came with raises ForgedDigest (an honest engine computes it from them).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CAUSES = ("link_down", "link_failed", "no_route", "queue_full")
OUTCOME_FIELDS = frozenset({"id", "src", "dst", "bytes", "packets", "sent", "delivered", "delivered_bytes", "dropped",
                            "in_flight", "first_delivery_ns", "last_delivery_ns", "latency_sum_ns", "latency_max_ns",
                            "hop_sum"})
RESULT_FIELDS = frozenset({"version", "digest", "events", "packet_hops", "horizon_ns", "totals", "flows", "trace"})
TRACE_ARITY = {"inject": 5, "send": 6, "arrive": 6, "deliver": 5, "drop": 6}


class InvalidResult(Exception):
    """The answer is not a valid result for the instance: the engine breaks the contract."""


class ForgedDigest(Exception):
    """The answer's digest is not the digest of its own outcomes."""


def canonical_digest(flows: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the per-flow outcomes (docs/semantics.md §10)."""
    text = json.dumps({"version": 1, "flows": flows}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _count(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidResult(f"{what}(={value!r}) must be an integer >= 0")
    return value


def _check_outcome(outcome: Any, flow: dict[str, Any], mtu: int, horizon: int) -> None:
    where = f"flow {flow['id']}"
    if not isinstance(outcome, dict) or set(outcome) != OUTCOME_FIELDS:
        keys = sorted(outcome) if isinstance(outcome, dict) else type(outcome).__name__
        raise InvalidResult(f"{where}: the outcome must have exactly the fields of §9, got {keys}")
    for key in ("id", "src", "dst", "bytes"):
        if outcome[key] != flow[key] or type(outcome[key]) is not int:
            raise InvalidResult(f"{where}: {key}(={outcome[key]!r}) differs from the instance's {flow[key]!r}")
    packets = -(-flow["bytes"] // mtu)
    if outcome["packets"] != packets or type(outcome["packets"]) is not int:
        raise InvalidResult(f"{where}: packets(={outcome['packets']!r}) must be ceil(bytes / mtu) = {packets}")
    counts = {key: _count(outcome[key], f"{where}: {key}") for key in
              ("sent", "delivered", "delivered_bytes", "in_flight", "latency_sum_ns", "latency_max_ns", "hop_sum")}
    dropped = outcome["dropped"]
    if not isinstance(dropped, dict) or set(dropped) != set(CAUSES):
        raise InvalidResult(f"{where}: dropped must have exactly the causes {', '.join(CAUSES)}")
    lost = sum(_count(dropped[cause], f"{where}: dropped[{cause}]") for cause in CAUSES)
    if counts["sent"] > packets:
        raise InvalidResult(f"{where}: sent(={counts['sent']}) exceeds its {packets} packets")
    if counts["in_flight"] != counts["sent"] - counts["delivered"] - lost:
        raise InvalidResult(f"{where}: in_flight(={counts['in_flight']}) must be sent - delivered - dropped")
    if counts["delivered_bytes"] > flow["bytes"] or counts["hop_sum"] < counts["delivered"]:
        raise InvalidResult(f"{where}: delivered_bytes or hop_sum inconsistent with delivered(={counts['delivered']})")
    first, last = outcome["first_delivery_ns"], outcome["last_delivery_ns"]
    if counts["delivered"] == 0:
        if first is not None or last is not None or counts["latency_max_ns"] or counts["latency_sum_ns"]:
            raise InvalidResult(f"{where}: delivery times or latencies without a delivery")
        return
    if type(first) is not int or type(last) is not int or not flow["start_ns"] <= first <= last < horizon:
        raise InvalidResult(f"{where}: deliveries at {first!r}..{last!r} must lie in [start {flow['start_ns']}, "
                            f"horizon {horizon})")
    if counts["latency_max_ns"] > counts["latency_sum_ns"]:
        raise InvalidResult(f"{where}: latency_max_ns exceeds latency_sum_ns")


def _check_trace(trace: Any, horizon: int) -> None:
    if not isinstance(trace, list):
        raise InvalidResult("trace must be a list of records")
    for record in trace:
        if not isinstance(record, list) or not record or TRACE_ARITY.get(record[0]) != len(record):
            raise InvalidResult(f"trace record {str(record)[:80]} is not one of §11")
        if not all(type(value) is int for value in record[1:5]) or not 0 <= record[1] < horizon:
            raise InvalidResult(f"trace record {str(record)[:80]}: times and ids must be integers, the time before the horizon")


def totals_of(flows: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of §9, from the outcomes."""
    return {
        "flows": len(flows),
        "completed": sum(1 for f in flows if f["delivered"] == f["packets"]),
        "sent": sum(f["sent"] for f in flows),
        "delivered": sum(f["delivered"] for f in flows),
        "in_flight": sum(f["in_flight"] for f in flows),
        "dropped": {cause: sum(f["dropped"][cause] for f in flows) for cause in CAUSES},
    }


def check_result(instance: dict[str, Any], raw: Any, *, trace: bool) -> dict[str, Any]:
    """The validated result of a run of `instance`, its digest computed here; raises on anything else."""
    if not isinstance(raw, dict):
        raise InvalidResult(f"the result must be an object, got {type(raw).__name__}")
    extra, missing = set(raw) - RESULT_FIELDS, (RESULT_FIELDS - {"digest", "trace"}) - set(raw)
    if extra or missing:
        raise InvalidResult(f"the result has unknown fields {sorted(extra)} or lacks {sorted(missing)}")
    if raw["version"] != 1:
        raise InvalidResult(f"version(={raw['version']!r}) must be 1")
    horizon = instance["horizon_ns"]
    if raw["horizon_ns"] != horizon:
        raise InvalidResult(f"horizon_ns(={raw['horizon_ns']!r}) differs from the instance's {horizon}")
    _count(raw["events"], "events")
    _count(raw["packet_hops"], "packet_hops")
    flows = sorted(instance["flows"], key=lambda f: f["id"])
    outcomes = raw["flows"]
    if not isinstance(outcomes, list) or len(outcomes) != len(flows):
        raise InvalidResult(f"flows must list one outcome per flow of the instance ({len(flows)}), in ascending id")
    for outcome, flow in zip(outcomes, flows):
        _check_outcome(outcome, flow, instance["mtu_bytes"], horizon)
    if raw["totals"] != totals_of(outcomes):
        raise InvalidResult("totals do not add up from the per-flow outcomes")
    if trace != ("trace" in raw):
        raise InvalidResult("a trace must be returned exactly when one was asked for")
    if trace:
        _check_trace(raw["trace"], horizon)
    digest = canonical_digest(outcomes)
    if "digest" in raw and raw["digest"] != digest:
        raise ForgedDigest(f"the run reported digest {str(raw['digest'])[:16]}..., its own outcomes hash to {digest[:16]}...")
    return {**raw, "digest": digest}
