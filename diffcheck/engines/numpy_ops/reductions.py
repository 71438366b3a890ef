"""Reductions: sum, max/min, mean, var, std, prod, cumsum, cumprod, the ufuncs'
``.reduce``/``.accumulate``, ``average`` and ``trapezoid``.

``prod`` and ``cumprod`` never divide by x (see the comment above their rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from ...primitives import Primitive
from .core import (
    ARRAY_FUNCTIONS,
    _axes,
    _kink_logs,
    _log_conjugating,
    _log_kink,
    _row,
    _shape,
    _shift,
    register,
    strip,
)

# -- sum, max, min ---------------------------------------------------------------------------

def _expand(g: Any, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
    """Broadcast a reduced cotangent back to ``shape``."""
    if not keepdims:
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        g = np.reshape(g, kept)
    return np.broadcast_to(g, shape)


def _sum_jvp(primals, tangents, out, *, axis=None, keepdims=False):
    axes = _shift(_axes(axis, len(_shape(primals[0]))))
    return np.sum(tangents[0], axis=axes, keepdims=keepdims)


def _sum_vjp(primals, out, g, *, axis=None, keepdims=False):
    shape = _shape(primals[0])
    return (_expand(g, shape, _axes(axis, len(shape)), keepdims),)


sum_p = _row("sum", lambda x, *, axis=None, keepdims=False: np.sum(x, axis=axis,
                                                                      keepdims=keepdims),
             _sum_jvp, _sum_vjp, shapes_only=True)


def _extreme_mask(x: Any, out: Any, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    xv, ov = strip(x), strip(out)
    if not keepdims:
        ov = np.expand_dims(ov, axes) if axes else ov
    mask = (xv == ov).astype(np.result_type(xv, np.float16))
    return mask / np.sum(mask, axis=axes, keepdims=True)


def _extreme_jvp(primals, tangents, out, *, axis=None, keepdims=False):
    axes = _axes(axis, len(_shape(primals[0])))
    mask = _extreme_mask(primals[0], out, axes, keepdims)
    return np.sum(tangents[0] * mask, axis=_shift(axes), keepdims=keepdims)


def _extreme_vjp(primals, out, g, *, axis=None, keepdims=False):
    x = primals[0]
    axes = _axes(axis, len(_shape(x)))
    mask = _extreme_mask(x, out, axes, keepdims)
    return (_expand(g, _shape(x), axes, keepdims) * mask,)


max_p = _row("max", lambda x, *, axis=None, keepdims=False: np.max(x, axis=axis,
                                                                      keepdims=keepdims),
             _extreme_jvp, _extreme_vjp)
min_p = _row("min", lambda x, *, axis=None, keepdims=False: np.min(x, axis=axis,
                                                                      keepdims=keepdims),
             _extreme_jvp, _extreme_vjp)


def _reduce_args(x: Any, axis: Any, dtype: Any, out: Any, keepdims: Any, where: Any = True,
                 name: str = "sum") -> tuple[Any, bool]:
    if out is not None or where is not True and where is not np._NoValue:
        raise UnsupportedError(f"np.{name} with out= or where= cannot carry derivatives")
    keep = False if keepdims is np._NoValue else bool(keepdims)
    return axis, keep


@register(np.sum)
def _sum(x, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue,
         where=np._NoValue):
    axis, keep = _reduce_args(x, axis, dtype, out, keepdims, where)
    if initial is not np._NoValue and initial != 0:
        return sum_p(x, axis=axis, keepdims=keep) + initial
    y = sum_p(x, axis=axis, keepdims=keep)
    return y.astype(dtype) if dtype is not None else y


@register(np.max, np.amax)
def _max(x, axis=None, out=None, keepdims=np._NoValue, initial=np._NoValue,
         where=np._NoValue):
    axis, keep = _reduce_args(x, axis, None, out, keepdims, where, "max")
    if _kink_logs:
        _log_ties("max", x, axis)
    y = max_p(x, axis=axis, keepdims=keep)
    return y if initial is np._NoValue else np.maximum(y, initial)


@register(np.min, np.amin)
def _min(x, axis=None, out=None, keepdims=np._NoValue, initial=np._NoValue,
         where=np._NoValue):
    axis, keep = _reduce_args(x, axis, None, out, keepdims, where, "min")
    if _kink_logs:
        _log_ties("min", -np.asarray(strip(x)), axis)
    y = min_p(x, axis=axis, keepdims=keep)
    return y if initial is np._NoValue else np.minimum(y, initial)


def _log_ties(name: str, x: Any, axis: Any) -> None:
    """Log the gap between the largest and second largest entry of each reduced slice."""
    xv = np.asarray(strip(x))
    if np.iscomplexobj(xv):
        xv = xv.real
    axes = _axes(axis, xv.ndim)
    moved = np.moveaxis(xv, axes, tuple(range(-len(axes), 0))) if axes else xv[..., None]
    flat = moved.reshape(moved.shape[:moved.ndim - max(len(axes), 1)] + (-1,))
    if flat.shape[-1] < 2:
        _log_kink(name, np.ones(1), 0.0)
        return
    top2 = -np.partition(-flat, 1, axis=-1)[..., :2]
    _log_kink(name, top2[..., 0], top2[..., 1])


@register(np.mean)
def _mean(x, axis=None, dtype=None, out=None, keepdims=np._NoValue, *, where=np._NoValue):
    axis, keep = _reduce_args(x, axis, dtype, out, keepdims, where, "mean")
    shape = _shape(x)
    count = int(np.prod([shape[a] for a in _axes(axis, len(shape))]))
    y = sum_p(x, axis=axis, keepdims=keep) / count
    return y.astype(dtype) if dtype is not None else y


@register(np.var)
def _var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *,
         where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
    axis, keep = _reduce_args(x, axis, dtype, out, keepdims, where, "var")
    _log_conjugating("var")
    if correction is not np._NoValue:
        ddof = correction
    shape = _shape(x)
    count = int(np.prod([shape[a] for a in _axes(axis, len(shape))]))
    d = x - _mean(x, axis=axis, keepdims=True)
    return sum_p(d * d, axis=axis, keepdims=keep) / (count - ddof)


@register(np.std)
def _std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue, *,
         where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
    var = _var(x, axis, dtype, out, ddof, keepdims, where=where, correction=correction)
    shape = _shape(x)
    if int(np.prod([shape[a] for a in _axes(axis, len(shape))])) == 1:
        return var  # over one entry the variance is identically 0 (sqrt's slope is not)
    return np.sqrt(var)


def _ufunc_reduce(name: str, reduction: Callable[..., Any], takes_dtype: bool = True
                  ) -> Callable[..., Any]:
    """``np.<ufunc>.reduce`` as the reduction function, every argument passed on (``where=``
    and ``out=`` raise there, ``initial=`` is honoured)."""

    def reduce(x, axis=0, dtype=None, out=None, keepdims=False, initial=np._NoValue,
               where=True):
        kw = {"axis": axis, "out": out, "keepdims": keepdims, "initial": initial,
              "where": where}
        if takes_dtype:
            kw["dtype"] = dtype
        elif dtype is not None:
            raise UnsupportedError(f"np.{name}.reduce with dtype= is not supported")
        return reduction(x, **kw)

    return reduce


def _ufunc_accumulate(accumulation: Callable[..., Any]) -> Callable[..., Any]:
    """``np.<ufunc>.accumulate`` as the cumulative function (``out=`` raises there)."""
    return lambda x, axis=0, dtype=None, out=None: accumulation(x, axis=axis, dtype=dtype,
                                                                out=out)


register((np.add, "reduce"))(_ufunc_reduce("add", _sum))
register((np.maximum, "reduce"))(_ufunc_reduce("maximum", _max, takes_dtype=False))
register((np.minimum, "reduce"))(_ufunc_reduce("minimum", _min, takes_dtype=False))


# -- cumsum ----------------------------------------------------------------------------------

def _cumsum_vjp(primals, out, g, *, axis):
    rev = np.flip(g, axis=axis)
    return (np.flip(np.cumsum(rev, axis=axis), axis=axis),)


cumsum_p = _row("cumsum", lambda x, *, axis: np.cumsum(x, axis=axis),
                lambda p, t, out, *, axis: np.cumsum(t[0], axis=axis + 1), _cumsum_vjp,
                shapes_only=True)


def _cumulative(name: str, row: Primitive) -> Callable[..., Any]:
    """``np.<name>(x, axis=None, dtype=None, out=None)`` on a cumulative row (``axis=None``
    runs over the flattened array)."""

    def cumulative(x, axis=None, dtype=None, out=None):
        if out is not None:
            raise UnsupportedError(f"np.{name}(..., out=...) cannot carry derivatives")
        if axis is None:
            x, axis = np.reshape(x, (-1,)), 0
        y = row(x, axis=_axes(axis, len(_shape(x)))[0])
        return y.astype(dtype) if dtype is not None else y

    return cumulative


_cumsum = register(np.cumsum)(_cumulative("cumsum", cumsum_p))
register((np.add, "accumulate"))(_ufunc_accumulate(_cumsum))


# -- prod, cumprod ---------------------------------------------------------------------------
#
# No rule divides by x: the product of the *other* entries comes from exclusive cumulative
# products from both ends, and the cumprod rules are linear recurrences run by recursive
# doubling (log2 n steps of NumPy calls). So zeros in x are exact, and the rules, written
# with NumPy calls, run on duals (second derivatives) like the other rows.

def _along(nax: int, s: slice) -> tuple:
    """Index selecting ``s`` along the negative axis ``nax`` (the same index works on a
    tangent, whose leading direction axis comes first)."""
    return (Ellipsis, s) + (slice(None),) * (-nax - 1)


def _shift_in(y: Any, nax: int) -> Any:
    """``[1, y_0, ..., y_{n-2}]`` along ``nax``: an inclusive cumprod made exclusive."""
    one = np.ones_like(strip(y)[_along(nax, slice(None, 1))])
    return np.concatenate([one, y[_along(nax, slice(None, -1))]], axis=nax)


def _linear_scan(a: Any, b: Any, nax: int) -> Any:
    """``z_i = b_i + a_i * z_{i-1}`` along ``nax`` (``z_{-1} = 0``, ``a_0`` unused), by
    recursive doubling: after the step of width ``s`` entry ``i`` holds the recurrence over
    its last ``2 s`` terms, ``a_i`` their product. ``a`` broadcasts against ``b``."""
    n = _shape(b)[nax]
    s = 1
    while s < n:
        hi, lo = _along(nax, slice(s, None)), _along(nax, slice(None, n - s))
        head = _along(nax, slice(None, s))
        b = np.concatenate([b[head], b[hi] + a[hi] * b[lo]], axis=nax)
        if 2 * s < n:
            a = np.concatenate([a[head], a[hi] * a[lo]], axis=nax)
        s *= 2
    return b


def _cumprod_jvp(primals, tangents, out, *, axis):
    # dy_j = x_j dy_{j-1} + y_{j-1} dx_j
    x = primals[0]
    nax = axis - len(_shape(x))
    return _linear_scan(x, _shift_in(out, nax) * tangents[0], nax)


def _cumprod_vjp(primals, out, g, *, axis):
    # x_bar_i = y_{i-1} z_i with z_i = g_i + x_{i+1} z_{i+1}: the same scan on reversed arrays
    x = primals[0]
    nax = axis - len(_shape(x))
    rev = _along(nax, slice(None, None, -1))
    z = _linear_scan(_shift_in(x[rev], nax), g[rev], nax)[rev]
    return (_shift_in(out, nax) * z,)


cumprod_p = _row("cumprod", lambda x, *, axis: np.cumprod(x, axis=axis), _cumprod_jvp,
                 _cumprod_vjp)


_cumprod = register(np.cumprod)(_cumulative("cumprod", cumprod_p))
register((np.multiply, "accumulate"))(_ufunc_accumulate(_cumprod))


def _others(x: Any, axes: tuple[int, ...]) -> Any:
    """The product of the other entries of each reduced slice, entry by entry (shape of
    ``x``): exclusive cumprods from the left times those from the right, no division."""
    shape = _shape(x)
    keep = [i for i in range(len(shape)) if i not in axes]
    order = keep + list(axes)
    moved = x if order == sorted(order) else np.transpose(x, order)
    mshape = tuple(shape[i] for i in order)
    flat = np.reshape(moved, mshape[:len(keep)] + (int(np.prod([shape[a] for a in axes])),))
    rev = (Ellipsis, slice(None, None, -1))
    left = _shift_in(np.cumprod(flat, axis=-1), -1)
    right = _shift_in(np.cumprod(flat[rev], axis=-1), -1)[rev]
    o = np.reshape(left * right, mshape)
    return o if moved is x else np.transpose(o, tuple(np.argsort(order)))


def _prod_jvp(primals, tangents, out, *, axis=None, keepdims=False):
    axes = _axes(axis, len(_shape(primals[0])))
    return np.sum(tangents[0] * _others(primals[0], axes), axis=_shift(axes),
                  keepdims=keepdims)


def _prod_vjp(primals, out, g, *, axis=None, keepdims=False):
    x = primals[0]
    shape = _shape(x)
    axes = _axes(axis, len(shape))
    return (_expand(g, shape, axes, keepdims) * _others(x, axes),)


prod_p = _row("prod", lambda x, *, axis=None, keepdims=False: np.prod(x, axis=axis,
                                                                         keepdims=keepdims),
              _prod_jvp, _prod_vjp)


@register(np.prod)
def _prod(x, axis=None, dtype=None, out=None, keepdims=np._NoValue, initial=np._NoValue,
          where=np._NoValue):
    axis, keep = _reduce_args(x, axis, dtype, out, keepdims, where, "prod")
    y = prod_p(x, axis=axis, keepdims=keep)
    if initial is not np._NoValue:
        y = y * initial
    return y.astype(dtype) if dtype is not None else y


register((np.multiply, "reduce"))(_ufunc_reduce("multiply", _prod))


def _trapezoid(y, x=None, dx=1.0, axis=-1):
    shape = _shape(y)
    ax = int(axis) % len(shape)
    if x is None:
        d = dx
    elif len(_shape(x)) == 1:
        d = np.reshape(np.diff(x), tuple(-1 if i == ax else 1 for i in range(len(shape))))
    else:
        d = np.diff(x, axis=ax)
    hi = (slice(None),) * ax + (slice(1, None),)
    lo = (slice(None),) * ax + (slice(None, -1),)
    return np.sum(d * (y[hi] + y[lo]) / 2.0, axis=ax)


for _name in ("trapezoid", "trapz"):  # trapezoid: NumPy >= 2; trapz: NumPy < 2.4
    if hasattr(np, _name):
        ARRAY_FUNCTIONS[getattr(np, _name)] = _trapezoid


@register(np.average)
def _average(a, axis=None, weights=None, returned=False, *, keepdims=np._NoValue):
    keep = False if keepdims is np._NoValue else bool(keepdims)
    if weights is None:
        avg = np.mean(a, axis=axis, keepdims=keep)
        shape = _shape(a)
        count = int(np.prod([shape[i] for i in _axes(axis, len(shape))]))
        wsum = np.broadcast_to(np.asarray(count, dtype=float), _shape(avg)).copy()
    else:
        shape, wshape = _shape(a), _shape(weights)
        if wshape != shape:
            if axis is None:
                raise TypeError("Axis must be specified when shapes of a and weights differ.")
            axes = _axes(axis, len(shape))
            weights = np.reshape(weights, tuple(
                wshape[axes.index(i)] if i in axes else 1 for i in range(len(shape))))
        wsum = np.sum(np.broadcast_to(weights, shape) if _shape(weights) != shape else weights,
                      axis=axis, keepdims=keep)
        avg = np.sum(a * weights, axis=axis, keepdims=keep) / wsum
    return (avg, wsum) if returned else avg
