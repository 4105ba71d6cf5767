"""Value syntax: C number parsing, tc units, handles, protocols, addresses (tables)."""

from __future__ import annotations

import ipaddress

import pytest

from tcemu.cmd import values as v


@pytest.mark.parametrize(("text", "base", "expected"), [
    ("0", 0, 0), ("10", 0, 10), ("0x10", 0, 16), ("010", 0, 8), ("0X1f", 0, 31),
    ("4294967295", 0, 0xFFFF_FFFF), ("4294967296", 0, None), ("", 0, None),
    ("12a", 0, None), ("0800", 0, None), ("0800", 10, 800), ("ff", 16, 255),
    ("0xff", 16, 255), ("-1", 0, None), ("-0", 0, 0), (" 7", 0, 7), ("+7", 0, 7),
    ("0x", 0, None), ("99999999999999999999999", 0, None),
])
def test_get_uint(text: str, base: int, expected: int | None) -> None:
    assert v.get_uint(text, base) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1500", 1500), ("0x5dc", 1500), ("-1", -1), ("2147483648", None), ("abc", None),
    ("1e3", None),
])
def test_get_integer(text: str, expected: int | None) -> None:
    assert v.get_integer(text) == expected


@pytest.mark.parametrize(("text", "bytes_per_s"), [
    ("1mbit", 125_000), ("1Mbit", 125_000), ("1.5mbit", 187_500), ("100", 12),
    ("8", 1), ("1kbit", 125), ("1Kibit", 128), ("1mibit", 131_072), ("1gbit", 125_000_000),
    ("1gibit", 134_217_728), ("1tbit", 125_000_000_000), ("1bps", 1), ("3kbps", 3000),
    ("1KiBps", 1024), ("2MiBps", 2_097_152), ("1MBps", 1_000_000), ("1GBps", 10 ** 9),
    ("12345bit", 1543), ("1e6bit", 125_000), (".5mbit", 62_500),
])
def test_rate(text: str, bytes_per_s: int) -> None:
    assert v.get_rate64(text) == bytes_per_s


@pytest.mark.parametrize("text", ["", "mbit", "1xbit", "1 mbit", "-1mbit", "1mbits", "1kb"])
def test_bad_rate(text: str) -> None:
    assert v.get_rate64(text) is None


@pytest.mark.parametrize(("text", "size"), [
    ("10", 10), ("10b", 10), ("10k", 10_240), ("10kb", 10_240), ("10KB", 10_240),
    ("1kbit", 128), ("10kbit", 1280), ("1mbit", 131_072), ("1m", 1_048_576),
    ("1mb", 1_048_576), ("1g", 1 << 30), ("1gbit", 1 << 27), ("1.5k", 1536),
    ("3g", 3 << 30), ("4294967295", 0xFFFF_FFFF), ("1.5b", 1),
])
def test_size(text: str, size: int) -> None:
    assert v.get_size(text) == size


@pytest.mark.parametrize("text", ["", "k", "4g", "5gb", "10q", "-1"])
def test_bad_size(text: str) -> None:
    assert v.get_size(text) is None


@pytest.mark.parametrize(("text", "ns"), [
    ("1ms", 1_000_000), ("1.5ms", 1_500_000), ("100", 100_000), ("1.5us", 1000),
    ("2s", 2_000_000_000), ("2sec", 2_000_000_000), ("3secs", 3_000_000_000),
    ("7usec", 7000), ("7usecs", 7000), ("1msec", 1_000_000), ("0", 0), ("1MS", 1_000_000),
])
def test_tc_time_keeps_whole_microseconds(text: str, ns: int) -> None:
    assert v.get_time_tc(text) == ns


@pytest.mark.parametrize("text", ["", "ms", "10ns", "50qs", "-1ms", "1 ms"])
def test_bad_tc_time(text: str) -> None:
    assert v.get_time_tc(text) is None


@pytest.mark.parametrize(("text", "ns"), [
    ("10ns", 10), ("1.5us", 1500), ("1ms", 1_000_000), ("2", 2), ("1nsec", 1),
])
def test_time64(text: str, ns: int) -> None:
    assert v.get_time64(text) == ns


@pytest.mark.parametrize(("text", "u32"), [
    ("0%", 0), ("100%", 0xFFFF_FFFF), ("50%", 2_147_483_648), ("1", 42_949_673),
    ("25%", 1_073_741_824), ("0.5%", 21_474_836),
])
def test_percent(text: str, u32: int) -> None:
    assert v.get_percent_u32(text) == u32


@pytest.mark.parametrize("text", ["101%", "-1%", "5%%", "5 %", "x"])
def test_bad_percent(text: str) -> None:
    assert v.get_percent_u32(text) is None


