"""How traced values (duals, tape variables) answer NumPy's dispatch protocols.

``__array_ufunc__`` maps a ufunc to its rule-table row; ufuncs that have no derivative
(comparisons, ``isfinite``, ``floor``) run on the plain values. ``__array_function__``
looks the function up in :data:`ARRAY_FUNCTIONS`. Anything else raises an error that
names the NumPy function.

The structural half of the rule table lives here: sums, products (``prod``, ``cumprod``),
max/min, matrix products, ``einsum``, reshapes, transposes, concatenation, ``where``,
indexing, ``astype``, and the linear algebra rows (``inv``, ``solve``, ``det``, ``slogdet``,
``cholesky``). Each
is a :class:`~diffcheck.primitives.Primitive` with ``partials=()`` and a ``jvp``/``vjp``
pair written with NumPy calls, so the same rule runs on plain arrays and on duals
(nested duals give Hessians). Tangents carry a leading direction axis, so a
non-negative ``axis`` argument shifts by one inside a jvp. Everything else NumPy code
commonly calls (``mean``, ``var``, ``std``, ``stack``, ``clip``, ``outer``, ``sort``,
``pad``, ``tile``, ``tensordot``, ``kron``, ...) is composed from those rows.

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
                lambda p, t, out, *, axis: np.cumsum(t[0], axis=axis + 1), _cumsum_vjp)


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


def _expand_ellipsis(spec: str, shapes: list[tuple[int, ...]]) -> str:
    """``...`` written out with unused letters (right-aligned broadcast axes), explicit."""
    ins, arrow, outs = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise UnsupportedError("np.einsum: subscripts do not match the number of operands")
    counts = []
    for term, shape in zip(terms, shapes, strict=True):
        n = len(shape) - (len(term) - 3) if "..." in term else 0
        if n < 0 or term.replace("...", "").count("."):
            raise ValueError(f"np.einsum: subscripts {term!r} do not fit an operand of "
                             f"shape {shape}")
        counts.append(n)
    free = [c for c in string.ascii_letters if c not in spec]
    m = max(counts)
    if m > len(free):
        raise UnsupportedError("np.einsum: too many axes under '...'")
    ell = "".join(free[:m])
    terms = [t.replace("...", ell[m - n:]) for t, n in zip(terms, counts, strict=True)]
    if arrow:
        if "..." not in outs and m:
            raise ValueError("np.einsum: the output has no '...' for the broadcast axes")
        outs = outs.replace("...", ell)
    else:
        letters = ins.replace(",", "").replace(".", "")
        outs = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ",".join(terms) + "->" + outs


def _broadcast_labels(terms: list[str], operands: tuple) -> list:
    """Operands broadcast where a label has length 1 in one and n > 1 in another (NumPy's
    einsum broadcasts those; the rules need equal lengths)."""
    sizes: dict[str, int] = {}
    for term, op in zip(terms, operands, strict=True):
        for c, n in zip(term, _shape(op), strict=False):
            if n != 1:
                sizes[c] = n
    out = []
    for term, op in zip(terms, operands, strict=True):
        shape = _shape(op)
        target = tuple(sizes.get(c, 1) if n == 1 else n
                       for c, n in zip(term, shape, strict=False))
        out.append(np.broadcast_to(op, target) if len(term) == len(shape) and
                   target != shape else op)
    return out


@register(np.einsum)
def _einsum(subscripts, *operands, **kwargs):
    if not isinstance(subscripts, str):
        raise UnsupportedError("np.einsum with interleaved operands is not supported; "
                               "pass a subscripts string")
    kwargs.pop("optimize", None)
    if kwargs:
        raise UnsupportedError(f"np.einsum with {', '.join(kwargs)} is not supported")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        spec = _expand_ellipsis(spec, [_shape(op) for op in operands])
    inputs, _ = _parse_einsum(spec, len(operands))
    return einsum_p(*_broadcast_labels(inputs, operands), spec=spec)


@register(np.tensordot)
def _tensordot(a, b, axes=2):
    na, nb = len(_shape(a)), len(_shape(b))
    if np.ndim(axes) == 0:
        n = int(axes)
        ax_a, ax_b = list(range(na - n, na)), list(range(n))
    else:
        ax_a, ax_b = ([int(i)] if np.ndim(i) == 0 else [int(j) for j in i] for i in axes)
        ax_a, ax_b = [i % na for i in ax_a], [i % nb for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise ValueError("shape-mismatch for sum")
    sa, sb = string.ascii_letters[:na], list(string.ascii_letters[na:na + nb])
    for i, j in zip(ax_a, ax_b, strict=True):
        sb[j] = sa[i]
    outs = [sa[i] for i in range(na) if i not in ax_a] + \
        [sb[j] for j in range(nb) if j not in ax_b]
    return einsum_p(a, b, spec=f"{sa},{''.join(sb)}->{''.join(outs)}")


@register(np.kron)
def _kron(a, b):
    sa, sb = _shape(a), _shape(b)
    d = max(len(sa), len(sb))
    sa, sb = (1,) * (d - len(sa)) + tuple(sa), (1,) * (d - len(sb)) + tuple(sb)
    a2 = np.reshape(a, tuple(v for n in sa for v in (n, 1)))
    b2 = np.reshape(b, tuple(v for n in sb for v in (1, n)))
    return np.reshape(a2 * b2, tuple(m * n for m, n in zip(sa, sb, strict=True)))


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
    _scatter_jvp, lambda p, out, g, *, index, shape: (getitem(g, index),))

getitem_p = _row(
    "getitem", lambda x, *, index: x[index], _getitem_jvp,
    lambda p, out, g, *, index: (scatter_p(g, index=index, shape=_shape(p[0])),))


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


# -- linear algebra --------------------------------------------------------------------------
#
# Rows for inv, solve, det, slogdet and cholesky, on stacks of matrices (..., n, n) like
# NumPy. Their rules call np.linalg and matmul again, so they run on duals (Hessians) and,
# with transposes rather than conjugates, on the complex step. det and slogdet differentiate
# through the inverse: the matrix must be invertible.

def _mT(x: Any) -> Any:  # noqa: N802
    return np.swapaxes(x, -1, -2)


def _inv_jvp(primals, tangents, out, **_):
    return -np.matmul(np.matmul(out, tangents[0]), out)


def _inv_vjp(primals, out, g, **_):
    out_t = _mT(out)
    return (-np.matmul(np.matmul(out_t, g), out_t),)


inv_p = _row("inv", np.linalg.inv, _inv_jvp, _inv_vjp)


@register(np.linalg.inv)
def _inv(a):
    return inv_p(a)


def _solve_jvp(primals, tangents, out, **_):
    from .forward import align

    (a, b), (ta, tb) = primals, tangents
    nd = len(_shape(out))
    rhs = None if tb is None else align(tb, _shape(b), nd)
    if ta is not None:
        term = np.matmul(align(ta, _shape(a), nd), out)
        rhs = -term if rhs is None else rhs - term
    k = _k(rhs)
    return np.broadcast_to(np.linalg.solve(a, rhs), (k, *_shape(out)))


def _solve_vjp(primals, out, g, **_):
    a, b = primals
    gb = np.linalg.solve(_mT(a), g)
    return unbroadcast(-np.matmul(gb, _mT(out)), _shape(a)), unbroadcast(gb, _shape(b))


#: x = solve(a, b) for a stack of matrices b (..., n, m); a 1-D b is made a column first
solve_p = _row("solve", np.linalg.solve, _solve_jvp, _solve_vjp)


@register(np.linalg.solve)
def _solve(a, b):
    if len(_shape(b)) == 1:  # NumPy >= 2: a vector only when b is exactly 1-D
        x = solve_p(a, np.reshape(b, (_shape(b)[0], 1)))
        return np.reshape(x, _shape(x)[:-1])
    return solve_p(a, b)


def _inv_t(a: Any) -> Any:
    """``inv(a).T``: the derivative of log|det a|."""
    try:
        return _mT(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        raise UnsupportedError(
            "np.linalg.det/slogdet of a singular matrix: diffcheck differentiates them through "
            "the inverse (d det A = det A tr(A^-1 dA)), which does not exist here; check at a "
            "non-singular point (or the check uses finite differences as its reference)"
        ) from None


def _logdet_jvp(primals, tangents, out, **_):
    return np.sum(_inv_t(primals[0]) * tangents[0], axis=(-2, -1))


def _logdet_vjp(primals, out, g, **_):
    return (np.reshape(g, _shape(out) + (1, 1)) * _inv_t(primals[0]),)


det_p = _row("det", np.linalg.det,
             lambda p, t, out, **_: out * _logdet_jvp(p, t, out),
             lambda p, out, g, **_: _logdet_vjp(p, out, g * out))

#: the log|det| half of slogdet (its sign is piecewise constant)
slogdet_p = _row("slogdet", lambda a: np.linalg.slogdet(a)[1], _logdet_jvp, _logdet_vjp)

_SlogdetResult = type(np.linalg.slogdet(np.eye(1)))


@register(np.linalg.det)
def _det(a):
    return det_p(a)


@register(np.linalg.slogdet)
def _slogdet(a):
    _log_conjugating("linalg.slogdet")  # log|det| of a complex matrix is not analytic
    sign = np.linalg.slogdet(strip(a))[0]
    logabsdet = slogdet_p(a)
    return (sign, logabsdet) if _SlogdetResult is tuple else _SlogdetResult(sign, logabsdet)


def _chol_masks(out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower triangle, strictly lower triangle, and the lower triangle with the diagonal
    halved (Phi in Murray 2016, arXiv:1602.07527), in the dtype of the factor ``out``."""
    n, dtype = _shape(out)[-1], np.result_type(strip(out), np.float16)
    low = np.tri(n, dtype=dtype)
    strict = np.tri(n, k=-1, dtype=dtype)
    return low, strict, low - np.eye(n, dtype=dtype) * dtype.type(0.5)


