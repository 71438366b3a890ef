"""Shapes, selection and indexing: reshape, transpose, concatenation, splitting, flips,
where, clip, basic and fancy indexing (and its pullback, the scatter), sort, pad, diagonals,
astype, copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from ...tracing import is_traced
from .core import (
    _axes,
    _k,
    _kink_logs,
    _log_kink,
    _row,
    _shape,
    _shift,
    _zeros_t,
    align,
    getitem,
    register,
    strip,
    unbroadcast,
)

# -- shapes ----------------------------------------------------------------------------------

reshape_p = _row(
    "reshape", lambda x, *, shape: np.reshape(x, shape),
    lambda p, t, out, *, shape: np.reshape(t[0], (_k(t[0]), *_shape(out))),
    lambda p, out, g, *, shape: (np.reshape(g, _shape(p[0])),), shapes_only=True)


@register(np.reshape)
def _reshape(x, shape=None, order="C", *, newshape=None, copy=None):
    shape = newshape if shape is None else shape
    if order != "C":
        raise UnsupportedError("np.reshape with order other than 'C' is not supported")
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    return reshape_p(x, shape=shape)


def _transpose_jvp(p, t, out, *, axes):
    return np.transpose(t[0], (0, *_shift(axes)))


transpose_p = _row(
    "transpose", lambda x, *, axes: np.transpose(x, axes), _transpose_jvp,
    lambda p, out, g, *, axes: (np.transpose(g, tuple(np.argsort(axes))),), shapes_only=True)


@register(np.transpose)
def _transpose(x, axes=None):
    nd = len(_shape(x))
    axes = tuple(range(nd))[::-1] if axes is None else tuple(int(a) % nd for a in axes)
    return transpose_p(x, axes=axes)


@register(np.swapaxes)
def _swapaxes(x, axis1, axis2):
    nd = len(_shape(x))
    axes = list(range(nd))
    a, b = int(axis1) % nd, int(axis2) % nd
    axes[a], axes[b] = axes[b], axes[a]
    return _transpose(x, axes)


@register(np.moveaxis)
def _moveaxis(x, source, destination):
    nd = len(_shape(x))
    src = [int(a) % nd for a in np.atleast_1d(source)]
    dst = [int(a) % nd for a in np.atleast_1d(destination)]
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return _transpose(x, order)


@register(np.squeeze)
def _squeeze(x, axis=None):
    shape = _shape(x)
    axes = [i for i, n in enumerate(shape) if n == 1] if axis is None else \
        list(_axes(axis, len(shape)))
    return reshape_p(x, shape=tuple(n for i, n in enumerate(shape) if i not in axes))


@register(np.expand_dims)
def _expand_dims(x, axis):
    return reshape_p(x, shape=np.expand_dims(np.empty(_shape(x), dtype=bool), axis).shape)


@register(np.ravel)
def _ravel(x, order="C"):
    return _reshape(x, (-1,), order)


def _atleast_nd(ndim: int) -> Callable[..., Any]:
    """``np.atleast_<ndim>d``: NumPy's placement of the new axes (1-D ``(n,)`` becomes
    ``(1, n)`` and ``(1, n, 1)``, 2-D ``(m, n)`` becomes ``(m, n, 1)``)."""
    def one(a: Any) -> Any:
        shape = _shape(a)
        if len(shape) >= ndim:
            return a
        if ndim == 3:
            new = {0: (1, 1, 1), 1: (1, *shape, 1), 2: (*shape, 1)}[len(shape)]
        else:
            new = (1,) * (ndim - len(shape)) + tuple(shape)
        return reshape_p(a, shape=new) if is_traced(a) else np.reshape(a, new)

    def atleast(*arys):
        out = [one(a) for a in arys]
        return out[0] if len(out) == 1 else tuple(out)
    return atleast


for _nd in (1, 2, 3):
    register(getattr(np, f"atleast_{_nd}d"))(_atleast_nd(_nd))


def _broadcast_jvp(p, t, out, *, shape):
    tt = align(t[0], _shape(p[0]), len(shape))
    return np.broadcast_to(tt, (_k(t[0]), *shape))


broadcast_to_p = _row(
    "broadcast_to", lambda x, *, shape: np.broadcast_to(x, shape), _broadcast_jvp,
    lambda p, out, g, *, shape: (unbroadcast(g, _shape(p[0])),), shapes_only=True)


@register(np.broadcast_to)
def _broadcast_to(x, shape, subok=False):
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    return broadcast_to_p(x, shape=shape)


def _concat_jvp(primals, tangents, out, *, axis):
    k = _k(next(t for t in tangents if t is not None))
    parts = [t if t is not None else _zeros_t(k, p) for p, t in zip(primals, tangents,
                                                                    strict=True)]
    return concatenate_p(*parts, axis=axis + 1)


def _concat_vjp(primals, out, g, *, axis):
    bars, start = [], 0
    for p in primals:
        stop = start + _shape(p)[axis]
        bars.append(getitem(g, (slice(None),) * axis + (slice(start, stop),)))
        start = stop
    return tuple(bars)


concatenate_p = _row("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                     _concat_jvp, _concat_vjp, shapes_only=True)


@register(np.concatenate)
def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [np.reshape(a, (-1,)) for a in arrays], 0
    nd = len(_shape(arrays[0]))
    return concatenate_p(*arrays, axis=int(axis) % nd)


@register(np.stack)
def _stack(arrays, axis=0, out=None, **kw):
    arrays = list(arrays)
    nd = len(_shape(arrays[0])) + 1
    ax = int(axis) % nd
    return _concatenate([_expand_dims(a, ax) if is_traced(a) else np.expand_dims(a, ax)
                         for a in arrays], axis=ax)


@register(np.hstack)
def _hstack(tup, **kw):
    arrays = [_atleast_nd(1)(a) for a in tup]
    return _concatenate(arrays, axis=0 if len(_shape(arrays[0])) == 1 else 1)


@register(np.vstack)
def _vstack(tup, **kw):
    arrays = [a if len(_shape(a)) >= 2 else np.reshape(a, (1, -1)) for a in tup]
    return _concatenate(arrays, axis=0)


@register(np.flip)
def _flip(x, axis=None):
    nd = len(_shape(x))
    axes = _axes(axis, nd)
    return getitem(x, tuple(slice(None, None, -1) if i in axes else slice(None)
                            for i in range(nd)))


@register(np.diff)
def _diff(x, n=1, axis=-1):
    nd = len(_shape(x))
    ax = int(axis) % nd
    for _ in range(n):
        hi = (slice(None),) * ax + (slice(1, None),)
        lo = (slice(None),) * ax + (slice(None, -1),)
        x = getitem(x, hi) - getitem(x, lo)
    return x


@register(np.roll)
def _roll(a, shift, axis=None):
    if axis is None:
        return np.reshape(_roll(np.reshape(a, (-1,)), shift, 0), _shape(a))
    shape = _shape(a)
    shifts: dict[int, int] = {}
    for sh, ax in np.broadcast(np.asarray(shift), np.asarray(axis)):
        ax = int(ax) % len(shape)
        shifts[ax] = shifts.get(ax, 0) + int(sh)
    for ax, sh in shifts.items():
        if shape[ax] and sh % shape[ax]:
            idx = (np.arange(shape[ax]) - sh) % shape[ax]
            a = _getitem(a, (slice(None),) * ax + (idx,))
    return a


@register(np.append)
def _append(arr, values, axis=None):
    arr, values = (a if is_traced(a) else np.asarray(a) for a in (arr, values))
    if axis is None:
        return _concatenate([np.reshape(arr, (-1,)), np.reshape(values, (-1,))], axis=0)
    return _concatenate([arr, values], axis=axis)


@register(np.column_stack)
def _column_stack(tup):
    return _concatenate([np.reshape(a, (-1, 1)) if len(_shape(a)) < 2 else a for a in tup],
                        axis=1)


def _split_bounds(n: int, sections: Any, equal: bool) -> list[int]:
    if np.ndim(sections) == 0:
        count = int(sections)
        if count <= 0:
            raise ValueError("number sections must be larger than 0.")
        each, extra = divmod(n, count)
        if equal and extra:
            raise ValueError("array split does not result in an equal division")
        sizes = [each + 1] * extra + [each] * (count - extra)
        return [0, *np.cumsum(sizes).tolist()]
    return [0, *(int(i) for i in sections), n]


def _split_at(ary: Any, bounds: list[int], axis: int) -> list:
    shape = _shape(ary)
    ax = int(axis) % len(shape)
    return [_getitem(ary, (slice(None),) * ax + (slice(lo, hi),))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


@register(np.split)
def _split(ary, indices_or_sections, axis=0):
    n = _shape(ary)[int(axis) % len(_shape(ary))]
    return _split_at(ary, _split_bounds(n, indices_or_sections, True), axis)


@register(np.array_split)
def _array_split(ary, indices_or_sections, axis=0):
    n = _shape(ary)[int(axis) % len(_shape(ary))]
    return _split_at(ary, _split_bounds(n, indices_or_sections, False), axis)


@register(np.cross)
def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = np.moveaxis(a, axisa, -1), np.moveaxis(b, axisb, -1)
    if _shape(a)[-1] != 3 or _shape(b)[-1] != 3:
        raise UnsupportedError("np.cross is supported for 3-vectors only (NumPy deprecates "
                               "2-vectors); pad them with a zero third component")
    a0, a1, a2, b0, b1, b2 = a[..., 0], a[..., 1], a[..., 2], b[..., 0], b[..., 1], b[..., 2]
    c = np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return np.moveaxis(c, -1, axisc)



# -- where, clip, indexing, astype -----------------------------------------------------------

def _where_jvp(primals, tangents, out, *, cond):
    nd = len(_shape(out))
    k = _k(next(t for t in tangents if t is not None))
    parts = [align(t, _shape(p), nd) if t is not None else 0.0
             for p, t in zip(primals, tangents, strict=True)]
    return np.broadcast_to(np.where(cond, parts[0], parts[1]), (k, *_shape(out)))


def _where_vjp(primals, out, g, *, cond):
    zero = np.zeros((), dtype=np.result_type(strip(g), np.float16))
    return (unbroadcast(np.where(cond, g, zero), _shape(primals[0])),
            unbroadcast(np.where(cond, zero, g), _shape(primals[1])))


where_p = _row("where", lambda x, y, *, cond: np.where(cond, x, y), _where_jvp, _where_vjp,
               shapes_only=True)


@register(np.where)
def _where(condition, x=None, y=None):
    if x is None or y is None:
        return np.where(strip(condition))
    if is_traced(condition):
        condition = strip(condition) != 0
    return where_p(x, y, cond=np.asarray(condition))


@register(np.clip)
def _clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, **kw):  # noqa: A002
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is not None:
        a = np.maximum(a, lo)
    if hi is not None:
        a = np.minimum(a, hi)
    return a


def _index(index: Any, ndim: int) -> tuple:
    """The index as a tuple of plain entries, ``...`` written out as full slices (the jvp
    moves the direction axis to the end, which an ``...`` would reach)."""
    index = index if isinstance(index, tuple) else (index,)
    index = tuple(strip(i) if is_traced(i) else i for i in index)
    at = [j for j, i in enumerate(index) if i is Ellipsis]
    if at:
        used = sum(0 if i is None or i is Ellipsis else
                   np.ndim(i) if np.asarray(i).dtype == bool else 1 for i in index)
        index = index[:at[0]] + (slice(None),) * (ndim - used) + index[at[0] + 1:]
    return index


def _is_basic(index: tuple) -> bool:
    return all(isinstance(i, int | slice | np.integer) or i is None or i is Ellipsis
               for i in index)


def _getitem_jvp(primals, tangents, out, *, index):
    t = tangents[0]
    moved = np.moveaxis(t, 0, -1)
    return np.moveaxis(getitem(moved, index), -1, 0)


def _scatter(g: Any, index: tuple, shape: tuple[int, ...], dtype: Any) -> Any:
    z = np.zeros(shape, dtype=dtype)
    if _is_basic(index):
        z[index] = g
    else:
        np.add.at(z, index, g)
    return z


def _scatter_jvp(primals, tangents, out, *, index, shape):
    t = tangents[0]
    moved = np.moveaxis(t, 0, -1)
    return np.moveaxis(scatter_p(moved, index=index, shape=shape + (_k(t),)), -1, 0)


scatter_p = _row(
    "scatter_add",
    lambda g, *, index, shape: _scatter(g, index, shape, np.result_type(g, np.float16)),
    _scatter_jvp, lambda p, out, g, *, index, shape: (getitem(g, index),), shapes_only=True)

getitem_p = _row(
    "getitem", lambda x, *, index: x[index], _getitem_jvp,
    lambda p, out, g, *, index: (scatter_p(g, index=index, shape=_shape(p[0])),), shapes_only=True)


@register("getitem")
def _getitem(x, index):
    index = _index(index, len(_shape(x)))
    if not is_traced(x):
        return x[index]
    return getitem_p(x, index=index)


@register(np.take)
def _take(a, indices, axis=None, **kw):
    if axis is None:
        return _getitem(np.reshape(a, (-1,)), (np.asarray(indices),))
    ax = int(axis) % len(_shape(a))
    return _getitem(a, (slice(None),) * ax + (np.asarray(indices),))


def _axis_index(shape: tuple[int, ...], ax: int, idx: Any) -> tuple:
    """Advanced index picking ``idx`` along ``ax`` and every entry along the other axes
    (what ``np.take_along_axis`` does)."""
    nd = len(shape)
    return tuple(idx if d == ax else np.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - 1 - d))
                 for d, n in enumerate(shape))


@register(np.take_along_axis)
def _take_along_axis(arr, indices, axis=-1):
    indices = np.asarray(strip(indices))
    if axis is None:
        arr, axis = np.reshape(arr, (-1,)), 0
    shape = _shape(arr)
    return _getitem(arr, _axis_index(shape, int(axis) % len(shape), indices))


@register(np.sort)
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """A gather through the sorting permutation: the derivative moves with the entries."""
    if order is not None:
        raise UnsupportedError("np.sort with order= (structured arrays) is not supported")
    if axis is None:
        a, axis = np.reshape(a, (-1,)), -1
    shape = _shape(a)
    ax = int(axis) % len(shape) if shape else int(axis)
    plain = strip(a)
    perm = np.argsort(plain, axis=ax, kind="stable")
    if _kink_logs:  # ties are kinks: log the gap between neighbours in sorted order
        ranked = np.take_along_axis(np.asarray(plain), perm, axis=ax)
        n = shape[ax]
        _log_kink("sort", np.take(ranked, range(1, n), axis=ax),
                  np.take(ranked, range(n - 1), axis=ax))
    return _getitem(a, _axis_index(shape, ax, perm))


@register(np.repeat)
def _repeat(a, repeats, axis=None):
    if axis is None:
        a, axis = np.reshape(a, (-1,)), 0
    shape = _shape(a)
    ax = int(axis) % len(shape)
    idx = np.repeat(np.arange(shape[ax]), np.asarray(strip(repeats)))
    return _getitem(a, (slice(None),) * ax + (idx,))


@register(np.tile)
def _tile(A, reps):  # noqa: N803
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shape = _shape(A)
    d = max(len(reps), len(shape))
    s = (1,) * (d - len(shape)) + tuple(shape)
    r = (1,) * (d - len(reps)) + reps
    x = np.reshape(A, tuple(v for n in s for v in (1, n)))
    x = np.broadcast_to(x, tuple(v for pair in zip(r, s, strict=True) for v in pair))
    return np.reshape(x, tuple(ri * si for ri, si in zip(r, s, strict=True)))


_PAD_GATHERS = ("edge", "reflect", "symmetric", "wrap")


@register(np.pad)
def _pad(array, pad_width, mode="constant", **kwargs):
    """``constant``: the array scattered into the constant frame; ``edge``, ``reflect``,
    ``symmetric``, ``wrap``: a gather per axis through the index map NumPy pads
    ``arange(n)`` with."""
    shape = _shape(array)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (len(shape), 2))
    if mode == "constant":
        cv = kwargs.pop("constant_values", 0)
        if kwargs:
            raise UnsupportedError(f"np.pad(mode='constant') with {', '.join(kwargs)} "
                                   "is not supported")
        if is_traced(cv) or any(is_traced(c) for c in np.ravel(np.asarray(cv, dtype=object))):
            raise UnsupportedError("np.pad with traced constant_values is not supported; "
                                   "pad with constants")
        dtype = np.result_type(strip(array), np.float16)
        frame = np.pad(np.zeros(shape, dtype=dtype), widths, mode="constant",
                       constant_values=cv)
        index = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, shape,
                                                                    strict=True))
        y = scatter_p(array, index=index, shape=frame.shape)
        return y + frame if np.any(frame) else y
    if mode not in _PAD_GATHERS:
        raise UnsupportedError(f"np.pad with mode={mode!r} is not supported; use 'constant', "
                               "'edge', 'reflect', 'symmetric' or 'wrap'")
    if kwargs.get("reflect_type", "even") != "even":
        raise UnsupportedError("np.pad with reflect_type='odd' is not supported")
    kwargs.pop("reflect_type", None)
    if kwargs:
        raise UnsupportedError(f"np.pad(mode={mode!r}) with {', '.join(kwargs)} is not "
                               "supported")
    for ax, ((b, e), n) in enumerate(zip(widths, shape, strict=True)):
        if b or e:
            idx = np.pad(np.arange(n), (int(b), int(e)), mode=mode)
            array = _getitem(array, (slice(None),) * ax + (idx,))
    return array


@register(np.diagonal)
def _diagonal(a, offset=0, axis1=0, axis2=1):
    shape = _shape(a)
    nd = len(shape)
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a1, a2 = int(axis1) % nd, int(axis2) % nd
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    rest = [i for i in range(nd) if i not in (a1, a2)]
    k = int(offset)
    start, stop = max(0, -k), min(shape[a1], shape[a2] - k)
    rows = np.arange(start, max(start, stop))
    x = a if rest + [a1, a2] == list(range(nd)) else np.transpose(a, rest + [a1, a2])
    return _getitem(x, (slice(None),) * len(rest) + (rows, rows + k))


@register(np.diag)
def _diag(v, k=0):
    shape = _shape(v)
    if len(shape) == 2:
        return _diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    k = int(k)
    rows = np.arange(shape[0]) + max(0, -k)
    n = shape[0] + abs(k)
    return scatter_p(v, index=(rows, rows + k), shape=(n, n))


@register(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if out is not None:
        raise UnsupportedError("np.trace(..., out=...) cannot carry derivatives")
    y = np.sum(_diagonal(a, offset, axis1, axis2), axis=-1)
    return y.astype(dtype) if dtype is not None else y


def _tri_mask(shape: tuple[int, ...], k: int, upper: bool) -> np.ndarray:
    n, m = (shape[-2:] if len(shape) >= 2 else (shape[-1], shape[-1]))
    return ~np.tri(n, m, k - 1, dtype=bool) if upper else np.tri(n, m, k, dtype=bool)


@register(np.triu)
def _triu(m, k=0):
    return where_p(m, 0.0, cond=_tri_mask(_shape(m), int(k), True))


@register(np.tril)
def _tril(m, k=0):
    return where_p(m, 0.0, cond=_tri_mask(_shape(m), int(k), False))


def _astype_jvp(p, t, out, *, dtype):
    return t[0].astype(dtype) if hasattr(t[0], "astype") else np.asarray(t[0], dtype)


astype_p = _row(
    "astype", lambda x, *, dtype: np.asarray(x).astype(dtype), _astype_jvp,
    lambda p, out, g, *, dtype: (g.astype(np.result_type(strip(p[0]), np.float16))
                                 if hasattr(g, "astype") else g,), shapes_only=True)


def astype(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)`` for traced values (real floating types only)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        raise UnsupportedError(f"astype({dtype}) of a traced value drops its derivative; "
                               "only floating-point types carry derivatives")
    return astype_p(x, dtype=dtype)


@register(np.copy)
def _copy(a, order="K", subok=False):
    return a.copy()  # a new handle: a write into the copy leaves `a` alone


# -- more shape functions, composed from the rows above ---------------------------------------

register(np.flipud)(lambda m: _flip(m, 0))
register(np.fliplr)(lambda m: _flip(m, 1))


@register(np.rot90)
def _rot90(m, k=1, axes=(0, 1)):
    """NumPy's own composition of flips and a transpose."""
    nd = len(_shape(m))
    a0, a1 = (int(a) % nd for a in axes)
    k = int(k) % 4
    if k == 0:
        return m
    if k == 2:
        return _flip(_flip(m, a0), a1)
    order = list(range(nd))
    order[a0], order[a1] = order[a1], order[a0]
    return _transpose(_flip(m, a1), order) if k == 1 else _flip(_transpose(m, order), a1)


