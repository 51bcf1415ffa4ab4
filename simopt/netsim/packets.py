"""Flows, the packets they are cut into, and serialization time."""

from __future__ import annotations

from dataclasses import dataclass, field

DROP_CAUSES = ("link_down", "link_failed", "no_route", "queue_full")


def serialization_ns(size_bytes: int, bandwidth_bps: int) -> int:
    """ceil(size * 8 * 10^9 / bandwidth) in integers."""
    return (size_bytes * 8_000_000_000 + bandwidth_bps - 1) // bandwidth_bps


@dataclass
class Flow:
    """One flow of the instance and the tally of what became of its packets."""

    id: int
    src: int
    dst: int
    bytes: int
    start_ns: int
    rate_bps: int
    mtu: int
    sent: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_CAUSES, 0))
    first_delivery_ns: int | None = None
    last_delivery_ns: int | None = None
    latency_sum_ns: int = 0
    latency_max_ns: int = 0
    hop_sum: int = 0

    @property
    def packets(self) -> int:
        return -(-self.bytes // self.mtu)

    def packet_size(self, seq: int) -> int:
        if seq < self.packets - 1:
            return self.mtu
        return self.bytes - (self.packets - 1) * self.mtu


class Packet:
    """A packet in the network: which flow, which one, and where it has been."""

    __slots__ = ("flow", "seq", "size", "injected_ns", "hops", "alive", "port")

    def __init__(self, flow: Flow, seq: int, injected_ns: int):
        self.flow = flow
        self.seq = seq
        self.size = flow.packet_size(seq)
        self.injected_ns = injected_ns
        self.hops = 0
        self.alive = True
        self.port = None
