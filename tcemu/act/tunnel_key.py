"""``act_tunnel_key`` (``net/sched/act_tunnel_key.c``): attach or remove TX tunnel
metadata for a collect_md tunnel device."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec
from tcemu.qdisc.base import TcfResult
from tcemu.skb import TunnelInfo

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["TunnelKey"]

TUNNEL_CSUM, TUNNEL_KEY, TUNNEL_DONT_FRAGMENT = 0x01, 0x04, 0x100


@dataclass
class TunnelKey(Action):
    op: str = "set"             # set, unset
    src_ip: str = "0.0.0.0"
    dst_ip: str = "0.0.0.0"
    key_id: int | None = None
    dst_port: int = 0
    tos: int = 0
    ttl: int = 0
    csum: bool = True
    nofrag: bool = False

    kind: ClassVar[str] = "tunnel_key"

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        if self.op == "unset":
            skb.tunnel = None
            return self.action
        src, dst = ipaddress.ip_address(self.src_ip), ipaddress.ip_address(self.dst_ip)
        flags = (TUNNEL_KEY if self.key_id is not None else 0) | \
            (TUNNEL_CSUM if self.csum else 0) | (TUNNEL_DONT_FRAGMENT if self.nofrag else 0)
        skb.tunnel = TunnelInfo(self.key_id or 0, src.packed, dst.packed, self.tos, self.ttl,
                                0, flags, dst.version == 6, tx=True, per_cpu=False,
                                tp_dst=self.dst_port)
        return self.action

    def describe(self) -> str:
        if self.op == "unset":
            return "tunnel_key unset"
        return f"tunnel_key set {self.src_ip}->{self.dst_ip} id {self.key_id}"
