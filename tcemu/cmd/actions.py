"""tc actions and BPF program sources (iproute2 ``tc/m_action.c`` ``parse_action``,
``tc/tc_util.c`` ``parse_action_control``, ``tc/m_gact.c``, ``tc/m_bpf.c``,
``tc/m_mirred.c``, ``tc/m_vlan.c``, ``tc/m_tunnel_key.c``, ``tc/m_skbedit.c``,
``lib/bpf_legacy.c`` ``bpf_parse``; iproute2 6.1).

``parse_action`` reads an action list the way tc does: a word that is a verdict
(``drop``, ``pass``, ``goto chain 1``...) is a ``gact``; an unknown kind is handed to
``gact`` as well, which then names it in ``Bad action type X``; each action may end
with a control verb (``action bpf obj x.o sec y ok``).
"""

from __future__ import annotations

from collections.abc import Callable

from tcemu.cmd import model as m
from tcemu.cmd.args import Args, duparg, invarg, matches
from tcemu.cmd.values import get_addr, get_classid, get_uint, ll_proto, strtoul

__all__ = ["parse_action", "parse_bpf_prog", "parse_control"]

# tc/tc_util.c action_a2n(), in order (the first keyword an abbreviation matches wins).
_A2N = (("continue", m.TC_ACT_UNSPEC), ("drop", m.TC_ACT_SHOT), ("shot", m.TC_ACT_SHOT),
        ("pass", m.TC_ACT_OK), ("ok", m.TC_ACT_OK), ("reclassify", m.TC_ACT_RECLASSIFY),
        ("pipe", m.TC_ACT_PIPE), ("goto", m.TC_ACT_GOTO_CHAIN), ("jump", m.TC_ACT_JUMP),
        ("trap", m.TC_ACT_TRAP))

# Kinds tc knows (tc/m_*.c) that tcemu does not model.
_KNOWN_ACTIONS = frozenset({"police", "pedit", "csum", "nat", "ct", "ctinfo", "connmark",
                            "sample", "simple", "skbmod", "ife", "mpls", "gate", "xt",
                            "ipt"})

PACKET_TYPES = {"host": 0, "broadcast": 1, "multicast": 2, "otherhost": 3}


def _a2n(word: str) -> int | None:
    for name, value in _A2N:
        if matches(word, name):
            return value
    return None


def parse_control(a: Args, *, quiet: bool) -> int | None:
    """``parse_action_control``: a verdict at the cursor, or None (cursor unchanged).

    With ``quiet`` (``parse_action_control_dflt``) an unknown word is not an error.
    """
    result = _a2n(a.cur)
    if result is None:
        if quiet:
            return None
        raise a.error(f"Bad action type {a.cur}")
    if result == m.TC_ACT_GOTO_CHAIN:
        if not matches(a.next_arg(), "chain"):
            raise a.error('"chain index" expected')
        index = get_uint(a.next_arg(), 10)
        if index is None or index > m.TC_ACT_EXT_VAL_MASK:
            raise a.error('Illegal "chain index"')
        result |= index
    elif result == m.TC_ACT_JUMP:
        value = a.next_arg()
        count = get_uint(value, 10)
        if count is None or count > m.TC_ACT_EXT_VAL_MASK:
            raise a.error(f'Invalid "jump count" ({value})')
        result |= count
    a.advance()
    return result


def _default_control(a: Args, default: int) -> int:
    if not a:
        return default
    got = parse_control(a, quiet=True)
    if a and a.cur == "index":
        raise a.unsupported('tcemu does not model shared actions ("index")')
    return default if got is None else got


def parse_action(a: Args) -> tuple[m.Action, ...]:
    """``parse_action()`` from the word after the first ``action``.

    Stops at ``classid``/``flowid`` (the classifier's own options) or at the end.
    """
    actions: list[m.Action] = []
    expect = False
    while a:
        w = a.cur
        if w == "action":
            a.advance()
            expect = True
            continue
        if w in ("flowid", "classid"):
            break
        if w == "help":
            raise a.error("Usage: ... gact <ACTION> [RAND] [INDEX]")
        if any(matches(w, c) for c in ("change", "replace", "delete", "get", "add")):
            break
        kind = "gact" if _a2n(w) is not None else w
        expect = False
        if kind in _KNOWN_ACTIONS:
            raise a.unsupported(f'tcemu does not model the "{kind}" action')
        parser = _ACTIONS.get(kind, _gact)
        actions.append(parser(a))
        if (a and a.cur in ("cookie", "no_percpu", "skip_sw", "skip_hw")) \
                or (a and matches(a.cur, "hw_stats")):
            raise a.unsupported(f'tcemu does not model action option "{a.cur}"')
    if expect:
        raise a.error("bad action empty 1")
    return tuple(actions)


