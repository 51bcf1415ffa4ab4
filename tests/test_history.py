"""history.jsonl: durable appends and a reader that survives torn and corrupt lines."""

import json
from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.history import append_record, read_history
from simopt.results.summary import cumulative_speedup
from cli_helpers import run_cli

SESSION = {"type": "session", "tag": "t1", "base_commit": "a" * 40, "branch": "simopt/t1"}


def experiment(n: int, status: str = "discard") -> dict:
    return {"type": "experiment", "n": n, "status": status, "description": f"change {n}"}


def test_append_creates_parents_and_adds_the_version(tmp_path: Path):
    path = tmp_path / "results" / "t1" / "history.jsonl"
    record = dict(SESSION)
    append_record(path, record)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"version": 1, **SESSION}
    assert "version" not in record  # the caller's dict is left alone


def test_append_keeps_an_explicit_version(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, {"version": 7, "type": "resume"})
    assert json.loads(path.read_text())["version"] == 7


def test_round_trip_sorts_lines_by_type(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, SESSION)
    append_record(path, experiment(1, "keep"))
    append_record(path, {"type": "resume", "timestamp": "2026-11-26T23:00:00+00:00"})
    append_record(path, experiment(2))
    append_record(path, {"type": "checkpoint", "after": 2, "cumulative_speedup": 1.1})
    history = read_history(path)
    assert history.session["tag"] == "t1"
    assert history.tag == "t1"
    assert [e["n"] for e in history.experiments] == [1, 2]
    assert len(history.resumes) == 1
    assert history.checkpoints[0]["after"] == 2
    assert history.warnings == []


def test_unicode_description_survives(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, {**experiment(1), "description": "éviter le tri — 2×"})
    assert read_history(path).experiments[0]["description"] == "éviter le tri — 2×"


def test_torn_last_line_is_skipped_with_its_line_number(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, SESSION)
    append_record(path, experiment(1))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"version": 1, "type": "experiment", "n": 2, "sta')
    history = read_history(path)
    assert [e["n"] for e in history.experiments] == [1]
    assert history.warnings == [f"{path}:3: skipped a corrupt line"]


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, SESSION)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"type": "experi')
    append_record(path, {"type": "resume"})
    append_record(path, experiment(2))
    history = read_history(path)
    assert len(history.resumes) == 1
    assert [e["n"] for e in history.experiments] == [2]
    assert history.warnings == [f"{path}:2: skipped a corrupt line"]


def test_corrupt_middle_line_and_odd_documents_are_skipped(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(
        b'{"version": 1, "type": "session", "tag": "x", "base_commit": "abc123"}\n'
        b"\xff\xfe not utf-8\n"
        b"[1, 2]\n"
        b'{"version": 1, "type": "mystery"}\n'
        b'{"version": 2, "type": "experiment", "n": 9}\n'
        b'{"version": 1, "type": "session", "tag": "y", "base_commit": "abc123"}\n'
        b"\n"
        b'{"version": 1, "type": "experiment", "n": 1, "status": "discard"}\n'
    )
    history = read_history(path)
    assert history.session["tag"] == "x"
    assert [e["n"] for e in history.experiments] == [1]
    assert history.warnings == [
        f"{path}:2: skipped a corrupt line",
        f"{path}:3: skipped a line that is not a JSON object",
        f"{path}:4: skipped a line of unknown type 'mystery'",
        f"{path}:5: skipped a line of unsupported version 2",
        f"{path}:6: skipped a second session line",
    ]


def test_session_still_starting_has_no_session_line(tmp_path: Path):
    path = tmp_path / "demo" / "history.jsonl"
    path.parent.mkdir()
    path.write_text("")
    history = read_history(path)
    assert history.session is None
    assert history.tag == "demo"
    assert history.experiments == []


def test_missing_history_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="no history at"):
        read_history(tmp_path / "nope" / "history.jsonl")


# --- simopt history TAG -------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "histories"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def table_row(output: str, n: int) -> list[str]:
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] == str(n):
            return cells
    raise AssertionError(f"no row {n} in:\n{output}")


