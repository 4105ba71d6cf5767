"""Value syntax shared by ``ip`` and ``tc``: numbers, rates, sizes, times, handles,
protocols, addresses.

Mirrors ``lib/utils.c`` (``get_u32``/``get_u16``/``get_u8``/``get_integer``,
``get_addr_1``/``get_prefix_1``, ``get_time64``), ``lib/utils_math.c`` (``get_rate64``,
``get_size``), ``tc/tc_util.c`` (``get_qdisc_handle``, ``get_tc_classid``, the tc
``get_time`` in microseconds, ``parse_percent``, ``action_a2n``), ``lib/ll_addr.c``
(``ll_addr_a2n``) and ``lib/ll_proto.c`` (``ll_proto_a2n``).  Numbers follow C's
``strtoul``/``strtod``: base 0 means ``0x`` is hex and a leading ``0`` is octal, so
``protocol 0800`` is refused exactly as tc refuses it.

Every function returns the normalised value or ``None`` when iproute2's function would
return -1; the caller turns ``None`` into the message its iproute2 counterpart prints.
Units: rates in bytes per second, sizes in bytes, times in nanoseconds.
"""

from __future__ import annotations

import ipaddress
import math
import re

__all__ = [
    "ETH_P",
    "PROTO_NAMES",
    "PSCHED_TICK_NS",
    "TC_H_ROOT",
    "TC_H_UNSPEC",
    "format_classid",
    "format_proto",
    "get_addr",
    "get_classid",
    "get_integer",
    "get_percent_u32",
    "get_prefix",
    "get_qdisc_handle",
    "get_rate64",
    "get_size",
    "get_time64",
    "get_time_tc",
    "get_uint",
    "ll_addr",
    "ll_proto",
    "strtod",
    "strtoul",
    "ticks_to_usec",
    "usec_to_ticks",
]

TC_H_ROOT = 0xFFFF_FFFF
TC_H_UNSPEC = 0
U32_MAX = 0xFFFF_FFFF
ULONG_MAX = (1 << 64) - 1

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# ---------------------------------------------------------------------------------
# C number parsing
# ---------------------------------------------------------------------------------

