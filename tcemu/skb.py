"""The socket buffer and the program's view of it, ``struct __sk_buff``.

:class:`SkBuff` holds what the kernel's ``struct sk_buff`` holds for tc: the packet bytes
from ``skb->data`` (linear; tcemu has no paged fragments), header offsets relative to
``data``, and every field a program can see, stored as the kernel stores it (widths, byte
order).  :data:`SKB_FIELDS` is the one table of the 192-byte ``struct __sk_buff`` (uapi
``include/uapi/linux/bpf.h``): offsets, the size of the real member the verifier rewrites
an access to (``net/core/filter.c`` ``bpf_convert_ctx_access``), and who may read or write.
:func:`ctx_load`/:func:`ctx_store` implement those rewritten accesses, including the
narrow-load quirk of ``bpf_ctx_narrow_access_offset`` (kernel-semantics.md section 1.1).

The second half holds the sk_buff operations the datapath (``tcemu.net``) shares:
``skb_push``/``skb_pull`` (:meth:`SkBuff.push`/:meth:`SkBuff.pull`, the pulled bytes kept
in ``head``), ``eth_type_trans`` (``net/ethernet/eth.c``), ``skb_vlan_untag``,
``skb_vlan_push``/``skb_vlan_pop`` and ``__vlan_hwaccel_push_inside``,
``skb_scrub_packet``, ``skb_checksum_help`` and the flow hash (``net/core/skbuff.c``,
``net/core/dev.c``).
"""

from __future__ import annotations

import copy
import hashlib
import struct
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from enum import IntEnum
from operator import attrgetter

from tcemu import csum
from tcemu.bpf.uapi import BpfProgType

__all__ = [
    "SKB_CTX_SIZE",
    "SKB_FIELDS",
    "SKB_INLINE_LOADS",
    "CtxField",
    "PktType",
    "SkBuff",
    "TunnelInfo",
    "check_ctx_access",
    "ctx_load",
    "ctx_loader",
    "ctx_store",
]

SKB_CTX_SIZE = 192
ETH_HLEN = 14
CHECKSUM_NONE, CHECKSUM_UNNECESSARY, CHECKSUM_COMPLETE, CHECKSUM_PARTIAL = range(4)
NO_QUEUE_MAPPING = 0xFFFF


class PktType(IntEnum):
    """``skb->pkt_type`` (uapi ``linux/if_packet.h`` PACKET_*)."""

    HOST = 0
    BROADCAST = 1
    MULTICAST = 2
    OTHERHOST = 3
    OUTGOING = 4
    LOOPBACK = 5


@dataclass
class TunnelInfo:
    """``struct ip_tunnel_info`` of a metadata dst (``include/net/ip_tunnels.h``)."""

    tun_id: int = 0                 # host-order value of the BE64 key
    src: bytes = bytes(4)           # key.u.ipv4/ipv6.src, network order
    dst: bytes = bytes(4)
    tos: int = 0
    ttl: int = 0
    label: int = 0
    flags: int = 0                  # TUNNEL_* bits
    ipv6: bool = False
    tx: bool = True
    options: bytes = b""
    per_cpu: bool = True            # set by bpf_skb_set_tunnel_key
    tp_src: int = 0                 # outer UDP ports (host order; 0: the device decides)
    tp_dst: int = 0


# _TAKE[n](data)[0]: the first n bytes of a bytearray as bytes, in one call (half the
# cost of bytes(data[:n]), which copies twice); n < 256 (pulls are header sized)
_TAKE = tuple(struct.Struct(f"{n}s").unpack_from for n in range(256))


