"""Scapy layer expressions from scenario files, parsed without ``eval``.

A scenario may describe a frame the way people write it at a Scapy prompt::

    Ether(dst="02:00:00:00:00:02")/IP(dst="10.0.0.2", ttl=7)/UDP(dport=53)/b"payload"

The text is parsed with :mod:`ast` and only this shape is accepted: layer constructors
from :data:`LAYERS` joined by ``/``, keyword arguments whose values are literals (numbers,
strings, bytes, lists or tuples of them, ``True``/``False``/``None``) or nested layer
constructors (``DNS(qd=DNSQR(qname="a.example"))``), and a trailing ``str``/``bytes``
literal as the payload.  Everything else (names, attribute access, other calls,
comprehensions, operators other than ``/`` and unary minus) is rejected with a
:class:`PacketExprError` naming the column, so a scenario file can never run code.

Scapy fills unset addresses from the host's routing and ARP tables, which would make a
frame depend on the machine.  :func:`build_packet` therefore sets every unset
``Ether.src``/``Ether.dst``/``IP.src``/``IPv6.src`` from ``defaults`` (the sending
device's addresses), falling back to fixed values, so a frame is the same everywhere.
A packet that starts at the network layer (``IP(...)/UDP(...)``, ``IPv6``, ``ARP``) is
sent the way Scapy's ``send()`` sends it: in an Ethernet header with those addresses.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from typing import Any

from tcemu.errors import TcemuError

__all__ = ["LAYERS", "PacketExprError", "build_packet", "dissect", "layer_names",
           "parse_packet"]

# name -> (scapy module, class name).  Imported lazily: scapy costs ~0.5 s to import.
LAYERS: dict[str, tuple[str, str]] = {
    **{n: ("scapy.layers.l2", n) for n in ("Ether", "Dot1Q", "Dot1AD", "ARP", "LLC", "SNAP")},
    **{n: ("scapy.layers.inet", n) for n in (
        "IP", "UDP", "TCP", "ICMP", "IPOption", "IPOption_NOP", "IPOption_EOL",
        "IPOption_Router_Alert")},
    **{n: ("scapy.layers.inet6", n) for n in (
        "IPv6", "ICMPv6EchoRequest", "ICMPv6EchoReply", "IPv6ExtHdrHopByHop",
        "IPv6ExtHdrRouting", "IPv6ExtHdrFragment", "ICMPv6ND_NS", "ICMPv6ND_NA")},
    "VXLAN": ("scapy.layers.vxlan", "VXLAN"),
    "GRE": ("scapy.layers.l2", "GRE"),
    "DNS": ("scapy.layers.dns", "DNS"),
    "DNSQR": ("scapy.layers.dns", "DNSQR"),
    "Raw": ("scapy.packet", "Raw"),
    "Padding": ("scapy.packet", "Padding"),
}

_FALLBACK: dict[str, str] = {
    "Ether.src": "02:00:00:00:00:01",
    "Ether.dst": "02:00:00:00:00:02",
    "IP.src": "10.0.0.1",
    "IPv6.src": "fd00::1",
}


class PacketExprError(TcemuError):
    """A Scapy layer expression that tcemu will not build."""

    def __init__(self, message: str, *, text: str, col: int = 0) -> None:
        self.text = text
        self.col = col
        where = f" at column {col + 1}" if col >= 0 else ""
        super().__init__(f"packet expression{where}: {message}: {text!r}")


def layer_names() -> list[str]:
    return sorted(LAYERS)


@functools.cache
def _layer_class(name: str) -> Any:
    import importlib

    module, cls = LAYERS[name]
    return getattr(importlib.import_module(module), cls)


def dissect(data: bytes) -> Any:
    """``Ether(data)`` with every known layer's module imported first: Scapy binds a
    payload to a layer class only once the class's module has been imported."""
    for name in LAYERS:
        _layer_class(name)
    return _layer_class("Ether")(data)


# A parsed expression: a list of (layer name, kwargs) with payload bytes as ("Raw", {...}).
LayerSpec = tuple[str, dict[str, Any]]