def _cholesky_jvp(primals, tangents, out, **_):
    # NumPy reads the lower triangle only: da -> s = tril(da) + tril(da, -1).T, then
    # dL = L Phi(L^-1 s L^-T)
    low, strict, phi = _chol_masks(out)
    t = tangents[0]
    sym = t * low + _mT(t * strict)
    y = np.linalg.solve(out, sym)
    z = _mT(np.linalg.solve(out, _mT(y)))
    return np.matmul(out, z * phi)


def _cholesky_vjp(primals, out, g, **_):
    # the transpose of the jvp, step by step
    low, strict, phi = _chol_masks(out)
    out_t = _mT(out)
    p = np.matmul(out_t, g) * phi
    q = np.linalg.solve(out_t, p)
    m = _mT(np.linalg.solve(out_t, _mT(q)))
    return (m * low + _mT(m) * strict,)


cholesky_p = _row("cholesky", np.linalg.cholesky, _cholesky_jvp, _cholesky_vjp)


@register(np.linalg.cholesky)
def _cholesky(a, /, *, upper=False):
    _log_conjugating("linalg.cholesky")  # complex input means a Hermitian factorisation
    if upper:  # NumPy reads the upper triangle: the transpose of the lower factor of a.T
        return _mT(cholesky_p(_mT(a)))
    return cholesky_p(a)


