"""The scenario file format: pydantic models, the one source of its JSON Schema.

A scenario is a YAML file describing a small network, the programs attached to it, the
traffic sent through it and what must happen.  ``scenarios/schema.json`` is generated
from :class:`Scenario` (``tcemu validate --schema``) and committed; a test keeps the two
equal.  Every model forbids unknown keys, so a typo is an error that names the key and
its line rather than a setting silently ignored.

Sections, in the order a run applies them: ``netns``, ``links``, ``setup`` (``ip``/``tc``
command strings), ``programs``, ``tc`` (qdiscs and filters, structured or as ``tc``
strings), ``maps`` (preloads), ``traffic`` (sends, receives, pcaps, clock steps) and
``expect``.
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "Advance",
    "Bytes",
    "CounterExpect",
    "Expectation",
    "FilterSpec",
    "LinkSpec",
    "MapEntry",
    "MapExpect",
    "PacketMatch",
    "PcapTraffic",
    "ProgramSpec",
    "QdiscSpec",
    "RejectExpect",
    "Scenario",
    "SendTraffic",
    "TraceExpect",
    "TrafficStep",
    "VerdictExpect",
    "parse_duration_ns",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_FIELD_PATH = re.compile(r"^(outer:|icmp:)?[A-Za-z][A-Za-z0-9_]*(\[\d+\])?"
                         r"\.[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|usec|ms|msec|s|sec)?\s*$")
_UNIT_NS = {None: 1, "ns": 1, "us": 1_000, "usec": 1_000, "ms": 1_000_000,
            "msec": 1_000_000, "s": 1_000_000_000, "sec": 1_000_000_000}


def parse_duration_ns(value: int | str) -> int:
    """``1500``, ``"1.5ms"``, ``"20us"`` → nanoseconds (a bare number is ns)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (e.g. 250us, 1.5ms, 2s)")
    return round(float(match.group(1)) * _UNIT_NS[match.group(2)])


def _check_hex(value: str) -> str:
    """A hex string (spaces between bytes allowed), checked here so that ``tcemu validate``
    names its line rather than the run failing halfway."""
    try:
        bytes.fromhex(value)
    except ValueError:
        bad = next((ch for ch in value if not ch.isspace()
                    and ch not in "0123456789abcdefABCDEF"), None)
        why = f"{bad!r} is not a hex digit" if bad else "odd number of hex digits"
        raise ValueError(f"{value[:40]!r} is not hex: {why}") from None
    return value


def _check_bytes(value: int | str | list[int]) -> int | str | list[int]:
    if isinstance(value, list):
        bad = [b for b in value if not 0 <= b <= 255]
        if bad:
            raise ValueError(f"byte values are 0..255, not {bad[0]}")
    elif isinstance(value, str) and not value.startswith("ifindex:"):
        _check_hex(value.removeprefix("0x"))
    return value


def _check_duration(value: int | str) -> int | str:
    parse_duration_ns(value)
    return value


def _check_classid(value: str) -> str:
    """``maj:min`` in hex (tc's classid syntax), each part at most ffff."""
    major, colon, minor = value.partition(":")
    try:
        parts = [int(part or "0", 16) for part in (major, minor)]
    except ValueError:
        parts = []
    if not colon or len(parts) != 2 or not all(0 <= part <= 0xFFFF for part in parts):
        raise ValueError(f"{value!r} is not a classid such as 1:10 (hex major:minor)")
    return value


def _check_mac(value: str) -> str:
    """``02:00:00:00:00:01``: six hex octets, as ``ip link set address`` takes them."""
    parts = value.split(":")
    if len(parts) != 6 or not all(0 < len(p) <= 2 and all(c in string.hexdigits for c in p)
                                  for p in parts):
        raise ValueError(f"{value!r} is not a MAC address such as 02:00:00:00:00:01")
    return value


def _check_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IP address") from err
    return value


