"""A tool-using LLM proposer over any OpenAI-compatible Chat Completions endpoint.

Each experiment is a fresh conversation: the program (system prompt), then the brief (editable
files, scenario, current best, recent experiments with their verdicts and side information).
The model works through the worktree-confined tools of `simopt.agents.tools` until it calls
`submit`. Per experiment it is bounded by tool calls and tokens; per session by `max_cost_usd`.
Transient endpoint faults (429, 5xx, connection errors, timeouts) are retried with exponential
backoff, then the proposer raises `ProposerUnavailable` and the loop stops the session.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from simopt.agents.base import Brief, NoProposal, Proposal, ProposerExhausted, ProposerUnavailable, Usage
from simopt.agents.pricing import Price, price_for, price_table
from simopt.agents.tools import TOOLS, WorktreeTools, parse_arguments, ToolError
from simopt.errors import UserError

DEFAULT_PROGRAM = Path(__file__).with_name("program.md")
# Local servers ignore the key, but the client insists on one.
LOCAL_PLACEHOLDER_KEY = "not-needed"
RECENT_SHOWN = 10
ASI_VALUE_CHARS = 400


class MalformedResponse(Exception):
    """The endpoint answered 200 with something that is not a chat completion."""


class OpenAIProposer:
    """Propose edits with a tool-calling model; configured by OPENAI_BASE_URL and OPENAI_API_KEY."""

    name = "openai"

    def __init__(self, *, repo: Path | str, model: str | None = None, program: Path | str | None = None,
                 max_cost_usd: float | None = None, max_tool_calls: int = 40,
                 max_tokens: int = 500_000, timeout_s: float = 120.0,
                 prices: Mapping[str, Any] | None = None, retries: int = 4, backoff_s: float = 2.0,
                 run_timeout_s: float = 300.0, spent_usd: float = 0.0):
        if max_tool_calls < 1:
            raise UserError(f"max_tool_calls(={max_tool_calls}) must be >= 1")
        if max_cost_usd is not None and max_cost_usd <= 0:
            raise UserError(f"--max-cost(={max_cost_usd}) must be > 0")
        self.repo = Path(repo)
        self.bench_command = _bench_command(self.repo)
        self.base_url = _checked_url(os.environ.get("OPENAI_BASE_URL") or None)
        self.api_key = os.environ.get("OPENAI_API_KEY") or None
        if self.base_url is None and self.api_key is None:
            raise UserError("the openai agent needs OPENAI_API_KEY (for api.openai.com) "
                            "or OPENAI_BASE_URL (for a local OpenAI-compatible server)")
        self.model = model or os.environ.get("OPENAI_MODEL")
        if not self.model:
            raise UserError("the openai agent needs a model: pass --model NAME or set OPENAI_MODEL")
        self.program = _load_program(program)
        self.price = price_for(self.model, price_table(prices))
        if max_cost_usd is not None and self.price is None:
            raise UserError(f"--max-cost needs a price for model {self.model!r}: add it to a JSON file "
                            f"named by SIMOPT_PRICES, e.g. {{\"{self.model}\": {{\"prompt\": 2.5, \"completion\": 10}}}}")
        self.max_cost_usd = max_cost_usd
        self.max_tool_calls = max_tool_calls
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.run_timeout_s = run_timeout_s
        self.spent_usd = spent_usd  # a resumed session starts from what it already spent
        self._client = None
        self._generation = 0

    def propose(self, brief: Brief, worktree: Path) -> Proposal:
        """Hold one conversation that edits `worktree`; return the submitted proposal."""
        if self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd:
            raise ProposerExhausted(f"the session's cost limit is reached (${self.spent_usd:.4f} of ${self.max_cost_usd:.2f})")
        self._generation += 1
        tools = WorktreeTools(Path(worktree), editable=brief.editable, protected=brief.protected,
                              scenario=brief.scenario, run_timeout_s=self.run_timeout_s,
                              bench_command=self.bench_command)
        conversation = _Conversation(self, tools)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.program},
            {"role": "user", "content": first_message(brief, tools)},
        ]
        return conversation.run(messages)

    def client(self):
        """The OpenAI client, built on first use (the import is slow); retries are ours."""
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key or LOCAL_PLACEHOLDER_KEY,
                                  timeout=self.timeout_s, max_retries=0)
        return self._client

    def complete(self, messages: list[dict[str, Any]], usage: "_Tally"):
        """One chat completion, retried on transient faults with exponential backoff."""
        import openai

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(_retry_delay(last, self.backoff_s * 2 ** (attempt - 1)))
            try:
                response = self.client().chat.completions.create(
                    model=self.model, messages=messages, tools=[tool.schema() for tool in TOOLS])
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as error:
                last = error
                continue
            except (json.JSONDecodeError, openai.APIResponseValidationError) as error:
                last = MalformedResponse(f"the endpoint's answer is not a chat completion ({error})")
                continue
            except openai.APIStatusError as error:
                if error.status_code in (408, 409) or error.status_code >= 500:
                    last = error
                elif error.status_code in (401, 403, 404):
                    raise ProposerUnavailable(f"{self._endpoint()}: {_describe(error)}") from error
                else:
                    raise NoProposal(f"the endpoint refused the request: {_describe(error)}", usage.usage()) from error
                continue
            if isinstance(getattr(response, "choices", None), list) and response.choices:
                return response
            last = MalformedResponse("the endpoint's answer has no choices")
        raise ProposerUnavailable(f"{self._endpoint()}: {_describe(last)}, still failing after {self.retries + 1} attempts")

    def _endpoint(self) -> str:
        return self.base_url or "api.openai.com"


class _Tally:
    """Token usage of one experiment, and its cost."""

    def __init__(self, price: Price | None):
        self.price = price  # None: an unpriced model, its cost counts as 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.requests = 0

    def add(self, usage) -> None:
        self.requests += 1
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens or 0
            self.completion_tokens += usage.completion_tokens or 0

    @property
    def cost_usd(self) -> float:
        return self.price.cost_usd(self.prompt_tokens, self.completion_tokens) if self.price else 0.0

    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens, round(self.cost_usd, 6))


class _Conversation:
    """The tool-calling loop of one experiment."""

    def __init__(self, proposer: OpenAIProposer, tools: WorktreeTools):
        self.proposer = proposer
        self.tools = tools
        self.tally = _Tally(proposer.price)
        self.generation = proposer._generation
        self.tool_calls = 0
        self.nudged = False

    def run(self, messages: list[dict[str, Any]]) -> Proposal:
        proposer = self.proposer
        spent_before = proposer.spent_usd
        while True:
            response = proposer.complete(messages, self.tally)
            self.tally.add(getattr(response, "usage", None))
            proposer.spent_usd = spent_before + self.tally.cost_usd
            message = response.choices[0].message
            calls = [_ToolCall.of(call, index) for index, call in enumerate((message.tool_calls if message else None) or [])]
            messages.append(_assistant_message(message, calls))
            if not calls:
                if self.tools.changed_paths and not self.nudged:
                    self.nudged = True
                    messages.append({"role": "user", "content": "You edited files but did not call submit. "
                                     "Call submit(description, hypothesis) to propose the edit."})
                    continue
                said = " ".join(((message.content if message else None) or "").split())[:300]
                self._stop(f"the model answered without submitting a proposal: {said or '(empty answer)'}")
            for call in calls:
                if proposer._generation != self.generation:
                    # The loop gave up on this experiment (its propose timeout) and started the next
                    # one in the same worktree: this conversation must not touch it any more.
                    self._stop("superseded by a newer experiment")
                self.tool_calls += 1
                if call.name == "submit":
                    outcome = self._submit(call.arguments)
                    if isinstance(outcome, Proposal):
                        return outcome
                    result = outcome
                else:
                    result = self.tools.call(call.name, call.arguments)
                left = proposer.max_tool_calls - self.tool_calls
                if 0 < left <= 3:
                    result += f"\n(note: {left} tool call(s) left in this experiment; submit soon)"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            self._check_limits()

    def _submit(self, raw_arguments: str | None) -> Proposal | str:
        try:
            arguments = parse_arguments("submit", raw_arguments)
        except ToolError as error:
            return f"error: {error}"
        description = " ".join(arguments["description"].split())
        if not description:
            return "error: submit needs a non-empty description"
        changed = self.tools.changed_paths
        if not changed:
            return "error: nothing in the worktree differs from the start of this experiment; edit first, then submit"
        hypothesis = " ".join(arguments.get("hypothesis", "").split()) or None
        return Proposal(description=description, hypothesis=hypothesis, usage=self.tally.usage(),
                        extra={"model": self.proposer.model, "requests": self.tally.requests,
                               "tool_calls": self.tool_calls, "changed_paths": changed})

    def _check_limits(self) -> None:
        proposer = self.proposer
        if self.tool_calls >= proposer.max_tool_calls:
            self._stop(f"the model used its {proposer.max_tool_calls} tool calls without submitting")
        tokens = self.tally.prompt_tokens + self.tally.completion_tokens
        if tokens >= proposer.max_tokens:
            self._stop(f"the model used {tokens} tokens (limit {proposer.max_tokens}) without submitting")
        if proposer.max_cost_usd is not None and proposer.spent_usd >= proposer.max_cost_usd:
            self._stop(f"the session's cost limit (${proposer.max_cost_usd:.2f}) was reached during this experiment")

    def _stop(self, reason: str):
        raise NoProposal(reason, self.tally.usage())


def first_message(brief: Brief, tools: WorktreeTools) -> str:
    """The experiment's brief for the model: files, scenario, current best, recent history."""
    editable = tools.editable_files()
    lines = [
        f"# Experiment {brief.experiment}",
        "",
        f"Goal: {brief.goal}",
        f"Scenario: {brief.scenario} (the benchmark; run_scenario and profile_scenario use it)",
        f"Current best: commit {brief.best_commit[:12]}, {brief.best_speedup:.3f}x faster than the session's start",
        f"Editable globs: {', '.join(brief.editable)}",
        f"Protected globs (read-only): {', '.join(brief.protected) or '(none)'}",
        "",
        "## Editable files",
        *(editable or ["(none found)"]),
    ]
    scenario_file = tools.root / "scenarios" / f"{brief.scenario}.toml"
    if scenario_file.is_file():
        lines += ["", f"## scenarios/{brief.scenario}.toml", "```toml", scenario_file.read_text(encoding="utf-8").strip(), "```"]
    lines += ["", "## Recent experiments (oldest first)"]
    recent = brief.recent[-RECENT_SHOWN:]
    lines += [_experiment_line(record) for record in recent] or ["(none yet: this is the first experiment)"]
    return "\n".join(lines) + "\n"


