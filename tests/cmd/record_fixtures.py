"""Record what the real ``ip``/``tc`` print for the command lines they refuse.

Run as root: ``python tests/cmd/record_fixtures.py``.  For every line of
``fixtures/error_commands.txt`` it creates a throwaway network namespace holding one veth
pair (veth0/veth1), runs the command there with ``ip netns exec``, keeps the first line
of stderr and deletes the namespace.  The host's own devices are never touched.  The
result is ``fixtures/iproute2_errors.txt``: a header naming the tool versions and the
procedure, then ``$ command`` / ``first stderr line`` pairs.  A command that succeeds is
an error in the list and stops the recording.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "fixtures"
COMMANDS = HERE / "error_commands.txt"
OUTPUT = HERE / "iproute2_errors.txt"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def commands() -> list[str]:
    out = []
    for raw in COMMANDS.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.rstrip()
    return ""


CLSACT = "[clsact] "


def record_one(command: str, ns: str) -> tuple[int, str]:
    """Run ``command`` in a fresh namespace ``ns``; a ``[clsact] `` prefix first adds a
    clsact qdisc to veth0 (for the kernel checks that come after "is there a parent")."""
    clsact = command.startswith(CLSACT)
    words = shlex.split(command.removeprefix(CLSACT))
    if words[:2] == ["ip", "netns"] and len(words) > 3 and "/" not in words[3]:
        raise SystemExit(f"refusing to run {command!r}: ip netns acts on the host")
    _run(["ip", "netns", "add", ns])
    try:
        setup = _run(["ip", "-n", ns, "link", "add", "veth0", "type", "veth",
                      "peer", "name", "veth1"])
        if clsact:
            setup = _run(["tc", "-n", ns, "qdisc", "add", "dev", "veth0", "clsact"])
        if setup.returncode != 0:
            raise SystemExit(f"cannot set up {ns}: {setup.stderr}")
        done = _run(["ip", "netns", "exec", ns, *words])
        return done.returncode, first_line(done.stderr) or first_line(done.stdout)
    finally:
        _run(["ip", "netns", "del", ns])


def main() -> int:
    if os.geteuid() != 0:
        print("record_fixtures.py needs root (network namespaces)", file=sys.stderr)
        return 1
    ns = f"cmdfix{os.getpid()}"
    ip_version = first_line(_run(["ip", "-V"]).stdout)
    tc_version = first_line(_run(["tc", "-V"]).stdout)
    kernel = os.uname().release
    lines = [
        f"# Recorded by tests/cmd/record_fixtures.py with {ip_version}, {tc_version},",
        f"# Linux {kernel}.  Each command ran as `ip netns exec cmdfixPID COMMAND` in a",
        "# fresh namespace holding only veth0/veth1 (`ip -n NS link add veth0 type veth",
        "# peer name veth1`; `[clsact]` commands also had `tc qdisc add dev veth0 clsact`);",
        "# the line under it is the first line the tool printed on stderr.  Exit status in",
        "# brackets.  Do not edit: re-run the script.",
        "",
    ]
    for command in commands():
        rc, text = record_one(command, ns)
        if rc == 0:
            print(f"unexpected success: {command}", file=sys.stderr)
            return 1
        lines += [f"$ {command}  [{rc}]", text, ""]
    OUTPUT.write_text("\n".join(lines))
    print(f"wrote {OUTPUT} ({len(commands())} commands)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
