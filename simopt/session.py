"""A session: experiments one after another on a branch, recorded in results/<tag>/history.jsonl.

A session stops at its budget, its time limit, when the proposer runs dry, after 10 consecutive
crashes, on Ctrl-C (the experiment in progress recorded as `interrupted`) or when the proposer's
service is gone (exit 3). `--resume` reopens it after any stop, even a kill -9: the branch goes
back to the last kept commit, numbering continues and nothing already written is rewritten.

Starting is atomic for the user: the session line is the first thing a new session writes,
before any branch or worktree exists. Killed before it, the session never happened (the same
tag starts afresh); killed after it, `--resume` makes or repairs whatever is missing.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from simopt import __version__
from simopt.errors import UserError

if TYPE_CHECKING:
    from simopt.agents.base import Proposer
    from simopt.evaluate import Evaluator
    from simopt.progress import Reporter

SCENARIO_MIN_EFFECT = 0.01
COMMAND_MIN_EFFECT = 0.03  # whole-process runs are noisier than paired slices (docs/optimize.md)
MAX_CONSECUTIVE_CRASHES = 10
CHECKPOINT_EVERY = 10
RECENT_IN_BRIEF = 5
DEFAULTS = {"budget": 20, "max_hours": None, "max_seconds": 60.0, "min_effect": None,
            "guard_profile": "standard", "holdout": None, "model": None, "program": None,
            "max_cost_usd": None}
EXIT_OK, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 3, 130


@dataclass
class Options:
    """The command line of `simopt optimize`; None means "the default, or the resumed session's"."""

    repo: Path
    scenario: str | None = None
    agent: str | None = None
    model: str | None = None
    tag: str | None = None
    resume: bool = False
    budget: int | None = None
    max_hours: float | None = None
    holdout: Path | None = None
    max_seconds: float | None = None
    min_effect: float | None = None
    guard_profile: str | None = None
    program: Path | None = None
    max_cost_usd: float | None = None


def run_session(options: Options, reporter: Reporter, *, proposer: Proposer | None = None,
                evaluator: Evaluator | None = None, environ: Mapping[str, str] | None = None,
                warn: Callable[[str], None] | None = None) -> int:
    """Run (or resume) a session and return its exit code.

    `proposer` and `evaluator` replace the ones the options name (tests script them); `warn`
    receives each line of a resumed history that was skipped or partly ignored.
    """
    from simopt.evaluate import make_evaluator
    from simopt.processes import MARKER
    from simopt.target import load_target
    from simopt.workspace import open_repo

    repo = open_repo(options.repo)
    root = Path(repo.working_tree_dir)
    target = load_target(root)
    tag, history = _identify(options, repo, target)
    stored = history.session if history else {}
    for warning in history.warnings if history else []:
        (warn or reporter.notice)(warning)
    agent = _choose_agent(options, stored, os.environ if environ is None else environ, reporter)
    sandbox = _choose_sandbox(agent, reporter)
    config, scenario = _settings(options, stored, target, tag)
    evaluator = evaluator or make_evaluator(target, scenario)
    if proposer is None:
        from simopt.agents.registry import make_proposer

        # the agent's own limit falls a little before the loop's, so its process group dies first
        limit = target.propose_timeout
        # a resumed session's cost limit counts what it already spent
        spent = sum(_cost(e) for e in (history.experiments if history else []))
        proposer = make_proposer(agent, repo=root, model=config["model"], program=config["program"],
                                 max_cost_usd=config["max_cost_usd"], spent_usd=spent,
                                 timeout_s=max(limit - 60, limit * 0.9))
    if options.budget is None and not stored and isinstance(getattr(proposer, "queue", None), list):
        config["budget"] = min(config["budget"], len(proposer.queue))  # a patch queue's own length
    marker = os.environ.get(MARKER)
    resumed = history is not None
    try:
        workspace, base_digest, history = _open_workspace(repo, tag, target, history, evaluator, agent, sandbox, config)
    except BaseException:
        _restore_marker(marker)
        raise
    try:
        if hasattr(evaluator, "plan_budget"):
            # planned on every start, resumed ones too: the session line is written before the
            # plan, so it holds the budget asked for, and a resumed session plans it again
            try:
                _fit_budget(options, config, evaluator, reporter)
            except BaseException:
                if not resumed:
                    workspace.destroy()  # no experiment yet: leave nothing that blocks the tag
                    _remove_history(workspace.results)
                raise
        runner = _Runner(target, workspace, evaluator, proposer, base_digest, config, reporter,
                         history.experiments, history.checkpoints)
        if resumed:
            from simopt.history import append_record

            append_record(runner.history_path, {"version": 1, "type": "resume", "timestamp": _now(), "sandbox": sandbox})
        reporter.started({"tag": tag, "agent": agent, "scenario": evaluator.scenario_name,
                          "budget": config["budget"], "branch": workspace.branch,
                          "results": str(workspace.results), "previous": list(runner.experiments),
                          "best_speedup": runner.best_speedup()})
        try:
            code, reason = runner.run()
        finally:
            reporter.close()
        reporter.summary(runner.experiments, runner.best_speedup(), reason)
        return code
    finally:
        workspace.close(remove_candidate=True)  # a resume recreates it
        _restore_marker(marker)


def _cost(record: dict[str, Any]) -> float:
    cost = (record.get("usage") or {}).get("cost_usd")
    return cost if isinstance(cost, (int, float)) and math.isfinite(cost) else 0.0


def _restore_marker(previous: str | None) -> None:
    from simopt.processes import MARKER

    if previous is None:
        os.environ.pop(MARKER, None)
    else:
        os.environ[MARKER] = previous


def _identify(options: Options, repo, target):
    """The session's tag and, when resuming, its history; `UserError` when neither fits."""
    from simopt.history import read_history
    from simopt.workspace import check_tag, ensure_clean, results_dir

    root = Path(repo.working_tree_dir)
    if not options.resume:
        tag = check_tag(options.tag) if options.tag else _fresh_tag(root)
        ensure_clean(repo, target)
        return tag, None
    if not options.tag:
        raise UserError("--resume needs the --tag of the session to continue")
    tag = check_tag(options.tag)
    history_path = results_dir(root, tag) / "history.jsonl"
    if not history_path.is_file():
        raise UserError(f"cannot resume {tag!r}: no session with that tag in {root / 'results'}")
    history = read_history(history_path)
    if history.session is None:
        problems = (warning.removeprefix(f"{history_path}:").split(": ", 1) for warning in history.warnings)
        why = "; ".join(f"line {number}: {problem.removeprefix('skipped a session line: ')}"
                        for number, problem in problems if "session line" in problem)
        raise UserError(f"cannot resume {tag!r}: {history_path} records no start of a session"
                        + (f" ({why})" if why else "") + "; start it again without --resume")
    return tag, history


