"""The whole tcemu exception tree.

Every error tcemu raises on purpose derives from :class:`TcemuError`, so a caller
(and the CLI) can catch one type and print one line.  Messages are lowercase
"verb object: cause"; context is added with ``raise ... from err``.

::

    TcemuError
     ├── AsmError(line, col)            text assembler: bad mnemonic, operand, label
     ├── EncodingError(offset)          raw bytes that are not whole 8-byte instructions
 ├── ElfError(section, offset)      a corrupt, truncated or foreign ELF object
     ├── ValidationError(index, insn)   structural check of a program (reserved fields,
     │                                  bad registers, jumps out of range, broken LDDW)
     ├── UnsupportedError(index, insn)  a well-formed feature tcemu does not implement
     │                                  (BTF-id LD_IMM64, kfunc calls)
     ├── LoadError                      binding a program to its environment
     │    └── HelperError(helper_id)    a call to a helper the environment does not offer
     ├── VmFault(pc, insn, addr, size, access, region)
     │                                  a checked memory access that failed at run time
     ├── ExecutionError(pc)             any other run-time stop: budget, call depth,
     │    ├── BudgetExceeded            instruction budget used up
     │    └── CallDepthExceeded         bpf-to-bpf calls deeper than 8 frames
     ├── KernelError(errno, missing_feature)
     │                                  the optional real-kernel backend failed; a
     │                                  missing_feature ("root", "bpf", "link/vlan", ...)
     │                                  says the machine lacks what the operation needs
     └── NetError(errno)                building or driving an emulated network (no
                                        such device, bad topology; iproute2's wording)
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "AsmError",
    "BtfError",
    "BudgetExceeded",
    "CallDepthExceeded",
    "ElfError",
    "EncodingError",
    "ExecutionError",
    "HelperError",
    "KernelError",
    "LoadError",
    "MapError",
    "NetError",
    "TcemuError",
    "UnsupportedError",
    "ValidationError",
    "VmFault",
]


class TcemuError(Exception):
    """Base class of every error tcemu raises on purpose."""


class AsmError(TcemuError):
    """The text assembler could not read a line."""

    def __init__(self, message: str, *, line: int, col: int = 0, text: str = "") -> None:
        self.line = line
        self.col = col
        self.text = text
        where = f"line {line}" + (f", col {col}" if col else "")
        super().__init__(f"assemble {where}: {message}" + (f": {text.strip()!r}" if text else ""))


class BtfError(TcemuError):
    """A ``.BTF`` / ``.BTF.ext`` blob, or a BTF-defined map, is malformed or unsupported.

    ``type_id`` is the BTF type the problem was found in (``None`` when it is not about one
    type); ``offset`` is the byte offset in the section being read (``None`` when the problem
    is not tied to a position, e.g. a dangling reference found after parsing).
    """

    def __init__(self, message: str, *, type_id: int | None = None, offset: int | None = None,
                 verb: str = "parse btf") -> None:
        self.type_id = type_id
        self.offset = offset
        self.reason = message
        where = []
        if type_id is not None:
            where.append(f"type {type_id}")
        if offset is not None:
            where.append(f"at byte {offset}")
        prefix = f"{verb}: {' '.join(where)}: " if where else f"{verb}: "
        super().__init__(prefix + message)


ENOTSUPP = 524
"""The kernel-internal ``ENOTSUPP`` (include/linux/errno.h) that bpf(2) leaks to user space."""

_ERRNO_NAMES = {ENOTSUPP: "ENOTSUPP", _errno.EOPNOTSUPP: "EOPNOTSUPP"}


def errno_name(code: int) -> str:
    """``ENOENT`` for 2, ``ENOTSUPP`` for 524."""
    return _ERRNO_NAMES.get(code) or _errno.errorcode.get(code, f"errno {code}")


class MapError(TcemuError):
    """A map operation failed; ``errno`` is what the kernel would return for it."""

    def __init__(self, message: str, *, errno: int) -> None:
        self.errno = errno
        super().__init__(f"{message} ({errno_name(errno)})")


class EncodingError(TcemuError):
    """Raw program bytes are not a whole number of 8-byte instructions."""

    def __init__(self, message: str, *, offset: int) -> None:
        self.offset = offset
        super().__init__(f"decode program at byte {offset}: {message}")


class ElfError(TcemuError):
    """An object file is not a well-formed little-endian ELF64 eBPF relocatable object."""

    def __init__(self, message: str, *, section: str | None = None,
                 offset: int | None = None) -> None:
        self.section = section
        self.offset = offset
        where = f" section '{section}'" if section else ""
        at = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"read elf{where}{at}: {message}")


class _InsnError(TcemuError):
    """An error tied to one instruction slot (the kernel's ``insn_idx``)."""

    verb = "check program"

    def __init__(self, message: str, *, index: int, insn: object = None) -> None:
        self.index = index
        self.insn = insn
        self.reason = message
        super().__init__(f"{self.verb}: insn {index}: {message}")


class ValidationError(_InsnError):
    """Structural validation rejected the program (see ``isa.validate``)."""


class UnsupportedError(_InsnError):
    """The program uses a feature tcemu deliberately does not implement."""

    verb = "load program"


class LoadError(TcemuError):
    """A program could not be bound to its environment (maps, helpers, subprograms)."""


class HelperError(LoadError):
    """A program calls a helper that the current environment does not provide."""

    def __init__(self, message: str, *, helper_id: int, index: int | None = None) -> None:
        self.helper_id = helper_id
        self.index = index
        where = f"insn {index}: " if index is not None else ""
        super().__init__(f"load program: {where}{message}")


class ExecutionError(TcemuError):
    """A program stopped at run time for a reason other than a memory fault."""

    def __init__(self, message: str, *, pc: int) -> None:
        self.pc = pc
        super().__init__(f"run program: pc {pc}: {message}")


class BudgetExceeded(ExecutionError):
    """The instruction budget of a run was used up (an endless loop, usually)."""


class CallDepthExceeded(ExecutionError):
    """bpf-to-bpf calls went deeper than the kernel's MAX_CALL_FRAMES (8)."""


class VmFault(TcemuError):
    """A checked load or store hit unmapped memory, went out of bounds or wrote read-only memory."""

    def __init__(
        self,
        message: str,
        *,
        pc: int,
        insn: object,
        addr: int,
        size: int,
        access: str,
        region: str | None = None,
    ) -> None:
        self.pc = pc
        self.insn = insn
        self.addr = addr
        self.size = size
        self.access = access
        self.region = region
        super().__init__(
            f"run program: pc {pc}: {access} of {size} byte(s) at {addr:#x}: {message}"
        )


class KernelError(TcemuError):
    """The real kernel (an optional backend and test oracle) refused an operation."""

    def __init__(
        self, message: str, *, errno: int, log: str = "", missing_feature: str | None = None
    ) -> None:
        self.errno = errno
        self.log = log
        self.missing_feature = missing_feature
        super().__init__(message)


class NetError(TcemuError):
    """An emulated network refused a configuration or operation (``tcemu.net``); ``errno``
    is the one the kernel would give (ENODEV for a missing device, EEXIST, EINVAL...)."""

    def __init__(self, message: str, *, errno: int = 22) -> None:
        self.errno = errno
        super().__init__(message)
