"""The translated tier: a program becomes Python source, compiled once.

* :mod:`.cfg`: basic blocks, edges, liveness;
* :mod:`.facts`: value ranges that make masks provably useless;
* :mod:`.gen`: the code of one block (forwarding, masks, memory accesses, calls);
* :mod:`.translate`: control flow (nested ifs, loops, the dispatcher), subprograms, and the
  segments a large subprogram is cut into;
* :mod:`.runner`: :class:`Translated`, which compiles, caches and runs the source (each
  segment when it is first entered) and maps a fault back to its instruction.
"""

from tcemu.bpf.jit.runner import Translated, translate_source

__all__ = ["Translated", "translate_source"]