def strtoul(text: str, base: int = 0) -> tuple[int, int, bool]:
    """C ``strtoul``: (value, characters consumed, ERANGE).  Consumed 0 means no digits."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i:i + 2].lower() == "0x" and i + 2 < n \
            and text[i + 2] in "0123456789abcdefABCDEF":
        i += 2
        base = 16
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    start = i
    value = 0
    while i < n:
        digit = int(text[i], 36) if text[i].isalnum() and text[i].isascii() else 99
        if digit >= base:
            break
        value = value * base + digit
        i += 1
    if i == start:
        return 0, 0, False
    erange = value > ULONG_MAX
    if erange:
        value = ULONG_MAX
    elif neg:
        value = (-value) & ULONG_MAX
    return value, i, erange


_FLOAT = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def strtod(text: str) -> tuple[float, int]:
    """C ``strtod`` for decimal numbers: (value, characters consumed)."""
    # KERNEL-DIFF: hex floats, "inf" and "nan" (which glibc's strtod also accepts) are not
    # numbers here; iproute2 would go on to store an undefined conversion of them.
    m = _FLOAT.match(text)
    if not m:
        return 0.0, 0
    return float(m.group(0)), m.end()


def get_uint(text: str, base: int = 0, limit: int = U32_MAX) -> int | None:
    """``get_u32``/``get_u16``/``get_u8``/``get_unsigned``: the whole word, at most ``limit``."""
    if not text:
        return None
    value, used, erange = strtoul(text, base)
    if used == 0 or used != len(text) or erange or value > limit:
        return None
    return value


def get_integer(text: str, base: int = 0) -> int | None:
    """``get_integer``: a C ``int`` written with ``strtol``."""
    if not text:
        return None
    value, used, erange = strtoul(text, base)
    if used == 0 or used != len(text) or erange:
        return None
    if value >= 1 << 63:
        value -= 1 << 64
    if not -(1 << 31) <= value < 1 << 31:
        return None
    return value


# ---------------------------------------------------------------------------------
# tc units
# ---------------------------------------------------------------------------------

_RATE_SCALE = {  # lib/utils_math.c, matched case-insensitively
    "bit": 1.0, "kibit": 1024.0, "kbit": 1000.0, "mibit": 1024.0 ** 2, "mbit": 1e6,
    "gibit": 1024.0 ** 3, "gbit": 1e9, "tibit": 1024.0 ** 4, "tbit": 1e12,
    "bps": 8.0, "kibps": 8.0 * 1024, "kbps": 8000.0, "mibps": 8.0 * 1024 ** 2,
    "mbps": 8e6, "gibps": 8.0 * 1024 ** 3, "gbps": 8e9, "tibps": 8.0 * 1024 ** 4,
    "tbps": 8e12,
}


def get_rate64(text: str) -> int | None:
    """``get_rate64``: a rate in bytes per second (a bare number is bits per second)."""
    bps, used = strtod(text)
    if used == 0:
        return None
    suffix = text[used:]
    if suffix:
        scale = _RATE_SCALE.get(suffix.lower())
        if scale is None:
            return None
        bps *= scale
    value = bps / 8
    if value < 0 or not math.isfinite(value) or value >= 2.0 ** 64:
        return None
    return int(value)


_SIZE_SCALE = {
    "kb": 1024.0, "k": 1024.0, "gb": 1024.0 ** 3, "g": 1024.0 ** 3,
    "gbit": 1024.0 ** 3 / 8, "mb": 1024.0 ** 2, "m": 1024.0 ** 2,
    "mbit": 1024.0 ** 2 / 8, "kbit": 1024.0 / 8, "b": 1.0,
}


def get_size(text: str) -> int | None:
    """``get_size``: a size in bytes that fits a u32 (``k``/``kb`` are 1024)."""
    size, used = strtod(text)
    if used == 0:
        return None
    suffix = text[used:]
    if suffix:
        scale = _SIZE_SCALE.get(suffix.lower())
        if scale is None:
            return None
        size *= scale
    # C integer division: "kbit" is 1024/8 = 128 exactly, "mbit" 131072, "gbit" 2^27.
    if size < 0 or not math.isfinite(size) or int(size) != math.floor(size) \
            or size > U32_MAX:
        return None
    return int(size)


_TIME_SCALE_NS = {
    "s": 1_000_000_000, "sec": 1_000_000_000, "secs": 1_000_000_000,
    "ms": 1_000_000, "msec": 1_000_000, "msecs": 1_000_000,
    "us": 1000, "usec": 1000, "usecs": 1000,
}


def get_time64(text: str) -> int | None:
    """``get_time64``: nanoseconds (a bare number is nanoseconds; ``ns`` is accepted)."""
    t, used = strtod(text)
    if used == 0:
        return None
    suffix = text[used:].lower()
    if suffix:
        if suffix in ("ns", "nsec", "nsecs"):
            scale = 1
        elif suffix in _TIME_SCALE_NS:
            scale = _TIME_SCALE_NS[suffix]
        else:
            return None
        t *= scale
    if not math.isfinite(t) or abs(t) >= 2.0 ** 63:
        return None
    return int(t)


def get_time_tc(text: str) -> int | None:
    """tc's ``get_time``: kept in whole microseconds as tc sends it, returned in ns.

    A bare number is microseconds; ``ns`` is not a unit here.
    """
    t, used = strtod(text)
    if used == 0:
        return None
    suffix = text[used:].lower()
    if suffix:
        if suffix not in _TIME_SCALE_NS:
            return None
        t *= _TIME_SCALE_NS[suffix] // 1000
    if t < 0 or not math.isfinite(t) or t > U32_MAX:
        return None
    return int(t) * 1000


# /proc/net/psched on every kernel since PSCHED_SHIFT became 6: 1000 ns per microsecond,
# 64 ns per psched tick, so tc's tick_in_usec is 1000 / 64.
PSCHED_TICK_NS = 64
TICKS_PER_USEC = 1000 / PSCHED_TICK_NS


def usec_to_ticks(usec: int) -> int | None:
    """tc's ``get_ticks``: microseconds → psched ticks, None when ``tc_core_time2big``."""
    ticks = int(usec * TICKS_PER_USEC)
    return None if ticks >> 32 else ticks


