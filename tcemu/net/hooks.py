"""The tc hooks of the receive and transmit paths (``sch_handle_ingress``,
``sch_handle_egress``, ``tcx_run``, ``tc_run`` in ``net/core/dev.c``; kernel-semantics.md
sections 2.4 and 2.5).

tcx programs run first (at ingress with ``mac_len`` pushed once for the whole list); only
TCX_NEXT (-1) continues, 0 is PASS (``tc_index = tc_classid``), 2 DROP, 7 REDIRECT, every
other value NEXT.  Then the clsact/ingress block classifies; OK and RECLASSIFY set
``tc_index = TC_H_MIN(res.classid)``.  The verdict: SHOT drops, STOLEN/QUEUED/TRAP consume,
REDIRECT runs ``skb_do_redirect`` (at ingress with ``mac_len`` pushed; a peer redirect
restarts the receive path on the peer), anything else continues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcemu.act.base import TC_ACT_CONSUMED
from tcemu.qdisc.base import (
    TC_ACT_OK,
    TC_ACT_QUEUED,
    TC_ACT_RECLASSIFY,
    TC_ACT_REDIRECT,
    TC_ACT_SHOT,
    TC_ACT_STOLEN,
    TC_ACT_TRAP,
    TC_ACT_UNSPEC,
    TcfResult,
)
from tcemu.qdisc.clsact import Clsact
from tcemu.trace import verdict_name

if TYPE_CHECKING:
    from tcemu.cls.chain import Block
    from tcemu.net.stack import Stack
    from tcemu.netdev import NetDev
    from tcemu.skb import SkBuff

__all__ = ["EAGAIN", "INGRESS_ENDS", "clsact_block", "ingress_verdict", "tc_egress", "tc_ingress"]

EAGAIN = 11
TCX_NEXT, TCX_PASS, TCX_DROP, TCX_REDIRECT = -1, 0, 2, 7
_CONSUME = (TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_TRAP)
_CONSUMED = frozenset((*_CONSUME, TC_ACT_CONSUMED))
# the verdicts after which sch_handle_ingress does not hand the packet on
INGRESS_ENDS = frozenset((TC_ACT_REDIRECT, TC_ACT_SHOT, *_CONSUMED))
# (direction, owner, verdict) -> the hook's one-line description (Stack.hook_detail): the
# same few strings are made for every packet, so they are made once.
_DETAILS: dict[tuple[str, str, int], str] = {}
_DETAILS_MAX = 4096


def clsact_block(dev: NetDev, direction: str) -> Block | None:
    """The filter block of ``dev``'s clsact (or ingress) qdisc for ``direction``."""
    clsact = dev.clsact
    if clsact is None:
        return None
    return clsact.block(direction) if isinstance(clsact, Clsact) else None


def hook_detail(direction: str, owner: str, verdict: int) -> str:
    """``tc DIRECTION (OWNER) VERDICT_NAME``, what captures and the trace say of a hook."""
    key = (direction, owner, verdict)
    detail = _DETAILS.get(key)
    if detail is None:
        by = f" ({owner})" if owner else ""
        detail = f"tc {direction}{by} {verdict_name(verdict)}"
        if len(_DETAILS) >= _DETAILS_MAX:
            _DETAILS.clear()
        _DETAILS[key] = detail
    return detail


def tcx_run(st: Stack, dev: NetDev, skb: SkBuff, ingress: bool) -> int:
    """``tcx_run`` + ``tcx_action_code``."""
    progs = dev.tcx["ingress" if ingress else "egress"]
    ret = TCX_NEXT
    if ingress:
        skb.push(skb.mac_len)
    for prog in progs:
        ret = st.run_program(prog, skb, "tcx")
        if ret != TCX_NEXT:
            break
    if ingress:
        skb.pull(skb.mac_len)
    if ret == TCX_PASS:
        skb.tc_index = skb.tc_classid & 0xFFFF
        return ret
    return ret if ret in (TCX_DROP, TCX_REDIRECT) else TCX_NEXT


def run_hook(st: Stack, dev: NetDev, skb: SkBuff, direction: str,
             block: Block | None = None) -> int:
    """tcx, then ``tc_run``: the hook's verdict.  ``block``: the clsact block of this
    direction when the caller has looked it up already."""
    verdict = TC_ACT_UNSPEC
    st.last_owner = ""
    if dev.tcx[direction]:
        verdict = tcx_run(st, dev, skb, direction == "ingress")
    if block is None:
        block = clsact_block(dev, direction)
    if verdict == TC_ACT_UNSPEC and block is not None:
        res = TcfResult()
        verdict = block.classify(skb, res)
        if verdict in (TC_ACT_OK, TC_ACT_RECLASSIFY):
            skb.tc_index = res.classid & 0xFFFF
    owner = st.last_owner
    if st.trace.enabled:
        by = f" ({owner})" if owner else ""
        st.event(skb, dev, "verdict", f"tc {direction}{by}", verdict)
    st.hook_args = (direction, owner, verdict)      # Stack.hook_detail, made when read
    for observe in st.hook_observers:
        observe(dev, skb, direction, verdict)
    return verdict


def tc_ingress(st: Stack, dev: NetDev, skb: SkBuff) -> tuple[str, int | None]:
    """``sch_handle_ingress``: ("continue" | "done" | "another", verdict or None)."""
    block = clsact_block(dev, "ingress")
    if block is None and not dev.tcx["ingress"]:
        return "continue", None
    skb.wire_len = len(skb.data)
    skb.tc_at_ingress = True
    if st.trace.enabled:
        st.event(skb, dev, "tc", "ingress")
    return ingress_verdict(st, dev, skb, run_hook(st, dev, skb, "ingress", block))


def ingress_verdict(st: Stack, dev: NetDev, skb: SkBuff, verdict: int) -> tuple[str, int]:
    """``sch_handle_ingress`` after the hook ran: what its verdict does."""
    if verdict == TC_ACT_OK:
        return "continue", verdict
    if verdict == TC_ACT_REDIRECT:
        from tcemu.net.redirect import skb_do_redirect

        skb.push(skb.mac_len)
        if skb_do_redirect(st, skb) == -EAGAIN:
            skb.pull(skb.mac_len)
            return "another", verdict
        return "done", verdict
    if verdict == TC_ACT_SHOT:      # counted by the clsact qdisc, not the device
        st.event(skb, dev, "drop", "tc ingress TC_ACT_SHOT")
        return "done", verdict
    if verdict in _CONSUMED:
        st.event(skb, dev, "deliver", f"consumed by tc ingress ({verdict_name(verdict)})")
        return "done", verdict
    return "continue", verdict


def tc_egress(st: Stack, dev: NetDev, skb: SkBuff) -> tuple[bool, int, int | None]:
    """``sch_handle_egress``: (continue?, NET_XMIT_* when not, verdict or None)."""
    block = clsact_block(dev, "egress")
    if block is None and not dev.tcx["egress"]:
        return True, 0, None
    st.event(skb, dev, "tc", "egress")
    verdict = run_hook(st, dev, skb, "egress", block)
    if verdict == TC_ACT_REDIRECT:
        from tcemu.net.redirect import skb_do_redirect

        skb_do_redirect(st, skb)
        return False, 0, verdict
    if verdict == TC_ACT_SHOT:      # counted by the clsact qdisc, not the device
        st.event(skb, dev, "drop", "tc egress TC_ACT_SHOT")
        return False, 1, verdict
    if verdict in _CONSUMED:
        st.event(skb, dev, "xmit", f"consumed by tc egress ({verdict_name(verdict)})")
        return False, 0, verdict
    return True, 0, verdict
