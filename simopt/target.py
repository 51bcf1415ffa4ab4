"""What a target is: which paths an agent may edit, and how the harness measures and checks it.

A target is declared by `simopt.toml` at the repository root or, failing that, by the
`[tool.simopt]` table of its pyproject.toml. Two kinds exist: a *scenario* target (a netsim-like
engine package run on scenario files) and a *command* target (any repository with a benchmark
command printing `METRIC seconds=...` and a guard command).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from simopt.errors import UserError

CONFIG_FILE = "simopt.toml"

_STRING_KEYS = ("scenarios", "engine", "scenario", "smoke_scenario", "bench", "guard", "guard_command", "smoke")
_LIST_KEYS = ("editable", "protected")
_NUMBER_KEYS = ("smoke_timeout", "propose_timeout", "guard_timeout")
_DEFAULT_TIMEOUTS = {"smoke_timeout": 120.0, "propose_timeout": 1800.0, "guard_timeout": 1800.0}


@dataclass(frozen=True)
class Target:
    """A repository's optimization target, as declared in its config."""

    root: Path
    config_path: Path
    editable: tuple[str, ...]
    protected: tuple[str, ...]
    scenarios: str | None = None
    engine: str | None = None
    scenario: str | None = None
    smoke_scenario: str | None = None
    bench: str | None = None
    guard: str | None = None
    guard_command: str | None = None
    smoke: str | None = None
    smoke_timeout: float = _DEFAULT_TIMEOUTS["smoke_timeout"]
    propose_timeout: float = _DEFAULT_TIMEOUTS["propose_timeout"]
    guard_timeout: float = _DEFAULT_TIMEOUTS["guard_timeout"]

    @property
    def kind(self) -> str:
        """`scenario` when an engine runs scenario files, `command` when a bench command is timed."""
        return "scenario" if self.engine else "command"

    def in_scope(self, path: str) -> bool:
        """True iff `path` (relative, `/`-separated) matches an editable glob and no protected glob."""
        return any(glob_match(p, path) for p in self.editable) and not any(
            glob_match(p, path) for p in self.protected
        )

    def out_of_scope(self, paths: Iterable[str]) -> list[str]:
        """The paths among `paths` that an agent may not change, in order."""
        return [path for path in paths if not self.in_scope(path)]

    def touches(self, path: str) -> bool:
        """True iff `path` belongs to the target: editable, or protected (what measures it)."""
        return any(glob_match(p, path) for p in self.editable + self.protected)


def load_target(repo: Path) -> Target:
    """Read the target config of the repository at `repo`; `UserError` when it is missing or bad."""
    root = Path(repo).resolve()
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        table = _read_toml(config_path)
        table = _tool_table(table, config_path) or table
    elif (root / "pyproject.toml").is_file() and _tool_table(_read_toml(root / "pyproject.toml"), root / "pyproject.toml"):
        config_path = root / "pyproject.toml"
        table = _tool_table(_read_toml(config_path), config_path)
    else:
        raise UserError(f"no simopt config in {root}: add [tool.simopt] to pyproject.toml or run `simopt init`")
    return _target_from_table(root, config_path, table)


def _tool_table(document: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The [tool.simopt] table of a TOML document, None when it has none; `UserError` when it is not a table."""
    tool = document.get("tool")
    if not isinstance(tool, dict) or "simopt" not in tool:
        return None
    if not isinstance(tool["simopt"], dict):
        raise UserError(f"{path.name}: tool.simopt(={tool['simopt']!r}) must be a table ([tool.simopt])")
    return tool["simopt"]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    except RecursionError:
        raise UserError(f"cannot read {path}: its tables or arrays are nested too deeply") from None


def _target_from_table(root: Path, config_path: Path, table: dict[str, Any]) -> Target:
    where = config_path.name
    unknown = sorted(set(table) - set(_STRING_KEYS + _LIST_KEYS + _NUMBER_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown simopt key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in _LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise UserError(f"{where}: {key} must be a list of non-empty glob strings")
        values[key] = tuple(value)
    for key in _STRING_KEYS:
        value = table.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise UserError(f"{where}: {key}(={value!r}) must be a non-empty string")
        values[key] = value
    for key in _NUMBER_KEYS:
        value = table.get(key, _DEFAULT_TIMEOUTS[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"{where}: {key}(={value!r}) must be a positive number of seconds")
        values[key] = float(value)
    if not values["editable"]:
        raise UserError(f"{where}: editable must list at least one glob")
    if bool(values["engine"]) == bool(values["bench"]):
        raise UserError(f"{where}: set exactly one of `engine` (with `scenarios`) or `bench` (a command)")
    if values["engine"] and not values["scenarios"]:
        raise UserError(f"{where}: `engine` needs a `scenarios` folder")
    if values["engine"] and (values["guard"] or values["guard_command"]):
        # a scenario target is always judged by the harness's own guards/ and its oracle
        raise UserError(f"{where}: `guard`/`guard_command` are for command targets; an `engine` target "
                        "is checked by simopt's own guard suite")
    if values["bench"] and not values["guard"] and not values["guard_command"]:
        raise UserError(f"{where}: set `guard` (a folder) or `guard_command`")
    return Target(root=root, config_path=config_path, **values)


def glob_match(pattern: str, path: str) -> bool:
    """Match a repository-relative path against a gitignore-style glob.

    `*` and `?` stay within one path segment, `**` spans any number of segments (zero included),
    a pattern without a slash matches at any depth, a leading `/` anchors at the root, and a
    pattern that matches a directory matches everything inside it.
    """
    return _compile(pattern).match(path.strip("/")) is not None


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    body = pattern.strip()
    anchored = body.startswith("/") or "/" in body.rstrip("/")
    segments = [s for s in body.strip("/").split("/") if s]
    if not segments:
        raise UserError(f"empty glob pattern {pattern!r}")
    parts = [] if anchored else ["(?:[^/]+/)*"]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + "(?:/.*)?\\Z")


def _segment_regex(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                inner = segment[i + 1 : end].replace("\\", "\\\\")
                if inner.startswith("!"):
                    inner = "^" + inner[1:]
                out.append(f"[{inner}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
