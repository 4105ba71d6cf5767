"""``act_vlan`` (``net/sched/act_vlan.c``): push, pop or modify a VLAN tag.

The action works on data at the mac header (it pushes ``mac_len`` at ingress and pulls it
again), with the kernel's ``skb_vlan_push``/``skb_vlan_pop`` rules (section 6.2); a
failure drops the packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tcemu.act.base import Action, TcExec
from tcemu.qdisc.base import TC_ACT_SHOT, TcfResult
from tcemu.skb import ETH_HLEN, is_vlan_proto, skb_vlan_pop, skb_vlan_push

if TYPE_CHECKING:
    from tcemu.skb import SkBuff

__all__ = ["VlanAction"]


@dataclass
class VlanAction(Action):
    op: str = "push"            # push, pop, modify
    vlan_id: int = 0
    protocol: int = 0x8100
    priority: int | None = None

    kind: ClassVar[str] = "vlan"

    def act(self, ex: TcExec, skb: SkBuff, res: TcfResult) -> int:
        ingress = skb.tc_at_ingress
        if ingress:
            skb.push(skb.mac_len)
        rc = self._edit(skb)
        if ingress:
            skb.pull(skb.mac_len)
        return TC_ACT_SHOT if rc else self.action

    def _edit(self, skb: SkBuff) -> int:
        if self.op == "pop":
            return skb_vlan_pop(skb)
        if self.op == "push":
            return skb_vlan_push(skb, self.protocol, self.vlan_id | ((self.priority or 0) << 13))
        if skb.vlan_present:
            tci = skb.vlan_tci
        elif is_vlan_proto(skb.protocol) and skb.len >= ETH_HLEN + 4:
            from tcemu.skb import _vlan_pop_payload

            tci = _vlan_pop_payload(skb)
        else:
            return 0
        tci = (tci & ~0xFFF) | self.vlan_id
        if self.priority is not None:
            tci = (tci & ~0xE000) | (self.priority << 13)
        skb.vlan_proto, skb.vlan_tci = self.protocol, tci
        return 0

    def describe(self) -> str:
        return f"vlan {self.op} id {self.vlan_id}" if self.op != "pop" else "vlan pop"
