"""The input-space strategies (guards/big.py, guards/rare.py): valid instances whose rare case is
there by construction, and the checks and helpers built for them."""

from __future__ import annotations

import pytest
from hypothesis import find, given, settings

from guards import big, checks, oracle, profiles, rare
from guards.coverage import features
from guards.routes import initial_route, route_links
from simopt.scenario import validate_instance

settings.register_profile("input-space-tests", deadline=None, max_examples=8)
FEW = settings.get_profile("input-space-tests")


@pytest.mark.slow
@pytest.mark.parametrize("shape", big.SHAPES)
def test_big_instances_have_the_promised_size(shape):
    ref = big.reference()
    case = big.build(shape, 12345)
    validate_instance(case.instance)
    found = features(case.instance)
    assert found["link_events"][0] >= 1 and found["flows_per_pair"][1] >= 2 and found["weight"][1] >= 2
    if shape == "2x":
        assert 1.5 * ref["bench_nodes"] <= found["nodes"][0] <= 2 * ref["bench_nodes"]
        assert found["links"][0] >= 1.5 * ref["bench_links"] and found["packets"][0] > max(ref["most_packets"], 1.5 * ref["bench_packets"])
        assert found["flows"][0] > ref["most_flows"]
    else:
        assert ref["bench_nodes"] <= found["nodes"][0] <= 1.25 * ref["bench_nodes"]
    if shape == "fattree-1x":
        assert case.instance["nodes"][0]["name"] == "h0_0_0"  # the benchmark's own names: what a shortcut would key on


def test_big_instances_differ_by_seed_and_repeat_by_seed():
    assert big.build("fattree-1x", 1) == big.build("fattree-1x", 1)
    assert big.build("fattree-1x", 1).instance["flows"] != big.build("fattree-1x", 2).instance["flows"]
    with pytest.raises(ValueError, match="shape"):
        big.build("3x", 1)


def test_big_failures_sit_on_traffic():
    instance = big.build("fattree-1x", 7).instance
    used = {link for flow in instance["flows"] for link in route_links(initial_route(instance, flow))}
    assert any((min(e["a"], e["b"]), max(e["a"], e["b"])) in used for e in instance["link_events"])


