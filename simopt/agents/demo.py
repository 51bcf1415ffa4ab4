"""The `demo` proposer: a shipped queue of patches against netsim, so the loop runs offline.

The queue (demo_patches/, applied in name order) is built to show every verdict: real
speedups, a no-op, a regression, a FatTree-only routing cheat, a guard edit, a crash and a
change of output. tests/test_demo_patches.py keeps it applying to the current netsim.
"""

from __future__ import annotations

from pathlib import Path

from simopt.agents.patches import PatchQueueProposer
from simopt.errors import UserError

DEMO_PATCHES = Path(__file__).parent / "demo_patches"
NETSIM = "simopt/netsim"


def demo_proposer(repo: Path) -> PatchQueueProposer:
    """The demo queue, for a repository that holds netsim."""
    if not (Path(repo) / NETSIM / "__init__.py").is_file():
        raise UserError(
            f"the demo proposer patches netsim, and {repo} has no {NETSIM}: "
            "use --agent patches:DIR, command:CMD or openai"
        )
    return PatchQueueProposer(DEMO_PATCHES, name="demo")
