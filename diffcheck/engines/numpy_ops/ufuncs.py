"""Ufuncs without a row of their own (composed from rows), and functions that run on the
plain values (shape queries, argmax, comparisons) or return constants (``zeros_like``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .core import (
    ARRAY_FUNCTIONS,
    strip,
)

# -- value-only functions and constants ------------------------------------------------------

def _value_only(func: Callable) -> Callable:
    def run(*args, **kwargs):
        return func(*[strip(a) for a in args], **{k: strip(v) for k, v in kwargs.items()})
    return run


for _f in (np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.isclose,
           np.allclose, np.iscomplexobj, np.isrealobj, np.nonzero, np.count_nonzero,
           np.array_equal, np.result_type, np.round, np.around, np.any, np.all,
           np.isscalar):
    ARRAY_FUNCTIONS[_f] = _value_only(_f)


def _constant_like(func: Callable) -> Callable:
    def run(a, *args, **kwargs):
        return func(strip(a), *args, **kwargs)
    return run


for _f in (np.zeros_like, np.ones_like, np.empty_like, np.full_like):
    ARRAY_FUNCTIONS[_f] = _constant_like(_f)


# -- ufuncs without a row of their own, composed from rows ------------------------------------

_COMPOSED_UFUNCS: dict[Any, Callable] = {
    np.square: lambda x: x * x,
    np.reciprocal: lambda x: 1.0 / x,
    np.positive: lambda x: x,
    np.conjugate: lambda x: x,
    np.log2: lambda x: np.log(x) * (1.0 / np.log(2.0)),
    np.log10: lambda x: np.log(x) * (1.0 / np.log(10.0)),
    np.exp2: lambda x: np.exp(x * np.log(2.0)),
    np.float_power: lambda x, y: np.power(x, y),
    np.hypot: lambda x, y: np.sqrt(x * x + y * y),
    np.logaddexp: lambda x, y: _logaddexp(x, y),
    np.cbrt: lambda x: np.sign(strip(x)) * np.power(np.abs(x), 1.0 / 3.0),
    np.fabs: lambda x: np.abs(x),
}


def _logaddexp(x: Any, y: Any) -> Any:
    m = np.where(strip(x) > strip(y), strip(x), strip(y))
    return m + np.log(np.exp(x - m) + np.exp(y - m))


for _u, _fn in _COMPOSED_UFUNCS.items():
    ARRAY_FUNCTIONS[(_u, "__call__")] = _fn
