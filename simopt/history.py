"""results/<tag>/history.jsonl: append one record durably, read a session back (docs/history.md).

Lines are never rewritten. A reader skips what it cannot parse (a kill can tear the last line)
and says which line it skipped, so sessions still running or killed mid-write stay readable.
"""

from __future__ import annotations

import json
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
            "guard_fail", "holdout_fail", "tamper", "no_proposal", "interrupted")


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
    line = json.dumps(document, ensure_ascii=False) + "\n"
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
        problem = _add_line(history, line)
        if problem:
            history.warnings.append(f"{path}:{number}: {problem}")
    return history


def _add_line(history: History, line: bytes) -> str | None:
    """File one line into `history`; return why it was skipped, or None."""
    try:
        document = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "skipped a corrupt line"
    if not isinstance(document, dict):
        return "skipped a line that is not a JSON object"
    kind = document.get("type")
    if kind not in LINE_TYPES:
        return f"skipped a line of unknown type {kind!r}"
    if document.get("version", VERSION) != VERSION:
        return f"skipped a line of unsupported version {document.get('version')!r}"
    if kind == "session":
        if history.session is not None:
            return "skipped a second session line"
        history.session = document
    elif kind == "resume":
        history.resumes.append(document)
    elif kind == "experiment":
        history.experiments.append(document)
    else:
        history.checkpoints.append(document)
    return None


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