def _choose_agent(options: Options, stored: dict[str, Any], environ, reporter) -> str:
    """--agent, else the resumed session's, else openai with an endpoint configured, else demo (said first)."""
    if options.agent:
        return _absolute_spec(options.agent)
    if stored.get("agent"):
        return stored["agent"]
    if stored:
        raise UserError(f"session {stored.get('tag') or ''!r}: its session line records no agent: pass --agent")
    if environ.get("OPENAI_API_KEY") or environ.get("OPENAI_BASE_URL"):
        return "openai"
    reporter.notice("no --agent and no OPENAI_API_KEY/OPENAI_BASE_URL set: using the offline demo proposer")
    return "demo"


def _settings(options: Options, stored: dict[str, Any], target, tag: str) -> tuple[dict[str, Any], str | None]:
    """The session's configuration and benchmark scenario, validated."""
    config = {}
    saved = stored.get("config") or {}
    for key, default in DEFAULTS.items():
        value = getattr(options, key)
        config[key] = value if value is not None else _checked(key, saved.get(key, default), tag)
    if config["min_effect"] is None:
        config["min_effect"] = SCENARIO_MIN_EFFECT if target.kind == "scenario" else COMMAND_MIN_EFFECT
    # whether the user set the bench budget (then a command target's plan keeps it), remembered
    # so that a resumed session does not replan a budget its user chose
    config["max_seconds_chosen"] = options.max_seconds is not None or saved.get("max_seconds_chosen") is True
    if config["program"] is not None:
        config["program"] = str(Path(config["program"]).resolve())
    if config["holdout"] is not None:
        config["holdout"] = str(Path(config["holdout"]).resolve())
        if not Path(config["holdout"]).is_dir():
            raise UserError(f"holdout folder {config['holdout']} does not exist")
    if stored and options.scenario and options.scenario != stored.get("scenario"):
        raise UserError(f"session {tag!r} benchmarks {stored.get('scenario')!r}, not {options.scenario!r}")
    scenario = options.scenario or stored.get("scenario") or target.scenario
    if target.kind == "scenario":
        from simopt.guard import PROFILES

        if not scenario:
            raise UserError("no --scenario given and the target config names no default `scenario`")
        if config["guard_profile"] not in PROFILES:
            raise UserError(f"guard profile(={config['guard_profile']!r}) must be one of {', '.join(PROFILES)}")
    return config, scenario


