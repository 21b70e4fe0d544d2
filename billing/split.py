"""Splitting a pool in proportion to points, exactly to the micro-unit.

Largest remainder (Hamilton's method): everyone first gets the floor of their exact share; the
micro-units left over (fewer than the number of shares) go one each to the largest remainders,
ties broken by the smaller id. So the parts always add up to the pool, each part is within one
micro-unit of its exact share, and the result depends only on the (id, points) pairs — never on
their order, on floats, or on the database's row order. Pure, so it is property-tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", int, str)


def split(pool: int, weights: Mapping[K, int] | Iterable[tuple[K, int]]) -> dict[K, int]:
    """Each key's part of `pool`; all zeros when no key has a positive weight.

    Raises ValueError for a negative pool or weight, a non-integer, or a key given twice.
    """
    pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        raise ValueError("the pool is a non-negative integer of micro-units")
    seen: set[K] = set()
    for key, weight in pairs:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"weight of {key!r} must be a non-negative integer")
        if key in seen:
            raise ValueError(f"{key!r} appears twice")
        seen.add(key)
    total = sum(weight for _, weight in pairs)
    if total == 0:
        return {key: 0 for key, _ in pairs}
    parts: dict[K, int] = {}
    remainders: list[tuple[int, K]] = []
    for key, weight in pairs:
        floor, remainder = divmod(pool * weight, total)
        parts[key] = floor
        remainders.append((remainder, key))
    left = pool - sum(parts.values())
    # largest remainder first; among equal remainders the smaller id first
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, key in remainders[:left]:
        parts[key] += 1
    return parts
