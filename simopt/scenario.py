"""Scenario files: find, parse and validate a scenario TOML, and expand it into an instance.

A scenario names a topology family, link parameters, traffic, failures, a horizon and a seed
(docs/scenarios.md). `build_instance` expands it into the plain-data instance of
docs/semantics.md section 1, the only input a simulator receives. Every bad input is a
`UserError` with one line naming the file, the key, the value and the rule, and so is an
instance past the size limits (`simopt.workload.size`), refused before it is built.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import simopt
from simopt.errors import UserError
from simopt.workload.failures import random_failures
from simopt.workload.instance import validate_instance
from simopt.workload.rng import component_rng
from simopt.workload.size import Limits, check_instance, limits_from_table, pattern_flows, topology_size
from simopt.workload.spec import Table, check_integer
from simopt.workload.topology import BUILDERS, Topology
from simopt.workload.traffic import PATTERNS, draw

__all__ = ["Limits", "Scenario", "available_scenarios", "build_instance", "load_scenario", "validate_instance"]

LINK_DEFAULTS = {"bandwidth_bps": (10_000_000_000, 1), "delay_ns": (500, 0), "buffer_bytes": (150_000, 0), "weight": (1, 1)}


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario file: `name` (the file stem), its `path`, the `seed` in force, its data and
    the size `limits` in force (defaults, then its [limits] table, then the command line's)."""

    name: str
    path: Path
    seed: int
    data: dict
    limits: Limits = field(default_factory=Limits)


def default_repo() -> Path:
    """The checkout that holds the installed simopt package."""
    return Path(simopt.__file__).resolve().parents[1]


def available_scenarios(repo: Path | None = None) -> list[str]:
    """The names of the scenario files in `<repo>/scenarios`."""
    folder = Path(repo or default_repo()) / "scenarios"
    return sorted(path.stem for path in folder.glob("*.toml"))


def load_scenario(name_or_path: str | Path, *, repo: Path | None = None, seed: int | None = None,
                  limits: Mapping[str, int | None] | None = None) -> Scenario:
    """Read and fully validate a scenario by name (`<repo>/scenarios/<name>.toml`) or by path.

    `limits` raises or lowers size limits (`{"events": 10**9}`) over the scenario's own.
    """
    path = _resolve(str(name_or_path), Path(repo or default_repo()))
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"scenario {path.name}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"scenario {path.name}: not UTF-8 text (byte {error.object[error.start]:#04x} "
                        f"at offset {error.start}): a scenario is a TOML file") from None
    except RecursionError:
        raise UserError(f"scenario {path.name}: its tables or arrays are nested too deeply") from None
    except OSError as error:
        raise UserError(f"scenario {path}: cannot read it ({error.strerror})") from None
    try:
        file_seed = check_integer(data.get("seed", 0), 0, "seed")
        if seed is not None:
            check_integer(seed, 0, "--seed")
        in_force = limits_from_table(Table(data.get("limits", {}), "limits")).raised(**(limits or {}))
    except ValueError as error:
        raise UserError(f"scenario {path.name}: {error}") from None
    scenario = Scenario(path.stem, path, file_seed if seed is None else seed, data, in_force)
    build_instance(scenario)  # every remaining error (names, counts, ranges, size) surfaces here, at load
    return scenario


def _resolve(name_or_path: str, repo: Path) -> Path:
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"scenario file {name_or_path} does not exist or is not a file")
        return path
    path = repo / "scenarios" / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(available_scenarios(repo)) or "none"
        raise UserError(f"unknown scenario {name_or_path!r} (available: {names})")
    return path


def build_instance(scenario: Scenario) -> dict:
    """Expand a scenario into a validated instance (docs/semantics.md section 1)."""
    try:
        instance = _expand(scenario)
        validate_instance(instance)
        check_instance(instance, scenario.limits)
    except ValueError as error:
        raise UserError(f"scenario {scenario.path.name}: {error}") from None
    except RecursionError:  # a value nested deeper than any getter reads
        raise UserError(f"scenario {scenario.path.name}: a value is nested too deeply") from None
    return instance


