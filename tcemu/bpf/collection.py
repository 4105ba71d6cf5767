"""Load a :class:`~tcemu.bpf.elf.CollectionSpec` into an environment: the libbpf step.

``Collection.load(spec, env)`` creates (or, for pinned maps, reuses) every map, writes the
initial contents of global data and freezes ``.rodata``, builds one :class:`Program` per
program with its LD_IMM64 map references bound, checks every helper call against the
program type and licence (failing, naming the helper, as the verifier does), fills
program arrays from BTF ``.values`` initialisers and iproute2 ``ID/IDX`` tail-call
sections, and prepares one shared :class:`~tcemu.bpf.vm.Vm` so maps keep their state from
run to run.  ``load_object(path)`` does both steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tcemu.bpf import isa
from tcemu.bpf.elf import CollectionSpec, ObjMap, ProgramSpec, load_collection_spec
from tcemu.bpf.env import Env
from tcemu.bpf.helpers import check_calls, helpers_for
from tcemu.bpf.maps import MapBase, MapError, MapSpec, create_or_reuse, map_handle
from tcemu.bpf.maps.map_in_map import ArrayOfMaps, HashOfMaps
from tcemu.bpf.maps.prog_array import ProgArrayMap
from tcemu.bpf.ops import LdImm64
from tcemu.bpf.program import Program
from tcemu.bpf.uapi import BpfMapType
from tcemu.bpf.vm import DEFAULT_BUDGET, HelperFn, Vm
from tcemu.errors import LoadError

__all__ = ["Collection", "load_object"]

BPF_F_RDONLY_PROG = 0x80


_FD_ARRAYS = (BpfMapType.PROG_ARRAY, BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS,
              BpfMapType.PERF_EVENT_ARRAY)


def _map_spec(obj: ObjMap, env: Env) -> MapSpec:
    """The MapSpec libbpf would create: fd-holding maps get 4-byte keys/values when the
    BTF definition leaves them out, a perf event array one slot per possible CPU."""
    key, value, entries = obj.key_size, obj.value_size, obj.max_entries
    if obj.type in _FD_ARRAYS:
        value = value or 4
        key = key or (4 if obj.type != BpfMapType.HASH_OF_MAPS else key)
    if obj.type == BpfMapType.PERF_EVENT_ARRAY and not entries:
        entries = env.ncpus
    where = f"load map '{obj.name}' (section '{obj.section}')"
    if obj.type not in {int(t) for t in BpfMapType}:
        raise LoadError(f"{where}: unknown map type {obj.type}")
    try:
        inner = _map_spec(obj.inner, env) if obj.inner is not None else None
        return MapSpec(obj.name, BpfMapType(obj.type), key, value, entries, obj.flags, inner,
                       obj.pinning)
    except (MapError, ValueError) as err:
        raise LoadError(f"{where}: {err}") from err


class Collection:
    """The live programs and maps of one object, in one environment."""

    def __init__(self, spec: CollectionSpec, env: Env, programs: dict[str, Program],
                 maps: dict[str, MapBase], vm: Vm) -> None:
        self.spec = spec
        self.env = env
        self.programs = programs
        self.maps = maps
        self.vm = vm

    def __repr__(self) -> str:
        return f"<Collection programs={list(self.programs)} maps={list(self.maps)}>"

    @classmethod
    def load(cls, spec: CollectionSpec, env: Env | None = None, *, object_id: str = "",
             budget: int = DEFAULT_BUDGET) -> Collection:
        env = env if env is not None else Env()
        maps = _create_maps(spec, env, object_id)
        map_list = list(maps.values())
        programs = {name: _program(p, spec, map_list) for name, p in spec.programs.items()}
        for prog in programs.values():
            check_calls(prog.helper_calls(), prog.prog_type, prog.gpl_compatible)
        vm = Vm(env, helpers=_helpers(programs), budget=budget)
        for prog in programs.values():
            prog.vm = vm
        _fill_prog_arrays(spec, maps, programs)
        _fill_maps_of_maps(spec, maps)
        return cls(spec, env, programs, maps, vm)


def _helpers(programs: Mapping[str, Program]) -> dict[int, HelperFn]:
    out: dict[int, HelperFn] = {}
    for prog in programs.values():
        out.update(helpers_for(prog.prog_type))
    return out


def _create_maps(spec: CollectionSpec, env: Env, object_id: str) -> dict[str, MapBase]:
    maps: dict[str, MapBase] = {}
    for obj in spec.maps.values():
        mspec = _map_spec(obj, env)
        try:
            live = create_or_reuse(mspec, env, object_id=object_id)
        except MapError as err:
            raise LoadError(f"load map '{obj.name}': {err}") from err
        if obj.initial is not None:
            live.update((0).to_bytes(4, "little"), obj.initial)
            if obj.flags & BPF_F_RDONLY_PROG:
                _freeze(env, live)
        maps[obj.name] = live
    return maps


def _freeze(env: Env, m: MapBase) -> None:
    """``.rodata``: programs may only read it (BPF_F_RDONLY_PROG), so make it read-only."""
    address = m.vm_lookup((0).to_bytes(4, "little"))
    rid = address >> 32
    env.memory.regions[rid] = bytes(env.memory.regions[rid])
    m.freeze()  # libbpf freezes .rodata: host updates fail with EPERM as well


def _program(p: ProgramSpec, spec: CollectionSpec, maps: list[MapBase]) -> Program:
    prog = Program(p.insns, name=p.name, prog_type=p.prog_type, license=p.license,
                   section=p.section)
    prog.origins = p.origins
    prog.btf = spec.btf
    prog.subprog_names = dict(p.subprog_names)

    def resolve(op: LdImm64) -> int:
        if not 0 <= op.imm < len(maps):
            raise LoadError(f"load program '{p.name}': insn {op.pc}: map index {op.imm} out of "
                            "range")
        target = maps[op.imm]
        if op.pseudo in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_FD):
            return map_handle(target)
        base = target.vm_lookup((0).to_bytes(4, "little"))
        if not base:
            raise LoadError(f"load program '{p.name}': insn {op.pc}: map '{target.spec.name}' "
                            "has no direct value access")
        return base + (op.imm2 & 0xFFFF_FFFF)

    prog.map_resolver = resolve
    return prog


def _fill_prog_arrays(spec: CollectionSpec, maps: Mapping[str, MapBase],
                      programs: Mapping[str, Program]) -> None:
    by_id = {obj.id: maps[obj.name] for obj in spec.maps.values()
             if obj.id and obj.type == BpfMapType.PROG_ARRAY}
    for p in spec.programs.values():
        if p.tail_call is None:
            continue
        ident, index = p.tail_call
        target = by_id.get(ident)
        if not isinstance(target, ProgArrayMap):
            raise LoadError(f"load section '{p.section}': no prog array with id {ident} for "
                            "this tail-call section")
        if index >= target.spec.max_entries:
            raise LoadError(f"load section '{p.section}': slot {index} is past the end of "
                            f"prog array '{target.spec.name}' ({target.spec.max_entries})")
        target.update(index.to_bytes(4, "little"), programs[p.name])
    for obj in spec.maps.values():
        live = maps[obj.name]
        for index, name in obj.values:
            if not isinstance(live, ProgArrayMap):
                continue
            if not 0 <= index < live.spec.max_entries:
                raise LoadError(f"load map '{obj.name}': initial value for slot {index} is "
                                "outside the map")
            if name not in programs:
                raise LoadError(f"load map '{obj.name}': slot {index} refers to '{name}', "
                                "which is not a program of this object")
            live.update(index.to_bytes(4, "little"), programs[name])


def _fill_maps_of_maps(spec: CollectionSpec, maps: Mapping[str, MapBase]) -> None:
    for obj in spec.maps.values():
        live = maps[obj.name]
        if not isinstance(live, ArrayOfMaps | HashOfMaps):
            continue
        for index, name in obj.values:
            if isinstance(live, ArrayOfMaps) and not 0 <= index < live.spec.max_entries:
                raise LoadError(f"load map '{obj.name}': initial value for slot {index} is "
                                "outside the map")
            if name not in maps:
                raise LoadError(f"load map '{obj.name}': slot {index} refers to '{name}', "
                                "which is not a map of this object")
            live.update(index.to_bytes(live.spec.key_size, "little"), maps[name])


def load_object(path: str | Path | bytes, env: Env | None = None, *,
                object_id: str = "") -> Collection:
    """Parse and load a clang-built object: ``coll.programs[fn]``, ``coll.maps[name]``."""
    return Collection.load(load_collection_spec(path), env, object_id=object_id)
