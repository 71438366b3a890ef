"""Ufuncs without a row of their own (composed from rows), and functions that run on the
plain values (shape queries, argmax, comparisons) or return constants (``zeros_like``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from .core import (
    ARRAY_FUNCTIONS,
    _kink_logs,
    _log_kink,
    _shape,
    register,
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
           np.isscalar, np.argpartition, np.angle, np.iscomplex, np.isreal):
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


_COMPOSED_UFUNCS.update({
    np.deg2rad: lambda x: x * (np.pi / 180.0),
    np.rad2deg: lambda x: x * (180.0 / np.pi),
    np.radians: lambda x: x * (np.pi / 180.0),
    np.degrees: lambda x: x * (180.0 / np.pi),
    np.logaddexp2: lambda x, y: _logaddexp(x * np.log(2.0), y * np.log(2.0)) * (
        1.0 / np.log(2.0)),
    np.remainder: lambda x, y: _division_rest("remainder", x, y, np.floor),
    np.fmod: lambda x, y: _division_rest("fmod", x, y, np.trunc),
    np.fmax: lambda x, y: _nan_ignoring("fmax", x, y, np.greater_equal),
    np.fmin: lambda x, y: _nan_ignoring("fmin", x, y, np.less_equal),
})


def _division_rest(name: str, x: Any, y: Any, rounding: Callable) -> Any:
    """``x - rounding(x / y) * y`` (``np.remainder``: floor, ``np.fmod``: trunc); the
    quotient is piecewise constant, its jumps (x/y an integer) are kinks."""
    q = np.asarray(strip(x) / strip(y))
    if _kink_logs:
        _log_kink(name, q, np.round(q))
    return x - rounding(q) * y


def _nan_ignoring(name: str, x: Any, y: Any, keep_x: Callable) -> Any:
    """``np.fmax``/``np.fmin``: ``x`` where it wins or ``y`` is NaN, else ``y``."""
    xv, yv = strip(x), strip(y)
    if _kink_logs:
        _log_kink(name, xv, yv)
    return np.where(keep_x(xv, yv) | np.isnan(yv), x, y)


@register(np.sinc)
def _sinc(x):
    """``sin(pi x) / (pi x)``, 1 at 0 (where the derivative is 0)."""
    zero = strip(x) == 0
    safe = np.where(zero, 1.0, x) * np.pi
    return np.where(zero, 1.0, np.sin(safe) / safe)


@register(np.nan_to_num)
def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``x`` where finite (derivative 1), NumPy's replacements elsewhere (constants)."""
    xv = strip(x)
    return np.where(np.isfinite(xv), x, np.nan_to_num(xv, nan=nan, posinf=posinf,
                                                      neginf=neginf))


def _real_only(name: str) -> Callable:
    def check(x: Any) -> Any:
        if np.iscomplexobj(strip(x)):
            raise UnsupportedError(f"np.{name} of a complex traced value is not supported "
                                   "(diffcheck differentiates real functions)")
        return x
    return check


register(np.real)(lambda val: _real_only("real")(val))
register(np.real_if_close)(lambda a, tol=100: _real_only("real_if_close")(a))
register(np.imag)(lambda val: np.zeros(_shape(_real_only("imag")(val)),
                                       dtype=np.result_type(strip(val))))


def _logaddexp(x: Any, y: Any) -> Any:
    m = np.where(strip(x) > strip(y), strip(x), strip(y))
    return m + np.log(np.exp(x - m) + np.exp(y - m))


for _u, _fn in _COMPOSED_UFUNCS.items():
    ARRAY_FUNCTIONS[(_u, "__call__")] = _fn
