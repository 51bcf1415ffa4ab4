"""Questions to git about a session's commits, by subprocess; nothing here changes the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(
    repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run one git command in `repo`, capturing its text output."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60, env=env,
        input=stdin,
    )


def has_commit(repo: Path, sha: str | None) -> bool:
    """True when `sha` names a commit present in `repo`."""
    if not sha:
        return False
    return git(repo, "cat-file", "-e", f"{sha}^{{commit}}").returncode == 0


def diffstat(repo: Path, parent: str | None, commit: str | None) -> str | None:
    """'2 files changed, 10 insertions(+), 3 deletions(-)' for parent..commit, None if unknown."""
    if not has_commit(repo, commit):
        return None
    base = parent if has_commit(repo, parent) else f"{commit}^"
    result = git(repo, "diff", "--shortstat", base, commit)
    if result.returncode != 0:
        return None
    return result.stdout.strip() or "no changes"
