"""Issue 5's proof line, checked: every packet-transforming helper the issue names has at
least one kernel differential test at the BPF_PROG_TEST_RUN level.

Nothing here is a hand-kept "covered" flag.  The matrix is derived from the programs the
differential tests really run, disassembled with tcemu's printer (the kernel's syntax) and
scanned for ``call bpf_<name>#<id>``:

* the helper test modules ``tests/kernel/test_helpers_*.py``: every module-level registry
  named ``CASES`` or ``*_CASES`` (their tests are parametrized over exactly these);
* ``test_objects_differential.py``: the compiled objects and programs of its ``CASES``;
* the assembly tests of ``test_testrun.py`` and ``test_reshape_helpers.py``: each test
  function that compares through the module's ``_same`` is called once per parameter set
  of its ``parametrize`` marks with ``_same`` replaced by a recorder, so the programs are
  the ones the test body builds (no kernel is touched).

Only kernel-marked tests count.  ``python -m tests.kernel.test_helper_matrix`` prints the
table (helper -> tests).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet

from tcemu.bpf import Program
from tcemu.bpf.disasm import format_program
from tcemu.bpf.elf import load_collection_spec
from tcemu.bpf.isa import Insn
from tests.kernel.test_helpers_common import Case, ObjCase

# The helpers of issue 5, section "The helpers, really executed", in its order.
ISSUE_HELPERS = (
    "skb_store_bytes", "skb_load_bytes", "l3_csum_replace", "l4_csum_replace", "csum_diff",
    "csum_update", "clone_redirect", "redirect", "redirect_peer", "redirect_neigh",
    "skb_vlan_push", "skb_vlan_pop", "skb_get_tunnel_key", "skb_set_tunnel_key",
    "skb_get_tunnel_opt", "skb_set_tunnel_opt", "get_cgroup_classid", "get_route_realm",
    "skb_change_proto", "skb_change_type", "skb_change_tail", "skb_change_head",
    "skb_adjust_room", "skb_pull_data", "get_hash_recalc", "set_hash", "set_hash_invalid",
    "skb_ecn_set_ce", "check_mtu", "fib_lookup", "perf_event_output",
)
KERNEL_TESTS = Path(__file__).resolve().parent
OBJECTS = KERNEL_TESTS.parent / "testdata" / "objects"
_CALL = re.compile(r"call (bpf_\w+)#\d+")
# Assembly test modules whose tests compare through a module-level ``_same(prog, ...)``.
RECORDED_MODULES = ("tests.kernel.test_testrun", "tests.kernel.test_reshape_helpers")


def called_helpers(prog: Program | Sequence[Insn]) -> set[str]:
    """The helper names (without ``bpf_``) of every ``call bpf_x#id`` in the disassembly."""
    insns = prog.insns if isinstance(prog, Program) else prog
    text = "\n".join(format_program(insns))
    return {m.removeprefix("bpf_") for m in _CALL.findall(text)}


