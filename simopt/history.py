"""results/<tag>/history.jsonl: append one record durably, read a session back (docs/history.md).

Lines are never rewritten, and are strict JSON (a non-finite number is written as null). A
reader skips what it cannot parse (a kill can tear the last line) or what does not have the
shape of docs/history.md (a field of the wrong type), and says which line it skipped and why,
so sessions still running, killed mid-write or edited by hand stay readable.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simopt.errors import UserError

VERSION = 1
HISTORY_FILE = "history.jsonl"
LINE_TYPES = ("session", "resume", "experiment", "checkpoint")
# The fixed status vocabulary of an experiment, in display order (docs/history.md).
STATUSES = ("keep", "discard", "scope_violation", "crash", "timeout", "different_output",
            "guard_fail", "holdout_fail", "tamper", "no_proposal", "interrupted", "busy")

# The fields simopt reads, with their types: a trailing "?" allows null, "!" marks a required field.
_METRIC = {"name": "str?", "verdict": "str?", "ratio": "number?", "ci": "interval?", "pairs": "int?", "lanes": "int?",
           "confidence": "number?", "baseline_s": "number?", "candidate_s": "number?"}
_GUARDS = {"passed": "int?", "failed": "int?", "seed": "int?", "failures": "list?"}
_USAGE = {"prompt_tokens": "int?", "completion_tokens": "int?", "cost_usd": "number?"}
_SHAPES: dict[str, dict[str, Any]] = {
    "session": {"tag": "str?", "base_commit": "sha!", "branch": "str?", "agent": "str?", "scenario": "str?",
                "config": "dict?", "target": "str?", "started": "str?"},
    "resume": {"timestamp": "str?"},
    "experiment": {"n": "count!", "status": "str!", "parent": "str?", "commit": "sha?", "description": "str?",
                   "hypothesis": "str?", "metric": _METRIC, "guards": _GUARDS, "asi": "dict?", "patch": "str?",
                   "changed_paths": "strings?", "timings": "dict?", "usage": _USAGE, "timestamp": "str?"},
    "checkpoint": {"after": "count!", "best_commit": "sha?", "metric": _METRIC, "cumulative_speedup": "number?",
                   "error": "str?", "timestamp": "str?"},
}


@dataclass
class History:
    """One session as read from its history.jsonl."""

    path: Path
    session: dict[str, Any] | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """The session's tag: from its session line, else the name of its results folder."""
        if self.session and self.session.get("tag"):
            return str(self.session["tag"])
        return self.path.parent.name


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one JSON line, written whole in one write, flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = record if "version" in record else {"version": VERSION, **record}
    line = json.dumps(_finite(document), ensure_ascii=False, allow_nan=False) + "\n"
    try:
        _append_line(path, line)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def _append_line(path: Path, line: str) -> None:
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A torn last line (a kill mid-write) must not swallow the record appended after it.
        if not created and _ends_without_newline(fd):
            line = "\n" + line
        data = line.encode("utf-8")
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal; finish rather than tear
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_directory(path.parent)


def read_history(path: Path) -> History:
    """Read a history.jsonl, skipping unreadable lines with a warning naming each line number."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"no history at {path}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    history = History(path=path)
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        for problem in _add_line(history, line):
            history.warnings.append(f"{path}:{number}: {problem}")
    return history


def _add_line(history: History, line: bytes) -> list[str]:
    """File one line into `history`; return why it was skipped or which of its fields were ignored."""
    try:
        document = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ["skipped a corrupt line"]
    if not isinstance(document, dict):
        return ["skipped a line that is not a JSON object"]
    kind = document.get("type")
    if not isinstance(kind, str) or kind not in LINE_TYPES:
        return [f"skipped a line of unknown type {_short(kind)}"]
    if document.get("version", VERSION) != VERSION:
        return [f"skipped a line of unsupported version {_short(document.get('version'))}"]
    problem, dropped = _shape_problems(document, _SHAPES[kind])
    if problem:
        return [f"skipped {_article(kind)} {kind} line: {problem}"]
    if kind == "session":
        if history.session is not None:
            return ["skipped a second session line"]
        history.session = document
    elif kind == "resume":
        history.resumes.append(document)
    elif kind == "experiment":
        history.experiments.append(document)
    else:
        history.checkpoints.append(document)
    return [f"ignored {field}" for field in dropped]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


def _shape_problems(document: dict, shape: dict[str, Any], where: str = "") -> tuple[str | None, list[str]]:
    """(why the line must be skipped or None, the optional fields set to null because they were malformed)."""
    dropped: list[str] = []
    for key, kind in shape.items():
        value = document.get(key)
        name = f"{where}{key}"
        if isinstance(kind, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                document[key] = None
                dropped.append(f"{name}(={_short(value)}) must be an object")
                continue
            dropped += _shape_problems(value, kind, f"{name}.")[1]
            continue
        required, kind = kind.endswith("!"), kind.rstrip("!?")
        if value is None:
            if required:
                return f"{name} is missing", dropped
            continue
        if not _TYPE_CHECKS[kind](value):
            problem = f"{name}(={_short(value)}) must be {_TYPE_NAMES[kind]}"
            if required:
                return problem, dropped
            document[key] = None
            dropped.append(problem)
    return None, dropped


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_TYPE_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "sha": lambda v: isinstance(v, str) and 4 <= len(v) <= 64 and all(c in "0123456789abcdef" for c in v),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**53,
    "number": _is_number,
    "interval": lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v),
    "dict": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}
_TYPE_NAMES = {"str": "a string", "sha": "a commit id (hex)", "int": "an integer", "count": "an integer >= 1",
               "number": "a finite number", "interval": "a list of two numbers", "dict": "an object",
               "list": "a list", "strings": "a list of strings"}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _ends_without_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def history_path(repo: Path, tag: str) -> Path:
    """Where the history of session `tag` lives in `repo`."""
    return Path(repo) / "results" / tag / HISTORY_FILE


def available_tags(repo: Path) -> list[str]:
    """The tags of every session with a history in `repo`, sorted."""
    results = Path(repo) / "results"
    if not results.is_dir():
        return []
    return sorted(entry.name for entry in results.iterdir() if (entry / HISTORY_FILE).is_file())


def load_session(repo: Path, tag: str) -> History:
    """Read session `tag` of `repo`; an unknown tag is a UserError listing the known ones."""
    if not tag or tag in (".", "..") or "/" in tag or "\\" in tag:
        raise UserError(f"tag {tag!r} is not a session name (no path separators)")
    path = history_path(repo, tag)
    if not path.is_file():
        tags = available_tags(repo)
        known = ", ".join(tags) if tags else "none yet"
        raise UserError(f"no session {tag!r} in {Path(repo) / 'results'} (available tags: {known})")
    return read_history(path)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
