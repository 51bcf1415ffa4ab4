"""history.jsonl: durable appends and a reader that survives torn and corrupt lines."""

import json
from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.history import append_record, read_history

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
        b'{"version": 1, "type": "session", "tag": "x"}\n'
        b"\xff\xfe not utf-8\n"
        b"[1, 2]\n"
        b'{"version": 1, "type": "mystery"}\n'
        b'{"version": 2, "type": "experiment", "n": 9}\n'
        b'{"version": 1, "type": "session", "tag": "y"}\n'
        b"\n"
        b'{"version": 1, "type": "experiment", "n": 1}\n'
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
