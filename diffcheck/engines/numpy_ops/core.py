"""The protocol layer: how traced values answer NumPy's dispatch protocols.

``__array_ufunc__`` maps a ufunc to its rule-table row; ufuncs that have no derivative
(comparisons, ``isfinite``, ``floor``) run on the plain values. ``__array_function__``
looks the function up in :data:`ARRAY_FUNCTIONS`, which the family modules of this package
fill (:func:`register`). Anything else raises an error that names the NumPy function.

While a :func:`watch_kinks` block is active, every non-smooth operation on a traced
value (abs, maximum, comparisons, ...) is logged with its distance to the kink, so a
checker can tell a kink from a wrong derivative.

The helpers at the end (shapes, axes, tangent layout, :func:`_row`) are shared by the
families.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from ...primitives import UFUNC_ROWS, Primitive
from ...tracing import Traced, is_traced

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

def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a plain or traced value."""
    return tuple(x.shape) if isinstance(x, Traced) else np.shape(x)


_shape = shape_of


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
    """Sum ``g`` down to ``shape`` (undo NumPy broadcasting); works on duals."""
    shape = tuple(shape)
    gshape = shape_of(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    g = np.sum(g, axis=axes) if axes else g
    return np.reshape(g, shape) if shape_of(g) != shape else g


def align(tan: Any, val_shape: tuple[int, ...], out_ndim: int) -> Any:
    """Insert axes after the direction axis so value axes line up with the output's."""
    extra = out_ndim - len(val_shape)
    if extra <= 0:
        return tan
    k = shape_of(tan)[0]
    return tan.reshape((k,) + (1,) * extra + tuple(val_shape))


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