def _is_kernel_marked(*owners: object) -> bool:
    for owner in owners:
        marks = getattr(owner, "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        if any(getattr(m, "name", "") == "kernel" for m in marks):
            return True
    return False


# --- the three sources ----------------------------------------------------------------------


def _helper_modules() -> Iterator[ModuleType]:
    for path in sorted(KERNEL_TESTS.glob("test_helpers_*.py")):
        yield importlib.import_module(f"tests.kernel.{path.stem}")


def _parametrized_ids(module: ModuleType) -> list[set[str]]:
    """The id sets of every ``parametrize`` mark of the module's test functions."""
    out = []
    for fname, fn in vars(module).items():
        if not fname.startswith("test_") or not callable(fn):
            continue
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "parametrize":
                out.append({str(v.id) for v in mark.args[1] if isinstance(v, ParameterSet)})
    return out


def _registry_programs() -> Iterator[tuple[str, Program | Sequence[Insn]]]:
    for module in _helper_modules():
        if not _is_kernel_marked(module):
            continue
        short = module.__name__.rsplit(".", 1)[1]
        tested = _parametrized_ids(module)
        for attr, value in vars(module).items():
            if not (attr == "CASES" or attr.endswith("_CASES")) or not isinstance(value, dict):
                continue
            # A registry counts only if a test of the module is parametrized over all of it.
            if not any(set(value) <= ids for ids in tested):
                raise AssertionError(f"{short}.{attr}: no test function is parametrized over "
                                     "every case of this registry")
            for name, case in value.items():
                if isinstance(case, Case):
                    yield f"{short}::{attr}[{name}]", case.program()
                elif isinstance(case, ObjCase):
                    spec = load_collection_spec(case.path)
                    yield f"{short}::{attr}[{name}]", spec.programs[case.prog].insns


def _object_programs() -> Iterator[tuple[str, Program | Sequence[Insn]]]:
    module = importlib.import_module("tests.kernel.test_objects_differential")
    if not _is_kernel_marked(module, module.test_object_matches_kernel):
        return
    for case in module.CASES:
        spec = load_collection_spec(OBJECTS / f"{case.obj}.bpf.o")
        yield f"test_objects_differential[{case.id}]", spec.programs[case.prog].insns


def _param_sets(fn: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the function's ``parametrize`` marks, as keyword arguments."""
    axes: list[list[dict[str, Any]]] = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        rows = []
        for value in values:
            if isinstance(value, ParameterSet):
                row = tuple(value.values)
            else:
                row = tuple(value) if len(names) > 1 else (value,)
            rows.append(dict(zip(names, row, strict=True)))
        axes.append(rows)
    for combo in itertools.product(*axes):
        merged: dict[str, Any] = {}
        for part in combo:
            merged.update(part)
        yield merged


def _short(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes {bytes(value[:4]).hex()}..>"
    return repr(value)[:40]


def _recorded_programs() -> Iterator[tuple[str, Program | Sequence[Insn]]]:
    for modname in RECORDED_MODULES:
        module = importlib.import_module(modname)
        if not _is_kernel_marked(module):
            continue
        short = modname.rsplit(".", 1)[1]
        seen: list[Program] = []
        original = getattr(module, "_same")  # noqa: B009 - replaced by a recorder below

        def record(prog: Program, *args: object, _seen: list[Program] = seen,
                   **kwargs: object) -> None:
            _seen.append(prog)

        setattr(module, "_same", record)  # noqa: B010
        try:
            for fname, fn in vars(module).items():
                if not fname.startswith("test_") or not callable(fn):
                    continue
                if hasattr(fn, "hypothesis") or "_same(" not in inspect.getsource(fn):
                    continue
                for kwargs in _param_sets(fn):
                    seen.clear()
                    fn(**kwargs)
                    label = ",".join(f"{k}={_short(v)}" for k, v in kwargs.items())
                    for prog in seen:
                        yield f"{short}::{fname}[{label}]", prog
        finally:
            setattr(module, "_same", original)  # noqa: B010


def coverage() -> dict[str, list[str]]:
    """Issue helper -> the differential tests whose programs call it."""
    table: dict[str, list[str]] = {h: [] for h in ISSUE_HELPERS}
    for source in (_registry_programs, _object_programs, _recorded_programs):
        for test_id, prog in source():
            for helper in called_helpers(prog) & table.keys():
                if test_id not in table[helper]:
                    table[helper].append(test_id)
    return table


@functools.cache
def _table() -> dict[str, list[str]]:
    return coverage()


@pytest.mark.parametrize("helper", ISSUE_HELPERS)
def test_helper_has_a_test_run_differential_test(helper: str) -> None:
    tests = _table()[helper]
    assert tests, (f"bpf_{helper} (issue 5, 'The helpers, really executed') is called by no "
                   "kernel differential test at the BPF_PROG_TEST_RUN level: add one to a "
                   "tests/kernel/test_helpers_*.py registry")


def test_no_helper_is_missing() -> None:
    """The whole matrix at once, naming every helper without a test."""
    missing = [h for h, tests in _table().items() if not tests]
    assert not missing, f"helpers without a test_run differential test: {missing}"


def test_scanner_sees_calls() -> None:
    """The scanner finds a helper call in a program and nothing in a program without one."""
    from tcemu.bpf import assemble

    assert called_helpers(assemble("r1 = 0\nr2 = 0\ncall bpf_redirect\nexit")) == {"redirect"}
    assert called_helpers(assemble("r0 = 0\nexit")) == set()


if __name__ == "__main__":
    for helper, tests in coverage().items():
        more = " ..." if len(tests) > 3 else ""
        print(f"{helper:20} {len(tests):4}  {', '.join(tests[:3])}{more}")
