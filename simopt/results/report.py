"""results/<tag>/report.md (and report.html): summary, plots, kept and discarded changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simopt.history import History
from simopt.results import document as doc
from simopt.results import text
from simopt.results.gitinfo import diffstat
from simopt.results.summary import STATUSES, interval_of, ratio_of, speedup_interval, summarize

MEANINGS = {
    "discard": "correct, but not significantly faster (slower, same, inconclusive, or stopped early as not-faster)",
    "scope_violation": "the proposal changed a path that is not editable or is protected",
    "crash": "the candidate (or the proposer) crashed",
    "timeout": "the smoke run or the proposer exceeded its time limit",
    "different_output": "the candidate's digest differs from the best's on the benchmark scenario",
    "guard_fail": "a visible guard failed",
    "holdout_fail": "a holdout guard failed",
    "tamper": "the candidate tried to deceive or escape its judges; the attempt was refused and recorded",
    "no_proposal": "the proposer changed nothing",
    "interrupted": "the user stopped the session during this experiment",
    "busy": "the machine was too busy to measure the change; the session stopped and proposes it again on resume",
}


def write_report(history: History, repo: Path, *, html: bool = False) -> list[Path]:
    """Write report.md, its PNG plots and optionally report.html next to the history."""
    from simopt.results.plots import progress_chart, stages_chart

    folder = history.path.parent
    progress = progress_chart(history, folder / "progress.png")
    stages = stages_chart(history, folder / "stages.png")
    blocks = report_blocks(history, repo, progress, stages)
    markdown = folder / "report.md"
    markdown.write_text(doc.to_markdown(blocks, folder), encoding="utf-8")
    written = [markdown, progress, stages]
    if html:
        page = folder / "report.html"
        page.write_text(doc.to_html(blocks, f"simopt report: {history.tag}"), encoding="utf-8")
        written.append(page)
    return written


def report_blocks(history: History, repo: Path, progress: Path, stages: Path) -> list[doc.Block]:
    """The report's content, independent of its format."""
    summary = summarize(history)
    blocks: list[doc.Block] = [doc.Heading(1, f"simopt report: {history.tag}"), doc.Paragraph(_intro(summary))]
    blocks += [doc.Heading(2, "Summary"), doc.Table(("measure", "value"), _summary_rows(summary))]
    blocks += [
        doc.Heading(2, "Progress"),
        doc.Image(progress, f"speedup per experiment in session {history.tag}"),
        doc.Paragraph(
            "Each measured experiment is placed at the speedup it would give against the session's"
            " base (the best so far times its own paired speedup), with its interval. Kept changes"
            " are green; the step line is the best so far (the product of the kept speedups);"
            " diamonds are checkpoints, where the best was measured again against the base;"
            " crosses mark experiments stopped before the benchmark."
        ),
        doc.Heading(2, "Time per stage"),
        doc.Image(stages, f"time per stage in session {history.tag}"),
    ]
    blocks += _kept_section(history, repo)
    blocks += _discarded_section(history)
    if history.warnings:
        blocks += [doc.Heading(2, "Warnings"), doc.Bullets(tuple(history.warnings))]
    return blocks


def _intro(summary: dict[str, Any]) -> str:
    base = (summary["base_commit"] or "?")[:12]
    return (
        f"Session {summary['tag']} optimized scenario {summary['scenario'] or '?'} with agent"
        f" {summary['agent'] or '?'}, from base commit {base} on branch {summary['branch'] or '?'},"
        f" started {summary['started'] or '?'}, resumed {summary['resumes']} time(s)."
        f" Cumulative speedup: {text.cumulative_text(summary)}."
    )


def _summary_rows(summary: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    def maybe(value: Any) -> str:
        return text.DASH if value is None else str(value)

    return (
        ("experiments", str(summary["experiments"])),
        ("kept", str(summary["kept"])),
        ("by status", text.counts_text(summary["counts"])),
        ("cumulative speedup", text.speedup_text(summary["cumulative_speedup"], summary["cumulative_speedup_ci"])),
        ("measured by", summary["cumulative_speedup_source"]),
        (
            "experiments to 50% / 90% of the best",
            f"{maybe(summary['experiments_to_50'])} / {maybe(summary['experiments_to_90'])}",
        ),
        ("keep rate", text.percent_text(summary["keep_rate"])),
        ("guard-caught rate", text.percent_text(summary["guard_caught_rate"])),
        ("crash rate", text.percent_text(summary["crash_rate"])),
        ("wall time", text.duration_text(summary["wall_s"])),
        ("last record", summary["last_record"] or text.DASH),
        ("tokens", text.tokens_text(summary["tokens"])),
        ("cost", text.cost_text(summary["cost_usd"])),
    )


def _kept_section(history: History, repo: Path) -> list[doc.Block]:
    kept = [e for e in history.experiments if e.get("status") == "keep"]
    blocks: list[doc.Block] = [doc.Heading(2, f"Kept changes ({len(kept)})")]
    if not kept:
        return blocks + [doc.Paragraph("No change was kept.")]
    rows = []
    for experiment in kept:
        commit = experiment.get("commit")
        stat = diffstat(repo, experiment.get("parent"), commit)
        rows.append((
            str(experiment.get("n", "?")),
            str(experiment.get("description") or ""),
            _speedup_cell(experiment),
            commit[:12] if isinstance(commit, str) else text.DASH,
            stat or "commit not in this repository",
            ", ".join(experiment.get("changed_paths") or []),
        ))
    headers = ("n", "description", "speedup [interval]", "commit", "diffstat", "changed paths")
    return blocks + [doc.Table(headers, tuple(rows))]


def _discarded_section(history: History) -> list[doc.Block]:
    others = [e for e in history.experiments if e.get("status") != "keep"]
    blocks: list[doc.Block] = [doc.Heading(2, f"Discarded changes by reason ({len(others)})")]
    if not others:
        return blocks + [doc.Paragraph("Nothing was discarded.")]
    order = {status: i for i, status in enumerate(STATUSES)}
    statuses = sorted({str(e.get("status")) for e in others}, key=lambda s: (order.get(s, len(order)), s))
    for status in statuses:
        group = [e for e in others if str(e.get("status")) == status]
        blocks.append(doc.Heading(3, f"{status} ({len(group)})"))
        if status in MEANINGS:
            blocks.append(doc.Paragraph(MEANINGS[status][0].upper() + MEANINGS[status][1:] + "."))
        rows = tuple(
            (str(e.get("n", "?")), str(e.get("description") or ""), text.ratio_cell(e), text.reason_of(e))
            for e in group
        )
        blocks.append(doc.Table(("n", "description", "ratio [interval]", "reason"), rows))
    return blocks


def _speedup_cell(experiment: dict[str, Any]) -> str:
    ratio = ratio_of(experiment)
    if ratio is None:
        return text.DASH
    ci = interval_of(experiment)
    return text.speedup_text(1 / ratio, speedup_interval(ci) if ci else None)
