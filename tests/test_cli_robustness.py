"""Bad input on the command line: one ``tcemu: error:`` line, exit 1 or 2, never a traceback.

Every subcommand is fed missing files, directories, empty files, foreign files, corrupt
ELF objects (seeded truncations and byte flips aimed at the header, the section table,
relocations and BTF), malformed captures, invalid scenarios, hostile programs and bad
command-line values.  An output file (``-o``, ``-w``, ``--junit``, ``--data-out``...) is
written whole or not at all when a command fails.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tcemu.cli import main

ROOT = Path(__file__).resolve().parent.parent
OBJECTS = ROOT / "tests" / "testdata" / "objects"
PCAPS = ROOT / "pcaps"
SCENARIO = ROOT / "scenarios" / "10-ld-abs-parsing.tcemu.yaml"
OBJ = OBJECTS / "proto_stats.bpf.o"  # one program, maps (relocations), BTF


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Outcome:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse
        code = stop.code if isinstance(stop.code, int) else 2
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def _fails_cleanly(result: Outcome, *names: str) -> None:
    """Exit 1 or 2, exactly one ``tcemu: error:`` line naming each of ``names``."""
    assert "Traceback" not in result.err, result.err
    assert "internal error" not in result.err, result.err
    assert result.code in (1, 2), (result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith("tcemu: error: ")]
    assert len(lines) == 1, result.err
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture
def bad(tmp_path: Path) -> dict[str, Path]:
    """Inputs that are not what any command wants."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty").write_bytes(b"")
    return {"missing": tmp_path / "missing.bin", "dir": tmp_path / "dir",
            "empty": tmp_path / "empty", "foreign": Path(sys.executable).resolve()}


# -- files that are not there, not files, empty or foreign ---------------------------------

def _file_commands(path: Path, tmp_path: Path) -> list[list[str | Path]]:
    packet = tmp_path / "packet.bin"
    packet.write_bytes(bytes(64))
    return [
        ["asm", path], ["disasm", path], ["exec", path],
        ["prog", "run", path, "--data-in", packet], ["prog", "show", path],
        ["prog", "dump", path], ["prog", "verify", path], ["map", "dump", path],
        ["run", path], ["diagram", path],
        ["replay", path, "--obj", OBJ], ["replay", PCAPS / "vlan.pcap", "--obj", path],
        ["replay", PCAPS / "vlan.pcap", "--scenario", path],
        ["replay", PCAPS / "vlan.pcap", "--obj", OBJ, "--diff", path],
        ["prog", "run", OBJ, "--data-in", path],
        ["prog", "run", OBJ, "--data-in", packet, "--ctx-in", path],
    ]


