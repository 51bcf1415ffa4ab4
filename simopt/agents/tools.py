"""The tools an LLM proposer may call, confined to the candidate worktree.

Every path is relative to the worktree: absolute paths, `..` and symlinks that lead outside are
refused. Any file may be read; writing needs the path to match an editable glob and no protected
glob, and a refusal names the rule. Running and profiling the scenario call `simopt run --repo
WORKTREE` in a subprocess (the installed harness, the worktree's engine) under a time limit; on a
target timed by a benchmark command, `run_scenario` runs that command in the worktree instead.
Results are plain text for the model; a mistake the model made comes back as text starting with
`error:`, never raises.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from simopt.processes import run_in_group
from simopt.target import glob_match

MAX_RESULT_CHARS = 16_000
MAX_READ_LINES = 400
MAX_LIST_ENTRIES = 400
MAX_SEARCH_HITS = 60
SKIPPED_DIRS = {".git", "__pycache__", ".simopt", ".pytest_cache", ".hypothesis", "results"}


class ToolError(Exception):
    """A refused or failed tool call; its message goes back to the model."""


@dataclass(frozen=True)
class Param:
    type: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """The tool in the Chat Completions `tools` format."""
        properties = {name: {"type": p.type, "description": p.description} for name, p in self.params.items()}
        required = [name for name, p in self.params.items() if p.required]
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {"type": "object", "properties": properties, "required": required},
            },
        }


TOOLS = (
    Tool("list_files", "List the files under a directory of the worktree, marking which you may edit.",
         {"path": Param("string", "directory relative to the worktree root (default: the root)", False)}),
    Tool("read_file", f"Read a text file with line numbers, at most {MAX_READ_LINES} lines per call.",
         {"path": Param("string", "file path relative to the worktree root"),
          "start_line": Param("integer", "first line, 1-based (default 1)", False),
          "end_line": Param("integer", "last line, inclusive (default: start_line + 399)", False)}),
    Tool("search", "Search files for a Python regular expression; prints path:line: text.",
         {"pattern": Param("string", "Python regular expression"),
          "path": Param("string", "directory or file to search (default: the root)", False)}),
    Tool("edit_file", "Replace one exact occurrence of old_text by new_text in an editable file. "
         "old_text must occur exactly once: include enough surrounding lines to make it unique.",
         {"path": Param("string", "file path relative to the worktree root"),
          "old_text": Param("string", "the exact text to replace, whitespace included"),
          "new_text": Param("string", "the replacement")}),
    Tool("write_file", "Create or overwrite an editable file with the given content.",
         {"path": Param("string", "file path relative to the worktree root"),
          "content": Param("string", "the whole new content of the file")}),
    Tool("run_scenario", "Run the benchmark scenario on the worktree's current code: "
         "digest, events, packet-hops and wall time (one run, noisy: the harness measures properly)."),
    Tool("profile_scenario", "Run the scenario under cProfile: the top functions by cumulative time "
         "(tottime is the time spent in the function itself)."),
    Tool("submit", "Propose the edits now in the worktree and end this experiment.",
         {"description": Param("string", "what you changed, one or two sentences"),
          "hypothesis": Param("string", "why it should be faster while giving identical output", False)}),
)
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
}


def parse_arguments(tool_name: str, raw: str | None) -> dict[str, Any]:
    """Decode and check a tool call's JSON arguments; unknown keys are ignored."""
    tool = TOOLS_BY_NAME.get(tool_name)
    if tool is None:
        raise ToolError(f"unknown tool {tool_name!r}; the tools are: {', '.join(TOOLS_BY_NAME)}")
    try:
        arguments = json.loads(raw) if raw and raw.strip() else {}
    except json.JSONDecodeError as error:
        raise ToolError(f"the arguments of {tool_name} are not valid JSON ({error}); send a JSON object") from None
    if not isinstance(arguments, dict):
        raise ToolError(f"the arguments of {tool_name} must be a JSON object, got {type(arguments).__name__}")
    checked = {}
    for name, param in tool.params.items():
        if name not in arguments or arguments[name] is None:
            if param.required:
                raise ToolError(f"{tool_name} needs the argument {name!r} ({param.description})")
            continue
        value = arguments[name]
        if param.type == "integer" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not _JSON_TYPES[param.type](value):
            raise ToolError(f"{tool_name}: {name!r} must be of type {param.type}, got {value!r}")
        checked[name] = value
    return checked


