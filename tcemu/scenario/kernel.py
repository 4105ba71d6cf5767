"""Running a scenario on this machine's kernel (``tcemu run --backend kernel``).

The same scenario file the emulator plays (:mod:`tcemu.scenario.runner`) is deployed with
:class:`tcemu.kernel.netns.KernelNet` into fresh network namespaces (one per scenario
namespace, ``default`` included), played with AF_PACKET, and checked by the same code
(:func:`tcemu.scenario.checks.evaluate`) on :class:`KernelObservations`.

Rules (docs/backends.md has the user's view):

* **Devices**: structured links and ``ip link add`` lines become veth/vxlan/vlan/dummy
  devices through rtnetlink (a VXLAN line's ttl, tos, [no]udpcsum and dev included);
  every device is brought up with ``IFF_NOARP`` so that the kernel never sends an ARP
  request of its own (the harness's determinism rule).  ``lo`` is down in every
  namespace but ``default``, as after ``ip netns add``.  ``ip link set DEV netns NS``
  moves a device between the scenario's namespaces.  Other ``ip`` lines run as
  ``ip -n NETNS ...``.
* **Programs**: every object is loaded once with libbpf (:func:`tcemu.kernel.libbpf.load_each`),
  each program judged by the kernel's verifier on its own; filters attach by fd, so the
  programs of one object share its maps, as in the emulator's ObjectCache.  ``tc filter
  ... bpf obj X sec S`` lines are parsed and attached by fd too; other lines (with actions,
  say) run as ``tc -n NETNS ...`` with every ``obj X sec S`` replaced by ``object-pinned``
  the once-loaded program, pinned on a private bpffs; so do structured filters with
  actions, a protocol, a chain or a classful parent.  Inline asm is loaded with
  BPF_PROG_LOAD (no map references).
* **Traffic**: ``send`` (direction out) transmits the frame out of the device (AF_PACKET:
  its tc egress hook runs); ``direction: in`` transmits it out of the device's veth *peer*,
  so that it arrives on the device from the wire, before its ingress hook; the peer's tx
  tap copy of such a frame is dropped from the observations and the peer's tx counters
  are not observable.  A device without a known peer, or whose peer has tc egress
  filters, cannot receive that way.  ``advance`` and ``gap`` do nothing: the
  kernel runs on the wall clock and tcemu never sleeps to imitate virtual time.  pcaps
  are replayed frame by frame the same way.  A ``task_classid`` sends from a thread moved
  into a net_cls cgroup with that class id, on a socket created there
  (:mod:`tcemu.kernel.netcls`: a private mount of the cgroup v1 net_cls hierarchy).
* **Observations**: every device's tap (AF_PACKET captures, ``lo`` included), map look-ups
  through the object's map fds, device statistics (netlink) and qdisc statistics
  (``tc -s``), the verifier's verdict from the kernel's own load.  Verdicts are not logged by
  the kernel: the clsact qdisc counts the packets its hooks ran on and the TC_ACT_SHOT
  drops (``tc -s qdisc show``), which answers ``SHOT`` and "not dropped" (for ``OK``)
  counts when only one hook of the device has filters.  Not observable (reported, never
  passed): virtual timestamps, per-packet verdicts, other verdicts, trace_printk (one
  trace buffer for the whole machine), the time-dependent statistics of shaping qdiscs
  (htb, tbf, netem: drops, overlimits, requeues, backlog; packets and bytes sent are
  compared once the traffic settled).

A scenario this kernel cannot run (not root, no bpf(), a missing device kind, qdisc or
action, no net_cls controller for a task class id, a feature this backend does not model) raises
:class:`KernelUnavailableError`; the CLI exits with :data:`EXIT_KERNEL_UNAVAILABLE`.
Mirrors nothing in the kernel: it drives ``net/core/rtnetlink.c``, ``net/sched/cls_api.c``,
``net/packet/af_packet.c`` and ``kernel/bpf/syscall.c`` from user space.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcemu.errors import KernelError, TcemuError
from tcemu.scenario import model as m
from tcemu.scenario.checks import (
    Frame,
    NotObservableError,
    ProgramVerdict,
    VerdictTotals,
    encode_bytes,
    evaluate,
)
from tcemu.scenario.kernel_observe import SHAPING_QDISCS, KernelObservations
from tcemu.scenario.kernel_require import (
    ACTION_PROBE_NS,
    EXIT_KERNEL_UNAVAILABLE,
    KernelUnavailableError,
    require,
    static_requirements,
)
from tcemu.scenario.packet import build_packet
from tcemu.scenario.runner import ProgramInfo, ScenarioResult, ScenarioRunError

__all__ = ["EXIT_KERNEL_UNAVAILABLE", "KernelObservations", "KernelRun",
           "KernelUnavailableError", "run_kernel"]


ETH_P_ALL = 0x0003
_AUTO_PRIO = 0xC000     # tcf_auto_prio: the first filter without a prio gets 49152


@dataclass
class KernelRun:
    """A scenario's run on the kernel: the report and what a comparison needs."""

    result: ScenarioResult
    frames: list[Frame] = field(default_factory=list)      # every tap, in tap order
    maps: dict[str, dict[bytes, bytes]] = field(default_factory=dict)  # "obj:map" -> items
    notes: list[str] = field(default_factory=list)
    # (netns, dev, hook) -> run/drop totals, or why they are not observable
    verdicts: dict[tuple[str, str, str], VerdictTotals | str] = field(default_factory=dict)
    shaping: list[str] = field(default_factory=list)   # "ns/dev kind" of shaping qdiscs


