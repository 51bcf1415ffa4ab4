"""Equality guards: a command target's output on seeds, compared exactly with the base's.

`equal_output = "python run.py --seed {seed}"` in the config runs on the base and on the
candidate for every fixed seed (`equal_output_seeds`, whose outputs simopt records from the base
once, the goldens) and for `equal_output_fresh` seeds drawn anew for every check, so no fixed set
of answers can be memorized. Outputs (stdout) must be equal after removing every match of the
`equal_output_ignore` regular expressions (timings, addresses). Nobody writes a golden by hand.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
import subprocess
from pathlib import Path
from typing import Callable

from simopt.evaluate import CheckFailed
from simopt.target import Target

DIFF_LINES = 12
Run = Callable[[str, Path, str], subprocess.CompletedProcess]  # (command, tree, what) -> a run that exited 0


def normalize(output: str, ignore: tuple[str, ...]) -> str:
    """`output` with every match of each `ignore` pattern removed (patterns match line by line)."""
    for pattern in ignore:
        output = re.sub(pattern, "", output, flags=re.MULTILINE)
    return output


def difference(expected: str, actual: str) -> dict:
    """Where two outputs first differ: the line number, both lines, and a short unified diff."""
    old, new = expected.splitlines(), actual.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    diff = list(difflib.unified_diff(old, new, "base", "candidate", n=1, lineterm=""))
    return {"line": line + 1, "base": old[line] if line < len(old) else "(end of output)",
            "candidate": new[line] if line < len(new) else "(end of output)", "diff": diff[:DIFF_LINES]}


class EqualOutput:
    """The equality guard of one session: goldens from the base, fresh seeds for every check."""

    def __init__(self, target: Target, run: Run, *, rng: random.Random | None = None) -> None:
        self.command = target.equal_output
        self.fixed = target.equal_output_seeds
        self.fresh = target.equal_output_fresh
        self.ignore = target.equal_output_ignore
        self.run = run
        self.rng = rng or random.SystemRandom()
        self.goldens: dict[int, str] = {}
        self.base_root: Path | None = None
        self.digest: str | None = None  # of the goldens, once recorded
        self.fresh_override: list[int] | None = None  # `simopt guard --seed N`: this seed instead of fresh ones

    def output(self, root: Path, seed: int, what: str) -> str:
        """The normalized output of the command on `seed` in `root`."""
        completed = self.run(self.command.replace("{seed}", str(seed)), root, f"{what} (seed {seed})")
        return normalize(completed.stdout, self.ignore)

    def record(self, base_root: Path) -> str:
        """Check that the base is deterministic, record its goldens; return their digest."""
        seed = self.fixed[0] if self.fixed else self.fresh_seeds(1)[0]
        first = self.output(base_root, seed, "equal_output on the base")
        second = self.output(base_root, seed, "equal_output on the base")
        if first != second:
            where = difference(first, second)
            raise CheckFailed(
                "different_output",
                f"equal_output is not deterministic: two runs of the base on seed {seed} differ at line "
                f"{where['line']} ({where['base'][:60]!r} vs {where['candidate'][:60]!r}): derive every random "
                "choice from {seed}, or drop the varying part with equal_output_ignore",
                {"seed": seed, **where},
            )
        self.goldens = {seed: first} if seed in self.fixed else {}
        for fixed in self.fixed:
            if fixed not in self.goldens:
                self.goldens[fixed] = self.output(base_root, fixed, "equal_output on the base")
        self.base_root = base_root
        digest = hashlib.sha256()
        for fixed, text in sorted(self.goldens.items()):
            digest.update(f"{fixed}\0{text}\0".encode())
        self.digest = f"equal_output:{digest.hexdigest()}"
        return self.digest

    def fresh_seeds(self, count: int) -> list[int]:
        """`count` new seeds, never one of the fixed ones."""
        seeds: list[int] = []
        while len(seeds) < count:
            seed = self.rng.randrange(1, 2**31)
            if seed not in self.fixed and seed not in seeds:
                seeds.append(seed)
        return seeds

    def check(self, root: Path) -> list[int]:
        """Compare `root`'s outputs with the goldens and with the base on fresh seeds; the seeds checked.

        Raises `CheckFailed("different_output")` naming the seed and the first differing line.
        """
        if self.base_root is None:
            raise RuntimeError("EqualOutput.check before record: the base has no goldens yet")
        checked = []
        for seed, golden in sorted(self.goldens.items()):
            self._compare(seed, golden, self.output(root, seed, "equal_output"))
            checked.append(seed)
        for seed in self.fresh_override if self.fresh_override is not None else self.fresh_seeds(self.fresh):
            expected = self.output(self.base_root, seed, "equal_output on the base")
            self._compare(seed, expected, self.output(root, seed, "equal_output"))
            checked.append(seed)
        return checked

    def _compare(self, seed: int, expected: str, actual: str) -> None:
        if expected == actual:
            return
        where = difference(expected, actual)
        raise CheckFailed(
            "different_output",
            f"equal_output differs from the base on seed {seed} at line {where['line']}: "
            f"{where['base'][:60]!r} became {where['candidate'][:60]!r}",
            {"seed": seed, "command": self.command.replace("{seed}", str(seed)), **where},
        )

