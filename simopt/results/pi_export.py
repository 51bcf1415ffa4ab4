"""A session as pi-autoresearch JSONL (autoresearch.jsonl), so tools built for it read ours.

pi-autoresearch logs an absolute metric per run against a baseline run. Ours is a paired ratio
against the best at the time, so the exported metric is the candidate's time relative to the
session's base (best-before x ratio): the baseline row is 1.0, kept rows trace the best-so-far.
docs/results.md documents the mapping field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from simopt.history import History
from simopt.results.summary import interval_of, part, ratio_of, usage_totals

METRIC_NAME = "time_vs_base"
# pi-autoresearch's status vocabulary is keep | discard | crash | checks_failed.
PI_STATUS = {
    "keep": "keep",
    "discard": "discard",
    "no_proposal": "discard",
    "interrupted": "discard",
    "busy": "discard",
    "crash": "crash",
    "timeout": "crash",
    "guard_fail": "checks_failed",
    "holdout_fail": "checks_failed",
    "tamper": "checks_failed",
    "different_output": "checks_failed",
    "scope_violation": "checks_failed",
}


def pi_records(history: History) -> list[dict[str, Any]]:
    """The config header, a baseline run for the base commit, then one run per experiment."""
    session = history.session or {}
    started = _epoch_ms(session.get("started"))
    records: list[dict[str, Any]] = [
        {
            "type": "config",
            "name": f"simopt {history.tag}: {session.get('scenario') or 'scenario'}",
            "metricName": METRIC_NAME,
            "metricUnit": "",
            "bestDirection": "lower",
        },
        {
            "run": 0,
            "commit": _short(session.get("base_commit")),
            "metric": 1.0,
            "metrics": {},
            "status": "keep",
            "description": "baseline: the session's base commit",
            "timestamp": started or 0,
            "segment": 0,
            "confidence": None,
        },
    ]
    best = 1.0
    for experiment in history.experiments:
        ratio = ratio_of(experiment)
        status = str(experiment.get("status"))
        metric = round(best * ratio, 6) if ratio is not None else 0  # pi logs 0 for no measurement
        if status == "keep" and ratio is not None:
            best *= ratio
        records.append(_run(experiment, metric, status))
    return records


def _run(experiment: dict[str, Any], metric: float, status: str) -> dict[str, Any]:
    measured = part(experiment, "metric")
    ratio, ci = ratio_of(experiment), interval_of(experiment)
    metrics = {}
    if ratio is not None:
        metrics["ratio"] = ratio
    if ci:
        metrics["ratio_ci_low"], metrics["ratio_ci_high"] = ci
    for key in ("baseline_s", "candidate_s"):
        if isinstance(measured.get(key), (int, float)):
            metrics[key] = measured[key]
    asi = dict(part(experiment, "asi"))
    asi["simopt_status"] = status
    if experiment.get("hypothesis"):
        asi.setdefault("hypothesis", experiment["hypothesis"])
    return {
        "run": experiment.get("n"),
        "commit": _short(experiment.get("commit")),
        "metric": metric,
        "metrics": metrics,
        "status": PI_STATUS.get(status, "discard"),
        "description": experiment.get("description") or "",
        "timestamp": _epoch_ms(experiment.get("timestamp")) or 0,
        "segment": 0,
        "confidence": measured.get("confidence"),
        "iterationTokens": usage_totals([experiment])[0],
        "asi": asi,
    }


def _short(sha: Any) -> str:
    return sha[:7] if isinstance(sha, str) else ""


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None
