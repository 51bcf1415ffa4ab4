"""Numbers about a session, computed from its history alone: pure functions, no printing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from simopt.history import STATUSES, History

# Statuses where the harness, not the benchmark, stopped a wrong or out-of-bounds change.
GUARD_CAUGHT = ("guard_fail", "holdout_fail", "different_output", "scope_violation", "tamper")
STAGES = ("propose_s", "guard_s", "bench_s")


@dataclass(frozen=True)
class Speedup:
    """A cumulative speedup against the session's base, and where it comes from."""

    value: float
    ci: tuple[float, float] | None
    source: str


@dataclass(frozen=True)
class Point:
    """One measured experiment on the scale of the session's base (speedups, higher is faster)."""

    n: int
    status: str
    speedup: float
    low: float | None
    high: float | None


def number_of(experiment: dict[str, Any], default: int = 0) -> int:
    """The experiment's number n, or `default` when the record lacks a usable one."""
    n = experiment.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) else default


def part(record: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object of a record (metric, timings, usage, asi), or {} when absent or malformed."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def ratio_of(experiment: dict[str, Any]) -> float | None:
    """The candidate/best time ratio of an experiment, or None when it was not measured."""
    ratio = part(experiment, "metric").get("ratio")
    return float(ratio) if _positive(ratio) else None


def interval_of(record: dict[str, Any]) -> tuple[float, float] | None:
    """The ratio interval of an experiment or checkpoint, or None when it has none."""
    ci = part(record, "metric").get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_positive(x) for x in ci):
        return (float(ci[0]), float(ci[1]))
    return None


def speedup_interval(ratio_ci: tuple[float, float]) -> tuple[float, float]:
    """A ratio interval turned into a speedup interval (1 / ratio), low first."""
    return (1.0 / max(ratio_ci), 1.0 / min(ratio_ci))