def test_history_table_key_cells():
    code, out, err = run_cli("history", "alpha", "--repo", str(FIXTURES))
    assert code == 0 and err == ""
    assert table_row(out, 2) == [
        "2", "keep", "0.800 [0.780, 0.820]", "cache shortest-path tables per destination", ""
    ]
    assert table_row(out, 3)[1:3] == ["guard_fail", "—"]
    assert table_row(out, 3)[4] == "guard test_ecmp_sets_complete failed on a perturbed FatTree"
    assert "experiments: 12" in out.splitlines()
    assert "kept: 3" in out.splitlines()
    assert "cumulative speedup: 1.449x [1.429x, 1.471x] (checkpoint after 10)" in out
    assert "wall time: 24m00s" in out
    assert "last record: 2026-11-20T11:12:00+00:00" in out
    assert "tokens: 30,000" in out
    assert "cost: $0.12" in out


def test_history_of_a_corrupt_session_warns_once_per_line_on_stderr():
    code, out, err = run_cli("history", "beta", "--repo", str(FIXTURES))
    assert code == 0
    beta = FIXTURES / "results" / "beta" / "history.jsonl"
    assert err.splitlines() == [
        f"simopt: warning: {beta}:4: skipped a corrupt line",
        f"simopt: warning: {beta}:8: skipped a corrupt line",
    ]
    assert [table_row(out, n)[1] for n in (1, 2, 4, 5)] == ["keep", "discard", "keep", "guard_fail"]
    assert "cumulative speedup: 1.681x (product of kept ratios)" in out
    assert "tokens: —" in out


def test_history_json_summary():
    code, out, _ = run_cli("history", "alpha", "--repo", str(FIXTURES), "--json")
    document = json.loads(out)
    summary = document["summary"]
    assert code == 0 and document["version"] == 1
    assert summary["experiments"] == 12 and summary["kept"] == 3
    assert summary["counts"]["guard_fail"] == 1
    assert summary["cumulative_speedup"] == pytest.approx(1.4493)
    assert summary["cumulative_speedup_ci"] == pytest.approx([1 / 0.70, 1 / 0.68])
    assert summary["cumulative_speedup_source"] == "checkpoint after 10"
    assert summary["wall_s"] == 1440.0  # 12 min before the crash + 12 min after the resume
    assert summary["tokens"] == 30000 and summary["cost_usd"] == pytest.approx(0.12)
    assert [e["n"] for e in document["experiments"]] == list(range(1, 13))
    assert [c["after"] for c in document["checkpoints"]] == [10]


def test_history_of_a_session_without_experiments():
    code, out, _ = run_cli("history", "empty", "--repo", str(FIXTURES))
    assert code == 0
    assert "session empty: no experiments yet" in out
    assert "cumulative speedup: 1.000x (product of kept ratios)" in out


def test_unknown_tag_lists_the_available_ones():
    code, out, err = run_cli("history", "nope", "--repo", str(FIXTURES))
    assert code == 2 and out == ""
    assert err.startswith("simopt: error: no session 'nope'")
    assert err.rstrip().endswith("(available tags: alpha, beta, empty, gamma)")


def test_pi_export_maps_onto_pi_autoresearch_lines():
    code, out, _ = run_cli("history", "alpha", "--repo", str(FIXTURES), "--format", "pi")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert lines[0] == {
        "type": "config", "name": "simopt alpha: fattree", "metricName": "time_vs_base",
        "metricUnit": "", "bestDirection": "lower",
    }
    baseline, runs = lines[1], lines[2:]
    assert baseline["run"] == 0 and baseline["metric"] == 1.0 and baseline["commit"] == "1111111"
    assert [r["run"] for r in runs] == list(range(1, 13))
    by_run = {r["run"]: r for r in runs}
    assert by_run[2]["status"] == "keep" and by_run[2]["metric"] == pytest.approx(0.8)
    assert by_run[2]["commit"] == "2222222"
    assert by_run[5]["metric"] == pytest.approx(0.72)  # 0.8 x 0.9: relative to the base
    assert by_run[8]["metric"] == pytest.approx(0.72 * 1.04)
    assert by_run[3]["status"] == "checks_failed" and by_run[3]["metric"] == 0
    assert by_run[4]["status"] == "crash" and by_run[11]["status"] == "crash"
    assert by_run[3]["asi"]["simopt_status"] == "guard_fail"
    assert by_run[1]["iterationTokens"] == 2500
    assert by_run[1]["timestamp"] == 1795168920000  # 2026-11-20T10:02:00Z in ms
    assert all(r["segment"] == 0 for r in runs)


