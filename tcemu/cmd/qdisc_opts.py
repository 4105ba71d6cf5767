"""The options after a qdisc or class kind (iproute2 ``tc/q_*.c`` ``parse_qopt`` and
``parse_copt``: ``q_clsact.c``, ``q_ingress.c``, ``q_fifo.c``, ``q_prio.c``, ``q_htb.c``,
``q_tbf.c``, ``q_netem.c``; iproute2 6.1).

Each parser consumes every remaining word, as tc's do, and raises the message tc prints
first.  Checks the kernel makes when the qdisc is created (``prio_tune``: 2 to 16 bands)
raise what tc then reports.
"""

from __future__ import annotations

from collections.abc import Callable

from tcemu.cmd import model as m
from tcemu.cmd.args import Args, matches
from tcemu.cmd.values import (
    PSCHED_TICK_NS,
    get_integer,
    get_percent_u32,
    get_rate64,
    get_size,
    get_time_tc,
    get_uint,
    usec_to_ticks,
)

__all__ = ["QDISC_PARSERS", "parse_htb_class"]

_EINVAL = "RTNETLINK answers: Invalid argument"


def _no_options(kind: str) -> Callable[[Args], m.QdiscOptions]:
    def parse(a: Args) -> m.QdiscOptions:
        if a:
            raise a.error(f'What is "{a.cur}"?')
        return m.ClsactQdisc() if kind == "clsact" else m.IngressQdisc()
    return parse


def _fifo_limit(a: Args, kind: str) -> int | None:
    """q_fifo.c: ``limit`` (bytes for bfifo, packets otherwise) read by ``get_size``."""
    limit: int | None = None
    while a:
        if a.cur == "limit":
            value = a.next_arg()
            limit = get_size(value)
            if limit is None:
                raise a.error(f'{kind}: Illegal value for "limit": "{value}"')
        else:
            raise a.error(f'{kind}: unknown parameter "{a.cur}"')
        a.advance()
    return limit


def _pfifo(a: Args) -> m.PfifoQdisc:
    return m.PfifoQdisc(limit=_fifo_limit(a, "pfifo"))


def _bfifo(a: Args) -> m.BfifoQdisc:
    return m.BfifoQdisc(limit=_fifo_limit(a, "bfifo"))


def _pfifo_head_drop(a: Args) -> m.PfifoHeadDropQdisc:
    return m.PfifoHeadDropQdisc(limit=_fifo_limit(a, "pfifo_head_drop"))


def _pfifo_fast(a: Args) -> m.PfifoFastQdisc:
    if a:
        raise a.error("qdisc 'pfifo_fast' does not support option parsing")
    return m.PfifoFastQdisc()


def _prio(a: Args) -> m.PrioQdisc:
    bands = 3
    priomap = list(m.PRIO_DEFAULT_PRIOMAP)
    pmap_mode = False
    idx = 0
    while a:
        w = a.cur
        if w == "bands":
            # After "priomap" tc prints its usage text and carries on; so does tcemu.
            value = a.next_arg()
            got = get_integer(value, 10)
            if got is None:
                raise a.error('Illegal "bands"')
            bands = got
        elif w == "priomap":
            if pmap_mode:
                raise a.error("Error: duplicate priomap")
            pmap_mode = True
        elif w == "multiqueue":
            raise a.unsupported('tcemu does not model "prio multiqueue"')
        elif not pmap_mode:
            raise a.error(f'What is "{w}"?')
        else:
            band = get_uint(w, 10)
            if band is None:
                raise a.error('Illegal "priomap" element')
            if band >= bands:
                raise a.error('"priomap" element is out of bands')
            if idx >= 16:
                raise a.error('"priomap" index > TC_PRIO_MAX=15')
            priomap[idx] = band
            idx += 1
        a.advance()
    # net/sched/sch_prio.c prio_tune(): 2..16 bands, every priomap entry a band.
    if not 2 <= bands <= 16 or any(b >= bands for b in priomap):
        raise a.error(_EINVAL)
    return m.PrioQdisc(bands=bands, priomap=tuple(priomap))


def _htb(a: Args) -> m.HtbQdisc:
    default, r2q = 0, 10
    while a:
        w = a.cur
        if matches(w, "r2q"):
            got = get_uint(a.next_arg(), 10)
            if got is None:
                raise a.error('Illegal "r2q"')
            r2q = got
        elif matches(w, "default"):
            got = get_uint(a.next_arg(), 16)
            if got is None:
                raise a.error('Illegal "default"')
            default = got
        elif w in ("debug", "direct_qlen", "offload") or matches(w, "debug"):
            raise a.unsupported(f'tcemu does not model htb option "{w}"')
        else:
            raise a.error(f'What is "{w}"?')
        a.advance()
    return m.HtbQdisc(default=default, r2q=r2q)


