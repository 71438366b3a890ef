"""How traced values (duals, tape variables) answer NumPy's dispatch protocols.

``__array_ufunc__`` maps a ufunc to its rule-table row; ufuncs that have no derivative
(comparisons, ``isfinite``, ``floor``) run on the plain values. ``__array_function__``
looks the function up in :data:`ARRAY_FUNCTIONS`. Anything else raises an error that
names the NumPy function.

The structural half of the rule table lives here, one module per family: :mod:`.core`
(the protocols, the kink log, the registries and shared helpers), :mod:`.ufuncs` (ufuncs
composed from rows, value-only functions), :mod:`.reductions` (sums, products, max/min,
mean/var/std, cumulative sums and products), :mod:`.shapes` (reshapes, transposes,
concatenation, ``where``, indexing, ``sort``, ``pad``, ``astype``) and :mod:`.linalg`
(matmul, dot, einsum, tensordot, kron, ``np.linalg``). Each row is a
:class:`~diffcheck.primitives.Primitive` with ``partials=()`` and a ``jvp``/``vjp`` pair
written with NumPy calls, so the same rule runs on plain arrays and on duals (nested duals
give Hessians). Tangents carry a leading direction axis, so a non-negative ``axis``
argument shifts by one inside a jvp.

>>> import numpy as np
>>> from diffcheck.engines.forward import Dual
>>> from diffcheck.tracing import next_level
>>> x = Dual(np.float64(2.0), np.array([1.0]), next_level())
>>> bool(np.greater(x, 1.0))
True
>>> v = Dual(np.arange(3.0), np.eye(3), next_level())
>>> np.sum(v * v).tan.tolist()
[0.0, 2.0, 4.0]
"""

from __future__ import annotations

from . import inplace, linalg, reductions, shapes, special, ufuncs  # noqa: F401 (rows)
from .core import (
    ARRAY_FUNCTIONS,
    COMPARISONS,
    NONDIFF_UFUNCS,
    STRUCTURAL_ROWS,
    KinkLog,
    align,
    array_function,
    getitem,
    register,
    shape_of,
    strip,
    supported_numpy,
    ufunc_method,
    unbroadcast,
    watch_kinks,
)
from .inplace import trace_call, tracing_scope
from .shapes import astype

__all__ = [
    "ARRAY_FUNCTIONS", "COMPARISONS", "NONDIFF_UFUNCS", "STRUCTURAL_ROWS", "KinkLog",
    "align", "array_function", "astype", "getitem", "register", "shape_of", "strip",
    "supported_numpy", "trace_call", "tracing_scope", "ufunc_method", "unbroadcast", "watch_kinks",
]