def _gact(a: Args) -> m.GactAction:
    if matches(a.cur, "gact"):
        a.next_arg()
    control = parse_control(a, quiet=False)
    assert control is not None
    if a and matches(a.cur, "random"):
        raise a.unsupported('tcemu does not model "gact random"')
    if a and matches(a.cur, "index"):
        raise a.unsupported('tcemu does not model shared actions ("index")')
    return m.GactAction(control=control)


# ---------------------------------------------------------------------------------
# bpf
# ---------------------------------------------------------------------------------

def parse_bpf_prog(a: Args, *, default_section: str,
                   bad: str = "Unable to parse bpf command line") -> m.BpfProg | None:
    """``bpf_parse()``: ``obj FILE [sec S] [verbose]``, ``pinned PATH`` (also
    ``object-pinned``, ``fd``), ``bytecode 'N,c t f k,...'``, ``bytecode-file F``.  (tc
    passes a program type, so ``bpf_parse`` does not read a ``type`` word.)

    Returns None when the word is not a mode (the caller reports it); leaves the
    cursor after the program's words.
    """
    w = a.cur
    if matches(w, "bytecode") or w == "bc":
        text = a.next_arg()
        a.advance()
        insns, why = _cbpf(text)
        if insns is None:
            raise a.error(why or bad)
        return m.BytecodeProg(insns=insns)
    if matches(w, "bytecode-file") or w == "bcf":
        path = a.next_arg()
        a.advance()
        return m.BytecodeFileProg(path=path)
    if matches(w, "object-file") or w == "obj":
        path = a.next_arg()
        a.advance()
        section = default_section
        verbose = False
        if a and matches(a.cur, "section"):
            section = a.next_arg()
            a.advance()
        if a and matches(a.cur, "export"):
            raise a.unsupported('tcemu does not hand maps to an agent ("export")')
        if a and matches(a.cur, "verbose"):
            verbose = True
            a.advance()
        return m.ObjProg(path=path, section=section, verbose=verbose)
    if matches(w, "object-pinned") or matches(w, "pinned") or matches(w, "fd"):
        # iproute2 reads "fd X" as the pinned path X, exactly like "pinned X".
        path = a.next_arg()
        a.advance()
        return m.PinnedProg(path=path)
    return None


def _scan_unsigned(text: str, bits: int) -> tuple[int, int] | None:
    """``sscanf("%u")`` with an ``h``/``hh`` width: (value mod 2**bits, characters used)."""
    value, used, _ = strtoul(text, 10)
    if used == 0:
        return None
    return value & ((1 << bits) - 1), used


def _cbpf(text: str) -> tuple[tuple[tuple[int, int, int, int], ...] | None, str]:
    """``bpf_parse_string`` + ``bpf_ops_parse``: ``N,code jt jf k,...``.

    Returns (instructions, "") or (None, the message tc prints, "" when it prints none).
    """
    count = _scan_unsigned(text, 16)
    if count is None or text[count[1]:count[1] + 1] != ",":
        return None, ""
    length = count[0]
    if length == 0 or length > 4096:
        return None, ""
    insns: list[tuple[int, int, int, int]] = []
    pos = text.find(",")
    while pos >= 0 and pos + 1 < len(text):
        token = text[pos + 1:]
        if len(insns) >= length:
            return None, "Real program length exceeds encoded length parameter!"
        fields = []
        at = 0
        for bits in (16, 8, 8, 32):
            got = _scan_unsigned(token[at:], bits)
            if got is None:
                return None, f"Error at instruction {len(insns)}!"
            fields.append(got[0])
            at += got[1]
        insns.append((fields[0], fields[1], fields[2], fields[3]))
        pos = text.find(",", pos + 1)
    if len(insns) != length:
        return None, "Parsed program length is less than encoded length parameter!"
    return tuple(insns), ""


def _bpf(a: Args) -> m.BpfAction:
    a.next_arg()  # past "bpf"
    prog: m.BpfProg | None = None
    while a:
        w = a.cur
        if matches(w, "run"):
            a.next_arg()
            if prog is not None:
                raise a.error(duparg("run", a.cur))
        elif prog is not None or matches(w, "index"):
            break
        elif matches(w, "help"):
            raise a.error("Usage: ... bpf ...")
        prog = parse_bpf_prog(a, default_section="action", bad="bad action parsing")
        if prog is None:
            raise a.error(f'What mode is "{w}"?')
    if prog is None:
        raise a.error('Command line is not complete. Try option "help"')
    return m.BpfAction(prog=prog, control=_default_control(a, m.TC_ACT_PIPE))


# ---------------------------------------------------------------------------------
# mirred, vlan, tunnel_key, skbedit
# ---------------------------------------------------------------------------------

