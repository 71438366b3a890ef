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
    """Answer ``__array_ufunc__`` for a traced value.

    ``out=`` writes the result into its targets: a traced value or an array made while
    tracing is rebound to the result (``x += y``); a plain array can hold a plain result only.
    """
    for a in inputs:  # an array standing for a traced value: use the value
        if isinstance(a, np.ndarray) and type(a) is not np.ndarray:
            inputs = tuple(map(unwrap, inputs))
            break
    out = kwargs.pop("out", None)
    if out is not None:
        return write_out(ufunc, out, ufunc_method(dispatch, ufunc, method, inputs, kwargs))
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
    if handler is None and _load_extensions():  # rows for optional libraries (SciPy)
        return ufunc_method(dispatch, ufunc, method, inputs, kwargs)
    if handler is not None:
        return handler(*inputs, **kwargs)
    raise UnsupportedError(
        f"diffcheck cannot differentiate {_ufunc_name(ufunc)}"
        f"{'' if method == '__call__' else '.' + method}"
        f"{'' if not kwargs else ' with ' + ', '.join(kwargs)}; "
        "rewrite that step with supported NumPy operations (see diffcheck.supported_numpy()).")


def _ufunc_name(ufunc: Any) -> str:
    return ("scipy.special." if _is_scipy(ufunc) else "np.") + ufunc.__name__


def _is_scipy(ufunc: Any) -> bool:
    import sys

    special = sys.modules.get("scipy.special")
    return special is not None and getattr(special, ufunc.__name__, None) is ufunc


#: loaders of rows for ufuncs from optional libraries, tried when a ufunc without a row
#: reaches the dispatch; each returns True once it has registered its rows (SciPy is never
#: imported by diffcheck itself)
EXTENSIONS: list[Callable[[], bool]] = []


def _load_extensions() -> bool:
    loaded = [load for load in EXTENSIONS if load()]
    for load in loaded:
        EXTENSIONS.remove(load)
    return bool(loaded)


def write_out(ufunc: Any, out: tuple, result: Any) -> Any:
    """Write a ufunc's ``result`` into ``out`` (a tuple of targets) and return the target."""
    results = result if isinstance(result, tuple) else (result,)
    for target, value in zip(out, results, strict=True):
        if target is None:
            continue
        rebind = getattr(target, "_rebind", None)
        if rebind is not None:
            rebind(value)
        elif is_traced(value):
            raise UnsupportedError(
                f"np.{ufunc.__name__}(..., out=a) writes a traced value into an array `a` "
                "made before f was called (or by a function diffcheck does not wrap): such "
                f"arrays cannot carry derivatives; assign the result instead "
                f"(a = np.{ufunc.__name__}(...)) or create `a` inside f (np.zeros, np.empty, "
                "np.array, ...).")
        else:
            np.copyto(target, value, casting="same_kind")
    targets = tuple(t if t is not None else r for t, r in zip(out, results, strict=True))
    return targets if isinstance(result, tuple) else targets[0]


def unwrap(a: Any) -> Any:
    """The traced value an array made while tracing stands for (see :mod:`.inplace`), or
    ``a`` itself."""
    if type(a) is np.ndarray or not isinstance(a, np.ndarray):
        return a
    t = getattr(a, "_traced", None)
    return a if t is None else t


def array_function(func: Callable, args: tuple, kwargs: dict, types: Any = ()) -> Any:
    """Answer ``__array_function__`` for a traced value."""
    if any(issubclass(t, np.ndarray) for t in types):  # arrays standing for traced values
        args = tuple(_unwrap_deep(a) for a in args)
        kwargs = {k: _unwrap_deep(v) for k, v in kwargs.items()}
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


def _unwrap_deep(a: Any) -> Any:
    if isinstance(a, list | tuple):
        return type(a)(_unwrap_deep(b) for b in a)
    return unwrap(a)


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
    return sorted({name for names in supported_by_family().values() for name in names})


def _key_name(key: Any) -> str:
    if isinstance(key, tuple):
        return key[0].__name__ if key[1] == "__call__" else f"{key[0].__name__}.{key[1]}"
    if isinstance(key, str):
        return key
    name = getattr(key, "__name__", str(key))
    return "linalg." + name if "linalg" in (getattr(key, "__module__", "") or "") else name


def supported_by_family() -> dict[str, list[str]]:
    """The supported names by family: ``"rows"`` (ufuncs with a row of the rule table),
    ``"values"`` (run on the plain values: derivative zero), then the module of
    :mod:`diffcheck.engines.numpy_ops` that handles each function.

    >>> fam = supported_by_family()
    >>> "exp" in fam["rows"], "sum" in fam["reductions"], "linalg.inv" in fam["linalg"]
    (True, True, True)
    """
    numpy_rows = {u.__name__ for u in UFUNC_ROWS if getattr(np, u.__name__, None) is u}
    families: dict[str, set[str]] = {"rows": numpy_rows,  # SciPy's rows: see .special
                                     "values": {u.__name__ for u in NONDIFF_UFUNCS}}
    for key, handler in ARRAY_FUNCTIONS.items():
        family = (getattr(handler, "__module__", "") or "").rpartition(".")[2] or "ufuncs"
        if getattr(handler, "__qualname__", "").startswith(("_value_only", "_constant_like")):
            family = "values"
        families.setdefault(family, set()).add(_key_name(key))
    return {family: sorted(names) for family, names in families.items()}


# -- helpers ---------------------------------------------------------------------------------

def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a plain or traced value."""
    if type(x) is np.ndarray or isinstance(x, Traced):
        return x.shape
    return np.shape(x)


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


def _row(name: str, impl: Callable, jvp: Callable, vjp: Callable, *,
         shapes_only: bool = False) -> Primitive:
    """A structural row. ``shapes_only``: the vjp reads only the shapes and dtypes of the
    primals and the output, so the tape keeps no values alive for it."""
    if shapes_only:
        vjp.shapes_only = True
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