def _expand(scenario: Scenario) -> dict:
    top = Table(scenario.data)
    top.has("seed")  # read by load_scenario; asked here so finish() accepts it
    top.has("limits")  # likewise
    horizon_ns = top.time("horizon")
    mtu_bytes = top.integer("mtu_bytes", minimum=1, default=1500)
    reconvergence_ns = top.time("reconvergence", default=50_000)
    topology = _topology(top.table("topology"), scenario)
    links = _links(top.table("links"), topology)
    names = {name: i for i, (name, _) in enumerate(topology.nodes)}
    line_rate = _line_rates(len(topology.nodes), links)
    explicit = top.tables("flows")
    flows = _pattern_flows(top.table("traffic"), topology, names, line_rate, scenario, len(explicit))
    for flow_table in explicit:
        flows.append(_explicit_flow(flow_table, len(flows), names, line_rate))
    events = [_explicit_event(table, names, links) for table in top.tables("link_events")]
    events += _random_events(top.table("random_failures"), topology, scenario.seed)
    top.finish()
    events.sort(key=lambda e: (e["time_ns"], e["a"], e["b"], e["action"]))
    return {
        "version": 1,
        "nodes": [{"name": name, "kind": kind} for name, kind in topology.nodes],
        "links": links,
        "flows": flows,
        "link_events": events,
        "mtu_bytes": mtu_bytes,
        "reconvergence_ns": reconvergence_ns,
        "horizon_ns": horizon_ns,
    }


def _topology(table: Table, scenario: Scenario) -> Topology:
    kind = table.string("kind", choices=sorted(BUILDERS))
    params = table.rest()
    size = topology_size(kind, params)
    if size is not None:  # refused before building: the builders take time and memory in proportion
        scenario.limits.check("nodes", size[0])
        scenario.limits.check("links", size[1])
    injected = {"rng": component_rng(scenario.seed, "topology"), "base": scenario.path.parent,
                "limits": scenario.limits}
    return _call("topology", f"kind {kind}", BUILDERS[kind], params, injected, ["kind"])


def _call(section: str, variant: str, builder, params: dict, injected: dict, common: list[str]):
    """Call a builder with the table's remaining keys as keyword arguments, checked against its
    signature first so a typo or a missing key is named rather than a TypeError."""
    signature = inspect.signature(builder).parameters
    accepted = [name for name in signature if name not in injected]
    for key in params:
        if key not in accepted:
            raise ValueError(f"unknown key {section}.{key} for {variant} (expected one of {', '.join(common + accepted)})")
    for name in accepted:
        if signature[name].default is inspect.Parameter.empty and name not in params:
            raise ValueError(f"{section}.{name} is required for {variant}")
    try:
        return builder(**params, **{name: value for name, value in injected.items() if name in signature})
    except ValueError as error:
        raise ValueError(_qualify(section, error)) from None


def _qualify(section: str, error: ValueError) -> str:
    """'k(=7) must be ...' becomes 'topology.k(=7) must be ...'; other messages get 'topology: '."""
    message = str(error)
    return f"{section}.{message}" if re.match(r"\w+\(=", message) else f"{section}: {message}"


def _links(table: Table, topology: Topology) -> list[dict]:
    defaults = {key: table.integer(key, minimum=minimum, default=value) for key, (value, minimum) in LINK_DEFAULTS.items()}
    per_tier = {}
    for tier in topology.tiers if len(topology.tiers) > 1 else ():
        tier_table = table.table(tier)
        per_tier[tier] = {key: tier_table.integer(key, minimum=LINK_DEFAULTS[key][1], default=defaults[key]) for key in LINK_DEFAULTS}
        tier_table.finish()
    table.finish()
    return [{"a": link.a, "b": link.b, **per_tier.get(link.tier, defaults), **link.params} for link in topology.links]


