"""How traced values (duals, tape variables) answer NumPy's dispatch protocols.

``__array_ufunc__`` maps a ufunc to its rule-table row; ufuncs that have no derivative
(comparisons, ``isfinite``, ``floor``) run on the plain values. ``__array_function__``
looks the function up in :data:`ARRAY_FUNCTIONS`. Anything else raises an error that
names the NumPy function.

The structural half of the rule table lives here: sums, max/min, matrix products,
``einsum``, reshapes, transposes, concatenation, ``where``, indexing, ``astype``. Each
is a :class:`~diffcheck.primitives.Primitive` with ``partials=()`` and a ``jvp``/``vjp``
pair written with NumPy calls, so the same rule runs on plain arrays and on duals
(nested duals give Hessians). Tangents carry a leading direction axis, so a
non-negative ``axis`` argument shifts by one inside a jvp. Everything else NumPy code
commonly calls (``mean``, ``var``, ``std``, ``stack``, ``clip``, ``outer``, ...) is
composed from those rows.

While a :func:`watch_kinks` block is active, every non-smooth operation on a traced
value (abs, maximum, comparisons, ...) is logged with its distance to the kink, so a
checker can tell a kink from a wrong derivative.

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

import contextlib
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..primitives import UFUNC_ROWS, Primitive
from ..tracing import Traced, is_traced

#: ufuncs whose result does not depend differentiably on the inputs
NONDIFF_UFUNCS = {
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.signbit, np.floor, np.ceil, np.trunc, np.rint,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
}
COMPARISONS = {np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal}

#: NumPy function (or ``(ufunc, method)``, or ``"getitem"``) -> implementation on traced values
ARRAY_FUNCTIONS: dict[Any, Callable] = {}

#: the structural rows, by name
STRUCTURAL_ROWS: dict[str, Primitive] = {}


def strip(x: Any) -> Any:
    """The plain value under every level of tracing."""
    while isinstance(x, Traced):
        x = x.val
    return x


# -- kink log --------------------------------------------------------------------------------

@dataclass
class KinkLog:
    """Non-smooth operations met while tracing, with their closest approach to a kink."""

    ops: dict[str, int] = field(default_factory=dict)  #: op name -> elements at a kink
    closest: dict[str, float] = field(default_factory=dict)  #: op -> min relative gap
    calls: int = 0  #: non-smooth operations on traced values
    #: smooth on reals but not complex-analytic in NumPy (var, std, norm, vdot conjugate)
    conjugating: set[str] = field(default_factory=set)

    @property
    def analytic(self) -> bool:
        """True if the code met no kink, comparison or conjugation: the complex step works."""
        return self.calls == 0 and not self.conjugating

    def names(self) -> list[str]:
        return sorted(set(self.closest) | self.conjugating)

    @property
    def at_kink(self) -> bool:
        return any(self.ops.values())

    def record(self, name: str, a: Any, b: Any = 0.0) -> None:
        a, b = np.asarray(strip(a)), np.asarray(strip(b))
        if np.iscomplexobj(a) or np.iscomplexobj(b):
            a, b = a.real, b.real
        self.calls += 1
        with np.errstate(all="ignore"):
            gap = np.abs(a - b)
            size = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.finfo(float).tiny)
            rel = gap / size
        eps = np.finfo(np.result_type(a.dtype, b.dtype, np.float16)).eps
        ties = int(np.count_nonzero(rel <= 16 * eps))
        self.ops[name] = self.ops.get(name, 0) + ties
        low = float(np.min(rel, initial=np.inf))
        self.closest[name] = min(self.closest.get(name, np.inf), low)

    def describe(self) -> str:
        hit = [f"np.{k} ({n} element{'s' if n != 1 else ''} at the kink)"
               for k, n in self.ops.items() if n]
        return ", ".join(hit)


_kink_logs: list[KinkLog] = []


@contextlib.contextmanager
def watch_kinks() -> Iterator[KinkLog]:
    """Log the non-smooth operations on traced values inside the block.

    >>> from diffcheck.engines.reverse import Tape
    >>> with watch_kinks() as log:
    ...     _ = np.maximum(Tape().var(np.array([0.0, 2.0])), 0.0)
    >>> log.ops, log.analytic
    ({'maximum': 1}, False)
    """
    log = KinkLog()
    _kink_logs.append(log)
    try:
        yield log
    finally:
        _kink_logs.remove(log)


def _log_kink(name: str, a: Any, b: Any = 0.0) -> None:
    for log in _kink_logs:
        log.record(name, a, b)


def _log_conjugating(name: str) -> None:
    for log in _kink_logs:
        log.conjugating.add(name)


# -- the protocols ---------------------------------------------------------------------------

def ufunc_method(dispatch: Callable, ufunc: Any, method: str, inputs: tuple,
                 kwargs: dict) -> Any:
    """Answer ``__array_ufunc__`` for a traced value."""
    if kwargs.get("out") is not None:
        raise UnsupportedError(
            f"np.{ufunc.__name__}(..., out=...) writes into an array in place, which cannot "
            f"carry derivatives; assign the result instead (y = np.{ufunc.__name__}(...)).")
    if ufunc in NONDIFF_UFUNCS and method == "__call__":
        if _kink_logs and any(is_traced(a) for a in inputs):
            _log_kink(ufunc.__name__, *inputs[:2])
        return getattr(ufunc, method)(*[strip(a) for a in inputs], **kwargs)
    if method == "__call__" and ufunc in UFUNC_ROWS and not kwargs:
        row = UFUNC_ROWS[ufunc]
        if _kink_logs and not row.smooth:
            _log_kink(row.name, *inputs[:2])
        return dispatch(row, inputs, {})
    handler = ARRAY_FUNCTIONS.get((ufunc, method))
    if handler is not None:
        return handler(*inputs, **kwargs)
    raise UnsupportedError(
        f"diffcheck cannot differentiate np.{ufunc.__name__}"
        f"{'' if method == '__call__' else '.' + method}"
        f"{'' if not kwargs else ' with ' + ', '.join(kwargs)}; "
        "rewrite that step with supported NumPy operations (see diffcheck.supported_numpy()).")


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Answer ``__array_function__`` for a traced value."""
    handler = ARRAY_FUNCTIONS.get(func)
    if handler is None:
        name = getattr(func, "__name__", repr(func))
        module = getattr(func, "__module__", "numpy") or "numpy"
        prefix = "np." if module in ("numpy", "numpy.core.fromnumeric") else \
            module.replace("numpy", "np") + "."
        raise UnsupportedError(
            f"diffcheck cannot differentiate {prefix}{name} yet; rewrite that step with "
            "supported NumPy operations (see diffcheck.supported_numpy()).")
    return handler(*args, **kwargs)


