"""Input-space coverage (guards/coverage.py, `simopt guard --coverage`): the drawn feature ranges
of a run against the shipped scenarios', and the standard profile dominating every scenario."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import simopt.guard
from cli_helpers import run_cli
from guards import coverage
from simopt.commands.guard import format_coverage
from simopt.guard import run_guards

REPO = Path(__file__).resolve().parents[1]


def instance(*, nodes=3, bandwidths=(10**9, 10**9), events=(), flows=((0, 1, 3000),), mtu=1500) -> dict:
    links = [{"a": i, "b": i + 1, "bandwidth_bps": bw, "delay_ns": 100 * i, "buffer_bytes": 1000 + i, "weight": 1 + i}
             for i, bw in enumerate(bandwidths)]
    return {"version": 1, "nodes": [{"name": f"n{i}", "kind": "host"} for i in range(nodes)], "links": links,
            "flows": [{"id": i, "src": s, "dst": d, "bytes": b, "start_ns": 10 * i, "rate_bps": 10**9} for i, (s, d, b) in enumerate(flows)],
            "link_events": [{"time_ns": t, "a": 0, "b": 1, "action": "fail"} for t in events],
            "mtu_bytes": mtu, "reconvergence_ns": 0, "horizon_ns": 5000}


def test_features_of_one_instance():
    found = coverage.features(instance(flows=((0, 1, 3000), (0, 1, 1), (1, 2, 10)), events=(5, 25, 30)))
    assert found["nodes"] == (3, 3) and found["links"] == (2, 2) and found["flows"] == (3, 3)
    assert found["flows_per_pair"] == (1, 2) and found["packets"] == (4, 4) and found["flow_bytes"] == (1, 3000)
    assert found["delay_ns"] == (0, 100) and found["weight"] == (1, 2) and found["link_event_gap_ns"] == (5, 20)
    assert coverage.features(instance())["link_event_gap_ns"] is None


def test_merge_widens_ranges_and_keeps_undefined_features():
    drawn = {}
    coverage.merge(drawn, instance(bandwidths=(5, 10**9)))
    coverage.merge(drawn, instance(nodes=4, bandwidths=(10**9, 10**9, 7 * 10**12), events=(0, 1)))
    assert drawn["bandwidth_bps"] == [5, 7 * 10**12] and drawn["nodes"] == [3, 4] and drawn["link_event_gap_ns"] == [1, 1]


@pytest.mark.parametrize("drawn, scenario, floor, verdict", [
    ([1, 10], (2, 9), 0, True),
    ([2, 10], (2, 9), 0, False),  # reaches the low end, not past it
    ([1, 9], (2, 9), 0, False),   # reaches the high end, not past it
    ([1, 10], (1, 9), 1, True),   # nothing lies below the floor
    ([1, 10], None, 0, None),     # undefined in the scenario: nothing to dominate
    (None, (2, 9), 0, False),     # never drawn
])
def test_dominance_reaches_past_both_ends(drawn, scenario, floor, verdict):
    assert coverage.dominates(drawn, scenario, floor) is verdict


def test_report_names_every_scenario_not_dominated():
    drawn = {}
    for case in (instance(nodes=2, bandwidths=(1,)), instance(nodes=9, bandwidths=(10**9,) * 8)):
        coverage.merge(drawn, case)
    report = coverage.report(drawn, {"small": instance(nodes=3), "big": instance(nodes=9, bandwidths=(10**9,) * 8)})
    rows = {row["feature"]: row for row in report["features"]}
    assert rows["nodes"]["dominated"] == {"big": False, "small": True}
    assert "nodes (big)" in report["undominated"] and "nodes (small)" not in report["undominated"]
    lines = format_coverage(report)
    assert any(line.split()[:1] == ["nodes"] and "9!" in line for line in lines)
    assert lines[-1].startswith("coverage: NOT dominated: ") and "nodes (big)" in lines[-1]


HOLDOUT = '''
from hypothesis import given, settings, strategies as st
from guards import record, strategies

LINK = {"bandwidth_bps": 10**9, "delay_ns": 0, "buffer_bytes": 1500, "weight": 1}

@settings(max_examples=3)
@given(strategies.rings(max_nodes=8))
def test_shows_rings(engine, ring):
    record.show(ring["kind"], strategies.assemble(ring, [LINK] * len(ring["edges"]), [], [], mtu=1500, reconvergence_ns=0, horizon_ns=0))
'''


def test_cli_coverage_prints_every_feature_beside_every_scenario(tmp_path, monkeypatch):
    (tmp_path / "holdout").mkdir()
    (tmp_path / "holdout" / "test_holdout.py").write_text(textwrap.dedent(HOLDOUT), encoding="utf-8")
    monkeypatch.setattr(simopt.guard, "GUARDS_DIR", tmp_path / "holdout")
    code, out, _ = run_cli("guard", "--seed", "5", "--profile", "quick", "--coverage")
    assert code == 0, out
    table = out[out.index("coverage: feature ranges"):].splitlines()
    assert table[1].split()[:3] == ["feature", "drawn", "dumbbell"] and "torus" in table[1]
    assert {line.split()[0] for line in table[2:-1]} == set(coverage.FEATURES)
    assert "NOT dominated" in table[-1] and "flows (torus)" in table[-1]  # a few rings dominate nothing


@pytest.mark.slow
def test_standard_profile_dominates_every_shipped_scenario():
    report = run_guards(REPO, profile="standard")
    assert report["failed"] == 0, report["failures"]
    assert report["coverage"]["undominated"] == [], (
        f"seed {report['seed']}: the standard profile's draws do not reach past {report['coverage']['undominated']}")
