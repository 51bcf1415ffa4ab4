"""The kill matrix: which guards catch which cheat, and how long each standard run takes.

    python3 -m guards.strength [--seed N] [--profile standard] [--cheat NAME ...] [--set old|input-space]
                               [--stop-early]

Runs the suite on the unchanged netsim and on each cheat of guards/cheats.py and
guards/input_cheats.py, one after the other, and prints one line per run (with --stop-early, only
the first guard that failed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from guards.cheats import CHEATS, REPO, every_cheat, make_target
from guards.input_cheats import INPUT_SPACE_CHEATS


def main(argv: list[str] | None = None) -> int:
    """Print `name: caught/missed, failing guards, seconds` for the baseline and every cheat."""
    from simopt.guard import fresh_seed, run_guards

    parser = argparse.ArgumentParser(prog="python3 -m guards.strength", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--cheat", action="append", choices=sorted(every_cheat()))
    parser.add_argument("--set", choices=("old", "input-space"), help="only the cheats of guards/cheats.py, or of guards/input_cheats.py")
    parser.add_argument("--stop-early", action="store_true", help="stop each run at its first failing guard")
    args = parser.parse_args(argv)
    seed = fresh_seed() if args.seed is None else args.seed
    print(f"seed: {seed}  profile: {args.profile}", flush=True)
    caught = 0
    chosen = {"old": CHEATS, "input-space": INPUT_SPACE_CHEATS}.get(args.set, every_cheat())
    names = args.cheat or sorted(chosen)
    for name in [None, *names]:
        with tempfile.TemporaryDirectory() as scratch:
            report = run_guards(make_target(REPO, Path(scratch), name), seed=seed, profile=args.profile,
                                stop_at_first_failure=args.stop_early)
        failing = sorted({f["test"].split("::")[-1] for f in report["failures"]})
        if name is not None:
            caught += bool(failing)
        label = name or "(unchanged netsim)"
        verdict = ("caught" if failing else "MISSED") if name else ("ok" if not failing else "FALSE ALARM")
        print(f"{label}: {verdict} in {report['duration_s']:.1f} s, {len(failing)} guards failed: {', '.join(failing)}", flush=True)
    print(f"kill rate: {caught}/{len(names)}")
    return 0 if caught == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
