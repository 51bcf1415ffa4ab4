"""The one small interface every proposer implements.

A proposer gets a `Brief` and the candidate worktree; it edits files in the worktree and returns
a `Proposal` (what it did and why). The loop, not the proposer, decides what happens next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Brief:
    """What a proposer needs to know for one experiment."""

    goal: str
    experiment: int
    scenario: str
    editable: tuple[str, ...]
    protected: tuple[str, ...]
    best_commit: str
    best_speedup: float
    recent: tuple[dict[str, Any], ...] = ()
    """The last experiments as recorded in history.jsonl (status, description, metric, asi)."""
    unmeasured: int = 0
    """Earlier experiments of the session the machine was too busy to measure (status `busy`): a
    patch queue proposes their patches again, so experiment n applies patch n - unmeasured."""

    def to_markdown(self) -> str:
        lines = [
            f"# simopt brief — experiment {self.experiment}",
            "",
            f"Goal: {self.goal}",
            f"Scenario: {self.scenario}",
            f"Current best: {self.best_commit[:12]} ({self.best_speedup:.3f}x the session's base)",
            "Editable: " + ", ".join(self.editable),
            "Protected: " + ", ".join(self.protected),
            "",
            "## Recent experiments",
        ]
        if not self.recent:
            lines.append("(none yet)")
        for record in self.recent:
            lines.append(f"- #{record.get('n')} {record.get('status')}: {record.get('description', '')}")
            asi = record.get("asi") or {}
            for key in ("rollback_reason", "next_action_hint"):
                if asi.get(key):
                    lines.append(f"  - {key}: {asi[key]}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Proposal:
    """The proposer's account of its edit. The edit itself is whatever changed in the worktree."""

    description: str
    hypothesis: str | None = None
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class NoProposal(Exception):
    """The proposer ran but proposed nothing this time (recorded as `no_proposal`)."""

    def __init__(self, reason: str, usage: Usage | None = None):
        super().__init__(reason)
        self.usage = usage


class ProposerExhausted(Exception):
    """The proposer has nothing more to offer (a patch queue ran out): the session ends."""


class ProposerUnavailable(Exception):
    """The proposer's service is gone (endpoint down after retries): the session stops, exit 3."""


class Proposer(Protocol):
    name: str

    def propose(self, brief: Brief, worktree: Path) -> Proposal:
        """Edit `worktree` and describe the edit. Any other exception counts as a crash."""
        ...
