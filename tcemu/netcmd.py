"""``ip`` and ``tc`` command lines applied to an emulated network.

:mod:`tcemu.cmd` turns a command line into a typed command (``LinkAdd``, ``FilterAdd``,
...); this module carries each one out with the keyword API of :class:`tcemu.net.Net`,
as iproute2 carries it out with netlink.  ``Net.ip("link add ...")`` and
``Net.tc("qdisc add ...")`` call :func:`run_command`.

Objects named by ``obj FILE`` are resolved against ``base_dir`` and loaded through an
:class:`ObjectCache`: once per path, so every filter and action made from one object
shares its maps, as programs loaded once and attached by fd do.  (iproute2 itself loads
an object again for every ``tc`` command unless its maps are pinned.)
"""

from __future__ import annotations

import ipaddress
import weakref
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from tcemu.cmd import CommandError, model, parse
from tcemu.errors import NetError

if TYPE_CHECKING:
    from tcemu.act.base import Action
    from tcemu.bpf.collection import Collection
    from tcemu.bpf.program import Program
    from tcemu.net import Net

__all__ = ["ObjectCache", "run_command", "verified"]

_INGRESS_PARENT = 0xFFFF_FFF2
_EGRESS_PARENT = 0xFFFF_FFF3
_ROOT = 0xFFFF_FFFF


_VERIFIED: weakref.WeakKeyDictionary[Program, bool] = weakref.WeakKeyDictionary()


def verified(program: Program) -> Program:
    """``program`` once tcemu's verifier accepted it, as ``tc`` loading an object runs
    the kernel's; a rejection is a :class:`NetError` (EACCES, as ``bpf(BPF_PROG_LOAD)``)
    naming the program and the verifier's error line.  Results are cached per program."""
    if program not in _VERIFIED:
        from tcemu.bpf.verifier import VerifierError, verify

        try:
            verify(program, log_level=0)
        except VerifierError as err:
            raise NetError(f"prog '{program.name}': the verifier rejected it: "
                           f"{err.first_error} (tcemu prog verify shows the log)",
                           errno=13) from err
        _VERIFIED[program] = True
    return program


@dataclass
class ObjectCache:
    """BPF objects loaded into one network, by resolved path."""

    base_dir: Path = field(default_factory=Path.cwd)
    loaded: dict[Path, Collection] = field(default_factory=dict)

    def collection(self, net: Net, path: str | Path) -> Collection:
        from tcemu.bpf.collection import load_object

        full = (self.base_dir / path).resolve()
        coll = self.loaded.get(full)
        if coll is None:
            if not full.is_file():
                raise NetError(f"No such file or directory: {path} (looked in {self.base_dir})",
                               errno=2)
            coll = load_object(full, net.env, object_id=full.name)
            key = net.maps.add(full.name, coll.maps)
            net.collections[key] = coll
            self.loaded[full] = coll
        return coll

    def program(self, net: Net, path: str | Path, section: str,
                name: str | None = None, *, verify: bool = True) -> Program:
        """The program of ``path`` in ``section`` (named ``name``), verified unless
        ``verify`` is False (the caller then verifies it and decides)."""
        coll = self.collection(net, path)
        found = [p for p in coll.programs.values()
                 if p.section == section and (name is None or p.name == name)]
        if not found:
            sections = ", ".join(sorted({p.section for p in coll.programs.values()}))
            what = f"program '{name}' in section '{section}'" if name else \
                f"section '{section}'"
            raise NetError(f"Program {what} not found in ELF file {Path(path).name} "
                           f"(sections: {sections})", errno=2)
        return verified(found[0]) if verify else found[0]


def run_command(net: Net, line: str, objects: ObjectCache, *, tool: str,
                netns: str | None = None) -> object:
    """Parse ``line`` (with or without the leading ``ip``/``tc``) and apply it."""
    words = line.split(None, 1)
    text = line if words[:1] == [tool] else f"{tool} {line}"
    try:
        command = parse(text, ns=netns)
    except CommandError as err:
        raise NetError(str(err), errno=22) from err
    return apply(net, command, objects)


