"""``tc`` command lines → typed commands (iproute2 ``tc/tc.c``, ``tc/tc_qdisc.c``,
``tc/tc_class.c``, ``tc/tc_filter.c``, ``tc/f_bpf.c``, ``tc/f_matchall.c``; 6.1).

Parents read as tc reads them: ``root``, ``ingress``/``clsact`` (qdiscs: parent
``ffff:fff1``, handle ``ffff:``), ``ingress``/``egress`` (filters: ``ffff:fff2`` and
``ffff:fff3``), ``parent X:Y`` in hex.  Device existence is not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcemu.cmd import model as m
from tcemu.cmd.actions import parse_action, parse_bpf_prog
from tcemu.cmd.args import Args, duparg, invarg, matches, split_words
from tcemu.cmd.qdisc_opts import QDISC_PARSERS, parse_htb_class
from tcemu.cmd.values import get_classid, get_qdisc_handle, get_uint, ll_proto, strtoul

__all__ = ["parse_tc", "parse_tc_words"]

# tc/tc.c cmds[], in order.
_OBJECTS = ("qdisc", "class", "filter", "chain", "actions", "monitor", "exec", "help")
_OPTIONS = (("-stats", False), ("-details", False), ("-raw", False), ("-pretty", False),
            ("-graph", False), ("-Version", False), ("-iec", False), ("-help", False),
            ("-force", False), ("-batch", True), ("-netns", True), ("-Numeric", False),
            ("-names", False), ("-cf", True), ("-timestamp", False), ("-tshort", False),
            ("-json", False), ("-color", False), ("-echo", False))

# Kernel qdiscs and classifiers tcemu does not model.
_KNOWN_QDISCS = frozenset({"fq", "fq_codel", "codel", "sfq", "red", "choke", "cake",
                           "hfsc", "drr", "qfq", "ets", "mq", "mqprio", "multiq", "pie",
                           "fq_pie", "hhf", "sfb", "skbprio", "taprio", "cbs", "etf",
                           "plug", "gred", "noqueue"})
_CLASSFUL = frozenset({"prio", "hfsc", "drr", "qfq", "ets", "mqprio", "multiq", "cake",
                       "fq_codel", "sfq", "sfb", "mq", "taprio", "atm", "cbq", "dsmark"})
_KNOWN_FILTERS = frozenset({"u32", "flower", "basic", "fw", "route", "cgroup", "flow",
                            "tcindex", "rsvp", "rsvp6"})


def parse_tc(line: str | Sequence[str], *, ns: str | None = None) -> m.Command:
    """Parse one ``tc`` command line (with or without the leading ``tc``)."""
    words = split_words(line)
    if words[:1] == ["tc"]:
        words = words[1:]
    return parse_tc_words(words, ns=ns)


def parse_tc_words(words: Sequence[str], *, ns: str | None = None) -> m.Command:
    a = Args(words, tool="tc")
    stats = False
    while a and a.cur.startswith("-") and a.cur != "-":
        opt = a.cur
        if opt.startswith("--"):
            opt = opt[1:]
        if opt == "-n":
            opt = "-netns"
        hit = next((o for o in _OPTIONS if matches(opt, o[0])), None)
        if hit is None:
            raise a.error(f'Option "{a.cur}" is unknown, try "tc -help".')
        name, takes_value = hit
        if name in ("-batch", "-Version", "-help", "-force", "-cf"):
            raise a.unsupported(f'tcemu does not model "tc {name}"')
        if takes_value:
            value = a.next_arg()
            if name == "-netns":
                ns = value
        elif name == "-stats":
            stats = True
        a.advance()
    if not a:
        raise a.error("Usage: tc [ OPTIONS ] OBJECT { COMMAND | help }")
    word = a.take()
    obj = next((o for o in _OBJECTS if matches(word, o)), None)
    if obj is None:
        raise a.error(f'Object "{word}" is unknown, try "tc help".', at=a.pos - 1)
    if obj == "qdisc":
        return _qdisc(a, ns, stats)
    if obj == "class":
        return _class(a, ns, stats)
    if obj == "filter":
        return _filter(a, ns, stats)
    raise a.unsupported(f'tcemu does not model "tc {obj}"')


# do_qdisc(), do_class(), do_filter(): their verbs in order (abbreviations match the first).
_VERBS = {
    "qdisc": ("add", "change", "replace", "link", "delete", "list", "show", "lst", "help"),
    "class": ("add", "change", "replace", "delete", "list", "show", "lst", "help"),
    "filter": ("add", "change", "replace", "delete", "list", "show", "lst", "get", "help"),
}


def _verb(a: Args, obj: str) -> str:
    """``add``/``change``/``replace``/``delete``/``show``, matched as tc matches them."""
    if not a:
        return "show"
    w = a.take()
    verb = next((v for v in _VERBS[obj] if matches(w, v)), None)
    if verb in ("add", "change", "replace", "delete"):
        return verb
    if verb in ("list", "show", "lst"):
        return "show"
    if verb in ("link", "get"):
        raise a.unsupported(f'tcemu does not model "tc {obj} {verb}"')
    if verb == "help":
        raise a.error(f"Usage: tc {obj} [ add | del | change | replace | show ] ...")
    raise a.error(f'Command "{w}" is unknown, try "tc {obj} help".', at=a.pos - 1)


def _mode(verb: str) -> m.Mode:
    return "replace" if verb == "replace" else "change" if verb == "change" else "add"


def _show(a: Args, obj: str, ns: str | None, stats: bool) -> m.TcShow:
    dev: str | None = None
    parent: int | None = None
    while a:
        w = a.cur
        if w == "dev":
            dev = a.next_arg()
        elif w == "root":
            parent = m.TC_H_ROOT
        elif w == "ingress":
            parent = ((m.TC_H_CLSACT & 0xFFFF0000) | m.TC_H_MIN_INGRESS
                      if obj == "filter" else m.TC_H_INGRESS)
        elif w == "egress" and obj == "filter":
            parent = (m.TC_H_CLSACT & 0xFFFF0000) | m.TC_H_MIN_EGRESS
        elif w == "parent":
            value = a.next_arg()
            parent = get_classid(value)
            if parent is None:
                raise a.error(invarg("invalid parent ID", value))
        else:
            raise a.unsupported(f'tcemu filters "tc {obj} show" by dev and parent only')
        a.advance()
    return m.TcShow(ns=ns, object=obj, dev=dev, parent=parent,  # type: ignore[arg-type]
                    stats=stats)


# ---------------------------------------------------------------------------------
# tc qdisc
# ---------------------------------------------------------------------------------

def _qdisc(a: Args, ns: str | None, stats: bool) -> m.Command:
    verb = _verb(a, "qdisc")
    if verb == "show":
        return _show(a, "qdisc", ns, stats)
    dev: str | None = None
    handle: int | None = None
    parent: int | None = None
    kind: str | None = None
    while a:
        w = a.cur
        if w == "dev":
            value = a.next_arg()
            if dev is not None:
                raise a.error(duparg("dev", value))
            dev = value
        elif w == "handle":
            if handle is not None:
                raise a.error(duparg("handle", a.cur))
            value = a.next_arg()
            handle = get_qdisc_handle(value)
            if handle is None:
                raise a.error(invarg("invalid qdisc ID", value))
        elif w == "root":
            if parent is not None:
                raise a.error('Error: "root" is duplicate parent ID')
            parent = m.TC_H_ROOT
        elif w in ("ingress", "clsact"):
            if parent is not None:
                raise a.error(f'Error: "{w}" is a duplicate parent ID')
            parent = m.TC_H_INGRESS
            handle = 0xFFFF0000
            kind = w
            a.advance()
            break
        elif w == "parent":
            value = a.next_arg()
            if parent is not None:
                raise a.error(duparg("parent", value))
            parent = get_classid(value)
            if parent is None:
                raise a.error(invarg("invalid parent ID", value))
        elif matches(w, "estimator") or w in ("stab", "ingress_block", "egress_block"):
            raise a.unsupported(f'tcemu does not model "{w}" in "tc qdisc"')
        elif matches(w, "help"):
            raise a.error("Usage: tc qdisc [ add | del | replace | change | show ] dev STRING")
        else:
            kind = w
            a.advance()
            break
        a.advance()
    if verb == "delete":
        if a:
            raise a.unsupported('tcemu deletes qdiscs by dev, parent, handle and kind')
        if dev is None:
            raise a.error("RTNETLINK answers: No such device")
        return m.QdiscDel(ns=ns, dev=dev, parent=parent, handle=handle, kind=kind)
    if kind is None:
        raise a.error("Error: Handle cannot be zero." if parent is None
                      else "Error: Specified qdisc kind is unknown.")
    parser = QDISC_PARSERS.get(kind)
    if parser is None:
        if kind in _KNOWN_QDISCS:
            raise a.unsupported(f'tcemu does not model the "{kind}" qdisc')
        if a:
            raise a.error(f'Unknown qdisc "{kind}", hence option "{a.cur}" is unparsable')
        raise a.error("Error: Specified qdisc kind is unknown.")
    options = parser(a)
    if dev is None:
        raise a.error("RTNETLINK answers: No such device")
    if parent is None:
        # net/sched/sch_api.c tc_modify_qdisc(): no parent names no place to graft.
        raise a.error("Error: Handle cannot be zero." if handle is None
                      else "RTNETLINK answers: Invalid argument")
    if kind in ("clsact", "ingress") and parent != m.TC_H_INGRESS:
        raise a.error("RTNETLINK answers: Invalid argument")
    return m.QdiscAdd(ns=ns, dev=dev, parent=parent, handle=handle, qdisc=options,
                      mode=_mode(verb))


# ---------------------------------------------------------------------------------
# tc class
# ---------------------------------------------------------------------------------

def _class(a: Args, ns: str | None, stats: bool) -> m.Command:
    verb = _verb(a, "class")
    if verb == "show":
        return _show(a, "class", ns, stats)
    dev: str | None = None
    parent: int | None = None
    classid: int | None = None
    kind: str | None = None
    while a:
        w = a.cur
        if w == "dev":
            value = a.next_arg()
            if dev is not None:
                raise a.error(duparg("dev", value))
            dev = value
        elif w == "classid":
            value = a.next_arg()
            if classid is not None:
                raise a.error(duparg("classid", value))
            classid = get_classid(value)
            if classid is None:
                raise a.error(invarg("invalid class ID", value))
        elif w == "root":
            if parent is not None:
                raise a.error('Error: "root" is duplicate parent ID')
            parent = m.TC_H_ROOT
        elif w == "parent":
            value = a.next_arg()
            if parent is not None:
                raise a.error(duparg("parent", value))
            parent = get_classid(value)
            if parent is None:
                raise a.error(invarg("invalid parent ID", value))
        elif matches(w, "estimator"):
            raise a.unsupported('tcemu does not model "estimator" in "tc class"')
        elif matches(w, "help"):
            raise a.error("Usage: tc class [ add | del | change | replace | show ] dev STRING")
        else:
            kind = w
            a.advance()
            break
        a.advance()
    if dev is None:
        raise a.error("RTNETLINK answers: No such device")
    if verb == "delete":
        if kind is not None or a:
            raise a.unsupported("tcemu deletes classes by dev, parent and classid")
        if classid is None:
            raise a.error("RTNETLINK answers: Invalid argument")
        return m.ClassDel(ns=ns, dev=dev, classid=classid, parent=parent)
    if kind is None:
        raise a.error("RTNETLINK answers: Invalid argument")
    if kind != "htb":
        if kind in _CLASSFUL:
            raise a.unsupported(f'tcemu does not model "{kind}" classes')
        # tc_class.c: a kind without a parse_copt (unknown ones too) is classless.
        raise a.error(f'Error: Qdisc "{kind}" is classless.')
    options = parse_htb_class(a)
    if parent is None or classid is None:
        raise a.error("RTNETLINK answers: Invalid argument")
    return m.ClassAdd(ns=ns, dev=dev, parent=parent, classid=classid, options=options,
                      mode=_mode(verb))


# ---------------------------------------------------------------------------------
# tc filter
# ---------------------------------------------------------------------------------

INGRESS_PARENT = (m.TC_H_CLSACT & 0xFFFF0000) | m.TC_H_MIN_INGRESS
EGRESS_PARENT = (m.TC_H_CLSACT & 0xFFFF0000) | m.TC_H_MIN_EGRESS


def _filter(a: Args, ns: str | None, stats: bool) -> m.Command:
    verb = _verb(a, "filter")
    if verb == "show":
        return _show(a, "filter", ns, stats)
    dev: str | None = None
    parent: int | None = None
    protocol: int | None = None
    prio: int | None = None
    chain: int | None = None
    fhandle: str | None = None
    kind: str | None = None
    while a:
        w = a.cur
        if w == "dev":
            value = a.next_arg()
            if dev is not None:
                raise a.error(duparg("dev", value))
            dev = value
        elif w in ("root", "ingress", "egress"):
            if parent is not None:
                raise a.error(f'Error: "{w}" is duplicate parent ID')
            parent = {"root": m.TC_H_ROOT, "ingress": INGRESS_PARENT,
                      "egress": EGRESS_PARENT}[w]
        elif w == "parent":
            value = a.next_arg()
            if parent is not None:
                raise a.error(duparg("parent", value))
            parent = get_classid(value)
            if parent is None:
                raise a.error(invarg("Invalid parent ID", value))
        elif w == "handle":
            value = a.next_arg()
            if fhandle is not None:
                raise a.error(duparg("handle", value))
            fhandle = value
        elif matches(w, "preference") or matches(w, "priority"):
            value = a.next_arg()
            if prio is not None:
                raise a.error(duparg("priority", value))
            prio = get_uint(value, 0)
            if prio is None or prio > 0xFFFF:
                raise a.error(invarg("invalid priority value", value))
        elif matches(w, "protocol"):
            value = a.next_arg()
            if protocol is not None:
                raise a.error(duparg("protocol", value))
            protocol = ll_proto(value)
            if protocol is None:
                raise a.error(invarg("invalid protocol", value))
        elif matches(w, "chain"):
            value = a.next_arg()
            if chain is not None:
                raise a.error(duparg("chain", value))
            chain = get_uint(value, 0)
            if chain is None:
                raise a.error(invarg("invalid chain index value", value))
        elif matches(w, "estimator") or w == "block":
            raise a.unsupported(f'tcemu does not model "{w}" in "tc filter"')
        elif matches(w, "help"):
            raise a.error("Usage: tc filter [ add | del | change | replace | show ] "
                          "[ dev STRING ]")
        else:
            kind = w
            a.advance()
            break
        a.advance()
    if verb == "delete":
        return _filter_del(a, ns, dev, parent, protocol, prio, chain, fhandle, kind)
    if kind is None:
        if fhandle is not None:
            raise a.error('Must specify filter type when using "handle"')
        raise a.error("Error: Filter kind and protocol must be specified.")
    handle = None
    classifier: m.Classifier
    if kind == "bpf":
        handle, classifier = _bpf_filter(a, fhandle)
    elif kind == "matchall":
        handle, classifier = _matchall(a, fhandle)
    elif kind in _KNOWN_FILTERS:
        raise a.unsupported(f'tcemu does not model the "{kind}" classifier')
    elif a:
        raise a.error(f'Unknown filter "{kind}", hence option "{a.cur}" is unparsable')
    else:
        raise a.error("Error: TC classifier not found.")
    if dev is None:
        raise a.error("RTNETLINK answers: No such device")
    if parent is None:
        raise a.error("RTNETLINK answers: Invalid argument")
    return m.FilterAdd(ns=ns, dev=dev, parent=parent, filter=classifier,
                       protocol=m.ETH_P_ALL if protocol is None else protocol,
                       prio=prio or 0, handle=handle, chain=chain, mode=_mode(verb))


def _filter_del(a: Args, ns: str | None, dev: str | None, parent: int | None,
                protocol: int | None, prio: int | None, chain: int | None,
                fhandle: str | None, kind: str | None) -> m.FilterDel:
    if a:
        raise a.unsupported("tcemu deletes filters by dev, parent, protocol, pref, "
                            "handle, chain and kind")
    if fhandle is not None and kind is None:
        raise a.error('Must specify filter type when using "handle"')
    handle = None
    if fhandle is not None:
        handle = get_uint(fhandle, 0)
        if handle is None:
            raise a.error('Illegal "handle"')
    if dev is None:
        raise a.error("RTNETLINK answers: No such device")
    return m.FilterDel(ns=ns, dev=dev, parent=parent, protocol=protocol, prio=prio,
                       handle=handle, chain=chain, kind=kind)


def _flag_or_class(a: Args, flags: dict[str, object], *, what: str) -> bool:
    """Options both classifiers share: ``classid``/``flowid``, ``skip_sw``/``skip_hw``,
    ``action ...``.  Returns False when the word is none of them."""
    w = a.cur
    if matches(w, "classid") or matches(w, "flowid"):
        value = a.next_arg()
        got = get_classid(value)
        if got is None:
            raise a.error('Illegal "classid"')
        flags["classid"] = got
    elif matches(w, "skip_hw"):
        flags["skip_hw"] = True
    elif matches(w, "skip_sw"):
        flags["skip_sw"] = True
    elif matches(w, "action"):
        a.next_arg()
        flags["actions"] = tuple(flags.get("actions", ())) + parse_action(a)  # type: ignore[arg-type]
        return True
    elif matches(w, "police"):
        raise a.unsupported(f'tcemu does not model "police" in "{what}"')
    else:
        return False
    a.advance()
    return True


def _bpf_filter(a: Args, fhandle: str | None) -> tuple[int | None, m.BpfFilter]:
    handle = None
    if fhandle is not None:
        handle = get_uint(fhandle, 0)
        if handle is None:
            raise a.error('Illegal "handle"')
    prog: m.BpfProg | None = None
    flags: dict[str, object] = {}
    da = False
    while a:
        w = a.cur
        if matches(w, "run"):
            a.next_arg()
            if prog is not None:
                raise a.error(duparg("run", a.cur))
            prog = _prog(a)
            continue
        if _flag_or_class(a, flags, what="bpf"):
            continue
        if matches(w, "direct-action") or matches(w, "da"):
            da = True
            a.advance()
        elif matches(w, "help"):
            raise a.error("Usage: ... bpf ...")
        elif prog is None:
            prog = _prog(a)
        else:
            raise a.error(f'What is "{w}"?')
    if prog is None:
        # cls_bpf_set_parms(): neither TCA_BPF_OPS nor TCA_BPF_FD.
        raise a.error("RTNETLINK answers: Invalid argument")
    return handle, m.BpfFilter(prog=prog, direct_action=da, **flags)  # type: ignore[arg-type]


def _prog(a: Args) -> m.BpfProg:
    w = a.cur
    prog = parse_bpf_prog(a, default_section="classifier")
    if prog is None:
        raise a.error(f'What mode is "{w}"?')
    return prog


def _matchall(a: Args, fhandle: str | None) -> tuple[int | None, m.MatchallFilter]:
    """``matchall_parse_opt()``: its handle is read with ``strtol`` (junk after the number
    is ignored), ``flowid`` and the skip flags are exact words, and a skip flag must be
    followed by another word (tc reads past it with NEXT_ARG)."""
    handle = None
    if fhandle is not None:
        number, _used, erange = strtoul(fhandle, 0)
        if erange or number in (0x7FFF_FFFF_FFFF_FFFF, 1 << 63):
            raise a.error(f'Illegal handle "{fhandle}", must be numeric.')
        handle = number & 0xFFFF_FFFF
    flags: dict[str, object] = {}
    while a:
        w = a.cur
        if matches(w, "classid") or w == "flowid":
            value = a.next_arg()
            got = get_classid(value)
            if got is None:
                raise a.error('Illegal "classid"')
            flags["classid"] = got
        elif matches(w, "action"):
            a.next_arg()
            flags["actions"] = tuple(flags.get("actions", ())) + parse_action(a)  # type: ignore[arg-type]
            continue
        elif w in ("skip_hw", "skip_sw"):
            a.next_arg()
            flags[w] = True
            continue
        elif w == "help":
            raise a.error("Usage: ... matchall [skip_sw | skip_hw]")
        else:
            raise a.error(f'What is "{w}"?')
        a.advance()
    if flags.get("skip_hw") and flags.get("skip_sw"):
        raise a.error("skip_hw and skip_sw are mutually exclusive")
    return handle, m.MatchallFilter(**flags)  # type: ignore[arg-type]