class _SkbRare:
    """The sk_buff fields most packets keep at their defaults.  Until an skb sets one,
    reading it finds the class attribute; setting it puts it in the skb's ``__dict__``.
    An skb is made per packet, and storing 24 fewer slots each time is a fifth of what
    making one costs (``SkBuff.__copy__`` copies the ``__dict__`` too).  Code that puts
    one back to its default calls :meth:`SkBuff.reset_rare` rather than storing it."""

    __slots__ = ("__dict__",)

    mark: int = 0
    hash: int = 0
    sw_hash: bool = False         # the hash was set by software (bpf_set_hash, a recalc)
    l4_hash: bool = False         # ... and covers the L4 ports
    napi_id: int = 0
    gso_segs: int = 0
    gso_size: int = 0
    gso_type: int = 0             # SKB_GSO_* (test_run never sets one)
    hwtstamp: int = 0
    ip_summed: int = CHECKSUM_NONE
    csum: int = 0
    csum_level: int = 0
    has_sk: bool = False
    tunnel: TunnelInfo | None = None
    encapsulation: bool = False
    sk_classid: int = 0           # net_cls classid of the full socket (has_sk)
    realm: int = 0                # dst->tclassid of an attached route (bpf_get_route_realm)
    csum_offset: int = 0          # CHECKSUM_PARTIAL: field offset from the transport header
    from_ingress: bool = False
    tc_depth: int = 0             # netem: > 0 on a duplicate (never duplicated again)
    priority: int = 0
    queue_mapping: int = 0
    tstamp: int = 0
    # skb->cb[]'s 20 bytes as struct __sk_buff shows them: shared zeros until written
    # (``writable_cb``), then the skb's own bytearray
    cb: bytes | bytearray = bytes(20)


@dataclass(slots=True)
class SkBuff(_SkbRare):
    """A linear sk_buff.  ``data`` is the packet from ``skb->data`` to the tail.

    Slotted: one is made per packet, and slots make that (and every field access) cheaper.
    The fields most packets never change are :class:`_SkbRare`'s class attributes until
    an skb sets one (see there); :data:`SKBUFF_ATTRS` names them all.
    """

    data: bytearray
    headroom: int = 64
    mac_header: int = 0           # offsets relative to skb->data
    network_header: int = ETH_HLEN
    transport_header: int | None = None
    protocol: int = 0             # host-order EtherType value (the kernel stores it BE16)
    pkt_type: int = PktType.HOST
    vlan_proto: int = 0           # host-order value, 0 when no hardware-accelerated tag
    vlan_tci: int = 0
    ifindex: int = 0
    ingress_ifindex: int = 0
    tc_index: int = 0
    tc_classid: int = 0
    tstamp_type: int = 0
    wire_len: int = 0             # qdisc_skb_cb(skb)->pkt_len
    tc_at_ingress: bool = False
    mac_len: int = 0
    head: bytes = b""             # the last bytes of the headroom (e.g. a pulled L2 header)
    # -- datapath state (tcemu/net) ------------------------------------------------------
    dev: object | None = None     # skb->dev, a tcemu.netdev.NetDev (ifindex mirrors it)
    redirected: bool = False
    pkt_id: int = 0               # tcemu's packet number in the trace
    tc_seen: tuple[int, str] | None = None   # the egress hook's verdict, for the tap

    @property
    def len(self) -> int:
        return len(self.data)

    def push(self, size: int) -> None:
        """``__skb_push``: move ``size`` bytes of headroom back in front of ``data``."""
        if size <= 0:
            return
        head = self.head
        cut = len(head) - size
        if cut:
            if cut < 0:
                head = bytes(-cut) + head
                cut = 0
            self.data[0:0] = head[cut:]
            self.head = head[:cut]
        else:                             # the whole kept headroom goes back (at ingress)
            self.data[0:0] = head
            self.head = b""
        self.mac_header += size           # _shift(size), inline: a push per program run
        self.network_header += size
        if self.transport_header is not None:
            self.transport_header += size

    def pull(self, size: int) -> None:
        """``__skb_pull``: move the first ``size`` bytes of ``data`` into the headroom."""
        if size <= 0:
            return
        data = self.data
        try:
            taken = _TAKE[size](data)[0]
        except (IndexError, struct.error):        # (a pull past 256 bytes or the end)
            taken = bytes(data[:size])
        head = self.head + taken if self.head else taken
        if len(head) > self.headroom:
            head = head[-self.headroom:]
        self.head = head
        del data[:size]
        self.mac_header -= size           # _shift(-size), inline: as in push
        self.network_header -= size
        if self.transport_header is not None:
            self.transport_header -= size

    def _shift(self, delta: int) -> None:
        self.mac_header += delta
        self.network_header += delta
        if self.transport_header is not None:
            self.transport_header += delta

    def writable_cb(self) -> bytearray:
        """``cb`` as this skb's own bytearray, to write into."""
        cb = self.cb
        if not isinstance(cb, bytearray):
            cb = self.cb = bytearray(cb)
        return cb

    def reset_rare(self, *names: str) -> None:
        """Put rarely set fields (:class:`_SkbRare`) back to their defaults."""
        if self.__dict__:
            for name in names:
                self.__dict__.pop(name, None)

    def clear_hash(self) -> None:
        """``skb_clear_hash``: no hash, and the next ``skb_get_hash`` computes one."""
        self.hash, self.sw_hash, self.l4_hash = 0, False, False

    def set_sw_hash(self, value: int, is_l4: bool) -> None:
        """``__skb_set_sw_hash``."""
        self.hash, self.sw_hash, self.l4_hash = value & 0xFFFF_FFFF, True, is_l4

    @property
    def vlan_present(self) -> bool:
        return bool(self.vlan_proto or self.vlan_tci)

    def __copy__(self) -> SkBuff:
        """A shallow copy (``copy.copy``), made through the constructor: faster than the
        generic copy of a slotted object."""
        other = SkBuff(*_all_fields(self))
        if self.__dict__:
            other.__dict__.update(self.__dict__)
        return other

    def clone(self) -> SkBuff:
        """``skb_clone`` followed by a private copy of the data (tcemu never shares)."""
        other = copy.copy(self)
        other.data = bytearray(self.data)
        if "cb" in self.__dict__:
            other.cb = bytearray(self.cb)
        other.tunnel = copy.deepcopy(self.tunnel)
        return other


