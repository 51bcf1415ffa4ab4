"""Mutation score of the guard suite: how many benchmark-preserving mutants of netsim it kills.

    python3 benchmarks/mutation.py [--profile standard] [--seed N] [--jobs 2] [--sample N] [--limit N]
                                   [--kind cosmic-ray|gate] [--ids-from FILE.jsonl] [--out FILE.jsonl]

Generates mutants of simopt/netsim/ in two families:
- cosmic-ray's operators (operator flips, comparison flips, off-by-ones on numbers, negated
  conditions, emptied loops, swapped booleans), one mutation per mutant;
- gate-style mutations written here: a wrong path (a skipped route install, no drop-tail, a
  serialization 1 ns short, the first next hop only, ...) switched on only by a condition on the
  instance (a size, a parameter extreme, a rare timing, near-equal values, several flows per
  pair), the way a cheat hides from a benchmark.
Each mutant first runs the fattree benchmark; one that changes its digest, crashes or hangs is
left out (the digest step of the optimize loop rejects it before the guards run). The others
run the guard suite (stop at the first failure): killed or survived. Prints the score and every
survivor; with --out, one JSON line per mutant (a rerun with the same file skips those done).
Run it from the checkout whose guards you measure (PYTHONPATH=that checkout).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NETSIM = REPO / "simopt" / "netsim"
DIGEST_TIMEOUT_S = 30.0

# cosmic-ray operators kept: every comparison and unary flip, numbers +-1, negations, booleans,
# emptied loops, and the binary replacements a typo or a wrong shortcut makes (not all 11 per site).
BINARY = {"Add_Sub", "Sub_Add", "Mul_FloorDiv", "FloorDiv_Mul", "FloorDiv_Div", "Mod_FloorDiv", "LShift_RShift",
          "RShift_LShift", "BitAnd_BitOr", "BitOr_BitAnd", "BitXor_BitOr", "Pow_Mul"}
OTHER = ("ReplaceComparisonOperator_", "ReplaceUnaryOperator_", "NumberReplacer", "AddNot", "ReplaceTrueWithFalse",
         "ReplaceFalseWithTrue", "ReplaceAndWithOr", "ReplaceOrWithAnd", "ZeroIterationForLoop",
         "ReplaceBreakWithContinue", "ReplaceContinueWithBreak")

DESTINATIONS = "        self._destinations = sorted({flow.dst for flow in self.flows})\n"

# Wrong paths: (file, exact old text, new text using `self._gate`), all in simulation.py.
SITES = {
    "skip-route-install": ("        self.events += 1\n        self._compute_tables()\n",
                           "        self.events += 1\n        if not self._gate:\n            self._compute_tables()\n"),
    "no-drop-tail": ("        elif not port.fits(packet):\n", "        elif not port.fits(packet) and not self._gate:\n"),
    "serialization-1ns-short": ("        busy_ns = port.serialization_ns(packet)\n",
                                "        busy_ns = port.serialization_ns(packet)\n        if self._gate:\n            busy_ns = max(1, busy_ns - 1)\n"),
    "pacing-1ns-long": ("            At(self.env, serialization_ns(packet.size, flow.rate_bps),\n",
                        "            At(self.env, serialization_ns(packet.size, flow.rate_bps) + self._gate,\n"),
    "first-next-hop-only": ("next_hops[ecmp_index(flow.id, node, len(next_hops))]",
                            "next_hops[0 if self._gate else ecmp_index(flow.id, node, len(next_hops))]"),
    "propagation-1ns-long": ("        At(self.env, busy_ns + port.link.delay_ns,", "        At(self.env, busy_ns + port.link.delay_ns + self._gate,"),
    "recovery-ignored": ('        elif action == "recover":\n            link.up = True\n',
                         '        elif action == "recover":\n            link.up = link.up or not self._gate\n'),
    "failure-keeps-queues": ("                for packet in port.flush():\n", "                for packet in ([] if self._gate else port.flush()):\n"),
    "latency-off-by-one": ("        latency = now - packet.injected_ns\n", "        latency = now - packet.injected_ns + self._gate\n"),
    "one-event-too-many-per-arrival": ("        self.events += 1\n        port: Port = packet.port\n",
                                       "        self.events += 1 + self._gate\n        port: Port = packet.port\n"),
    "slices-stop-1ns-early": ("            self.env.run(until=until)\n", "            self.env.run(until=until - self._gate)\n"),
}

_EVENTS_BY_TIME = 'sorted(instance["link_events"], key=lambda e: e["time_ns"])'
_NEAR = "any(0 < b - a <= b // 1000 for a, b in zip(R, R[1:]))"
# Conditions on the instance (docs/semantics.md §1): false on the fattree benchmark, true somewhere else.
GATES = {
    "nodes>120": 'len(instance["nodes"]) > 120',
    "nodes>250": 'len(instance["nodes"]) > 250',
    "links>400": 'len(instance["links"]) > 400',
    "flows>150": 'len(instance["flows"]) > 150',
    "flows>4096": 'len(instance["flows"]) > 4096',
    "packets>13000": 'sum(-(-f["bytes"] // instance["mtu_bytes"]) for f in instance["flows"]) > 13_000',
    "several-flows-per-pair": 'len({(f["src"], f["dst"]) for f in instance["flows"]}) < len(instance["flows"])',
    "buffer>=1MB": 'max((l["buffer_bytes"] for l in instance["links"]), default=0) >= 1_000_000',
    "bandwidth<1Mbps": 'min((l["bandwidth_bps"] for l in instance["links"]), default=10**10) < 1_000_000',
    "bandwidth>=100Gbps": 'max((l["bandwidth_bps"] for l in instance["links"]), default=0) >= 100_000_000_000',
    "delay>=100us": 'max((l["delay_ns"] for l in instance["links"]), default=0) >= 100_000',
    "mtu>9000": 'instance["mtu_bytes"] > 9000',
    "mtu<64": 'instance["mtu_bytes"] < 64',
    "weight>65535": 'max((l["weight"] for l in instance["links"]), default=1) > 65535',
    "reconvergence>100us": 'instance["reconvergence_ns"] > 100_000',
    "flow>1MB": 'max((f["bytes"] for f in instance["flows"]), default=0) > 1_000_000',
    "horizon>2ms": 'instance["horizon_ns"] > 2_000_000',
    "events<=1us-apart": f'(lambda E: any(0 < b["time_ns"] - a["time_ns"] <= 1000 for a, b in zip(E, E[1:])))({_EVENTS_BY_TIME})',
    "horizon<=1us-after-an-event": 'any(0 < instance["horizon_ns"] - e["time_ns"] <= 1000 for e in instance["link_events"])',
    "near-equal-bandwidths": f'(lambda R: {_NEAR})(sorted({{l["bandwidth_bps"] for l in instance["links"]}}))',
    "near-equal-rates": f'(lambda R: {_NEAR})(sorted({{f["rate_bps"] for f in instance["flows"]}}))',
    "bytes-multiple-of-mtu": 'any(f["bytes"] % instance["mtu_bytes"] == 0 and f["bytes"] > instance["mtu_bytes"] for f in instance["flows"])',
}


def cosmic_ray_mutants() -> list[dict[str, Any]]:
    """One mutant per (file, operator, occurrence) of the kept cosmic-ray operators."""
    import cosmic_ray.mutating  # noqa: F401  (imported first: cosmic_ray.plugins alone hits a parso import cycle)
    import cosmic_ray.plugins as plugins
    from cosmic_ray.ast import ast_nodes, get_ast
    from cosmic_ray.mutating import mutate_code

    names = [name for name in plugins.operator_names()
             if name.split("/")[1].startswith(OTHER)
             or name.split("/")[1].removeprefix("ReplaceBinaryOperator_") in BINARY]
    mutants = []
    for path in sorted(NETSIM.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        nodes = list(ast_nodes(get_ast(source)))
        for name in names:
            operator = plugins.get_operator(name)()
            positions = [start for node in nodes for start, _ in operator.mutation_positions(node)]
            for occurrence, (line, _) in enumerate(positions):
                mutated = mutate_code(source, operator, occurrence)
                if mutated is None or mutated == source:
                    continue  # (a mutant that is no longer Python, `*` of a signature made `//`, crashes at the digest step)
                old = source.splitlines()[line - 1].strip()
                new = mutated.splitlines()[line - 1].strip() if len(mutated.splitlines()) >= line else ""
                mutants.append({"id": f"{path.name}:{name.split('/')[1]}:{occurrence}", "kind": "cosmic-ray",
                                "file": path.name, "line": line, "change": f"{old}  ->  {new}", "source": mutated})
    return mutants


def _compiles(source: str) -> bool:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # `x is 0` and the like: valid, if odd
        try:
            compile(source, "<mutant>", "exec")
        except SyntaxError:
            return False
    return True


def gate_mutants() -> list[dict[str, Any]]:
    """Every wrong path of SITES behind every condition of GATES."""
    source = (NETSIM / "simulation.py").read_text(encoding="utf-8")
    mutants = []
    for site, (old, new) in SITES.items():
        if source.count(old) != 1 or source.count(DESTINATIONS) != 1:
            raise AssertionError(f"gate site {site!r}: simulation.py no longer holds its text once; update benchmarks/mutation.py")
        for gate, condition in GATES.items():
            mutated = source.replace(old, new).replace(DESTINATIONS, DESTINATIONS + f"        self._gate = bool({condition})\n")
            line = source[:source.index(old)].count("\n") + 1
            mutants.append({"id": f"gate:{site}:{gate}", "kind": "gate", "file": "simulation.py", "line": line,
                            "change": f"{site} when {gate}", "source": mutated})
    return mutants


def materialize(mutant: dict[str, Any], root: Path) -> Path:
    """A target root under `root` holding netsim with the mutant's file replaced."""
    package = root / "simopt" / "netsim"
    shutil.copytree(NETSIM, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / mutant["file"]).write_text(mutant["source"], encoding="utf-8")
    return root


