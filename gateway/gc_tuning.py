"""The cyclic garbage collector, set for a proxy's churn (issue 16).

Every proxied request allocates a few hundred short-lived container objects (tasks, futures,
header lists, aiohttp's request and response), nearly all freed by reference counting. With
50 requests in flight, the objects of the unfinished ones keep generation 0 over CPython's
default threshold (700), so it was collected ~200 times a second and the in-flight objects
promoted, and generation 2 walked the whole heap (~80,000 objects left by the imports: 65 ms a
time) about twice a second: at 50 connections 1 s of CPU out of 7 went to the collector, and
each full collection stalled every request in flight (the p99).

So, once per process when the gateway starts: what exists then (modules, the app, its routes)
is moved out of the collector's sight (``gc.freeze``: still freed by reference counting, never
walked again), and generation 0 waits for 10,000 net new objects. Cycles are still collected;
only less often, over fewer objects.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000
_tuned = False


def tune_for_proxy() -> None:
    """Freeze the objects alive at start-up and raise generation 0's threshold; once per process."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()  # garbage of the start-up is freed rather than frozen
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