_all_fields = attrgetter(*(f.name for f in fields(SkBuff)))
def skb_maker(*names: str) -> Callable[..., SkBuff]:
    """``make(data, <names>...)``: an :class:`SkBuff` with those fields given and every
    other slot at its default, each slot stored once (``SkBuff(data)`` then setting the
    fields stores those twice).  Generated from the dataclass's fields, the one source of
    the defaults; for a datapath that makes an skb per packet."""
    unknown = set(names) - {f.name for f in fields(SkBuff)} | ({"data"} & set(names))
    if unknown:
        raise ValueError(f"skb_maker: not settable slots: {sorted(unknown)}")
    env: dict[str, object] = {"new": object.__new__, "SkBuff": SkBuff}
    lines = ["def make(data, " + ", ".join(names) + "):", "    s = new(SkBuff)"]
    for f in fields(SkBuff):
        if f.name == "data" or f.name in names:
            value = f.name
        elif f.default_factory is not MISSING:
            env[f"f_{f.name}"] = f.default_factory
            value = f"f_{f.name}()"
        else:
            env[f"d_{f.name}"] = f.default
            value = f"d_{f.name}"
        lines.append(f"    s.{f.name} = {value}")
    lines.append("    return s")
    exec(compile("\n".join(lines) + "\n", f"<skb_maker {' '.join(names)}>", "exec"), env)
    make = env["make"]
    assert callable(make)
    return make


# every attribute of an SkBuff: the slots, then the rarely set ones (_SkbRare)
SKBUFF_ATTRS: tuple[str, ...] = (*(f.name for f in fields(SkBuff)),
                                 *(name for name in vars(_SkbRare) if not name.startswith("_")))


# ---- struct __sk_buff -------------------------------------------------------------------
_CLS = frozenset({BpfProgType.SCHED_CLS, BpfProgType.SCHED_ACT})
_ALL = _CLS | {BpfProgType.SOCKET_FILTER}


@dataclass(frozen=True)
class CtxField:
    """One ``struct __sk_buff`` member: where it is and what an access becomes."""

    name: str
    offset: int
    size: int                     # bytes in struct __sk_buff
    target: int                   # size of the real member a load is rewritten to
    read: frozenset[BpfProgType]
    write: frozenset[BpfProgType] = frozenset()
    kind: str = "plain"           # plain, cb, pointer, tstamp, u64


def _f(name: str, offset: int, target: int, read: frozenset[BpfProgType] = _ALL,
       write: frozenset[BpfProgType] = frozenset(), size: int = 4, kind: str = "plain",
       ) -> CtxField:
    return CtxField(name, offset, size, target, read, write, kind)


