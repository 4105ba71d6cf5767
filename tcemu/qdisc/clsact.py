"""The ``clsact`` and ``ingress`` qdiscs (``net/sched/sch_ingress.c``).

Neither queues anything: they only own filter blocks that the device's receive path
(``sch_handle_ingress``) and transmit path (``sch_handle_egress``) run.  ``ingress`` has
an ingress block only (parent ``ffff:``); ``clsact`` has both (``ffff:fff2`` ingress,
``ffff:fff3`` egress).  tcx programs (``BPF_TCX_INGRESS``/``EGRESS``) live on the device
and run before these blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcemu.cls.chain import Block
from tcemu.qdisc.base import TC_H_INGRESS

__all__ = ["Clsact"]


@dataclass
class Clsact:
    kind: str                   # "clsact" or "ingress"
    ingress: Block
    egress: Block | None = None
    handle: int = TC_H_INGRESS & 0xFFFF_0000
    parent: int = TC_H_INGRESS

    def block(self, direction: str) -> Block | None:
        return self.ingress if direction == "ingress" else self.egress
