"""The translated tier: a program becomes Python source, compiled once.

* :mod:`.cfg`: basic blocks, edges, liveness;
* :mod:`.facts`: value ranges that make masks provably useless;
* :mod:`.values`: what a block's generator knows of each register (values not yet
  stored, forwarded into their readers);
* :mod:`.memops`: loads, stores and atomics, and :mod:`.group`: writes through one base
  merged into one ``struct`` read and write;
* :mod:`.gen`: the code of one block (ALU ops, masks, calls, the block's end);
* :mod:`.direct`: map helpers on a constant map called as the map's methods;
* :mod:`.translate`: control flow (nested ifs, the dispatcher), subprograms, and the
  segments a large subprogram is cut into; :mod:`.loops`: blocks that loop onto
  themselves (counted ``for`` loops, or the budget checked every iteration);
* :mod:`.runner`: :class:`Translated`, which compiles, caches and runs the source (each
  segment when it is first entered) and maps a fault back to its instruction.
"""

from tcemu.bpf.jit.runner import Translated, translate_source

__all__ = ["Translated", "translate_source"]