SKB_FIELDS: tuple[CtxField, ...] = (
    _f("len", 0, 4),
    _f("pkt_type", 4, 1),
    _f("mark", 8, 4, write=_CLS),
    _f("queue_mapping", 12, 2, write=_CLS),
    _f("protocol", 16, 2),
    _f("vlan_present", 20, 4),
    _f("vlan_tci", 24, 2),
    _f("vlan_proto", 28, 2),
    _f("priority", 32, 4, write=_CLS),
    _f("ingress_ifindex", 36, 4),
    _f("ifindex", 40, 4),
    _f("tc_index", 44, 2, write=_CLS),
    _f("cb", 48, 20, read=_ALL, write=_ALL, size=20, kind="cb"),
    _f("hash", 68, 4),
    _f("tc_classid", 72, 2, read=_CLS, write=_CLS),
    _f("data", 76, 8, read=_CLS, kind="pointer"),
    _f("data_end", 80, 8, read=_CLS, kind="pointer"),
    _f("napi_id", 84, 4),
    _f("data_meta", 140, 8, read=_CLS, kind="pointer"),
    _f("tstamp", 152, 8, read=_CLS, write=_CLS, size=8, kind="u64"),
    _f("wire_len", 160, 4, read=_CLS),
    _f("gso_segs", 164, 2),
    _f("sk", 168, 8, size=8, kind="sk"),
    _f("gso_size", 176, 2),
    _f("tstamp_type", 180, 1, read=_CLS, size=1, kind="u8"),
    _f("hwtstamp", 184, 8, read=_CLS, size=8, kind="u64"),
)
_BY_OFFSET = {f.offset: f for f in SKB_FIELDS}
# Members whose value follows from the packet alone (skb->data .. tail, the packet region of
# a run), which the translated tier computes inline: offset -> "data" (data and data_meta:
# the packet's first byte, tcemu keeps no metadata before it), "data_end" (data + the
# linear length) or "len" (the linear length: tcemu's skbs have no fragments).
SKB_INLINE_LOADS: dict[int, str] = {
    f.offset: "len" if f.name == "len" else "data_end" if f.name == "data_end" else "data"
    for f in SKB_FIELDS if f.kind == "pointer" or f.name == "len"}


def _scan(offset: int) -> CtxField | None:
    for fld in SKB_FIELDS:
        if fld.offset <= offset < fld.offset + fld.size:
            return fld
    return None


# Every byte offset of struct __sk_buff -> the field it falls in (or None for holes).
_FIELD_AT: tuple[CtxField | None, ...] = tuple(_scan(off) for off in range(SKB_CTX_SIZE))


def _field_at(offset: int) -> CtxField | None:
    return _FIELD_AT[offset] if 0 <= offset < SKB_CTX_SIZE else None


def check_ctx_access(offset: int, size: int, write: bool, prog_type: BpfProgType,
                     ) -> CtxField | None:
    """The field an access hits, or None when the kernel rejects it
    (``invalid bpf_context access off=%d size=%d``)."""
    if offset < 0 or offset + size > SKB_CTX_SIZE or offset % size:
        return None
    fld = _field_at(offset)
    if fld is None or prog_type not in (fld.write if write else fld.read):
        return None
    if fld.kind == "cb":
        return fld if size in (1, 2, 4) or (size == 8 and offset in (48, 56)) else None
    if fld.kind in ("pointer",):
        return fld if size == 4 and offset == fld.offset and not write else None
    if fld.kind in ("u64", "sk"):
        return fld if size == 8 and offset == fld.offset else None
    if fld.kind == "u8":
        return fld if size == 1 and offset == fld.offset else None
    if write:
        return fld if size == 4 and offset == fld.offset else None
    return fld if size in (1, 2, 4) else None


# Plain members whose value is not the attribute as stored (BE16 fields read little-endian).
_MEMBERS: dict[str, Callable[[SkBuff], int]] = {
    "len": lambda skb: len(skb.data),
    "protocol": lambda skb: int.from_bytes(skb.protocol.to_bytes(2, "big"), "little"),
    "vlan_proto": lambda skb: int.from_bytes(skb.vlan_proto.to_bytes(2, "big"), "little"),
    "vlan_present": lambda skb: int(skb.vlan_proto != 0 or skb.vlan_tci != 0),
    "pkt_type": lambda skb: skb.pkt_type & 7,
    "napi_id": lambda skb: skb.napi_id if skb.napi_id > 0 else 0,
}


def _member(skb: SkBuff, name: str) -> int:
    """A plain member's value as the kernel stores it (BE16 fields read little-endian)."""
    special = _MEMBERS.get(name)
    if special is not None:
        return special(skb)
    value: int = getattr(skb, name)
    return value


CtxLoader = Callable[[SkBuff, int], int]
"""One verified context load: ``(skb, packet_base) -> value`` (see :func:`ctx_load`)."""

_LOADERS: dict[tuple[int, int, bool], CtxLoader] = {}


