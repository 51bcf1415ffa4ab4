"""Topology, traffic and failure builders: sizes, degrees, connectivity, determinism, files."""

from __future__ import annotations

import random
from collections import Counter

import networkx as nx
import pytest

from simopt.workload import topology as topo
from simopt.workload.failures import random_failures
from simopt.workload.graphfile import read_graph
from simopt.workload.rng import component_rng, derive_seed
from simopt.workload.traffic import all_to_all, draw, incast, permutation, random_pairs


def degrees(t: topo.Topology) -> Counter:
    count = Counter()
    for link in t.links:
        count[link.a] += 1
        count[link.b] += 1
    return count


def as_graph(t: topo.Topology) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(len(t.nodes)))
    graph.add_edges_from((link.a, link.b) for link in t.links)
    return graph


def link_pairs(t: topo.Topology) -> list[tuple[int, int]]:
    return [(link.a, link.b) for link in t.links]


@pytest.mark.parametrize("k", [4, 6, 8])
def test_fattree_sizes_and_degrees(k):
    t = topo.fattree(k=k)
    hosts = t.hosts()
    assert len(hosts) == k**3 // 4
    assert len(t.nodes) - len(hosts) == 5 * k * k // 4
    assert len(t.links) == 3 * k**3 // 4
    deg = degrees(t)
    assert all(deg[i] == 1 for i in hosts)
    assert all(deg[i] == k for i in range(len(t.nodes)) if i not in set(hosts))
    assert nx.is_connected(as_graph(t))
    assert Counter(link.tier for link in t.links) == {"edge": k**3 // 4, "aggregation": k**3 // 4, "core": k**3 // 4}


def test_fattree_names_and_canonical_link_order():
    t = topo.fattree(k=4)
    names = [name for name, _ in t.nodes]
    assert names[0] == "h0_0_0" and "e3_1" in names and "a2_0" in names and names[-1] == "c1_1"
    assert len(set(names)) == len(names)
    assert link_pairs(t) == sorted(link_pairs(t)) and all(a < b for a, b in link_pairs(t))


@pytest.mark.parametrize("k", [2, 5, 7, 0, True, 4.0])
def test_fattree_rejects_odd_small_or_non_integer_k(k):
    with pytest.raises(ValueError, match=r"k\(=.*\) must be even and >= 4"):
        topo.fattree(k=k)


def test_mesh_degrees():
    t = topo.mesh(rows=4, cols=5)
    assert len(t.nodes) == 20 and len(t.links) == 4 * 4 + 5 * 3
    assert Counter(degrees(t).values()) == {2: 4, 3: 2 * (3 + 2), 4: 2 * 3}
    assert t.hosts() == list(range(20))


def test_torus_every_degree_four():
    t = topo.torus(rows=3, cols=4)
    assert len(t.links) == 2 * 12
    assert set(degrees(t).values()) == {4}
    with pytest.raises(ValueError, match=r"rows\(=2\)"):
        topo.torus(rows=2, cols=4)


def test_small_families():
    assert len(topo.ring(n=5).links) == 5 and set(degrees(topo.ring(n=5)).values()) == {2}
    assert len(topo.line(n=5).links) == 4
    star = topo.star(n=6)
    assert len(star.hosts()) == 6 and len(star.links) == 6
    tree = topo.tree(depth=3, fanout=2)
    assert len(tree.hosts()) == 8 and len(tree.nodes) == 15 and nx.is_tree(as_graph(tree))
    dumbbell = topo.dumbbell(hosts_per_side=3)
    assert len(dumbbell.hosts()) == 6 and [link.tier for link in dumbbell.links].count("bottleneck") == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda rng: topo.gnm(n=30, m=45, rng=rng),
        lambda rng: topo.random_regular(n=20, d=3, rng=rng),
        lambda rng: topo.random_regular(n=16, d=6, rng=rng),
        lambda rng: topo.watts_strogatz(n=30, k=4, p=0.3, rng=rng),
    ],
)
def test_random_graphs_connected_and_deterministic(build):
    for seed in range(5):
        first, again = build(random.Random(seed)), build(random.Random(seed))
        assert first == again
        assert nx.is_connected(as_graph(first))
    assert build(random.Random(1)) != build(random.Random(2))


def test_random_graph_shapes():
    assert len(topo.gnm(n=30, m=45, rng=random.Random(0)).links) == 45
    assert set(degrees(topo.random_regular(n=20, d=3, rng=random.Random(0))).values()) == {3}
    assert len(topo.watts_strogatz(n=30, k=4, p=0.3, rng=random.Random(0)).links) == 60
    with pytest.raises(ValueError, match=r"m\(=10\)"):
        topo.gnm(n=12, m=10, rng=random.Random(0))
    with pytest.raises(ValueError, match=r"n\(=7\)"):
        topo.random_regular(n=7, d=3, rng=random.Random(0))


def test_component_rngs_are_independent_and_seeded():
    assert derive_seed(1, "traffic") != derive_seed(1, "topology") != derive_seed(2, "topology")
    assert component_rng(5, "x").random() == component_rng(5, "x").random()


