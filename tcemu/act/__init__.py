"""tc actions (``net/sched/act_*.c``), keyed by their tc kind in :data:`ACT_KINDS`.

See :mod:`tcemu.act.base` for the action-list semantics (``tcf_action_exec``).
"""

from __future__ import annotations

from tcemu.act.base import (
    TC_ACT_CONSUMED,
    TC_ACT_GOTO_CHAIN,
    TC_ACT_JUMP,
    Action,
    TcExec,
    act_ext_cmp,
    tcf_action_exec,
)
from tcemu.act.bpf import ActBpf
from tcemu.act.gact import CONTROLS, Gact, parse_control
from tcemu.act.mirred import Mirred
from tcemu.act.skbedit import Skbedit
from tcemu.act.tunnel_key import TunnelKey
from tcemu.act.vlan import VlanAction

__all__ = ["ACT_KINDS", "CONTROLS", "TC_ACT_CONSUMED", "TC_ACT_GOTO_CHAIN", "TC_ACT_JUMP",
           "ActBpf", "Action", "Gact", "Mirred", "Skbedit", "TcExec", "TunnelKey",
           "VlanAction", "act_ext_cmp", "parse_control", "tcf_action_exec"]

ACT_KINDS: dict[str, type[Action]] = {
    "gact": Gact,
    "mirred": Mirred,
    "bpf": ActBpf,
    "vlan": VlanAction,
    "tunnel_key": TunnelKey,
    "skbedit": Skbedit,
}
