"""Scenario loading and instance building: shipped scenarios, options, determinism, validation."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest

from simopt.errors import UserError
from simopt.scenario import available_scenarios, build_instance, load_scenario, validate_instance

SHIPPED = ["dumbbell", "fattree", "fattree-failures", "mesh", "random", "torus"]


def write(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_scenarios_exist_and_build():
    assert set(SHIPPED) <= set(available_scenarios())
    for name in SHIPPED:
        scenario = load_scenario(name)
        instance = build_instance(scenario)
        validate_instance(instance)
        assert scenario.name == name and instance["flows"] and instance["horizon_ns"] > 0
        assert scenario.path.read_text().startswith("#"), f"{name} must say what it stresses"


def test_fattree_scenario_shape():
    instance = build_instance(load_scenario("fattree"))
    assert len(instance["nodes"]) == 208 and len(instance["links"]) == 384
    hosts = [i for i, node in enumerate(instance["nodes"]) if node["kind"] == "host"]
    assert sorted(flow["src"] for flow in instance["flows"]) == hosts
    assert sorted(flow["dst"] for flow in instance["flows"]) == hosts


def test_failure_scenario_has_fail_and_recover_events():
    events = build_instance(load_scenario("fattree-failures"))["link_events"]
    actions = {event["action"] for event in events}
    assert actions == {"fail", "recover"}
    assert events == sorted(events, key=lambda e: (e["time_ns"], e["a"], e["b"]))


def test_same_seed_same_instance_and_seed_override():
    first = build_instance(load_scenario("random"))
    assert build_instance(load_scenario("random")) == first
    assert load_scenario("random", seed=99).seed == 99
    other = build_instance(load_scenario("random", seed=99))
    assert other != first and other["nodes"] == first["nodes"]


def test_instance_identical_across_processes():
    script = "import json, sys; from simopt.scenario import *; print(json.dumps(build_instance(load_scenario(sys.argv[1])), sort_keys=True))"
    for name in ("fattree-failures", "random"):
        outputs = {subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True, check=True).stdout for _ in range(2)}
        assert len(outputs) == 1
        assert json.loads(outputs.pop()) == build_instance(load_scenario(name))


def test_times_units_tiers_explicit_flows_and_rates(tmp_path):
    path = write(
        tmp_path,
        """
        seed = 1
        horizon_ms = 2
        reconvergence_us = 7
        [topology]
        kind = "fattree"
        k = 4
        [links]
        bandwidth_bps = 1_000
        [links.edge]
        bandwidth_bps = 5_000
        [traffic]
        pattern = "incast"
        dst = "h1_0_0"
        senders = 3
        bytes = 100
        start_us = {dist = "uniform", min = 1, max = 2}
        [[flows]]
        src = "c0_0"
        dst = "h0_0_0"
        bytes = 9
        [[flows]]
        src = "h0_0_0"
        dst = "h3_1_1"
        bytes = 10
        start_us = 3
        rate_bps = 77
        [[link_events]]
        time_ns = 5
        a = "e0_0"
        b = "h0_0_1"
        action = "fail"
        """,
    )
    instance = build_instance(load_scenario(path))
    names = [node["name"] for node in instance["nodes"]]
    assert instance["horizon_ns"] == 2_000_000 and instance["reconvergence_ns"] == 7_000
    edge_links = [link for link in instance["links"] if names[link["a"]].startswith("h")]
    assert {link["bandwidth_bps"] for link in edge_links} == {5_000} and len(edge_links) == 16
    assert {link["bandwidth_bps"] for link in instance["links"] if link not in edge_links} == {1_000}
    incast_flows, explicit = instance["flows"][:3], instance["flows"][3:]
    assert {names[flow["dst"]] for flow in incast_flows} == {"h1_0_0"}
    assert all(1_000 <= flow["start_ns"] <= 2_000 and flow["rate_bps"] == 5_000 for flow in incast_flows)
    assert [flow["id"] for flow in instance["flows"]] == [0, 1, 2, 3, 4]
    assert explicit[0]["rate_bps"] == 1_000 and explicit[0]["start_ns"] == 0  # a core switch's line rate
    assert explicit[1]["rate_bps"] == 77 and explicit[1]["start_ns"] == 3_000
    event = instance["link_events"][0]
    assert {names[event["a"]], names[event["b"]]} == {"e0_0", "h0_0_1"} and event["a"] < event["b"]


def test_line_rate_is_the_fastest_link_of_the_source(tmp_path):
    (tmp_path / "g.edges").write_text("a b bandwidth_bps=100\na c bandwidth_bps=300\nb c\n")
    path = write(
        tmp_path,
        """
        horizon_ns = 1000
        [topology]
        kind = "file"
        path = "g.edges"
        [links]
        bandwidth_bps = 200
        [traffic]
        pattern = "all_to_all"
        bytes = 10
        """,
    )
    rates = {flow["src"]: flow["rate_bps"] for flow in build_instance(load_scenario(path))["flows"]}
    assert rates == {0: 300, 1: 200, 2: 300}


def test_disconnected_graph_is_not_an_error(tmp_path):
    (tmp_path / "two.edges").write_text("a b\nc d\n")
    path = write(tmp_path, 'horizon_ns = 10\n[topology]\nkind = "file"\npath = "two.edges"\n[traffic]\npattern = "permutation"\nbytes = 5\n')
    assert len(build_instance(load_scenario(path))["flows"]) == 4


def test_random_failures_restricted_to_a_tier(tmp_path):
    path = write(
        tmp_path,
        """
        horizon_ns = 100_000
        [topology]
        kind = "fattree"
        k = 4
        [random_failures]
        count = 3
        start_ns = 10
        end_ns = 20
        tier = "core"
        """,
    )
    instance = build_instance(load_scenario(path))
    names = [node["name"] for node in instance["nodes"]]
    assert len(instance["link_events"]) == 3
    assert all({names[e["a"]][0], names[e["b"]][0]} == {"a", "c"} for e in instance["link_events"])


@pytest.mark.parametrize(
    "body, message",
    [
        ('horizon_ns = 1\n[topology]\nkind = "fattree"\nk = 7\n', r"topology\.k\(=7\) must be even and >= 4"),
        ('horizon_ns = 1\n[topology]\nkind = "hypercube"\n', r"topology\.kind\(='hypercube'\) must be one of dumbbell, fattree"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[links]\nbandwidth_bps = 0\n', r"links\.bandwidth_bps\(=0\) must be an integer >= 1"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[links]\ndelay_ns = -3\n', r"links\.delay_ns\(=-3\) must be an integer >= 0"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[[flows]]\nsrc = "n0"\ndst = "h7"\nbytes = 1\n', r"flows\[0\]\.dst\(='h7'\) is not a node"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\nsize = 3\n', r"unknown key topology\.size for kind ring \(expected one of kind, n\)"),
        ('horizon_ns = 1\nhorizn_us = 3\n[topology]\nkind = "ring"\nn = 4\n', r"unknown key horizn_us"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[links]\nbandwith_bps = 3\n', r"unknown key links\.bandwith_bps"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[links.core]\nweight = 2\n', r"unknown key links\.core"),
        ('horizon_ns = 1.5\n[topology]\nkind = "ring"\nn = 4\n', r"horizon_ns\(=1\.5\) must be an integer"),
        ('horizon_ns = 1\nhorizon_us = 1\n[topology]\nkind = "ring"\nn = 4\n', r"only one of horizon_ns, horizon_us"),
        ('[topology]\nkind = "ring"\nn = 4\n', r"horizon_ns is required"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\n', r"topology\.n is required for kind ring"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[traffic]\npattern = "random_pairs"\nbytes = 1\n', r"traffic\.count is required for pattern random_pairs"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[traffic]\npattern = "permutation"\nbytes = {dist = "zipf"}\n', r"traffic\.bytes\.dist\(='zipf'\)"),
        ('horizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n[[link_events]]\ntime_ns = 1\na = "n0"\nb = "n2"\naction = "fail"\n', r"no link between 'n0' and 'n2'"),
        ('horizon_ns = 1\n[topology\n', r"invalid TOML: .*line 2"),
        ('seed = -1\nhorizon_ns = 1\n[topology]\nkind = "ring"\nn = 4\n', r"seed\(=-1\)"),
    ],
)
def test_bad_scenarios_raise_one_line_user_errors(tmp_path, body, message):
    path = write(tmp_path, body, "bad.toml")
    with pytest.raises(UserError, match=message) as info:
        load_scenario(path)
    assert str(info.value).startswith("scenario bad.toml: ") and "\n" not in str(info.value)


def test_unknown_scenario_lists_available_names():
    with pytest.raises(UserError, match=r"unknown scenario 'fatree' \(available: .*fattree, fattree-failures.*\)"):
        load_scenario("fatree")


def test_missing_scenario_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_scenario(tmp_path / "nope.toml")


def test_repo_argument_selects_the_scenarios_folder(tmp_path):
    (tmp_path / "scenarios").mkdir()
    write(tmp_path / "scenarios", 'horizon_ns = 5\n[topology]\nkind = "line"\nn = 2\n', "tiny.toml")
    assert available_scenarios(tmp_path) == ["tiny"]
    assert load_scenario("tiny", repo=tmp_path).name == "tiny"


def valid_instance() -> dict:
    return {
        "version": 1,
        "nodes": [{"name": "a", "kind": "host"}, {"name": "b", "kind": "switch"}, {"name": "c", "kind": "host"}],
        "links": [{"a": 0, "b": 1, "bandwidth_bps": 10, "delay_ns": 0, "buffer_bytes": 0, "weight": 1}, {"a": 2, "b": 1, "bandwidth_bps": 10, "delay_ns": 5, "buffer_bytes": 9, "weight": 2}],
        "flows": [{"id": 3, "src": 0, "dst": 2, "bytes": 1, "start_ns": 0, "rate_bps": 1}],
        "link_events": [{"time_ns": 0, "a": 1, "b": 0, "action": "fail"}],
        "mtu_bytes": 1,
        "reconvergence_ns": 0,
        "horizon_ns": 0,
    }


def test_validate_instance_accepts_the_minimum_values():
    validate_instance(valid_instance())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda i: i.update(version=2), r"version\(=2\)"),
        (lambda i: i.update(extra=1), r"unknown keys \['extra'\]"),
        (lambda i: i["nodes"][0].update(kind="router"), r"nodes\[0\]\.kind"),
        (lambda i: i["links"][0].update(b=0), r"links\[0\]: a\(=0\) must differ"),
        (lambda i: i["links"][1].update(a=0), r"a second link"),
        (lambda i: i["links"][0].update(bandwidth_bps=0), r"links\[0\]\.bandwidth_bps\(=0\)"),
        (lambda i: i["links"][0].update(delay_ns=-1), r"links\[0\]\.delay_ns\(=-1\)"),
        (lambda i: i["links"][0].update(weight=0), r"links\[0\]\.weight\(=0\)"),
        (lambda i: i["links"][0].update(b=3), r"links\[0\]\.b\(=3\) must be a node id"),
        (lambda i: i["flows"][0].update(dst=0), r"src\(=0\) must differ"),
        (lambda i: i["flows"].append(dict(i["flows"][0])), r"flows\[1\]\.id\(=3\) is not unique"),
        (lambda i: i["flows"][0].update(bytes=0), r"flows\[0\]\.bytes\(=0\)"),
        (lambda i: i["flows"][0].update(id=2**32), r"flows\[0\]\.id\(=4294967296\) must be below 2\^32"),
        (lambda i: i["flows"][0].update(bytes=2**32 * i["mtu_bytes"] + 1), r"more than 2\^32 packets"),
        (lambda i: i["flows"][0].update(start_ns=1.0), r"flows\[0\]\.start_ns\(=1\.0\)"),
        (lambda i: i["link_events"][0].update(a=2), r"no link between nodes 0 and 2"),
        (lambda i: i["link_events"][0].update(action="cut"), r"action\(='cut'\)"),
        (lambda i: i["link_events"].append({"time_ns": 0, "a": 0, "b": 1, "action": "recover"}), r"a second event"),
        (lambda i: i.update(mtu_bytes=0), r"mtu_bytes\(=0\)"),
        (lambda i: i.update(horizon_ns=True), r"horizon_ns\(=True\)"),
    ],
)
def test_validate_instance_names_the_broken_value(mutate, message):
    instance = copy.deepcopy(valid_instance())
    mutate(instance)
    with pytest.raises(ValueError, match=message):
        validate_instance(instance)


def test_a_scenario_that_is_not_utf8_or_nested_too_deeply_is_one_line(tmp_path):
    from cli_helpers import run_cli

    binary = tmp_path / "bin.toml"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    code, _, err = run_cli("run", "--scenario", str(binary))
    assert code == 2 and err == "simopt: error: scenario bin.toml: not UTF-8 text (byte 0x80 at offset 0): a scenario is a TOML file\n"
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    code, _, err = run_cli("run", "--scenario", str(deep))
    assert code == 2 and err == "simopt: error: scenario deep.toml: its tables or arrays are nested too deeply\n"


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../etc/shadow", "../outside.txt", "link.txt", "sub/../../outside.txt"])
def test_a_graph_file_must_sit_in_the_scenario_folder(tmp_path, path):
    from cli_helpers import run_cli

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    scenario = folder / "file.toml"
    scenario.write_text(f'horizon_us = 10\n[topology]\nkind = "file"\npath = "{path}"\n')
    code, _, err = run_cli("run", "--scenario", str(scenario))
    assert code == 2 and "must stay inside the scenario's folder" in err and "root:" not in err


def test_graph_file_errors_never_echo_its_contents(tmp_path):
    from cli_helpers import run_cli

    (tmp_path / "g.txt").write_text("secret-token-1234\n")
    scenario = tmp_path / "file.toml"
    scenario.write_text('horizon_us = 10\n[topology]\nkind = "file"\npath = "g.txt"\n')
    code, _, err = run_cli("run", "--scenario", str(scenario))
    assert code == 2 and "g.txt line 1: expected 'a b [key=integer ...]'" in err and "secret" not in err
    (tmp_path / "g.txt").write_bytes(b"\xff\xfe secret\n")
    code, _, err = run_cli("run", "--scenario", str(scenario))
    assert code == 2 and "g.txt: not UTF-8 text" in err and "secret" not in err
