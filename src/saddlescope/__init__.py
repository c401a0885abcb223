"""saddlescope: is training stuck at a minimum or a saddle, and which way is out?

Modules beyond what is re-exported here: ``saddlescope.survey`` (the empirical study),
``saddlescope.plots`` and ``saddlescope.pictures`` (figures), ``saddlescope.toy`` (known answers).

Everything is a function of one flat parameter vector θ. Wrap a model, a loss and data in an
:class:`Objective`, then ask at any θ for the spectrum, the verdict and the way out:

>>> import torch
>>> from saddlescope import Objective, classify, find_critical_point, toy
>>> model, loss_fn, data = toy.worked_example(w1=1.1, w2=1.2)   # y = w1·w2·x, (x, ŷ) = (1, 1)
>>> obj = Objective(model, loss_fn, data, dtype=torch.float64)
>>> cp = classify(obj, torch.zeros(2))                            # the origin
>>> cp.kind, cp.index, cp.minimum_ratio, cp.spectrum.eigenvalues.tolist()
('saddle', 0.5, 0.5, [-2.0, 2.0])
>>> search = find_critical_point(obj, obj.theta0)                 # Newton-MR from θ0
>>> search.converged, classify(obj, search.theta, loss_lower_bound=0.0).kind
(True, 'minimum')
"""

from saddlescope import toy
from saddlescope.classify import CriticalPoint, Probe, classify
from saddlescope.distributed import DistributedObjective, shard_slice
from saddlescope.errors import (
    DistributedError,
    HessianTooLargeError,
    InvalidInputError,
    NonFiniteError,
    SaddlescopeError,
)
from saddlescope.escape import (
    EscapeResult,
    EscapeStep,
    compare_escapes,
    curvature_step,
    escape_saddle,
    negative_curvature_direction,
)
from saddlescope.escape_options import (
    CurvatureOptions,
    GDOptions,
    PerturbedGDOptions,
    SaddleFreeNewtonOptions,
)
from saddlescope.flatness import Flatness, gradient_flatness
from saddlescope.hessian import HessianOperator
from saddlescope.inertia import InertiaEstimate, estimate_inertia, inertia_from_density
from saddlescope.lanczos import LanczosResult, lanczos
from saddlescope.landscape import (
    Line,
    Plane,
    eigen_directions,
    line,
    plane,
    random_direction,
    slice_1d,
    slice_2d,
)
from saddlescope.lifting import (
    LiftReport,
    add_neuron,
    lift_experiment,
    predicted_inertia,
    restrict,
    split_neuron,
    split_objective,
)
from saddlescope.minres import MinresResult, minres
from saddlescope.monitor import CurvatureCheck, CurvatureMonitor
from saddlescope.nonsmooth.exact_zeros import ExactZeros, exact_zero_directions
from saddlescope.nonsmooth.kinks import KinkCheck, NearestKink, kink_check
from saddlescope.nonsmooth.regions import RegionTrace, activation_pattern
from saddlescope.objective import Objective
from saddlescope.operators import (
    CallableOperator,
    HessianLinearOperator,
    MatrixOperator,
    Operator,
    as_operator,
)
from saddlescope.precision import PrecisionCheck, product_error
from saddlescope.report import render_report, write_report
from saddlescope.saddle_escape import EscapeEvent, SaddleEscape
from saddlescope.search import CriticalPointSearch, SearchStep, find_critical_point
from saddlescope.slq import SpectralDensity, slq
from saddlescope.spectrum import Spectrum, hessian_spectrum, spectrum_from_matrix
from saddlescope.tolerance import Inertia, Tolerance, default_grad_tol, default_rtol
from saddlescope.trace import TraceEstimate, hutch_pp_trace, hutchinson_trace

__version__ = "0.1.0"

__all__ = [
    "CallableOperator",
    "CriticalPoint",
    "CriticalPointSearch",
    "CurvatureCheck",
    "CurvatureMonitor",
    "CurvatureOptions",
    "DistributedError",
    "DistributedObjective",
    "EscapeEvent",
    "EscapeResult",
    "EscapeStep",
    "ExactZeros",
    "Flatness",
    "GDOptions",
    "HessianLinearOperator",
    "HessianOperator",
    "HessianTooLargeError",
    "Inertia",
    "InertiaEstimate",
    "InvalidInputError",
    "KinkCheck",
    "LanczosResult",
    "LiftReport",
    "Line",
    "MatrixOperator",
    "MinresResult",
    "NearestKink",
    "NonFiniteError",
    "Objective",
    "Operator",
    "PerturbedGDOptions",
    "Plane",
    "PrecisionCheck",
    "Probe",
    "RegionTrace",
    "SaddleEscape",
    "SaddleFreeNewtonOptions",
    "SaddlescopeError",
    "SearchStep",
    "SpectralDensity",
    "Spectrum",
    "Tolerance",
    "TraceEstimate",
    "activation_pattern",
    "add_neuron",
    "as_operator",
    "classify",
    "compare_escapes",
    "curvature_step",
    "default_grad_tol",
    "default_rtol",
    "eigen_directions",
    "escape_saddle",
    "estimate_inertia",
    "exact_zero_directions",
    "find_critical_point",
    "gradient_flatness",
    "hessian_spectrum",
    "hutch_pp_trace",
    "hutchinson_trace",
    "inertia_from_density",
    "kink_check",
    "lanczos",
    "lift_experiment",
    "line",
    "minres",
    "negative_curvature_direction",
    "plane",
    "predicted_inertia",
    "product_error",
    "random_direction",
    "render_report",
    "restrict",
    "shard_slice",
    "slice_1d",
    "slice_2d",
    "slq",
    "spectrum_from_matrix",
    "split_neuron",
    "split_objective",
    "toy",
    "write_report",
]