def _ns(command: model.Command) -> str:
    return command.ns or "default"


def apply(net: Net, command: model.Command, objects: ObjectCache) -> object:
    """Carry out one parsed command."""
    ns = _ns(command)
    if isinstance(command, model.NetnsAdd):
        return net.netns(command.name)
    if isinstance(command, model.LinkAdd):
        return _link_add(net, command, ns)
    if isinstance(command, model.LinkSet):
        if command.name is not None:
            raise NetError("tcemu cannot rename devices (ip link set ... name)", errno=95)
        return net.link_set(command.dev, up=command.up, netns=command.netns,
                            mtu=command.mtu, address=command.address, at=ns)
    if isinstance(command, model.LinkDel):
        net.link_del(command.dev, netns=ns)
        return None
    if isinstance(command, model.AddrAdd):
        net.addr_add(command.dev, str(command.address), netns=ns)
        return None
    if isinstance(command, model.RouteAdd):
        dst = command.dst
        net.route_add("default" if dst.prefixlen == 0 else str(dst), dev=command.dev,
                      via=str(command.via) if command.via else None,
                      src=str(command.src) if command.src else None, netns=ns,
                      realm=command.realm or 0)
        return None
    if isinstance(command, model.NeighAdd):
        if command.lladdr is None:
            raise NetError("tcemu needs lladdr for a static neighbour", errno=22)
        net.neigh_add(command.dev, str(command.address), command.lladdr, netns=ns)
        return None
    if isinstance(command, model.QdiscAdd):
        return _qdisc_add(net, command, ns)
    if isinstance(command, model.ClassAdd):
        return _class_add(net, command, ns)
    if isinstance(command, model.FilterAdd):
        return _filter_add(net, command, ns, objects)
    raise NetError(f"tcemu does not carry out '{type(command).__name__}' commands yet",
                   errno=95)


def _link_add(net: Net, cmd: model.LinkAdd, ns: str) -> object:
    where = cmd.netns or ns
    info = cmd.info
    kwargs: dict[str, object] = {}
    if isinstance(info, model.VethInfo):
        peer = info.peer or model.VethPeer()
        kwargs.update(peer=peer.name or _next_veth_name(net, ns),
                      peer_netns=peer.netns or ns, peer_address=peer.address)
    elif isinstance(info, model.VlanInfo):
        if cmd.link is None:
            raise NetError('Error: "link" argument is required for vlan', errno=22)
        kwargs.update(link=cmd.link, vlan_id=info.id, protocol=info.protocol)
    elif isinstance(info, model.VxlanInfo):
        kwargs.update(vni=info.vni, external=info.external,
                      remote=str(info.remote) if info.remote else None,
                      local=str(info.local) if info.local else None,
                      dstport=info.dstport, ttl=info.ttl or 0, tos=info.tos or 0,
                      link=info.dev)
        if info.udpcsum is not None:
            kwargs["udpcsum"] = info.udpcsum
    dev = net.link_add(cmd.name, info.kind, netns=where, mtu=cmd.mtu, address=cmd.address,
                       **kwargs)  # type: ignore[arg-type]
    if cmd.up:
        net.link_set(cmd.name, up=True, at=where)
    return dev


def _next_veth_name(net: Net, ns: str) -> str:
    taken = set(net.ns(ns).devices)
    return next(f"veth{i}" for i in range(1 << 16) if f"veth{i}" not in taken)


def _qdisc_add(net: Net, cmd: model.QdiscAdd, ns: str) -> object:
    if cmd.mode != "add":
        raise NetError(f"tcemu supports 'tc qdisc add', not '{cmd.mode}'", errno=95)
    options = cmd.qdisc
    params = {f.name: getattr(options, f.name) for f in fields(options)
              if f.name != "kind" and getattr(options, f.name) is not None}
    if options.kind in ("clsact", "ingress"):
        return net.qdisc_add(cmd.dev, options.kind, netns=ns)
    return net.qdisc_add(cmd.dev, options.kind, parent=_handle_text(cmd.parent),
                         handle=cmd.handle, netns=ns, **params)


