"""Property: the file readers turn any bytes into a result or a :class:`TcemuError`.

Random bytes, and seeded mutations of real files (so the input gets past the magic
numbers and into the section tables, blocks and YAML structure), go to the ELF loader
(``load_object`` through a file), the pcap/pcapng reader and the scenario loader.  Anything
but a ``TcemuError`` subclass (``struct.error``, ``IndexError``, ``UnicodeDecodeError``,
``RecursionError``...) would reach the CLI as an internal error.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcemu.bpf import load_object
from tcemu.errors import TcemuError
from tcemu.pcap import read_packets
from tcemu.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
OBJECTS = [ROOT / "tests" / "testdata" / "objects" / f"{name}.bpf.o"
           for name in ("proto_stats", "bpf2bpf", "global_data", "map_in_map")]
CAPTURES = [ROOT / "pcaps" / name for name in ("vlan.pcap", "mixed_flows.pcapng",
                                               "linktypes.pcapng", "linux_sll.pcap")]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.tcemu.yaml"))

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_counter = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _file(workdir: Path, data: bytes, suffix: str) -> Path:
    path = workdir / f"input{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


@st.composite
def _mutants(draw: st.DrawFn, sources: list[Path]) -> bytes:
    """A real file, truncated and/or with a few bytes overwritten."""
    data = bytearray(draw(st.sampled_from(sources)).read_bytes())
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


def _elf_like() -> st.SearchStrategy[bytes]:
    header = OBJECTS[0].read_bytes()[:64]
    return st.binary(max_size=512).map(lambda tail: header + tail)


@FUZZ
@given(data=st.one_of(st.binary(max_size=256), _elf_like(), _mutants(OBJECTS)))
def test_elf_loader_raises_only_tcemu_errors(workdir: Path, data: bytes) -> None:
    path = _file(workdir, data, ".o")
    try:
        load_object(path)
    except TcemuError:
        pass
    finally:
        path.unlink()


def _pcap_like() -> st.SearchStrategy[bytes]:
    magics = [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
              b"\x0a\x0d\x0d\x0a"]
    return st.tuples(st.sampled_from(magics), st.binary(max_size=300)).map(b"".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=256), _pcap_like(), _mutants(CAPTURES)))
def test_pcap_reader_raises_only_tcemu_errors(workdir: Path, data: bytes) -> None:
    path = _file(workdir, data, ".pcap")
    try:
        for record in read_packets(path):
            assert isinstance(record.data, bytes)
    except TcemuError:
        pass
    finally:
        path.unlink()


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                          st.floats(allow_nan=True), st.text(max_size=12))
_yaml_values = st.recursive(_yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
_KEYS = ["name", "description", "links", "netns", "setup", "programs", "tc", "maps",
         "traffic", "expect", "seed", "nondeterministic"]


@st.composite
def _scenario_like(draw: st.DrawFn) -> bytes:
    """A mapping with the scenario's own keys and random values, as YAML."""
    doc = draw(st.dictionaries(st.sampled_from(_KEYS), _yaml_values, max_size=6))
    return yaml.safe_dump(doc).encode()


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      _scenario_like(), _mutants(SCENARIOS)))
def test_scenario_loader_raises_only_tcemu_errors(workdir: Path, data: bytes) -> None:
    path = _file(workdir, data, ".tcemu.yaml")
    try:
        load_scenario(path)
    except TcemuError:
        pass
    finally:
        path.unlink()
