"""One experiment: propose -> scope -> smoke -> digest -> guards -> holdout -> bench -> keep or discard.

The keep rule: keep only on a significant speedup of at least the minimum effect; ties and
"not significant" are discarded. Every other outcome is rolled back, its diff saved, and its
record carries `asi` (actionable side information): why it was rolled back and what to try next.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from simopt.agents.base import (
    Brief, NoProposal, Proposal, Proposer, ProposerExhausted, ProposerUnavailable, Usage,
)
from simopt.evaluate import CheckFailed, Evaluator, tail
from simopt.target import Target
from simopt.workspace import Workspace

MAX_FAILURES_RECORDED = 5
BUSY_TRIES = 3  # benchmark decisions a busy machine may spoil before the session stops
BUSY_WAIT_S = 30.0  # pause between them, for the load to pass
BUSY_HINT = ("nothing is known against this change: the machine gave the benchmark too little CPU to decide; "
             "the session stopped and proposes it again when resumed")
TAMPER_HINT = ("this was seen: simopt runs every candidate in a sandbox and judges it from outside its process "
               "(clocks, digests, checks), so attempts to reach the clock, the judges, the network, files outside "
               "the engine or other processes are refused and recorded; make the simulator itself do less work "
               "for the same outcomes")


@dataclass
class Experiment:
    """Everything one experiment needs, fixed for a session."""

    target: Target
    workspace: Workspace
    evaluator: Evaluator
    proposer: Proposer
    base_digest: str | None
    min_effect: float
    max_seconds: float
    guard_profile: str
    holdout: Path | None = None


class _Stop(Exception):
    """Ends the pipeline early with a status, a rollback reason, a hint and evidence."""

    def __init__(self, status: str, reason: str, hint: str, *, usage: Usage | None = None, **evidence: Any):
        super().__init__(reason)
        self.status, self.reason, self.hint, self.evidence = status, reason, hint, evidence
        self.usage = usage


def run_experiment(
    setup: Experiment, n: int, brief: Brief, stage: Callable[[str], None] = lambda name: None
) -> dict[str, Any]:
    """Run experiment `n` to a verdict and return its history record (not yet written).

    `ProposerExhausted` and `ProposerUnavailable` propagate with the worktree reset. Ctrl-C
    gives a record with status `interrupted`.
    """
    workspace = setup.workspace
    record: dict[str, Any] = {
        "version": 1, "type": "experiment", "n": n, "parent": workspace.best_commit, "commit": None,
        "status": None, "description": None, "hypothesis": None, "metric": None, "guards": None,
        "asi": None, "patch": None, "changed_paths": [], "timings": {}, "timestamp": None,
    }
    try:
        _pipeline(setup, n, brief, stage, record)
    except _Stop as stop:
        record["status"] = stop.status
        record["asi"] = {"rollback_reason": stop.reason, "next_action_hint": stop.hint, **stop.evidence}
        if stop.usage is not None:
            record["usage"] = vars(stop.usage).copy()
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        record["asi"] = {"rollback_reason": "the user stopped the session during this experiment",
                         "next_action_hint": "resume the session with --resume"}
    except (ProposerExhausted, ProposerUnavailable):
        workspace.reset()
        raise
    except Exception as error:  # a failure inside a check is this experiment's, not the session's
        record["status"] = "crash"
        record["asi"] = {"rollback_reason": f"the checks failed: {_one_line(error)}",
                         "next_action_hint": "see the traceback; if it is in simopt itself, report it",
                         "traceback": tail("".join(traceback.format_exception(error)))}
    if record["status"] != "keep":
        record["asi"]["hypothesis"] = record["hypothesis"]
        stage("rollback")
        patch = workspace.results / "patches" / f"{n:04d}.diff"
        inside = [path for path in record["changed_paths"] if not path.startswith("<checkout>/")]
        if workspace.save_diff(patch, inside or None):
            record["patch"] = f"patches/{patch.name}"
        workspace.reset()
    record["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record


def _pipeline(setup: Experiment, n: int, brief: Brief, stage: Callable[[str], None], record: dict) -> None:
    workspace, target, evaluator = setup.workspace, setup.target, setup.evaluator
    timings = record["timings"]

    stage("propose")
    workspace.reset()
    started = time.perf_counter()
    before = workspace.user_checkout_state()
    try:
        proposal = _propose_within(setup.proposer, brief, workspace.worktree, target.propose_timeout)
    finally:
        timings["propose_s"] = round(time.perf_counter() - started, 3)
    record["description"] = proposal.description
    record["hypothesis"] = proposal.hypothesis
    if proposal.usage is not None:
        record["usage"] = vars(proposal.usage).copy()

    stage("scope")
    workspace.drop_ignored()  # only what git sees is checked, measured and kept
    changed = workspace.changed_paths()
    escaped = workspace.escaped_writes(before)
    hidden = workspace.hidden_paths()  # git sees nothing named .git, so neither would the rollback
    record["changed_paths"] = changed + escaped + hidden
    if not record["changed_paths"]:
        raise _Stop("no_proposal", "the proposer changed nothing", "edit at least one editable file")
    outside = target.out_of_scope(changed) + escaped + hidden
    if outside:
        raise _Stop(
            "scope_violation",
            "changed paths outside the editable scope: " + ", ".join(outside),
            f"edit only files matching {', '.join(target.editable)}; never "
            f"{', '.join(target.protected) or 'anything else'} nor files outside the worktree",
            out_of_scope=outside,
        )

    stage("smoke")
    try:
        digest = evaluator.smoke(workspace.worktree)
        stage("digest")
        if setup.base_digest is not None and digest is None:
            digest = evaluator.digest(workspace.worktree)
    except CheckFailed as failure:
        raise _check_stop(failure) from None
    if setup.base_digest is not None and digest != setup.base_digest:
        raise _Stop(
            "different_output",
            f"the digest on {evaluator.scenario_name} differs from the best's",
            "the change altered the simulation's outcome: an optimization must reproduce the "
            "semantics exactly (event order, ECMP hash, drops, tie-breaks)",
            digest_best=setup.base_digest, digest_candidate=digest,
        )

    stage("guards")
    started = time.perf_counter()
    try:
        guards = evaluator.guards(workspace.worktree, guards_dir=None, profile=setup.guard_profile)
        record["guards"] = _guard_summary(guards)
        if guards["failed"]:
            raise _guard_stop(record["guards"])
        if setup.holdout is not None:
            stage("holdout")
            holdout = evaluator.guards(workspace.worktree, guards_dir=setup.holdout, profile=setup.guard_profile)
            if holdout["failed"]:
                raise _Stop(
                    "holdout_fail", "a holdout guard failed",
                    "the change passes the visible guards but not hidden ones: make it correct in "
                    "general, not only on the cases the visible guards try",
                )
    except CheckFailed as failure:
        if failure.status == "tamper":
            raise _check_stop(failure) from None
        raise _Stop(failure.status, f"the guard run {failure.reason}",
                    "the guard suite did not finish on this change: look for a hang or a crash",
                    **failure.evidence) from None
    finally:
        timings["guard_s"] = round(time.perf_counter() - started, 3)

    stage("bench")
    started = time.perf_counter()
    try:
        for attempt in range(1, BUSY_TRIES + 1):
            result = evaluator.bench(
                workspace.best_dir, workspace.worktree,
                max_seconds=setup.max_seconds, min_effect=setup.min_effect, progress=lambda elapsed_s, pairs: stage(f"bench: {pairs} pairs"),
                stop_when_not_faster=True,  # only `faster` is kept: stop once the interval rules it out
            )
            if result["verdict"] != "busy" or attempt == BUSY_TRIES:
                break
            stage(f"bench: the machine is busy (the runners got {_share(result)} of a CPU); retrying in {BUSY_WAIT_S:g} s")
            time.sleep(BUSY_WAIT_S)
    except CheckFailed as failure:
        raise _check_stop(failure) from None
    finally:
        timings["bench_s"] = round(time.perf_counter() - started, 3)
    record["metric"] = metric_summary(result)
    verdict = result["verdict"]
    if verdict == "busy":
        raise _Stop("busy", f"the machine was too busy to measure, {BUSY_TRIES} times: {result.get('lanes', 0)} lane(s) "
                    f"in {result.get('seconds', 0):.0f} s, the runners got {_share(result)} of a CPU", BUSY_HINT,
                    bench=_bench_evidence(result))
    if verdict == "faster":
        stage("keep")
        trailer = {"tag": workspace.tag, "n": n, **record["metric"], "guard_seed": record["guards"]["seed"]}
        record["commit"] = workspace.keep(proposal.description, trailer, changed)
        record["status"] = "keep"
        return
    if verdict == "tamper":
        raise _Stop("tamper", f"the benchmark caught the candidate tampering: {result.get('error')}", TAMPER_HINT,
                    tamper={"reason": result.get("error"), "evidence": result.get("evidence")},
                    bench=_bench_evidence(result))
    if verdict == "crash":
        raise _Stop("crash", f"the candidate crashed during the benchmark: {result.get('error')}",
                    "fix the crash; the traceback is in the bench evidence", bench=_bench_evidence(result))
    if verdict == "different-output":
        raise _Stop("different_output", "the candidate's output differed during the benchmark",
                    "the change altered the simulation's outcome", bench=_bench_evidence(result))
    raise _Stop("discard", _discard_reason(record["metric"], setup.min_effect),
                _discard_hint(record["metric"], setup.min_effect))


def _propose_within(proposer: Proposer, brief: Brief, worktree: Path, timeout_s: float) -> Proposal:
    """The proposer's proposal, or a `_Stop` for what went wrong with it."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["proposal"] = proposer.propose(brief, worktree)
        except BaseException as error:  # handed to the main thread, which decides
            outcome["error"] = error

    thread = threading.Thread(target=work, name="simopt-proposer", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise _Stop("timeout", f"the proposer took more than {timeout_s:g} s",
                    "propose a smaller change that fits the time limit")
    error = outcome.get("error")
    if error is None:
        return outcome["proposal"]
    if isinstance(error, NoProposal):
        raise _Stop("no_proposal", f"no proposal: {error}", "edit at least one editable file", usage=error.usage)
    if isinstance(error, TimeoutError):
        raise _Stop("timeout", f"the proposer timed out: {error}", "propose a smaller change that fits the time limit")
    if isinstance(error, (ProposerExhausted, ProposerUnavailable, KeyboardInterrupt)) or not isinstance(error, Exception):
        raise error
    lines = tail("".join(traceback.format_exception(error)))
    raise _Stop("crash", f"the proposer failed: {_one_line(error)}",
                "the change could not be made: start again from the current best", traceback=lines)


def _check_stop(failure: CheckFailed) -> _Stop:
    if failure.status == "tamper":
        return _Stop("tamper", failure.reason, TAMPER_HINT, **failure.evidence)
    if failure.status == "timeout":
        hint = "the candidate runs far slower than the best or never ends: look for a loop that does not terminate"
    else:
        last = (failure.evidence.get("traceback") or ["(no traceback)"])[-1]
        hint = f"fix the error the candidate raises: {last}"
    return _Stop(failure.status, failure.reason, hint, **failure.evidence)


def _guard_summary(guards: dict[str, Any]) -> dict[str, Any]:
    return {"passed": guards["passed"], "failed": guards["failed"], "seed": guards.get("seed"),
            "failures": list(guards.get("failures") or [])[:MAX_FAILURES_RECORDED]}


def _guard_stop(guards: dict[str, Any]) -> _Stop:
    first = guards["failures"][0] if guards["failures"] else {"test": "(unknown)", "message": ""}
    message = _first_line(first.get("message") or "")
    seed = guards.get("seed")
    rerun = f" (reproduce with `simopt guard --seed {seed}`)" if seed is not None else ""
    return _Stop(
        "guard_fail",
        f"{guards['failed']} guard(s) failed, first {first['test']}: {message}",
        "the change is wrong on a case other than the benchmark: make it correct on the counterexample "
        f"of {first['test']}{rerun}, for every input, not only the benchmark's",
        failures=guards["failures"],
        seed=seed,
    )


def metric_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The bench fields a history record keeps."""
    keys = ("verdict", "ratio", "ci", "pairs", "lanes", "confidence", "baseline_s", "candidate_s")
    return {"name": result.get("metric"), **{key: result.get(key) for key in keys}}


def _share(result: dict[str, Any]) -> str:
    share = result.get("cpu_share")
    return f"{share:.0%}" if isinstance(share, (int, float)) else "none"


def _bench_evidence(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key not in ("samples", "pairs_log")}


def _discard_reason(metric: dict[str, Any], min_effect: float) -> str:
    return (f"not significantly faster by at least {min_effect:.1%}: verdict {metric['verdict']}, "
            f"ratio {_fmt(metric['ratio'])} (interval {_fmt_ci(metric['ci'])})")


def _discard_hint(metric: dict[str, Any], min_effect: float) -> str:
    ratio = metric.get("ratio")
    if metric["verdict"] == "slower" and ratio:
        return f"this made it {ratio - 1:.1%} slower: abandon this direction"
    if metric["verdict"] == "same":
        return "no measurable effect: this code is not where the time goes; profile the benchmark first"
    if metric["verdict"] == "not-faster":
        return (f"stopped early: the interval already ruled out a {min_effect:.1%} speedup; "
                "this code is not where the time goes, or the change is too small: profile the benchmark first")
    ci = metric.get("ci")
    if ci and ratio and ratio * (1 + min_effect) < 1:
        return (f"the estimate is a {1 / ratio - 1:.1%} speedup, but the interval ({_fmt_ci(ci)}) is too wide for "
                "this budget to show the minimum: the change may be good; a larger --max-seconds would decide it")
    if not ci:
        return (f"the budget held too few lanes ({metric.get('lanes') or 0}) for any interval: "
                "a larger --max-seconds would decide it")
    return (f"the estimate (ratio {_fmt(ratio)}, interval {_fmt_ci(ci)}) is short of the {min_effect:.1%} "
            "minimum speedup: aim for a larger change in the hot path")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:#.4g}"


def _fmt_ci(ci: Any) -> str:
    return "n/a" if not ci else f"{_fmt(ci[0])}..{_fmt(ci[1])}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
