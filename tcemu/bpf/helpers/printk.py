"""The format engine of ``bpf_trace_printk`` and ``bpf_snprintf``.

``kernel/bpf/helpers.c`` ``bpf_bprintf_prepare``: the format must end with a NUL inside
``fmt_size``; only printable ASCII and whitespace may appear; conversions are ``%%``, flags
``0 + - space`` and a decimal width (no precision), ``d i u x X`` with ``l``/``ll``, ``c``,
``s``/``ks``/``us`` and the pointer forms ``p pK px ps pS pB pI4 pi4 pI6 pi6``; at most
``max_args`` conversions.  Anything else makes the helper fail with -EINVAL (``None`` here).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tcemu.bpf.vm import Vm

__all__ = ["check_format", "format_printk", "render_printk"]

_CONV = re.compile(r"%([-+ 0]*)(\d*)(\.)?(ll|l|pks|pus|pI4|pi4|pI6|pi6|pB|p[KxsS]|p)?"
                   r"([diuxXcs%]?)")
_MAX_STR = 512


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _string(vm: Vm, address: int) -> str:
    out = bytearray()
    try:
        while len(out) < _MAX_STR:
            byte = vm.memory.read(address + len(out), 1)
            if byte == b"\0":
                break
            out += byte
    except (IndexError, TypeError):
        return out.decode("latin-1")  # the kernel prints what it could copy (often "")
    return out.decode("latin-1")


def _pointer(vm: Vm, kind: str, value: int) -> str | None:
    if kind in ("pI4", "pi4", "pI6", "pi6"):
        size = 4 if kind.endswith("4") else 16
        try:
            raw = vm.memory.read(value, size)
        except (IndexError, TypeError):
            raw = bytes(size)  # copy_from_kernel_nofault failed: the buffer stays zeroed
        if kind == "pI4":
            return ".".join(str(b) for b in raw)
        if kind == "pi4":
            return ".".join(f"{b:03d}" for b in raw)
        if kind == "pI6":
            return ":".join(raw[i:i + 2].hex() for i in range(0, 16, 2))
        return raw.hex()
    if kind == "px":
        return f"{value:016x}"
    if kind == "pK":
        return f"{0:016x}"  # kptr_restrict hides kernel pointers from tracing output
    # KERNEL-DIFF: the kernel hashes %p with a per-boot secret; ours is keyed by the seed.
    digest = hashlib.blake2b(value.to_bytes(8, "little"), digest_size=4,
                             key=vm.env.seed.to_bytes(8, "little")).hexdigest()
    return f"{int(digest, 16):016x}" if kind == "p" else f"0x{value:x}"


def _integer(flags: str, width: str, length: str, conv: str, value: int) -> str:
    bits = 64 if length in ("l", "ll") else 32
    number = _signed(value, bits) if conv in "di" else value & ((1 << bits) - 1)
    if conv not in "di":
        flags = flags.replace("+", "").replace(" ", "")  # no sign for unsigned conversions
    spec = "%" + flags + width + ("d" if conv in "diu" else conv)
    return spec % number


def check_format(fmt: bytes, num_args: int) -> bool:
    """Whether ``bpf_bprintf_prepare`` accepts ``fmt`` with ``num_args`` arguments, as the
    verifier checks a constant ``bpf_snprintf`` format (``check_bpf_snprintf_call``)."""
    return format_printk(None, fmt, [0] * num_args, num_args) is not None


def format_printk(vm: Vm | None, fmt: bytes, args: Sequence[int], max_args: int = 3,
                  ) -> str | None:
    """The text produced, or ``None`` where the kernel returns -EINVAL (``vm`` None only
    checks the format: strings and pointers are not read)."""
    pieces = render_printk(vm, fmt, args, max_args)
    return None if pieces is None else "".join(text for text, _ in pieces)


# The pointer conversions bpf_bprintf_prepare() formats ahead of time into its buffer;
# bstr_printf() copies their text without padding, and only while the output has room.
_PRERENDERED = frozenset({"pks", "pus", "pB", "pI4", "pi4", "pI6", "pi6"})


def render_printk(vm: Vm | None, fmt: bytes, args: Sequence[int], max_args: int = 3,
                  ) -> list[tuple[str, bool]] | None:
    """The output as pieces (text, whether it is a pre-rendered pointer conversion), or
    ``None`` where the kernel returns -EINVAL."""
    end = fmt.find(b"\0")
    if end < 0:
        return None
    raw = fmt[:end]
    if any(b > 126 or (b < 32 and b not in b"\t\n\v\f\r") for b in raw):
        return None
    text = raw.decode("ascii")
    out: list[tuple[str, bool]] = []
    pos, used = 0, 0
    for match in _CONV.finditer(text):
        out.append((text[pos:match.start()], False))
        pos = match.end()
        flags, width, dot, length, conv = match.groups()
        if conv == "%" and not (flags or width or length):
            out.append(("%", False))
            continue
        if dot or used >= max_args:
            return None
        value = args[used] if used < len(args) else 0
        used += 1
        length = length or ""
        piece: str | None
        if conv in ("d", "i", "u", "x", "X") and length in ("", "l", "ll"):
            out.append((_integer(flags, width, length, conv, value), False))
            continue
        if length.startswith("p") and not conv:
            follow = text[pos:pos + 1]
            if length == "p" and follow and (follow.isalnum() or follow == "_"):
                return None  # %p followed by an unknown extension (e.g. %pa)
            if vm is None:
                piece = ""
            elif length in ("pks", "pus"):
                piece = _string(vm, value)
            else:
                piece = _pointer(vm, length, value)
            if length in _PRERENDERED and piece is not None:
                out.append((piece, True))
                continue
        elif not length and conv == "s":
            piece = "" if vm is None else _string(vm, value)
        elif conv == "c" and not length:
            piece = chr(value & 0xFF)
        else:
            return None
        if piece is None:
            return None
        out.append((("%" + flags.replace("0", "") + width + "s") % piece, False))
    out.append((text[pos:], False))
    return out
