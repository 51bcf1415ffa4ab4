"""What a session shows while it runs: a live rich panel, or one plain line per experiment.

Both reporters end with the same summary table. All user text (descriptions, reasons) is
printed with markup off, so a description can never inject rich markup.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from simopt.history import STATUSES

if TYPE_CHECKING:
    from rich.console import Console

_REASON_WIDTH = 90


def reason_of(record: dict[str, Any]) -> str:
    """One line saying why an experiment ended as it did."""
    if record.get("status") == "keep":
        metric = record.get("metric") or {}
        ratio = metric.get("ratio")
        return f"faster: ratio {ratio:#.4g}" if ratio else "faster"
    return str((record.get("asi") or {}).get("rollback_reason") or "")


def experiment_line(record: dict[str, Any]) -> str:
    """`#n status ratio description — reason` on one line."""
    ratio = (record.get("metric") or {}).get("ratio")
    ratio_text = f"{ratio:#.4g}" if ratio else "-"
    description = " ".join(str(record.get("description") or "").split())
    return f"#{record['n']} {record['status']} ratio={ratio_text} {description} — {_clip(reason_of(record))}"


class Reporter(Protocol):
    """What a session tells its user; printing happens only here."""

    def notice(self, text: str) -> None:
        """A line worth reading before anything else (the demo default, an unavailable proposer)."""

    def started(self, info: dict[str, Any]) -> None:
        """The session is open: tag, agent, scenario, budget, branch, results, previous experiments."""

    def stage(self, n: int, name: str) -> None:
        """Experiment `n` entered stage `name` (`bench: 40 pairs` carries detail after a colon)."""

    def experiment(self, record: dict[str, Any], best_speedup: float) -> None:
        """Experiment `record` was written to the history."""

    def checkpoint(self, record: dict[str, Any]) -> None:
        """A checkpoint was written to the history."""

    def close(self) -> None:
        """No more progress: stop any live display."""

    def summary(self, experiments: list[dict[str, Any]], best_speedup: float, stop_reason: str) -> None:
        """The final table of every experiment of the session, and the totals."""


class PlainReporter:
    """One line per experiment, for CI logs and --quiet."""

    def __init__(self, console: Console):
        self.console = console
        self.tag = ""

    def notice(self, text: str) -> None:
        """Print `text` on its own line."""
        self.console.print(text)

    def started(self, info: dict[str, Any]) -> None:
        """Print the session's header line."""
        self.tag = info["tag"]
        self.console.print(
            f"session {info['tag']}: {info['agent']} on {info['scenario']}, budget {info['budget']}, "
            f"branch {info['branch']}, results in {info['results']}"
        )

    def stage(self, n: int, name: str) -> None:
        """Stages are not shown in plain mode."""

    def experiment(self, record: dict[str, Any], best_speedup: float) -> None:
        """Print the experiment's line."""
        self.console.print(experiment_line(record))

    def checkpoint(self, record: dict[str, Any]) -> None:
        """Print the checkpoint's cumulative speedup."""
        speedup = record["cumulative_speedup"]
        measured = f"cumulative speedup {speedup:.3f}x" if speedup else f"not measured ({record.get('error')})"
        self.console.print(f"checkpoint after {record['after']}: {measured}")

    def close(self) -> None:
        """Nothing to stop in plain mode."""

    def summary(self, experiments: list[dict[str, Any]], best_speedup: float, stop_reason: str) -> None:
        """Print the summary table, the totals and what to run next."""
        print_summary(self.console, experiments, best_speedup, stop_reason)
        self.console.print(f"next: simopt report {self.tag}   (kept changes: branch simopt/{self.tag}; "
                           f"continue: simopt optimize --tag {self.tag} --resume)")


class LiveReporter(PlainReporter):
    """A live panel: experiment n of budget, stage, best speedup, counts by verdict, last verdict."""

    def __init__(self, console: Console):
        from rich.live import Live

        super().__init__(console)
        self.budget = 0
        self.n = 0
        self.stage_name = "starting"
        self.stage_started = time.monotonic()
        self.best = 1.0
        self.counts: Counter[str] = Counter()
        self.last = ""
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self._render)

    def started(self, info: dict[str, Any]) -> None:
        """Print the header line and start the live panel."""
        super().started(info)
        self.budget = info["budget"]
        self.best = info.get("best_speedup", 1.0)
        self.counts.update(r["status"] for r in info.get("previous", []))
        self.live.start()

    def stage(self, n: int, name: str) -> None:
        """Show the stage; its clock restarts when the stage (not its detail) changes."""
        if (n, name.partition(":")[0]) != (self.n, self.stage_name.partition(":")[0]):
            self.stage_started = time.monotonic()
        self.n, self.stage_name = n, name

    def experiment(self, record: dict[str, Any], best_speedup: float) -> None:
        """Print the experiment's line above the panel and update the counts."""
        self.live.console.print(experiment_line(record))
        self.counts[record["status"]] += 1
        self.best = best_speedup
        self.last = f"#{record['n']} {record['status']}: {_clip(reason_of(record))}"

    def close(self) -> None:
        """Stop the live panel, leaving its last state on screen."""
        self.live.stop()

    def _render(self):
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        elapsed = time.monotonic() - self.stage_started
        grid.add_row("experiment", Text(f"{self.n} of {self.budget}   stage: {self.stage_name} ({elapsed:.0f} s)"))
        grid.add_row("best speedup", Text(f"{self.best:.3f}x"))
        counts = "  ".join(f"{status} {self.counts[status]}" for status in STATUSES if self.counts[status])
        grid.add_row("verdicts", Text(counts or "-"))
        grid.add_row("last", Text(self.last or "-"))
        return grid


def make_reporter(console: Console, *, quiet: bool) -> Reporter:
    """A live reporter on a terminal, plain lines otherwise or with `quiet`."""
    if quiet or not console.is_terminal:
        return PlainReporter(console)
    return LiveReporter(console)


def print_summary(console: Console, experiments: list[dict[str, Any]], best_speedup: float, stop_reason: str) -> None:
    """The table of every experiment of the session, then the totals."""
    from rich.table import Table

    table = Table(title="simopt session", title_justify="left")
    for name, justify in (("n", "right"), ("status", "left"), ("ratio", "right"),
                          ("description", "left"), ("reason", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for record in experiments:
        ratio = (record.get("metric") or {}).get("ratio")
        table.add_row(str(record["n"]), record["status"], f"{ratio:#.4g}" if ratio else "-",
                      str(record.get("description") or "-"), _clip(reason_of(record)))
    console.print(table)
    counts = Counter(record["status"] for record in experiments)
    totals = ", ".join(f"{status} {counts[status]}" for status in STATUSES if counts[status])
    console.print(f"experiments: {len(experiments)} ({totals or 'none'})")
    console.print(f"best speedup: {best_speedup:.3f}x")
    console.print(f"stopped: {stop_reason}")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_WIDTH else text[: _REASON_WIDTH - 1] + "…"
