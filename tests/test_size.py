"""Instance sizes: estimated before building, refused past a documented limit with a way to raise it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simopt.errors import UserError
from simopt.scenario import available_scenarios, build_instance, load_scenario
from simopt.workload.size import Limits, instance_size, topology_size
from simopt.workload.topology import BUILDERS, gnm
from cli_helpers import run_cli

FATTREE = 'horizon_us = 100\n[topology]\nkind = "fattree"\nk = {k}\n[traffic]\npattern = "permutation"\nbytes = 1500\n'


def scenario(tmp_path: Path, text: str, name: str = "big.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, quantity", [
    (FATTREE.format(k=1000), "nodes"),
    ('horizon_us = 100\n[topology]\nkind = "gnm"\nn = 1_000_000_000\nm = 1_000_000_000\n', "nodes"),
    ('horizon_us = 100\n[topology]\nkind = "tree"\ndepth = 1_000_000_000\nfanout = 1_000_000_000\n', "nodes"),
    ('horizon_us = 100\n[topology]\nkind = "ring"\nn = 2000\n[traffic]\npattern = "all_to_all"\nbytes = 100\n', "flows"),
    ('horizon_us = 100\n[topology]\nkind = "ring"\nn = 10\n[traffic]\npattern = "random_pairs"\n'
     'count = 1_000_000_000_000\nbytes = 100\n', "flows"),
    ('horizon_ms = 100_000_000\n[topology]\nkind = "line"\nn = 2\n[traffic]\npattern = "permutation"\n'
     'bytes = 100_000_000_000\n', "packets"),
    ('horizon_ms = 100_000_000\n[topology]\nkind = "line"\nn = 300\n[traffic]\npattern = "permutation"\n'
     'bytes = 45_000_000\n', "events"),
    ('horizon_us = 100\n[topology]\nkind = "star"\nn = 9000\n[traffic]\npattern = "permutation"\nbytes = 100\n'
     '[random_failures]\ncount = 5\nstart_us = 1\nend_us = 50\n', "routes"),
])
def test_a_huge_instance_is_refused_quickly_with_its_size_and_the_way_up(tmp_path, text, quantity):
    path = scenario(tmp_path, text)
    code, out, err = run_cli("run", "--scenario", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"simopt: error: scenario big.toml: the instance is too big: " in err
    assert f" {quantity} (limit {getattr(Limits(), quantity):,}); if you mean it, raise the limit with --max-{quantity} " in err
    assert f"in the scenario's [limits] table" in err


def test_the_limit_can_be_raised_on_the_command_line_and_in_the_file(tmp_path):
    small = Limits(nodes=100)
    path = scenario(tmp_path, FATTREE.format(k=8))  # 208 nodes
    with pytest.raises(UserError, match=r"208 nodes \(limit 100\); .* --max-nodes 210 "):
        load_scenario(str(path), limits={"nodes": small.nodes})
    assert load_scenario(str(path), limits={"nodes": 208}).limits.nodes == 208
    code, _, err = run_cli("run", "--scenario", str(path), "--max-nodes", "100")
    assert code == 2 and "208 nodes (limit 100)" in err
    path.write_text(FATTREE.format(k=8) + "[limits]\nnodes = 100\n")
    with pytest.raises(UserError, match=r"208 nodes \(limit 100\)"):
        load_scenario(str(path))
    assert load_scenario(str(path), limits={"nodes": 1000}).limits.nodes == 1000  # the command line wins
    path.write_text(FATTREE.format(k=8) + "[limits]\nnodez = 100\n")
    with pytest.raises(UserError, match=r"unknown key limits.nodez"):
        load_scenario(str(path))
    code, _, err = run_cli("run", "--scenario", str(path), "--max-events", "0")
    assert code == 2 and "--max-events" in err


def test_shipped_scenarios_are_far_under_the_limits():
    limits = Limits()
    for name in available_scenarios():
        size = instance_size(build_instance(load_scenario(name)))
        for quantity in ("nodes", "links", "flows", "packets", "events", "routes"):
            assert getattr(size, quantity) * 20 <= getattr(limits, quantity), (name, quantity)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_guard_suite_instances_are_far_under_the_limits(data):
    from guards import strategies

    case = data.draw(strategies.cases(topology=strategies.topologies(thorough=True), max_flows=16))
    size = instance_size(case.instance)
    for quantity in ("nodes", "links", "flows", "packets", "events", "routes"):
        assert getattr(size, quantity) * 100 <= getattr(Limits(), quantity), quantity


@pytest.mark.parametrize("kind, params", [
    ("fattree", {"k": 6}), ("mesh", {"rows": 3, "cols": 5}), ("torus", {"rows": 3, "cols": 4}), ("ring", {"n": 7}),
    ("line", {"n": 5}), ("star", {"n": 6}), ("tree", {"depth": 3, "fanout": 3}), ("dumbbell", {"hosts_per_side": 4}),
    ("gnm", {"n": 20, "m": 40}), ("random_regular", {"n": 10, "d": 3}), ("watts_strogatz", {"n": 12, "k": 4, "p": 0.3}),
])
def test_topology_estimates_are_exact(kind, params):
    builder = BUILDERS[kind]
    extra = {"rng": random.Random(1)} if "rng" in builder.__code__.co_varnames else {}
    topology = builder(**params, **extra)
    assert topology_size(kind, params) == (len(topology.nodes), len(topology.links))


def _gnm_listing_every_pair(n, m, rng):
    """gnm as first written: lists all n(n-1)/2 pairs (quadratic memory)."""
    order = list(range(n))
    rng.shuffle(order)
    chosen = {tuple(sorted((order[i], order[rng.randrange(i)]))) for i in range(1, n)}
    rest = [(a, b) for a in range(n) for b in range(a + 1, n) if (a, b) not in chosen]
    chosen.update(rng.sample(rest, m - (n - 1)))
    return sorted(chosen)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 60), st.data(), st.integers(0, 2**32 - 1))
def test_gnm_without_listing_every_pair_builds_the_same_graph(n, data, seed):
    m = data.draw(st.integers(n - 1, n * (n - 1) // 2))
    built = gnm(n=n, m=m, rng=random.Random(seed))
    assert [(link.a, link.b) for link in built.links] == _gnm_listing_every_pair(n, m, random.Random(seed))


def test_a_large_sparse_gnm_is_cheap():
    built = gnm(n=50_000, m=60_000, rng=random.Random(3))  # 1.25e9 pairs: listing them would not fit
    assert len(built.links) == 60_000