@pytest.mark.parametrize(("text", "handle"), [
    ("1:", 0x1_0000), ("1", 0x1_0000), ("ffff:", 0xFFFF_0000), ("10:", 0x10_0000),
    ("none", 0), ("1:zz", 0x1_0000), ("0:", 0),
])
def test_qdisc_handle(text: str, handle: int) -> None:
    assert v.get_qdisc_handle(text) == handle


@pytest.mark.parametrize("text", ["10000:", "x:", "1x", "", "root"])
def test_bad_qdisc_handle(text: str) -> None:
    assert v.get_qdisc_handle(text) is None


@pytest.mark.parametrize(("text", "classid"), [
    ("1:10", 0x1_0010), ("1:", 0x1_0000), (":5", 5), ("root", 0xFFFF_FFFF), ("none", 0),
    ("ffff:fff2", 0xFFFF_FFF2), ("ffff:fff1", 0xFFFF_FFF1), ("10", 0x10), ("A:b", 0xA_000B),
    ("0x1:0x2", 0x1_0002),
])
def test_classid(text: str, classid: int) -> None:
    assert v.get_classid(text) == classid


@pytest.mark.parametrize("text", ["1:zz", "10000:1", "1:10000", "x", "", "1:2:3"])
def test_bad_classid(text: str) -> None:
    assert v.get_classid(text) is None


@pytest.mark.parametrize("classid", [0xFFFF_FFFF, 0, 5, 0x1_0000, 0x1_0010, 0xFFFF_FFF3])
def test_classid_text_reads_back(classid: int) -> None:
    assert v.get_classid(v.format_classid(classid)) == classid


@pytest.mark.parametrize(("text", "proto"), [
    ("ip", 0x0800), ("IP", 0x0800), ("ipv6", 0x86DD), ("all", 3), ("arp", 0x0806),
    ("802.1Q", 0x8100), ("802.1q", 0x8100), ("802.1ad", 0x88A8), ("0x88a8", 0x88A8),
    ("2048", 0x0800), ("0x0800", 0x0800), ("lldp", 0x88CC), ("mpls_uc", 0x8847),
])
def test_protocol(text: str, proto: int) -> None:
    assert v.ll_proto(text) == proto


@pytest.mark.parametrize("text", ["0800", "0x10000", "8021q", "foo", ""])
def test_bad_protocol(text: str) -> None:
    assert v.ll_proto(text) is None


@pytest.mark.parametrize(("text", "addr"), [
    ("10.0.0.1", "10.0.0.1"), ("10.8", "10.8.0.0"), ("010.0.0.1", "8.0.0.1"),
    ("0x0a.0.0.1", "10.0.0.1"), ("fd00::1", "fd00::1"), ("10", "10.0.0.0"),
])
def test_addr(text: str, addr: str) -> None:
    assert v.get_addr(text) == ipaddress.ip_address(addr)


@pytest.mark.parametrize("text", ["x", "256.0.0.1", "1.2.3.4.5", "1..2", "fd00:::1", "1.2.3.-4"])
def test_bad_addr(text: str) -> None:
    assert v.get_addr(text) is None


def test_addr_family() -> None:
    assert v.get_addr("fd00::1", 4) is None
    assert v.get_addr("10.0.0.1", 6) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1/24", ("10.0.0.1", 24)), ("10.0.0.1", ("10.0.0.1", 32)),
    ("10.0.0.0/255.255.0.0", ("10.0.0.0", 16)), ("fd00::1/64", ("fd00::1", 64)),
])
def test_prefix(text: str, expected: tuple[str, int]) -> None:
    got = v.get_prefix(text)
    assert isinstance(got, tuple)
    assert (str(got[0]), got[1]) == expected


def test_default_prefix() -> None:
    assert v.get_prefix("default") == ipaddress.ip_network("0.0.0.0/0")
    assert v.get_prefix("default", 6) == ipaddress.ip_network("::/0")


@pytest.mark.parametrize("text", ["10.0.0.1/33", "fd00::/129", "10.0.0.0/255.0.255.0",
                                  "default/8", "any", "foo/8"])
def test_bad_prefix(text: str) -> None:
    assert v.get_prefix(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("02:00:00:00:00:01", ("02:00:00:00:00:01", "")),
    ("2:0:0:0:0:1", ("02:00:00:00:00:01", "")),
    ("AA:BB:CC:DD:EE:FF", ("aa:bb:cc:dd:ee:ff", "")),
    ("zz", (None, "zz")), ("02:zz:00:00:00:01", (None, "zz")), ("0g", ("00", "")),
    ("100:0", (None, "100")),
])
def test_lladdr(text: str, expected: tuple[str | None, str]) -> None:
    assert v.ll_addr(text) == expected
