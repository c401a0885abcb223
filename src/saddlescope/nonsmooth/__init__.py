"""Piecewise-linear (ReLU-type) networks: kinks, linear regions and exact Hessian zeros.

* :mod:`~saddlescope.nonsmooth.kinks` — how near θ sits to an activation boundary
  (:func:`kink_check`); a "critical point" on one is reported apart;
* :mod:`~saddlescope.nonsmooth.regions` — which linear region θ is in (:func:`activation_pattern`,
  :class:`RegionTrace`), so a search sees the boundaries it crosses;
* :mod:`~saddlescope.nonsmooth.exact_zeros` — Hessian rows that are exactly zero (dead units);
* :mod:`~saddlescope.nonsmooth.ops` and :mod:`~saddlescope.nonsmooth.watch` — the kinked ops
  seen, and how a forward pass is watched without changing the model.
"""

from saddlescope.nonsmooth.exact_zeros import ExactZeros, exact_zero_directions
from saddlescope.nonsmooth.kinks import KinkCheck, NearestKink, kink_check
from saddlescope.nonsmooth.regions import RegionTrace, activation_pattern

__all__ = [
    "ExactZeros",
    "KinkCheck",
    "NearestKink",
    "RegionTrace",
    "activation_pattern",
    "exact_zero_directions",
    "kink_check",
]
