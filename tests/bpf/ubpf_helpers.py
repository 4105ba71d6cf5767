"""uBPF's test helpers (``test_helpers.h`` in iovisor/ubpf), re-implemented from their
observable behaviour so the uBPF vectors can run: 0 gather_bytes, 1 memfrob,
2 trash_registers (no-op here: caller-saved registers are the program's problem),
3 sqrti, 4 strcmp_ext, 5 unwind.
"""

from __future__ import annotations

import math

from tcemu.bpf.vm import HelperFn, ProgramExit, Vm


def _gather_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return ((r1 & 0xFF) << 32) | ((r2 & 0xFF) << 24) | ((r3 & 0xFF) << 16) | \
        ((r4 & 0xFF) << 8) | (r5 & 0xFF)


def _memfrob(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    data = vm.memory.read(r1, r2)
    vm.memory.write(r1, bytes(b ^ 42 for b in data))
    return 0


def _trash_registers(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 0


def _sqrti(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return math.isqrt(r1 & 0xFFFFFFFF)


def _cstring(vm: Vm, address: int) -> bytes:
    out = bytearray()
    while (byte := vm.memory.read(address + len(out), 1)) != b"\0":
        out += byte
    return bytes(out)


def _strcmp_ext(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    a, b = _cstring(vm, r1), _cstring(vm, r2)
    return (a > b) - (a < b)


def _unwind(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r1 == 0:
        raise ProgramExit(0)
    return r1


UBPF_HELPERS: dict[int, HelperFn] = {0: _gather_bytes, 1: _memfrob, 2: _trash_registers,
                                     3: _sqrti, 4: _strcmp_ext, 5: _unwind}