def _line_rates(node_count: int, links: list[dict]) -> list[int | None]:
    """Each node's line rate: the largest bandwidth among its links (None for an isolated node)."""
    rates: list[int | None] = [None] * node_count
    for link in links:
        for end in (link["a"], link["b"]):
            rates[end] = max(rates[end] or 0, link["bandwidth_bps"])
    return rates


def _pattern_flows(table: Table, topology: Topology, names: dict, line_rate: list, scenario: Scenario,
                   explicit: int) -> list[dict]:
    seed = scenario.seed
    if not table.data:
        scenario.limits.check("flows", explicit)
        return []
    pattern = table.string("pattern", choices=sorted(PATTERNS))
    drawn = pattern_flows(pattern, table.data, len(topology.hosts()))
    if drawn is not None:  # refused before drawing them
        scenario.limits.check("flows", drawn + explicit)
    sizes = table.value("bytes", minimum=1)
    starts = table.time_value("start", default=0)
    rate = table.integer("rate_bps", minimum=1, default=None)
    params = table.rest()
    if "dst" in params:
        params["dst"] = _node_id(params["dst"], names, "traffic.dst")
    injected = {"endpoints": topology.hosts(), "rng": component_rng(seed, "traffic.pairs")}
    common = ["pattern", "bytes", "start_ns", "rate_bps"]
    pairs = _call("traffic", f"pattern {pattern}", PATTERNS[pattern], params, injected, common)
    sizes = draw(sizes, len(pairs), component_rng(seed, "traffic.bytes"))
    starts = draw(starts, len(pairs), component_rng(seed, "traffic.start"))
    return [
        {"id": i, "src": src, "dst": dst, "bytes": size, "start_ns": start, "rate_bps": rate or _rate(line_rate, src)}
        for i, ((src, dst), size, start) in enumerate(zip(pairs, sizes, starts))
    ]


def _rate(line_rate: list, node: int) -> int:
    # An isolated source sends nothing anywhere; any valid rate keeps the instance well-formed.
    return line_rate[node] or LINK_DEFAULTS["bandwidth_bps"][0]


def _explicit_flow(table: Table, flow_id: int, names: dict, line_rate: list) -> dict:
    src = _node_id(table.get("src"), names, table.key("src"))
    dst = _node_id(table.get("dst"), names, table.key("dst"))
    if src == dst:
        raise ValueError(f"{table.key('dst')}(={table.data['dst']!r}) must differ from src")
    flow = {
        "id": flow_id,
        "src": src,
        "dst": dst,
        "bytes": table.integer("bytes", minimum=1),
        "start_ns": table.time("start", default=0),
        "rate_bps": table.integer("rate_bps", minimum=1, default=_rate(line_rate, src)),
    }
    table.finish()
    return flow


def _explicit_event(table: Table, names: dict, links: list[dict]) -> dict:
    a = _node_id(table.get("a"), names, table.key("a"))
    b = _node_id(table.get("b"), names, table.key("b"))
    if not any({link["a"], link["b"]} == {a, b} for link in links):
        raise ValueError(f"{table.where}: no link between {table.data['a']!r} and {table.data['b']!r}")
    event = {"time_ns": table.time("time"), "a": min(a, b), "b": max(a, b), "action": table.string("action", choices=["fail", "recover"])}
    table.finish()
    return event


def _random_events(table: Table, topology: Topology, seed: int) -> list[dict]:
    if not table.data:
        return []
    count = table.integer("count", minimum=1)
    start_ns = table.time("start")
    end_ns = table.time("end")
    down_ns = table.time_value("down", minimum=1, default=None)
    tier = table.string("tier", choices=list(topology.tiers), default=None)
    table.finish()
    candidates = [(link.a, link.b) for link in topology.links if tier is None or link.tier == tier]
    try:
        return random_failures(candidates, component_rng(seed, "failures"), count=count, start_ns=start_ns, end_ns=end_ns, down_ns=down_ns)
    except ValueError as error:
        raise ValueError(_qualify("random_failures", error)) from None


def _node_id(name: object, names: dict, key: str) -> int:
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"{key}(={name!r}) is not a node of the topology")
    return names[name]