def ctx_loader(offset: int, size: int, tstamp_type_access: bool = True) -> CtxLoader:
    """:func:`ctx_load` for one (offset, size), decided once: what the verifier's rewrite
    of that access (``bpf_convert_ctx_access``) reads."""
    key = (offset, size, tstamp_type_access)
    loader = _LOADERS.get(key)
    if loader is None:
        loader = _LOADERS[key] = _make_loader(offset, size, tstamp_type_access)
    return loader


def _make_loader(offset: int, size: int, tstamp_type_access: bool) -> CtxLoader:
    fld = _field_at(offset)
    assert fld is not None
    if fld.kind == "cb":
        rel = offset - fld.offset
        end = rel + size
        return lambda skb, base: int.from_bytes(skb.cb[rel:end], "little")
    if fld.kind == "pointer":
        if fld.name == "data_end":
            return lambda skb, base: base + len(skb.data)
        return lambda skb, base: base
    if fld.kind == "sk":
        # The pointer is non-NULL when the skb has a socket.  BPF_PROG_TEST_RUN maps its
        # dummy socket's struct bpf_sock there (testrun.dummy_sock); KERNEL-DIFF: other
        # sockets (the datapath's local senders) are not modelled and fault if read.
        return lambda skb, base: (13 << 32) if skb.has_sk else 0
    if fld.name == "tstamp":
        if tstamp_type_access:
            return lambda skb, base: skb.tstamp
        return lambda skb, base: 0 if skb.tc_at_ingress and skb.tstamp_type else skb.tstamp
    if fld.kind in ("u64", "u8"):
        get: Callable[[SkBuff], int] = attrgetter(fld.name)
        return lambda skb, base: get(skb)
    member = _MEMBERS.get(fld.name) or attrgetter(fld.name)
    mask = (1 << (8 * fld.target)) - 1
    if size < fld.target:
        shift, narrow = 8 * (offset & 3), (1 << (8 * size)) - 1
        return lambda skb, base: ((member(skb) & mask) >> shift) & narrow
    return lambda skb, base: member(skb) & mask


def ctx_load(skb: SkBuff, offset: int, size: int, packet_base: int,
             tstamp_type_access: bool = True) -> int:
    """A verified load of ``size`` bytes at ``offset`` of ``struct __sk_buff``.

    ``packet_base`` is the virtual address of ``skb->data`` (for data/data_end/data_meta).
    """
    return ctx_loader(offset, size, tstamp_type_access)(skb, packet_base)