def ticks_to_usec(ticks: int) -> int:
    """The smallest microsecond count tc turns into ``ticks`` (the inverse for render)."""
    return -(-ticks * PSCHED_TICK_NS // 1000)


def get_percent_u32(text: str) -> int | None:
    """netem's ``get_percent``: ``P%`` (or a bare ``P``) scaled to a u32 probability."""
    value, used = strtod(text)
    rest = text[used:]
    per = value / 100.0
    if per > 1.0 or per < 0.0:
        return None
    if rest and rest != "%":
        return None
    return round(per * U32_MAX)


# ---------------------------------------------------------------------------------
# handles
# ---------------------------------------------------------------------------------

def get_qdisc_handle(text: str) -> int | None:
    """``get_qdisc_handle``: ``1:``, ``1``, ``ffff:`` or ``none`` → ``major << 16``."""
    if text == "none":
        return 0
    major, used, _ = strtoul(text, 16)
    if used == 0 or major >= 1 << 16:
        return None
    if text[used:used + 1] not in ("", ":"):  # anything after the colon is ignored
        return None
    return major << 16


def get_classid(text: str) -> int | None:
    """``get_tc_classid``: ``root``, ``none``, ``M:N``, ``M:``, ``:N`` or ``N`` (hex)."""
    if text == "root":
        return TC_H_ROOT
    if text == "none":
        return TC_H_UNSPEC
    major, used, _ = strtoul(text, 16)
    if used == 0:
        major = 0
        if not text.startswith(":"):
            return None
    rest = text[used:]
    if rest.startswith(":"):
        if major >= 1 << 16:
            return None
        minor_text = rest[1:]
        minor, mused, _ = strtoul(minor_text, 16)
        if mused != len(minor_text) or minor >= 1 << 16:
            return None
        return (major << 16) | minor
    if rest:
        return None
    return major & U32_MAX


def format_classid(handle: int) -> str:
    """``print_tc_classid``: the canonical text of a class id or parent."""
    if handle == TC_H_ROOT:
        return "root"
    if handle == TC_H_UNSPEC:
        return "none"
    major, minor = handle >> 16, handle & 0xFFFF
    if major == 0:
        return f":{minor:x}"
    if minor == 0:
        return f"{major:x}:"
    return f"{major:x}:{minor:x}"


# ---------------------------------------------------------------------------------
# protocols (lib/ll_proto.c; names compared case-insensitively)
# ---------------------------------------------------------------------------------

ETH_P = {
    "loop": 0x0060, "pup": 0x0200, "pupat": 0x0201, "ip": 0x0800, "x25": 0x0805,
    "arp": 0x0806, "bpq": 0x08FF, "ieeepup": 0x0A00, "ieeepupat": 0x0A01,
    "dec": 0x6000, "dna_dl": 0x6001, "dna_rc": 0x6002, "dna_rt": 0x6003, "lat": 0x6004,
    "diag": 0x6005, "cust": 0x6006, "sca": 0x6007, "rarp": 0x8035, "atalk": 0x809B,
    "aarp": 0x80F3, "ipx": 0x8137, "ipv6": 0x86DD, "ppp_disc": 0x8863,
    "ppp_ses": 0x8864, "atmmpoa": 0x884C, "atmfate": 0x8884, "802.1Q": 0x8100,
    "802.1ad": 0x88A8, "mpls_uc": 0x8847, "mpls_mc": 0x8848, "teb": 0x6558,
    "LLDP": 0x88CC, "802_3": 0x0001, "ax25": 0x0002, "all": 0x0003, "802_2": 0x0004,
    "snap": 0x0005, "ddcmp": 0x0006, "wan_ppp": 0x0007, "ppp_mp": 0x0008,
    "localtalk": 0x0009, "can": 0x000C, "ppptalk": 0x0010, "tr_802_2": 0x0011,
    "mobitex": 0x0015, "control": 0x0016, "irda": 0x0017, "econet": 0x0018,
    "tipc": 0x88CA, "aoe": 0x88A2,
}
PROTO_NAMES = {value: name for name, value in ETH_P.items()}
_PROTO_BY_LOWER = {name.lower(): value for name, value in ETH_P.items()}


def ll_proto(text: str) -> int | None:
    """``ll_proto_a2n``: an EtherType name (any case) or a number up to 0xffff."""
    value = _PROTO_BY_LOWER.get(text.lower())
    if value is not None:
        return value
    return get_uint(text, 0, 0xFFFF)


def format_proto(proto: int) -> str:
    name = PROTO_NAMES.get(proto)
    return name if name is not None else f"0x{proto:04x}"


# ---------------------------------------------------------------------------------
# addresses
# ---------------------------------------------------------------------------------

def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    """``get_addr_ipv4``: 1 to 4 parts, each ``strtoul(base 0)`` ≤ 255; missing parts are 0."""
    parts = [0, 0, 0, 0]
    rest = text
    for i in range(4):
        value, used, _ = strtoul(rest, 0)
        if used == 0 or value > 255 or not rest[:1].isdigit():
            return None
        parts[i] = value
        rest = rest[used:]
        if not rest:
            return ipaddress.IPv4Address(bytes(parts))
        if i == 3 or rest[0] != ".":
            return None
        rest = rest[1:]
    return None


def get_addr(text: str, family: int = 0) -> IpAddress | None:
    """``get_addr_1`` for an inet address; ``family`` 4, 6 or 0 (any)."""
    if ":" in text:
        if family == 4:
            return None
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    if family == 6:
        return None
    return _ipv4(text)


def get_prefix(text: str, family: int = 0) -> IpNetwork | tuple[IpAddress, int] | None:
    """``get_prefix_1``: ``A/P``, ``A`` (a host prefix) or ``default``.

    Returns the address with its prefix length (host bits kept, as iproute2 sends
    them); ``default`` is ``0.0.0.0/0`` (``::/0`` for family 6).
    """
    if text in ("default", "all", "any"):
        if text != "default":
            return None
        return ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
    addr_text, slash, plen_text = text.partition("/")
    addr = get_addr(addr_text, family)
    if addr is None:
        return None
    bits = addr.max_prefixlen
    if not slash:
        return addr, bits
    plen = get_uint(plen_text, 0)
    if plen is None and addr.version == 4:
        mask = _ipv4(plen_text)  # a dotted netmask
        if mask is not None:
            host = ~int(mask) & U32_MAX
            if host & (host + 1) == 0:
                plen = 32 - host.bit_length()
    if plen is None or plen > bits:
        return None
    return addr, plen


def ll_addr(text: str) -> tuple[str | None, str]:
    """``ll_addr_a2n``: ``aa:bb:...`` hex bytes → (canonical lowercase text, "").

    On failure returns (None, the part iproute2 names in ``"X" is invalid lladdr.``):
    each part is read with ``sscanf("%x")``, so trailing junk after a hex digit is
    ignored, as iproute2 ignores it.
    """
    if "." in text:
        addr = _ipv4(text)
        if addr is None:
            return None, text
        return ":".join(f"{b:02x}" for b in addr.packed), ""
    out = []
    parts = text.split(":")
    for i, part in enumerate(parts[:32]):
        value, used, _ = strtoul(part, 16)
        if used == 0 or value > 255:  # "-1" reads as ULONG_MAX
            return None, part
        out.append(value)
        if i == 31:
            break
    return ":".join(f"{b:02x}" for b in out), ""