def _digest_child(root: str, name: str, instance: dict, connection) -> None:
    try:
        from simopt.engine import load_engine

        connection.send(("ok", load_engine(Path(root), name=name).simulate(instance)["digest"]))
    except BaseException as error:  # noqa: BLE001 -- a mutant may raise anything; report it
        connection.send(("crash", f"{type(error).__name__}: {error}"[:200]))


def benchmark_digest(root: Path, name: str, instance: dict) -> tuple[str, str]:
    """("ok", digest), ("crash", message) or ("timeout", "") for the benchmark in a forked child."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_digest_child, args=(str(root), name, instance, send))
    child.start()
    ready = receive.poll(DIGEST_TIMEOUT_S)
    outcome = receive.recv() if ready else ("timeout", "")
    child.kill()
    child.join()
    return outcome


def evaluate(mutant: dict[str, Any], *, instance: dict, golden: str, seed: int, profile: str) -> dict[str, Any]:
    """Digest step, then (if the digest is unchanged) the guard suite up to its first failure."""
    from simopt.guard import run_guards

    record = {key: mutant[key] for key in ("id", "kind", "file", "line", "change")}
    started = time.perf_counter()
    if not _compiles(mutant["source"]):
        return {**record, "stage": "digest", "outcome": "crash", "detail": "SyntaxError", "seconds": 0.0}
    with tempfile.TemporaryDirectory(prefix="simopt-mutant-") as scratch:
        root = materialize(mutant, Path(scratch))
        status, detail = benchmark_digest(root, "mutant_" + mutant["id"].replace(":", "_").replace("-", "_").replace(">", "gt")
                                          .replace("<", "lt").replace("=", "eq").replace(".", "_"), instance)
        if status != "ok" or detail != golden:
            record["stage"] = "digest"
            record["outcome"] = {"ok": "digest-differs"}.get(status, status)
            record["detail"] = "" if status == "ok" else detail
        else:
            report = run_guards(root, seed=seed, profile=profile, stop_at_first_failure=True)
            record["stage"] = "guards"
            record["outcome"] = "killed" if report["failed"] else "survived"
            record["detail"] = report["failures"][0]["test"].split("::")[-1] if report["failed"] else ""
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def summarize(records: list[dict[str, Any]]) -> list[str]:
    """The score per family and overall, and every survivor."""
    lines = []
    for kind in ("cosmic-ray", "gate", None):
        chosen = [r for r in records if kind is None or r["kind"] == kind]
        preserved = [r for r in chosen if r["stage"] == "guards"]
        killed = sum(r["outcome"] == "killed" for r in preserved)
        rejected = len(chosen) - len(preserved)
        score = f"{killed / len(preserved):.1%}" if preserved else "n/a"
        lines.append(f"{kind or 'all'}: {len(chosen)} mutants, {rejected} rejected by the benchmark digest (changed, crash or "
                     f"timeout), {len(preserved)} keep it; guards kill {killed}/{len(preserved)} = {score}")
    survivors = sorted((r for r in records if r["outcome"] == "survived"), key=lambda r: r["id"])
    lines.append(f"survivors ({len(survivors)}):")
    lines.extend(f"  {r['id']}  line {r['line']}: {r['change']}" for r in survivors)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Generate, filter by the benchmark digest, run the guards, print the score and the survivors."""
    from guards.golden import load_goldens
    from simopt.guard import fresh_seed
    from simopt.scenario import build_instance, load_scenario

    parser = argparse.ArgumentParser(prog="python3 benchmarks/mutation.py", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--seed", type=int, help="the guards' hypothesis seed for every mutant (default: fresh)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants evaluated at once (default 1)")
    parser.add_argument("--sample", type=int, help="evaluate this many mutants drawn with --sample-seed")
    parser.add_argument("--sample-seed", type=int, default=12)
    parser.add_argument("--limit", type=int, help="only the first N mutants (after --sample, in its order)")
    parser.add_argument("--kind", choices=("cosmic-ray", "gate"), help="only one family")
    parser.add_argument("--ids-from", type=Path, help="exactly the mutants of an earlier --out file (to compare two suites)")
    parser.add_argument("--out", type=Path, help="JSON lines, one per mutant; mutants already there are skipped")
    args = parser.parse_args(argv)
    seed = fresh_seed() if args.seed is None else args.seed
    mutants = [m for m in cosmic_ray_mutants() + gate_mutants() if args.kind in (None, m["kind"])]
    if args.sample is not None and args.sample < len(mutants):
        mutants = random.Random(args.sample_seed).sample(mutants, args.sample)
    if args.limit is not None:
        mutants = mutants[:args.limit]
    if args.ids_from:
        wanted = {json.loads(line)["id"] for line in args.ids_from.read_text(encoding="utf-8").splitlines()}
        mutants = [m for m in mutants if m["id"] in wanted]
    done = {}
    if args.out and args.out.is_file():
        done = {r["id"]: r for r in map(json.loads, args.out.read_text(encoding="utf-8").splitlines())}
    todo = [m for m in mutants if m["id"] not in done]
    print(f"seed: {seed}  profile: {args.profile}  mutants: {len(mutants)} ({len(todo)} to run)", flush=True)
    instance = build_instance(load_scenario("fattree", repo=REPO))
    golden = load_goldens()["scenarios"]["fattree"]["digest"]
    records = [done[m["id"]] for m in mutants if m["id"] in done]

    def one(mutant: dict[str, Any]) -> dict[str, Any]:
        record = evaluate(mutant, instance=instance, golden=golden, seed=seed, profile=args.profile)
        record["seed"] = seed
        if args.out:
            with args.out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        print(f"{record['outcome']:>14}  {record['seconds']:5.1f} s  {record['id']}  {record['detail']}", flush=True)
        return record

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        records.extend(pool.map(one, todo))
    for line in summarize(records):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
