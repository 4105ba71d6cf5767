"""Global functions: checked at the call against their BTF prototype, verified on their own.

The expected logs were captured from the 6.18 kernel (``bpftool prog load`` of the same
clang-19 objects; the kernel prints a map address where tcemu prints ``map[idx:0][0]+0``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcemu.bpf.collection import load_object
from tcemu.bpf.verifier import VerifierError, verify
from tests.verifier.corpus import compile_c

SOURCE = """#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
#define __noinline __attribute__((noinline))
__noinline int pick(struct __sk_buff *skb, long i)
{
    int a[4] = {1, 2, 3, 4};
    return a[i & MASK] + skb->len;
}
SEC("tc") int prog(struct __sk_buff *skb)
{
    return pick(skb, ARG);
}
char _license[] SEC("license") = "GPL";
"""


def _verify(tmp_path: Path, mask: int, arg: str) -> str:
    source = SOURCE.replace("MASK", str(mask)).replace("ARG", arg)
    obj = tmp_path / "g.o"
    obj.write_bytes(compile_c(source, "test_verifier_globals"))
    (prog,) = load_object(obj).programs.values()
    with pytest.raises(VerifierError) as info:
        verify(prog)
    return info.value.log


def test_global_function_verified_alone(tmp_path: Path) -> None:
    # pick() is verified with i unknown, whatever the caller passes.
    log = _verify(tmp_path, 7, "1")
    assert log.startswith("Validating pick() func#1...\n3: R1=ctx() R2=scalar() R10=fp0\n")
    assert log.splitlines()[-3:] == [
        "invalid access to map value, value_size=16 off=28 size=4",
        "R3 max value is outside of the allowed memory range",
        "processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 0 "
        "peak_states 0 mark_read 0"]


def test_global_call_checks_argument_types(tmp_path: Path) -> None:
    log = re.sub(r"@ \w+\.c:", "@ case.c:", _verify(tmp_path, 3, "(long)skb"))
    assert log == """0: R1=ctx() R10=fp0
; return pick(skb, (long)skb); @ case.c:11
0: (bf) r2 = r1                       ; R1=ctx() R2=ctx()
1: (85) call pc+1
R2 is not a scalar
Caller passes invalid args into func#1 ('pick')
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_global_call_accepted(tmp_path: Path) -> None:
    source = SOURCE.replace("MASK", "3").replace("ARG", "5")
    obj = tmp_path / "ok.o"
    obj.write_bytes(compile_c(source, "test_verifier_globals"))
    (prog,) = load_object(obj).programs.values()
    assert verify(prog, log_level=2).log.count("Validating pick() func#1...") == 1
