"""Shared topologies, frames and tiny programs of the datapath tests."""

from __future__ import annotations

import struct

from tcemu import csum
from tcemu.bpf import assemble
from tcemu.bpf.program import Program
from tcemu.net import Net

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A, IP_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])

# struct __sk_buff offsets (section 1)
LEN, PKT_TYPE, MARK, QUEUE_MAPPING, PROTOCOL, VLAN_PRESENT, VLAN_TCI = 0, 4, 8, 12, 16, 20, 24
PRIORITY, INGRESS_IFINDEX, IFINDEX, TC_INDEX, CB, TC_CLASSID = 32, 36, 40, 44, 48, 72
WIRE_LEN, TSTAMP = 160, 152


def udp_frame(dst: bytes = MAC_B, src: bytes = MAC_A, saddr: bytes = IP_A,
              daddr: bytes = IP_B, payload: bytes = b"hello", sport: int = 1234,
              dport: int = 5678, tos: int = 0) -> bytes:
    """Ethernet + IPv4 + UDP with correct checksums."""
    udp_len = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + udp_len, 1, 0, 64, 17, 0,
                               saddr, daddr))
    ip[10:12] = csum.fold(csum.partial(ip)).to_bytes(2, "little")
    udp = bytearray(struct.pack("!HHHH", sport, dport, udp_len, 0) + payload)
    pseudo = csum.partial(saddr + daddr + struct.pack("!BBH", 0, 17, udp_len))
    udp[6:8] = (csum.fold(csum.add32(pseudo, csum.partial(udp))) or 0xFFFF).to_bytes(2,
                                                                                    "little")
    return dst + src + b"\x08\x00" + bytes(ip) + bytes(udp)


def veth_net(*, same_netns: bool = False, seed: int = 0) -> Net:
    """a/veth0 <-> b/veth1 (or both in ``default``), up, MACs MAC_A/MAC_B, 10.0.0.1/2."""
    net = Net(seed=seed)
    na, nb = ("default", "default") if same_netns else (net.netns("a"), net.netns("b"))
    net.link_add("veth0", "veth", netns=na, peer="veth1", peer_netns=nb, address=MAC_A,
                 peer_address=MAC_B)
    net.link_set(f"{na}/veth0", up=True)
    net.link_set(f"{nb}/veth1", up=True)
    net.addr_add(f"{na}/veth0", "10.0.0.1/24")
    net.addr_add(f"{nb}/veth1", "10.0.0.2/24")
    return net


def prog(*lines: str, name: str = "t") -> Program:
    """A SCHED_CLS program from kernel-syntax lines (r6 = ctx is set first)."""
    return assemble("\n".join(["r6 = r1", *lines]), name=name)


def ret(value: int, name: str = "ret") -> Program:
    return prog(f"r0 = {value}", "exit", name=name)


def store_cb(slot: int, offset: int) -> list[str]:
    """cb[slot] = *(u32 *)(ctx + offset)."""
    return [f"r2 = *(u32 *)(r6 +{offset})", f"*(u32 *)(r6 +{CB + 4 * slot}) = r2"]


def cb(skb_cb: bytes | bytearray, slot: int) -> int:
    value: int = struct.unpack_from("<I", skb_cb, 4 * slot)[0]
    return value
