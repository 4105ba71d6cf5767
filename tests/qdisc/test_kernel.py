"""Differential checks of htb and tbf against the running kernel, in a throwaway netns.

Only what does not depend on timing is compared: the class buckets, quantum and level
that ``tc class add`` and ``htb_change_class`` produce (read back through
``tc -s -d class show``: at rest, ``tokens``/``ctokens`` are the buffers in ticks), where
packets with a given ``skb->priority`` are classified (per-class packet counts and the
direct queue's count), and which frames tbf admits at a rate slow enough that no token
arrives while the test sends.  This kernel has no netem and no prio (CONFIG_NET_SCH_NETEM /
CONFIG_NET_SCH_PRIO unset), so those are checked against the kernel source only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tcemu.qdisc import create_qdisc
from tcemu.qdisc.htb import HtbQdisc
from tcemu.qdisc.tbf import TbfQdisc

from .helpers import drain, skb

pytestmark = pytest.mark.kernel
H = 0x1_0000
SENDER = Path(__file__).with_name("kernel_send.py")


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("TCEMU_REQUIRE_KERNEL") == "1":
        pytest.fail(f"TCEMU_REQUIRE_KERNEL=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def netns() -> Iterator[str]:
    if shutil.which("ip") is None or shutil.which("tc") is None:
        _unavailable("iproute2 (ip, tc) is not installed")
    name = f"tcemu-qdisc-{uuid.uuid4().hex[:8]}"
    try:
        _run("ip", "netns", "add", name)
    except (subprocess.CalledProcessError, PermissionError) as err:
        _unavailable(f"cannot create a network namespace: {err}")
    try:
        _run("ip", "-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        for dev in ("va", "vb"):
            _run("ip", "netns", "exec", name, "sysctl", "-qw",
                 f"net.ipv6.conf.{dev}.disable_ipv6=1")
            _run("ip", "-n", name, "link", "set", dev, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def tc(ns: str, command: str) -> str:
    return _run("ip", "netns", "exec", ns, "tc", *command.split())


def _num(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in {text!r}"
    return int(found[1])


def kernel_classes(ns: str) -> dict[int, dict[str, int]]:
    """classid -> quantum, level, prio, tokens, ctokens, packets sent and queued, from
    ``tc -s -d``."""
    out = tc(ns, "-s -d class show dev va")
    classes: dict[int, dict[str, int]] = {}
    for block in out.strip().split("\n\n"):
        head = re.match(r"class htb (\w+):(\w+)", block)
        assert head, block
        classid = int(head[1], 16) << 16 | int(head[2], 16)
        fields = {"level": _num(r"level (\d+)", block),
                  "tokens": _num(r"tokens: (-?\d+)", block),
                  "ctokens": _num(r"ctokens: (-?\d+)", block),
                  "packets": _num(r"Sent \d+ bytes (\d+) pkt", block),
                  "queued": _num(r"backlog \d+b (\d+)p", block)}
        quantum = re.search(r"quantum (\d+)", block)
        if quantum:
            fields["quantum"] = int(quantum[1])
        prio = re.search(r" prio (\d+)", block)
        if prio:
            fields["prio"] = int(prio[1])
        classes[classid] = fields
    return classes


CLASSES = [
    # (classid, parent, tc options, keyword arguments)
    (H | 1, H, "rate 1mbit", {"rate": 125_000}),
    (H | 0x10, H | 1, "rate 333kbit ceil 777kbit burst 3000",
     {"rate": 41_625, "ceil": 97_125, "burst": 3000}),
    (H | 0x20, H | 1, "rate 64kbit ceil 10mbit cburst 12345 prio 3",
     {"rate": 8000, "ceil": 1_250_000, "cburst": 12_345, "prio": 3}),
    (H | 0x30, H | 1, "rate 900mbit quantum 3000 prio 9",
     {"rate": 112_500_000, "quantum": 3000, "prio": 9}),
    (H | 0x40, H, "rate 7777bit burst 1 cburst 100000",
     {"rate": 972, "burst": 1, "cburst": 100_000}),
]


def _build(ns: str, default: int, r2q: int) -> HtbQdisc:
    tc(ns, f"qdisc add dev va root handle 1: htb default {default:x} r2q {r2q}")
    model = HtbQdisc(handle=H, default=default, r2q=r2q)
    for classid, parent, options, kw in CLASSES:
        parent_txt = "1:" if parent == H else f"1:{parent & 0xFFFF:x}"
        tc(ns, f"class add dev va parent {parent_txt} classid 1:{classid & 0xFFFF:x} htb "
               f"{options}")
        model.change_class(classid, parent=parent, **kw)
    return model


def test_htb_class_buckets_quantum_and_level_match_the_kernel(netns: str) -> None:
    model = _build(netns, default=0x10, r2q=7)
    kernel = kernel_classes(netns)
    assert set(kernel) == set(model.classes)
    for classid, cl in model.classes.items():
        got = kernel[classid]
        assert got["tokens"] == cl.xstats_tokens, hex(classid)
        assert got["ctokens"] == cl.xstats_ctokens, hex(classid)
        assert got["level"] == cl.level, hex(classid)
        if not cl.level:
            assert got["quantum"] == cl.quantum, hex(classid)
            assert got["prio"] == cl.prio, hex(classid)


@pytest.mark.parametrize("default", [0x20, 0x99, 0x1])
def test_htb_classification_by_priority_matches_the_kernel(netns: str, default: int) -> None:
    model = _build(netns, default=default, r2q=10)
    priorities = [H | 0x10, H | 0x30, H, 0, 7, H | 1, H | 0x40, 0x2_0010, H | 0x20, H | 0x10]
    _run("ip", "netns", "exec", netns, sys.executable, str(SENDER), "va",
         *(hex(p) for p in priorities))
    for p in priorities:
        model.enqueue(skb(1000, priority=p), 0)
    drain(model, 0)
    kernel = kernel_classes(netns)
    for classid, cl in model.classes.items():
        if not cl.level:       # the shaped ones may still wait in the kernel: count both
            got = kernel[classid]["packets"] + kernel[classid]["queued"]
            assert got == cl.stats.packets, hex(classid)
    direct = re.search(r"direct_packets_stat (\d+)", tc(netns, "-s qdisc show dev va"))
    assert direct is not None
    assert int(direct[1]) == model.direct_pkts


def qdisc_counters(ns: str) -> dict[str, int]:
    out = tc(ns, "-s qdisc show dev va")
    return {"bytes": _num(r"Sent (\d+) bytes", out), "packets": _num(r"bytes (\d+) pkt", out),
            "drops": _num(r"dropped (\d+)", out), "overlimits": _num(r"overlimits (\d+)", out),
            "backlog": _num(r"backlog (\d+)b", out), "qlen": _num(r"backlog \d+b (\d+)p", out)}


def test_tbf_admission_matches_the_kernel(netns: str) -> None:
    """Which frames tbf takes (max_size = burst, a byte limit in the inner bfifo) and what
    its counters say.  At 100 B/s the second frame waits 10 s, far longer than sending
    takes, so every later send finds the head packet waiting: each enqueue attempt,
    taken or not, is followed by one failed dequeue (an overlimit), as __dev_xmit_skb
    runs the qdisc after every enqueue."""
    tc(netns, "qdisc add dev va root handle 1: tbf rate 800bit burst 1000 limit 2500")
    sizes = [1001, 1000, 999, 1001, 1000, 1000, 500, 1200, 60, 1000]
    _run("ip", "netns", "exec", netns, sys.executable, str(SENDER), "va",
         *(f"0:{n}" for n in sizes))
    model = create_qdisc("tbf", H, params={"rate": 100, "burst": 1000, "limit": 2500})
    for n in sizes:
        model.enqueue(skb(n), 0)
        drain(model, 0, until=0)
    s = model.stats
    assert qdisc_counters(netns) == {
        "bytes": s.bytes, "packets": s.packets, "drops": s.drops,
        "overlimits": s.overlimits, "backlog": s.backlog, "qlen": s.qlen}


def _xstats(ns: str) -> dict[int, tuple[int, int, int]]:
    """classid -> (lended, borrowed, overlimits) from ``tc -s class show``."""
    out = tc(ns, "-s class show dev va")
    result = {}
    for block in out.strip().split("\n\n"):
        head = re.match(r"class htb (\w+):(\w+)", block)
        assert head, block
        classid = int(head[1], 16) << 16 | int(head[2], 16)
        result[classid] = (_num(r"lended: (\d+)", block), _num(r"borrowed: (\d+)", block),
                           _num(r"overlimits (\d+)", block))
    return result


def test_htb_borrowing_burst_matches_the_kernel(netns: str) -> None:
    """At 100 B/s nothing refills while the test sends, so what leaves at once is decided
    by the buckets alone: each leaf sends on its own tokens (into debt by one packet),
    then borrows from 1:1 while the parent's tokens last, the prio 0 leaf first."""
    tc(netns, "qdisc add dev va root handle 1: htb default 0")
    tc(netns, "class add dev va parent 1: classid 1:1 htb rate 800bit burst 6000 cburst 6000")
    tc(netns, "class add dev va parent 1:1 classid 1:10 htb rate 800bit ceil 8000bit "
              "burst 1000 cburst 5000 prio 0")
    tc(netns, "class add dev va parent 1:1 classid 1:20 htb rate 800bit ceil 8000bit "
              "burst 1000 cburst 5000 prio 1")
    model = HtbQdisc(handle=H)
    model.change_class(H | 1, rate=100, burst=6000, cburst=6000)
    for minor, prio in ((0x10, 0), (0x20, 1)):
        model.change_class(H | minor, parent=H | 1, rate=100, ceil=1000, burst=1000,
                           cburst=5000, prio=prio)
    priorities = [H | 0x20, H | 0x10] * 5
    _run("ip", "netns", "exec", netns, sys.executable, str(SENDER), "va",
         *(hex(p) for p in priorities))
    for p in priorities:
        model.enqueue(skb(1000, priority=p), 0)
        drain(model, 0, until=0)
    kernel = kernel_classes(netns)
    xstats = _xstats(netns)
    for classid, cl in model.classes.items():
        assert kernel[classid]["packets"] == cl.stats.packets, hex(classid)
        assert xstats[classid] == (cl.lends, cl.borrows, cl.stats.overlimits), hex(classid)
    assert qdisc_counters(netns)["overlimits"] == model.stats.overlimits
    assert qdisc_counters(netns)["qlen"] == model.stats.qlen