def _check_cidrs(value: list[str]) -> list[str]:
    for cidr in value:
        try:
            ipaddress.ip_interface(cidr)
        except ValueError as err:
            raise ValueError(f"{cidr!r} is not an address such as 10.0.0.1/24") from err
    return value


Duration = Annotated[int | str, Field(description="nanoseconds, or a string such as 1.5ms")]
IpAddress = Annotated[str, AfterValidator(_check_ip)]
Mac = Annotated[str, AfterValidator(_check_mac)]
Bytes = Annotated[
    int | str | list[int],
    Field(description="an integer (little-endian, sized to the map's key or value), a hex "
                      "string such as '0a000001' or '0a 00 00 01', or a list of byte values"),
    AfterValidator(_check_bytes),
]
Hex = Annotated[str, AfterValidator(_check_hex)]
Direction = Literal["in", "out", "any"]


class LinkSpec(_Model):
    """A device, as ``ip link add`` would make it."""

    name: str
    kind: Literal["veth", "vlan", "vxlan", "dummy", "eth"]
    netns: str = "default"
    address: Mac | None = None
    mtu: int | None = Field(default=None, ge=68, le=65535)
    up: bool = True
    peer: str | None = Field(default=None, description="veth: the peer's name")
    peer_netns: str | None = None
    peer_address: Mac | None = None
    link: str | None = Field(default=None, description="vlan: the parent device")
    vlan_id: int | None = Field(default=None, ge=0, le=4095)
    vlan_protocol: Literal["802.1Q", "802.1ad"] = "802.1Q"
    vni: int | None = Field(default=None, ge=0, lt=1 << 24)
    remote: IpAddress | None = None
    local: IpAddress | None = None
    dstport: int | None = Field(default=None, ge=0, le=65535)
    external: bool = False
    addresses: Annotated[list[str], AfterValidator(_check_cidrs)] = Field(
        default_factory=list, description="CIDR addresses")

    @model_validator(mode="after")
    def _kind_options(self) -> LinkSpec:
        if self.kind == "veth" and not self.peer:
            raise ValueError("a veth link needs 'peer'")
        if self.kind == "vlan" and (self.link is None or self.vlan_id is None):
            raise ValueError("a vlan link needs 'link' and 'vlan_id'")
        if self.kind == "vxlan" and self.vni is None and not self.external:
            raise ValueError("a vxlan link needs 'vni' or 'external: true'")
        if self.remote and self.local and (ipaddress.ip_address(self.remote).version
                                           != ipaddress.ip_address(self.local).version):
            raise ValueError("vxlan 'remote' and 'local' must be of one address family")
        return self


class ProgramSpec(_Model):
    """A BPF program: a section of a clang object, or inline assembly."""

    object: str | None = Field(default=None, description="path, relative to the scenario file")
    section: str | None = None
    name: str | None = Field(default=None, description="the program (C function) name, when "
                             "the section holds several")
    asm: str | None = Field(default=None, description="kernel verifier-log syntax")
    prog_type: Literal["sched_cls", "sched_act"] = "sched_cls"

    @model_validator(mode="after")
    def _one_source(self) -> ProgramSpec:
        if (self.object is None) == (self.asm is None):
            raise ValueError("give exactly one of 'object' or 'asm'")
        return self


class QdiscSpec(_Model):
    dev: str
    netns: str = "default"
    qdisc: str = Field(description="clsact, ingress, pfifo, prio, htb, tbf, netem, ...")
    parent: str = "root"
    handle: str | None = None
    params: dict[str, int | str | float | list[int]] = Field(default_factory=dict)


class FilterSpec(_Model):
    dev: str
    netns: str = "default"
    hook: str = Field(description="ingress, egress, or a parent such as 1:")
    program: str | None = Field(default=None, description="a name from 'programs'")
    kind: Literal["bpf", "matchall"] = "bpf"
    da: bool = True
    prio: int = Field(default=0, ge=0, le=0xFFFF)
    protocol: str = "all"
    handle: int | None = None
    chain: int = 0
    classid: str | None = None
    actions: list[str] = Field(default_factory=list, description="tc action syntax")


