"""The tc half of the network API: qdiscs, classes, filters, tcx (what ``tc qdisc``,
``tc class`` and ``tc filter`` commands map onto), and the objects loaded for filters."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tcemu.act.base import Action
from tcemu.cls.bpf import BpfFilter
from tcemu.cls.chain import Block, Filter, TcfProto
from tcemu.cls.matchall import MatchallFilter
from tcemu.errors import NetError
from tcemu.net.names import NetMaps, parent_name, parse_handle, parse_protocol
from tcemu.net.stack import Stack
from tcemu.netdev import NetDev
from tcemu.qdisc.base import Qdisc
from tcemu.qdisc.clsact import Clsact

if TYPE_CHECKING:
    from tcemu.bpf.collection import Collection
    from tcemu.bpf.program import Program
    from tcemu.bpf.vm import Tier
    from tcemu.clock import VirtualClock
    from tcemu.net.fastpath import IngressPlan

__all__ = ["TcNet"]


class TcNet(Stack):
    """Devices by name, and their tc state."""

    def __init__(self, seed: int = 0, *, tier: Tier = "interp",
                 clock: VirtualClock | None = None) -> None:
        super().__init__(seed, tier=tier, clock=clock)
        self.maps = NetMaps()
        self.collections: dict[str, Collection] = {}
        # (id(qdisc), parent handle) -> (qdisc, block); holding the qdisc keeps ids unique
        self._blocks: dict[tuple[int, int], tuple[Qdisc, Block]] = {}
        # bumped by every change of qdiscs, filters and tcx: receive plans are rebuilt
        self.tc_generation = 0
        self.ingress_plans: dict[NetDev, IngressPlan] = {}

    def dev(self, name: str, netns: str | None = None) -> NetDev:
        ns_name, sep, dev_name = name.rpartition("/")
        if sep and netns is None:
            netns = ns_name
            name = dev_name
        return self.ns(netns or "default").get(name)

    def __getitem__(self, name: str) -> NetDev:
        return self.dev(name)

    def _default_qdisc(self, dev: NetDev) -> None:
        from tcemu.qdisc import create_qdisc

        dev.qdisc = create_qdisc("pfifo_fast", 0, rng=self._qdisc_rng())

    def _qdisc_rng(self) -> random.Random:
        return random.Random(self.seed ^ 0x716463)

    # -- qdiscs and filters ----------------------------------------------------------
    def qdisc_add(self, dev: str, kind: str, *, parent: str | int = "root",
                  handle: str | int | None = None, netns: str | None = None,
                  **params: object) -> object:
        """``tc qdisc add dev DEV [parent P] [handle H] KIND [params]``."""
        self.tc_generation += 1
        d = self.dev(dev, netns)
        if kind in ("clsact", "ingress"):
            if d.clsact is not None:
                raise NetError("Error: Exclusivity flag on, cannot modify.", errno=17)
            d.clsact = Clsact(kind, Block(self, f"{d.qualified} ingress"),
                              Block(self, f"{d.qualified} egress") if kind == "clsact"
                              else None)
            return d.clsact
        from tcemu.qdisc import create_qdisc, link_tree

        h = parse_handle(handle) if handle is not None else 0
        p = parse_handle(parent_name(parent))
        if p == 0xFFFF_FFFF and h:
            # tc_modify_qdisc: the handle names the clsact/ingress qdisc, or a root qdisc
            # (not the default one, handle 0) would be replaced without NLM_F_REPLACE
            if h == 0xFFFF_0000 and d.clsact is not None:
                raise NetError("Error: Cannot move an existing qdisc to a different parent.",
                               errno=22)
            if d.qdisc is not None and d.qdisc.handle and d.qdisc.handle != h:
                raise NetError("Error: NLM_F_REPLACE needed to override.", errno=17)
        new = create_qdisc(kind, h, p, params, self._netem_rng(), now=self.clock.now_ns())
        if p == 0xFFFF_FFFF:
            d.qdisc = new
        else:
            parent_q = self._find_qdisc(d, p)
            graft = getattr(parent_q, "graft", None)
            if graft is None:
                raise NetError(f"Error: {parent_q.kind} is not classful.")
            graft(p, new)
        if d.qdisc is not None:
            link_tree(d.qdisc)
        return new

    def _netem_rng(self) -> random.Random:
        self._netem_count = getattr(self, "_netem_count", 0) + 1
        return random.Random((self.seed << 8) ^ self._netem_count)

    def _find_qdisc(self, dev: NetDev, classid: int) -> Qdisc:
        todo = [dev.qdisc] if dev.qdisc is not None else []
        while todo:
            q = todo.pop()
            if q.handle & 0xFFFF_0000 == classid & 0xFFFF_0000:
                return q
            children = getattr(q, "children", None)
            if children is not None:
                todo.extend(children())
        raise NetError("Error: Failed to find qdisc with specified handle.", errno=2)

    def _block(self, d: NetDev, parent_arg: str | int) -> tuple[Block, str]:
        parent = parent_name(parent_arg)
        if parent in ("ingress", "ffff:fff2", "ffff:", "ffff:0"):
            direction = "ingress"
        elif parent in ("egress", "ffff:fff3"):
            direction = "egress"
        else:
            return self._qdisc_block(d, parent), parent
        clsact = d.clsact
        block = clsact.block(direction) if isinstance(clsact, Clsact) else None
        if isinstance(clsact, Clsact) and clsact.kind == "ingress":
            block = clsact.ingress   # sch_ingress: one block for every minor
        if block is None:
            raise NetError("Error: Parent Qdisc doesn't exists.", errno=22)
        return block, direction

    def _qdisc_block(self, d: NetDev, parent: str) -> Block:
        """The filter block of a classful qdisc or of one of its classes
        (``tcf_block`` of the qdisc class ops: HTB keeps one per class)."""
        if parent == "root":
            if d.qdisc is None or getattr(d.qdisc, "bypass", False):
                raise NetError("Error: Parent Qdisc doesn't exists.", errno=22)
            handle = d.qdisc.handle
        else:
            handle = parse_handle(parent)
        qdisc = self._find_qdisc(d, handle)
        key = (id(qdisc), handle if handle & 0xFFFF else handle & 0xFFFF_0000)
        entry = self._blocks.get(key)
        block = entry[1] if entry is not None else None
        if block is None:
            block = Block(self, f"{d.qualified} {parent}")
            attach = getattr(qdisc, "attach_chain", None)
            if attach is not None:
                attach(key[1], block)
            elif handle & 0xFFFF:
                raise NetError(f"Error: {qdisc.kind} has no filters on classes.", errno=95)
            else:
                qdisc.classify = block
            self._blocks[key] = (qdisc, block)
        return block

    def class_add(self, dev: str, parent: str | int, classid: str | int, kind: str = "htb",
                  *, netns: str | None = None, **params: int) -> object:
        """``tc class add dev DEV parent P classid C htb rate R ...`` (rates in bytes/s)."""
        d = self.dev(dev, netns)
        cid = parse_handle(parent_name(classid))
        qdisc = self._find_qdisc(d, cid)
        change = getattr(qdisc, "change_class", None)
        if change is None or qdisc.kind != kind:
            raise NetError(f'Error: Qdisc "{qdisc.kind}" is classless or not {kind}.',
                           errno=95)
        result: object = change(cid, parent=parse_handle(parent_name(parent)),
                                now=self.clock.now_ns(), **params)
        return result

    def class_del(self, dev: str, classid: str | int, *, netns: str | None = None) -> None:
        d = self.dev(dev, netns)
        cid = parse_handle(parent_name(classid))
        qdisc = self._find_qdisc(d, cid)
        delete = getattr(qdisc, "delete_class", None)
        if delete is None:
            raise NetError("Error: Specified class not found.", errno=2)
        delete(cid, now=self.clock.now_ns())

    def filter_add(self, dev: str, parent: str | int, kind: str = "bpf", *,
                   prio: int | None = None, protocol: str | int = "all",
                   handle: int | None = None, chain: int = 0, obj: str | Path | None = None,
                   sec: str | None = None, prog: Program | None = None, da: bool = True,
                   classid: str | int | None = None, actions: Sequence[Action] = (),
                   pinned: str | None = None, name: str | None = None,
                   netns: str | None = None) -> Filter:
        """``tc filter add dev DEV PARENT [prio P] [protocol X] [handle H] [chain C] KIND``."""
        self.tc_generation += 1
        d = self.dev(dev, netns)
        block, _ = self._block(d, parent)
        c = block.chain(chain)
        assert c is not None
        proto = parse_protocol(protocol)
        prio = prio if prio else c.auto_prio()
        tp = c.find(prio)
        if tp is not None and (tp.kind != kind or tp.protocol != proto):
            raise NetError("Error: Filter kind and protocol must match existing filters "
                           "at this priority.", errno=22)
        cid = parse_handle(classid) if classid is not None else 0
        if kind == "bpf":
            if pinned is not None:
                prog = self._pinned(pinned)
            program, label = self._program(prog, obj, sec, name)
            taken = {f.handle for f in tp.filters} if tp is not None else set()
            h = handle or next(i for i in range(1, 1 << 31) if i not in taken)
            if h in taken:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            new: Filter = BpfFilter(program, h, da, cid, list(actions), label)
        elif kind == "matchall":
            if tp is not None and tp.filters:
                raise NetError("RTNETLINK answers: File exists", errno=17)
            new = MatchallFilter(handle or 1, cid, list(actions))
        else:
            raise NetError(f'Error: Unknown filter "{kind}", usage: ...', errno=2)
        if tp is None:
            tp = TcfProto(prio, proto, kind, chain)
            c.insert(tp)
        tp.filters.insert(0, new)
        return new

    def _program(self, prog: Program | None, obj: str | Path | None, sec: str | None,
                 name: str | None) -> tuple[Program, str]:
        if prog is not None:
            return prog, name or prog.name
        if obj is None:
            raise NetError("bpf filter needs obj=<object file> or prog=<Program>")
        from tcemu.bpf.collection import load_object

        path = Path(obj)
        coll = load_object(path, self.env, object_id=path.name)
        key = self.maps.add(path.name, coll.maps)
        self.collections[key] = coll
        wanted = sec or "classifier"
        found = [p for p in coll.programs.values() if p.section == wanted]
        if not found and sec is None and len(coll.programs) == 1:
            found = list(coll.programs.values())
        if not found:
            sections = ", ".join(sorted({p.section for p in coll.programs.values()}))
            raise NetError(f"Program section '{wanted}' not found in ELF file {path.name} "
                           f"(sections: {sections})", errno=2)
        from tcemu.netcmd import verified

        return verified(found[0]), name or f"{path.name}:[{found[0].section}]"

    def _pinned(self, path: str) -> Program:
        from tcemu.bpf.program import Program

        found = self.env.pins.get(path)
        if not isinstance(found, Program):
            raise NetError(f"bpf: no program pinned at {path}", errno=2)
        return found

    def qdisc_del(self, dev: str, kind: str | None = None, *, parent: str | int = "root",
                  netns: str | None = None) -> None:
        """``tc qdisc del dev DEV root|clsact|ingress``: the default qdisc comes back."""
        self.tc_generation += 1
        d = self.dev(dev, netns)
        parent = parent_name(parent)
        if kind in ("clsact", "ingress") or parent in ("ingress", "clsact", "ffff:"):
            if d.clsact is None:
                raise NetError("Error: Cannot delete qdisc with handle of zero.", errno=2)
            d.clsact = None
            return
        if d.qdisc is None or getattr(d.qdisc, "bypass", False):
            raise NetError("Error: Cannot delete qdisc with handle of zero.", errno=2)
        d.qdisc = None
        if not d.no_queue:
            self._default_qdisc(d)

    def filter_del(self, dev: str, parent: str | int, *, prio: int | None = None,
                   handle: int | None = None, chain: int = 0,
                   netns: str | None = None) -> None:
        """``tc filter del dev DEV PARENT [prio P [handle H]] [chain C]``."""
        self.tc_generation += 1
        d = self.dev(dev, netns)
        block, _ = self._block(d, parent)
        c = block.chain(chain, create=False)
        if c is None:
            raise NetError("Error: Cannot find specified filter chain.", errno=22)
        if prio is None:
            c.protos.clear()
            return
        tp = c.find(prio)
        if tp is None:
            raise NetError("Error: Filter with specified priority/protocol not found.",
                           errno=2)
        if handle is None:
            c.protos.remove(tp)
            return
        kept = [f for f in tp.filters if f.handle != handle]
        if len(kept) == len(tp.filters):
            raise NetError("Error: Specified filter handle not found.", errno=2)
        tp.filters[:] = kept
        if not kept:
            c.protos.remove(tp)

    def filters(self, dev: str, parent: str | int, *,
                netns: str | None = None) -> list[tuple[int, TcfProto, Filter]]:
        """``tc filter show``: (chain, tcf_proto, filter) in classification order."""
        block, _ = self._block(self.dev(dev, netns), parent)
        return block.filters()

    def tcx_attach(self, dev: str, direction: str, prog: Program, *,
                   netns: str | None = None) -> None:
        """``BPF_TCX_INGRESS``/``EGRESS`` attach (appended: runs after earlier ones)."""
        self.tc_generation += 1
        if direction not in ("ingress", "egress"):
            raise NetError(f"tcx direction must be ingress or egress, not {direction!r}")
        self.dev(dev, netns).tcx[direction].append(prog)
