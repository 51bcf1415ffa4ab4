"""`simopt run` through the CLI boundary: JSON summary, table, profile, and every user error."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from simopt.engine import load_engine
from simopt.scenario import build_instance, default_repo, load_scenario
from cli_helpers import run_cli

TINY = """
seed = 4
horizon_us = 200
[topology]
kind = "star"
n = 4
[links]
buffer_bytes = 3_000
[traffic]
pattern = "incast"
bytes = 30_000
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_json_is_one_document_with_the_fields(tiny):
    code, out, err = run_cli("run", "--scenario", str(tiny), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["version"] == 1 and summary["scenario"] == "tiny" and summary["seed"] == 4
    for key in ("digest", "events", "packet_hops", "wall_s", "cpu_s"):
        assert key in summary
    packets = summary["packets"]
    assert summary["flows"] == {"count": 3, "completed": summary["flows"]["completed"]}
    assert set(packets["dropped_by_cause"]) == {"link_down", "link_failed", "no_route", "queue_full"}
    assert packets["dropped"] == sum(packets["dropped_by_cause"].values())
    assert packets["sent"] == packets["delivered"] + packets["dropped"] + packets["in_flight"]
    assert packets["dropped_by_cause"]["queue_full"] > 0  # three senders into one tiny buffer
    expected = load_engine(default_repo()).simulate(build_instance(load_scenario(tiny)))
    assert summary["digest"] == expected["digest"] and summary["events"] == expected["events"]
    assert summary["wall_s"] > 0 and summary["cpu_s"] >= 0


def test_shipped_scenario_by_name_and_seed_override():
    code, out, _ = run_cli("run", "--scenario", "mesh", "--json")
    again = json.loads(run_cli("run", "--scenario", "mesh", "--json")[1])
    reseeded = json.loads(run_cli("run", "--scenario", "mesh", "--seed", "11", "--json")[1])
    first = json.loads(out)
    assert code == 0 and first["digest"] == again["digest"]
    assert reseeded["seed"] == 11 and reseeded["digest"] != first["digest"]


def test_default_output_is_a_readable_table(tiny):
    code, out, _ = run_cli("run", "--scenario", str(tiny))
    digest = json.loads(run_cli("run", "--scenario", str(tiny), "--json")[1])["digest"]
    assert code == 0
    for label in ("scenario", "packets delivered", "dropped: queue_full", "packet-hops/s", "wall", "cpu"):
        assert label in out
    assert digest[:20] in out


def test_profile_lists_functions_and_keeps_json_clean(tiny):
    code, out, _ = run_cli("run", "--scenario", str(tiny), "--profile")
    assert code == 0 and "cumulative" in out and "simulate" in out
    code, out, err = run_cli("run", "--scenario", str(tiny), "--json", "--profile")
    assert code == 0 and json.loads(out)["version"] == 1 and "cumulative" in err


def test_repo_option_uses_that_checkouts_engine_and_scenarios(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "tiny.toml").write_text(TINY)
    code, _, err = run_cli("run", "--scenario", "tiny", "--repo", str(tmp_path))
    assert code == 2 and "no engine package" in err


BAD = {
    "odd_k": ('horizon_ns = 1\n[topology]\nkind = "fattree"\nk = 5\n', "topology.k(=5) must be even and >= 4"),
    "small_k": ('horizon_ns = 1\n[topology]\nkind = "fattree"\nk = 2\n', "topology.k(=2) must be even and >= 4"),
    "kind": ('horizon_ns = 1\n[topology]\nkind = "hypercube"\n', "topology.kind(='hypercube') must be one of"),
    "bandwidth": ('horizon_ns = 1\n[topology]\nkind = "line"\nn = 2\n[links]\nbandwidth_bps = 0\n', "links.bandwidth_bps(=0) must be an integer >= 1"),
    "delay": ('horizon_ns = 1\n[topology]\nkind = "line"\nn = 2\n[links]\ndelay_ns = -1\n', "links.delay_ns(=-1) must be an integer >= 0"),
    "host": ('horizon_ns = 1\n[topology]\nkind = "line"\nn = 2\n[[flows]]\nsrc = "n0"\ndst = "h1"\nbytes = 1\n', "flows[0].dst(='h1') is not a node"),
    "typo": ('horizon_ns = 1\n[topology]\nkind = "line"\nn = 2\n[trafic]\n', "unknown key trafic"),
    "toml": ('horizon_ns = 1\n[topology]\nkind = "line\n', "invalid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_exit_2_with_one_line(tmp_path, case):
    body, message = BAD[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(textwrap.dedent(body))
    code, out, err = run_cli("run", "--scenario", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"simopt: error: scenario {case}.toml: ")
    assert message in err and "Traceback" not in err


def test_malformed_toml_names_the_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("seed = 1\nhorizon_ns = 5\n[topology\n")
    code, _, err = run_cli("run", "--scenario", str(path))
    assert code == 2 and "broken.toml" in err and "line 3" in err


def test_unknown_scenario_lists_available_names():
    code, _, err = run_cli("run", "--scenario", "fatree")
    assert code == 2 and err.count("\n") == 1
    assert "unknown scenario 'fatree'" in err and "fattree" in err and "mesh" in err and "Traceback" not in err


def test_missing_option_and_bad_seed_are_usage_errors():
    assert run_cli("run")[0] == 2
    code, _, err = run_cli("run", "--scenario", "mesh", "--seed", "x")
    assert code == 2 and "--seed" in err
    code, _, err = run_cli("run", "--scenario", "mesh", "--seed", "-3")
    assert code == 2 and "--seed(=-3)" in err


def test_digest_identical_across_processes():
    command = [sys.executable, "-m", "simopt.cli", "run", "--scenario", "random", "--json"]
    digests = {json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["digest"] for _ in range(2)}
    assert len(digests) == 1


def test_a_scenario_without_traffic_runs(tmp_path):
    path = tmp_path / "quiet.toml"
    path.write_text('horizon_us = 1\n[topology]\nkind = "dumbbell"\nhosts_per_side = 1\n')
    code, out, err = run_cli("run", "--scenario", str(path), "--json")
    assert code == 0 and err == "" and json.loads(out)["flows"] == {"count": 0, "completed": 0}
