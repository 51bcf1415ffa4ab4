"""The instance contract of docs/semantics.md section 1, checked in one place.

`validate_instance` is shared by the scenario builder and the guard suite: anything that hands
an instance to a simulator can check it first.
"""

from __future__ import annotations

TOP_KEYS = {"version", "nodes", "links", "flows", "link_events", "mtu_bytes", "reconvergence_ns", "horizon_ns"}
NODE_KEYS = {"name", "kind"}
LINK_KEYS = {"a", "b", "bandwidth_bps", "delay_ns", "buffer_bytes", "weight"}
FLOW_KEYS = {"id", "src", "dst", "bytes", "start_ns", "rate_bps"}
EVENT_KEYS = {"time_ns", "a", "b", "action"}
KEY_LIMIT = 2**32
"""Flow ids, node ids and packets per flow stay below this, so ordering keys fit (semantics §1)."""


def validate_instance(instance: dict) -> None:
    """Raise ValueError naming the first value that breaks docs/semantics.md section 1."""
    _keys(instance, TOP_KEYS, "instance")
    if instance["version"] != 1:
        raise ValueError(f"instance version(={instance['version']!r}) must be 1")
    for key, minimum in (("mtu_bytes", 1), ("reconvergence_ns", 0), ("horizon_ns", 0)):
        _int(instance[key], minimum, key)
    nodes = _list(instance, "nodes")
    if len(nodes) >= KEY_LIMIT:
        raise ValueError(f"instance has {len(nodes)} nodes; fewer than 2^32 are allowed")
    for i, node in enumerate(nodes):
        _keys(node, NODE_KEYS, f"nodes[{i}]")
        if not isinstance(node["name"], str):
            raise ValueError(f"nodes[{i}].name(={node['name']!r}) must be a string")
        if node["kind"] not in ("host", "switch"):
            raise ValueError(f"nodes[{i}].kind(={node['kind']!r}) must be 'host' or 'switch'")
    links = set()
    for i, link in enumerate(_list(instance, "links")):
        where = f"links[{i}]"
        _keys(link, LINK_KEYS, where)
        pair = _pair(link, len(nodes), where)
        if pair in links:
            raise ValueError(f"{where}: a second link between nodes {pair[0]} and {pair[1]}")
        links.add(pair)
        for key, minimum in (("bandwidth_bps", 1), ("delay_ns", 0), ("buffer_bytes", 0), ("weight", 1)):
            _int(link[key], minimum, f"{where}.{key}")
    flow_ids = set()
    for i, flow in enumerate(_list(instance, "flows")):
        where = f"flows[{i}]"
        _keys(flow, FLOW_KEYS, where)
        _int(flow["id"], 0, f"{where}.id")
        if flow["id"] >= KEY_LIMIT:
            raise ValueError(f"{where}.id(={flow['id']}) must be below 2^32")
        if flow["id"] in flow_ids:
            raise ValueError(f"{where}.id(={flow['id']}) is not unique")
        flow_ids.add(flow["id"])
        if _node(flow["src"], len(nodes), f"{where}.src") == _node(flow["dst"], len(nodes), f"{where}.dst"):
            raise ValueError(f"{where}: src(={flow['src']}) must differ from dst")
        for key, minimum in (("bytes", 1), ("start_ns", 0), ("rate_bps", 1)):
            _int(flow[key], minimum, f"{where}.{key}")
        if -(-flow["bytes"] // instance["mtu_bytes"]) > KEY_LIMIT:
            raise ValueError(f"{where}.bytes(={flow['bytes']}) makes more than 2^32 packets")
    seen_events = set()
    for i, event in enumerate(_list(instance, "link_events")):
        where = f"link_events[{i}]"
        _keys(event, EVENT_KEYS, where)
        pair = _pair(event, len(nodes), where)
        if pair not in links:
            raise ValueError(f"{where}: no link between nodes {pair[0]} and {pair[1]}")
        _int(event["time_ns"], 0, f"{where}.time_ns")
        if event["action"] not in ("fail", "recover"):
            raise ValueError(f"{where}.action(={event['action']!r}) must be 'fail' or 'recover'")
        if (event["time_ns"], pair) in seen_events:
            raise ValueError(f"{where}: a second event for link {pair} at time_ns {event['time_ns']}")
        seen_events.add((event["time_ns"], pair))


def _keys(item: object, expected: set[str], where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object, got {type(item).__name__}")
    if set(item) != expected:
        missing, extra = sorted(expected - set(item)), sorted(set(item) - expected)
        raise ValueError(f"{where} has missing keys {missing} and unknown keys {extra}")


def _list(instance: dict, key: str) -> list:
    if not isinstance(instance[key], list):
        raise ValueError(f"instance {key} must be a list, got {type(instance[key]).__name__}")
    return instance[key]


def _int(value: object, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}(={value!r}) must be an integer >= {minimum}")
    return value


def _node(value: object, count: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        raise ValueError(f"{where}(={value!r}) must be a node id in [0, {count})")
    return value


def _pair(item: dict, count: int, where: str) -> tuple[int, int]:
    a, b = _node(item["a"], count, f"{where}.a"), _node(item["b"], count, f"{where}.b")
    if a == b:
        raise ValueError(f"{where}: a(={a}) must differ from b")
    return (a, b) if a < b else (b, a)
