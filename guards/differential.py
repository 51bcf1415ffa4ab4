"""The differential comparison every oracle guard makes: the target's run against the oracle's.

The oracle runs in its worker process (guards/oracle_pool.py) while the target runs here; then
digest, per-flow outcomes, event count (docs/semantics.md §7), version, horizon and totals,
packet-hops and the sorted trace must be equal.
"""

from __future__ import annotations

from typing import Any

from guards import oracle, oracle_pool, record
from guards.strategies import Case


def assert_same_as_oracle(engine, case: Case, *, trace: bool = True) -> dict[str, Any]:
    """Raise AssertionError naming the first difference between the target and the oracle; return the target's result."""
    record.show(case.kind, case.instance)
    expected = oracle_pool.expect(case.instance, trace=trace)
    got = engine.simulate(case.instance, trace=trace)
    assert_same_result(got, expected.result(), instance=case.instance)
    return got


def assert_same_result(got: dict[str, Any], expected: dict[str, Any], *, instance: dict[str, Any] | None = None) -> None:
    """Digest (with the first differing flows), event count, the result's other fields, packet-hops and trace."""
    if got["digest"] != expected["digest"]:
        wrong = [(o["id"], {k: (o[k], e[k]) for k in o if o[k] != e.get(k)})
                 for o, e in zip(got["flows"], expected["flows"]) if o != e]
        raise AssertionError(f"digest differs from the oracle's; flows (target, oracle): {wrong[:3]}")
    assert got["events"] == expected["events"], f"events {got['events']} != oracle {expected['events']} (docs/semantics.md §7)"
    for key in ("version", "horizon_ns", "totals"):
        assert got[key] == expected[key], f"{key} {got[key]} != oracle {expected[key]} (docs/architecture.md, engine API)"
    assert got["packet_hops"] == expected["packet_hops"], f"packet_hops {got['packet_hops']} != oracle {expected['packet_hops']}"
    if "trace_sha256" in expected and oracle_pool.trace_sha256(got["trace"]) != expected["trace_sha256"]:
        theirs = set(map(tuple, oracle.simulate(instance, trace=True)["trace"])) if instance is not None else set()
        mine = set(map(tuple, got["trace"]))
        raise AssertionError(f"trace differs from the oracle's: unexpected {sorted(mine - theirs)[:3]}, "
                             f"missing {sorted(theirs - mine)[:3]}")
