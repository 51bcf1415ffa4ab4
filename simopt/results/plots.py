"""PNG charts of sessions (matplotlib, Agg backend): progress, time per stage, comparison."""

from __future__ import annotations

from pathlib import Path

from simopt.history import History
from simopt.results.summary import (
    STAGES, best_so_far, interval_of, measured_checkpoints, number_of, points, ratio_of,
    stage_seconds,
)
from simopt.results.text import duration_text

STAGE_LABELS = {"propose_s": "propose", "guard_s": "guards", "bench_s": "benchmark"}
STAGE_COLORS = {"propose_s": "#4C72B0", "guard_s": "#DD8452", "bench_s": "#55A868"}
KEEP_COLOR, OTHER_COLOR, FAIL_COLOR = "#2CA02C", "#9A9A9A", "#D62728"
LABEL_CHARS = 34
DESCRIBED_KEEPS = 6


def progress_chart(history: History, path: Path) -> Path:
    """Per-experiment speedup against the base, kept points highlighted, best-so-far as steps."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=150)
    series = best_so_far(history.experiments)
    if series:
        xs = [0] + [n for n, _ in series]
        ys = [1.0] + [best for _, best in series]
        ax.step(xs, ys, where="post", color=KEEP_COLOR, linewidth=2, label="best so far", zorder=2)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="session base", zorder=1)
    measured = points(history.experiments)
    for kept, color, size, label in ((False, OTHER_COLOR, 30, "discarded"), (True, KEEP_COLOR, 60, "kept")):
        chosen = [p for p in measured if (p.status == "keep") == kept]
        if not chosen:
            continue
        ax.errorbar(
            [p.n for p in chosen], [p.speedup for p in chosen], yerr=_yerr(chosen), fmt="none",
            ecolor=color, elinewidth=1, capsize=2, zorder=3,
        )
        ax.scatter(
            [p.n for p in chosen], [p.speedup for p in chosen], s=size, color=color,
            edgecolor="black" if kept else "none", linewidth=0.6, label=label, zorder=4,
        )
    _label_kept(ax, history)
    failed = [e for e in history.experiments if e.get("status") != "keep" and _unmeasured(e)]
    if failed:
        ax.scatter(
            [number_of(e) for e in failed], [0.04] * len(failed), marker="x", color=FAIL_COLOR,
            s=30, transform=ax.get_xaxis_transform(), label="stopped before the benchmark",
            zorder=4, clip_on=False,
        )
    _checkpoints(ax, history)
    session = history.session or {}
    ax.set_title(f"simopt {history.tag}: speedup per experiment ({session.get('scenario') or '?'})")
    ax.set_xlabel("experiment number")
    ax.set_ylabel("speedup against the session base (×, higher is faster)")
    _finish(ax, fig, empty=not history.experiments)
    return _save(fig, path)


def stages_chart(history: History, path: Path) -> Path:
    """Seconds spent proposing, guarding and benchmarking each experiment, stacked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=150)
    rows = stage_seconds(history.experiments)
    bottoms = [0.0] * len(rows)
    for stage in STAGES if rows else ():
        heights = [seconds[stage] for _, seconds in rows]
        total = duration_text(sum(heights))
        ax.bar(
            [n for n, _ in rows], heights, bottom=bottoms, width=0.8, color=STAGE_COLORS[stage],
            label=f"{STAGE_LABELS[stage]} (total {total})",
        )
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_title(f"simopt {history.tag}: time per stage")
    ax.set_xlabel("experiment number")
    ax.set_ylabel("wall time (s)")
    _finish(ax, fig, empty=not history.experiments)
    ax.set_ylim(bottom=0)
    return _save(fig, path)


def compare_chart(histories: list[History], path: Path) -> Path:
    """Best-so-far speedup against experiment number, one step line per session."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=150)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="session base")
    for history in histories:
        series = best_so_far(history.experiments)
        xs = [0] + [n for n, _ in series]
        ys = [1.0] + [best for _, best in series]
        (line,) = ax.step(xs, ys, where="post", linewidth=2, label=f"{history.tag} ({ys[-1]:.3f}×)")
        # A marker on every kept change: a session that ends on a keep has no step after it.
        changes = [(x, y) for x, y, before in zip(xs[1:], ys[1:], ys) if y != before]
        ax.plot([x for x, _ in changes], [y for _, y in changes], "o", color=line.get_color(), markersize=5)
    ax.set_title("simopt: best speedup so far, by session")
    ax.set_xlabel("experiment number")
    ax.set_ylabel("best speedup against the base (×, higher is faster)")
    _finish(ax, fig, empty=not any(h.experiments for h in histories))
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 12, "axes.labelsize": 10.5, "legend.fontsize": 9})
    return plt


def _yerr(chosen) -> list[list[float]]:
    lows = [p.speedup - p.low if p.low is not None else 0.0 for p in chosen]
    highs = [p.high - p.speedup if p.high is not None else 0.0 for p in chosen]
    return [lows, highs]


def _unmeasured(experiment: dict) -> bool:
    return ratio_of(experiment) is None


def _label_kept(ax, history: History) -> None:
    """Name the kept changes next to their points, as the autoresearch progress chart does."""
    kept = [p for p in points(history.experiments) if p.status == "keep"]
    descriptions = {number_of(e): str(e.get("description") or "") for e in history.experiments}
    last = max((number_of(e) for e in history.experiments), default=0)
    for p in kept:
        # Past a few, descriptions overlap: "#n" points to the report's table of kept changes.
        label = descriptions.get(p.n, "") if len(kept) <= DESCRIBED_KEEPS else f"#{p.n}"
        if len(label) > LABEL_CHARS:
            label = label[: LABEL_CHARS - 1] + "…"
        right_half = p.n > 0.55 * last  # grow leftwards there, so the label stays inside the axes
        ax.annotate(
            label, (p.n, p.speedup), xytext=(-6 if right_half else 4, 7), textcoords="offset points",
            fontsize=8, color="#1B5E20", ha="right" if right_half else "left",
        )


def _checkpoints(ax, history: History) -> None:
    xs, ys, lows, highs = [], [], [], []
    for checkpoint, value in measured_checkpoints(history):
        ci = interval_of(checkpoint)
        xs.append(checkpoint.get("after", 0))
        ys.append(value)
        lows.append(value - 1 / max(ci) if ci else 0.0)
        highs.append(1 / min(ci) - value if ci else 0.0)
    if xs:
        ax.errorbar(
            xs, ys, yerr=[lows, highs], fmt="D", color="black", markersize=6, capsize=3,
            label="re-measured against the base (checkpoint)", zorder=5,
        )


def _finish(ax, fig, *, empty: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.03, y=0.1)
    if empty:
        ax.set_xlim(0, 1)
        ax.text(0.5, 0.65, "no experiments yet", transform=ax.transAxes, ha="center", color="#666666")
    ax.grid(True, axis="y", alpha=0.3)
    # Below the axes, so the legend never hides a data point.
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    fig.tight_layout()


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)
    return path