def _experiment_line(record: Mapping[str, Any]) -> str:
    metric = record.get("metric") or {}
    measured = ""
    if metric.get("ratio") is not None:
        measured = f" (time ratio {metric['ratio']:.3f}"
        measured += f", interval {metric['ci']}" if metric.get("ci") else ""
        measured += ")"
    line = f"- #{record.get('n')} {record.get('status')}{measured}: {record.get('description', '')}"
    if record.get("hypothesis"):
        line += f"\n  hypothesis: {record['hypothesis']}"
    for key, value in (record.get("asi") or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if len(text) > ASI_VALUE_CHARS:
            text = text[:ASI_VALUE_CHARS] + " ..."
        line += f"\n  {key}: {text}"
    return line


@dataclass(frozen=True)
class _ToolCall:
    """One tool call as the model sent it; missing parts (a lenient server's garbage) become empty."""

    id: str
    name: str
    arguments: str

    @classmethod
    def of(cls, call, index: int) -> "_ToolCall":
        function = getattr(call, "function", None)
        return cls(id=getattr(call, "id", None) or f"call_{index}",
                   name=getattr(function, "name", None) or "",
                   arguments=getattr(function, "arguments", None) or "")


def _assistant_message(message, calls: list[_ToolCall]) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": "assistant", "content": (message.content if message else None) or ""}
    if calls:
        entry["tool_calls"] = [{"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                               for call in calls]
    return entry


def _checked_url(url: str | None) -> str | None:
    """OPENAI_BASE_URL if it is an http(s) URL with a host (and a valid port), else `UserError`."""
    from urllib.parse import urlsplit

    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        valid = False
    if not valid:
        raise UserError(f"OPENAI_BASE_URL(={url!r}) must be an http:// or https:// URL with a host, "
                        "e.g. http://localhost:11434/v1")
    return url.strip()


def _load_program(program: Path | str | None) -> str:
    path = Path(program) if program is not None else DEFAULT_PROGRAM
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read the program file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"the program file {path} is not UTF-8 text (at byte offset {error.start})") from None
    if not text.strip():
        raise UserError(f"the program file {path} is empty")
    return text


def _bench_command(repo: Path) -> str | None:
    """The benchmark command of a command target; None for scenario targets or without a config."""
    from simopt.target import load_target

    try:
        target = load_target(repo)
    except UserError:
        return None
    return target.bench if target.kind == "command" else None


def _retry_delay(error: Exception | None, backoff: float) -> float:
    """The backoff, or the server's Retry-After when it asks for longer (capped at a minute)."""
    response = getattr(error, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(backoff, float(header)), 60.0) if header else backoff
    except ValueError:
        return backoff


def _describe(error: Exception | None) -> str:
    status = getattr(error, "status_code", None)
    text = " ".join(str(error).split())[:200]
    return f"HTTP {status}: {text}" if status else f"{type(error).__name__}: {text}"