@register(np.linalg.multi_dot)
def _multi_dot(arrays, *, out=None):
    if out is not None:
        raise UnsupportedError("np.linalg.multi_dot(..., out=...) cannot carry derivatives")
    arrays = list(arrays)
    y = arrays[0]
    for a in arrays[1:]:
        y = np.matmul(y, a)
    return y


@register(np.linalg.matrix_power)
def _matrix_power(a, n):
    n = int(n)
    if n < 0:
        a, n = np.linalg.inv(a), -n
    shape = _shape(a)
    if n == 0:
        return np.broadcast_to(np.eye(shape[-1], dtype=np.result_type(strip(a), np.float16)),
                               shape).copy()
    y, base = None, a
    while n:  # binary powering, like NumPy
        if n & 1:
            y = base if y is None else np.matmul(y, base)
        n >>= 1
        if n:
            base = np.matmul(base, base)
    return y


def _vector_norm(x: Any, ord: Any, axis: Any, keepdims: bool) -> Any:  # noqa: A002
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return np.max(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:  # a count: piecewise constant, no derivative
        xv = strip(x)
        return np.sum(xv != 0, axis=axis, keepdims=keepdims).astype(np.real(xv).dtype)
    if ord == 1:
        return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
    p = float(ord)
    return np.power(np.sum(np.power(np.abs(x), p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, int], keepdims: bool) -> Any:  # noqa: A002
    row, col = axes
    if ord is None or ord == "fro":
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        sums = np.sum(np.abs(x), axis=inner, keepdims=True)
        y = (np.max if ord > 0 else np.min)(sums, axis=outer, keepdims=True)
        return y if keepdims else np.squeeze(y, axis=axes)
    if ord in ("nuc", 2, -2):
        raise UnsupportedError(f"np.linalg.norm with ord={ord!r} of a matrix needs singular "
                               "values, which diffcheck does not differentiate; use 'fro', "
                               "1, -1, inf or -inf")
    raise ValueError("Invalid norm order for matrices.")


@register(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    _log_conjugating("linalg.norm")
    nd = len(_shape(x))
    if axis is None and ord is None:
        y = np.sqrt(np.sum(x * x))
        return np.reshape(y, (1,) * nd) if keepdims else y
    axes = tuple(range(nd)) if axis is None else \
        (int(axis),) if np.ndim(axis) == 0 else tuple(int(a) for a in axis)
    axes = tuple(a % nd for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


if hasattr(np.linalg, "vector_norm"):  # NumPy >= 2
    @register(np.linalg.vector_norm)
    def _vector_norm_api(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
        _log_conjugating("linalg.vector_norm")
        nd = len(_shape(x))
        if axis is None:
            y = _vector_norm(np.reshape(x, (-1,)), ord, 0, False)
            return np.reshape(y, (1,) * nd) if keepdims else y
        return _vector_norm(x, ord, axis, keepdims)

    @register(np.linalg.matrix_norm)
    def _matrix_norm_api(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
        _log_conjugating("linalg.matrix_norm")
        nd = len(_shape(x))
        return _matrix_norm(x, ord, (nd - 2, nd - 1), keepdims)


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
