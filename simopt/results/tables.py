"""Rich tables of one session's experiments and of several sessions side by side."""

from __future__ import annotations

from typing import Any

from simopt.history import History
from simopt.results import text
from simopt.results.summary import GUARD_CAUGHT

STATUS_STYLES = {"keep": "bold green", "discard": "dim", "crash": "magenta", "timeout": "magenta"}


def experiments_table(history: History):
    """One row per experiment: n, status, ratio with its interval, description, reason."""
    from rich.table import Table
    from rich.text import Text

    session = history.session or {}
    table = Table(title=f"simopt session {history.tag} ({session.get('scenario') or 'scenario ?'})")
    table.add_column("n", justify="right")
    table.add_column("status")
    table.add_column("ratio [interval]", justify="right")
    table.add_column("description")
    table.add_column("reason")
    for experiment in history.experiments:
        status = str(experiment.get("status"))
        style = "red" if status in GUARD_CAUGHT else STATUS_STYLES.get(status, "")
        table.add_row(
            Text(str(experiment.get("n", "?"))),
            Text(status, style=style),
            Text(text.ratio_cell(experiment)),
            Text(str(experiment.get("description") or "")),
            Text(text.reason_of(experiment)),
        )
    return table


COMPARE_ROWS = (
    ("scenario", lambda s: s["scenario"] or text.DASH),
    ("agent", lambda s: s["agent"] or text.DASH),
    ("best cumulative speedup", lambda s: text.speedup_text(s["cumulative_speedup"], s["cumulative_speedup_ci"])),
    ("measured by", lambda s: s["cumulative_speedup_source"]),
    ("experiments", lambda s: str(s["experiments"])),
    ("kept", lambda s: str(s["kept"])),
    ("experiments to 50% of best", lambda s: _maybe(s["experiments_to_50"])),
    ("experiments to 90% of best", lambda s: _maybe(s["experiments_to_90"])),
    ("keep rate", lambda s: text.percent_text(s["keep_rate"])),
    ("guard-caught rate", lambda s: text.percent_text(s["guard_caught_rate"])),
    ("crash rate", lambda s: text.percent_text(s["crash_rate"])),
    ("wall time", lambda s: text.duration_text(s["wall_s"])),
    ("tokens", lambda s: text.tokens_text(s["tokens"])),
    ("cost", lambda s: text.cost_text(s["cost_usd"])),
)


def compare_table(summaries: list[dict[str, Any]]):
    """One column per session, one row per measure."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="simopt compare")
    table.add_column("")
    for summary in summaries:
        table.add_column(Text(summary["tag"]), justify="right")
    for label, cell in COMPARE_ROWS:
        table.add_row(Text(label), *(Text(cell(summary)) for summary in summaries))
    return table


def _maybe(value: Any) -> str:
    return text.DASH if value is None else str(value)