def getitem(x: Any, index: Any) -> Any:
    """Indexing of a traced value."""
    handler = ARRAY_FUNCTIONS.get("getitem")
    if handler is None:
        raise UnsupportedError("indexing a traced value is not supported yet")
    return handler(x, index)


def supported_numpy() -> list[str]:
    """Names of the NumPy functions and ufuncs that traced values support.

    >>> "sin" in supported_numpy(), "einsum" in supported_numpy()
    (True, True)
    """
    names = {u.__name__ for u in UFUNC_ROWS} | {u.__name__ for u in NONDIFF_UFUNCS}
    for key in ARRAY_FUNCTIONS:
        if isinstance(key, tuple):
            names.add(key[0].__name__ if key[1] == "__call__" else
                      f"{key[0].__name__}.{key[1]}")
        elif isinstance(key, str):
            names.add(key)
        else:
            names.add(getattr(key, "__name__", str(key)))
    return sorted(names)


# -- helpers ---------------------------------------------------------------------------------

def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, Traced) else np.shape(x)


def _k(t: Any) -> int:
    return _shape(t)[0]


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Normalised non-negative axes (``None`` means all)."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(sorted(int(a) % ndim if ndim else 0 for a in axis))


def _shift(axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a + 1 for a in axes)


def _zeros_t(k: int, x: Any) -> np.ndarray:
    return np.zeros((k, *_shape(x)), dtype=np.result_type(strip(x), np.float16))


