"""Full-duplex links and their output ports: FIFO, drop-tail, store-and-forward."""

from __future__ import annotations

from collections import deque

from .packets import Packet, serialization_ns


class Port:
    """The output port of one direction of a link: a FIFO queue in front of a transmitter."""

    __slots__ = ("source", "target", "link", "queue", "waiting_bytes", "pending_start", "in_flight")

    def __init__(self, source: int, target: int, link: "Link"):
        self.source = source
        self.target = target
        self.link = link
        self.queue: deque[Packet] = deque()
        self.waiting_bytes = 0
        self.pending_start = None
        self.in_flight: deque[Packet] = deque()
        """Packets serialized or propagating over this direction, in arrival order."""

    def fits(self, packet: Packet) -> bool:
        return self.waiting_bytes + packet.size <= self.link.buffer_bytes

    def enqueue(self, packet: Packet) -> None:
        self.queue.append(packet)
        self.waiting_bytes += packet.size

    def dequeue(self) -> Packet:
        packet = self.queue.popleft()
        self.waiting_bytes -= packet.size
        return packet

    def serialization_ns(self, packet: Packet) -> int:
        return serialization_ns(packet.size, self.link.bandwidth_bps)

    def flush(self) -> list[Packet]:
        """Empty the port (the link failed): every packet it held, queued or on the wire."""
        held = list(self.queue) + list(self.in_flight)
        self.queue.clear()
        self.in_flight.clear()
        self.waiting_bytes = 0
        self.pending_start = None
        return held


class Link:
    """An undirected link {a, b}: its parameters, its state and its two ports."""

    __slots__ = ("a", "b", "bandwidth_bps", "delay_ns", "buffer_bytes", "weight", "up", "ports")

    def __init__(self, a: int, b: int, bandwidth_bps: int, delay_ns: int, buffer_bytes: int, weight: int):
        self.a, self.b = min(a, b), max(a, b)
        self.bandwidth_bps = bandwidth_bps
        self.delay_ns = delay_ns
        self.buffer_bytes = buffer_bytes
        self.weight = weight
        self.up = True
        self.ports = (Port(self.a, self.b, self), Port(self.b, self.a, self))