def _mirred(a: Args) -> m.MirredAction:
    w = a.next_arg()
    if not (matches(w, "egress") or matches(w, "ingress") or matches(w, "index")):
        if matches(w, "help"):
            raise a.error("Usage: mirred <DIRECTION> <ACTION> [index INDEX] <dev DEVICENAME>")
        raise a.error(f"mirred option not supported {w}")
    egress = ingress = mirror = redir = False
    ok = 0
    dev: str | None = None
    while a:
        w = a.cur
        if matches(w, "action"):
            a.next_arg()
            break
        if not egress and matches(w, "egress"):
            egress = True
            if ingress:
                raise a.error("Can't have both egress and ingress")
            a.next_arg()
            ok += 1
            continue
        if not ingress and matches(w, "ingress"):
            ingress = True
            if egress:
                raise a.error("Can't have both ingress and egress")
            a.next_arg()
            ok += 1
            continue
        if matches(w, "index"):
            raise a.unsupported('tcemu does not model shared actions ("index")')
        if not ok:
            raise a.error(f"was expecting egress or ingress ({w})")
        if not mirror and matches(w, "mirror"):
            mirror = True
            if redir:
                raise a.error("Can't have both mirror and redir")
            ok += 1
        elif not redir and matches(w, "redirect"):
            redir = True
            if mirror:
                raise a.error("Can't have both mirror and redir")
            ok += 1
        elif (redir or mirror) and w == "blockid":
            raise a.unsupported('tcemu does not model "mirred blockid"')
        elif (redir or mirror) and matches(w, "dev"):
            value = a.next_arg()
            if dev is not None:
                raise a.error(duparg("dev", value))
            dev = value
            a.advance()
            break
        a.next_arg()  # any other word is skipped, as tc skips it
    if not (mirror or redir):
        raise a.error("bad action parsing")
    if dev is None:
        # net/sched/act_mirred.c tcf_mirred_init() without a device.
        raise a.error("Error: act_mirred: Must specify device or block.")
    control = m.TC_ACT_STOLEN
    if mirror:
        control = m.TC_ACT_PIPE
        if a and _a2n(a.cur) is not None:
            got = parse_control(a, quiet=False)
            assert got is not None
            control = got
    if a and matches(a.cur, "index"):
        raise a.unsupported('tcemu does not model shared actions ("index")')
    return m.MirredAction(direction="egress" if egress else "ingress",
                          op="mirror" if mirror else "redirect", dev=dev, control=control)


def _vlan(a: Args) -> m.VlanAction:
    a.next_arg()
    op: str | None = None
    f: dict[str, int] = {}
    while a:
        w = a.cur
        hit = next((o for o in ("pop", "push", "modify", "pop_eth", "push_eth")
                    if matches(w, o)), None)
        if hit is not None:
            if op is not None:
                raise a.error(f'unexpected "{w}" - action already specified')
            if hit in ("pop_eth", "push_eth"):
                raise a.unsupported(f'tcemu does not model "vlan {hit}"')
            op = hit
        elif matches(w, "id") or matches(w, "protocol") or matches(w, "priority"):
            if op not in ("push", "modify"):
                raise a.error(invarg("only valid for push/modify", w))
            value = a.next_arg()
            if matches(w, "id"):
                got = get_uint(value, 0, 0xFFFF)
                if got is None:
                    raise a.error(invarg("id is invalid", value))
                f["id"] = got
            elif matches(w, "protocol"):
                got = ll_proto(value)
                if got is None:
                    raise a.error(invarg("protocol is invalid", value))
                f["protocol"] = got
            else:
                got = get_uint(value, 0, 0xFF)
                if got is None or got & ~0x7:
                    raise a.error(invarg("prio is invalid", value))
                f["priority"] = got
        elif matches(w, "dst_mac") or matches(w, "src_mac"):
            raise a.error(invarg("only valid for push_eth", w))
        elif matches(w, "help"):
            raise a.error("Usage: vlan pop [CONTROL]")
        else:
            break
        a.advance()
    control = _default_control(a, m.TC_ACT_PIPE)
    if op in ("push", "modify") and "id" not in f:
        raise a.error(f"id needs to be set for {op}")
    if "protocol" in f and f["protocol"] not in (0x8100, 0x88A8):
        raise a.error("protocol not supported")
    if op is None:
        # tc goes on with the next word (its error comes first); then the kernel's
        # tcf_vlan_init() refuses a vlan action without an operation.
        if a:
            parse_action(a)
        raise a.error("RTNETLINK answers: Invalid argument")
    if op in ("push", "modify") and f["id"] >= 0xFFF:
        # net/sched/act_vlan.c tcf_vlan_init(): -ERANGE, without an extack message.
        raise a.error("RTNETLINK answers: Numerical result out of range")
    return m.VlanAction(op="pop" if op == "pop" else "push" if op == "push" else "modify",
                        id=f.get("id"), protocol=f.get("protocol"),
                        priority=f.get("priority"), control=control)


