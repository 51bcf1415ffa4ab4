"""The demo queue still fits the current netsim, and each patch does what its `Expect:` says.

The queue is replayed as a session would: patch n goes onto a copy of the versions kept so far
(the patches expected to be kept). Correctness claims are checked on small instances; the
speed claims live in benchmarks/demo_patches.py. When netsim changes, this is the test that
says the demo queue needs refreshing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simopt.agents.base import Brief
from simopt.agents.demo import DEMO_PATCHES, demo_proposer
from simopt.agents.patches import parse_header, patch_queue
from simopt.engine import load_engine
from simopt.scenario import build_instance, load_scenario

REPO = Path(__file__).resolve().parents[1]
VERDICTS = {"keep", "discard", "scope_violation", "crash", "different_output", "guard_fail"}

SMALL_FATTREE = """
seed = 3
horizon_us = 150
[topology]
kind = "fattree"
k = 4
[links]
bandwidth_bps = 10_000_000_000
delay_ns = 500
buffer_bytes = 20_000
[traffic]
pattern = "permutation"
bytes = 30_000
start_ns = {dist = "uniform", min = 0, max = 20_000}
"""

FAILURES = """
[[link_events]]
time_us = 20
a = "a0_0"
b = "c0_0"
action = "fail"
[[link_events]]
time_us = 60
a = "a0_0"
b = "c0_0"
action = "recover"
"""

WEIGHTED_MESH = """
seed = 5
horizon_us = 150
[topology]
kind = "mesh"
rows = 4
cols = 5
[links]
bandwidth_bps = 1_000_000_000
delay_ns = 200
buffer_bytes = 9_000
weight = 2
[traffic]
pattern = "random_pairs"
count = 30
bytes = {dist = "choice", values = [1_500, 12_000]}
start_us = {dist = "uniform", min = 0, max = 50}
"""


def expectation(patch: Path) -> str:
    expect = parse_header(patch.read_text(encoding="utf-8")).expect
    assert expect, f"{patch.name} has no Expect: header"
    return expect


def changed_paths(patch: Path) -> list[str]:
    return [line.split()[2][2:] for line in patch.read_text(encoding="utf-8").splitlines()
            if line.startswith("diff --git ")]


def relabelled(instance: dict) -> dict:
    """The same network with the host ids rotated by one: what a FatTree-layout cheat gets wrong."""
    hosts = sorted(i for i, node in enumerate(instance["nodes"]) if node["kind"] == "host")
    assert hosts == list(range(len(hosts))), "the scenario builder no longer numbers hosts first"

    def new(node: int) -> int:
        return (node + 1) % len(hosts) if node < len(hosts) else node

    nodes = list(instance["nodes"])
    for old in range(len(nodes)):
        nodes[new(old)] = instance["nodes"][old]
    return {
        **instance,
        "nodes": nodes,
        "links": [{**link, "a": new(link["a"]), "b": new(link["b"])} for link in instance["links"]],
        "flows": [{**flow, "src": new(flow["src"]), "dst": new(flow["dst"])} for flow in instance["flows"]],
    }


def brief(n: int) -> Brief:
    return Brief(goal="demo", experiment=n, scenario="fattree", editable=("simopt/netsim/**",),
                 protected=("guards/**",), best_commit="0" * 40, best_speedup=1.0)


@pytest.fixture(scope="module")
def instances(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("scenarios")
    texts = {"fattree": SMALL_FATTREE, "fattree_failures": SMALL_FATTREE + FAILURES, "mesh": WEIGHTED_MESH}
    built = {}
    for name, text in texts.items():
        (folder / f"{name}.toml").write_text(text)
        built[name] = build_instance(load_scenario(folder / f"{name}.toml"))
    built["fattree_relabelled"] = relabelled(built["fattree"])
    return built


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> list[dict]:
    """Apply the queue as a session keeping exactly the `Expect: keep` patches would."""
    scratch = tmp_path_factory.mktemp("demo")
    kept = scratch / "v0"
    for part in ("simopt/netsim", "guards"):
        shutil.copytree(REPO / part, kept / part, ignore=shutil.ignore_patterns("__pycache__"))
    proposer = demo_proposer(kept)
    steps = [{"name": "original", "root": kept, "expect": "original"}]
    for n, patch in enumerate(proposer.queue, start=1):
        candidate = scratch / f"v{n}"
        shutil.copytree(kept, candidate)
        proposal = proposer.propose(brief(n), candidate)  # raises if the patch no longer applies
        steps.append({"name": patch.name, "root": candidate, "expect": expectation(patch),
                      "paths": changed_paths(patch), "description": proposal.description})
        if steps[-1]["expect"] == "keep":
            kept = candidate
    return steps


def run(step: dict, instance: dict) -> dict:
    engine = load_engine(step["root"], name=f"netsim_demo_{step['root'].name}")
    return engine.Simulation(instance).result()


def test_queue_is_in_the_package_and_shows_every_verdict():
    patches = patch_queue(DEMO_PATCHES)
    expected = [expectation(patch) for patch in patches]
    assert set(expected) <= VERDICTS
    assert set(expected) == VERDICTS
    assert expected.count("keep") >= 2
    assert all(patch.suffix == ".diff" for patch in patches)  # pyproject ships demo_patches/*.diff


def test_every_patch_applies_in_sequence_with_a_description(replay):
    assert len(replay) == len(patch_queue(DEMO_PATCHES)) + 1
    for step in replay[1:]:
        assert step["description"] != step["name"], f"{step['name']} lacks a Description: header"


def test_correct_patches_keep_every_digest(replay, instances):
    original = replay[0]
    for step in replay[1:]:
        if step["expect"] in ("keep", "discard", "guard_fail", "scope_violation"):
            for name in ("fattree", "fattree_failures", "mesh"):
                assert run(step, instances[name])["digest"] == run(original, instances[name])["digest"], \
                    f"{step['name']} changes the digest of the small {name}"


def test_the_cheat_is_exact_on_the_benchmark_layout_only(replay, instances):
    original = replay[0]
    cheats = [step for step in replay if step["expect"] == "guard_fail"]
    assert cheats
    for step in cheats:
        assert run(step, instances["fattree"])["digest"] == run(original, instances["fattree"])["digest"]
        try:
            wrong = run(step, instances["fattree_relabelled"])["digest"]
        except Exception:  # a wrong table may name a port that does not exist: caught as well
            continue
        assert wrong != run(original, instances["fattree_relabelled"])["digest"], \
            f"{step['name']} no longer breaks a relabelled FatTree: guards would not catch it"


def test_scope_violations_touch_a_guard_file(replay):
    for step in replay:
        if step["expect"] == "scope_violation":
            assert any(path.startswith("guards/") for path in step["paths"])
        elif step["expect"] != "original":
            assert all(path.startswith("simopt/netsim/") for path in step["paths"]), step["name"]


def test_the_crash_patch_crashes_and_the_output_change_changes_output(replay, instances):
    original = replay[0]
    for step in replay:
        if step["expect"] == "crash":
            with pytest.raises(Exception):
                run(step, instances["fattree"])
        if step["expect"] == "different_output":
            assert run(step, instances["fattree"])["digest"] != run(original, instances["fattree"])["digest"]