def test_history_outside_a_git_repo_asks_for_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = run_cli("history", "alpha")
    assert code == 2
    assert err == "simopt: error: not inside a git repository; pass --repo PATH\n"


def test_a_checkpoint_without_a_measurement_does_not_count(tmp_path):
    path = tmp_path / "history.jsonl"
    append_record(path, SESSION)
    append_record(path, {**experiment(1, "keep"), "metric": {"ratio": 0.8, "ci": [0.7, 0.9]}})
    append_record(path, {"type": "checkpoint", "after": 1, "metric": None, "cumulative_speedup": 1.0})
    speedup = cumulative_speedup(read_history(path))
    assert speedup.value == pytest.approx(1.25)
    assert speedup.source == "product of kept ratios"


def test_malformed_parts_of_a_record_read_as_missing(tmp_path):
    path = tmp_path / "results" / "odd" / "history.jsonl"
    append_record(path, {**SESSION, "tag": "odd"})
    append_record(path, {
        **experiment(1, "keep"), "metric": "fast", "timings": [1, 2], "usage": {"prompt_tokens": "x"},
        "asi": None, "n": "one",
    })
    append_record(path, {**experiment(2, "keep"), "metric": {"ratio": 0.5, "ci": [0.4]}})
    code, out, err = run_cli("history", "odd", "--repo", str(tmp_path), "--json")
    summary = json.loads(out)["summary"]
    assert code == 0 and err.count("simopt: warning: ") == 2 and "skipped an experiment line: n(='one')" in err
    assert "ignored metric.ci(=[0.4]) must be a list of two numbers" in err
    assert summary["cumulative_speedup"] == 2.0  # only #2 measured a ratio
    assert summary["tokens"] is None  # the only record with usage was skipped
    assert run_cli("report", "odd", "--repo", str(tmp_path))[0] == 0
    assert run_cli("history", "odd", "--repo", str(tmp_path), "--format", "pi")[0] == 0


@pytest.mark.parametrize("tag", ["..", "../alpha", "a/b"])
def test_a_tag_is_a_name_not_a_path(tag):
    code, _, err = run_cli("history", tag, "--repo", str(FIXTURES / "results" / "alpha"))
    assert code == 2
    assert err == f"simopt: error: tag {tag!r} is not a session name (no path separators)\n"


def test_lines_of_the_wrong_shape_are_skipped_or_their_bad_fields_ignored(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    path.write_text(
        '{"version": 1, "type": "session", "tag": "x"}\n'
        '{"version": 1, "type": "session", "tag": "x", "config": 5, "base_commit": "abc123"}\n'
        '{"version": 1, "type": "experiment", "n": "3", "status": "keep"}\n'
        '{"version": 1, "type": "experiment", "n": 1, "status": "keep", "commit": "not a sha"}\n'
        '{"version": 1, "type": "experiment", "n": 2, "status": "discard", "metric": {"ratio": NaN}}\n'
        '{"version": 1, "type": "experiment", "n": 3, "status": "discard", "metric": {"ci": [1], "ratio": 1.5}}\n'
        '{"version": 1, "type": "checkpoint", "after": true}\n'
    )
    history = read_history(path)
    assert history.session["config"] is None
    assert [(e["n"], e.get("commit"), e.get("metric")) for e in history.experiments] == [
        (1, None, None), (3, None, {"ci": None, "ratio": 1.5})]
    assert [warning.split(": ", 1)[1] for warning in history.warnings] == [
        "skipped a session line: base_commit is missing",
        "ignored config(=5) must be an object",
        "skipped an experiment line: n(='3') must be an integer >= 1",
        "ignored commit(='not a sha') must be a commit id (hex)",
        "skipped a corrupt line",
        "ignored metric.ci(=[1]) must be a list of two numbers",
        "skipped a checkpoint line: after(=True) must be an integer >= 1",
    ]


def test_non_finite_numbers_are_written_as_null(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    append_record(path, {"type": "experiment", "n": 1, "status": "discard", "metric": {"ratio": float("nan"), "ci": [float("inf"), 1.0]}})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert read_history(path).experiments[0]["metric"] == {"ratio": None, "ci": None}  # [null, 1.0] is no interval
