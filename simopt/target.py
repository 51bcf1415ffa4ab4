"""What a target is: which paths an agent may edit, and how the harness measures and checks it.

A target is declared by `simopt.toml` at the repository root or, failing that, by the
`[tool.simopt]` table of its pyproject.toml. Two kinds exist: a *scenario* target (a netsim-like
engine package run on scenario files) and a *command* target (any repository with a benchmark
command printing `METRIC seconds=...` and a guard command; docs/own-repo.md).
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

_STRING_KEYS = ("scenarios", "engine", "scenario", "smoke_scenario", "bench", "guard", "guard_command", "smoke",
                "python", "equal_output", "bench_clock")
BENCH_CLOCKS = ("wall", "cpu")
_LIST_KEYS = ("editable", "protected", "equal_output_ignore")
_NUMBER_KEYS = ("smoke_timeout", "propose_timeout", "guard_timeout")
_DEFAULT_TIMEOUTS = {"smoke_timeout": 120.0, "propose_timeout": 1800.0, "guard_timeout": 1800.0}
_COMMAND_ONLY = ("python", "env", "equal_output", "equal_output_seeds", "equal_output_fresh", "equal_output_ignore",
                 "bench_clock")
_OTHER_KEYS = ("env", "equal_output_seeds", "equal_output_fresh")
DEFAULT_FRESH_SEEDS = 3
MAX_FRESH_SEEDS = 100


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
    bench_clock: str | None = None  # "cpu": the bench's METRIC values are CPU time (runs may interleave)
    python: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    equal_output: str | None = None
    equal_output_seeds: tuple[int, ...] = ()
    equal_output_fresh: int = DEFAULT_FRESH_SEEDS
    equal_output_ignore: tuple[str, ...] = ()
    smoke_timeout: float = _DEFAULT_TIMEOUTS["smoke_timeout"]
    propose_timeout: float = _DEFAULT_TIMEOUTS["propose_timeout"]
    guard_timeout: float = _DEFAULT_TIMEOUTS["guard_timeout"]

    @property
    def kind(self) -> str:
        """`scenario` when an engine runs scenario files, `command` when a bench command is timed."""
        return "scenario" if self.engine else "command"

    @property
    def interpreter(self) -> Path | None:
        """The configured `python`, resolved against the repository root (None: not configured)."""
        if self.python is None:
            return None
        path = Path(self.python).expanduser()
        return path if path.is_absolute() else self.root / path

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
    unknown = sorted(set(table) - set(_STRING_KEYS + _LIST_KEYS + _NUMBER_KEYS + _OTHER_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown simopt key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in _LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise UserError(f"{where}: {key} must be a list of non-empty strings")
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
    if values["engine"] and any(key in table for key in _COMMAND_ONLY):
        shown = ", ".join(key for key in _COMMAND_ONLY if key in table)
        raise UserError(f"{where}: {shown} are for command targets (a `bench` command), not an `engine` target")
    values.update(_command_extras(where, table, values))
    return Target(root=root, config_path=config_path, **values)


def _command_extras(where: str, table: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The environment and equality-guard keys of a command target, validated."""
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and isinstance(value, str)
        for name, value in env.items()
    ):
        raise UserError(f"{where}: env must be a table of NAME = \"string\" (e.g. env = {{ PYTHONPATH = \"src\" }})")
    from simopt.sandbox.policy import is_secret

    refused = sorted(name for name in env if is_secret(name) or name == "PATH")
    if refused:
        raise UserError(f"{where}: env {', '.join(refused)}: secrets never enter the sandbox the commands run in, "
                        "and PATH is led by `python`")
    if values["bench_clock"] not in (None, *BENCH_CLOCKS):
        raise UserError(f"{where}: bench_clock(={values['bench_clock']!r}) must be one of {', '.join(BENCH_CLOCKS)}")
    command = values["equal_output"]
    if command is not None and "{seed}" not in command:
        raise UserError(f"{where}: equal_output(={command!r}) must contain {{seed}}, where each seed goes")
    seeds = table.get("equal_output_seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
                                              for seed in seeds):
        raise UserError(f"{where}: equal_output_seeds(={seeds!r}) must be a list of integers >= 0")
    fresh = table.get("equal_output_fresh", DEFAULT_FRESH_SEEDS)
    if isinstance(fresh, bool) or not isinstance(fresh, int) or not 0 <= fresh <= MAX_FRESH_SEEDS:
        raise UserError(f"{where}: equal_output_fresh(={fresh!r}) must be an integer from 0 to {MAX_FRESH_SEEDS}")
    if command is not None and not seeds and not fresh:
        raise UserError(f"{where}: equal_output needs seeds: set equal_output_seeds or equal_output_fresh > 0")
    if command is None and ("equal_output_seeds" in table or "equal_output_fresh" in table or values["equal_output_ignore"]):
        raise UserError(f"{where}: equal_output_seeds, equal_output_fresh and equal_output_ignore need `equal_output`")
    for pattern in values["equal_output_ignore"]:
        try:
            re.compile(pattern)
        except re.error as error:
            raise UserError(f"{where}: equal_output_ignore pattern {pattern!r} is not a regular expression: {error}") from None
    return {"env": tuple(sorted(env.items())), "equal_output_seeds": tuple(seeds), "equal_output_fresh": fresh}


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