def _all_counters(ns: str) -> dict[str, dict[str, int]]:
    """qdisc kind -> its counters, from ``tc -s qdisc show`` (one qdisc of each kind)."""
    out = tc(ns, "-s qdisc show dev va")
    result = {}
    for block in re.split(r"\n(?=qdisc )", out.strip()):
        kind = block.split()[1]
        result[kind] = {
            "bytes": _num(r"Sent (\d+) bytes", block), "packets": _num(r"bytes (\d+) pkt", block),
            "drops": _num(r"dropped (\d+)", block), "backlog": _num(r"backlog (\d+)b", block),
            "qlen": _num(r"backlog \d+b (\d+)p", block)}
    return result


@pytest.mark.parametrize(("kind", "limit"), [
    ("pfifo", 3), ("bfifo", 2500), ("pfifo_head_drop", 2)])
def test_fifo_limits_under_a_slow_tbf_match_the_kernel(netns: str, kind: str,
                                                       limit: int) -> None:
    """A fifo grafted under a 100 B/s tbf fills up while the test sends: its limit, the
    drops counted at both levels and the backlog both report are the kernel's."""
    tc(netns, "qdisc add dev va root handle 1: tbf rate 800bit burst 1000 limit 100000")
    tc(netns, f"qdisc add dev va parent 1:1 handle 10: {kind} limit {limit}")
    sizes = [500, 600, 700, 800, 900, 1000, 400]
    _run("ip", "netns", "exec", netns, sys.executable, str(SENDER), "va",
         *(f"0:{n}" for n in sizes))
    model = create_qdisc("tbf", H, params={"rate": 100, "burst": 1000, "limit": 100_000})
    assert isinstance(model, TbfQdisc)
    child = create_qdisc(kind, 0xA_0000, params={"limit": limit})
    model.graft(H | 1, child)
    for n in sizes:
        model.enqueue(skb(n), 0)
        drain(model, 0, until=0)
    expected = {}
    for name, q in (("tbf", model), (kind, child)):
        s = q.stats
        expected[name] = {"bytes": s.bytes, "packets": s.packets, "drops": s.drops,
                          "backlog": s.backlog, "qlen": s.qlen}
    assert _all_counters(netns) == expected
