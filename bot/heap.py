"""The garbage collector, set for a long-running bot once it has started.

Why: the cyclic collector's full passes walk every tracked object, and after start-up most of
them are modules, classes and the store's metadata that live as long as the process. In a burst
of a thousand answers, three full passes over them took 0.5 s of the 2.3 s the burst took
(`gc.callbacks` around `python -m bench --only concurrency`). Freezing what start-up made (it is
never garbage) and collecting the young generation less often cut that to a few tens of
milliseconds; cycles made while serving are still collected.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 20, 100)
"""Allocations before a young collection (default 700), and young collections per older one."""


def settle_after_startup() -> None:
    """Call once, when the bot is ready to serve, never per test or per request: what is alive
    now is never examined again by the collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
