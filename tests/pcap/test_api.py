"""tcemu.pcap's public names exist, and its error is a TcemuError."""

from __future__ import annotations

import importlib

import pytest

from tcemu.errors import TcemuError


@pytest.mark.parametrize("name", ["tcemu.pcap", "tcemu.pcap.common", "tcemu.pcap.classic",
                                  "tcemu.pcap.pcapng", "tcemu.pcap.pcapng_write",
                                  "tcemu.pcap.linktype", "tcemu.pcap.stream"])
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_pcap_error_is_a_tcemu_error() -> None:
    from tcemu.pcap import PcapError

    err = PcapError("bad magic 00000000", path="x.pcap", offset=0)
    assert isinstance(err, TcemuError)
    assert str(err) == "read capture 'x.pcap' at byte 0: bad magic 00000000"
    assert (err.path, err.offset, err.packet, err.reason) == ("x.pcap", 0, None,
                                                              "bad magic 00000000")
