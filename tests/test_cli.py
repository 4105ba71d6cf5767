"""The command line: round trips, JSON, errors as one line (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tcemu.cli import main

PROG = "r0 = *(u8 *)(r1 +1)\nr0 += 1\nexit\n"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_asm_disasm_exec_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.s"
    src.write_text(PROG)
    binary = tmp_path / "p.bin"
    assert _run(capsys, "asm", str(src), "-o", str(binary))[0] == 0
    assert binary.read_bytes()[:8].hex() == "7110010000000000"
    code, out, _ = _run(capsys, "disasm", str(binary))
    assert code == 0
    assert out.splitlines() == ["0: (71) r0 = *(u8 *)(r1 +1)", "1: (07) r0 += 1", "2: (95) exit"]
    code, out, _ = _run(capsys, "disasm", "--json", str(binary))
    assert json.loads(out)["listing"][1] == {"slot": 1, "text": "(07) r0 += 1"}
    for tier in ("interp", "jit"):
        code, out, _ = _run(capsys, "exec", str(binary), "--mem", "0a0b", "--tier", tier,
                            "--json")
        assert json.loads(out) == {"r0": 12, "insns": 3, "tier": tier, "memory": "0a0b"}


def test_asm_to_hex_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.s"
    src.write_text("r0 = 0x1122334455667788\nexit\n")
    code, out, _ = _run(capsys, "asm", str(src))
    assert code == 0
    assert out.split() == ["1800000088776655", "0000000044332211", "9500000000000000"]


@pytest.mark.parametrize(("argv", "content", "status", "message"), [
    (["asm"], "r0 = 1\nbogus r1\n", 1, "assemble line 2"),
    (["disasm", "--format", "raw"], "\x95\x00", 1, "not a multiple of 8"),
    (["disasm", "--format", "raw"], "\x07\x00\x01\x00\x00\x00\x00\x00", 1,
     "insn 0: BPF_ALU uses reserved fields"),
    (["exec", "--mem", "00"], "r0 = *(u64 *)(r1 +0)\nexit\n", 1, "pc 0: read of 8 byte"),
    (["exec"], "exit\n", 1, "R0 !read_ok"),
])
def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             argv: list[str], content: str, status: int, message: str) -> None:
    src = tmp_path / "input"
    src.write_bytes(content.encode("latin-1"))
    code, _out, err = _run(capsys, *argv[:1], str(src), *argv[1:])
    assert code == status
    assert err.startswith("tcemu: error: ")
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "disasm", "/nonexistent/prog.bin")
    assert code == 2
    assert "read /nonexistent/prog.bin" in err


def test_failed_asm_does_not_touch_the_output(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keep.bin"
    out.write_bytes(b"precious")
    src = tmp_path / "bad.s"
    src.write_text("nonsense\n")
    assert _run(capsys, "asm", str(src), "-o", str(out))[0] == 1
    assert out.read_bytes() == b"precious"


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo")
    assert code == 0
    assert "accepted by tcemu's verifier (processed" in out
    assert "received: dst 10.0.0.2, IPv4 csum 0x66c9, UDP csum 0xff73: both valid" in out
    assert "INVALID" not in out
    assert "    17 -> 1" in out


def test_demo_object_is_the_lesson_object() -> None:
    root = Path(__file__).resolve().parents[1]
    shipped = root / "tcemu" / "demo_data" / "nat.bpf.o"
    assert shipped.read_bytes() == (root / "scenarios" / "programs" / "nat.bpf.o").read_bytes()


def test_console_script_and_conformance_plugin() -> None:
    proc = subprocess.run([sys.executable, "-m", "tcemu.conformance", "0102"],
                          input="7110010000000000 9500000000000000", capture_output=True,
                          text=True, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "2")
    proc = subprocess.run([sys.executable, "-m", "tcemu.conformance", "--tier", "jit"],
                          input="ff00000000000000", capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "unknown opcode ff" in proc.stderr


OBJ = Path(__file__).parent / "testdata" / "bpf" / "calls.v3.bpf.o"
FRAME = bytes.fromhex("020000000002020000000001080045000028000100004006") + bytes(40)


def test_prog_show_dump_and_map_dump(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "prog", "show", str(OBJ))
    assert code == 0
    assert "calls: sched_cls  section 'tc'" in out
    assert "map flows: hash" in out
    code, out, _ = _run(capsys, "prog", "dump", str(OBJ))
    assert "; int calls(struct __sk_buff *skb)" in out
    assert "flow_key:" in out
    code, out, _ = _run(capsys, "map", "dump", str(OBJ), "--json")
    assert json.loads(out)[1]["name"] == ".bss"


def test_prog_run_like_bpftool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "in.bin"
    data.write_bytes(FRAME)
    out_file = tmp_path / "out.bin"
    ctx_out = tmp_path / "ctx.bin"
    code, out, _ = _run(capsys, "prog", "run", str(OBJ), "--data-in", str(data),
                        "--data-out", str(out_file), "--ctx-out", str(ctx_out), "--repeat", "3")
    assert code == 0
    assert out.startswith("Return value: 0, duration (average): ")
    assert out_file.read_bytes() == FRAME
    assert len(ctx_out.read_bytes()) == 192
    code, out, _ = _run(capsys, "prog", "run", str(OBJ), "--data-in", str(data), "--json")
    report = json.loads(out)
    flows = next(m for m in report["maps"] if m["name"] == "flows")
    assert len(flows["entries"]) == 1
    code, out, _ = _run(capsys, "prog", "run", str(OBJ), "--data-in", str(data),
                        "--trace-insns")
    assert code == 0
    assert out.splitlines()[0].startswith("0: (")
    assert "load ctx+" in out
    code, out, _ = _run(capsys, "prog", "run", str(OBJ), "--data-in", str(data), "--json",
                        "--trace-insns")
    assert json.loads(out)["insn_trace"][0]["pc"] == 0


@pytest.mark.parametrize(("argv", "status", "message"), [
    (["prog", "run", str(OBJ), "--data-in", "/nonexistent"], 2, "read /nonexistent"),
    (["prog", "run", str(OBJ), "--name", "nope", "--data-in", __file__], 2, "no program 'nope'"),
    (["prog", "show", __file__], 1, "not an ELF file"),
    (["map", "dump", str(OBJ), "--name", "nope"], 2, "no map 'nope'"),
])
def test_prog_errors(capsys: pytest.CaptureFixture[str], argv: list[str], status: int,
                     message: str) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == status
    assert message in err
    assert "Traceback" not in err


def test_prog_verify(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    unsafe = str(root / "scenarios" / "programs" / "unsafe.bpf.o")
    code, out, _ = _run(capsys, "prog", "verify", unsafe)
    assert code == 1
    assert "invalid access to packet, off=23 size=1" in out
    assert "; return ip->protocol == IPPROTO_ICMP ? TC_ACT_SHOT : TC_ACT_OK; @ unsafe.c:16" in out
    nat = str(root / "scenarios" / "programs" / "nat.bpf.o")
    code, out, _ = _run(capsys, "prog", "verify", nat, "--json")
    assert code == 0
    assert json.loads(out)[0]["accepted"] is True


def test_prog_verify_shows_the_trace_printk_banner(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    code, _, err = _run(capsys, "prog", "verify", str(root / "tests/testdata/objects/printk.bpf.o"))
    assert code == 0
    assert "kernel log: ** trace_printk() being used. Allocating extra memory.  **" in err


def test_replay_progress_bar_passes_every_record(capsys: pytest.CaptureFixture[str]) -> None:
    """The progress bar (drawn on a terminal) hands on every record, in order; without
    one the records are not wrapped at all (a generator less per packet)."""
    from tcemu.cli_replay import _progress
    from tcemu.pcap import read_packets

    capture = str(Path(__file__).resolve().parents[1] / "pcaps" / "mixed_flows.pcapng")
    expected = [r.data for r in read_packets(capture)]
    assert [r.data for r in _progress(read_packets(capture), capture, True)] == expected
    records = read_packets(capture)
    assert _progress(records, capture, False) is records