@settings(FEW)
@given(rare.extremes(side="low"))
def test_low_extremes(case):
    validate_instance(case.instance)
    found = features(case.instance)
    assert found["mtu_bytes"][0] < 64 and found["bandwidth_bps"][0] < 100_000 and found["buffer_bytes"][0] == 0
    assert found["delay_ns"][0] <= 1 and found["flow_bytes"][0] == 1 and found["reconvergence_ns"] == (0, 0)
    assert max(-(-f["bytes"] // case.instance["mtu_bytes"]) for f in case.instance["flows"]) > 1000


@settings(FEW)
@given(rare.extremes(side="high"))
def test_high_extremes(case):
    validate_instance(case.instance)
    found = features(case.instance)
    assert found["mtu_bytes"][0] > 9000 and found["bandwidth_bps"][1] >= 100_000_000_000
    assert found["delay_ns"][1] > 100_000 and found["buffer_bytes"][1] >= 1_000_000 and found["weight"][1] > 65_535
    assert found["flow_bytes"][1] > 1_000_000 and found["reconvergence_ns"][0] > 100_000
    assert any(f["bytes"] % case.instance["mtu_bytes"] == 0 for f in case.instance["flows"])


@pytest.mark.parametrize("pattern", rare.PATTERNS)
def test_clustered_events(pattern):
    @settings(FEW)
    @given(rare.clustered_events(pattern=pattern))
    def check(case):
        validate_instance(case.instance)
        times = sorted(e["time_ns"] for e in case.instance["link_events"])
        assert times
        if pattern == "storm":
            assert len(times) > 17 and max(b - a for a, b in zip(times, times[1:])) > 60_000
        if pattern == "near-the-horizon":
            assert 0 < case.instance["horizon_ns"] - times[-1] <= 1_000
        if pattern == "at-an-arrival":
            victim = min(case.instance["flows"], key=lambda f: f["start_ns"] or -1)
            assert victim["start_ns"] == 0

    check()


def test_a_failure_at_an_arrival_drops_the_arriving_packet():
    @settings(FEW)
    @given(rare.clustered_events(pattern="at-an-arrival"))
    def check(case):
        result = oracle.simulate(case.instance, trace=True)
        first = min(case.instance["link_events"], key=lambda e: e["time_ns"])
        if first["time_ns"] < case.instance["horizon_ns"]:
            assert any(r[0] == "drop" and r[1] == first["time_ns"] and r[5] == "link_failed" for r in result["trace"])

    check()


@settings(FEW)
@given(rare.near_equal())
def test_near_equal(case):
    validate_instance(case.instance)
    bandwidths = sorted(l["bandwidth_bps"] for l in case.instance["links"])
    assert bandwidths[-1] - bandwidths[0] <= bandwidths[0] // 1000
    sizes = [f["bytes"] for f in case.instance["flows"]]
    assert abs(sizes[0] - sizes[1]) <= 1


def test_unknown_side_and_pattern_are_refused():
    with pytest.raises(ValueError, match="side"):
        find(rare.extremes(side="middle"), lambda _: True)
    with pytest.raises(ValueError, match="pattern"):
        find(rare.clustered_events(pattern="rain"), lambda _: True)


def test_event_count_follows_the_spec_formula():
    links = [{"a": 0, "b": 1, "bandwidth_bps": 10**9, "delay_ns": 100, "buffer_bytes": 10**6, "weight": 1},
             {"a": 1, "b": 2, "bandwidth_bps": 10**9, "delay_ns": 100, "buffer_bytes": 10**6, "weight": 1}]
    instance = {"version": 1, "nodes": [{"name": f"n{i}", "kind": "host"} for i in range(3)], "links": links,
                "flows": [{"id": 1, "src": 0, "dst": 2, "bytes": 4000, "start_ns": 0, "rate_bps": 10**9}],
                "link_events": [{"time_ns": 5, "a": 1, "b": 2, "action": "recover"},  # a no-op still counts, with its install
                                {"time_ns": 90_000, "a": 0, "b": 1, "action": "fail"}],  # its install falls after the horizon
                "mtu_bytes": 1500, "reconvergence_ns": 20_000, "horizon_ns": 100_000}
    result = oracle.simulate(instance, trace=True)
    assert result["events"] == 3 + 6 + 6 + 2 + 1  # injections, sends, arrivals, link events, installs
    checks.check_event_count(instance, result)
    with pytest.raises(AssertionError, match="route installs"):
        checks.check_event_count(instance, {**result, "events": result["events"] - 1})


def test_salted_seeds_depend_on_the_run_seed(monkeypatch):
    monkeypatch.setattr(profiles, "_run_seed", 0)
    profiles.set_run_seed("12")
    first = profiles.salted(0)
    profiles.set_run_seed("13")
    assert profiles.salted(0) != first
    profiles.set_run_seed("not a number")
    assert profiles.salted(0) == profiles.salted(0)


def test_oracle_pool_matches_the_oracle():
    from guards import oracle_pool

    instance = big.build("fattree-1x", 3).instance
    instance = {**instance, "horizon_ns": 40_000}
    got = oracle_pool.expect(instance, trace=True, cuts=(10_000, 5_000, 30_000)).result()
    sim = oracle.Simulation(instance, trace=True)
    slices = []
    for cut in (10_000, 5_000, 30_000):
        sim.run(cut)
        slices.append((sim.now, sim.events))
    expected = sim.result()
    assert got["digest"] == expected["digest"] and got["events"] == expected["events"]
    assert got["slices"] == slices and slices[1][0] == 10_000 and got["now"] == 40_000
    assert got["trace_sha256"] == oracle_pool.trace_sha256(list(reversed(expected["trace"]))) and "trace" not in got


def test_a_trace_that_differs_from_the_oracles_is_named():
    from guards import oracle_pool
    from guards.differential import assert_same_result

    instance = big.build("fattree-1x", 4).instance
    instance = {**instance, "horizon_ns": 20_000}
    got = oracle.simulate(instance, trace=True)
    expected = oracle_pool.run_oracle(instance, trace=True)
    assert_same_result(got, expected, instance=instance)
    record = next(r for r in got["trace"] if r[0] == "send")
    forged = {**got, "trace": [r for r in got["trace"] if r is not record] + [[*record[:5], record[5] + 1]]}
    with pytest.raises(AssertionError, match="trace differs.*unexpected.*missing"):
        assert_same_result(forged, expected, instance=instance)
    with pytest.raises(AssertionError, match="events"):
        assert_same_result({**got, "events": got["events"] + 1}, expected)
