"""Agent spec strings (`demo`, `patches:DIR`, `command:CMD`, `openai`) to proposers."""

from __future__ import annotations

from pathlib import Path

from simopt.agents.base import Proposer
from simopt.errors import UserError

SPECS = "demo, patches:DIR, command:CMD or openai"


def make_proposer(spec: str, *, repo: Path, model: str | None = None, program: Path | None = None,
                  max_cost_usd: float | None = None, spent_usd: float = 0.0,
                  timeout_s: float | None = None) -> Proposer:
    """The proposer named by `spec`, for the target repository `repo`.

    `timeout_s` bounds one `command:` run; give it the loop's proposer time limit (minus a margin)
    so the agent's process group is killed before the loop stops waiting for it.
    """
    kind, sep, argument = spec.partition(":")
    argument = argument.strip()
    if kind == "demo" and not sep:
        from simopt.agents.demo import demo_proposer

        return demo_proposer(Path(repo))
    if kind == "patches" and sep:
        if not argument:
            raise UserError("agent 'patches:' needs a directory: patches:DIR")
        from simopt.agents.patches import PatchQueueProposer

        return PatchQueueProposer(Path(argument).expanduser())
    if kind == "command" and sep:
        if not argument:
            raise UserError("agent 'command:' needs a shell command: command:CMD")
        from simopt.agents.command import CommandProposer

        if timeout_s is None:
            return CommandProposer(argument, program=program)
        return CommandProposer(argument, program=program, timeout_s=timeout_s)
    if kind == "openai" and not sep:
        from simopt.agents.openai_agent import OpenAIProposer

        return OpenAIProposer(repo=Path(repo), model=model, program=program, max_cost_usd=max_cost_usd,
                              spent_usd=spent_usd)
    raise UserError(f"unknown agent {spec!r}: expected {SPECS}")
