"""The `command:CMD` proposer: an external coding agent run as a shell command in the worktree.

The command runs with the worktree as its current directory and two files named in its
environment, both outside the worktree:

- `SIMOPT_BRIEF`: the brief as Markdown (goal, scenario, editable files, best, recent verdicts);
- `SIMOPT_DESCRIPTION`: where the agent writes one line describing its change, optionally
  followed by a line `Hypothesis: ...`.

It must edit files and exit 0, not commit. It runs in its own process group, killed whole when
the command ends; on timeout `TimeoutError` is raised (recorded as `timeout`). A non-zero exit is a
crash carrying the last lines of its stderr; a clean worktree afterwards is `NoProposal`.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
from pathlib import Path

from simopt.agents.base import Brief, NoProposal, Proposal
from simopt.processes import kill_group, spawn

DEFAULT_TIMEOUT_S = 1740.0
"""A minute under the loop's default proposer limit (1800 s): the group dies before the loop gives up."""
STDERR_TAIL_LINES = 20
NO_DESCRIPTION = "(no description)"


class CommandFailed(RuntimeError):
    """The agent command exited non-zero; the message ends with the tail of its stderr."""


def read_description(path: Path) -> tuple[str, str | None]:
    """The description and optional hypothesis an agent wrote to `path`."""
    if not path.is_file():
        return NO_DESCRIPTION, None
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    hypothesis = None
    description_lines = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "hypothesis" and hypothesis is None:
            hypothesis = value.strip() or None
        else:
            description_lines.append(line)
    description = " ".join(description_lines)
    if description.lower().startswith("description:"):
        description = description[len("description:"):].strip()
    return description or NO_DESCRIPTION, hypothesis


def worktree_state(worktree: Path) -> tuple[str, str]:
    """HEAD and `git status --porcelain` of `worktree`: equal states mean nothing changed."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=worktree, capture_output=True, text=True, check=True, timeout=60
        ).stdout

    return git("rev-parse", "HEAD").strip(), git("status", "--porcelain", "--untracked-files=all")


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `text`."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_in_group(command: str, *, cwd: Path, env: dict[str, str], timeout_s: float, logs: Path) -> int:
    """Run `command` in a new process group, output to `logs`/stdout|stderr; the group dies with it."""
    with (
        open(logs / "stdout", "wb") as stdout,
        open(logs / "stderr", "wb") as stderr,
        open(os.devnull, "rb") as stdin,
    ):
        process = spawn(command, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
        _running.add(process)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"agent command exceeded its time limit of {timeout_s:g} s") from None
        finally:  # also after a normal exit: leftovers must not edit the next experiment's worktree
            kill_group(process)
            _running.discard(process)


def _output_tail(logs: Path) -> str:
    """The tail of stderr, or of stdout when the command wrote nothing to stderr."""
    for stream in ("stderr", "stdout"):
        text = tail((logs / stream).read_text(encoding="utf-8", errors="replace"))
        if text:
            return f" ({stream}):\n{text}"
    return " with no output"


# The loop runs a proposer in a thread it may abandon (Ctrl-C); the agent's own session is out of
# reach of the terminal's Ctrl-C, so whatever still runs when simopt exits is killed here.
_running: set[subprocess.Popen] = set()


@atexit.register
def _kill_running() -> None:
    for process in list(_running):
        kill_group(process)


class CommandProposer:
    """Runs a shell command as the coding agent of one experiment."""

    def __init__(self, command: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, program: Path | None = None):
        self.command = command
        self.timeout_s = timeout_s
        self.program = program
        self.name = f"command:{command}"

    def propose(self, brief: Brief, worktree: Path) -> Proposal:
        """Run the command on `worktree` with the brief; describe what it changed."""
        worktree = Path(worktree).resolve()
        before = worktree_state(worktree)
        with tempfile.TemporaryDirectory(prefix="simopt-agent-") as scratch:
            scratch = Path(scratch)
            brief_path = scratch / "brief.md"
            brief_path.write_text(brief.to_markdown(), encoding="utf-8")
            description_path = scratch / "description.txt"
            env = dict(os.environ, SIMOPT_BRIEF=str(brief_path), SIMOPT_DESCRIPTION=str(description_path))
            if self.program is not None:
                env["SIMOPT_PROGRAM"] = str(Path(self.program).resolve())
            code = run_in_group(self.command, cwd=worktree, env=env, timeout_s=self.timeout_s, logs=scratch)
            if code != 0:
                raise CommandFailed(f"agent command exited {code}" + _output_tail(scratch))
            description, hypothesis = read_description(description_path)
        if worktree_state(worktree) == before:
            raise NoProposal("the agent command changed nothing in the worktree")
        return Proposal(description=description, hypothesis=hypothesis)
