"""Names and values of the network API: MAC addresses, EtherType names, tc handles,
frames, and :class:`NetMaps` (the maps of every object loaded through filters)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from tcemu.cls.chain import ETH_P_ALL
from tcemu.errors import NetError

if TYPE_CHECKING:
    from tcemu.bpf.maps import MapBase

__all__ = ["ETH_P_NAMES", "Frame", "NetMaps", "frame_bytes", "parent_name",
           "parse_handle", "parse_mac", "parse_protocol"]

ETH_P_NAMES = {"all": ETH_P_ALL, "ip": 0x0800, "ipv6": 0x86DD, "arp": 0x0806,
               "802.1q": 0x8100, "802.1ad": 0x88A8}
Frame = bytes | bytearray | memoryview | object


def frame_bytes(frame: Frame) -> bytes:
    if isinstance(frame, bytes | bytearray | memoryview):
        return bytes(frame)
    to_bytes = getattr(frame, "__bytes__", None)
    if to_bytes is None:
        raise NetError(f"cannot send {type(frame).__name__}: not bytes or a packet")
    data: bytes = to_bytes()
    return data


def parse_mac(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    parts = value.split(":")
    try:
        if len(parts) == 6 and all(0 < len(p) <= 2 for p in parts):
            return bytes(int(p, 16) for p in parts)
    except ValueError:
        pass
    raise NetError(f'"{value}" is invalid lladdr.')


def parse_protocol(value: str | int) -> int:
    if isinstance(value, int):
        return value
    if value.lower() in ETH_P_NAMES:
        return ETH_P_NAMES[value.lower()]
    return int(value, 0)


def parse_handle(value: str | int) -> int:
    """``tc`` handle syntax ``maj:min`` (hex) as a 32-bit handle."""
    if isinstance(value, int):
        return value
    if value == "root":
        return 0xFFFF_FFFF
    major, _, minor = value.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def parent_name(parent: str | int) -> str:
    """A tc parent as the API spells it: ``ingress``, ``egress``, ``root`` or ``maj:min``
    (netlink values: ffff:fff2, ffff:fff3, ffff:0000 for the ingress qdisc, TC_H_ROOT)."""
    if isinstance(parent, str):
        return parent
    special = {0xFFFF_FFF2: "ingress", 0xFFFF_FFF3: "egress", 0xFFFF_0000: "ingress",
               0xFFFF_FFF1: "ingress", 0xFFFF_FFFF: "root"}
    if parent in special:
        return special[parent]
    return f"{parent >> 16:x}:{parent & 0xFFFF:x}"


class NetMaps(Mapping[str, "MapBase"]):
    """Maps of every object loaded through filters, by name; ``object:name`` when two
    objects define the same name (a bare name is then ambiguous and says so)."""

    def __init__(self) -> None:
        self._by_object: dict[str, dict[str, MapBase]] = {}

    def add(self, object_name: str, maps: Mapping[str, MapBase]) -> str:
        key, n = object_name, 1
        while key in self._by_object:
            n += 1
            key = f"{object_name}#{n}"
        self._by_object[key] = dict(maps)
        return key

    def _all(self) -> dict[str, list[tuple[str, MapBase]]]:
        out: dict[str, list[tuple[str, MapBase]]] = {}
        for obj, maps in self._by_object.items():
            for name, m in maps.items():
                out.setdefault(name, []).append((obj, m))
        return out

    def __getitem__(self, key: str) -> MapBase:
        obj, sep, name = key.rpartition(":")
        if sep and obj in self._by_object:
            return self._by_object[obj][name]
        found = self._all().get(key, [])
        if not found:
            raise KeyError(key)
        if len({id(m) for _, m in found}) > 1:
            names = ", ".join(f"{o}:{key}" for o, _ in found)
            raise NetError(f"map {key!r} is defined by several loaded objects; use one of "
                           f"{names}")
        return found[0][1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