@contextmanager
def _unavailable_on_missing() -> Iterator[None]:
    try:
        yield
    except KernelError as err:
        if err.missing_feature:
            raise KernelUnavailableError(str(err),
                                         feature=err.missing_feature) from err
        raise


def run_kernel(scenario: m.Scenario, path: str | Path = "<scenario>", *,
               prefix: str = "tcemu-run-") -> KernelRun:
    """Deploy, play and check ``scenario`` on the running kernel, then tear down."""
    from tcemu.kernel.netns import KernelNet
    from tcemu.kernel.syscall import probe

    base = Path(path).parent if str(path) != "<scenario>" else Path.cwd()
    with _unavailable_on_missing():
        static_requirements(scenario)
        reason = probe()
        if reason is not None:
            raise KernelUnavailableError(f"this machine has no usable bpf(): {reason}",
                                         feature="bpf")
        KernelNet.reap_stale(prefix)
        with KernelNet(prefix=prefix) as kn:
            player = _KernelPlayer(scenario, kn, base, str(path))
            try:
                require(kn, scenario, player._ensure_ns)
                player.build()
                player.play()
                return player.finish()
            except ScenarioRunError as err:
                if err.path is not None or str(path) == "<scenario>":
                    raise
                raise ScenarioRunError(err.reason, where=err.where, path=str(path)) from err
            finally:
                player.close()


def _strip_ns(words: list[str]) -> tuple[str | None, list[str]]:
    """``ip -n X a b`` -> ("X", ["a", "b"]) (the tool word dropped)."""
    rest = words[1:]
    if len(rest) >= 2 and rest[0] in ("-n", "-netns", "--netns"):
        return rest[1], rest[2:]
    return None, rest