def test_permutation_is_a_derangement():
    endpoints = list(range(3, 40))
    for seed in range(20):
        pairs = permutation(endpoints, random.Random(seed))
        assert sorted(src for src, _ in pairs) == endpoints
        assert sorted(dst for _, dst in pairs) == endpoints
        assert all(src != dst for src, dst in pairs)


def test_all_to_all_random_pairs_and_incast():
    endpoints = [0, 2, 4, 6, 8]
    pairs = all_to_all(endpoints, random.Random(0))
    assert len(pairs) == 20 == len(set(pairs)) and all(src != dst for src, dst in pairs)
    pairs = random_pairs(endpoints, random.Random(0), count=50)
    assert len(pairs) == 50 and all(src != dst and {src, dst} <= set(endpoints) for src, dst in pairs)
    pairs = incast(endpoints, random.Random(0), senders=3, dst=4)
    assert len(pairs) == 3 == len({src for src, _ in pairs}) and {dst for _, dst in pairs} == {4}
    assert 4 not in {src for src, _ in pairs}
    assert len(incast(endpoints, random.Random(0))) == 4
    with pytest.raises(ValueError, match=r"senders\(=5\)"):
        incast(endpoints, random.Random(0), senders=5)


def test_draw_fixed_uniform_and_weighted_choice():
    assert draw(7, 3, random.Random(0)) == [7, 7, 7]
    values = draw({"dist": "uniform", "min": 10, "max": 20}, 500, random.Random(0))
    assert min(values) >= 10 and max(values) <= 20 and len(set(values)) == 11
    picks = Counter(draw({"dist": "choice", "values": [1, 2], "weights": [9, 1]}, 2000, random.Random(0)))
    assert set(picks) == {1, 2} and picks[1] > 5 * picks[2]
    assert set(draw({"dist": "choice", "values": [5, 6], "weights": None}, 100, random.Random(0))) == {5, 6}


def test_random_failures_pick_distinct_links_in_window():
    links = link_pairs(topo.fattree(k=4))
    events = random_failures(links, random.Random(3), count=5, start_ns=1000, end_ns=5000, down_ns=300)
    fails = [e for e in events if e["action"] == "fail"]
    recovers = {(e["a"], e["b"]): e["time_ns"] for e in events if e["action"] == "recover"}
    assert len(fails) == 5 == len({(e["a"], e["b"]) for e in fails})
    for event in fails:
        assert 1000 <= event["time_ns"] < 5000 and (event["a"], event["b"]) in links
        assert recovers[(event["a"], event["b"])] == event["time_ns"] + 300
    assert all(e["action"] == "fail" for e in random_failures(links, random.Random(3), count=2, start_ns=0, end_ns=9))
    with pytest.raises(ValueError, match=r"count\(=99\)"):
        random_failures(links[:3], random.Random(0), count=99, start_ns=0, end_ns=10)


def test_edge_list_file(tmp_path):
    path = tmp_path / "graph.txt"
    path.write_text("# a triangle and a pendant\nx y bandwidth_bps=40\ny z\nz x weight=3  # heavy\n\nq x\n")
    t = read_graph(path)
    assert [name for name, _ in t.nodes] == ["x", "y", "z", "q"]
    assert {(link.a, link.b): link.params for link in t.links} == {(0, 1): {"bandwidth_bps": 40}, (1, 2): {}, (0, 2): {"weight": 3}, (0, 3): {}}
    assert t.hosts() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "text, message",
    [("a\n", "line 1: expected"), ("a b\nb a\n", "line 2: a second link between the same two nodes"),
     ("a a\n", "itself"), ("a b colour=3\n", "line 1: field 3 is not a link attribute"),
     ("a b weight=x\n", "field 3 must be key=integer")],
)
def test_edge_list_errors(tmp_path, text, message):
    path = tmp_path / "bad.edges"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_graph(path)
    assert "colour" not in str(error.value) and "weight=x" not in str(error.value)  # never the file's contents


def test_graphml_file_with_kinds_and_link_attributes(tmp_path):
    graph = nx.Graph()
    graph.add_node("sw", kind="switch")
    graph.add_node("left", kind="host")
    graph.add_node("right")
    graph.add_edge("left", "sw", delay_ns=70)
    graph.add_edge("sw", "right")
    path = tmp_path / "g.graphml"
    nx.write_graphml(graph, path)
    t = read_graph(path)
    assert t.nodes == [("sw", "switch"), ("left", "host"), ("right", "host")]
    assert t.hosts() == [1, 2]
    assert {(link.a, link.b): link.params for link in t.links} == {(0, 1): {"delay_ns": 70}, (0, 2): {}}


def test_graphml_rejects_directed_and_bad_kind(tmp_path):
    path = tmp_path / "d.graphml"
    nx.write_graphml(nx.DiGraph([("a", "b")]), path)
    with pytest.raises(ValueError, match="undirected"):
        read_graph(path)
    graph = nx.Graph([("a", "b")])
    graph.nodes["a"]["kind"] = "router"
    nx.write_graphml(graph, path)
    with pytest.raises(ValueError, match=r"node 1 \(in file order\): its kind must be host or switch"):
        read_graph(path)