def ctx_store(skb: SkBuff, offset: int, size: int, value: int,
              tstamp_type_access: bool = True) -> None:
    """A verified store into ``struct __sk_buff`` (truncating as the real member does)."""
    fld = _field_at(offset)
    assert fld is not None
    if fld.kind == "cb":
        rel = offset - fld.offset
        skb.writable_cb()[rel:rel + size] = \
            (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return
    if fld.name == "tstamp":
        skb.tstamp = value & 0xFFFF_FFFF_FFFF_FFFF
        if skb.tc_at_ingress and not tstamp_type_access:
            skb.tstamp_type = 0
        return
    value &= 0xFFFF_FFFF
    if fld.name == "queue_mapping":
        if value < NO_QUEUE_MAPPING:
            skb.queue_mapping = value
        return
    setattr(skb, fld.name, value & ((1 << (8 * fld.target)) - 1))


def ctx_image(skb: SkBuff) -> bytes:
    """The 192-byte ``struct __sk_buff`` as BPF_PROG_TEST_RUN reports it in ctx_out
    (only the fields test_run refreshes; see kernel-semantics.md section 9.2)."""
    out = bytearray(SKB_CTX_SIZE)
    struct.pack_into("<I", out, 8, skb.mark)
    struct.pack_into("<I", out, 32, skb.priority)
    struct.pack_into("<I", out, 36, skb.ingress_ifindex)
    struct.pack_into("<I", out, 40, skb.ifindex)
    out[48:68] = skb.cb
    struct.pack_into("<Q", out, 152, skb.tstamp)
    struct.pack_into("<I", out, 160, skb.wire_len)
    struct.pack_into("<I", out, 164, skb.gso_segs)
    struct.pack_into("<I", out, 176, skb.gso_size)
    struct.pack_into("<Q", out, 184, skb.hwtstamp)
    return bytes(out)


# ---- net/core/skbuff.c and net/ethernet/eth.c operations the datapath shares -------------
ETH_P_8021Q, ETH_P_8021AD, ETH_P_IP, ETH_P_IPV6 = 0x8100, 0x88A8, 0x0800, 0x86DD
VLAN_HLEN = 4
BROADCAST_MAC = b"\xff" * 6


VLAN_PROTOS = (ETH_P_8021Q, ETH_P_8021AD)     # eth_type_vlan()


def is_vlan_proto(proto: int) -> bool:
    return proto in VLAN_PROTOS


# proto_ports_offset(): where the 4 bytes hashed as "ports" start in the L4 header
# (TCP, UDP, DCCP, SCTP, UDP-Lite: the ports; ESP: the SPI; AH: the SPI after 4 bytes).
_PORTS_AT = {6: 0, 17: 0, 33: 0, 132: 0, 136: 0, 50: 0, 51: 4}
_IPV6_EXT = (0, 43, 60)             # hop-by-hop, routing, destination options
_GRE_C, _GRE_K, _GRE_S = 0x8000, 0x2000, 0x1000
_ETH_P_TEB = 0x6558


def flow_keys(skb: SkBuff) -> tuple[object, ...]:
    """What ``__skb_get_hash`` hashes, made canonical (``skb_flow_dissect_flow_keys`` with
    FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, then ``__flow_hash_consistentify``).

    The network protocol, the first VLAN tag (hwaccel or in the payload), the addresses and
    the L4 protocol, then: an IPv6 flow label instead of the ports; no ports for fragments
    (the first one included); the ports (or SPI) of TCP, UDP, SCTP, DCCP, UDP-Lite, ESP
    and AH; the GRE key.  GRE (version 0), IPIP and IPv6-in-IPv4 are dissected through:
    the inner headers replace the outer ones.  Addresses and ports are each put in order,
    so both directions of a flow have the same keys; ICMP, ARP and unknown protocols
    contribute nothing beyond the protocol numbers and addresses.
    """
    data = bytes(skb.data)
    off, proto = skb.network_header, skb.protocol
    vlan: tuple[int, int] | None = (skb.vlan_proto, skb.vlan_tci) if skb.vlan_present else None
    for _ in range(2):
        if proto not in VLAN_PROTOS or off + 4 > len(data):
            break
        tci, inner = struct.unpack_from("!HH", data, off)
        if vlan is None:
            vlan = (proto, tci)
        proto, off = inner, off + 4
    ip_proto, label, keyid = 0, 0, b""
    addrs: tuple[bytes, ...] = ()
    ports: tuple[int, ...] = ()
    for _ in range(8):                      # encapsulation depth
        again = False
        if proto == ETH_P_IP:
            if off + 20 > len(data) or data[off] & 0xF < 5:
                break
            ip_proto = data[off + 9]
            addrs = tuple(sorted((data[off + 12:off + 16], data[off + 16:off + 20])))
            fragment = struct.unpack_from("!H", data, off + 6)[0] & 0x3FFF
            off += (data[off] & 0xF) * 4
            if fragment:
                break
        elif proto == ETH_P_IPV6:
            if off + 40 > len(data):
                break
            ip_proto = data[off + 6]
            addrs = tuple(sorted((data[off + 8:off + 24], data[off + 24:off + 40])))
            label = struct.unpack_from("!I", data, off)[0] & 0xFFFFF
            off += 40
            if label:
                break
            while ip_proto in _IPV6_EXT and off + 8 <= len(data):
                ip_proto, off = data[off], off + (data[off + 1] + 1) * 8
            if ip_proto == 44:              # fragment header: the next protocol, no ports
                if off + 8 <= len(data):
                    ip_proto = data[off]
                break
        else:
            break
        if ip_proto == 47 and off + 4 <= len(data):
            flags, inner = struct.unpack_from("!HH", data, off)
            if flags & 7:
                break
            hdr = 4 + (4 if flags & _GRE_C else 0)
            if flags & _GRE_K:
                keyid = data[off + hdr:off + hdr + 4]
                hdr += 4
            hdr += 4 if flags & _GRE_S else 0
            proto, off, again = inner, off + hdr, True
            if proto == _ETH_P_TEB and off + 14 <= len(data):
                proto, off = struct.unpack_from("!H", data, off + 12)[0], off + 14
        elif ip_proto in (4, 41):
            proto, again = (ETH_P_IP if ip_proto == 4 else ETH_P_IPV6), True
        elif ip_proto in _PORTS_AT:
            at = off + _PORTS_AT[ip_proto]
            if at + 4 <= len(data):
                ports = tuple(sorted(struct.unpack_from("!HH", data, at)))
        if not again:
            break
    return (proto, ip_proto, vlan, label, keyid, addrs, ports)


def skb_flow_hash(skb: SkBuff, seed: int) -> int:
    """``skb_get_hash`` without storing: a flow hash of :func:`flow_keys` keyed by ``seed``.

    Packets get the same hash exactly when the kernel gives them the same one (the same
    canonical flow keys).  KERNEL-DIFF: the value itself is a keyed BLAKE2 of the keys
    with the environment's seed, not jhash with the kernel's random per-boot key.
    """
    key = repr(flow_keys(skb)).encode()
    digest = hashlib.blake2b(key, digest_size=4, key=seed.to_bytes(8, "little"))
    return int.from_bytes(digest.digest(), "little") or 1


def eth_protocol(frame: bytes | bytearray, at: int = 12) -> int:
    """The protocol ``eth_type_trans`` derives from the EtherType field at ``at``."""
    ethertype = int.from_bytes(frame[at:at + 2], "big")
    if ethertype >= 0x0600:
        return ethertype
    return 0x0001 if frame[at + 2:at + 4] == b"\xff\xff" else 0x0004


def eth_type_trans(skb: SkBuff, address: bytes, broadcast: bytes = BROADCAST_MAC) -> int:
    """``eth_type_trans``: mac header at data, pkt_type against the device, pull 14 bytes.

    Returns the protocol (also stored in ``skb.protocol``)."""
    skb.mac_header = 0
    data = skb.data
    if data[0] & 1:
        skb.pkt_type = _BROADCAST if data.startswith(broadcast) else _MULTICAST
    elif not data.startswith(address):
        skb.pkt_type = _OTHERHOST
    ethertype = data[12] << 8 | data[13] if len(data) >= ETH_HLEN else 0
    skb.protocol = protocol = ethertype if ethertype >= 0x0600 else eth_protocol(data)
    skb.pull(ETH_HLEN)
    return protocol


_BROADCAST, _MULTICAST, _OTHERHOST = PktType.BROADCAST, PktType.MULTICAST, PktType.OTHERHOST


def vlan_insert_tag(skb: SkBuff, proto: int, tci: int) -> None:
    """``__vlan_insert_tag`` with data at the mac header: the tag goes after the MACs."""
    tag = proto.to_bytes(2, "big") + (tci & 0xFFFF).to_bytes(2, "big")
    skb.data[12:12] = tag
    if skb.transport_header is not None:
        skb.transport_header += VLAN_HLEN
    skb.network_header += VLAN_HLEN
    if skb.ip_summed == CHECKSUM_COMPLETE:
        skb.csum = csum.add32(skb.csum, csum.partial(tag))


def vlan_hwaccel_push_inside(skb: SkBuff) -> None:
    """``__vlan_hwaccel_push_inside`` (``validate_xmit_vlan``): write the hw-accel tag into
    the payload for a device without VLAN TX offload; data is at the mac header."""
    if skb.vlan_present:
        vlan_insert_tag(skb, skb.vlan_proto, skb.vlan_tci)
        skb.vlan_proto = skb.vlan_tci = 0


def skb_vlan_untag(skb: SkBuff) -> bool:
    """``skb_vlan_untag`` in RX (data after the L2 header): move the outermost in-payload
    tag to hw-accel, reorder the MACs, set the encapsulated protocol.  False: drop."""
    if skb.vlan_present:
        return True
    if len(skb.data) < VLAN_HLEN + 2:
        return False
    tci = int.from_bytes(skb.data[0:2], "big")
    skb.vlan_proto, skb.vlan_tci = skb.protocol, tci
    skb.protocol = eth_protocol(skb.data, 2)
    mac = skb.head[-ETH_HLEN:].rjust(ETH_HLEN, b"\0")
    tag = bytes(skb.data[:VLAN_HLEN])
    del skb.data[:VLAN_HLEN]
    if skb.ip_summed == CHECKSUM_COMPLETE:
        skb.csum = csum.sub32(skb.csum, csum.partial(tag))
    skb.head = skb.head[:-ETH_HLEN] + mac[:12] + skb.protocol.to_bytes(2, "big")
    skb.network_header = 0
    if skb.transport_header is not None:
        skb.transport_header -= VLAN_HLEN
    skb.mac_header = -ETH_HLEN
    skb.mac_len = ETH_HLEN
    return True


def skb_scrub_packet(skb: SkBuff, xnet: bool) -> None:
    """``skb_scrub_packet``: state that must not cross a device boundary (section 3.4)."""
    skb.pkt_type = PktType.HOST
    skb.ingress_ifindex = 0
    skb.reset_rare("tunnel", "realm")               # None, 0
    if xnet:
        skb.reset_rare("mark")
        if skb.tstamp_type == 0:
            skb.reset_rare("tstamp")


def skb_checksum_help(skb: SkBuff) -> None:
    """``skb_checksum_help``: finish a CHECKSUM_PARTIAL L4 checksum in software."""
    if skb.ip_summed != CHECKSUM_PARTIAL or skb.transport_header is None:
        return
    start = skb.transport_header
    at = start + skb.csum_offset
    value = csum.fold(csum.partial(skb.data[start:])) or 0xFFFF
    skb.data[at:at + 2] = value.to_bytes(2, "little")
    skb.ip_summed = CHECKSUM_NONE


def skb_postpull_rcsum(skb: SkBuff, data: bytes, offset: int) -> None:
    """``skb_postpull_rcsum``: take bytes removed at ``offset`` out of CHECKSUM_COMPLETE."""
    if skb.ip_summed == CHECKSUM_COMPLETE:
        skb.csum = csum.add32(skb.csum, csum.shift(~csum.partial(data) & 0xFFFF_FFFF, offset))


def skb_postpush_rcsum(skb: SkBuff, data: bytes, offset: int) -> None:
    """``skb_postpush_rcsum``: add bytes inserted at ``offset`` to CHECKSUM_COMPLETE."""
    if skb.ip_summed == CHECKSUM_COMPLETE:
        skb.csum = csum.add32(skb.csum, csum.shift(csum.partial(data), offset))


def _vlan_pop_payload(skb: SkBuff) -> int:
    """``__skb_vlan_pop`` with data at the mac header: remove the in-payload tag after the
    MACs, return its TCI."""
    tci = int.from_bytes(skb.data[14:16], "big")
    tag = bytes(skb.data[12:16])
    del skb.data[12:16]
    if skb.network_header > 12:
        skb.network_header = max(skb.network_header - VLAN_HLEN, 12)
    if skb.transport_header is not None and skb.transport_header > 12:
        skb.transport_header = max(skb.transport_header - VLAN_HLEN, 12)
    skb_postpull_rcsum(skb, tag, 12)
    skb.protocol = eth_protocol(skb.data)
    skb.mac_len = max(skb.mac_len - VLAN_HLEN, 0)
    skb.network_header = max(skb.network_header, ETH_HLEN)
    return tci


def skb_vlan_push(skb: SkBuff, proto: int, tci: int) -> int:
    """``skb_vlan_push`` (data at the mac header; section 6.2): an existing hw-accel tag
    moves into the payload (the network header keeps its offset), the new one goes to
    hw-accel.  Used by the BPF helper and act_vlan alike."""
    if skb.vlan_present:
        if skb.len < 12:
            return -22                  # -EINVAL
        tag = skb.vlan_proto.to_bytes(2, "big") + skb.vlan_tci.to_bytes(2, "big")
        skb.data[12:12] = tag
        if skb.transport_header is not None and skb.transport_header >= 12:
            skb.transport_header += VLAN_HLEN
        skb.protocol = skb.vlan_proto
        skb.mac_len += VLAN_HLEN
        skb_postpush_rcsum(skb, tag, 12)
    skb.vlan_proto, skb.vlan_tci = proto, tci & 0xFFFF
    return 0


def skb_vlan_pop(skb: SkBuff) -> int:
    """``skb_vlan_pop``: drop the outer tag, then pull the next in-payload tag to hw-accel."""
    if skb.vlan_present:
        skb.vlan_proto = skb.vlan_tci = 0
    elif not is_vlan_proto(skb.protocol):
        return 0
    elif skb.len < ETH_HLEN + VLAN_HLEN:
        return -12                      # -ENOMEM
    else:
        _vlan_pop_payload(skb)
    if not is_vlan_proto(skb.protocol):
        return 0
    if skb.len < ETH_HLEN + VLAN_HLEN:
        return -12
    proto = skb.protocol
    skb.vlan_tci = _vlan_pop_payload(skb)
    skb.vlan_proto = proto
    return 0


def skb_protocol(skb: SkBuff) -> int:
    """``skb_protocol(skb, false)``: the hw-accel tag's protocol when one is present."""
    return skb.vlan_proto if skb.vlan_proto or skb.vlan_tci else skb.protocol