def _tunnel_key(a: Args) -> m.TunnelKeyAction:
    a.next_arg()
    op: str | None = None
    f: dict[str, object] = {}
    while a:
        w = a.cur
        if matches(w, "unset") or matches(w, "set"):
            if op is not None:
                raise a.error(f'unexpected "{w}" - action already specified')
            op = "unset" if matches(w, "unset") else "set"
        elif matches(w, "src_ip") or matches(w, "dst_ip"):
            value = a.next_arg()
            addr = get_addr(value)
            if addr is None:
                raise a.error(f'Error: any valid address is expected rather than "{value}".')
            f["src" if matches(w, "src_ip") else "dst"] = addr
        elif matches(w, "id"):
            got = get_uint(a.next_arg(), 10)
            if got is None:
                raise a.error('Illegal "id"')
            f["key_id"] = got
        elif matches(w, "dst_port"):
            got = get_uint(a.next_arg(), 10, 0xFFFF)
            if got is None:
                raise a.error('Illegal "dst port"')
            f["dst_port"] = got
        elif matches(w, "tos") or matches(w, "ttl"):
            value = a.next_arg()
            got = get_uint(value, 0, 0xFF)
            if got is None:
                raise a.error(f'Illegal "{"tos" if matches(w, "tos") else "ttl"}"')
            f["tos" if matches(w, "tos") else "ttl"] = got
        elif matches(w, "csum") or matches(w, "nocsum"):
            f["csum"] = matches(w, "csum")
        elif matches(w, "geneve_opts") or matches(w, "vxlan_opts") \
                or matches(w, "erspan_opts") or w == "nofrag":
            raise a.unsupported(f'tcemu does not model tunnel_key "{w}"')
        elif matches(w, "help"):
            raise a.error("Usage: tunnel_key unset")
        else:
            break
        a.advance()
    control = _default_control(a, m.TC_ACT_PIPE)
    if op == "set" and ("src" not in f or "dst" not in f):
        raise a.error("set needs tunnel_key parameters")
    if op is None:
        if a:
            parse_action(a)  # as for vlan: tc's complaint about the next word first
        raise a.error("Error: Unknown tunnel key action.")
    return m.TunnelKeyAction(op="set" if op == "set" else "unset", control=control,
                             **f)  # type: ignore[arg-type]


def _skbedit(a: Args) -> m.SkbeditAction:
    a.next_arg()
    f: dict[str, int] = {}
    while a:
        w = a.cur
        if matches(w, "queue_mapping"):
            got = get_uint(a.next_arg(), 10, 0xFFFF)
            if got is None:
                raise a.error("Illegal queue_mapping")
            f["queue_mapping"] = got
        elif matches(w, "priority"):
            got = get_classid(a.next_arg())
            if got is None:
                raise a.error("Illegal priority")
            f["priority"] = got
        elif matches(w, "mark"):
            value = a.next_arg()
            mark_text, slash, mask_text = value.partition("/")
            mark = get_uint(mark_text, 0)
            mask = get_uint(mask_text, 0) if slash else None
            if mark is None:
                raise a.error("Illegal mark")
            if slash and mask is None:
                raise a.error("Illegal mask")
            f["mark"] = mark
            if mask is not None:
                f["mask"] = mask
        elif matches(w, "ptype"):
            value = a.next_arg()
            ptype = next((n for k, n in PACKET_TYPES.items() if matches(value, k)), None)
            if ptype is None:
                raise a.error(f"Illegal ptype ({value})")
            f["ptype"] = ptype
        elif matches(w, "inheritdsfield") or w == "queue_mapping_range":
            raise a.unsupported(f'tcemu does not model skbedit "{w}"')
        elif matches(w, "help"):
            raise a.error("Usage: ... skbedit <[QM] [PM] [MM] [PT] [IF]>")
        else:
            break
        a.advance()
    control = _default_control(a, m.TC_ACT_PIPE)
    if not f:
        raise a.error("Usage: ... skbedit <[QM] [PM] [MM] [PT] [IF]>")
    return m.SkbeditAction(mark=f.get("mark"), mask=f.get("mask"),
                           priority=f.get("priority"),
                           queue_mapping=f.get("queue_mapping"), ptype=f.get("ptype"),
                           control=control)


_ACTIONS: dict[str, Callable[[Args], m.Action]] = {
    "gact": _gact,
    "bpf": _bpf,
    "mirred": _mirred,
    "vlan": _vlan,
    "tunnel_key": _tunnel_key,
    "skbedit": _skbedit,
}