def parse_htb_class(a: Args) -> m.HtbClass:
    """``htb_parse_class_opt()``."""
    rate: int | None = None
    f: dict[str, int] = {}
    while a:
        w = a.cur
        if matches(w, "prio"):
            got = get_uint(a.next_arg(), 10)
            if got is None:
                raise a.error('Illegal "prio"')
            f["prio"] = got
        elif matches(w, "quantum"):
            got = get_uint(a.next_arg(), 10)
            if got is None:
                raise a.error('Illegal "quantum"')
            f["quantum"] = got
        elif matches(w, "mtu") or matches(w, "mpu"):
            raise a.unsupported(f'tcemu does not model htb class option "{w}"')
        elif any(matches(w, k) for k in ("burst", "buffer", "maxburst")):
            got = _size_cell(a.next_arg())
            if got is None:
                raise a.error('Illegal "burst"')
            f["burst"] = got
        elif any(matches(w, k) for k in ("cburst", "cbuffer", "cmaxburst")):
            got = _size_cell(a.next_arg())
            if got is None:
                raise a.error('Illegal "cburst"')
            f["cburst"] = got
        elif w == "ceil":
            if "ceil" in f:
                raise a.error('Double "ceil" spec')
            got = get_rate64(a.next_arg())
            if got is None:
                raise a.error('Illegal "ceil"')
            f["ceil"] = got
        elif w == "rate":
            if rate is not None:
                raise a.error('Double "rate" spec')
            rate = get_rate64(a.next_arg())
            if rate is None:
                raise a.error('Illegal "rate"')
        elif w in ("overhead", "linklayer", "offload"):
            raise a.unsupported(f'tcemu does not model htb class option "{w}"')
        else:
            raise a.error(f'What is "{w}"?')
        a.advance()
    if not rate:
        raise a.error('"rate" is required.')
    return m.HtbClass(rate=rate, ceil=f.get("ceil"), burst=f.get("burst"),
                      cburst=f.get("cburst"), prio=f.get("prio", 0),
                      quantum=f.get("quantum"))


def _size_cell(text: str) -> int | None:
    """``get_size_and_cell``: ``SIZE[/CELL]`` with CELL a power of two (kept: size only)."""
    size_text, slash, cell_text = text.partition("/")
    size = get_size(size_text)
    if size is None:
        return None
    if slash:
        cell = get_integer(cell_text, 0)
        if cell is None or cell <= 0 or cell & (cell - 1):
            return None
    return size


def _tbf(a: Args) -> m.TbfQdisc:
    f: dict[str, int] = {}

    def illegal(what: str, value: str) -> None:
        raise a.error(f'tbf: illegal value for "{what}": "{value}"')

    def once(key: str, shown: str) -> None:
        if key in f:
            raise a.error(f'tbf: duplicate "{shown}" specification')

    while a:
        w = a.cur
        if matches(w, "limit"):
            once("limit", "limit")
            value = a.next_arg()
            got = get_size(value)
            if got is None:
                illegal("limit", value)
            else:
                f["limit"] = got
        elif matches(w, "latency"):
            once("latency", "latency")
            value = a.next_arg()
            got = get_time_tc(value)
            if got is None:
                illegal("latency", value)
            else:
                f["latency"] = got
        elif matches(w, "burst") or w in ("buffer", "maxburst"):
            once("burst", "buffer/burst/maxburst")
            value = a.next_arg()
            got = _size_cell(value)
            if got is None:
                illegal("burst", value)
            else:
                f["burst"] = got
        elif w in ("mtu", "minburst"):
            once("mtu", "mtu/minburst")
            value = a.next_arg()
            got = _size_cell(value)
            if got is None:
                illegal("mtu", value)
            else:
                f["mtu"] = got
        elif w == "rate":
            once("rate", "rate")
            value = a.next_arg()
            if "%" in value:
                raise a.unsupported("tcemu does not model rates relative to link speed")
            got = get_rate64(value)
            if got is None:
                illegal("rate", value)
            else:
                f["rate"] = got
        elif matches(w, "peakrate"):
            once("peakrate", "peakrate")
            value = a.next_arg()
            got = get_rate64(value)
            if got is None:
                illegal("peakrate", value)
            else:
                f["peakrate"] = got
        elif w in ("mpu", "overhead", "linklayer"):
            raise a.unsupported(f'tcemu does not model tbf option "{w}"')
        else:
            raise a.error(f'tbf: unknown parameter "{w}"')
        a.advance()
    if not f.get("rate"):
        raise a.error('tbf: the "rate" parameter is mandatory.')
    if not f.get("burst"):
        raise a.error('tbf: the "burst" parameter is mandatory.')
    if f.get("peakrate") and not f.get("mtu"):
        raise a.error('tbf: when "peakrate" is specified, "mtu" must also be specified.')
    # tc tests the values, not their presence: "limit 0" is no limit.
    if not f.get("limit") and not f.get("latency"):
        raise a.error('tbf: either "limit" or "latency" is required.')
    if f.get("limit") and f.get("latency"):
        raise a.error('tbf: specifying both "latency" and "limit" is not allowed')
    return m.TbfQdisc(rate=f["rate"], burst=f["burst"], latency=f.get("latency") or None,
                      limit=f.get("limit") or None, peakrate=f.get("peakrate"),
                      mtu=f.get("mtu"))


