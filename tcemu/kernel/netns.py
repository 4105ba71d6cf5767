"""Real-kernel topologies: network namespaces, devices, tc, injection and capture.

This module owns :class:`KernelNet`, the harness that builds a topology on the running
kernel, runs frames through it and records the wire bytes on every device, so that tcemu's
emulated network (``tcemu/net.py``) can be compared with Linux.  It mirrors what ``ip
netns add`` (iproute2 ``ip/ipnetns.c``), ``ip link``/``addr``/``route``/``neigh`` and ``tc
qdisc``/``filter`` do, through rtnetlink with pyroute2 (``net/core/rtnetlink.c``,
``net/sched/cls_api.c``); ``tc`` itself is run only to load a filter from an object file.

::

    with KernelNet(prefix="tcemu-") as kn:
        kn.netns("a"); kn.netns("b")
        kn.veth("veth0", "a", "veth1", "b", mac0=MAC0, mac1=MAC1)
        kn.up("a", "veth0"); kn.up("b", "veth1")
        kn.clsact("a", "veth0")
        f = kn.bpf_filter("a", "veth0", "egress", obj="prog.bpf.o", sec="tc")  # tc loads it
        kn.start_capture()
        kn.inject("a", "veth0", frame)            # transmitted by veth0 (its egress hook runs)
        kn.settle(min_frames=2)
        caps = kn.captures()                      # {("a", "veth0"): [Captured(...)], ...}
        kn.map_dump(prog_id=f.prog_id, name="out")

**Names.**  Every method takes the *short* namespace name given to :meth:`KernelNet.netns`;
the kernel name is ``<prefix><pid>-<4 hex>-<short>`` (:meth:`KernelNet.netns_name`), visible
in ``ip netns list`` while the harness runs.  Devices keep the caller's names: they exist
only inside namespaces the harness created.

**Teardown.**  :meth:`KernelNet.close` (the context manager, a ``weakref.finalize`` that
also runs at interpreter exit, and an explicit call all end up there) closes capture and
injection sockets, netlink sockets and program fds, stops the namespace threads, and
unmounts and deletes every namespace, which destroys the devices in it (a veth pair with
it).  Every step runs even when an earlier one failed or was interrupted.  Nothing outside
the harness's namespaces is touched, except the one-time setup ``ip netns add`` also does
(``/run/netns`` made a shared mount point).  :meth:`KernelNet.reap_stale` removes namespaces
left by a process that was killed (``SIGKILL``) and could not tear down.

**Threads.**  Each namespace has a dedicated daemon thread that entered it (``unshare`` then
a bind mount, as ``ip netns add``; threads switch namespaces independently); sockets are
created there and used from the caller's thread, which never leaves its own namespace.
Use one KernelNet from one thread.

**Determinism.**  In each namespace ``net.ipv6.conf.{all,default}.disable_ipv6 = 1`` is set
before any device exists, so no IPv6 traffic (router solicitations, MLD, DAD) appears; ``lo``
is brought up.  ARP is the caller's choice: with static neighbours (:meth:`KernelNet.neigh`,
``nud permanent``) no request is ever sent, and ``up(..., arp=False)`` sets ``IFF_NOARP`` so
that a missing entry cannot make one either.  Other noise can be filtered with an explicit
rule: ``captures(ignore=ignore_ethertypes(0x0806))``.  veth devices get one TX and one RX
queue unless asked otherwise (the kernel default is one per CPU, which makes
``queue_mapping`` depend on the CPU).  A VXLAN device's outer UDP source port is a hash of
the flow (spec §7.3); ``srcport=(P, P + 1)`` pins it to P.  Outer IPv4 ids stay random.

**Capture.**  :meth:`KernelNet.start_capture` opens one AF_PACKET socket per device (every
device created so far; call it again after adding devices).  A device's list holds what
tcpdump on it shows: received frames before its ingress hook, transmitted ones after its
egress hook, hw-accel VLAN tags written back into the bytes (:mod:`tcemu.kernel.capture`).
Frames are only read by :meth:`KernelNet.settle` and :meth:`KernelNet.captures`: settle
polls until no frame came for ``quiet`` seconds (bounded by ``timeout``; ``min_frames``
makes it wait for the expected ones first).  ``Captured.order`` ranks frames of all devices
by tap time; it is exact per device and measured across devices (:attr:`order_exact`).

**Errors.**  Everything raises :class:`~tcemu.errors.KernelError`.  When the machine lacks
something, ``missing_feature`` says what: ``"root"``, ``"bpf"``, ``"netns"``,
``"link/<kind>"`` (``ip link add`` says "Operation not supported"), ``"qdisc/<kind>"``,
``"filter/<kind>"``, ``"tool/<name>"`` (``tc``, ``bpftool``), ``"python/pyroute2"``.
:meth:`KernelNet.require` probes kinds and qdiscs up front.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tcemu.errors import KernelError
from tcemu.kernel.capture import Captured, CaptureSet, open_capture
from tcemu.kernel.inject import open_injector, transmit
from tcemu.kernel.netns_thread import (
    NETNS_RUN_DIR,
    Namespace,
    NetnsThread,
    collect_failures,
    netlink_socket,
    quiet_sysctls,
    raise_first,
    remove_netns,
)
from tcemu.kernel.objinfo import (
    LoadedObject,
    MapInfo,
    load_object,
    map_items,
    open_map,
    prog_info,
    prog_maps,
)
from tcemu.kernel.syscall import ProgFd, map_update, probe

__all__ = ["BpfFilter", "KernelNet", "TcHook"]

TcHook = Literal["ingress", "egress"]
"""The clsact hook a filter is attached to."""

IFNAMSIZ = 16
ETH_P_ALL = 0x0003
NUD_PERMANENT = 0x80
IFF_UP = 0x1
IFF_NOARP = 0x80
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3
_PARENT = {"ingress": 0xFFFF0000 | TC_H_MIN_INGRESS, "egress": 0xFFFF0000 | TC_H_MIN_EGRESS}
# The least each shaping qdisc needs to be created by `tc qdisc add ... KIND` (probe only).
_PROBE_QDISC_OPTIONS: dict[str, tuple[str, ...]] = {
    "tbf": ("rate", "1mbit", "burst", "1600", "limit", "3000"),
    "netem": ("delay", "1ms"),
}


@dataclass(frozen=True)
class BpfFilter:
    """A cls_bpf filter the harness attached: where, and which program runs."""

    netns: str
    dev: str
    direction: TcHook
    prio: int
    handle: int
    prog_id: int
    prog_name: str


@dataclass
class _State:
    """Everything to release at teardown, kept apart from KernelNet for weakref.finalize."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    captures: CaptureSet = field(default_factory=CaptureSet)
    objects: list[LoadedObject] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        """Release everything; every step runs, the first failure is raised at the end."""
        if self.closed:
            return
        self.closed = True
        failures: list[BaseException] = []

        step = collect_failures(failures)
        step(self.captures.close)
        for obj in self.objects:
            step(obj.close)
        for ns in self.namespaces.values():
            ns.release(step)
        raise_first(failures)