def _handle_text(handle: int) -> str:
    if handle == _ROOT:
        return "root"
    return f"{handle >> 16:x}:{handle & 0xFFFF:x}"


def _class_add(net: Net, cmd: model.ClassAdd, ns: str) -> object:
    dev = net.dev(cmd.dev, ns)
    qdisc = net._find_qdisc(dev, cmd.classid)   # the qdisc whose major the class has
    change = getattr(qdisc, "change_class", None)
    if change is None:
        raise NetError(f"Error: Qdisc {qdisc.kind} is classless.", errno=95)
    o = cmd.options
    return change(cmd.classid, parent=cmd.parent, rate=o.rate, ceil=o.ceil, burst=o.burst,
                  cburst=o.cburst, quantum=o.quantum or 0, prio=o.prio,
                  now=net.clock.now_ns())


def _filter_add(net: Net, cmd: model.FilterAdd, ns: str, objects: ObjectCache) -> object:
    parent = {_INGRESS_PARENT: "ingress", _EGRESS_PARENT: "egress"}.get(
        cmd.parent, _handle_text(cmd.parent))
    spec = cmd.filter
    actions = [_action(net, a, objects) for a in spec.actions]
    if isinstance(spec, model.MatchallFilter):
        return net.filter_add(cmd.dev, parent, "matchall", prio=cmd.prio,
                              protocol=cmd.protocol, handle=cmd.handle, chain=cmd.chain or 0,
                              classid=spec.classid, actions=actions, netns=ns)
    program = _program(net, spec.prog, objects, "classifier")
    label = f"{Path(spec.prog.path).name}:[{spec.prog.section}]" \
        if isinstance(spec.prog, model.ObjProg) else None
    return net.filter_add(cmd.dev, parent, "bpf", prio=cmd.prio, protocol=cmd.protocol,
                          handle=cmd.handle, chain=cmd.chain or 0, prog=program,
                          da=spec.direct_action, classid=spec.classid, actions=actions,
                          name=label, netns=ns)


def _program(net: Net, prog: model.BpfProg, objects: ObjectCache, default: str) -> Program:
    if isinstance(prog, model.ObjProg):
        return objects.program(net, prog.path, prog.section or default)
    raise NetError(f"tcemu loads bpf programs from objects ('obj FILE'), not '{prog.kind}'",
                   errno=95)


def _action(net: Net, spec: model.Action, objects: ObjectCache) -> Action:
    from tcemu.act.bpf import ActBpf
    from tcemu.act.gact import Gact
    from tcemu.act.mirred import Mirred
    from tcemu.act.skbedit import Skbedit
    from tcemu.act.tunnel_key import TunnelKey
    from tcemu.act.vlan import VlanAction

    if isinstance(spec, model.GactAction):
        return Gact(action=spec.control)
    if isinstance(spec, model.BpfAction):
        program = _program(net, spec.prog, objects, "action")
        return ActBpf(action=spec.control, program=program, name=program.name)
    if isinstance(spec, model.MirredAction):
        return Mirred(action=spec.control, dev=spec.dev, ingress=spec.direction == "ingress",
                      redirect=spec.op == "redirect")
    if isinstance(spec, model.VlanAction):
        vlan = VlanAction(action=spec.control, op=spec.op, vlan_id=spec.id or 0,
                          priority=spec.priority)
        if spec.protocol is not None:
            vlan.protocol = spec.protocol
        return vlan
    if isinstance(spec, model.TunnelKeyAction):
        return TunnelKey(action=spec.control, op=spec.op, src_ip=_ip(spec.src),
                         dst_ip=_ip(spec.dst), key_id=spec.key_id,
                         dst_port=spec.dst_port or 0, tos=spec.tos or 0, ttl=spec.ttl or 0,
                         csum=spec.csum)
    return Skbedit(action=spec.control, mark=spec.mark, mask=spec.mask or 0xFFFF_FFFF,
                   priority=spec.priority, queue_mapping=spec.queue_mapping, ptype=spec.ptype)


def _ip(value: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    return str(value) if value is not None else "0.0.0.0"