def best_so_far(experiments: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(n, best cumulative speedup after n) for every experiment: the product of kept speedups."""
    series, best = [], 1.0
    for experiment in experiments:
        ratio = ratio_of(experiment)
        if experiment.get("status") == "keep" and ratio is not None:
            best /= ratio
        series.append((number_of(experiment, len(series) + 1), best))
    return series


def points(experiments: list[dict[str, Any]]) -> list[Point]:
    """Every measured experiment placed on the base's scale: best before it times its speedup."""
    result, best = [], 1.0
    for experiment in experiments:
        ratio = ratio_of(experiment)
        if ratio is None:
            continue
        ci = interval_of(experiment)
        low, high = (best * s for s in speedup_interval(ci)) if ci else (None, None)
        status = str(experiment.get("status"))
        result.append(Point(number_of(experiment), status, best / ratio, low, high))
        if status == "keep":
            best /= ratio
    return result


def measured_checkpoints(history: History) -> list[tuple[dict[str, Any], float]]:
    """(checkpoint, its speedup against the base) for every checkpoint that measured one."""
    result = []
    for checkpoint in history.checkpoints:
        ratio = part(checkpoint, "metric").get("ratio")
        if not _positive(ratio):  # nothing kept yet, or the re-measurement failed
            continue
        value = checkpoint.get("cumulative_speedup")
        result.append((checkpoint, float(value) if _positive(value) else 1.0 / float(ratio)))
    return result


def cumulative_speedup(history: History) -> Speedup:
    """The last checkpoint's measured speedup when there is one, else the product of kept ones."""
    measured = measured_checkpoints(history)
    if measured:
        checkpoint, value = measured[-1]
        ci = interval_of(checkpoint)
        source = f"checkpoint after {checkpoint.get('after', '?')}"
        return Speedup(value, speedup_interval(ci) if ci else None, source)
    product = best_so_far(history.experiments)[-1][1] if history.experiments else 1.0
    return Speedup(product, None, "product of kept ratios")


def experiments_to_reach(series: list[tuple[int, float]], fraction: float) -> int | None:
    """The first n whose best-so-far holds `fraction` of the series' final gain (in log terms)."""
    if not series or series[-1][1] <= 1.0:
        return None
    target = fraction * math.log(series[-1][1])
    return next(n for n, best in series if math.log(best) >= target - 1e-12)


def status_counts(experiments: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many experiments ended in each status: vocabulary order, unknown statuses last."""
    counts: dict[str, int] = {}
    for experiment in experiments:
        status = str(experiment.get("status"))
        counts[status] = counts.get(status, 0) + 1
    order = {status: i for i, status in enumerate(STATUSES)}
    return dict(sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def wall_seconds(history: History) -> float | None:
    """Time the session ran: from each start (or resume) to the last record before the next one."""
    records = [*history.experiments, *history.checkpoints, *history.resumes]
    times = sorted(t for t in (_time(r.get("timestamp")) for r in records) if t is not None)
    starts = [_time(r.get("timestamp")) for r in history.resumes]
    first = _time((history.session or {}).get("started")) or (times[0] if times else None)
    if first is None:
        return None
    starts = sorted({first, *(s for s in starts if s is not None)})
    total = 0.0
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        inside = [t for t in times if t >= start and (end is None or t < end)]
        if inside:
            total += (max(inside) - start).total_seconds()
    return total


def last_record_time(history: History) -> str | None:
    """When the session last wrote a record (how fresh a running session's view is)."""
    records = [*history.experiments, *history.checkpoints, *history.resumes]
    stamped = [(t, r["timestamp"]) for r in records if (t := _time(r.get("timestamp"))) is not None]
    return max(stamped)[1] if stamped else (history.session or {}).get("started")


def usage_totals(experiments: Iterable[dict[str, Any]]) -> tuple[int | None, float | None]:
    """Total LLM tokens and cost in USD, or (None, None) when no experiment used an LLM."""
    tokens, cost, seen = 0, 0.0, False
    for experiment in experiments:
        usage = part(experiment, "usage")
        if not usage:
            continue
        seen = True
        tokens += int(_number(usage.get("prompt_tokens"))) + int(_number(usage.get("completion_tokens")))
        cost += _number(usage.get("cost_usd"))
    return (tokens, round(cost, 6)) if seen else (None, None)


def stage_seconds(experiments: Iterable[dict[str, Any]]) -> list[tuple[int, dict[str, float]]]:
    """(n, {stage: seconds}) for each experiment; a stage it never reached counts 0."""
    rows = []
    for experiment in experiments:
        timings = part(experiment, "timings")
        rows.append((number_of(experiment), {s: _number(timings.get(s)) for s in STAGES}))
    return rows


def rate(count: int, total: int) -> float | None:
    """count / total, or None for an empty session."""
    return count / total if total else None


def summarize(history: History) -> dict[str, Any]:
    """The session summary as a JSON-ready dict."""
    experiments = history.experiments
    counts = status_counts(experiments)
    speedup = cumulative_speedup(history)
    tokens, cost = usage_totals(experiments)
    series = best_so_far(experiments)
    session = history.session or {}
    total = len(experiments)
    return {
        "tag": history.tag,
        "scenario": session.get("scenario"),
        "agent": session.get("agent"),
        "base_commit": session.get("base_commit"),
        "branch": session.get("branch"),
        "started": session.get("started"),
        "resumes": len(history.resumes),
        "experiments": total,
        "kept": counts.get("keep", 0),
        "counts": counts,
        "cumulative_speedup": speedup.value,
        "cumulative_speedup_ci": list(speedup.ci) if speedup.ci else None,
        "cumulative_speedup_source": speedup.source,
        "best_so_far": series[-1][1] if series else 1.0,
        "experiments_to_50": experiments_to_reach(series, 0.5),
        "experiments_to_90": experiments_to_reach(series, 0.9),
        "keep_rate": rate(counts.get("keep", 0), total),
        "guard_caught_rate": rate(sum(counts.get(s, 0) for s in GUARD_CAUGHT), total),
        "crash_rate": rate(counts.get("crash", 0), total),
        "wall_s": wall_seconds(history),
        "last_record": last_record_time(history),
        "tokens": tokens,
        "cost_usd": cost,
        "warnings": list(history.warnings),
    }


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> float:
    """A count or duration field as a float; missing or malformed counts as 0."""
    return float(value) if _positive(value) else 0.0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
