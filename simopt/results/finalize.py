"""Squash a session's kept changes into one commit on simopt/<tag>-final, by git plumbing only.

The commit takes the tree of the last kept commit (else the session branch's head) with the
session's base commit as its parent. Nothing touches the user's working tree, index or HEAD:
`git commit-tree` writes the object and `git update-ref` creates the branch, refusing to move
one that already exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simopt.errors import UserError
from simopt.history import History
from simopt.results import text
from simopt.results.gitinfo import git, has_commit
from simopt.results.summary import (
    best_so_far, interval_of, measured_checkpoints, ratio_of, speedup_interval, summarize,
)

FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "simopt", "GIT_AUTHOR_EMAIL": "simopt@localhost",
    "GIT_COMMITTER_NAME": "simopt", "GIT_COMMITTER_EMAIL": "simopt@localhost",
}


@dataclass(frozen=True)
class Finalized:
    """The branch finalize created and the commit it points at."""

    branch: str
    commit: str
    source: str
    message: str


def finalize(history: History, repo: Path) -> Finalized:
    """Create simopt/<tag>-final: one commit from the base holding every kept change."""
    if git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise UserError(f"{repo} is not a git repository")
    session = history.session or {}
    base = session.get("base_commit")
    if not base:
        raise UserError(f"session {history.tag} has no session line with a base commit")
    kept = [e for e in history.experiments if e.get("status") == "keep"]
    if not kept:
        raise UserError(f"session {history.tag} has no kept change to finalize")
    branch = f"simopt/{history.tag}-final"
    if git(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}").returncode == 0:
        raise UserError(f"branch {branch} already exists; delete it first to finalize again")
    if not has_commit(repo, base):
        raise UserError(f"base commit {base[:12]} of session {history.tag} is not in {repo}")
    source = _source_commit(repo, session, kept)
    if git(repo, "merge-base", "--is-ancestor", base, source).returncode != 0:
        raise UserError(f"{source[:12]} does not descend from the session's base {base[:12]}")
    tree = _rev_parse(repo, f"{source}^{{tree}}")
    message = commit_message(history, kept, source)
    created = git(repo, "commit-tree", tree, "-p", base, "-F", "-", stdin=message, env=_identity(repo))
    if created.returncode != 0:
        raise UserError(f"git commit-tree failed: {created.stderr.strip()}")
    commit = created.stdout.strip()
    # An empty old value makes update-ref refuse if the branch appeared in the meantime.
    moved = git(repo, "update-ref", f"refs/heads/{branch}", commit, "")
    if moved.returncode != 0:
        raise UserError(f"cannot create branch {branch}: {moved.stderr.strip()}")
    return Finalized(branch, commit, source, message)


def commit_message(history: History, kept: list[dict[str, Any]], source: str) -> str:
    """Subject, the measured cumulative speedup with its interval, and one line per kept change."""
    summary = summarize(history)
    session = history.session or {}
    speedup = text.speedup_text(summary["cumulative_speedup"], summary["cumulative_speedup_ci"])
    scenario = session.get("scenario") or "the benchmark"
    lines = [
        f"simopt {history.tag}: {len(kept)} kept change{'s' if len(kept) != 1 else ''},"
        f" {summary['cumulative_speedup']:.3f}x faster on {scenario}",
        "",
        f"Measured cumulative speedup against base {str(session.get('base_commit'))[:12]}:"
        f" {speedup} ({summary['cumulative_speedup_source']}).",
    ]
    stale = _changes_after_last_checkpoint(history, kept)
    if stale:
        product = best_so_far(history.experiments)[-1][1]
        lines.append(
            f"Kept after that checkpoint: #{', #'.join(stale)}; with them the product of the kept"
            f" speedups is {product:.3f}x."
        )
    lines += ["", "Kept changes (speedup against the best before each, with its interval):"]
    for experiment in kept:
        description = experiment.get("description") or "(no description)"
        lines.append(f"- #{experiment.get('n', '?')} {description}: {_speedup(experiment)}")
    lines += [
        "",
        f"Squashed by simopt finalize from the tree of {source[:12]}"
        f" (session branch {session.get('branch') or '?'}, {summary['experiments']} experiments).",
    ]
    return "\n".join(lines) + "\n"


def _source_commit(repo: Path, session: dict[str, Any], kept: list[dict[str, Any]]) -> str:
    last = next((e.get("commit") for e in reversed(kept) if has_commit(repo, e.get("commit"))), None)
    if last:
        return _rev_parse(repo, last)
    branch = session.get("branch")
    if branch and has_commit(repo, f"refs/heads/{branch}"):
        return _rev_parse(repo, f"refs/heads/{branch}")
    raise UserError(f"neither a kept commit nor the session branch {branch} is in {repo}")


def _changes_after_last_checkpoint(history: History, kept: list[dict[str, Any]]) -> list[str]:
    measured = measured_checkpoints(history)
    if not measured:
        return []
    after = measured[-1][0].get("after", 0)
    return [str(e.get("n")) for e in kept if isinstance(e.get("n"), int) and e["n"] > after]


def _speedup(experiment: dict[str, Any]) -> str:
    ratio = ratio_of(experiment)
    if ratio is None:
        return "not measured"
    ci = interval_of(experiment)
    return text.speedup_text(1 / ratio, speedup_interval(ci) if ci else None)


def _rev_parse(repo: Path, name: str) -> str:
    result = git(repo, "rev-parse", "--verify", "--quiet", name)
    if result.returncode != 0:
        raise UserError(f"git cannot resolve {name} in {repo}")
    return result.stdout.strip()


def _identity(repo: Path) -> dict[str, str] | None:
    """The user's git identity when configured, else a neutral simopt one (commit-tree needs one)."""
    if all(git(repo, "var", name).returncode == 0 for name in ("GIT_COMMITTER_IDENT", "GIT_AUTHOR_IDENT")):
        return None
    return {**os.environ, **FALLBACK_IDENTITY}
