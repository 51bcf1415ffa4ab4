"""The `patches:DIR` proposer: a queue of unified diffs, one per experiment, in name order.

A patch file may start with a header before the diff itself:

    Description: Cache next hops per (node, destination)
    Hypothesis: route lookups dominate the profile; caching them removes ~20% of the work

Without a `Description:` line the description is the file name. `git apply` ignores such
leading text, so a header never disturbs the diff.

Resume rule: experiment n applies the n-th patch of the queue (1-based, in name order). A
resumed session continues its numbering, so it continues the queue where it stopped; the patch
of an experiment that was interrupted is not retried; that of one the machine was too busy to
measure (`busy`) is.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from simopt.agents.base import Brief, Proposal, ProposerExhausted
from simopt.errors import UserError
from simopt.processes import run_in_group

PATCH_SUFFIXES = (".diff", ".patch")
_DIFF_STARTS = ("diff --git ", "--- ", "Index: ")
_GIT_APPLY_TIMEOUT_S = 60


class PatchDoesNotApply(RuntimeError):
    """`git apply` refused a patch; the message is git's own. The experiment counts as a crash."""


@dataclass(frozen=True)
class PatchHeader:
    description: str | None
    hypothesis: str | None
    expect: str | None = None
    """What a session should decide about the patch (the demo queue states it; tests check it)."""


def patch_queue(directory: Path) -> list[Path]:
    """The patch files of `directory` in name order."""
    return sorted(
        (path for path in directory.iterdir() if path.is_file() and path.suffix in PATCH_SUFFIXES),
        key=lambda path: path.name,
    )


def parse_header(text: str) -> PatchHeader:
    """Read `Description:`, `Hypothesis:` and `Expect:` from the lines before the diff starts."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(_DIFF_STARTS):
            break
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("description", "hypothesis", "expect") and value.strip() and key not in fields:
            fields[key] = value.strip()
    return PatchHeader(fields.get("description"), fields.get("hypothesis"), fields.get("expect"))


def apply_patch(patch: Path, worktree: Path) -> None:
    """Apply `patch` to `worktree` with `git apply`, all or nothing."""
    command = ["git", "apply", "--whitespace=nowarn", str(patch.resolve())]
    try:
        completed = run_in_group(command, cwd=worktree, timeout_s=_GIT_APPLY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PatchDoesNotApply(f"{patch.name}: git apply took more than {_GIT_APPLY_TIMEOUT_S} s") from None
    if completed.returncode != 0:
        message = (completed.stderr or completed.stdout).strip() or f"git apply exited {completed.returncode}"
        raise PatchDoesNotApply(f"{patch.name} does not apply: {message}")


class PatchQueueProposer:
    """Applies the n-th patch of a directory's queue at experiment n."""

    def __init__(self, directory: Path, *, name: str | None = None):
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"patch directory {directory} does not exist")
        self.directory = directory.resolve()
        self.queue = patch_queue(self.directory)
        if not self.queue:
            raise UserError(f"patch directory {directory} holds no *.diff or *.patch files")
        self.name = name or f"patches:{directory}"

    def propose(self, brief: Brief, worktree: Path) -> Proposal:
        """Apply the patch that belongs to `brief.experiment` and describe it from its header."""
        if brief.experiment < 1:
            raise ValueError(f"experiment(={brief.experiment}) must be >= 1")
        index = brief.experiment - 1 - brief.unmeasured
        if index >= len(self.queue):
            raise ProposerExhausted(f"all {len(self.queue)} patches of {self.directory} were proposed")
        patch = self.queue[max(index, 0)]
        header = parse_header(patch.read_text(encoding="utf-8", errors="replace"))
        apply_patch(patch, Path(worktree))
        return Proposal(
            description=header.description or patch.name,
            hypothesis=header.hypothesis,
            extra={"patch_file": patch.name},
        )
