"""Which repository a results command reads: --repo, else the current git toplevel."""

from __future__ import annotations

import subprocess
from pathlib import Path

from simopt.errors import UserError


def resolve_repo(path: str | None) -> Path:
    """The repository to read results from: `path` when given, else the current git toplevel."""
    if path is not None:
        repo = Path(path).expanduser()
        if not repo.is_dir():
            raise UserError(f"--repo {path}: not a directory")
        return repo.resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        raise UserError("git is not installed; pass --repo PATH") from None
    if top.returncode != 0:
        raise UserError("not inside a git repository; pass --repo PATH")
    return Path(top.stdout.strip())


def add_repo_argument(parser) -> None:
    """The --repo option every results command shares."""
    parser.add_argument(
        "--repo", metavar="PATH", help="repository holding results/ (default: the current git toplevel)"
    )
