"""The network's :class:`~tcemu.bpf.env.Env`: the hooks through which helpers reach the
datapath (``bpf_clone_redirect``, ``bpf_fib_lookup``, ``bpf_get_cgroup_classid``).

The helpers look these methods up on ``vm.env``; a plain ``Env`` (``BPF_PROG_TEST_RUN``
without a network) lacks them and the helpers fall back to test_run behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcemu.bpf.env import DeviceInfo, Env
from tcemu.netdev import NetDev

if TYPE_CHECKING:
    from tcemu.bpf.vm import Vm
    from tcemu.net.stack import Stack
    from tcemu.skb import SkBuff

__all__ = ["NetEnv"]


@dataclass
class NetEnv(Env):
    stack: Stack | None = None
    in_datapath: int = 0          # > 0 while a tc hook runs a program (BH disabled)

    def _stack(self) -> Stack:
        assert self.stack is not None
        return self.stack

    def clone_redirect(self, vm: Vm, skb: SkBuff, ifindex: int, flags: int) -> int:
        return self._stack().clone_redirect(vm, skb, ifindex, flags)

    def fib_lookup(self, skb: SkBuff, params: bytearray, flags: int) -> int:
        return self._stack().fib_lookup(skb, params, flags)

    def set_redirect_nexthop(self, nexthop: bytes) -> None:
        """``bpf_redirect_info.nh`` of the last bpf_redirect* call (struct bpf_redir_neigh,
        empty when none was given)."""
        self._stack().redirect_nexthop = nexthop

    def device_infos(self, skb: object) -> dict[int, DeviceInfo]:
        """The devices of the namespace of ``skb``'s device; an skb outside the datapath
        (BPF_PROG_TEST_RUN runs on ``lo`` of the caller's namespace, the default one)
        sees the default namespace's."""
        stack = self._stack()
        dev = getattr(skb, "dev", None)
        ns = stack.namespaces[dev.netns] if isinstance(dev, NetDev) else stack.ns("default")
        return ns.device_infos()

    def cgroup_classid(self, skb: SkBuff) -> int:
        """Section 8: at a tc hook (BH disabled) the full socket's classid, else 0;
        outside the datapath (test_run) the calling task's."""
        if self.in_datapath:
            return skb.sk_classid if skb.has_sk else 0
        return self.task.classid
