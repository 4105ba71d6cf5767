"""Network namespaces (``struct net``): devices by name and ifindex, routes, neighbours.

ifindex allocation follows the kernel (``dev_index_reserve``): each namespace starts with
``lo`` = 1 and hands out increasing numbers, never reusing one (the cyclic allocator
continues after the last one given); a device moved in keeps its ifindex unless that
number is taken there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tcemu.bpf.env import DeviceInfo
from tcemu.errors import NetError
from tcemu.net.ipfrag import FragQueues
from tcemu.netdev import NetDev, Vxlan
from tcemu.route import Fib

__all__ = ["Netns"]


@dataclass
class Netns:
    name: str
    devices: dict[str, NetDev] = field(default_factory=dict)
    by_index: dict[int, NetDev] = field(default_factory=dict)
    next_ifindex: int = 1
    fib: Fib = field(default_factory=Fib)
    frags: FragQueues = field(default_factory=FragQueues)      # IPv4 reassembly queues
    _infos: dict[int, DeviceInfo] | None = None
    _vxlans: tuple[Vxlan, ...] | None = None

    def reserve_ifindex(self, wanted: int = 0) -> int:
        if wanted and wanted not in self.by_index:
            self.next_ifindex = max(self.next_ifindex, wanted + 1)
            return wanted
        while self.next_ifindex in self.by_index:
            self.next_ifindex += 1
        index = self.next_ifindex
        self.next_ifindex += 1
        return index

    def attach(self, dev: NetDev, wanted: int = 0) -> None:
        if dev.name in self.devices:
            raise NetError(f"RTNETLINK answers: File exists (device {dev.name!r} in netns "
                           f"{self.name!r})", errno=17)
        dev.ifindex = self.reserve_ifindex(wanted)
        dev.netns = self.name
        self.devices[dev.name] = dev
        self.by_index[dev.ifindex] = dev
        self._infos = self._vxlans = None

    def detach(self, dev: NetDev) -> None:
        self.devices.pop(dev.name, None)
        self.by_index.pop(dev.ifindex, None)
        self.fib.remove_dev(dev.ifindex)
        self._infos = self._vxlans = None

    def get(self, name: str) -> NetDev:
        dev = self.devices.get(name)
        if dev is None:
            raise NetError(f'Cannot find device "{name}" (netns {self.name!r})', errno=19)
        return dev

    def device_infos(self) -> dict[int, DeviceInfo]:
        """What ``bpf_check_mtu`` and friends read (``Env.devices``)."""
        if self._infos is None:
            self._infos = {d.ifindex: DeviceInfo(d.ifindex, d.name, d.mtu, d.hard_header_len,
                                                 d.address) for d in self.devices.values()}
        return self._infos

    def vxlans(self) -> tuple[Vxlan, ...]:
        """The VXLAN devices of this namespace (whose UDP sockets the receive path asks)."""
        if self._vxlans is None:
            self._vxlans = tuple(d for d in self.devices.values() if isinstance(d, Vxlan))
        return self._vxlans

    def changed(self) -> None:
        self._infos = self._vxlans = None
