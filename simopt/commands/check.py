"""`simopt check`: run a session's pipeline once on the committed base and say what a session would do."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from contextlib import ExitStack
from pathlib import Path

from simopt.errors import UserError
from simopt.sandbox.option import add_option, apply_option

EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt check`."""
    parser.add_argument("--repo", type=Path, default=Path("."), help="the target repository (default: .)")
    parser.add_argument("--min-effect", type=float, metavar="F",
                        help="the minimum effect a session would use (default: 0.03 for command targets)")
    parser.add_argument("--max-seconds", type=float, metavar="S", help="the bench budget a session would use (default: 60)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    add_option(parser)


def main(args: argparse.Namespace, env) -> int:
    """Smoke, equal_output, guard and an A/A bench probe on HEAD; the budget a session needs; warnings."""
    from simopt.measure.command import COMMAND_MIN_EFFECT
    from simopt.target import load_target
    from simopt.workspace import open_repo

    apply_option(args)
    repo = open_repo(args.repo)
    target = load_target(Path(repo.working_tree_dir))
    if target.kind != "command":
        raise UserError(f"{target.config_path.name} declares a scenario target: check it with "
                        "`simopt guard` and `simopt bench --scenario NAME`")
    min_effect = COMMAND_MIN_EFFECT if args.min_effect is None else args.min_effect
    if not 0 < min_effect < 1:
        raise UserError(f"--min-effect(={min_effect:g}) must be between 0 and 1")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UserError(f"--max-seconds(={args.max_seconds:g}) must be > 0")
    report = run_check(repo, target, min_effect=min_effect, max_seconds=args.max_seconds,
                       say=None if args.json else lambda line: print(line, file=env.stdout, flush=True))
    if args.json:
        print(json.dumps(report, indent=2), file=env.stdout)
    return 0 if report["ok"] else EXIT_FAILED


def run_check(repo, target, *, min_effect: float, max_seconds: float | None, say=None) -> dict:
    """What `simopt check` measures, as a document; `say(line)` reports each step as it ends."""
    from simopt.command_target import CommandEvaluator, budget_advice
    from simopt.evaluate import CheckFailed
    from simopt.measure.versions import materialize
    from simopt.target_process import describe_interpreter, interpreter

    say = say or (lambda line: None)
    report: dict = {"version": 1, "config": str(target.config_path), "head": repo.head.commit.hexsha,
                    "python": str(interpreter(target)), "warnings": warnings(repo, target), "steps": {}, "ok": False}
    say(f"config       {target.config_path} (HEAD {repo.head.commit.hexsha[:12]}, python {report['python']})")
    for warning in report["warnings"]:
        say(f"warning      {warning}")
    evaluator = CommandEvaluator(target)
    steps = report["steps"]
    with ExitStack() as stack:
        if uncommitted(repo, target):
            base = target.root
            report["checked"] = "checkout"
            say("checking     the checkout as it is (it has uncommitted target files); a session starts from HEAD")
        else:
            base = stack.enter_context(materialize("HEAD", repo_dir=target.root, engine=None))
            report["checked"] = "HEAD"
        try:
            for name, step in (("smoke", evaluator.smoke), ("equal_output", _record(evaluator))):
                if name == "smoke" and not target.smoke or name == "equal_output" and evaluator.equality is None:
                    continue
                started = time.perf_counter()
                step(base)
                steps[name] = {"ok": True, "seconds": round(time.perf_counter() - started, 3)}
                say(f"{name:<12} ok in {steps[name]['seconds']:.1f} s" + (
                    f" (deterministic; goldens of seeds {', '.join(map(str, target.equal_output_seeds)) or 'none'}, "
                    f"{target.equal_output_fresh} fresh seeds per check)" if name == "equal_output" else ""))
            guards = evaluator.guards(base, guards_dir=None, profile="standard")
            steps["guard"] = {"ok": not guards["failed"], "seconds": round(guards["duration_s"], 3),
                              "passed": guards["passed"], "failed": guards["failed"], "failures": guards["failures"]}
            if guards["failed"]:
                first = guards["failures"][0]
                message = (first["message"] or "").splitlines()
                say(f"guard        FAILED on the base: {first['test']}" + (f": {message[0]}" if message else ""))
                return report
            say(f"guard        ok in {guards['duration_s']:.1f} s ({guards['passed']} passed)")
        except CheckFailed as failure:
            reason = f"{failure.reason} ({describe_interpreter(target)})"
            steps["failed"] = {"status": failure.status, "reason": reason}
            say(f"FAILED       {reason}")
            return report
        runs_checkout = stack.enter_context(materialize("HEAD", repo_dir=target.root, engine=None))
        steps["runs_the_checkout"] = runs_the_checkout(evaluator, runs_checkout)
        if not steps["runs_the_checkout"]["ok"]:
            say(f"warning      {steps['runs_the_checkout']['reason']}")
        evaluator.base_root = base
        started = time.perf_counter()
        plan = evaluator.plan_budget(min_effect)
    budget = max_seconds if max_seconds is not None else 60.0
    seconds, advice = budget_advice(plan, budget, chosen=max_seconds is not None, min_effect=min_effect)
    steps["bench"] = {"ok": True, "seconds": round(time.perf_counter() - started, 3), "metric": plan.metric,
                      "unit": plan.unit, "units_per_run": plan.units_per_run, "run_seconds": plan.run_seconds,
                      "lane_seconds": plan.lane_seconds, "spread": plan.spread, "lanes_needed": plan.lanes_needed,
                      "planned_seconds": plan.seconds}
    say(f"bench        {advice}")
    per_experiment = sum(steps[name]["seconds"] for name in ("smoke", "guard") if name in steps) + seconds
    if "equal_output" in steps:
        per_experiment += steps["equal_output"]["seconds"] * (1 + target.equal_output_fresh) / 2
    report.update(ok=True, max_seconds=seconds, min_effect=min_effect, experiment_seconds=round(per_experiment, 1))
    say(f"a session    would give each bench decision {seconds:g} s (min effect {min_effect:.0%}); one experiment "
        f"takes at most ~{per_experiment:.0f} s plus the proposal; commit the config, then "
        f"`simopt optimize --repo {shlex.quote(str(target.root))}`")
    return report


def runs_the_checkout(evaluator, tree: Path) -> dict:
    """Break every editable Python file of a scratch checkout: the smoke (or bench) must then fail.

    If it still passes, the commands import the target from elsewhere (an installed copy, an
    editable install pointing at the user's checkout), and no candidate would ever be measured.
    """
    from simopt.evaluate import CheckFailed

    marker = "simopt check: the checkout's own code ran"
    broken = [path for path in sorted(tree.rglob("*.py"))
              if ".git" not in path.parts and evaluator.target.in_scope(path.relative_to(tree).as_posix())]
    if not broken:
        return {"ok": False, "reason": "no editable Python file to probe: cannot tell whether the commands run the checkout"}
    for path in broken:
        path.write_text(f"raise SystemExit({marker!r})\n" + path.read_text(encoding="utf-8", errors="replace"),
                        encoding="utf-8")
    command = evaluator.target.smoke or evaluator.target.bench
    try:
        evaluator._checked_run(command, tree, "the probe")
    except CheckFailed as failure:
        if marker in "\n".join(failure.evidence.get("traceback") or []) or failure.status == "crash":
            return {"ok": True, "reason": None}
    return {"ok": False, "reason": f"`{command}` still succeeds with every editable file broken: the commands do not "
                                   "run the checkout's code (an installed copy of the package, or an editable "
                                   "install of your checkout?): install only the dependencies into the environment"}


def uncommitted(repo, target) -> bool:
    """True when the config or any file of the target (editable or protected) differs from HEAD."""
    config = target.config_path.relative_to(Path(repo.working_tree_dir)).as_posix()
    entries = repo.git.status("--porcelain", "--untracked-files=all").splitlines()
    return any(entry[3:] == config or target.touches(entry[3:]) for entry in entries)


def _record(evaluator):
    def record(root: Path) -> None:
        evaluator.equality.record(root)

    return record


def warnings(repo, target) -> list[str]:
    """What would make a session fail or be unfair: uncommitted config, judging files in scope, dirty files."""
    import git

    found = []
    root = Path(repo.working_tree_dir)
    config = target.config_path.relative_to(root).as_posix()
    tracked = set(repo.git.ls_files().splitlines())
    if config not in tracked:
        found.append(f"{config} is not committed: a session starts from HEAD, commit it first")
    elif repo.git.status("--porcelain", "--", config):
        found.append(f"{config} has uncommitted changes: a session starts from HEAD, commit them first")
    if target.in_scope(config):
        found.append(f"{config} is editable: add it to `protected`")
    for key in ("bench", "guard_command", "smoke", "equal_output"):
        for word in shlex.split(getattr(target, key) or "", posix=True):
            if word in tracked and target.in_scope(word):
                found.append(f"{word} (used by `{key}`) is editable: an agent could change how it is judged; "
                             "add it to `protected`")
    if target.guard and any(target.in_scope(path) for path in tracked if path.startswith(target.guard.rstrip("/") + "/")):
        found.append(f"the guard folder {target.guard} is editable: add it to `protected`")
    if not any(target.in_scope(path) for path in tracked):
        found.append(f"no committed file matches `editable` ({', '.join(target.editable)}): an agent could change nothing")
    try:
        dirty = [path for path in repo.git.status("--porcelain", "--untracked-files=no").splitlines()
                 if target.touches(path[3:])]
    except git.GitCommandError:
        dirty = []
    if dirty:
        found.append(f"uncommitted changes in the target's files ({', '.join(p[3:] for p in dirty[:5])}): "
                     "a session refuses to start; commit or stash them")
    return found
