"""simopt.guard and `simopt guard`: the subprocess runner, structured failures, the CLI contract."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import simopt.guard
from simopt.errors import UserError
from simopt.guard import run_guards
from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]

HOLDOUT = '''
from hypothesis import given, settings
from guards import record, strategies

LINK = {"bandwidth_bps": 10**9, "delay_ns": 0, "buffer_bytes": 1500, "weight": 1}

def test_engine_runs(engine):
    assert engine.simulate is not None

@settings(max_examples=10)
@given(strategies.rings(max_nodes=8))
def test_rings_have_few_nodes(engine, ring):
    instance = strategies.assemble(ring, [LINK] * len(ring["edges"]), [], [], mtu=1500, reconvergence_ns=0, horizon_ns=0)
    record.show(ring["kind"], instance)
    assert len(ring["nodes"]) < 5, f"ring of {len(ring['nodes'])} nodes"
'''


def write_guards(folder: Path, source: str) -> Path:
    folder.mkdir()
    (folder / "test_holdout.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def holdout(tmp_path_factory) -> Path:
    return write_guards(tmp_path_factory.mktemp("guards") / "holdout", HOLDOUT)


@pytest.fixture(scope="module")
def report(holdout) -> dict:
    return run_guards(REPO, seed=3, profile="quick", guards_dir=holdout)


def test_failures_come_back_structured_with_a_shrunk_counterexample(report):
    assert (report["passed"], report["failed"], report["seed"]) == (1, 1, 3)
    failure = report["failures"][0]
    assert failure["test"].endswith("test_rings_have_few_nodes")
    assert "ring of 5 nodes" in failure["message"]
    example = failure["counterexample"]
    assert example["topology"] == "ring(n=5)" and example["nodes"] == 5, example
    assert example["edges"] == "0-1 0-4 1-2 2-3 3-4"
    assert report["version"] == 1 and report["duration_s"] > 0


def test_a_hanging_suite_fails_on_its_time_limit(tmp_path):
    guards = write_guards(tmp_path / "holdout", "import time\ndef test_sleeps():\n    time.sleep(60)\n")
    report = run_guards(REPO, seed=1, guards_dir=guards, timeout_s=3)
    assert report["failed"] == 1 and "time limit" in report["failures"][0]["message"]


def test_a_broken_target_fails_every_guard_that_loads_it(tmp_path):
    package = tmp_path / "simopt" / "netsim"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('broken on purpose')\n", encoding="utf-8")
    broken = run_guards(tmp_path, seed=1, profile="quick", guards_dir=write_guards(tmp_path / "holdout", HOLDOUT))
    assert broken["failed"] == 2 and "broken on purpose" in broken["failures"][0]["message"]


@pytest.mark.parametrize("bad", ["does-not-exist", "."])
def test_target_must_hold_an_engine(tmp_path, bad):
    with pytest.raises(UserError, match="target"):
        run_guards(tmp_path / bad)


def test_cli_usage_errors_exit_2(tmp_path):
    assert run_cli("guard", "--target", str(tmp_path))[0] == 2
    code, _, err = run_cli("guard", "--seed", "-1")
    assert code == 2 and "--seed" in err
    assert run_cli("guard", "--profile", "huge")[0] == 2


def test_cli_json_is_one_document_and_the_same_seed_gives_the_same_example(holdout, report, monkeypatch):
    monkeypatch.setattr(simopt.guard, "GUARDS_DIR", holdout)
    code, out, _ = run_cli("guard", "--seed", "3", "--profile", "quick", "--json")
    document = json.loads(out)
    assert code == 1 and document["seed"] == 3 and document["failed"] == 1
    assert document["failures"] == report["failures"]


def test_cli_text_prints_the_seed_and_how_to_reproduce(holdout, monkeypatch):
    monkeypatch.setattr(simopt.guard, "GUARDS_DIR", holdout)
    code, out, _ = run_cli("guard", "--target", str(REPO), "--profile", "quick")
    seed = out.splitlines()[0].split("seed ")[1].split(",")[0]
    assert code == 1 and "FAIL " in out and "topology: ring(n=5)" in out
    assert f"reproduce: simopt guard --target {REPO} --profile quick --seed {seed}" in out


def test_one_worker_or_two_report_the_same_run(holdout):
    """The tests shared among two guard processes (pytest-xdist) come back merged: the same
    verdicts, the same shrunk counterexample and the same drawn input space as in one process."""
    alone = run_guards(REPO, seed=3, profile="quick", guards_dir=holdout, workers=1)
    shared = run_guards(REPO, seed=3, profile="quick", guards_dir=holdout, workers=2)
    assert (alone["workers"], shared["workers"]) == (1, 2)
    for key in ("passed", "failed", "failures", "coverage"):
        assert alone[key] == shared[key], key
    nodes = alone["coverage"]["features"][0]
    assert nodes["feature"] == "nodes" and 3 <= nodes["drawn"][0] <= 5 <= nodes["drawn"][1] <= 8  # rings of 3-8 nodes