class MapEntry(_Model):
    """A map preload.  Maps belong to objects: ``program`` (a name from ``programs``)
    says whose map it is when several objects have a map of that name."""

    map: str
    program: str | None = None
    key: Bytes
    value: Bytes


class SendTraffic(_Model):
    """A frame the host sends out of ``dev`` (``direction: out``) or that arrives on it
    from the wire (``direction: in``)."""

    dev: str
    netns: str = "default"
    direction: Literal["in", "out"] = "out"
    packet: str | None = Field(default=None, description="Scapy layers, e.g. Ether()/IP()")
    bytes: Hex | None = Field(default=None, description="the frame as hex")
    size: int | None = Field(default=None, ge=14, le=65535,
                             description="pad the frame with zero bytes to this length")
    repeat: int = Field(default=1, ge=1, le=1_000_000)
    gap: Annotated[Duration, AfterValidator(_check_duration)] = 0
    task_classid: Annotated[str, AfterValidator(_check_classid)] | None = Field(
        default=None, description="net_cls classid of the sending task, e.g. 1:10")

    @model_validator(mode="after")
    def _one_frame(self) -> SendTraffic:
        if (self.packet is None) == (self.bytes is None):
            raise ValueError("give exactly one of 'packet' or 'bytes'")
        return self


class PcapTraffic(_Model):
    pcap: str
    dev: str
    netns: str = "default"
    direction: Literal["in", "out"] = "in"
    keep_time: bool = Field(default=False, description="replay at the capture's timestamps")


class Advance(_Model):
    advance: Duration

    @field_validator("advance")
    @classmethod
    def _check(cls, value: int | str) -> int | str:
        parse_duration_ns(value)
        return value


class _Send(_Model):
    send: SendTraffic


class _Pcap(_Model):
    replay: PcapTraffic


def _by_key(tags: dict[str, str], *, commands: bool = False) -> Discriminator:
    """Pick a union member by which key the mapping has (``key=Tag``), so an error is
    reported against that member only, not once per member.  Tags are capitalised so
    they never read as YAML keys in an error location."""
    def pick(value: object) -> str | None:
        if isinstance(value, str):
            return "Str"
        if isinstance(value, dict):
            for key, tag in tags.items():
                if key in value:
                    return tag
            return list(tags.values())[-1]
        if isinstance(value, BaseModel):
            return type(value).__name__.lstrip("_")
        return None
    keys = " or ".join(f"'{key}'" for key in tags)
    strings = " or an ip/tc command string" if commands else ""
    return Discriminator(pick, custom_error_type="entry_type",
                         custom_error_message=f"expected a mapping with {keys}{strings}",
                         custom_error_context={})


TrafficStep = Annotated[
    Annotated[_Send, Tag("Send")] | Annotated[_Pcap, Tag("Pcap")]
    | Annotated[Advance, Tag("Advance")],
    _by_key({"send": "Send", "replay": "Pcap", "advance": "Advance"}),
]


class PacketMatch(_Model):
    dev: str
    netns: str = "default"
    direction: Direction = "any"
    fields: dict[str, int | str] = Field(
        default_factory=dict, description="Scapy 'Layer.field' → value, e.g. IP.dst: 10.0.0.2")
    bytes: Hex | None = Field(default=None, description="the whole frame as hex")
    packet: str | None = Field(default=None, description="the whole frame as Scapy layers")
    contains: Hex | None = Field(default=None, description="hex that must occur in the frame")
    count: int | None = Field(default=None, ge=0)
    times: list[Duration] | None = Field(
        default=None, description="virtual-clock timestamps of the matching frames, in order")


class _Seen(_Model):
    seen: PacketMatch


class _NotSeen(_Model):
    not_seen: PacketMatch


class VerdictExpect(_Model):
    dev: str
    netns: str = "default"
    hook: Literal["ingress", "egress"]
    verdict: str = Field(description="OK, SHOT, REDIRECT, STOLEN, UNSPEC, ... or a number")
    packet: int | None = Field(default=None, ge=0, description="index in traffic order")
    count: int | None = Field(default=None, ge=0)