def _pyroute2() -> tuple[Any, type[Exception]]:
    """(IPRoute, NetlinkError), or KernelError missing_feature="python/pyroute2"."""
    try:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
    except ImportError as err:
        raise KernelError("kernel backend: the Python package pyroute2 is not installed",
                          errno=errno.ENOENT, missing_feature="python/pyroute2") from err
    return IPRoute, NetlinkError


def _mac(text: str | bytes | None) -> str | None:
    """``02:00:..`` text from bytes or text (None stays None)."""
    if text is None or isinstance(text, str):
        return text
    return ":".join(f"{b:02x}" for b in text)


class KernelNet:
    """A topology on the running kernel: namespaces, devices, tc, capture (see module doc)."""

    def __init__(self, prefix: str = "tcemu-", *, queues: int | None = 1) -> None:
        if os.geteuid() != 0:
            raise KernelError("kernel backend: network namespaces need root",
                              errno=errno.EPERM, missing_feature="root")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", prefix):
            raise KernelError(f"kernel backend: bad prefix {prefix!r}", errno=errno.EINVAL)
        self.prefix = prefix
        self.tag = f"{prefix}{os.getpid()}-{secrets.token_hex(2)}"
        self.queues = queues
        self._iproute, self._netlink_error = _pyroute2()
        self._bpf_checked = False
        self._state = _State()
        self._finalizer = weakref.finalize(self, self._state.close)

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> KernelNet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Tear everything down (see the module docstring); a second call does nothing."""
        self._finalizer.detach()
        self._state.close()

    @classmethod
    def reap_stale(cls, prefix: str = "tcemu-") -> list[str]:
        """Remove namespaces ``<prefix><pid>-xxxx-*`` whose creating process is gone.

        The pid is looked up in this process's PID namespace: do not share a prefix with
        harnesses running in other containers.
        """
        pattern = re.compile(re.escape(prefix) + r"(\d+)-[0-9a-f]{4}-")
        removed = []
        for path in sorted(NETNS_RUN_DIR.glob(f"{prefix}*")):
            match = pattern.match(path.name)
            if match is None or _alive(int(match.group(1))):
                continue
            remove_netns(path)
            removed.append(path.name)
        return removed

    # --- namespaces --------------------------------------------------------------------------

    def netns_name(self, ns: str) -> str:
        """The kernel name (``ip netns list``) of namespace ``ns``."""
        return self._ns(ns).name

    def netns(self, ns: str) -> str:
        """Create namespace ``ns`` (IPv6 off, ``lo`` up); returns its kernel name."""
        if self._state.closed:
            raise KernelError("kernel backend: already torn down", errno=errno.EBADF)
        if ns in self._state.namespaces:
            raise KernelError(f"create netns {ns!r}: exists", errno=errno.EEXIST)
        if not re.fullmatch(r"[A-Za-z0-9_]{1,16}", ns):
            raise KernelError(f"create netns {ns!r}: use 1-16 letters, digits or _",
                              errno=errno.EINVAL)
        name = f"{self.tag}-{ns}"
        thread = NetnsThread.create(NETNS_RUN_DIR / name)
        entry = Namespace(short=ns, name=name, thread=thread)
        self._state.namespaces[ns] = entry
        thread.call(quiet_sysctls)
        entry.ipr = self._iproute(fileno=thread.call(netlink_socket))
        self._netlink("bring up lo", ns, lambda ipr: ipr.link("set", index=1, state="up"))
        return name

    def _ns(self, ns: str) -> Namespace:
        try:
            return self._state.namespaces[ns]
        except KeyError:
            raise KernelError(f"netns {ns!r}: not created by this harness",
                              errno=errno.ENOENT) from None

    def _netlink(self, action: str, ns: str, request: Callable[[Any], Any], *,
                 missing: dict[int, str] | None = None) -> Any:
        """Run a pyroute2 request in ``ns``; a NetlinkError becomes a KernelError.

        ``missing`` maps errnos that mean "this kernel lacks it" to a missing_feature.
        """
        entry = self._ns(ns)
        try:
            return request(entry.ipr)
        except self._netlink_error as err:
            code = int(getattr(err, "code", 0) or errno.EIO)
            feature = (missing or {}).get(code)
            reason = os.strerror(code)
            if feature is not None:
                reason += f": this kernel has no {feature}"
            raise KernelError(f"{action} in netns {ns!r}: {reason}", errno=code,
                              missing_feature=feature) from err

    def ifindex(self, ns: str, dev: str) -> int:
        """The ifindex of ``dev`` in ``ns``."""
        found = self._netlink(f"look up {dev!r}", ns, lambda ipr: ipr.link_lookup(ifname=dev))
        if not found:
            raise KernelError(f"look up {dev!r} in netns {ns!r}: no such device",
                              errno=errno.ENODEV)
        return int(found[0])

    def mac(self, ns: str, dev: str) -> bytes:
        """The MAC address of ``dev`` in ``ns``."""
        index = self.ifindex(ns, dev)
        links = self._netlink(f"read {dev!r}", ns, lambda ipr: ipr.get_links(index))
        return bytes.fromhex(str(links[0].get_attr("IFLA_ADDRESS")).replace(":", ""))

    # --- devices -------------------------------------------------------------------------------

    def _add_link(self, ns: str, name: str, kind: str, **attrs: Any) -> None:
        if not 0 < len(name) < IFNAMSIZ:
            raise KernelError(f"create link {name!r}: names are 1-15 bytes", errno=errno.EINVAL)
        self._netlink(
            f"create link {name!r} (kind {kind})", ns,
            lambda ipr: ipr.link("add", ifname=name, kind=kind, **attrs),
            missing={errno.EOPNOTSUPP: f"link/{kind}"},
        )
        self._ns(ns).devices.append(name)

    def _queue_attrs(self) -> dict[str, int]:
        if self.queues is None:
            return {}
        return {"num_tx_queues": self.queues, "num_rx_queues": self.queues}

    def veth(self, dev0: str, ns0: str, dev1: str, ns1: str, *,
             mac0: str | bytes | None = None, mac1: str | bytes | None = None,
             mtu: int | None = None) -> None:
        """A veth pair: ``dev0`` in ``ns0`` and its peer ``dev1`` in ``ns1``."""
        peer: dict[str, Any] = {"ifname": dev1, **self._queue_attrs()}
        attrs: dict[str, Any] = dict(self._queue_attrs())
        if mac1 is not None:
            peer["address"] = _mac(mac1)
        if mac0 is not None:
            attrs["address"] = _mac(mac0)
        if mtu is not None:
            attrs["mtu"] = peer["mtu"] = mtu
        fd = os.open(NETNS_RUN_DIR / self._ns(ns1).name, os.O_RDONLY)
        try:
            peer["net_ns_fd"] = fd
            self._add_link(ns0, dev0, "veth", peer=peer, **attrs)
        finally:
            os.close(fd)
        self._ns(ns1).devices.append(dev1)

    def vxlan(self, name: str, ns: str, *, external: bool = True, vni: int | None = None,
              remote: str | None = None, local: str | None = None, dstport: int = 4789,
              dev: str | None = None, mac: str | bytes | None = None,
              srcport: tuple[int, int] | None = None, udpcsum: bool = True,
              learning: bool = False, ttl: int | None = None,
              tos: int | None = None) -> None:
        """A VXLAN device; ``external`` is collect_md mode (``ip link ... external``).

        ``dev`` is the underlay device, ``srcport`` the UDP source port range (low, high):
        ``(P, P + 1)`` makes every outer source port P.  ``ttl``/``tos`` are the outer
        header's (``tos`` 1 is ``inherit``); None leaves the kernel's default (0).
        """
        attrs: dict[str, Any] = {"vxlan_port": dstport, "vxlan_learning": int(learning),
                                 "vxlan_udp_csum": int(udpcsum)}
        if ttl is not None:
            attrs["vxlan_ttl"] = ttl
        if tos is not None:
            attrs["vxlan_tos"] = tos
        if external:
            attrs["vxlan_collect_metadata"] = 1
        options = {"vxlan_id": vni, "vxlan_group": remote, "vxlan_local": local,
                   "address": _mac(mac)}
        attrs.update({key: value for key, value in options.items() if value is not None})
        if dev is not None:
            attrs["vxlan_link"] = self.ifindex(ns, dev)
        if srcport is not None:
            attrs["vxlan_port_range"] = {"low": srcport[0], "high": srcport[1]}
        self._add_link(ns, name, "vxlan", **attrs)

    def vlan(self, name: str, ns: str, *, link: str, vid: int, proto: int = 0x8100) -> None:
        """An 802.1Q (or 802.1ad, ``proto=0x88a8``) device on ``link`` (needs 8021q)."""
        protocol = {0x8100: "802.1q", 0x88A8: "802.1ad"}.get(proto)
        if protocol is None:
            raise KernelError(f"create link {name!r}: VLAN protocol {proto:#x}",
                              errno=errno.EINVAL)
        self._add_link(ns, name, "vlan", link=self.ifindex(ns, link), vlan_id=vid,
                       vlan_protocol=proto)

    def link(self, ns: str, name: str, kind: str) -> None:
        """A device of any ``kind`` with default options (``ip link add NAME type KIND``)."""
        self._add_link(ns, name, kind)

    def up(self, ns: str, dev: str, *, arp: bool = True, mtu: int | None = None) -> None:
        """Bring ``dev`` up; ``arp=False`` sets IFF_NOARP (no ARP request is ever sent)."""
        index = self.ifindex(ns, dev)
        attrs: dict[str, Any] = {"flags": IFF_UP | (0 if arp else IFF_NOARP),
                                 "change": IFF_UP | IFF_NOARP}
        if mtu is not None:
            attrs["mtu"] = mtu
        self._netlink(f"set {dev!r} up", ns, lambda ipr: ipr.link("set", index=index, **attrs))

    def addr(self, ns: str, dev: str, cidr: str) -> None:
        """Add address ``cidr`` (``10.0.0.1/24``) to ``dev``."""
        address, _, plen = cidr.partition("/")
        index = self.ifindex(ns, dev)
        self._netlink(f"add address {cidr} to {dev!r}", ns, lambda ipr: ipr.addr(
            "add", index=index, address=address, prefixlen=int(plen or 32)))

    def route(self, ns: str, dst: str, *, via: str | None = None,
              dev: str | None = None) -> None:
        """Add a route to ``dst`` (CIDR or ``default``) through ``via`` and/or ``dev``."""
        attrs: dict[str, Any] = {"dst": "0.0.0.0/0" if dst == "default" else dst}
        if via is not None:
            attrs["gateway"] = via
        if dev is not None:
            attrs["oif"] = self.ifindex(ns, dev)
        self._netlink(f"add route to {dst}", ns, lambda ipr: ipr.route("add", **attrs))

    def neigh(self, ns: str, dev: str, ip: str, mac: str | bytes) -> None:
        """A permanent neighbour entry: ``ip`` is at ``mac`` on ``dev``."""
        index = self.ifindex(ns, dev)
        self._netlink(f"add neighbour {ip} on {dev!r}", ns, lambda ipr: ipr.neigh(
            "add", dst=ip, lladdr=_mac(mac), ifindex=index, state=NUD_PERMANENT))

    def require(self, *, links: Iterable[str] = (), qdiscs: Iterable[str] = ()) -> None:
        """Probe device kinds and qdiscs in a scratch namespace; KernelError if one is missing.

        Each kind is created in a scratch namespace with the least it needs (``vlan`` on a
        veth with id 1, ``vxlan`` in external mode, others with default options); each
        qdisc on a veth pair of its own.  The scratch namespace is deleted afterwards.
        """
        probe_ns = next(f"probe{n}" for n in range(len(self._state.namespaces) + 1)
                        if f"probe{n}" not in self._state.namespaces)
        self.netns(probe_ns)
        failures: list[BaseException] = []
        try:
            self._probe(probe_ns, list(links), list(qdiscs))
        finally:
            self._state.namespaces.pop(probe_ns).release(collect_failures(failures))
        raise_first(failures)

    def _probe(self, ns: str, links: list[str], qdiscs: list[str]) -> None:
        self.veth("p0", ns, "p1", ns)
        for count, kind in enumerate(links):
            name = f"probe{count}"
            if kind == "vlan":
                self.vlan(name, ns, link="p0", vid=1)
            elif kind == "vxlan":
                self.vxlan(name, ns, external=True)
            elif kind != "veth":
                self.link(ns, name, kind)
        for count, kind in enumerate(qdiscs):
            self.veth(f"q{count}", ns, f"q{count}p", ns)
            if kind in ("clsact", "ingress"):
                self.qdisc(ns, f"q{count}", kind)
                continue
            # Root qdiscs through tc, with the options a kind cannot do without (pyroute2
            # has no defaults for tbf's rate, say): the probe asks about the kind only.
            try:
                self._tc(ns, "qdisc", "add", "dev", f"q{count}", "root", kind,
                         *_PROBE_QDISC_OPTIONS.get(kind, ()))
            except KernelError as err:
                if "qdisc kind is unknown" in (err.log or "") or \
                        "Unknown qdisc" in (err.log or ""):
                    raise KernelError(str(err), errno=errno.ENOENT,
                                      missing_feature=f"qdisc/{kind}") from err
                raise

    # --- tc --------------------------------------------------------------------------------------

    def qdisc(self, ns: str, dev: str, kind: str) -> None:
        """Add qdisc ``kind`` (``clsact``, ``ingress``, or a root qdisc) to ``dev``."""
        index = self.ifindex(ns, dev)
        self._netlink(f"add qdisc {kind} to {dev!r}", ns, lambda ipr: ipr.tc("add", kind, index),
                      missing={errno.ENOENT: f"qdisc/{kind}", errno.EOPNOTSUPP: f"qdisc/{kind}"})

    def clsact(self, ns: str, dev: str) -> None:
        """Add the clsact qdisc (ingress and egress hooks) to ``dev``."""
        self.qdisc(ns, dev, "clsact")

    def bpf_filter(self, ns: str, dev: str, direction: TcHook, *,
                   obj: str | Path | None = None, sec: str | None = None,
                   prog_fd: ProgFd | int | None = None, name: str | None = None,
                   da: bool = True, prio: int = 1, handle: int = 1,
                   classid: int | None = None) -> BpfFilter:
        """Attach a cls_bpf filter (protocol all) to the hook ``direction`` of ``dev``.

        Either ``obj`` (+ ``sec``): ``tc filter add ... bpf obj OBJ sec SEC`` loads it
        (iproute2 with libbpf), or ``prog_fd``: a loaded program attached by fd through
        netlink (``TCA_BPF_FD``), e.g. one of :meth:`load_object`.  ``da`` is direct-action
        mode; ``classid`` the filter's class id (``TC_H_MAKE`` value).  On a device with an
        ``ingress`` qdisc instead of clsact the kernel puts an "egress" filter on the one
        ingress block, as ``tc`` would: it runs at ingress.
        """
        if (obj is None) == (prog_fd is None):
            raise KernelError("add bpf filter: give exactly one of obj= and prog_fd=",
                              errno=errno.EINVAL)
        self._require_bpf()
        if prog_fd is not None:
            fd = prog_fd.fd if isinstance(prog_fd, ProgFd) else prog_fd
            info = prog_info(fd)
            self._attach_fd(ns, dev, direction, fd, name or info.name, da=da, prio=prio,
                            handle=handle, classid=classid)
            prog_id, prog_name = info.id, info.name
        else:
            assert obj is not None
            self._tc_obj_filter(ns, dev, direction, Path(obj), sec, da=da, prio=prio,
                                handle=handle, classid=classid)
            prog_id, prog_name = self._filter_prog(ns, dev, direction, prio, handle)
        return BpfFilter(netns=ns, dev=dev, direction=direction, prio=prio, handle=handle,
                         prog_id=prog_id, prog_name=prog_name)

    def _attach_fd(self, ns: str, dev: str, direction: TcHook, fd: int, name: str, *,
                   da: bool, prio: int, handle: int, classid: int | None) -> None:
        attrs: dict[str, Any] = {"fd": fd, "name": name, "direct_action": da, "prio": prio,
                                 "protocol": ETH_P_ALL, "parent": _PARENT[direction]}
        if classid is not None:
            attrs["classid"] = classid
        index = self.ifindex(ns, dev)
        self._netlink(f"add bpf filter to {dev!r} {direction}", ns,
                      lambda ipr: ipr.tc("add-filter", "bpf", index, handle, **attrs),
                      missing={errno.ENOENT: "filter/bpf", errno.EOPNOTSUPP: "filter/bpf"})

    def _tc(self, ns: str, *args: str) -> str:
        """Run ``tc -n NETNS ARGS``; stdout, or KernelError with tc's message."""
        tool = shutil.which("tc")
        if tool is None:
            raise KernelError("run tc: not installed (iproute2)", errno=errno.ENOENT,
                              missing_feature="tool/tc")
        res = subprocess.run([tool, "-n", self.netns_name(ns), *args], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            message = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"
            feature = "filter/bpf" if "Unknown filter" in res.stderr else None
            raise KernelError(f"tc {' '.join(args)} in netns {ns!r}: {message}",
                              errno=errno.EINVAL, log=res.stderr, missing_feature=feature)
        return res.stdout

    def tc(self, ns: str, *args: str) -> str:
        """``tc -n NETNS ARGS`` (a command line given as text); stdout, or KernelError."""
        return self._tc(ns, *args)

    def ip(self, ns: str, *args: str) -> str:
        """``ip -n NETNS ARGS``; stdout, or KernelError with ip's message.  Devices it
        creates are not captured by default: name them to :meth:`start_capture`."""
        tool = shutil.which("ip")
        if tool is None:
            raise KernelError("run ip: not installed (iproute2)", errno=errno.ENOENT,
                              missing_feature="tool/ip")
        res = subprocess.run([tool, "-n", self.netns_name(ns), *args], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            message = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"
            feature = None
            if "Unknown device type" in res.stderr or "Not supported" in res.stderr:
                kind = args[args.index("type") + 1] if "type" in args[:-1] else "?"
                feature = f"link/{kind}"
            raise KernelError(f"ip {' '.join(args)} in netns {ns!r}: {message}",
                              errno=errno.EINVAL, log=res.stderr, missing_feature=feature)
        return res.stdout

    def run_in(self, ns: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the thread that lives in ``ns`` (sockets it creates belong to
        ``ns``; e.g. to send as a task of a given cgroup) and return its result."""
        return self._ns(ns).thread.call(fn)

    def link_names(self, ns: str) -> list[str]:
        """Every device of ``ns`` but ``lo``, in ifindex order."""
        links = self._netlink("list links", ns, lambda ipr: ipr.get_links())
        names = [(int(link["index"]), str(link.get_attr("IFLA_IFNAME"))) for link in links]
        return [name for _, name in sorted(names) if name != "lo"]

    def _tc_obj_filter(self, ns: str, dev: str, direction: TcHook, obj: Path,
                       sec: str | None, *, da: bool, prio: int, handle: int,
                       classid: int | None) -> None:
        args = ["filter", "add", "dev", dev, direction, "protocol", "all", "prio", str(prio),
                "handle", f"{handle:#x}", "bpf"]
        if da:
            args.append("da")
        args += ["obj", str(obj.resolve())]
        if sec is not None:
            args += ["sec", sec]
        if classid is not None:
            args += ["classid", f"{classid >> 16:x}:{classid & 0xFFFF:x}"]
        self._tc(ns, *args)

    def _filter_prog(self, ns: str, dev: str, direction: TcHook, prio: int,
                     handle: int) -> tuple[int, str]:
        """(prog id, name) of the bpf filter at prio/handle, from ``tc -j filter show``."""
        shown = json.loads(self._tc(ns, "-j", "filter", "show", "dev", dev, direction) or "[]")
        for entry in shown:
            options = entry.get("options") or {}
            if entry.get("pref") == prio and options.get("handle") == f"{handle:#x}":
                return int(options["prog"]["id"]), str(options["prog"].get("name", ""))
        raise KernelError(f"find bpf filter prio {prio} handle {handle:#x} on {dev!r}",
                          errno=errno.ENOENT)

    def load_object(self, obj: str | Path) -> LoadedObject:
        """Load every program of ``obj`` (bpftool/libbpf); fds live until teardown."""
        self._require_bpf()
        loaded = load_object(obj)
        self._state.objects.append(loaded)
        return loaded

    def _require_bpf(self) -> None:
        """KernelError missing_feature="bpf" unless bpf() loads and runs a trivial program."""
        if self._bpf_checked:
            return
        reason = probe()
        if reason is not None:
            raise KernelError(f"kernel backend: bpf() is not usable: {reason}",
                              errno=errno.ENOSYS, missing_feature="bpf")
        self._bpf_checked = True

    # --- maps ------------------------------------------------------------------------------------

    def maps(self, prog_id: int) -> dict[str, MapInfo]:
        """The maps a loaded program uses, by (kernel, 15-byte) name."""
        return prog_maps(prog_id)

    def map_dump(self, *, prog_id: int | None = None, name: str | None = None,
                 map_id: int | None = None, pinned: str | Path | None = None
                 ) -> dict[bytes, bytes]:
        """Every ``key -> value`` of a map, found by pin, id, or program id and map name."""
        with open_map(prog_id=prog_id, name=name, map_id=map_id, pinned=pinned) as fd:
            return map_items(fd.fd)

    def map_update(self, key: bytes, value: bytes, *, prog_id: int | None = None,
                   name: str | None = None, map_id: int | None = None,
                   pinned: str | Path | None = None) -> None:
        """Store ``key -> value`` (e.g. preload a map before traffic)."""
        with open_map(prog_id=prog_id, name=name, map_id=map_id, pinned=pinned) as fd:
            map_update(fd.fd, key, value)

    # --- traffic ---------------------------------------------------------------------------------

    def start_capture(self, devices: Iterable[tuple[str, str]] | None = None) -> None:
        """Capture on ``devices`` ((ns, dev) pairs), by default every device created so far."""
        wanted = list(devices) if devices is not None else [
            (ns.short, dev) for ns in self._state.namespaces.values() for dev in ns.devices]
        for ns, dev in wanted:
            if (ns, dev) not in self._state.captures:
                sock = self._ns(ns).thread.call(functools.partial(open_capture, dev))
                self._state.captures.add(ns, dev, sock)

    def inject(self, ns: str, dev: str, frame: bytes) -> None:
        """Transmit ``frame`` out of ``dev`` (its tc egress hook runs, then its tap)."""
        entry = self._ns(ns)
        if entry.injector is None:
            entry.injector = entry.thread.call(open_injector)
        transmit(entry.injector, dev, frame)

    def settle(self, *, timeout: float = 5.0, quiet: float = 0.05, min_frames: int = 0) -> bool:
        """Collect frames until none came for ``quiet`` s and ``min_frames`` are in.

        Returns False if ``timeout`` s passed first.
        """
        return self._state.captures.settle(timeout=timeout, quiet=quiet, min_frames=min_frames)

    def captures(self, *, ignore: Callable[[Captured], bool] | None = None
                 ) -> dict[tuple[str, str], list[Captured]]:
        """Frames per (ns, dev), each list in tap order; ``ignore`` is an explicit noise rule."""
        self._state.captures.poll()
        return self._state.captures.frames(ignore=ignore)

    @property
    def order_exact(self) -> bool:
        """Whether every captured frame carries its tap time (``Captured.order`` measured)."""
        return self._state.captures.order_exact

    def clear_captures(self) -> None:
        """Forget every frame captured so far."""
        self._state.captures.clear()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