class WorktreeTools:
    """The tools of one experiment, bound to one worktree and one scenario."""

    def __init__(self, root: Path, *, editable: tuple[str, ...], protected: tuple[str, ...],
                 scenario: str, run_timeout_s: float = 300.0, bench_command: str | None = None):
        self.root = Path(root).resolve()
        self.bench_command = bench_command
        self.editable = tuple(editable)
        self.protected = tuple(protected)
        self.scenario = scenario
        self.run_timeout_s = run_timeout_s
        self._originals: dict[str, bytes | None] = {}

    @property
    def changed_paths(self) -> list[str]:
        """Paths whose content now differs from before this experiment's first write to them."""
        changed = []
        for rel, original in sorted(self._originals.items()):
            path = self.root / rel
            current = path.read_bytes() if path.is_file() else None
            if current != original:
                changed.append(rel)
        return changed

    def editable_files(self) -> list[str]:
        """Every file in the worktree that the tools may write, as relative paths."""
        rels = (file.relative_to(self.root).as_posix() for file in _walk(self.root))
        return sorted(rel for rel in rels if self.write_refusal(rel) is None)

    def call(self, name: str, raw_arguments: str | None) -> str:
        """Run a tool call (not `submit`) and return its result text, errors included."""
        try:
            arguments = parse_arguments(name, raw_arguments)
            if name == "submit":
                raise ToolError("submit is handled by the agent, not the tools")
            text = getattr(self, name)(**arguments)
        except ToolError as error:
            text = f"error: {error}"
        except (OSError, ValueError) as error:
            text = f"error: {type(error).__name__}: {error}"
        return _truncate(text)

    def write_refusal(self, rel: str) -> str | None:
        """Why writing `rel` is refused, or None when it is allowed."""
        for pattern in self.protected:
            if glob_match(pattern, rel):
                return f"{rel} is protected (it matches the protected glob {pattern!r}); you may read it, not change it"
        if not any(glob_match(pattern, rel) for pattern in self.editable):
            return f"{rel} is not editable (it matches none of the editable globs: {', '.join(self.editable)})"
        return None

    def resolve(self, path: str) -> tuple[Path, str]:
        """The absolute path and the worktree-relative POSIX path of `path`, refused if outside."""
        if not path or not path.strip():
            raise ToolError("empty path")
        candidate = Path(path)
        if candidate.is_absolute() or path.startswith("~"):
            raise ToolError(f"{path}: absolute paths are refused; use a path relative to the worktree root")
        if ".." in candidate.parts:
            raise ToolError(f"{path}: '..' is refused; every path stays inside the worktree")
        resolved = (self.root / candidate).resolve()
        if not resolved.is_relative_to(self.root):
            raise ToolError(f"{path}: resolves outside the worktree (through a symlink); refused")
        rel = resolved.relative_to(self.root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            raise ToolError(f"{path}: the .git directory is off limits")
        return resolved, rel

    def list_files(self, path: str = ".") -> str:
        """Files under a directory with their sizes and whether they are editable."""
        directory, rel = self.resolve(path)
        if not directory.is_dir():
            raise ToolError(f"{path}: not a directory")
        lines = []
        for file in sorted(_walk(directory)):
            file_rel = file.relative_to(self.root).as_posix()
            mark = "editable" if self.write_refusal(file_rel) is None else "read-only"
            lines.append(f"{file_rel}  {file.stat().st_size} bytes  {mark}")
            if len(lines) == MAX_LIST_ENTRIES:
                lines.append(f"... (stopped at {MAX_LIST_ENTRIES} files: list a subdirectory)")
                break
        return "\n".join(lines) if lines else f"{rel}: no files"

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Numbered lines of a text file."""
        file, rel = self.resolve(path)
        lines = _read_text(file, rel).splitlines()
        start = max(start_line, 1)
        end = min(end_line if end_line is not None else start + MAX_READ_LINES - 1, start + MAX_READ_LINES - 1, len(lines))
        if start > len(lines):
            return f"{rel} has {len(lines)} lines; nothing at line {start}"
        body = "\n".join(f"{number:5}  {lines[number - 1]}" for number in range(start, end + 1))
        return f"{rel} (lines {start}-{end} of {len(lines)})\n{body}"

    def search(self, pattern: str, path: str = ".") -> str:
        """Lines matching a regular expression, as path:line: text."""
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise ToolError(f"bad regular expression {pattern!r}: {error}") from None
        target, _ = self.resolve(path)
        files = [target] if target.is_file() else sorted(_walk(target))
        hits = []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            file_rel = file.relative_to(self.root).as_posix()
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{file_rel}:{number}: {line.strip()[:200]}")
                    if len(hits) == MAX_SEARCH_HITS:
                        return "\n".join(hits + [f"... (stopped at {MAX_SEARCH_HITS} matches: narrow the search)"])
        return "\n".join(hits) if hits else f"no match for {pattern!r}"

    def edit_file(self, path: str, old_text: str, new_text: str) -> str:
        """Replace the one occurrence of `old_text` in an editable file."""
        file, rel = self._writable(path)
        if not file.is_file():
            raise ToolError(f"{rel}: no such file (use write_file to create one)")
        text = _read_text(file, rel)
        count = text.count(old_text) if old_text else 0
        if count != 1:
            found = "not found" if count == 0 else f"found {count} times"
            raise ToolError(f"{rel}: old_text {found}; it must occur exactly once (copy it exactly, with more context)")
        self._remember(file, rel)
        file.write_text(text.replace(old_text, new_text, 1), encoding="utf-8")
        return f"edited {rel}: replaced {old_text.count(chr(10)) + 1} line(s) with {new_text.count(chr(10)) + 1}"

    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite an editable file."""
        file, rel = self._writable(path)
        if file.is_dir():
            raise ToolError(f"{rel} is a directory")
        self._remember(file, rel)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content, encoding="utf-8")
        return f"wrote {rel} ({len(content.splitlines())} lines)"

    def run_scenario(self) -> str:
        """One run of the scenario on the worktree's code: its summary as compact JSON."""
        if self.bench_command:
            return self._bench_run()
        summary, _ = self._simopt_run([])
        return json.dumps(summary)

    def profile_scenario(self) -> str:
        """The scenario under cProfile: its digest and the top functions."""
        if self.bench_command:
            raise ToolError(f"profiling needs a scenario target; this one is timed by `{self.bench_command}`, "
                            "which run_scenario runs")
        summary, profile = self._simopt_run(["--profile"])
        for prefix in (str(self.root) + os.sep, "/target/"):  # the worktree as the runner sees it
            profile = profile.replace(prefix, "")
        profile = re.sub(r"\S*/site-packages/", "", profile).strip()
        return f"digest {summary['digest']}, wall {summary['wall_s']:.3f} s (profiled, slower than usual)\n{profile}"

    def _writable(self, path: str) -> tuple[Path, str]:
        file, rel = self.resolve(path)
        refusal = self.write_refusal(rel)
        if refusal:
            raise ToolError(f"refused: {refusal}")
        return file, rel

    def _remember(self, file: Path, rel: str) -> None:
        if rel not in self._originals:
            self._originals[rel] = file.read_bytes() if file.is_file() else None

    def _bench_run(self) -> str:
        """The target's benchmark command in the worktree: exit code, wall time, the last output."""
        started = time.perf_counter()
        try:
            done = run_in_group(self.bench_command, cwd=self.root, timeout_s=self.run_timeout_s, env=_child_env(),
                                merge_stderr=True)
        except subprocess.TimeoutExpired:
            raise ToolError(f"the run did not finish within {self.run_timeout_s:g} s (timeout)") from None
        tail = "\n".join(done.stdout.strip().splitlines()[-25:])
        return f"`{self.bench_command}`: exit code {done.returncode}, wall {time.perf_counter() - started:.3f} s\n{tail}"

    def _simopt_run(self, extra: list[str]) -> tuple[dict[str, Any], str]:
        """`simopt run --json` on the worktree: its summary and its stderr; ToolError on failure."""
        # -P keeps the worktree's own copy of the harness off sys.path: only its engine is loaded.
        command = [sys.executable, "-P", "-m", "simopt.cli", "run", "--scenario", self.scenario,
                   "--repo", str(self.root), "--json", *extra]
        try:
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                                  timeout=self.run_timeout_s, env=_child_env())
        except subprocess.TimeoutExpired:
            raise ToolError(f"the run did not finish within {self.run_timeout_s:g} s (timeout)") from None
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-25:])
            raise ToolError(f"the run failed (exit code {done.returncode}):\n{tail}")
        return json.loads(done.stdout), done.stderr


def _walk(directory: Path):
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(dirpath, name)


def _read_text(file: Path, rel: str) -> str:
    if not file.is_file():
        raise ToolError(f"{rel}: no such file")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{rel}: not a UTF-8 text file") from None


def _truncate(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n... (truncated: {len(text) - MAX_RESULT_CHARS} more characters)"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPATH", None)
    return env