@pytest.mark.parametrize("kind", ["missing", "dir", "empty", "foreign"])
def test_unusable_input_files(kind: str, bad: dict[str, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = bad[kind]
    for argv in _file_commands(path, tmp_path):
        result = _run(capsys, *argv)
        if kind == "empty" and argv[-1] == path and argv[-2] == "--ctx-in":
            # An empty ctx_in is no context at all, as BPF_PROG_TEST_RUN takes ctx_size_in 0.
            assert result.code == 0, result.err
            continue
        _fails_cleanly(result)
        line = result.err.splitlines()[-1]
        # the file, or what was wrong with it (the kernel's names for --data-in / --ctx-in)
        named = (path.name, "data_size_in", "ctx_in")
        assert any(name in line for name in named), (argv, line)


@pytest.mark.parametrize("kind", ["missing", "dir"])
def test_unusable_memory_file(kind: str, bad: dict[str, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog.s"
    prog.write_text("r0 = 0\nexit\n")
    _fails_cleanly(_run(capsys, "exec", "--mem-file", bad[kind], prog), str(bad[kind]))


def test_validate_reports_every_unusable_file(bad: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(capsys, "validate", *bad.values())
    assert result.code == 2
    for path in bad.values():
        assert str(path) in result.err
    assert "Traceback" not in result.err


# -- corrupt ELF objects -------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int
    header: int  # file offset of its Elf64_Shdr


def _sections(data: bytes) -> list[Section]:
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    strtab = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 0x18)[0]
    out = []
    for i in range(shnum):
        hdr = shoff + i * 64
        name, kind = struct.unpack_from("<II", data, hdr)
        offset, size = struct.unpack_from("<QQ", data, hdr + 0x18)
        end = data.index(b"\0", strtab + name)
        out.append(Section(data[strtab + name:end].decode(), kind, offset, size, hdr))
    return out


def _flip(rng: random.Random, data: bytes, lo: int, hi: int) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(lo, min(hi, len(buf)))
        buf[at] = rng.choice([0, 0xFF, rng.randrange(256), buf[at] ^ (1 << rng.randrange(8))])
    return bytes(buf)


def _elf_mutants() -> list[tuple[str, bytes]]:
    rng = random.Random(20261125)
    out: list[tuple[str, bytes]] = []
    for obj in ("proto_stats", "bpf2bpf", "global_data", "map_in_map", "callbacks"):
        data = (OBJECTS / f"{obj}.bpf.o").read_bytes()
        secs = _sections(data)
        for cut in [*sorted(rng.sample(range(len(data)), 6)), 1, 16, 63, 64]:
            out.append((f"{obj}-truncated-{cut}", data[:cut]))
        for i in range(4):
            out.append((f"{obj}-header-{i}", _flip(rng, data, 0, 64)))
            sec = rng.choice(secs)
            out.append((f"{obj}-shdr-{sec.name}-{i}",
                        _flip(rng, data, sec.header, sec.header + 64)))
        for sec in secs:
            if sec.name.startswith((".rel", ".BTF", "maps", ".maps", "tc", ".text")):
                for i in range(2):
                    out.append((f"{obj}-{sec.name}-{i}",
                                _flip(rng, data, sec.offset, sec.offset + max(sec.size, 1))))
    return out


ELF_MUTANTS = _elf_mutants()


@pytest.mark.parametrize("command", [["prog", "show"], ["prog", "dump"], ["map", "dump"],
                                     ["prog", "run"], ["prog", "verify"]])
def test_corrupt_objects(command: list[str], tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """Every mutant either loads (a flip can be harmless) or fails with one clean line
    naming the object; ``prog run`` runs on the interpreter and with an output file that
    must not appear unless the run succeeds."""
    packet = tmp_path / "packet.bin"
    packet.write_bytes(bytes(14) + bytes(50))
    failures = 0
    for name, data in ELF_MUTANTS:
        obj = tmp_path / f"{name}.o"
        obj.write_bytes(data)
        extra: list[str | Path] = []
        out = tmp_path / "data_out.bin"
        if command == ["prog", "run"]:
            extra = ["--data-in", packet, "--tier", "interp", "--data-out", out]
        result = _run(capsys, *command, obj, *extra)
        if result.code == 0:
            out.unlink(missing_ok=True)
        if result.code == 0 or (command == ["prog", "verify"] and result.code == 1
                                and "rejected" in result.out):
            continue
        failures += 1
        _fails_cleanly(result)
        assert not out.exists()
        if "load object" in result.err or "read object" in result.err:
            assert obj.name in result.err, result.err
        else:  # loaded, then refused or stopped at run time: says which instruction
            assert command == ["prog", "run"], result.err
            assert "insn " in result.err or "pc " in result.err, result.err
    assert failures > len(ELF_MUTANTS) // 4  # the mutations do reach the loader


def _patch_call(data: bytes, src: int, imm: int) -> bytes:
    """The object with its first helper call changed to ``call src=..., imm=...``."""
    sec = next(s for s in _sections(data) if s.name == "tc")
    buf = bytearray(data)
    for at in range(sec.offset, sec.offset + sec.size, 8):
        if buf[at] == 0x85 and buf[at + 1] >> 4 == 0:
            buf[at + 1] = src << 4
            struct.pack_into("<i", buf, at + 4, imm)
            return bytes(buf)
    raise AssertionError("no helper call in the object")


@pytest.mark.parametrize(("src", "imm", "message"), [
    (0, 99999, "insn 70: unknown func unknown#99999"), (0, -1, "insn 70: unknown func"),
    (2, 7, "insn 70: kfunc call (btf id 7)"), (1, 1000, "call to offset 8568"),
])
def test_objects_calling_what_does_not_exist(src: int, imm: int, message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "patched.o"
    obj.write_bytes(_patch_call(OBJ.read_bytes(), src, imm))
    packet = tmp_path / "packet.bin"
    packet.write_bytes(bytes(64))
    commands: list[list[str | Path]] = [["prog", "run", obj, "--data-in", packet],
                                        ["replay", PCAPS / "vlan.pcap", "--obj", obj]]
    if src != 2:  # KNOWN: kfunc calls are refused when a program is prepared to run
        commands.append(["map", "dump", obj])
    for argv in commands:
        # replay verifies the program first: a kfunc call is the verifier's refusal there
        expected = ("calling kernel function is not supported"
                    if src == 2 and argv[0] == "replay" else message)
        _fails_cleanly(_run(capsys, *argv), expected)


# -- hostile programs ------------------------------------------------------------------------

HOSTILE = {
    "endless loop": ("l:\nr0 = 0\ngoto l\n", "budget"),
    "deep calls": ("call f\nexit\nf:\ncall f\nexit\n", "too deep"),
    "stack out of bounds": ("r0 = *(u64 *)(r10 +8)\nexit\n", "out of bounds"),
    "null store": ("r1 = 0\n*(u32 *)(r1 +0) = r1\nr0 = 0\nexit\n", "write"),
    "unknown helper": ("call 99999\nr0 = 0\nexit\n", "helper"),
    "helper without maps": ("call 1\nr0 = 0\nexit\n", "bpf_map_lookup_elem"),
    "uninitialised r0": ("exit\n", "R0"),
    "jump out of range": ("goto pc+5\nexit\n", "insn 0"),
    "no exit": ("r0 = 0\n", "insn"),
    "huge and endless": ("r0 = 0\n" * 60_000 + "l:\nr0 += 1\ngoto l\n", "budget"),
}


@pytest.mark.parametrize("tier", ["interp", "jit"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs(name: str, tier: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    text, message = HOSTILE[name]
    src = tmp_path / "hostile.s"
    src.write_text(text)
    result = _run(capsys, "exec", src, "--tier", tier, "--mem", "00112233")
    _fails_cleanly(result, message)


def test_program_over_the_kernel_size_limit(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """bpf_prog_load() refuses more than BPF_COMPLEXITY_LIMIT_INSNS instructions (E2BIG)
    before anything runs; tcemu used to run all of them."""
    raw = tmp_path / "huge.bin"
    raw.write_bytes(bytes.fromhex("b700000000000000") * 1_000_000
                    + bytes.fromhex("9500000000000000"))
    commands: list[list[str | Path]] = [["exec", raw, "--format", "raw"], ["disasm", raw]]
    for argv in commands:
        _fails_cleanly(_run(capsys, *argv), "insn 1000000", "BPF_COMPLEXITY_LIMIT_INSNS",
                       "E2BIG")


@pytest.mark.parametrize("command", ["disasm", "exec"])
def test_an_object_is_not_bytecode(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _fails_cleanly(_run(capsys, command, OBJ), "an ELF object", "prog dump")


def test_kfunc_call_in_bytecode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "kfunc.bin"
    raw.write_bytes(bytes.fromhex("8520000001000000" "b700000000000000" "9500000000000000"))
    _fails_cleanly(_run(capsys, "exec", raw), "kfunc", "insn 0")


# -- text that is not what it claims ------------------------------------------------------------

@pytest.mark.parametrize(("argv", "content", "names"), [
    (["disasm", "--format", "hex"], b"zz11223344556677\n", ["line 1, col 1", "'z'"]),
    (["disasm", "--format", "hex"], b"9500000000000000\n950000000000000\n",
     ["line 2", "odd number"]),
    (["exec", "--format", "hex"], b"95 00 00 00 00 00 00 0g\n", ["col 23", "'g'"]),
    (["asm"], b"r0 = 0\n\xff\xfe exit\n", ["line 2", "byte 7", "UTF-8"]),
    (["disasm", "--format", "asm"], b"\x00\x01\x02\x80", ["byte 3", "UTF-8"]),
    (["asm"], b"r0 = 1\x00\nexit\n", ["input: assemble line 1"]),
    (["asm"], b"r11 = 1\nexit\n", ["input: assemble line 1"]),
    (["asm"], b"r0 = 1\ngoto nowhere\nexit\n", ["input: assemble line 2", "nowhere"]),
    (["asm"], b"", ["input: assemble line 1: no instructions"]),
    (["disasm", "--format", "raw"], bytes.fromhex("1800000001000000"),
     ["input: check program: insn 0: invalid bpf_ld_imm64 insn"]),
    (["exec", "--format", "raw"], bytes(7), ["input: decode program at byte 0"]),
])
def test_bad_program_text(argv: list[str], content: bytes, names: list[str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "input"
    src.write_bytes(content)
    _fails_cleanly(_run(capsys, *argv, src), *names)


# -- bad command-line values --------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "names"), [
    (["exec", "{prog}", "--mem", "zz"], ["--mem", "'z'"]),
    (["exec", "{prog}", "--mem", "123"], ["--mem", "odd"]),
    (["exec", "{prog}", "--tier", "fast"], ["exec", "--tier"]),
    (["disasm", "{prog}", "--format", "elf"], ["disasm", "--format"]),
    (["prog", "run", "{obj}", "--data-in", "{prog}", "--repeat", "-1"], ["--repeat", "u32"]),
    (["prog", "run", "{obj}", "--data-in", "{prog}", "--repeat", "many"], ["--repeat"]),
    (["prog", "run", "{obj}"], ["prog run", "--data-in"]),
    (["prog", "run", "{obj}", "--data-in", "{prog}", "--name", "nope"], ["nope"]),
    (["prog", "run", "{obj}", "--data-in", "{prog}", "--section", "nope"], ["nope"]),
    (["prog", "dump", "{obj}", "--name", "nope"], ["nope"]),
    (["prog", "verify", "{obj}", "--sec", "nope"], ["nope"]),
    (["prog", "verify", "{obj}", "--log-level", "3"], ["--log-level"]),
    (["map", "dump", "{obj}", "--name", "nope"], ["nope"]),
    (["prog", "frobnicate"], ["prog", "frobnicate"]),
    (["teleport"], ["teleport"]),
    (["demo", "--fast"], ["--fast"]),
    (["diff", "{missing}"], ["missing.tcemu.yaml", "cannot read"]),
    ([], ["COMMAND"]),
    (["validate"], ["SCENARIO"]),
    (["run", "{scenario}", "--tier", "quantum"], ["run", "--tier"]),
    (["run", "{scenario}", "--backend", "kernel", "--trace"], ["emulator-only"]),
    (["replay", "{pcap}"], ["--obj or --scenario"]),
    (["replay", "{pcap}", "--obj", "{obj}", "--scenario", "{scenario}"], ["--obj"]),
    (["replay", "{pcap}", "--scenario", "{scenario}", "--diff", "{obj}"], ["--diff"]),
    (["replay", "{pcap}", "--scenario", "{scenario}", "--dev", "nope"], ["nope"]),
    (["replay", "{pcap}", "--obj", "{obj}", "--netns", "nope"], ["nope"]),
    (["replay", "{pcap}", "--obj", "{obj}", "--sec", "nope"], ["no program matches"]),
    (["replay", "{pcap}", "--obj", "{obj}", "--ingress", "--egress"], ["--egress"]),
])
def test_bad_command_line_values(argv: list[str], names: list[str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog.s"
    prog.write_text("r0 = 0\nexit\n" + "#" * 64 + "\n")
    values = {"{prog}": prog, "{obj}": OBJ, "{scenario}": SCENARIO,
              "{pcap}": PCAPS / "vlan.pcap", "{missing}": tmp_path / "missing.tcemu.yaml"}
    _fails_cleanly(_run(capsys, *[values.get(a, a) for a in argv]), *names)


# -- malformed captures -------------------------------------------------------------------------

def _captures() -> dict[str, bytes]:
    classic = (PCAPS / "vlan.pcap").read_bytes()
    ng = (PCAPS / "mixed_flows.pcapng").read_bytes()
    header = classic[:24]
    out = {
        "bad magic": b"\x00" * 40,
        "truncated file header": classic[:10],
        "truncated record header": classic[:30],
        "truncated record": classic[:len(classic) // 2 + 3],
        "absurd caplen": header + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 64) + bytes(64),
        "pcapng truncated block": ng[:len(ng) // 3],
        "pcapng absurd block length": ng[:4] + b"\xff\xff\xff\x7f" + ng[8:],
        "pcapng zero block length": ng[:4] + bytes(4) + ng[8:],
        "elf": OBJ.read_bytes(),
    }
    rng = random.Random(7)
    for i in range(12):
        buf = bytearray(rng.choice([classic, ng]))
        for _ in range(rng.randint(2, 6)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        out[f"mutant {i}"] = bytes(buf)
    return out


@pytest.mark.parametrize(("name", "data"), sorted(_captures().items()))
def test_malformed_captures(name: str, data: bytes, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "in.pcap"
    pcap.write_bytes(data)
    out_dir = tmp_path / "out"
    result = _run(capsys, "replay", pcap, "--obj", OBJ, "-w", out_dir, "--json")
    if name.startswith("mutant") and result.code == 0:
        assert (out_dir / "output.pcapng").is_file()
        return
    _fails_cleanly(result, str(pcap), "byte")
    # the capture failed midway: no half-written output, no temporary file left
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_replay_output_is_written_whole_or_not_at_all(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    whole = (PCAPS / "vlan.pcap").read_bytes()
    good = tmp_path / "good"
    assert _run(capsys, "replay", PCAPS / "vlan.pcap", "--obj", OBJ, "-w", good).code == 0
    written = (good / "output.pcapng").read_bytes()
    # Truncated in the last record: every earlier packet is replayed, then the error.
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-5])
    result = _run(capsys, "replay", cut, "--obj", OBJ, "-w", good)
    _fails_cleanly(result, "cut.pcap", "truncated")
    assert (good / "output.pcapng").read_bytes() == written  # the old output is intact
    assert sorted(p.name for p in good.iterdir()) == ["output.pcapng"]


# -- invalid scenarios --------------------------------------------------------------------------

GOOD = SCENARIO.read_text().replace("programs/ldabs.bpf.o",
                                    str(SCENARIO.parent / "programs" / "ldabs.bpf.o"))
RUNT = '"020000000002 020000000001 0800 45"'



def _vxlan(remote: str, local: str) -> str:
    return GOOD.replace("links:\n", "links:\n  - {name: vx0, kind: vxlan, vni: 5, "
                        f"remote: '{remote}', local: '{local}'}}\n")


SCENARIO_ERRORS = {
    # name: (text, names in the error line, status of validate)
    "empty": ("", [":1:", "mapping"], 2),
    "not a mapping": ("- 1\n- 2\n", [":1:", "mapping"], 2),
    "yaml syntax": ("name: [1, 2\n", [":2:", "YAML"], 2),
    "tab": ("name:\tx\n\tfoo: 1\n", [":1:", "YAML"], 2),
    "nul byte": ("name: a\x00\n", ["YAML"], 2),
    "deeply nested": ("name: x\nlinks: " + "[" * 5000 + "]" * 5000 + "\n",
                      ["nested too deeply"], 2),
    "deeply nested mappings": ("name: x\nlinks: " + "{a: " * 3000 + "1" + "}" * 3000,
                               ["nested too deeply"], 2),
    "entry not a mapping": ("name: x\nlinks: [[1]]\ntraffic: [3]\n",
                            [":2:", "links[0]: expected a mapping with 'name' or an ip/tc "
                             "command string (and 1 more)"], 2),
    "unknown key": (GOOD.replace("description:", "descripton:"), ["descripton"], 2),
    "bad link kind": (GOOD.replace("kind: veth", "kind: warp"), [":17:", "links[0].kind"], 2),
    "bad hex frame": (GOOD.replace(RUNT, '"zz"'), [":28:", "traffic[3].send.bytes", "'z'"], 2),
    "odd hex frame": (GOOD.replace(RUNT, '"0"'), [":28:", "odd number"], 2),
    "bad hex key": (GOOD.replace("key: 17", "key: 'zz'", 1), [":30:", "expect[0].map.key"], 2),
    "byte out of range": (GOOD.replace("key: 17", "key: [1, 300]", 1), ["300"], 2),
    "bad packet": (GOOD.replace("UDP(dport=53)", "UDP(dport=53", 1), [":25:", "packet"], 2),
    "eval attempt": (GOOD.replace("UDP(dport=53)", "UDP(dport=__import__)", 1),
                     [":25:", "packet"], 2),
    "thousands of layers": (GOOD.replace("UDP(dport=53)", "UDP()" + "/Raw()" * 3000, 1),
                            [":25:", "traffic[0].send.packet", "nested too deeply"], 2),
    "repeat": (GOOD.replace("repeat: 3", "repeat: -1"), [":25:", "repeat"], 2),
    "unknown program": (GOOD.replace("program: parse", "program: nope"), ["nope"], 2),
    # valid files that cannot be set up: validate says ok, run/diagram exit 2
    "missing object": (GOOD.replace(str(SCENARIO.parent / "programs" / "ldabs.bpf.o"),
                                    "missing.bpf.o"), ["programs.parse", "missing.bpf.o"], 0),
    "foreign object": (GOOD.replace(str(SCENARIO.parent / "programs" / "ldabs.bpf.o"),
                                    sys.executable), ["programs.parse", "EM_BPF"], 0),
    "missing section": (GOOD.replace("section: tc", "section: nope"), ["nope"], 0),
    "missing device": (GOOD.replace("{dev: eth1, hook", "{dev: eth9, hook"), ["tc[1]", "eth9"],
                       0),
    "bad tc command": (GOOD.replace("tc qdisc add dev eth1 clsact", "tc qdisc add dev eth1 x"),
                       ["tc[0]"], 0),
    "unterminated quote": (GOOD.replace("eth1 clsact", 'eth1 clsact "x'), ["tc[0]"], 0),
    "duplicate device": (GOOD.replace("peer: eth1", "peer: eth0"), ["links[0]"], 0),
    "bad gap": (GOOD.replace("repeat: 3}", "repeat: 3, gap: soon}"),
                [":25:", "traffic[0].send.gap", "'soon'"], 2),
    "negative gap": (GOOD.replace("repeat: 3}", "repeat: 3, gap: -5}"), [":25:", "negative"], 2),
    "bad classid": (GOOD.replace("repeat: 3}", "repeat: 3, task_classid: zz}"),
                    [":25:", "task_classid", "'zz'"], 2),
    "classid too wide": (GOOD.replace("repeat: 3}", "repeat: 3, task_classid: '10000:1'}"),
                         [":25:", "task_classid"], 2),
    "bad mac": (GOOD.replace('"02:00:00:00:00:01"', '"zz:zz:zz:zz:zz:zz"'),
                [":17:", "links[0].address"], 2),
    "mac octet too big": (GOOD.replace('peer_address: "02:00:00:00:00:02"',
                                       'peer_address: "1ff:0:0:0:0:0"'),
                          [":18:", "links[0].peer_address"], 2),
    "bad cidr": (GOOD.replace("peer: eth1,", 'peer: eth1, addresses: ["10.0.0.1/33"],'),
                 [":17:", "links[0].addresses", "10.0.0.1/33"], 2),
    "bad vxlan remote": (_vxlan("nope", "10.0.0.1"),
                         ["links[0].remote", "'nope'"], 2),
    "mixed vxlan families": (_vxlan("fe80::1", "10.0.0.1"),
                             ["links[0]", "one address family"], 2),
    "missing send device": (GOOD.replace("send: {dev: eth0,", "send: {dev: nope,", 1),
                            ["traffic[0]", "nope"], 0),
    "missing capture": (GOOD.replace("traffic:\n", "traffic:\n  - replay: {pcap: no.pcap, "
                                     "dev: eth0}\n"), ["traffic[0]", "no.pcap"], 0),
    "capture is a directory": (GOOD.replace("traffic:\n", "traffic:\n  - replay: {pcap: ., "
                                            "dev: eth0}\n"), ["traffic[0]", "directory"], 0),
    "capture is an object": (GOOD.replace("traffic:\n", f"traffic:\n  - replay: {{pcap: {OBJ}, "
                                          "dev: eth0}\n"), ["traffic[0]", "bad magic"], 0),
    "not an address": (GOOD.replace('IP(dst="10.0.0.2")/UDP', 'IP(dst="999.1.1.1")/UDP', 1),
                       ["traffic[0]", "must be a literal IP address"], 2),
}
# only playing the traffic finds these (diagram builds the network and stops)
PLAY_ERRORS = {"missing send device", "missing capture", "capture is a directory",
               "capture is an object"}


@pytest.mark.parametrize("name", sorted(SCENARIO_ERRORS))
def test_invalid_scenarios(name: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    text, names, validate_status = SCENARIO_ERRORS[name]
    path = tmp_path / "bad.tcemu.yaml"
    path.write_text(text)
    result = _run(capsys, "validate", path)
    assert result.code == validate_status, result
    assert "Traceback" not in result.err
    if validate_status:
        assert str(path) in result.err
    junit = tmp_path / "report.xml"
    commands: list[list[str | Path]] = [["run", path, "--junit", junit, "-w", tmp_path / "caps"]]
    if name not in PLAY_ERRORS:
        commands.append(["diagram", path, "-o", tmp_path / "net.mmd"])
    for argv in commands:
        result = _run(capsys, *argv)
        _fails_cleanly(result, str(path), *names)
        assert result.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tcemu.yaml"]


@pytest.mark.kernel
@pytest.mark.parametrize(("name", "named"), [
    ("bad tc command", "tc qdisc add dev eth1 x"), ("missing device", "eth9"),
    ("bad cidr", "10.0.0.1/33"), ("mixed vxlan families", "one address family"),
    ("missing capture", "no.pcap")])
def test_invalid_scenarios_on_the_kernel_backend(name: str, named: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = SCENARIO_ERRORS[name][0]
    path = tmp_path / "bad.tcemu.yaml"
    path.write_text(text)
    junit = tmp_path / "report.xml"
    result = _run(capsys, "run", "--backend", "kernel", path, "--junit", junit)
    _fails_cleanly(result, str(path), named)
    assert result.code == 2
    assert not junit.exists()


@pytest.mark.parametrize(("change", "message"), [
    (("key: 17", "key: 99999999999999999999999"), "does not fit a 4-byte field"),
    (("value: 3}", "value: [1, 2, 3, 4, 5, 6, 7, 8, 9]}"), "9 bytes given for a 8-byte"),
    (("map: {map: protos", "map: {map: nomap"), "no map named 'nomap'"),
    (("verdict: TC_ACT_OK", "verdict: TC_ACT_NOPE"), "unknown verdict"),
    (("expect:\n", "expect:\n  - counter: {dev: eth1, counter: bogus, value: 1}\n"),
     "no counter 'bogus' (counters: rx_bytes"),
    (("expect:\n", "expect:\n  - counter: {dev: eth1, counter: __class__, value: 1}\n"),
     "no counter '__class__'"),
])
def test_expectations_that_cannot_be_evaluated(change: tuple[str, str], message: str,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A check that cannot be evaluated fails (exit 1) and says why; a number too wide
    for the map's key or value is not silently cut to its low bytes."""
    path = tmp_path / "s.tcemu.yaml"
    path.write_text(GOOD.replace(*change, 1))
    junit = tmp_path / "report.xml"
    result = _run(capsys, "run", path, "--junit", junit)
    assert result.code == 1, result
    assert message in result.out
    assert "Traceback" not in result.err
    assert junit.read_text().startswith("<?xml")  # a failed check still writes the report


# -- output files ----------------------------------------------------------------------------------

def test_unwritable_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output path that is a directory, sits in a missing directory, or is an existing
    file where a directory is wanted: one error line naming it, exit 2."""
    a_dir = tmp_path / "dir"
    a_dir.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("keep")
    missing = tmp_path / "no" / "such" / "out"
    prog = tmp_path / "p.s"
    prog.write_text("r0 = 0\nexit\n")
    packet = tmp_path / "packet.bin"
    packet.write_bytes(bytes(64))
    commands: list[list[str | Path]]
    for target in (a_dir, missing):
        commands = [["asm", prog, "-o", target],
                    ["prog", "run", OBJ, "--data-in", packet, "--data-out", target],
                    ["prog", "run", OBJ, "--data-in", packet, "--ctx-out", target],
                    ["run", SCENARIO, "--junit", target],
                    ["run", SCENARIO, "--trace-jsonl", target],
                    ["diagram", SCENARIO, "-o", target]]
        for argv in commands:
            result = _run(capsys, *argv)
            _fails_cleanly(result, str(target))
            assert result.code == 2
    commands = [["run", SCENARIO, "-w", a_file],
                ["replay", PCAPS / "vlan.pcap", "--obj", OBJ, "-w", a_file]]
    for argv in commands:
        _fails_cleanly(_run(capsys, *argv), str(a_file))
    assert a_file.read_text() == "keep"
    assert not (tmp_path / "no").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file", "p.s", "packet.bin"]
    assert list(a_dir.iterdir()) == []


def test_outputs_through_links_and_devices(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Whole-or-nothing output must not replace what a path names: a symlink keeps
    pointing at its file (which gets the new contents and keeps its mode), and a device
    (/dev/stdout, /dev/null) is written in place, never replaced by a regular file."""
    real = tmp_path / "real.mmd"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.mmd"
    link.symlink_to(real)
    assert _run(capsys, "diagram", SCENARIO, "-o", link).code == 0
    assert link.is_symlink()
    assert real.read_text().startswith("flowchart")
    assert real.stat().st_mode & 0o777 == 0o640
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    prog = tmp_path / "p.s"
    prog.write_text("r0 = 0\nexit\n")
    assert _run(capsys, "asm", prog, "-o", null).code == 0
    assert null.is_symlink()
    assert Path("/dev/null").is_char_device()
    proc = subprocess.run([sys.executable, "-m", "tcemu.cli", "diagram", str(SCENARIO), "-o",
                           "/dev/stdout"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart")
    assert Path("/dev/stdout").is_symlink()


def test_failed_run_leaves_outputs_untouched(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``prog run`` whose program faults, and ``run`` whose second scenario cannot be set
    up: --data-out, --ctx-out, --junit and --trace-jsonl keep their old contents."""
    outputs = {name: tmp_path / name for name in ("data", "ctx", "junit", "jsonl")}
    for path in outputs.values():
        path.write_text("old")
    runt = tmp_path / "runt.bin"
    runt.write_bytes(bytes(13))  # shorter than an Ethernet header: EINVAL
    result = _run(capsys, "prog", "run", OBJ, "--data-in", runt, "--data-out",
                  outputs["data"], "--ctx-out", outputs["ctx"])
    _fails_cleanly(result, "data_size_in")
    bad = tmp_path / "bad.tcemu.yaml"
    bad.write_text(GOOD.replace("{dev: eth1, hook", "{dev: eth9, hook"))
    result = _run(capsys, "run", SCENARIO, bad, "--junit", outputs["junit"],
                  "--trace-jsonl", outputs["jsonl"])
    _fails_cleanly(result, str(bad), "eth9")
    for path in outputs.values():
        assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*outputs, "runt.bin",
                                                                 "bad.tcemu.yaml"])


def test_capture_files_that_cannot_be_opened(tmp_path: Path) -> None:
    from tcemu.pcap import PcapError, PcapngWriter, read_packets

    with pytest.raises(PcapError, match=r"read capture '.*missing.pcap': No such file"):
        list(read_packets(tmp_path / "missing.pcap"))
    with pytest.raises(PcapError, match=r"read capture '.*': Is a directory"):
        list(read_packets(tmp_path))
    with pytest.raises(PcapError, match=r"write capture '.*out.pcapng': No such file"):
        PcapngWriter(tmp_path / "no" / "out.pcapng")


def test_the_console_script_shows_no_traceback(tmp_path: Path) -> None:
    """The real entry point, end to end: a foreign ELF and a corrupt capture."""
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(3))
    for argv in (["prog", "show", sys.executable], ["replay", str(pcap), "--obj", str(OBJ)],
                 ["prog", "run", str(OBJ), "--repeat", "-3", "--data-in", str(pcap)]):
        proc = subprocess.run([sys.executable, "-m", "tcemu.cli", *argv], capture_output=True,
                              text=True, check=False, cwd=tmp_path)
        assert proc.returncode in (1, 2), proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("tcemu: error: ") == 1, proc.stderr