def _metric_name(evaluator) -> str:
    """What the session measures: netsim's CPU seconds; for a command target, whatever its bench
    prints as METRIC, which is known only once it ran (each experiment's metric.name says it)."""
    if hasattr(evaluator, "metric_name"):
        return evaluator.metric_name or "METRIC"
    return "cpu_s"


def _open_workspace(repo, tag: str, target, history, evaluator, agent: str, sandbox: str, config: dict[str, Any]):
    """The session's workspace, the base's benchmark digest (the reference every candidate must
    match) and its history, the session line written first for a new session.

    Before any change to the repository: the results folder is checked writable and the session
    locked, its processes marked. A session that fails its calibration before any experiment is
    undone whole (history, branch, checkouts), so the same tag can start again from a fixed base.
    """
    from simopt.evaluate import CheckFailed
    from simopt.history import append_record, read_history
    from simopt.processes import mark_session
    from simopt.workspace import ensure_new, ensure_results, lock_session, open_workspace, session_name

    root = Path(repo.working_tree_dir)
    results = ensure_results(root, tag)
    lock = lock_session(root, tag)
    try:
        mark_session(session_name(root, tag))
        if history is None:
            ensure_new(repo, tag)
            append_record(results / "history.jsonl",
                          _session_line(tag, root, target, evaluator.scenario_name, repo.head.commit.hexsha, agent, sandbox,
                                        config, _metric_name(evaluator)))
            history = read_history(results / "history.jsonl")
        base = history.session["base_commit"]
        workspace = open_workspace(repo, tag, base, _best_commit(history.experiments, base), lock=lock)
    except BaseException:
        lock.close()
        raise
    try:
        return workspace, evaluator.calibrate(workspace.base_dir), history
    except CheckFailed as failure:
        if not history.experiments:
            workspace.destroy()
            _remove_history(results)
        else:
            workspace.close()
        raise UserError(f"the base version fails before any change: {failure.reason}") from None
    except BaseException:
        workspace.close()
        raise


def _fit_budget(options: Options, config: dict[str, Any], evaluator, reporter: Reporter) -> None:
    """A command target's bench budget: timed on the base, raised when the default cannot decide."""
    from simopt.command_target import budget_advice

    plan = evaluator.plan_budget(config["min_effect"])
    config["max_seconds"], message = budget_advice(plan, config["max_seconds"], chosen=config["max_seconds_chosen"],
                                                   min_effect=config["min_effect"])
    reporter.notice(message)


def _choose_sandbox(agent: str, reporter) -> str:
    """The sandbox for candidate code, said when it is not the full one.

    Without bubblewrap or Landlock, only the shipped demo queue may run unconfined (announced);
    any other proposer needs --no-sandbox, which is recorded.
    """
    from simopt.sandbox import CHOICE_VARIABLE, SandboxUnavailable, choose, description

    try:
        backend = choose()
    except SandboxUnavailable as missing:
        if agent != "demo":
            raise
        os.environ[CHOICE_VARIABLE] = "none"
        reporter.notice(f"no sandbox on this machine ({missing}): the shipped demo patches run unconfined; "
                        "never run an LLM's code like this")
        return "none (no sandbox available; demo queue only)"
    if backend != "bwrap":
        reporter.notice(f"sandbox: {description(backend)}")
    return backend