def parse_packet(text: str) -> list[LayerSpec]:
    """Check ``text`` and return its layers, outermost first (nothing is built yet)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        layers: list[LayerSpec] = []
        _flatten(tree.body, text, layers)
    except SyntaxError as err:
        raise PacketExprError(f"not a layer expression ({err.msg})", text=text,
                              col=(err.offset or 1) - 1) from err
    except (RecursionError, MemoryError) as err:  # the parser recurses per operator
        raise PacketExprError("expression nested too deeply (thousands of layers or "
                              "operators)", text=text[:80], col=-1) from err
    return layers


def _flatten(node: ast.expr, text: str, out: list[LayerSpec]) -> None:
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, ast.Div):
            raise PacketExprError("layers are joined with '/'", text=text, col=node.col_offset)
        _flatten(node.left, text, out)
        _flatten(node.right, text, out)
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        load = node.value.encode("latin-1") if isinstance(node.value, str) else node.value
        out.append(("Raw", {"load": load}))
        return
    out.append(_layer(node, text))


def _layer(node: ast.expr, text: str) -> LayerSpec:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise PacketExprError("expected a layer such as IP(...)", text=text,
                              col=node.col_offset)
    name = node.func.id
    if name not in LAYERS:
        raise PacketExprError(f"unknown layer {name!r} (known: {', '.join(layer_names())})",
                              text=text, col=node.col_offset)
    if node.args:
        raise PacketExprError(f"{name}() takes keyword arguments only", text=text,
                              col=node.args[0].col_offset)
    kwargs: dict[str, Any] = {}
    fields = _field_names(name)
    for kw in node.keywords:
        if kw.arg is None:
            raise PacketExprError("'**' is not allowed", text=text, col=kw.value.col_offset)
        if kw.arg not in fields:
            raise PacketExprError(f"{name} has no field {kw.arg!r}", text=text,
                                  col=kw.col_offset)
        kwargs[kw.arg] = _value(kw.value, text)
        if (name, kw.arg) in _ADDRESS_FIELDS:
            _check_address(kwargs[kw.arg], f"{name}.{kw.arg}", text, kw.col_offset)
    return name, kwargs


# Fields Scapy would resolve through DNS when given a name: only literals are allowed, so
# a frame never depends on the machine's resolver.
_ADDRESS_FIELDS = frozenset({("IP", "src"), ("IP", "dst"), ("IPv6", "src"), ("IPv6", "dst"),
                             ("ARP", "psrc"), ("ARP", "pdst")})


def _check_address(value: Any, field: str, text: str, col: int) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        raise PacketExprError(f"{field} must be a literal IP address, not {value!r}",
                              text=text, col=col) from None


def _field_names(name: str) -> frozenset[str]:
    return frozenset(f.name for f in _layer_class(name).fields_desc)


def _value(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(
            node.value, bool | int | float | str | bytes)):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)):
        return -node.operand.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_value(item, text) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Call):
        return _layer(node, text)
    raise PacketExprError("field values must be literals or layers", text=text,
                          col=node.col_offset)


def _instantiate(spec: LayerSpec) -> Any:
    name, kwargs = spec
    return _layer_class(name)(**{k: _built(v) for k, v in kwargs.items()})


def _built(value: Any) -> Any:
    if _is_spec(value):
        return _instantiate(value)
    if isinstance(value, list):
        return [_built(item) for item in value]
    return value


# Layers that start a packet at the network layer; a frame is built as Ether()/packet.
NETWORK_FIRST = frozenset({"IP", "IPv6", "ARP"})


def _is_spec(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], dict))


def build_packet(text: str, defaults: Mapping[str, str] | None = None) -> bytes:
    """Build the frame ``text`` describes, with unset addresses from ``defaults``."""
    layers = parse_packet(text)
    if layers and layers[0][0] in NETWORK_FIRST:
        # Scapy's send() of an L3 packet: tcemu's devices are Ethernet devices
        layers.insert(0, ("Ether", {}))
    merged = {**_FALLBACK, **(defaults or {})}
    packet: Any = None
    for name, kwargs in layers:
        for key in ("src", "dst"):
            default = merged.get(f"{name}.{key}")
            if default is not None and key not in kwargs:
                kwargs[key] = default
        try:
            layer = _instantiate((name, kwargs))
            packet = layer if packet is None else packet / layer
        except PacketExprError:
            raise
        except Exception as err:  # scapy checks field values as it sets them (OSError...)
            raise PacketExprError(f"scapy cannot build {name} ({err})", text=text,
                                  col=-1) from err
    try:
        return bytes(packet)
    except Exception as err:  # scapy raises anything from struct.error to TypeError
        raise PacketExprError(f"scapy cannot build it ({err})", text=text, col=-1) from err
