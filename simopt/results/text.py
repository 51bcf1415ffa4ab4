"""Numbers as people read them: one small formatter per kind of value."""

from __future__ import annotations

from typing import Any

from simopt.results.summary import interval_of, part, ratio_of

DASH = "—"


def ratio_cell(experiment: dict[str, Any]) -> str:
    """'0.800 [0.780, 0.820]': the time ratio with its interval, or a dash when not measured."""
    ratio = ratio_of(experiment)
    if ratio is None:
        return DASH
    ci = interval_of(experiment)
    return f"{ratio:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{ratio:.3f}"


def speedup_text(value: float, ci: tuple[float, float] | list[float] | None = None) -> str:
    """'1.449x [1.429x, 1.471x]' or '1.449x' without an interval."""
    return f"{value:.3f}x [{ci[0]:.3f}x, {ci[1]:.3f}x]" if ci else f"{value:.3f}x"


def duration_text(seconds: float | None) -> str:
    """'1h02m03s', '24m00s' or '45s'."""
    if seconds is None:
        return DASH
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def tokens_text(tokens: int | None) -> str:
    """'30,000', or a dash when no LLM was used."""
    return DASH if tokens is None else f"{tokens:,}"


def cost_text(cost: float | None) -> str:
    """'$0.12', or a dash when no LLM was used."""
    return DASH if cost is None else f"${cost:.2f}"


def percent_text(fraction: float | None) -> str:
    """'25.0%', or a dash for an empty session."""
    return DASH if fraction is None else f"{100 * fraction:.1f}%"


def counts_text(counts: dict[str, int]) -> str:
    """'keep 3, discard 2, crash 1'."""
    return ", ".join(f"{status} {count}" for status, count in counts.items()) or "none"


def cumulative_text(summary: dict[str, Any]) -> str:
    """The cumulative speedup with its interval and its source."""
    value = speedup_text(summary["cumulative_speedup"], summary["cumulative_speedup_ci"])
    return f"{value} ({summary['cumulative_speedup_source']})"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The session summary as greppable 'key: value' lines."""
    return [
        f"tag: {summary['tag']}",
        f"scenario: {summary['scenario'] or DASH}",
        f"agent: {summary['agent'] or DASH}",
        f"experiments: {summary['experiments']}",
        f"kept: {summary['kept']}",
        f"by status: {counts_text(summary['counts'])}",
        f"cumulative speedup: {cumulative_text(summary)}",
        f"wall time: {duration_text(summary['wall_s'])}",
        f"last record: {summary['last_record'] or DASH}",
        f"tokens: {tokens_text(summary['tokens'])}",
        f"cost: {cost_text(summary['cost_usd'])}",
    ]


def reason_of(experiment: dict[str, Any]) -> str:
    """Why the experiment was rolled back (asi.rollback_reason), or empty."""
    return str(part(experiment, "asi").get("rollback_reason") or "")
