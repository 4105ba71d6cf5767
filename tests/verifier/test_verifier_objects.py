"""Every clang-built test object verifies (the kernel accepts them all), and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tcemu.bpf.collection import load_object
from tcemu.bpf.verifier import verify
from tcemu.cli_verify import verify_command

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
OBJECTS = sorted([*TESTDATA.glob("objects/*.o"), *TESTDATA.glob("bpf/*.o")])


@pytest.mark.parametrize("path", OBJECTS, ids=[p.name for p in OBJECTS])
def test_object_accepted(path: Path) -> None:
    coll = load_object(path)
    assert coll.programs
    for prog in coll.programs.values():
        result = verify(prog, log_level=1)
        # An accepted level-1 log is the statistics line, after the kernel's "Func#N
        # ('name') is safe for any args that match its prototype" of the last global
        # function verified (do_check_subprogs).
        lines = result.log.splitlines()
        assert lines[-1].startswith("processed ")
        assert all(" is safe for any args that match its prototype" in line
                   for line in lines[:-1])
        assert result.stats.insn_processed >= 1


def test_cli_prints_log_and_exits_zero() -> None:
    out = io.StringIO()
    status = verify_command(TESTDATA / "objects" / "flow_counter.bpf.o", log_level=2, out=out)
    assert status == 0
    text = out.getvalue()
    assert "func#0 @0" in text
    assert "\nprocessed " in text
    assert " @ flow_counter.c:" in text   # BTF line info


def test_cli_json() -> None:
    out = io.StringIO()
    status = verify_command(TESTDATA / "bpf" / "pkt.v3.bpf.o", json=True, out=out)
    assert status == 0
    report = json.loads(out.getvalue())
    assert [r["accepted"] for r in report] == [True] * len(report)


def test_cli_rejected_object_exits_one(tmp_path: Path) -> None:
    from tests.verifier.corpus import compile_c

    source = """#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
SEC("tc") int no_bounds_check(struct __sk_buff *skb)
{
    unsigned char *data = (void *)(long)skb->data;
    return data[0];
}
char _license[] SEC("license") = "GPL";
"""
    obj = tmp_path / "bad.o"
    obj.write_bytes(compile_c(source, "test_cli_rejected_object_exits_one"))
    out = io.StringIO()
    assert verify_command(obj, out=out) == 1
    text = out.getvalue()
    assert "invalid access to packet, off=0 size=1, R" in text
    assert "; return data[0];" in text
    assert text.rstrip().endswith("rejected: invalid access to packet, off=0 size=1, "
                                  "R1(id=0,off=0,r=0)")