def _next_is_number(a: Args) -> bool:
    """netem's ``NEXT_IS_NUMBER()``: the next word starts with a digit."""
    nxt = a.peek()
    return nxt is not None and nxt[:1].isdigit()


def _netem(a: Args) -> m.NetemQdisc:
    f: dict[str, int] = {}

    def percent(what: str) -> int:
        got = get_percent_u32(a.next_arg())
        if got is None:
            raise a.error(f'Illegal "{what}"')
        return got

    def ticks(what: str) -> int:
        """``get_ticks``: the delay as the kernel holds it, whole 64 ns psched ticks."""
        got = get_time_tc(a.next_arg())
        if got is None:
            raise a.error(f'Illegal "{what}"')
        usec = got // 1000
        n = usec_to_ticks(usec)
        if n is None:
            raise a.error(f"Illegal {usec} time (too large)")
        return n * PSCHED_TICK_NS

    while a:
        w = a.cur
        if matches(w, "limit"):
            got = get_size(a.next_arg())
            if got is None:
                raise a.error('Illegal "limit"')
            f["limit"] = got
        elif matches(w, "latency") or matches(w, "delay"):
            f["delay"] = ticks("latency")
            if _next_is_number(a):
                f["jitter"] = ticks("latency")
                if _next_is_number(a):
                    f["delay_corr"] = percent("latency")
        elif matches(w, "loss") or matches(w, "drop"):
            if f.get("loss"):
                raise a.error('Illegal "duplicate loss argument')
            nxt = a.next_arg()
            if not nxt[:1].isdigit():
                if nxt in ("state", "gemodel"):
                    raise a.unsupported(f'tcemu does not model netem "loss {nxt}"')
                if nxt != "random":
                    raise a.error(f"Unknown loss parameter: {nxt}")
            else:
                a.pos -= 1
            f["loss"] = percent("loss percent")
            if _next_is_number(a):
                f["loss_corr"] = percent("loss correllation")
        elif matches(w, "reorder"):
            f["reorder"] = percent("reorder")
            if _next_is_number(a):
                f["reorder_corr"] = percent("reorder")
        elif matches(w, "gap"):
            got = get_uint(a.next_arg(), 0)
            if got is None:
                raise a.error('Illegal "gap"')
            f["gap"] = got
        elif matches(w, "duplicate"):
            f["duplicate"] = percent("duplicate")
            if _next_is_number(a):
                f["duplicate_corr"] = percent("duplicate")
        elif matches(w, "rate"):
            value = a.next_arg()
            if "%" in value:
                raise a.unsupported("tcemu does not model rates relative to link speed")
            got = get_rate64(value)
            if got is None:
                raise a.error('Illegal "rate"')
            f["rate"] = got
            after = a.peek()
            if after is not None and (after[:1].isdigit() or after[:1] == "-"):
                raise a.unsupported("tcemu does not model netem rate overheads and cells")
        elif matches(w, "ecn") or matches(w, "corrupt") or matches(w, "distribution") \
                or matches(w, "slot"):
            raise a.unsupported(f'tcemu does not model netem "{w}"')
        else:
            raise a.error(f'What is "{w}"?')
        a.advance()
    if f.get("reorder"):
        if not f.get("delay"):
            raise a.error("reordering not possible without specifying some delay")
        f.setdefault("gap", 1)
        if f["gap"] == 0:
            f["gap"] = 1
    elif f.get("gap"):
        raise a.error("gap specified without reorder probability")
    return m.NetemQdisc(limit=f.get("limit", 1000), delay=f.get("delay", 0),
                        jitter=f.get("jitter", 0), delay_corr=f.get("delay_corr", 0),
                        loss=f.get("loss", 0), loss_corr=f.get("loss_corr", 0),
                        duplicate=f.get("duplicate", 0),
                        duplicate_corr=f.get("duplicate_corr", 0),
                        reorder=f.get("reorder", 0), reorder_corr=f.get("reorder_corr", 0),
                        gap=f.get("gap", 0), rate=f.get("rate"))


QDISC_PARSERS: dict[str, Callable[[Args], m.QdiscOptions]] = {
    "clsact": _no_options("clsact"),
    "ingress": _no_options("ingress"),
    "pfifo": _pfifo,
    "bfifo": _bfifo,
    "pfifo_head_drop": _pfifo_head_drop,
    "pfifo_fast": _pfifo_fast,
    "prio": _prio,
    "htb": _htb,
    "tbf": _tbf,
    "netem": _netem,
}
