"""``ip`` and ``tc`` command syntax: command lines → typed, validated command objects.

Users paste what they know (``tc filter add dev veth0 ingress bpf da obj prog.o sec
tc``); :func:`parse` turns it into a frozen dataclass from :mod:`tcemu.cmd.model`
(``FilterAdd``, ``QdiscAdd``, ``LinkAdd``, ...) in kernel units, or raises
:class:`CommandError` carrying the first line iproute2 6.1 prints for the same mistake
(:class:`UnsupportedCommandError` for well-formed syntax tcemu does not model).
:func:`render` writes a command back as canonical text iproute2 accepts, so
``parse(render(cmd)) == cmd``.  Parsing needs no network and no file.

What the objects mean, where it is not obvious:

* ``ns`` on every command is the namespace it runs in (``ip -n``, ``tc -n``,
  ``ip netns exec NS ip|tc ...``); ``netns`` on links is where a device goes.
* ``clsact``/``ingress`` qdiscs are always ``parent=TC_H_INGRESS, handle=0xffff0000``.
* ``FilterAdd.prio`` 0 lets the kernel pick; ``protocol`` defaults to ETH_P_ALL;
  ``FilterDel`` fields left None are wildcards.
* ``fd N`` after ``bpf`` is a pinned path, exactly as iproute2 reads it.
* ``stolen`` is not a verdict keyword in tc 6.1 (only a mirred redirect's default).
* netem ``delay``/``jitter`` are whole 64 ns psched ticks (``1us`` is 960 ns); tbf keeps
  ``latency`` (ns) or ``limit`` (bytes) as given; ``TbfQdisc.limit_bytes`` is the byte
  limit tc sends the kernel (checked against ``tc -r``).

Modules: ``args`` (words, cursor, errors), ``values`` (numbers, rates, sizes, times,
handles, protocols, addresses), ``ip``, ``ip_link``, ``tc``, ``qdisc_opts``, ``actions``,
``model``, ``render``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcemu.cmd import model
from tcemu.cmd.args import CommandError, UnsupportedCommandError, split_words
from tcemu.cmd.ip import parse_ip
from tcemu.cmd.model import Command
from tcemu.cmd.render import render
from tcemu.cmd.tc import parse_tc

__all__ = [
    "Command",
    "CommandError",
    "UnsupportedCommandError",
    "model",
    "parse",
    "parse_ip",
    "parse_tc",
    "render",
]


def parse(line: str | Sequence[str], *, ns: str | None = None) -> Command:
    """Parse a full command line that starts with ``ip`` or ``tc``."""
    words = split_words(line)
    if words[:1] == ["ip"]:
        return parse_ip(words[1:], ns=ns)
    if words[:1] == ["tc"]:
        return parse_tc(words[1:], ns=ns)
    first = words[0] if words else ""
    raise CommandError(f'tcemu runs "ip" and "tc" command lines, not "{first}"',
                       words=words, index=0 if words else None)