class _KernelPlayer:
    def __init__(self, scenario: m.Scenario, kn: Any, base: Path, path: str) -> None:
        from tcemu.kernel.libbpf import LibbpfObject

        self.s, self.kn, self.base = scenario, kn, base
        self.result = ScenarioResult(scenario.name, path)
        self.namespaces: list[str] = []
        self.peers: dict[tuple[str, str], tuple[str, str]] = {}
        self.addresses: dict[tuple[str, str], list[str]] = {}
        self.hooks: dict[tuple[str, str], set[str]] = {}
        self.qdisc_kinds: dict[tuple[str, str], set[str]] = {}
        self.prios: dict[tuple[str, str, str], int] = {}
        self.objects: dict[Path, LibbpfObject] = {}
        self.programs: dict[str, tuple[Path | None, int, ProgramVerdict]] = {}
        self.asm_fds: list[Any] = []
        self.notes: list[str] = []
        self.netcls: Any = None
        self.injected: dict[tuple[str, str], list[bytes]] = {}   # sent from a peer for "in"
        self.pin_dir: Path | None = None
        self._exit = ExitStack()

    def close(self) -> None:
        self._exit.close()
        if self.netcls is not None:
            self.netcls.close()
        for fd in self.asm_fds:
            fd.close()
        for obj in self.objects.values():
            obj.close()

    # --- build --------------------------------------------------------------------------------
    def _ensure_ns(self, name: str) -> str:
        if name not in self.namespaces:
            self.kn.netns(name)
            self.namespaces.append(name)
            if name != "default":
                # `ip netns add` leaves lo down, as the emulator's Net does; the harness
                # brings it up (only "default" starts with lo up, the host's namespace)
                self.kn.ip(name, "link", "set", "lo", "down")
        return name

    def _step(self, where: str, action: Any) -> None:
        try:
            action()
        except (KernelUnavailableError, ScenarioRunError):
            raise
        except KernelError as err:
            if err.missing_feature:
                raise
            raise ScenarioRunError(f"the kernel refused it: {err}", where=where) from err
        except TcemuError as err:
            raise ScenarioRunError(str(err), where=where) from err

    def build(self) -> None:
        for name in self.s.netns:
            self._ensure_ns(name)
        for i, link in enumerate(self.s.links):
            if isinstance(link, str):
                line = link if link.startswith("ip ") else f"ip {link}"
                self._step(f"links[{i}]", lambda ln=line: self._command(ln))
            else:
                self._step(f"links[{i}]", lambda li=link: self._link(li))
        for i, line in enumerate(self.s.setup):
            self._step(f"setup[{i}]", lambda ln=line: self._command(ln))
        for name, spec in self.s.programs.items():
            self._step(f"programs.{name}", lambda n=name, sp=spec: self._load(n, sp))
        for i, item in enumerate(self.s.tc):
            self._step(f"tc[{i}]", lambda it=item: self._tc(it))
        for i, entry in enumerate(self.s.maps):
            self._step(f"maps[{i}]", lambda e=entry: self._preload(e))

    def _up(self, ns: str, dev: str) -> None:
        self.kn.up(ns, dev, arp=False)

    def _link(self, link: m.LinkSpec, vxlan_options: dict[str, Any] | None = None) -> None:
        ns = self._ensure_ns(link.netns)
        if link.kind in ("veth", "eth"):
            assert link.peer is not None
            peer_ns = self._ensure_ns(link.peer_netns or link.netns)
            self.kn.veth(link.name, ns, link.peer, peer_ns, mac0=link.address,
                         mac1=link.peer_address, mtu=link.mtu)
            self.peers[(ns, link.name)] = (peer_ns, link.peer)
            self.peers[(peer_ns, link.peer)] = (ns, link.name)
        elif link.kind == "vxlan":
            from tcemu.netdev.vxlan import VXLAN_DEFAULT_PORT

            self.kn.vxlan(link.name, ns, external=link.external, vni=link.vni,
                          remote=link.remote, local=link.local,
                          dstport=link.dstport or VXLAN_DEFAULT_PORT, mac=link.address,
                          **(vxlan_options or {}))
        elif link.kind == "vlan":
            assert link.link is not None
            assert link.vlan_id is not None
            self.kn.vlan(link.name, ns, link=link.link, vid=link.vlan_id,
                         proto=0x88A8 if link.vlan_protocol == "802.1ad" else 0x8100)
        else:
            self.kn.link(ns, link.name, link.kind)
        if link.address is None:
            self.notes.append(f"{ns}/{link.name} has no configured MAC address: it is random "
                              "on both backends (give it 'address', or list Ether.src/"
                              "Ether.dst as nondeterministic)")
        if link.peer and link.peer_address is None:
            self.notes.append(f"{link.peer_netns or link.netns}/{link.peer} has no configured "
                              "MAC address: it is random on both backends")
        if link.up:
            self.kn.up(ns, link.name, arp=False, mtu=link.mtu)
            if link.peer:
                self._up(link.peer_netns or link.netns, link.peer)
        for cidr in link.addresses:
            self._addr(ns, link.name, cidr)

    def _addr(self, ns: str, dev: str, cidr: str) -> None:
        self.kn.addr(ns, dev, cidr)
        self.addresses.setdefault((ns, dev), []).append(cidr.partition("/")[0])

    def _command(self, line: str) -> None:
        from tcemu.cmd import CommandError, parse
        from tcemu.cmd.args import split_words

        words = split_words(line)
        if words[:1] not in (["ip"], ["tc"]):
            raise ScenarioRunError(f"commands start with 'ip' or 'tc', not {words[:1]}",
                                   where=line)
        try:
            cmd = parse(words)
        except CommandError as err:
            raise ScenarioRunError(str(err), where=line) from err
        ns = self._ensure_ns(cmd.ns or "default")
        if words[0] == "ip":
            self._ip(ns, cmd, words)
        else:
            self._tc_command(ns, cmd, words)

    def _ip(self, ns: str, cmd: Any, words: list[str]) -> None:
        from tcemu.cmd import model as cm

        if isinstance(cmd, cm.LinkAdd) and isinstance(cmd.info, cm.VethInfo | cm.VxlanInfo
                                                      | cm.VlanInfo | cm.DummyInfo):
            self._link_add(ns, cmd)
        elif isinstance(cmd, cm.AddrAdd):
            self._addr(ns, cmd.dev, str(cmd.address))
        elif isinstance(cmd, cm.NeighAdd) and cmd.lladdr is not None:
            self.kn.neigh(ns, cmd.dev, str(cmd.address), cmd.lladdr)
        elif isinstance(cmd, cm.LinkSet) and cmd.up and cmd.netns is None and cmd.name is None \
                and cmd.address is None:
            self.kn.up(ns, cmd.dev, arp=False, mtu=cmd.mtu)
        elif isinstance(cmd, cm.NetnsAdd):
            self._ensure_ns(cmd.name)
        elif isinstance(cmd, cm.LinkSet) and cmd.netns is not None and cmd.up is None \
                and cmd.name is None and cmd.address is None and cmd.mtu is None:
            self._move(ns, cmd.dev, self._ensure_ns(cmd.netns))
        else:
            if "netns" in words:
                raise KernelUnavailableError(f"'{' '.join(words)}': namespaces named inside "
                                             "an ip command are not translated by the "
                                             "kernel backend", feature="backend/ip-netns")
            self.kn.ip(ns, *_strip_ns(words)[1])

    def _move(self, ns: str, dev: str, to: str) -> None:
        """``ip link set DEV netns TO``, the scenario's namespace name made the kernel's.
        The device arrives down (dev_change_net_namespace closes it), its addresses gone."""
        self.kn.ip(ns, "link", "set", "dev", dev, "netns", self.kn.netns_name(to))
        self.addresses.pop((ns, dev), None)
        peer = self.peers.pop((ns, dev), None)
        if peer is not None:
            self.peers[(to, dev)] = peer
            self.peers[peer] = (to, dev)

    def _link_add(self, ns: str, cmd: Any) -> None:
        from tcemu.cmd import model as cm

        info = cmd.info
        spec: dict[str, Any] = {"name": cmd.name, "netns": ns, "address": cmd.address,
                                "mtu": cmd.mtu, "up": bool(cmd.up)}
        options: dict[str, Any] = {}
        if cmd.netns is not None:
            raise KernelUnavailableError("'ip link add ... netns NS': use a structured link "
                                         "with netns for the kernel backend",
                                         feature="backend/ip-netns")
        if isinstance(info, cm.VethInfo):
            peer = info.peer or cm.VethPeer()
            spec.update(kind="veth", peer=peer.name, peer_netns=peer.netns or ns,
                        peer_address=peer.address)
        elif isinstance(info, cm.VxlanInfo):
            spec.update(kind="vxlan", vni=info.vni, external=info.external,
                        remote=str(info.remote) if info.remote else None,
                        local=str(info.local) if info.local else None, dstport=info.dstport)
            # the options a structured link cannot say, as the line gave them
            options = {"ttl": info.ttl, "tos": info.tos, "dev": info.dev}
            if info.udpcsum is not None:
                options["udpcsum"] = info.udpcsum
        elif isinstance(info, cm.VlanInfo):
            spec.update(kind="vlan", link=cmd.link, vlan_id=info.id,
                        vlan_protocol="802.1ad" if info.protocol == 0x88A8 else "802.1Q")
        else:
            spec.update(kind="dummy")
        self._link(m.LinkSpec(**spec), options)

    def _tc_command(self, ns: str, cmd: Any, words: list[str]) -> None:
        from tcemu.cmd import model as cm

        if isinstance(cmd, cm.QdiscAdd):
            self.qdisc_kinds.setdefault((ns, cmd.dev), set()).add(cmd.qdisc.kind)
        if isinstance(cmd, cm.QdiscAdd) and cmd.qdisc.kind in ("clsact", "ingress") \
                and cmd.mode == "add":
            self.kn.qdisc(ns, cmd.dev, cmd.qdisc.kind)
            return
        if isinstance(cmd, cm.FilterAdd) and isinstance(cmd.filter, cm.BpfFilter) \
                and isinstance(cmd.filter.prog, cm.ObjProg) and not cmd.filter.actions \
                and cmd.protocol == ETH_P_ALL and cmd.parent in _HOOK_OF_PARENT \
                and cmd.mode == "add":
            obj = self._object(cmd.filter.prog.path)
            prog = obj.program(section=cmd.filter.prog.section)
            if not prog.accepted:
                raise ScenarioRunError(f"the kernel's verifier rejected {prog.name}: "
                                       f"{prog.error}", where=" ".join(words))
            self._attach(ns, cmd.dev, _HOOK_OF_PARENT[cmd.parent], prog.fd, prog.name,
                         da=cmd.filter.direct_action, prio=cmd.prio, handle=cmd.handle,
                         classid=cmd.filter.classid)
            return
        if isinstance(cmd, cm.FilterAdd) and cmd.parent in _HOOK_OF_PARENT:
            self._hook_used(ns, cmd.dev, _HOOK_OF_PARENT[cmd.parent])
        self.kn.tc(ns, *self._pinned_objects(_strip_ns(words)[1]))

    def _pinned_objects(self, args: list[str]) -> list[str]:
        """``obj X [sec S]`` in a tc line -> ``object-pinned P``: the program of the object
        loaded once (:meth:`_object`) is pinned on a private bpffs, so that a filter or an
        act_bpf action tc sets up shares the object's maps like every other user of it.
        Other file names (``bytecode-file``) are made relative to the scenario file."""
        out: list[str] = []
        n = 0
        while n < len(args):
            word = args[n]
            if word in ("obj", "object-file") and n + 1 < len(args):
                section = "action" if "action" in out else "classifier"   # tc's defaults
                skip = 2
                if args[n + 2:n + 3] in (["sec"], ["section"]) and n + 3 < len(args):
                    section, skip = args[n + 3], 4
                out += ["object-pinned", str(self._pin(args[n + 1], section))]
                n += skip
                continue
            if n > 0 and args[n - 1] == "bytecode-file":
                word = str((self.base / word).resolve())
            out.append(word)
            n += 1
        return out

    def _pin(self, rel: str, section: str) -> Path:
        prog = self._object(rel).program(section=section)
        if not prog.accepted:
            raise ScenarioRunError(f"the kernel's verifier rejected {prog.name}: "
                                   f"{prog.error}", where=f"{rel} sec {section}")
        return self._pin_fd(prog.fd)

    def _pin_fd(self, fd: int) -> Path:
        """Pin a loaded program on the run's private bpffs (once) for ``object-pinned``."""
        from tcemu.kernel.objinfo import obj_pin, private_bpffs

        if self.pin_dir is None:
            self.pin_dir = self._exit.enter_context(private_bpffs())
        path = self.pin_dir / f"p{fd}"
        if not path.exists():
            obj_pin(fd, path)
        return path

    def _attach(self, ns: str, dev: str, hook: str, fd: int, name: str, *, da: bool,
                prio: int, handle: int | None, classid: int | None) -> None:
        key = (ns, dev, hook)
        if not prio:
            prio = self.prios.get(key, _AUTO_PRIO + 1) - 1
            self.prios[key] = prio
        self.kn.bpf_filter(ns, dev, hook, prog_fd=fd, name=name, da=da, prio=prio,
                           handle=handle or 1, classid=classid)
        self._hook_used(ns, dev, hook)

    def _hook_used(self, ns: str, dev: str, hook: str) -> None:
        """Note that ``hook`` of ``dev`` has filters.  The classic ingress qdisc has one
        block, which a filter given for egress reaches too (its ``find`` takes any minor):
        such a filter runs at ingress."""
        kinds = self.qdisc_kinds.get((ns, dev), set())
        if hook == "egress" and "ingress" in kinds and "clsact" not in kinds:
            hook = "ingress"
        self.hooks.setdefault((ns, dev), set()).add(hook)

    def _object(self, rel: str) -> Any:
        from tcemu.kernel.libbpf import load_each

        path = (self.base / rel).resolve()
        if path not in self.objects:
            if not path.is_file():
                raise ScenarioRunError(f"no such object {rel} (looked in {self.base})",
                                       where="programs")
            self.objects[path] = load_each(path)
        return self.objects[path]

    def _load(self, name: str, spec: m.ProgramSpec) -> None:
        if spec.asm is not None:
            self._load_asm(name, spec)
            return
        assert spec.object is not None
        obj = self._object(spec.object)
        section = spec.section or ("action" if spec.prog_type == "sched_act" else "classifier")
        prog = obj.program(name=spec.name, section=section)
        verdict = ProgramVerdict(prog.accepted, prog.error, prog.log)
        self.programs[name] = (obj.path, prog.fd, verdict)
        self.result.programs[name] = ProgramInfo(name, None, prog.accepted, prog.log,
                                                 prog.error)

    def _load_asm(self, name: str, spec: m.ProgramSpec) -> None:
        from tcemu.bpf import assemble
        from tcemu.kernel.libbpf import error_lines
        from tcemu.kernel.syscall import prog_load

        assert spec.asm is not None
        program = assemble(spec.asm, name=name)
        if any(insn.code == 0x18 and insn.src != 0 for insn in program.insns):
            raise KernelUnavailableError(f"program {name}: inline asm referring to maps is "
                                         "not loaded by the kernel backend",
                                         feature="backend/asm-maps")
        prog_type = {"sched_cls": 3, "sched_act": 4}[spec.prog_type]
        try:
            fd = prog_load(program.to_bytes(), prog_type=prog_type, prog_name=name[:15])
        except KernelError as err:
            log = err.log or ""
            verdict = ProgramVerdict(False, error_lines(log) or str(err), log)
            self.programs[name] = (None, -1, verdict)
            self.result.programs[name] = ProgramInfo(name, None, False, log, verdict.error)
            return
        self.asm_fds.append(fd)
        self.programs[name] = (None, fd.fd, ProgramVerdict(True, "", fd.log))
        self.result.programs[name] = ProgramInfo(name, None, True, fd.log)

    def _tc(self, item: m.QdiscSpec | m.FilterSpec | str) -> None:
        if isinstance(item, str):
            self._command(item if item.startswith("tc ") else f"tc {item}")
            return
        ns = self._ensure_ns(item.netns)
        if isinstance(item, m.QdiscSpec):
            self.qdisc_kinds.setdefault((ns, item.dev), set()).add(item.qdisc)
            if item.qdisc in ("clsact", "ingress") and not item.params:
                self.kn.qdisc(ns, item.dev, item.qdisc)
                return
            words = ["qdisc", "add", "dev", item.dev]
            words += ["root"] if item.parent == "root" else ["parent", item.parent]
            words += ["handle", item.handle] if item.handle else []
            words.append(item.qdisc)
            for key, value in item.params.items():
                words += [key, *(str(v) for v in value)] if isinstance(value, list) \
                    else [key, str(value)]
            self.kn.tc(ns, *words)
            return
        parent = [item.hook] if item.hook in _HOOKS else ["parent", item.hook]
        if item.hook in _HOOKS:
            self._hook_used(ns, item.dev, item.hook)
        fd = -1
        if item.kind == "bpf":
            assert item.program is not None
            _, fd, verdict = self.programs[item.program]
            if not verdict.accepted:
                raise ScenarioRunError(f"the kernel's verifier rejected it: {verdict.error}",
                                       where=f"program {item.program}")
            if item.hook in _HOOKS and not item.actions and item.protocol == "all" \
                    and not item.chain:
                classid = None
                if item.classid:
                    major, _, minor = item.classid.partition(":")
                    classid = (int(major or "0", 16) << 16) | int(minor or "0", 16)
                self._attach(ns, item.dev, item.hook, fd, item.program, da=item.da,
                             prio=item.prio, handle=item.handle, classid=classid)
                return
        # Anything else as the tc line it stands for, the program pinned (object-pinned).
        words = ["filter", "add", "dev", item.dev, *parent, "protocol", item.protocol]
        words += ["prio", str(item.prio)] if item.prio else []
        words += ["handle", f"{item.handle:#x}"] if item.handle is not None else []
        words += ["chain", str(item.chain)] if item.chain else []
        if item.kind == "bpf":
            words += ["bpf", *(["da"] if item.da else []), "object-pinned",
                      str(self._pin_fd(fd))]
        else:
            words.append("matchall")
        words += ["classid", item.classid] if item.classid else []
        for action in item.actions:
            words += ["action", *action.split()]
        self.kn.tc(ns, *words)

    def _map_fd(self, name: str, program: str | None) -> tuple[int, int, int]:
        """(fd, key size, value size) of a map, named as in the scenario."""
        if program is not None:
            if program not in self.programs:
                raise ScenarioRunError(f"unknown program {program!r}", where="maps")
            path = self.programs[program][0]
            objects = [self.objects[path]] if path is not None else []
        else:
            objects = list(self.objects.values())
        found = [obj.maps[name] for obj in objects if name in obj.maps]
        if not found:
            known = ", ".join(sorted({n for o in objects for n in o.maps})) or "none"
            raise ScenarioRunError(f"no map named {name!r} (maps: {known})", where="maps")
        return found[0].fd, found[0].key_size, found[0].value_size

    def ifindex(self, ns: str | None, dev: str) -> int:
        return int(self.kn.ifindex(ns or "default", dev))

    def _preload(self, entry: m.MapEntry) -> None:
        from tcemu.kernel.syscall import map_update

        fd, key_size, value_size = self._map_fd(entry.map, entry.program)
        try:
            key = encode_bytes(entry.key, key_size, self.ifindex)
            value = encode_bytes(entry.value, value_size, self.ifindex)
        except ValueError as err:
            raise ScenarioRunError(str(err), where="maps") from err
        map_update(fd, key, value)

    # --- traffic ------------------------------------------------------------------------------
    def play(self) -> None:
        # lo too: the emulator's taps see it like any device
        devices = [(ns, dev) for ns in self.namespaces if ns != ACTION_PROBE_NS
                   for dev in ["lo", *self.kn.link_names(ns)]]
        self.kn.start_capture(devices)
        self.kn.clear_captures()
        for i, step in enumerate(self.s.traffic):
            where = f"traffic[{i}]"
            if isinstance(step, m.Advance):
                continue     # KERNEL-DIFF: no virtual clock on the kernel (module doc)
            if isinstance(step, m._Send):
                self._step(where, lambda st=step.send: self._send(st))
            else:
                self._step(where, lambda st=step.replay: self._replay(st))
        self.kn.settle(timeout=5.0, quiet=0.2)

    def _defaults(self, ns: str, dev: str) -> dict[str, str]:
        out = {"Ether.src": _mac_str(self.kn.mac(ns, dev))}
        peer = self.peers.get((ns, dev))
        if peer is not None:
            out["Ether.dst"] = _mac_str(self.kn.mac(*peer))
        for address in self.addresses.get((ns, dev), []):
            out.setdefault("IPv6.src" if ":" in address else "IP.src", address)
        return out

    def _transmit(self, ns: str, dev: str, direction: str, frame: bytes,
                  classid: int | None = None) -> None:
        if direction == "in":
            peer = self.peers.get((ns, dev))
            if peer is None:
                raise KernelUnavailableError(
                    f"a frame received on {ns}/{dev}: the kernel backend makes a frame "
                    "arrive by sending it from the device's veth peer, and it has none",
                    feature="backend/receive-without-peer")
            if "egress" in self.hooks.get(peer, set()):
                raise KernelUnavailableError(
                    f"a frame received on {ns}/{dev}: it would be sent from the veth peer "
                    f"{peer[0]}/{peer[1]}, whose tc egress filters would run on it too",
                    feature="backend/receive-through-filtered-peer")
            ns, dev = peer
            self.injected.setdefault(peer, []).append(frame)
        try:
            if classid is not None and direction == "out":
                from tcemu.kernel.netcls import NetCls

                if self.netcls is None:
                    self.netcls = NetCls()
                netcls = self.netcls
                self.kn.run_in(ns, lambda: netcls.send(dev, frame, classid))
            else:
                self.kn.inject(ns, dev, frame)
        except KernelError as err:
            # dev_queue_xmit's NET_XMIT_DROP (e.g. TC_ACT_SHOT at egress) reaches the
            # sender as ENOBUFS: the frame was dropped, which is an outcome, not an error.
            if err.errno != errno.ENOBUFS:
                raise
        self.result.packets.append(len(self.result.packets))

    def _send(self, send: m.SendTraffic) -> None:
        ns = self._ensure_ns(send.netns)
        frame = (bytes.fromhex(send.bytes.replace(" ", "")) if send.bytes is not None
                 else build_packet(send.packet or "", self._defaults(ns, send.dev)))
        if send.size is not None:
            frame = frame.ljust(send.size, b"\0")
        classid = None
        if send.task_classid:
            major, _, minor = send.task_classid.partition(":")
            classid = (int(major or "0", 16) << 16) | int(minor or "0", 16)
        for _ in range(send.repeat):
            self._transmit(ns, send.dev, send.direction, frame, classid)

    def _replay(self, replay: m.PcapTraffic) -> None:
        from tcemu.pcap import DEFAULT_REMOTE_MAC, read_packets, to_ethernet

        ns = self._ensure_ns(replay.netns)
        # cooked/raw captures become the Ethernet frames the device would receive, with
        # the device's and its peer's addresses, as on the emulator (runner._replay)
        local = self.kn.mac(ns, replay.dev)
        peer = self.peers.get((ns, replay.dev))
        remote = self.kn.mac(*peer) if peer is not None else DEFAULT_REMOTE_MAC
        for record in read_packets(self.base / replay.pcap):
            frame = to_ethernet(record, local_mac=local, remote_mac=remote)
            self._transmit(ns, replay.dev, replay.direction, frame)

    # --- results ------------------------------------------------------------------------------
    def finish(self) -> KernelRun:
        captures = self.kn.captures()
        frames = sorted((c for cs in captures.values() for c in cs), key=lambda c: c.order)
        run = KernelRun(self.result, notes=self.notes)
        run.frames = self._without_injection([Frame(c.netns, c.dev, c.direction, c.data,
                                                    None) for c in frames])
        obs = KernelObservations(self, run.frames)
        self.result.checks.extend(evaluate(self.s, obs))
        run.maps = self._dump_maps()
        run.shaping = sorted(f"{ns}/{dev} {kind}" for (ns, dev), kinds in
                             self.qdisc_kinds.items() for kind in kinds & SHAPING_QDISCS)
        for (ns, dev), hooks in self.hooks.items():
            for hook in sorted(hooks):
                try:
                    run.verdicts[(ns, dev, hook)] = obs.verdicts(ns, dev, hook)
                except NotObservableError as why:
                    run.verdicts[(ns, dev, hook)] = str(why)
        if not self.kn.order_exact:
            self.notes.append("some frames had no tap timestamp: the order across devices "
                              "is approximate")
        return run

    def _without_injection(self, frames: list[Frame]) -> list[Frame]:
        """Drop the peer's tx-tap copy of every frame sent from a peer to make it arrive
        on a device (``direction: in``): on the emulator the frame just arrives."""
        pending = {key: list(sent) for key, sent in self.injected.items()}
        out = []
        for frame in frames:
            sent = pending.get((frame.netns, frame.dev))
            if frame.direction == "out" and sent and frame.data in sent:
                sent.remove(frame.data)
                continue
            out.append(frame)
        return out

    def _dump_maps(self) -> dict[str, dict[bytes, bytes]]:
        from tcemu.kernel.objinfo import map_info, map_items

        out: dict[str, dict[bytes, bytes]] = {}
        for path, obj in self.objects.items():
            for name, info in obj.maps.items():
                if map_info(info.fd).map_type in _UNCOMPARABLE_MAP_TYPES:
                    continue
                out[f"{path.name}:{name}"] = map_items(info.fd)
        return out



_HOOK_OF_PARENT = {0xFFFFFFF2: "ingress", 0xFFFFFFF3: "egress"}
_HOOKS = ("ingress", "egress")
# PROG_ARRAY and the fd/id-valued maps hold kernel object ids: never comparable.
_UNCOMPARABLE_MAP_TYPES = frozenset({3, 12, 13, 17, 18, 15, 24})


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