def _session_line(tag: str, root: Path, target, scenario: str | None, base: str, agent: str, sandbox: str,
                  config: dict[str, Any], metric: str = "cpu_s") -> dict[str, Any]:
    """The first line of a new session's history."""
    from simopt.workspace import BRANCH_PREFIX

    return {
        "version": 1, "type": "session", "tag": tag, "target": str(root),
        "scenario": scenario, "base_commit": base, "branch": f"{BRANCH_PREFIX}{tag}",
        "metric": metric, "direction": "lower", "agent": agent, "sandbox": sandbox,
        "config": {"editable": list(target.editable), "protected": list(target.protected), **config},
        "simopt_version": __version__, "started": _now(),
    }


def _remove_history(results: Path) -> None:
    """Undo a session that never ran an experiment: its history, then its folder if nothing else is in it."""
    (results / "history.jsonl").unlink(missing_ok=True)
    try:
        results.rmdir()
    except OSError:
        pass


_LIMIT_RULES = {
    "budget": ("an integer >= 1", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "max_hours": ("a positive number or null", lambda v: v is None or _positive(v)),
    "max_seconds": ("a positive number", lambda v: _positive(v)),
    "min_effect": ("a number in (0, 1) or null",
                   lambda v: v is None or (_positive(v) and v < 1)),
    "guard_profile": ("a string", lambda v: isinstance(v, str)),
    "holdout": ("a path or null", lambda v: v is None or isinstance(v, str)),
    "model": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "program": ("a path or null", lambda v: v is None or isinstance(v, str)),
    "max_cost_usd": ("a positive number or null", lambda v: v is None or _positive(v)),
}


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _checked(key: str, value: object, tag: str) -> object:
    """A setting read back from a session line, if it has the type and range the session needs."""
    rule, check = _LIMIT_RULES[key]
    if not check(value):
        raise UserError(f"session {tag!r}: its recorded config.{key}(={value!r}) must be {rule}; "
                        f"pass --{key.replace('_', '-').replace('-usd', '')} to override it")
    return value


class _Runner:
    """The experiment loop of one session invocation."""

    def __init__(self, target, workspace, evaluator, proposer, base_digest, config, reporter,
                 previous: list[dict], checkpoints: list[dict]):
        from simopt.loop import Experiment

        self.setup = Experiment(
            target=target, workspace=workspace, evaluator=evaluator, proposer=proposer,
            base_digest=base_digest, min_effect=config["min_effect"], max_seconds=config["max_seconds"],
            guard_profile=config["guard_profile"], holdout=Path(config["holdout"]) if config["holdout"] else None,
        )
        self.config = config
        self.reporter = reporter
        self.history_path = workspace.results / "history.jsonl"
        self.experiments = list(previous)
        self.checkpoints = list(checkpoints)
        self.scenario = evaluator.scenario_name

    def run(self) -> tuple[int, str]:
        """Run experiments until a stop condition; return (exit code, why it stopped)."""
        from simopt.agents.base import ProposerExhausted, ProposerUnavailable
        from simopt.history import append_record
        from simopt.loop import run_experiment

        deadline = None if self.config["max_hours"] is None else time.monotonic() + self.config["max_hours"] * 3600
        crashes = 0
        n = max((record["n"] for record in self.experiments), default=0)
        if n and n % CHECKPOINT_EVERY == 0 and not any(c.get("after") == n for c in self.checkpoints):
            self._checkpoint(n)  # the previous run was stopped between an experiment and its checkpoint
        while True:
            if n >= self.config["budget"]:
                return EXIT_OK, f"budget of {self.config['budget']} experiments reached"
            if deadline is not None and time.monotonic() >= deadline:
                return EXIT_OK, f"time limit of {self.config['max_hours']:g} h reached"
            n += 1
            try:
                record = run_experiment(self.setup, n, self._brief(n), lambda name: self.reporter.stage(n, name))
            except ProposerExhausted as error:
                return EXIT_OK, f"the proposer has nothing more to propose ({error})"
            except ProposerUnavailable as error:
                self.reporter.notice(f"the proposer is unavailable: {error}")
                return EXIT_UNAVAILABLE, f"the proposer is unavailable: {error}"
            append_record(self.history_path, record)
            self.experiments.append(record)
            self.reporter.experiment(record, self.best_speedup())
            if record["status"] == "interrupted":
                return EXIT_INTERRUPTED, "interrupted by the user"
            if record["status"] == "busy":
                return EXIT_UNAVAILABLE, (f"the machine is too busy to measure experiment {n}; nothing is known against "
                                          "it: resume with --resume when the machine is quieter (it is proposed again)")
            crashes = crashes + 1 if record["status"] in ("crash", "timeout") else 0
            if crashes >= MAX_CONSECUTIVE_CRASHES:
                return EXIT_FAILURE, f"{crashes} consecutive crashes"
            if n % CHECKPOINT_EVERY == 0:
                self._checkpoint(n)

    def best_speedup(self) -> float:
        """The last checkpoint's measured speedup times the speedups of the keeps since."""
        speedup, after = 1.0, 0
        measured = [c for c in self.checkpoints if c.get("cumulative_speedup")]
        if measured:
            speedup, after = measured[-1]["cumulative_speedup"], measured[-1]["after"]
        for record in self.experiments:
            ratio = (record.get("metric") or {}).get("ratio")
            if record["status"] == "keep" and record["n"] > after and ratio:
                speedup /= ratio
        return speedup

    def _checkpoint(self, after: int) -> None:
        from simopt.history import append_record
        from simopt.loop import metric_summary

        workspace = self.setup.workspace
        self.reporter.stage(after, "checkpoint")
        record = {"version": 1, "type": "checkpoint", "after": after, "best_commit": workspace.best_commit,
                  "metric": None, "cumulative_speedup": 1.0}
        if workspace.best_commit != workspace.base_commit:
            try:
                result = self.setup.evaluator.bench(
                    workspace.base_dir, workspace.best_dir, max_seconds=self.config["max_seconds"],
                    min_effect=self.config["min_effect"],
                    progress=lambda elapsed_s, pairs: self.reporter.stage(after, f"checkpoint: {pairs} pairs"),
                )
            except Exception as error:  # a failed re-measurement must not end the session
                record.update(cumulative_speedup=None, error=" ".join(str(error).split()) or type(error).__name__)
            else:
                record["metric"] = metric_summary(result)
                ratio = record["metric"].get("ratio")
                record["cumulative_speedup"] = 1.0 / ratio if ratio else None
        record["timestamp"] = _now()
        append_record(self.history_path, record)
        self.checkpoints.append(record)
        self.reporter.checkpoint(record)

    def _brief(self, n: int):
        from simopt.agents.base import Brief

        target = self.setup.target
        return Brief(
            goal=f"make {self.scenario} run faster without changing any outcome; a change is kept only when "
                 "every guard passes and it is significantly faster than the current best",
            experiment=n, scenario=self.scenario, editable=target.editable, protected=target.protected,
            best_commit=self.setup.workspace.best_commit, best_speedup=self.best_speedup(),
            recent=tuple(self.experiments[-RECENT_IN_BRIEF:]),
            unmeasured=sum(1 for record in self.experiments if record.get("status") == "busy"),
        )


def _absolute_spec(agent: str) -> str:
    """`patches:DIR` with DIR made absolute, so a resume from another directory finds the queue."""
    kind, sep, argument = agent.partition(":")
    if kind == "patches" and sep and argument.strip():
        return f"patches:{Path(argument.strip()).expanduser().resolve()}"
    return agent


def _best_commit(experiments: list[dict[str, Any]], base_commit: str) -> str:
    kept = [record["commit"] for record in experiments if record.get("status") == "keep" and record.get("commit")]
    return kept[-1] if kept else base_commit


def _fresh_tag(root: Path) -> str:
    from simopt.workspace import branch_exists, open_repo, results_dir

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    repo = open_repo(root)
    tag, suffix = stamp, 1
    while branch_exists(repo, tag) or results_dir(root, tag).exists():
        suffix += 1
        tag = f"{stamp}-{suffix}"
    return tag


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