def _lead(t: Any, ndim: int) -> Any:
    """Pad tangent ``t`` (k, *s) with singleton axes after k up to ``ndim`` value axes."""
    s = _shape(t)[1:]
    if len(s) >= ndim:
        return t
    return np.reshape(t, (_k(t),) + (1,) * (ndim - len(s)) + tuple(s))


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape`` (undo broadcasting); works on duals."""
    from .reverse import unbroadcast as _ub

    return _ub(g, tuple(shape))


def _row(name: str, impl: Callable, jvp: Callable, vjp: Callable) -> Primitive:
    row = Primitive(name, impl, (), jvp=jvp, vjp=vjp)
    STRUCTURAL_ROWS[name] = row
    return row


def register(*keys: Any) -> Callable[[Callable], Callable]:
    """Decorator: route the given NumPy functions (or ``(ufunc, method)``) to ``fn``."""
    def deco(fn: Callable) -> Callable:
        for key in keys:
            ARRAY_FUNCTIONS[key] = fn
        return fn
    return deco


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
             _sum_jvp, _sum_vjp)


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
    return np.sqrt(_var(x, axis, dtype, out, ddof, keepdims, where=where,
                        correction=correction))


register((np.add, "reduce"))(
    lambda x, axis=0, dtype=None, out=None, keepdims=False, **kw:
    _sum(x, axis=axis, dtype=dtype, out=out, keepdims=keepdims))
register((np.maximum, "reduce"))(
    lambda x, axis=0, out=None, keepdims=False, **kw: _max(x, axis=axis, out=out,
                                                           keepdims=keepdims))
register((np.minimum, "reduce"))(
    lambda x, axis=0, out=None, keepdims=False, **kw: _min(x, axis=axis, out=out,
                                                           keepdims=keepdims))


# -- cumsum ----------------------------------------------------------------------------------

def _cumsum_vjp(primals, out, g, *, axis):
    rev = np.flip(g, axis=axis)
    return (np.flip(np.cumsum(rev, axis=axis), axis=axis),)


cumsum_p = _row("cumsum", lambda x, *, axis: np.cumsum(x, axis=axis),
                lambda p, t, out, *, axis: np.cumsum(t[0], axis=axis + 1), _cumsum_vjp)


@register(np.cumsum)
def _cumsum(x, axis=None, dtype=None, out=None):
    if axis is None:
        x, axis = np.reshape(x, (-1,)), 0
    return cumsum_p(x, axis=_axes(axis, len(_shape(x)))[0])


register((np.add, "accumulate"))(lambda x, axis=0, **kw: _cumsum(x, axis=axis))


# -- matmul, dot, einsum ---------------------------------------------------------------------

def _promote(a: Any, b: Any) -> tuple[Any, Any]:
    """1-D operands as matrices: a row vector on the left, a column vector on the right."""
    if len(_shape(a)) == 1:
        a = np.reshape(a, (1, _shape(a)[0]))
    if len(_shape(b)) == 1:
        b = np.reshape(b, (_shape(b)[0], 1))
    return a, b


def _tangent_matrix(t: Any, x: Any, left: bool, ndim: int) -> Any:
    s = _shape(x)
    if len(s) == 1:
        t = np.reshape(t, (_k(t), 1, s[0]) if left else (_k(t), s[0], 1))
    return _lead(t, ndim)


def _matmul_jvp(primals, tangents, out, **_):
    a, b = _promote(*primals)
    nd = max(len(_shape(a)), len(_shape(b)))
    ta, tb = tangents
    total = None
    if ta is not None:
        total = np.matmul(_tangent_matrix(ta, primals[0], True, nd), b)
    if tb is not None:
        term = np.matmul(a, _tangent_matrix(tb, primals[1], False, nd))
        total = term if total is None else total + term
    k = _k(ta if ta is not None else tb)
    return np.reshape(total, (k, *_shape(out)))


def _matmul_vjp(primals, out, g, **_):
    a0, b0 = primals
    a, b = _promote(a0, b0)
    gm = np.reshape(g, _shape(np.matmul(strip(a), strip(b))))
    ga = np.matmul(gm, np.swapaxes(b, -1, -2))
    gb = np.matmul(np.swapaxes(a, -1, -2), gm)
    ga = np.reshape(unbroadcast(ga, _shape(a)), _shape(a0))
    gb = np.reshape(unbroadcast(gb, _shape(b)), _shape(b0))
    return ga, gb


matmul_p = _row("matmul", np.matmul, _matmul_jvp, _matmul_vjp)


@register((np.matmul, "__call__"), np.matmul)
def _matmul(a, b, **kwargs):
    if kwargs:
        raise UnsupportedError(f"np.matmul with {', '.join(kwargs)} is not supported")
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        raise UnsupportedError("np.matmul of a scalar: use * instead")
    return matmul_p(a, b)


@register(np.dot)
def _dot(a, b, out=None):
    if out is not None:
        raise UnsupportedError("np.dot(..., out=...) cannot carry derivatives")
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return a * b
    if na <= 2 and nb <= 2:
        return matmul_p(a, b)
    raise UnsupportedError("np.dot of arrays with more than 2 dimensions is not supported; "
                           "use np.matmul or np.einsum")


@register(np.inner)
def _inner(a, b):
    if len(_shape(a)) <= 1 and len(_shape(b)) <= 1:
        return _dot(a, b)
    return np.matmul(a, np.swapaxes(b, -1, -2)) if len(_shape(b)) >= 2 else \
        np.matmul(a, b)


@register(np.vdot)
def _vdot(a, b):
    _log_conjugating("vdot")
    return _dot(np.reshape(a, (-1,)), np.reshape(b, (-1,)))


@register(np.outer)
def _outer(a, b, out=None):
    a, b = np.reshape(a, (-1, 1)), np.reshape(b, (1, -1))
    return a * b


def _parse_einsum(subscripts: str, nargs: int) -> tuple[list[str], str]:
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise UnsupportedError("np.einsum with '...' is not supported; write the axes out")
    if "->" in spec:
        ins, outs = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        outs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = ins.split(",")
    if len(inputs) != nargs:
        raise UnsupportedError("np.einsum: subscripts do not match the number of operands")
    for term in inputs:
        if len(set(term)) != len(term):
            raise UnsupportedError(f"np.einsum with a repeated index in {term!r} (a diagonal) "
                                   "is not supported")
    return inputs, outs


def _free_letter(used: str) -> str:
    return next(c for c in string.ascii_letters if c not in used)


def _einsum_jvp(primals, tangents, out, *, spec):
    inputs, outs = _parse_einsum(spec, len(primals))
    z = _free_letter(spec)
    total = None
    for i, t in enumerate(tangents):
        if t is None:
            continue
        terms = [z + s if j == i else s for j, s in enumerate(inputs)]
        ops = [t if j == i else p for j, p in enumerate(primals)]
        term = einsum_p(*ops, spec=",".join(terms) + "->" + z + outs)
        total = term if total is None else total + term
    return total


def _einsum_vjp(primals, out, g, *, spec):
    inputs, outs = _parse_einsum(spec, len(primals))
    bars = []
    for i, target in enumerate(inputs):
        others = [s for j, s in enumerate(inputs) if j != i]
        avail = set(outs).union(*others) if others else set(outs)
        kept = "".join(c for c in target if c in avail)
        ops = [g] + [p for j, p in enumerate(primals) if j != i]
        bar = einsum_p(*ops, spec=",".join([outs, *others]) + "->" + kept)
        shape = _shape(primals[i])
        bshape = tuple(shape[target.index(c)] if c in kept else 1 for c in target)
        bars.append(np.broadcast_to(np.reshape(bar, bshape), shape))
    return tuple(bars)


einsum_p = _row("einsum", lambda *ops, spec: np.einsum(spec, *ops), _einsum_jvp, _einsum_vjp)


@register(np.einsum)
def _einsum(subscripts, *operands, **kwargs):
    if not isinstance(subscripts, str):
        raise UnsupportedError("np.einsum with interleaved operands is not supported; "
                               "pass a subscripts string")
    kwargs.pop("optimize", None)
    if kwargs:
        raise UnsupportedError(f"np.einsum with {', '.join(kwargs)} is not supported")
    _parse_einsum(subscripts, len(operands))
    return einsum_p(*operands, spec=subscripts.replace(" ", ""))


# -- shapes ----------------------------------------------------------------------------------

reshape_p = _row(
    "reshape", lambda x, *, shape: np.reshape(x, shape),
    lambda p, t, out, *, shape: np.reshape(t[0], (_k(t[0]), *_shape(out))),
    lambda p, out, g, *, shape: (np.reshape(g, _shape(p[0])),))


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
    lambda p, out, g, *, axes: (np.transpose(g, tuple(np.argsort(axes))),))


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


@register(np.atleast_1d, np.atleast_2d)
def _atleast(*arys):
    raise UnsupportedError("np.atleast_1d/2d on a traced value: use reshape instead")


def _broadcast_jvp(p, t, out, *, shape):
    from .forward import align

    tt = align(t[0], _shape(p[0]), len(shape))
    return np.broadcast_to(tt, (_k(t[0]), *shape))


broadcast_to_p = _row(
    "broadcast_to", lambda x, *, shape: np.broadcast_to(x, shape), _broadcast_jvp,
    lambda p, out, g, *, shape: (unbroadcast(g, _shape(p[0])),))


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
                     _concat_jvp, _concat_vjp)


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
    arrays = list(tup)
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


# -- where, clip, indexing, astype -----------------------------------------------------------

def _where_jvp(primals, tangents, out, *, cond):
    from .forward import align

    nd = len(_shape(out))
    k = _k(next(t for t in tangents if t is not None))
    parts = [align(t, _shape(p), nd) if t is not None else 0.0
             for p, t in zip(primals, tangents, strict=True)]
    return np.broadcast_to(np.where(cond, parts[0], parts[1]), (k, *_shape(out)))


def _where_vjp(primals, out, g, *, cond):
    zero = np.zeros((), dtype=np.result_type(strip(g), np.float16))
    return (unbroadcast(np.where(cond, g, zero), _shape(primals[0])),
            unbroadcast(np.where(cond, zero, g), _shape(primals[1])))


where_p = _row("where", lambda x, y, *, cond: np.where(cond, x, y), _where_jvp, _where_vjp)


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


def _index(index: Any) -> tuple:
    index = index if isinstance(index, tuple) else (index,)
    return tuple(strip(i) if is_traced(i) else i for i in index)


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
    _scatter_jvp, lambda p, out, g, *, index, shape: (getitem(g, index),))

getitem_p = _row(
    "getitem", lambda x, *, index: x[index], _getitem_jvp,
    lambda p, out, g, *, index: (scatter_p(g, index=index, shape=_shape(p[0])),))


@register("getitem")
def _getitem(x, index):
    if not is_traced(x):
        return x[_index(index)]
    return getitem_p(x, index=_index(index))


@register(np.take)
def _take(a, indices, axis=None, **kw):
    if axis is None:
        return _getitem(np.reshape(a, (-1,)), (np.asarray(indices),))
    ax = int(axis) % len(_shape(a))
    return _getitem(a, (slice(None),) * ax + (np.asarray(indices),))


def _astype_jvp(p, t, out, *, dtype):
    return t[0].astype(dtype) if hasattr(t[0], "astype") else np.asarray(t[0], dtype)


astype_p = _row(
    "astype", lambda x, *, dtype: np.asarray(x).astype(dtype), _astype_jvp,
    lambda p, out, g, *, dtype: (g.astype(np.result_type(strip(p[0]), np.float16))
                                 if hasattr(g, "astype") else g,))


def astype(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)`` for traced values (real floating types only)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        raise UnsupportedError(f"astype({dtype}) of a traced value drops its derivative; "
                               "only floating-point types carry derivatives")
    return astype_p(x, dtype=dtype)


@register(np.copy)
def _copy(a, order="K", subok=False):
    return a


@register(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    _log_conjugating("linalg.norm")
    if ord is None or ord == 2 and (axis is None and len(_shape(x)) == 1 or np.ndim(axis) == 0
                                    and axis is not None):
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == 1 and (len(_shape(x)) == 1 or np.ndim(axis) == 0 and axis is not None):
        return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
    if ord in ("fro",):
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    raise UnsupportedError(f"np.linalg.norm with ord={ord!r} is not supported")


@register(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if offset or len(_shape(a)) != 2:
        raise UnsupportedError("np.trace: only the main diagonal of a 2-D array is supported")
    return np.einsum("ij,ij->", a, np.eye(*_shape(a)))


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
