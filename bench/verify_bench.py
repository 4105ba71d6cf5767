"""Time verify() on the project's largest test objects (issue 4 target: under 2 s).

    python bench/verify_bench.py            # 5 samples per object, log level 1
    python bench/verify_bench.py --level 2  # with the full log (every state)
    python bench/verify_bench.py --json out.json

"Largest" is measured two ways, both reported: the object with the most instructions and
the one whose verification processes the most instructions.  Every object under
tests/testdata/ is verified once first (all must be accepted); the timed figures are the
median, min and max of independent samples with the garbage collector paused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_util import code_info, machine_info, measure, now_ns

from tcemu.bpf.collection import load_object
from tcemu.bpf.verifier import verify

TESTDATA = Path(__file__).resolve().parent.parent / "tests" / "testdata"
TARGET_S = 2.0


def _objects() -> list[Path]:
    return sorted([*TESTDATA.glob("objects/*.o"), *TESTDATA.glob("bpf/*.o")])


def _verify_all(path: Path, level: int) -> int:
    coll = load_object(path)
    return sum(verify(p, log_level=level).stats.insn_processed
               for p in coll.programs.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--level", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    sizes: dict[Path, tuple[int, int]] = {}
    for path in _objects():
        coll = load_object(path)
        insns = sum(len(p) for p in coll.programs.values())
        sizes[path] = (insns, _verify_all(path, 0))
    by_insns = max(sizes, key=lambda p: sizes[p][0])
    by_processed = max(sizes, key=lambda p: sizes[p][1])
    rows: dict[str, dict[str, object]] = {}
    for label, path in (("most instructions", by_insns), ("most processed", by_processed)):
        coll = load_object(path)

        def sample(coll: object = coll) -> float:
            start = now_ns()
            for prog in coll.programs.values():  # type: ignore[attr-defined]
                verify(prog, log_level=args.level)
            return (now_ns() - start) / 1e9

        stats = measure(sample, args.samples)
        rows[label] = {"object": str(path.relative_to(TESTDATA)), "insns": sizes[path][0],
                       "processed": sizes[path][1], "seconds": stats.as_dict()}
        print(f"{label:18} {path.relative_to(TESTDATA)}: {sizes[path][0]} insns, "
              f"{sizes[path][1]} processed, verify {stats.median:.3f} s "
              f"(min {stats.min:.3f}, max {stats.max:.3f}) at log level {args.level}; "
              f"target < {TARGET_S} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "machine": machine_info(),
                                               "code": code_info()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
