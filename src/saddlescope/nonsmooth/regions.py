"""Linear regions: which one θ lies in, and where a search crossed from one to the next.

A piecewise-linear network is smooth inside each linear region, the set of θ where every
kinked unit (:mod:`saddlescope.nonsmooth.ops`), on every sample, stays on one piece. The
*activation pattern* — which piece each unit is on, over all the data — names the region; two
points with one pattern lie in one region, so a step between them crossed no boundary.
:func:`activation_pattern` hashes it; :class:`RegionTrace` follows a search through the regions.
"""

from __future__ import annotations

import hashlib
from typing import Any

from torch import Tensor

from saddlescope.nonsmooth.watch import hash_calls, joined_pattern, watched_passes
from saddlescope.objective import Objective

__all__ = ["RegionTrace", "activation_pattern"]


def activation_pattern(obj: Objective, theta: Tensor) -> str:
    """A hash of which linear piece every unit is on over all the data ("" when smooth).

    Two points with one pattern lie in one linear region (up to hash collisions, 128 bits):
    a step between them crossed no activation boundary. Units whose input does not depend on
    θ (a ReLU of the raw data) are left out. One forward pass over the data (with a graph,
    to tell which units depend on θ; the first batch only for a smooth model).

    Args:
        obj: the objective.
        theta: the parameters.
    """
    theta = obj.check_theta(theta)
    return joined_pattern(obj.reducer.gather(_shard_pattern(obj, theta)))


def _shard_pattern(obj: Objective, theta: Tensor) -> str:
    """The pattern over the data this process holds."""
    hasher = hashlib.blake2b(digest_size=16)
    for i, (_, live, _, _) in enumerate(watched_passes(obj, theta)):
        if i == 0 and not live:
            return ""
        hash_calls(hasher, live)
    return hasher.hexdigest()


class RegionTrace:
    """Which linear region each point of a search lies in, and where a step crossed a boundary.

    A search calls :meth:`visit` once per point (its start, then each accepted step); each call
    costs one forward pass (nothing after the first, for a smooth model).

    Args:
        obj: the objective the search runs on.
    """

    def __init__(self, obj: Objective) -> None:
        self.obj = obj
        self.patterns: list[str] = []
        self.crossings: list[int] = []

    def visit(self, theta: Tensor) -> bool:
        """Record θ's region; True when it differs from the previous point's.

        Args:
            theta: the point the search is at.
        """
        smooth = bool(self.patterns) and self.patterns[-1] == ""
        pattern = "" if smooth else activation_pattern(self.obj, theta)
        crossed = bool(self.patterns) and pattern != self.patterns[-1]
        if crossed:
            self.crossings.append(len(self.patterns))
        self.patterns.append(pattern)
        return crossed

    @property
    def regions(self) -> int:
        """How many distinct linear regions the points visited lie in."""
        return len(set(self.patterns))

    def to_dict(self) -> dict[str, Any]:
        """Points visited, the positions where the region changed, and distinct regions."""
        return {
            "visited": len(self.patterns),
            "crossings": list(self.crossings),
            "regions": self.regions,
        }

    def __str__(self) -> str:
        return (
            f"{len(self.patterns)} points in {self.regions} linear regions; "
            f"{len(self.crossings)} boundary crossings"
        )