def _split_along(axis: int, least: int, name: str) -> Callable[..., Any]:
    def split(ary, indices_or_sections):
        nd = len(_shape(ary))
        if nd < least:
            raise ValueError(f"{name} only works on arrays of {least} or more dimensions")
        return _split(ary, indices_or_sections, axis if nd > 1 else 0)
    return split


register(np.hsplit)(_split_along(1, 1, "hsplit"))
register(np.vsplit)(_split_along(0, 2, "vsplit"))
register(np.dsplit)(_split_along(2, 3, "dsplit"))


@register(np.rollaxis)
def _rollaxis(a, axis, start=0):
    nd = len(_shape(a))
    axis, start = int(axis) % nd, int(start)
    start = start + nd if start < 0 else start
    if axis < start:
        start -= 1
    order = [i for i in range(nd) if i != axis]
    order.insert(start, axis)
    return _transpose(a, order)


@register(np.partition)
def _partition(a, kth, axis=-1, kind="introselect", order=None):
    """A gather through NumPy's own partitioning permutation (like :func:`_sort`)."""
    if order is not None:
        raise UnsupportedError("np.partition with order= (structured arrays) is not supported")
    if axis is None:
        a, axis = np.reshape(a, (-1,)), -1
    shape = _shape(a)
    ax = int(axis) % len(shape)
    perm = np.argpartition(strip(a), kth, axis=ax)
    if _kink_logs:  # a tie at a partition point is a kink, as for sort
        _log_kink("partition", *(np.sort(np.asarray(strip(a)), axis=ax)[
            (slice(None),) * ax + (s,)] for s in (slice(1, None), slice(None, -1))))
    return _getitem(a, _axis_index(shape, ax, perm))