class _Verdict(_Model):
    verdict: VerdictExpect


class MapExpect(_Model):
    map: str
    program: str | None = None
    key: Bytes
    value: Bytes | None = Field(default=None, description="None: the key must be absent")


class _Map(_Model):
    map: MapExpect


class CounterExpect(_Model):
    dev: str
    netns: str = "default"
    counter: str = Field(description="qdisc stats (packets, bytes, drops, overlimits) or "
                                     "device stats (rx_packets, tx_packets, ...)")
    qdisc: str | None = Field(default=None, description="handle such as 1:, or root")
    value: int


class _Counter(_Model):
    counter: CounterExpect


class RejectExpect(_Model):
    program: str
    message: str = Field(description="a regular expression the verifier's error must match")


class _Rejected(_Model):
    rejected: RejectExpect


class TraceExpect(_Model):
    trace_printk: str = Field(description="a regular expression a trace line must match")
    count: int | None = Field(default=None, ge=0)


Expectation = Annotated[
    Annotated[_Seen, Tag("Seen")] | Annotated[_NotSeen, Tag("NotSeen")]
    | Annotated[_Verdict, Tag("Verdict")] | Annotated[_Map, Tag("Map")]
    | Annotated[_Counter, Tag("Counter")] | Annotated[_Rejected, Tag("Rejected")]
    | Annotated[TraceExpect, Tag("TraceExpect")],
    _by_key({"seen": "Seen", "not_seen": "NotSeen", "verdict": "Verdict", "map": "Map",
             "counter": "Counter", "rejected": "Rejected", "trace_printk": "TraceExpect"}),
]
LinkItem = Annotated[
    Annotated[str, Tag("Str")] | Annotated[LinkSpec, Tag("LinkSpec")],
    _by_key({"name": "LinkSpec"}, commands=True),
]
TcItem = Annotated[
    Annotated[str, Tag("Str")] | Annotated[QdiscSpec, Tag("QdiscSpec")]
    | Annotated[FilterSpec, Tag("FilterSpec")],
    _by_key({"qdisc": "QdiscSpec", "hook": "FilterSpec"}, commands=True),
]


class Scenario(_Model):
    """One scenario file."""

    name: str
    description: str = ""
    seed: int = 0
    netns: list[str] = Field(default_factory=list)
    links: list[LinkItem] = Field(default_factory=list,
                                        description="structured, or 'ip link add ...' strings")
    setup: list[str] = Field(default_factory=list, description="'ip ...' or 'tc ...' commands")
    programs: dict[str, ProgramSpec] = Field(default_factory=dict)
    tc: list[TcItem] = Field(default_factory=list)
    maps: list[MapEntry] = Field(default_factory=list)
    traffic: list[TrafficStep] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    nondeterministic: list[str] | None = Field(
        default=None,
        description="fields 'tcemu diff' ignores, as 'Layer.field' (every such layer), "
                    "'Layer[N].field' (the N-th, 0 the outermost) or 'outer:Layer.field' "
                    "(before a VXLAN header); replaces the default list (outer VXLAN UDP "
                    "source port and checksum, outer IPv4 id and header checksum)")

    @field_validator("nondeterministic")
    @classmethod
    def _field_paths(cls, value: list[str] | None) -> list[str] | None:
        for path in value or []:
            if not _FIELD_PATH.match(path):
                raise ValueError(f"{path!r} is not a field path such as IP.id, UDP[0].sport "
                                 "or outer:UDP.sport")
        return value

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        for item in self.tc:
            if isinstance(item, FilterSpec) and item.kind == "bpf":
                if item.program is None:
                    raise ValueError(f"bpf filter on {item.dev} needs 'program'")
                if item.program not in self.programs:
                    raise ValueError(f"filter on {item.dev} uses unknown program "
                                     f"{item.program!r} (programs: {sorted(self.programs)})")
        return self
