"""`simopt bench` and `simopt guard` for command targets (a repository with a bench and a guard command).

Not a subcommand of its own: bench.py and guard.py hand over here when the repository's config
declares a command target; their scenario (netsim) paths stay where they are.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from pathlib import Path

from simopt import __version__
from simopt.errors import UserError
from simopt.target import Target

EXIT_NO_MEASUREMENT = 1


def command_target(repo: Path | None) -> Target | None:
    """The command target of `repo` (default: the repository around the current directory), else None.

    None when the target is a scenario target, or when no `repo` was named and the current
    directory has no simopt config (the scenario commands then work on netsim as before).
    """
    from simopt.target import load_target
    from simopt.workspace import open_repo

    if repo is None:
        import git

        try:
            root = Path(git.Repo(Path.cwd(), search_parent_directories=True).working_tree_dir)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None
        try:
            target = load_target(root)
        except UserError as error:
            if "no simopt config" in str(error):
                return None
            raise
    else:
        target = load_target(Path(open_repo(repo).working_tree_dir))
    return target if target.kind == "command" else None


def main_command(args: argparse.Namespace, env, target: Target) -> int:
    """Bench two versions of a command target with its bench command; print the verdict."""
    from simopt.command_target import CommandEvaluator
    from simopt.commands.bench import _progress_bar
    from simopt.measure.command import COMMAND_MIN_EFFECT
    from simopt.measure.versions import materialize
    from simopt.sandbox.option import apply_option

    apply_option(args)
    if args.scenario is not None:
        raise UserError(f"--scenario is for scenario targets: {target.config_path} declares a bench command")
    if args.metric != "time":
        raise UserError("--metric instructions is for scenario targets: a command target is timed by its bench")
    min_effect = COMMAND_MIN_EFFECT if args.min_effect is None else args.min_effect
    if args.max_seconds <= 0:
        raise UserError(f"--max-seconds(={args.max_seconds:g}) must be > 0")
    if not 0 < min_effect < 1:
        raise UserError(f"--min-effect(={min_effect:g}) must be between 0 and 1")
    evaluator = CommandEvaluator(target)
    with ExitStack() as stack:
        baseline = stack.enter_context(materialize(args.baseline, repo_dir=target.root, engine=None))
        candidate = stack.enter_context(materialize(args.candidate, repo_dir=target.root, engine=None))
        changed = protected_changes(target, args.baseline, args.candidate)
        if changed:
            print(f"simopt: warning: protected files differ between the two versions ({', '.join(changed[:5])}): "
                  "each version runs its own copy", file=env.stderr)
        with _progress_bar(env, args.max_seconds) as progress:
            result = evaluator.bench(baseline, candidate, max_seconds=args.max_seconds, min_effect=min_effect,
                                     progress=progress)
    result = {**result, "bench": target.bench, "baseline": args.baseline, "candidate": args.candidate,
              "simopt_version": __version__}
    if args.json:
        print(json.dumps(result, indent=2), file=env.stdout)
    else:
        console = env.console()
        for line in bench_lines(result):
            console.print(line)
    return EXIT_NO_MEASUREMENT if result["verdict"] == "crash" else 0


def protected_changes(target: Target, baseline: str, candidate: str) -> list[str]:
    """Protected paths that differ between two revisions (none when either is a directory)."""
    import git

    if Path(baseline).is_dir() or Path(candidate).is_dir():
        return []
    repo = git.Repo(target.root)
    names = repo.git.diff("--name-only", "--no-renames", baseline, candidate).splitlines()
    return [name for name in names if target.touches(name) and not target.in_scope(name)]


def bench_lines(result: dict) -> list[str]:
    """The readable summary of a command bench, one line each."""
    lines = [f"verdict      {result['verdict']}"]
    if result["verdict"] == "crash":
        return lines + ["candidate crashed:", *result["error"].splitlines()]
    if result["ratio"] is not None:
        ci = result.get("ci")
        interval = f"  (CI {ci[0]:.4f} .. {ci[1]:.4f})" if ci else ""
        lines.append(f"ratio        {result['ratio']:.4f}{interval}  candidate/baseline; speedup {1 / result['ratio']:.3f}x")
    confidence = f"{result['confidence']:.1f}" if result.get("confidence") is not None else "-"
    unit = ("per iteration" if result["unit"] == "iteration" else "per process")
    lines.append(f"lanes        {result['lanes']} ({result['pairs']} {unit} pairs of metric {result['metric']}) "
                 f"in {result['seconds']:.1f} s, confidence {confidence}")
    if result.get("baseline_s") is not None:
        lines.append(f"median       baseline {result['baseline_s']:.6g}  candidate {result['candidate_s']:.6g} "
                     f"({result['metric']} {unit})")
    if result.get("process_ratio") is not None:
        ci = result.get("process_ci")
        interval = f" (CI {ci[0]:.4f} .. {ci[1]:.4f})" if ci else ""
        shared = " (the runs shared one CPU, so this is pulled toward 1)" if result.get("interleaved") else ""
        lines.append(f"wall clock   {result['process_ratio']:.4f}{interval}  whole-process ratio of the same runs{shared}, "
                     f"{result['run_seconds']:.2f} s per run")
    lines.append(f"min effect   {result['min_effect']:.1%}  bench {result['bench']!r}")
    return lines


def guard_command(args: argparse.Namespace, env, target: Target) -> int:
    """Run a command target's guard (equal_output against a reference, then the guard command)."""
    from simopt.command_target import CommandEvaluator
    from simopt.measure.versions import materialize

    if args.target is not None:
        raise UserError(f"--target is for scenario targets: {target.config_path} declares a command target "
                        "(use --revision REV)")
    evaluator = CommandEvaluator(target)
    with ExitStack() as stack:
        tree = (target.root if args.revision is None
                else stack.enter_context(materialize(args.revision, repo_dir=target.root, engine=None)))
        what = "the checkout as it is" if args.revision is None else args.revision
        if evaluator.equality is not None:
            reference = stack.enter_context(materialize(args.reference, repo_dir=target.root, engine=None))
            evaluator.equality.record(reference)
            if args.seed is not None:
                evaluator.equality.fresh_override = [args.seed]
        if not args.json:
            print(f"guard: {target.guard_command or target.guard} on {what}" + (
                f"; equal_output against {args.reference}" if evaluator.equality else ""), file=env.stdout, flush=True)
        report = evaluator.guards(tree, guards_dir=None, profile="standard")
    if args.json:
        print(json.dumps(report, indent=2), file=env.stdout)
    else:
        for line in guard_lines(report):
            print(line, file=env.stdout)
    return 0 if report["failed"] == 0 else 1


def guard_lines(report: dict) -> list[str]:
    """Each failure with its message and counterexample, then a totals line."""
    lines = []
    for failure in report["failures"]:
        lines.append(f"FAIL {failure['test']}")
        lines.extend(f"  {line}" for line in (failure["message"] or "").splitlines())
        for key, value in (failure.get("counterexample") or {}).items():
            if isinstance(value, list):
                lines.append(f"    {key}:")
                lines.extend(f"      {item}" for item in value)
            else:
                lines.append(f"    {key}: {value}")
    status = "ok" if report["failed"] == 0 else "FAILED"
    lines.append(f"guard {status}: {report['passed']} passed, {report['failed']} failed in {report['duration_s']:.1f} s")
    return lines