@register(np.gradient)
def _gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy's second-order central differences (and first- or second-order one-sided ones
    at the edges), for uniform spacings: linear in ``f``."""
    nd = len(_shape(f))
    axes = list(range(nd)) if axis is None else \
        [int(axis) % nd] if np.ndim(axis) == 0 else [int(a) % nd for a in axis]
    steps = list(varargs) if varargs else [1.0]
    if len(steps) == 1:
        steps = steps * len(axes)
    if len(steps) != len(axes) or any(np.ndim(strip(h)) != 0 for h in steps):
        raise UnsupportedError("np.gradient of a traced value with coordinate arrays is not "
                               "supported; pass uniform spacings (scalars)")
    out = [_gradient_along(f, ax, float(strip(h)), int(edge_order)) for ax, h in
           zip(axes, steps, strict=True)]
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f: Any, ax: int, h: float, edge_order: int) -> Any:
    n = _shape(f)[ax]
    if n < edge_order + 1:
        raise ValueError("Shape of array too small to calculate a numerical gradient, "
                         "at least (edge_order + 1) elements are required.")

    def at(s: Any) -> Any:
        return getitem(f, (slice(None),) * ax + (s,))

    def row(s: Any) -> Any:
        return np.expand_dims(at(s), ax)

    mid = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
    if edge_order == 1:
        first = (row(1) - row(0)) / h
        last = (row(-1) - row(-2)) / h
    else:
        first = (-1.5 * row(0) + 2.0 * row(1) - 0.5 * row(2)) / h
        last = (0.5 * row(-3) - 2.0 * row(-2) + 1.5 * row(-1)) / h
    return np.concatenate([first, mid, last], axis=ax)


@register(np.select)
def _select(condlist, choicelist, default=0):
    """The first choice whose condition holds, else ``default``: nested ``where``s."""
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist, strict=True))):
        out = np.where(strip(cond), choice, out)
    return out


@register(np.linspace)
def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0,
              *, device=None):
    """``start + (stop - start) * t`` with NumPy's own grid ``t`` of [0, 1]."""
    t = np.linspace(0.0, 1.0, int(num), endpoint=endpoint)
    nd = max(len(_shape(start)), len(_shape(stop)))
    t = np.reshape(t, (-1,) + (1,) * nd)
    y = start + (stop - start) * t
    if axis != 0:
        y = np.moveaxis(y, 0, axis)
    y = astype(y, dtype) if dtype is not None else y
    if retstep:
        step = (stop - start) / (int(num) - 1 if endpoint else int(num)) if int(num) > int(
            endpoint) else np.nan
        return y, step
    return y
