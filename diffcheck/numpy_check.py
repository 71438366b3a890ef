"""Derivatives of plain-NumPy functions, and checks of hand-written ones.

A user's ``f(x)`` runs unchanged on forward-mode duals and reverse-mode tape values
(:mod:`diffcheck.engines.numpy_ops` routes NumPy's protocols to the rule table), so
:func:`gradient`, :func:`jacobian` and :func:`hessian` differentiate it exactly; finite
differences (Richardson) and the complex step evaluate it only.

:func:`check_gradient` (and the Jacobian and Hessian twins) compares a hand-written
derivative with the exact AD reference, entry by entry, under a tolerance derived from
the dtype the function computes in and the magnitudes involved (see :func:`tolerance`);
finite differences or the complex step along seeded random directions are the
independent witness. When ``f`` cannot be traced, finite differences become the
reference. :func:`taylor_test` is a second, tolerance-free opinion.

>>> import numpy as np
>>> f = lambda x: np.sum(x ** 3)
>>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
>>> gradient(f, x).tolist()
[[3.0, 12.0], [27.0, 48.0]]
>>> check_gradient(f, lambda x: 3 * x ** 2, x).ok
True
>>> bool(check_gradient(f, lambda x: 3 * x ** 2 + (x == 4) * 1e-3, x))
False
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engines import finite
from .engines.forward import Dual
from .engines.numpy_ops import KinkLog, strip, watch_kinks
from .engines.reverse import Tape, Var, backward
from .errors import DiffcheckError, DomainError, ShapeError, UnsupportedError, UsageError
from .tracing import Traced, next_level

MODES = ("forward", "reverse", "finite", "complex")
A_SCALE = 256.0  #: tolerance: multiples of eps times the magnitude of the terms
B_PROBE = 16.0  #: tolerance: multiples of the rounding a float32 AD pass shows
DENSE_FD_LIMIT = 64  #: without AD, full finite differences up to this many inputs
MAX_LOCALISE = 20  #: entries examined by every engine when a check fails
SHOW = 5  #: worst entries shown
CHUNK = 256  #: forward-mode directions per pass
COMPLEX_WITNESS_LIMIT = 2 * 10 ** 5  #: above this, differences are the cheaper witness
WITNESS_REL = 1e-3  #: bug size (relative, 2-norm) the slip probability is quoted for

Fn = Callable[[Any], Any]


# -- input and output validation --------------------------------------------------------------

def as_input(x: Any, check_finite: bool = True) -> np.ndarray:
    """``x`` as a real floating array (integers become float64)."""
    if isinstance(x, Traced):
        raise UsageError("x must be a plain array, not a traced value")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"x must be an array of numbers, got {type(x).__name__}") from exc
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "c":
        raise UsageError("x is complex; diffcheck checks derivatives of real functions")
    if arr.dtype.kind != "f":
        raise UsageError(f"x must be an array of numbers, got dtype {arr.dtype}")
    if check_finite and not np.isfinite(np.sum(arr)) and not np.all(np.isfinite(arr)):
        raise DomainError(f"x has {np.count_nonzero(~np.isfinite(arr))} non-finite entries")
    return arr


def _plain_output(y: Any, name: str) -> np.ndarray:
    if isinstance(y, Traced):
        y = strip(y)
    if y is None or isinstance(y, str | bytes | dict | set):
        raise UsageError(f"{name} returned {type(y).__name__}; it must return an array or "
                         "a number")
    try:
        arr = np.asarray(y)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{name} returned {type(y).__name__}, not an array") from exc
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "fc":
        raise UsageError(f"{name} returned an array of dtype {arr.dtype}; it must return "
                         "floating-point numbers")
    return arr


def evaluate(f: Fn, x: np.ndarray, name: str = "f") -> np.ndarray:
    """``f(x)`` as an array, with a clear error for NaN, infinities or non-arrays."""
    with np.errstate(all="ignore"):
        y = _plain_output(f(x), name)
    bad = ~np.isfinite(y)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if y.ndim else ()
        raise DomainError(f"{name}(x) is not finite ({np.count_nonzero(bad)} of {y.size} "
                          f"entries, first at {where}); check x lies in {name}'s domain")
    return y


def _user_array(value: Any, shape: tuple[int, ...], name: str, expected: str) -> np.ndarray:
    arr = _plain_output(value, name)
    if arr.dtype.kind == "c":
        raise UsageError(f"{name} returned complex values; expected real ones")
    if arr.shape != tuple(shape):
        raise ShapeError(f"{name}(x) has shape {arr.shape}; expected {tuple(shape)} "
                         f"({expected})")
    return arr


def _scalar_output(y: np.ndarray) -> None:
    if y.size != 1:
        raise ShapeError(f"f(x) has shape {y.shape}; a gradient needs a scalar output. "
                         "Use check_jacobian / dc.jacobian for vector outputs.")


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


# -- exact engines ---------------------------------------------------------------------------

def _traced_output(y: Any, owner: Any, level: int) -> Any:
    if isinstance(y, owner) and y.level == level:
        return y
    return None


def _reverse(f: Fn, x: np.ndarray) -> tuple[Any, Any, Tape, Var]:
    tape = Tape()
    v = tape.var(x)
    y = f(v)
    if isinstance(y, list | tuple):
        raise UsageError("f returned a list or tuple; return an array (np.stack the parts)")
    return y, _traced_output(y, Var, tape.level), tape, v


def _adjoint(bars: list, v: Var, x: np.ndarray) -> Any:
    b = bars[v.index] if v.index < len(bars) else None
    if b is None:
        return np.zeros_like(x)
    return b


def _vjp_rows(f: Fn, x: np.ndarray, absolute: bool = False, scalar: bool = False
              ) -> tuple[np.ndarray, ...]:
    """Value and Jacobian ``(m, n)`` by reverse mode (one backward sweep per output).

    With ``absolute=True`` also the rounding scale (the absolute-value adjoints, carried by
    the same sweep): a third item.
    With ``scalar=True`` the output must be a scalar (checked before any sweep).
    """
    y, ty, tape, v = _reverse(f, x)
    val = _checked_value(y) if scalar else _plain_output(strip(y), "f")
    if scalar:
        _scalar_output(val)
    dtype = np.result_type(val, x)
    if ty is None or val.size != 1:
        rows = np.zeros((val.size, x.size), dtype=dtype)
        scale = np.zeros_like(rows) if absolute else None
    if ty is not None:
        for j in range(val.size):
            seed = np.zeros(val.shape, dtype=dtype)
            seed.flat[j] = 1.0
            last = j == val.size - 1
            bars = backward(ty, seed, keep={v.index}, consume=last, both=absolute)
            pairs = zip(bars, (False, True), strict=True) if absolute else ((bars, False),)
            for adj_list, absl in pairs:
                adj = strip(_adjoint(adj_list, v, x))
                if val.size == 1:  # one row: the adjoint itself when it is a plain array
                    row = _own_row(adj, x, dtype)
                    if absl:
                        scale = row
                    else:
                        rows = row
                else:
                    (scale if absl else rows)[j] = np.ravel(np.broadcast_to(adj, x.shape))
    return (val, rows, scale) if absolute else (val, rows)


def _own_row(adj: Any, x: np.ndarray, dtype: Any) -> np.ndarray:
    """``adj`` as a ``(1, x.size)`` row, a view when it already is a writable array of the
    row's dtype (a backward sweep's fresh adjoint), a copy otherwise (broadcast views)."""
    if isinstance(adj, np.ndarray) and adj.dtype == dtype and adj.shape == x.shape and \
            adj.flags.writeable and adj.flags.c_contiguous:
        return adj.reshape(1, x.size)
    row = np.empty((1, x.size), dtype=dtype)
    row[0] = np.ravel(np.broadcast_to(adj, x.shape))
    return row


def _seeds(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    seeds = np.zeros((stop - start, x.size), dtype=x.dtype)
    seeds[np.arange(stop - start), np.arange(start, stop)] = 1.0
    return seeds.reshape((stop - start, *x.shape))


def _jvp(f: Fn, x: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and directional derivatives ``(k, *f.shape)`` by one vector-mode pass."""
    level = next_level()
    y = f(Dual(x, directions, level))
    val = _plain_output(strip(y), "f")
    if isinstance(y, Dual) and y.level == level:
        tan = np.broadcast_to(strip(y.tan), (len(directions), *val.shape))
    else:
        tan = np.zeros((len(directions), *val.shape))
    return val, np.asarray(tan)


def _jac_forward(f: Fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cols, val = [], None
    for start in range(0, max(x.size, 1), CHUNK):
        stop = min(start + CHUNK, x.size)
        val, tan = _jvp(f, x, _seeds(x, start, stop))
        cols.append(tan.reshape(stop - start, -1))
    return val, np.concatenate(cols).T


def _hess_reverse(f: Fn, x: np.ndarray) -> np.ndarray:
    """Hessian ``(n, n)`` by forward over reverse (a tape whose values are duals)."""
    n = x.size
    out = np.zeros((n, n), dtype=x.dtype)
    for start in range(0, max(n, 1), CHUNK):
        stop = min(start + CHUNK, n)
        inner = next_level()
        y, ty, tape, v = _reverse(f, Dual(x, _seeds(x, start, stop), inner))
        if ty is None:
            continue
        _scalar_output(np.asarray(strip(y)))
        bars = backward(ty, np.ones(np.shape(strip(ty)), dtype=x.dtype))
        g = _adjoint(bars, v, x)
        if isinstance(g, Dual) and g.level == inner:
            out[start:stop] = np.reshape(strip(g.tan), (stop - start, n))
    return out.T


def _hess_forward(f: Fn, x: np.ndarray) -> np.ndarray:
    n = x.size
    inner, outer = next_level(), next_level()
    seeds = _seeds(x, 0, n)
    y = f(Dual(Dual(x, seeds, inner), seeds, outer))
    if not (isinstance(y, Dual) and y.level == outer):
        return np.zeros((n, n))
    _scalar_output(np.asarray(strip(y)))
    g = y.tan
    if not (isinstance(g, Dual) and g.level == inner):
        return np.zeros((n, n))
    return np.reshape(np.broadcast_to(strip(g.tan), (n, n)), (n, n)).T


# -- complex step and finite differences ------------------------------------------------------

def _require_analytic(f: Fn, x: np.ndarray) -> None:
    try:
        with watch_kinks() as log:
            _reverse(f, x)
    except UnsupportedError:
        return
    if not log.analytic:
        raise UnsupportedError(
            "the complex step needs analytic code, but f uses "
            f"{', '.join('np.' + k for k in log.names())} (kinks, comparisons or conjugation); "
            "use mode='forward', 'reverse' or 'finite'")


def _complex_call(f: Fn, z: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            y = f(z)
        except np.exceptions.ComplexWarning as exc:
            raise UnsupportedError("the complex step failed: f casts complex values to real "
                                   "(astype/float); use another mode") from exc
        except TypeError as exc:
            raise UnsupportedError(f"the complex step failed: f rejects complex input "
                                   f"({exc}); use another mode") from exc
    return np.asarray(y)


def complex_step(f: Fn, x: np.ndarray, v: np.ndarray, h: float = 1e-20) -> np.ndarray:
    """Directional derivative ``Im f(x + i h v) / h`` (exact to rounding for analytic f)."""
    z = x.astype(np.complex128) + 1j * h * v
    return np.imag(_complex_call(f, z)) / h


def _jac_complex(f: Fn, x: np.ndarray) -> np.ndarray:
    _require_analytic(f, x)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = max(abs(float(x.flat[i])), 1.0)
        cols.append(np.ravel(complex_step(f, x, e.reshape(x.shape))) / e[i])
    return np.stack(cols, axis=-1)


def _batch(f: Fn, shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    def run(P: np.ndarray) -> np.ndarray:
        rows = []
        for p in P:
            with np.errstate(all="ignore"):
                try:
                    rows.append(np.ravel(np.asarray(f(p.reshape(shape)), dtype=float)))
                except (ValueError, FloatingPointError, ZeroDivisionError):
                    rows.append(None)
        m = next(len(r) for r in rows if r is not None)
        return np.stack([r if r is not None else np.full(m, np.nan) for r in rows])
    return run


@dataclass
class Difference:
    """A finite-difference derivative along one direction.

    ``value`` (central, Richardson-extrapolated), its estimated error ``error``, the step
    ``step`` it came from, and the one-sided limits ``left``/``right``; ``kink`` is True
    when they stay apart as the step shrinks (a non-differentiable point).
    """

    value: np.ndarray
    error: np.ndarray
    step: float
    left: np.ndarray
    right: np.ndarray
    kink: np.ndarray


def directional_difference(f: Fn, x: np.ndarray, v: np.ndarray, *, levels: int = 8,
                           h0: float = 2.0 ** -4, f0: np.ndarray | None = None
                           ) -> Difference:
    """Central differences of ``t -> f(x + t v)`` at 0, Richardson-extrapolated.

    >>> d = directional_difference(np.sin, np.array(0.5), np.array(1.0))
    >>> bool(abs(d.value - np.cos(0.5)) <= d.error < 1e-9)
    True
    """
    x = x.astype(np.float64, copy=False)
    f0 = evaluate(f, x) if f0 is None else f0
    hs = h0 / 2.0 ** np.arange(levels)
    plus = np.stack([_plain_output(f(_step(x, h, v, np.add)), "f") for h in hs]
                    ).astype(np.float64)
    minus = np.stack([_plain_output(f(_step(x, h, v, np.subtract)), "f") for h in hs]
                     ).astype(np.float64)
    f0 = f0.astype(np.float64)
    eps = np.finfo(np.result_type(f0.dtype, np.float16) if f0.dtype.kind == "f"
                   else np.float64).eps
    noise = 4 * eps * np.maximum(np.max(np.abs(plus), axis=0), np.abs(f0))
    shape = (levels,) + (1,) * f0.ndim
    D = (plus - minus) / (2 * hs.reshape(shape))
    best, err, step = _richardson(D, hs, noise)
    right = (plus - f0) / hs.reshape(shape)
    left = (f0 - minus) / hs.reshape(shape)
    jump = np.abs(right - left)
    settled = jump[-1] > 0.7 * jump[-2] if levels > 1 else np.zeros(jump.shape[1:], bool)
    big = jump[-1] > 1e3 * noise / hs[-1] + 1e-6 * (np.abs(right[-1]) + np.abs(left[-1]))
    kink = settled & big
    return Difference(best, np.where(kink, np.inf, err), step, 2 * left[-1] - left[-2],
                      2 * right[-1] - right[-2], kink)


def _step(x: np.ndarray, h: float, v: np.ndarray, op: Any) -> np.ndarray:
    """``x + h * v`` (``op=np.add``) or ``x - h * v``: the same numbers, one new array."""
    if np.ndim(x) == 0 or np.shape(v) != np.shape(x):
        return op(x, h * v)
    p = np.multiply(v, h, dtype=np.result_type(x, v, h))
    return op(x, p, out=p)


def _richardson(D: np.ndarray, hs: np.ndarray, noise: np.ndarray, power: int = 1):
    """Extrapolated value, error estimate and the step it came from, along one direction.

    Three or more steps: :func:`finite.richardson` (the one implementation), charging an
    extrapolation of order ``l`` ``2**l`` times the rounding of one difference. Two steps
    (the cheap witness at large n): the one extrapolation has no same-order value at the
    coarser step to be compared with, so its correction is counted twice over instead.
    """
    if len(D) == 2:
        r = D[1] + (D[1] - D[0]) / 3
        err = 4 * np.abs(r - D[1]) + 2 * noise / hs[1] ** power
        return r, np.where(np.isfinite(err), err, np.inf), float(hs[1])
    best, err, steps = finite.richardson(D, hs, noise, power=power, gain=lambda lvl: 2.0 ** lvl,
                                         with_step=True)
    return best, err, float(np.nanmax(steps)) if np.any(np.isfinite(steps)) else float(hs[-1])


# -- public derivative functions -------------------------------------------------------------

def gradient(f: Fn, x: Any, *, mode: str = "reverse") -> np.ndarray:
    """The gradient of scalar ``f`` at ``x`` (same shape as ``x``).

    ``mode``: ``"reverse"`` (one tape pass), ``"forward"`` (vector-mode duals),
    ``"finite"`` (central differences, Richardson) or ``"complex"`` (complex step; needs
    analytic code).

    >>> f = lambda w: np.log(np.sum(np.exp(w)))
    >>> w = np.zeros((2, 2))
    >>> [gradient(f, w, mode=m).tolist() for m in ("reverse", "forward")][0]
    [[0.25, 0.25], [0.25, 0.25]]
    """
    from .treecheck import is_tree, on_tree  # a pytree of parameters: in its layout

    if is_tree(x):
        return on_tree("gradient", gradient, f, x, mode=mode)
    x = as_input(x, check_finite=False)  # a NaN in x shows up as a NaN f(x)
    if _mode(mode) == "reverse":
        y, ty, tape, v = _reverse(f, x)
        val = _checked_value(y)
        _scalar_output(val)
        if ty is None:
            return np.zeros_like(x)
        g = _adjoint(backward(ty, np.ones_like(val), keep={v.index}, consume=True), v, x)
        if isinstance(g, np.ndarray) and g.shape == x.shape and g.flags.writeable:
            return g
        return np.array(np.broadcast_to(g, x.shape))
    return jacobian(f, x, mode=mode, _scalar=True).reshape(x.shape)


def _checked_value(y: Any) -> np.ndarray:
    """The plain value of a traced output, checked like :func:`evaluate` checks f(x)."""
    if isinstance(y, list | tuple):
        raise UsageError("f returned a list or tuple; return an array (np.stack the parts)")
    return evaluate(lambda _: strip(y), None)


def jacobian(f: Fn, x: Any, *, mode: str | None = None, _scalar: bool = False) -> np.ndarray:
    """The Jacobian of ``f`` at ``x``, shape ``f(x).shape + x.shape``.

    ``mode=None`` picks forward mode when ``x`` has fewer entries than ``f(x)``, reverse
    mode otherwise.

    >>> jacobian(lambda x: np.stack([x[0] * x[1], np.sin(x[0])]), np.array([0.0, 2.0]))
    array([[2., 0.],
           [1., 0.]])
    """
    from .treecheck import is_tree, on_tree

    if is_tree(x):
        return on_tree("jacobian", jacobian, f, x, mode=mode)
    x = as_input(x)
    if mode in ("forward", "reverse"):
        val, J = (_vjp_rows if mode == "reverse" else _jac_forward)(f, x)
        y = _checked_value(val)
    else:
        y = evaluate(f, x)
        mode = _mode(mode) if mode is not None else \
            ("forward" if x.size < y.size else "reverse")
        if mode in ("forward", "reverse"):
            J = (_vjp_rows if mode == "reverse" else _jac_forward)(f, x)[1]
        elif mode == "complex":
            J = _jac_complex(f, x)
        else:
            J = finite.jacobian(_batch(f, x.shape), x.ravel().astype(float))[0]
    if _scalar:
        _scalar_output(y)
    return np.asarray(J).reshape(y.shape + x.shape)


def hessian(f: Fn, x: Any, *, mode: str = "reverse") -> np.ndarray:
    """The Hessian of scalar ``f`` at ``x``, shape ``x.shape + x.shape``.

    ``"reverse"``: forward over reverse; ``"forward"``: forward over forward;
    ``"finite"``: four-point differences with Richardson; ``"complex"``: the complex
    step applied to the reverse-mode gradient.

    >>> hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 3.0])).tolist()
    [[6.0, 2.0], [2.0, 0.0]]
    """
    from .treecheck import is_tree, on_tree

    if is_tree(x):
        return on_tree("hessian", hessian, f, x, mode=mode)
    x = as_input(x)
    _scalar_output(evaluate(f, x))
    mode = _mode(mode)
    if mode == "reverse":
        H = _hess_reverse(f, x)
    elif mode == "forward":
        H = _hess_forward(f, x)
    elif mode == "complex":
        _require_analytic(f, x)
        H = _jac_complex(lambda z: _complex_gradient(f, z), x)
    else:
        H = finite.hessian(_batch(f, x.shape), x.ravel().astype(float))[0][0]
    return np.asarray(H).reshape(x.shape + x.shape)


def _complex_gradient(f: Fn, z: np.ndarray) -> np.ndarray:
    y, ty, tape, v = _reverse(f, z)
    if ty is None:
        return np.zeros_like(z)
    return np.asarray(strip(_adjoint(backward(ty, np.ones_like(strip(ty))), v, z)))


# -- the tolerance model ---------------------------------------------------------------------

def working_eps(*arrays: np.ndarray) -> float:
    """Machine epsilon of the least precise floating dtype among ``arrays``.

    >>> working_eps(np.zeros(2, np.float32), np.zeros(2)) == 2.0 ** -23
    True
    """
    eps = [np.finfo(a.dtype).eps for a in arrays if a.dtype.kind == "f"]
    return float(max(eps)) if eps else float(np.finfo(float).eps)


def tolerance(ref: np.ndarray, scale: np.ndarray, probe: np.ndarray | None, eps: float
              ) -> np.ndarray:
    """Allowed |yours - reference| per entry.

    ``eps * (A * max(|ref|, scale) + B * probe)`` plus a floor of ``eps**2`` times the
    largest magnitude: ``scale`` is the sum over computational paths of |products of local
    partials| (the size of the terms the entry is made of), ``probe`` the rounding error a
    float32 AD pass shows, in units of float32's eps (cancellation, conditioning). So the
    tolerance follows each entry's own magnitude (badly scaled inputs), the precision ``f``
    computes in, and nothing a user has to tune. ``probe=None`` leaves its term out.

    >>> t = tolerance(np.array([1.0, 1e-6]), np.zeros(2), np.zeros(2), 2.0 ** -52)
    >>> [f"{v:.3g}" for v in t]
    ['5.68e-14', '5.68e-20']
    """
    return _tolerance(np.maximum(np.abs(ref), scale), probe, eps)


def _tolerance(size: np.ndarray, probe: np.ndarray | None, eps: float) -> np.ndarray:
    """:func:`tolerance` from ``size = max(|ref|, scale)`` (the same numbers, fewer arrays)."""
    floor = eps * eps * float(np.max(size, initial=0.0))
    tol = A_SCALE * size if probe is None else A_SCALE * size + B_PROBE * probe
    tol *= eps
    tol += floor
    return tol


@dataclass
class Reference:
    """The reference derivative and what the tolerance needs to know about it.

    ``probe`` may be left None with ``probe_fn`` to compute it (see :meth:`ensure_probe`).
    """

    value: np.ndarray  # flat (m, n) or (n, n)
    scale: np.ndarray
    probe: np.ndarray | None
    method: str
    exact: bool
    kinks: KinkLog | None = None
    error: np.ndarray | None = None  # finite differences' own error estimate
    probe_fn: Callable[[], np.ndarray] | None = None

    def ensure_probe(self) -> np.ndarray:
        """The float32 probe, computed now if it was deferred."""
        if self.probe is None:
            self.probe = self.probe_fn() if self.probe_fn is not None else \
                np.zeros_like(self.value)
            self.probe_fn = None
        return self.probe


def _probe(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, ref: np.ndarray
           ) -> np.ndarray:
    """|AD in float32 - reference| / eps32: the rounding the computation shows."""
    try:
        with np.errstate(all="ignore"):
            low = np.asarray(fn(x.astype(np.float32)), dtype=np.float64)
    except (DiffcheckError, ValueError, TypeError, FloatingPointError):
        return np.zeros_like(ref)
    d = np.abs(low.reshape(ref.shape) - ref) / np.finfo(np.float32).eps
    return np.where(np.isfinite(d), d, 0.0)


def _ad_reference(kind: str, f: Fn, x64: np.ndarray, defer_probe: bool = False
                  ) -> tuple[Reference, np.ndarray | None]:
    """Exact reference by AD in float64, its rounding scale and the float32 probe.

    With ``defer_probe=True`` the probe (a second AD pass, in float32) is not run: the
    reference carries a ``probe_fn`` that runs it when asked (:meth:`Reference.ensure_probe`).
    """
    scale = fx = None
    with watch_kinks() as log, np.errstate(all="ignore"):
        if kind == "hessian":
            value = _hess_reverse(f, x64)
        elif kind == "gradient":
            fx, value, scale = _vjp_rows(f, x64, absolute=True, scalar=True)
        elif _prefer_reverse(f, x64):
            _, value, scale = _vjp_rows(f, x64, absolute=True)
        else:
            _, value = _jac_forward(f, x64)
    if kind == "hessian":
        d = np.sqrt(np.abs(np.diag(value)))
        scale = np.outer(d, d)
        probe_fn = lambda: _probe(lambda z: _hess_reverse(f, z), x64, value)  # noqa: E731
        method = "forward-over-reverse AD (float64)"
    else:
        scale = np.abs(value) if scale is None else scale
        probe_fn = lambda: _probe(lambda z: _vjp_rows(f, z)[1], x64, value)  # noqa: E731
        method = "reverse-mode AD (float64)" if kind == "gradient" else "AD (float64)"
    ref = Reference(value, scale, None, method, True, log, probe_fn=probe_fn)
    if not defer_probe:
        ref.ensure_probe()
    return ref, fx


def _prefer_reverse(f: Fn, x: np.ndarray) -> bool:
    return evaluate(f, x).size <= x.size


def _fd_reference(kind: str, f: Fn, x64: np.ndarray) -> Reference:
    batch = _batch(f, x64.shape)
    if kind == "hessian":
        H, E = finite.hessian(batch, x64.ravel())
        value, err = H[0], E[0]
    else:
        value, err = finite.jacobian(batch, x64.ravel())
    value = np.nan_to_num(value, nan=0.0)
    return Reference(value, np.abs(value), np.zeros_like(value),
                     "finite differences (Richardson)", False, None, err)


def reference(kind: str, f: Fn, x: np.ndarray, *, defer_probe: bool = False
              ) -> tuple[Reference | None, str, np.ndarray]:
    """AD if ``f`` traces, else dense finite differences if small; why not AD; and f(x).

    ``f(x)`` is checked (finite, an array, scalar where needed) before anything else
    uses it; a float64 ``x`` reuses the value of the AD pass. ``defer_probe``: see
    :func:`_ad_reference`.
    """
    x64 = x.astype(np.float64, copy=False)
    try:
        ref, fx = _ad_reference(kind, f, x64, defer_probe)
        why = ""
    except (UnsupportedError, TypeError, AttributeError) as exc:
        ref, fx, why = None, None, f"{type(exc).__name__}: {exc}" \
            if not isinstance(exc, UnsupportedError) else str(exc)
    if fx is None or x.dtype != np.float64:
        fx = evaluate(f, x)
    if kind in ("gradient", "hessian"):
        _scalar_output(fx)
    if ref is None and x.size <= DENSE_FD_LIMIT:
        ref = _fd_reference(kind, f, x64)
    return ref, why, fx


# -- results ---------------------------------------------------------------------------------

@dataclass
class Entry:
    """One entry of a checked derivative, with every engine's value."""

    index: tuple[int, ...]
    yours: float
    reference: float
    tol: float
    engines: dict[str, float] = field(default_factory=dict)
    step: float | None = None
    kink: bool = False

    @property
    def diff(self) -> float:
        return abs(self.yours - self.reference)


@dataclass
class CheckResult:
    """The verdict of :func:`check_gradient`, :func:`check_jacobian` or :func:`check_hessian`.

    ``ok`` is the verdict (``bool(result)`` too); ``reference`` the reference derivative
    (the shape of yours); ``method`` names the reference and the witness; ``worst`` the
    worst entries with every engine's value; ``str(result)`` renders all of it.
    """

    kind: str
    ok: bool
    yours: np.ndarray
    reference: np.ndarray
    tolerance: np.ndarray
    method: str
    witness: str
    seed: int
    dtype: str
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...] | None
    n_bad: int = 0
    worst: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kink: str = ""
    directions: int = 0
    slip_probability: float | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return render(self)


def _fmt(v: float | None, width: int = 13) -> str:
    if v is None:
        return "-".ljust(width)
    return f"{v: .6e}".ljust(width) if np.isfinite(v) else str(v).ljust(width)


def render(res: CheckResult) -> str:
    """The readable text of a check result."""
    total = res.yours.size
    head = "OK" if res.ok else f"FAILED ({res.n_bad} of {total} entries outside tolerance)"
    lines = [f"{res.kind} check: {head}",
             f"  shape {res.yours.shape}, computed in {res.dtype}; seed {res.seed}",
             f"  reference: {res.method}",
             f"  witness: {res.witness}",
             f"  max abs error {res.max_abs_error:.3e}, max rel error {res.max_rel_error:.3e}"
             f" at {res.worst_index}"]
    if res.worst:
        names = sorted({k for e in res.worst for k in e.engines})
        cols = ["index", "yours", "reference", *names, "|diff|", "tol", "step"]
        lines.append("  worst entries:")
        lines.append("    " + "".join(c.ljust(14 if c != "index" else 16) for c in cols))
        for e in res.worst:
            row = [str(e.index).ljust(16), _fmt(e.yours, 14), _fmt(e.reference, 14)]
            row += [_fmt(e.engines.get(n), 14) for n in names]
            row += [f"{e.diff:.2e}".ljust(14), f"{e.tol:.2e}".ljust(14),
                    f"{e.step:.2e}" if e.step else "-"]
            lines.append("    " + "".join(row) + ("  (kink)" if e.kink else ""))
    if res.kink:
        lines.append(f"  kink: {res.kink}")
    if res.slip_probability is not None:
        lines.append(f"  random directions: {res.directions}; a wrong {res.kind} whose error "
                     f"has norm >= {WITNESS_REL:g} x the {res.kind}'s slips past them with "
                     f"probability <= {res.slip_probability:.1e}")
    lines += [f"  note: {n}" for n in res.notes]
    return "\n".join(lines)


# -- the checks ------------------------------------------------------------------------------

def _directions(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Seeded Gaussian directions, scaled entrywise by |x| (so badly scaled x is fine)."""
    rng = np.random.default_rng(seed)
    size = np.abs(x.astype(np.float64, copy=False))
    if size.size and not np.min(size) > 0:  # zeros take the typical size (or 1)
        typical = float(np.sqrt(np.mean(size ** 2)))
        size = np.where(size > 0, size, max(typical, 1.0))
    return rng.standard_normal((k, *x.shape), dtype=np.float32) * size


@dataclass
class _Witness:
    text: str
    ok: bool  # agrees with the reference
    user_ok: bool  # your derivative agrees with it
    slip: float | None
    kink: bool


@dataclass
class _Samples:
    """The witness's own evaluations: directional derivatives along random directions."""

    V: np.ndarray  # (k, *x.shape) directions
    W: np.ndarray  # (k, m) the witness's directional derivatives (hessian: (k, 1))
    E: np.ndarray  # their estimated errors
    how: str
    kink: bool


def _witness_samples(kind: str, f: Fn, x: np.ndarray, ref: Reference, k: int, seed: int,
                     fx: np.ndarray | None = None) -> _Samples:
    """Evaluate ``f`` along ``k`` seeded random directions (finite differences, or the
    complex step for analytic code): independent of AD, and of the tolerance.

    ``fx`` is f(x) when it was already computed in float64 (saves one evaluation)."""
    x64 = x.astype(np.float64, copy=False)
    f0 = np.asarray(fx) if fx is not None and x.dtype == np.float64 else None
    V = _directions(x64, k, seed)
    n = x.size
    use_complex = ref.exact and ref.kinks is not None and ref.kinks.analytic
    outs, errs, how, kink = [], [], "", False
    for v in V:
        if kind == "hessian":
            d = _second_difference(f, x64, v)
            outs.append(d.value)
            errs.append(d.error)
            how = "second differences of f (Richardson)"
            kink |= bool(np.any(d.kink))
            continue
        if use_complex and n <= COMPLEX_WITNESS_LIMIT:
            try:
                outs.append(np.ravel(complex_step(f, x64, v)))
                errs.append(np.zeros_like(outs[-1]))
                how = "complex step"
                continue
            except DiffcheckError:
                use_complex = False
        d = directional_difference(f, x64, v, levels=2 if n > 10 ** 5 else 8, f0=f0)
        outs.append(np.ravel(d.value))
        errs.append(np.ravel(d.error))
        kink |= bool(np.any(d.kink))
        how = "finite differences (Richardson)"
    return _Samples(V, np.array(outs), np.array(errs), how, kink)


def _witness_verdict(kind: str, s: _Samples, yours: np.ndarray, ref: Reference,
                     tol: np.ndarray, size: np.ndarray | None = None) -> _Witness:
    """Compare reference and yours with the witness's samples under tolerance ``tol``.

    ``size`` is ``max(|reference|, scale)`` in the shape of yours, when already at hand."""
    k, n = len(s.V), s.V[0].size
    W, E, how = s.W, s.E, s.how
    Vf = s.V.reshape(k, n)
    absV = np.abs(Vf)
    R = ref.value.reshape(-1, n)
    Y = yours.reshape(-1, n)
    T = tol.reshape(-1, n)
    if kind == "hessian":
        proj = lambda M: np.einsum("kn,mn,km->k", Vf, M, Vf)[:, None]  # noqa: E731
        bound = np.einsum("kn,mn,km->k", absV, T, absV)[:, None]
    else:
        proj = lambda M: Vf @ M.T  # noqa: E731
        bound = absV @ T.T
    ref_d, your_d = proj(R), proj(Y)
    eps64 = np.finfo(float).eps
    if kind != "hessian":
        size = np.maximum(np.abs(R), ref.scale.reshape(R.shape)) if size is None else \
            size.reshape(R.shape)
        scale = absV @ size.T
    else:
        scale = np.abs(ref_d)
    wtol = E + A_SCALE * eps64 * scale * 16 + 2 * bound
    if how == "complex step":
        wtol = wtol + 1e-10 * np.abs(ref_d)
    agree = bool(np.all(np.abs(W - ref_d) <= wtol))
    user = bool(np.all(np.abs(W - your_d) <= wtol))
    worst = float(np.max(np.abs(W - ref_d) / np.maximum(np.abs(ref_d), 1e-300), initial=0.0))
    slip = _slip(bound, absV, R, k)
    text = (f"{how} along {k} random direction{'s' if k > 1 else ''} "
            f"{'agrees' if agree else 'DISAGREES'} with the reference "
            f"(rel. difference {worst:.1e})")
    if not user:
        text += "; your derivative disagrees with it along some direction"
    return _Witness(text, agree, user, slip, s.kink)


def _witness(kind: str, f: Fn, x: np.ndarray, yours: np.ndarray, ref: Reference,
             tol: np.ndarray, k: int, seed: int, fx: np.ndarray | None = None) -> _Witness:
    """Compare reference and yours with an independent evaluation along random directions.

    ``fx`` is f(x) when it was already computed in float64 (saves one evaluation)."""
    return _witness_verdict(kind, _witness_samples(kind, f, x, ref, k, seed, fx), yours, ref,
                            tol)


def _second_difference(f: Fn, x: np.ndarray, v: np.ndarray) -> Difference:
    """v^T H v by central second differences of t -> f(x + t v), Richardson."""
    f0 = float(evaluate(f, x).astype(np.float64).ravel()[0])
    hs = 2.0 ** -3 / 2.0 ** np.arange(8)
    plus = np.array([float(np.ravel(f(x + h * v))[0]) for h in hs])
    minus = np.array([float(np.ravel(f(x - h * v))[0]) for h in hs])
    D = (plus - 2 * f0 + minus) / hs ** 2
    noise = 8 * np.finfo(float).eps * max(float(np.max(np.abs(plus))), abs(f0))
    best, err, step = _richardson(D[:, None], hs, np.array([noise]), power=2)
    none = np.array([False])
    return Difference(best, err, step, best, best, none)


def _slip(bound: np.ndarray, absV: np.ndarray, R: np.ndarray, k: int) -> float | None:
    """Chance that an error of norm WITNESS_REL*|ref| escapes all k Gaussian directions.

    ``absV``: the directions' magnitudes ``(k, n)``; ``R``: the reference ``(m, n)``."""
    typical_v = absV[0] if k == 1 else absV.mean(axis=0)
    rms_r = np.abs(R[0]) if len(R) == 1 else np.sqrt(np.mean(R ** 2, axis=0))
    norm = float(np.linalg.norm(typical_v * rms_r))
    if norm == 0:
        return None
    p = 1.0
    for j in range(k):
        p *= min(1.0, math.sqrt(2 / math.pi) * float(np.max(bound[j])) / (WITNESS_REL * norm))
    return p


def _localise(kind: str, f: Fn, x: np.ndarray, flat_idx: np.ndarray, analytic: bool
              ) -> dict[int, dict[str, Any]]:
    """Every engine's value at a few entries: forward mode, differences, complex step."""
    x64 = x.astype(np.float64)
    n = x.size
    found: dict[int, dict[str, Any]] = {int(i): {"engines": {}} for i in flat_idx}
    cols = sorted({int(i) % n for i in flat_idx}) if kind != "hessian" else \
        sorted({int(i) // n for i in flat_idx})
    f0 = evaluate(f, x64)
    fwd: dict[int, np.ndarray] = {}
    try:
        if kind == "hessian":
            for c in cols:
                fwd[c] = np.ravel(_hessian_column(f, x64, c))
        else:
            seeds = np.zeros((len(cols), n))
            seeds[np.arange(len(cols)), cols] = 1.0
            _, tan = _jvp(f, x64, seeds.reshape((len(cols), *x.shape)))
            fwd = {c: np.ravel(tan[j]) for j, c in enumerate(cols)}
    except DiffcheckError:
        fwd = {}
    for c in cols:
        e = np.zeros(n)
        size = abs(float(x64.flat[c]))
        e[c] = size if size > 0 else 1.0
        e = e.reshape(x.shape)
        if kind == "hessian":
            d = directional_difference(lambda z: _complex_gradient(f, z), x64, e, levels=8)
        else:
            d = directional_difference(f, x64, e, levels=10, f0=f0)
        cs = None
        if analytic:
            try:
                g = (lambda z: _complex_gradient(f, z)) if kind == "hessian" else f
                cs = np.ravel(complex_step(g, x64, e)) / e.flat[c]
            except DiffcheckError:
                cs = None
        for i in found:
            row, col = (i // n, i % n) if kind != "hessian" else (i % n, i // n)
            if col != c:
                continue
            eng = found[i]["engines"]
            if c in fwd:
                eng["forward"] = float(fwd[c][row])
            eng["finite"] = float(np.ravel(d.value)[row] / e.flat[c])
            if cs is not None:
                eng["complex"] = float(cs[row])
            found[i]["step"] = d.step * e.flat[c]
            found[i]["kink"] = bool(np.ravel(d.kink)[row])
            found[i]["bracket"] = sorted([float(np.ravel(d.left)[row] / e.flat[c]),
                                          float(np.ravel(d.right)[row] / e.flat[c])])
    return found


def _hessian_column(f: Fn, x: np.ndarray, c: int) -> np.ndarray:
    """Column ``c`` of the Hessian by forward over reverse with one direction."""
    e = np.zeros((1, x.size))
    e[0, c] = 1.0
    inner = next_level()
    y, ty, tape, v = _reverse(f, Dual(x, e.reshape((1, *x.shape)), inner))
    if ty is None:
        return np.zeros(x.size)
    g = _adjoint(backward(ty, np.ones(np.shape(strip(ty)))), v, x)
    if isinstance(g, Dual) and g.level == inner:
        return np.ravel(strip(g.tan)[0])
    return np.zeros(x.size)


def _check(kind: str, f: Fn, yours_fn: Fn, x: Any, *, seed: int = 0,
           directions: int | None = None, rtol: float | None = None,
           atol: float | None = None) -> CheckResult:
    x = as_input(x)
    ref, why, fx = reference(kind, f, x, defer_probe=True)
    name = {"gradient": "grad", "jacobian": "jac", "hessian": "hess"}[kind]
    shape = {"gradient": x.shape, "jacobian": fx.shape + x.shape,
             "hessian": x.shape + x.shape}[kind]
    expected = {"gradient": "x's shape", "jacobian": "f(x).shape + x.shape",
                "hessian": "x.shape + x.shape"}[kind]
    yours = _user_array(yours_fn(x), shape, name, expected)
    eps = working_eps(x, fx, yours)
    k = directions if directions is not None else (1 if x.size > 10 ** 5 else 3)
    if ref is None:
        return _directions_only(kind, f, x, yours, eps, k, seed, why)
    # the witness's evaluations of f first, before the tolerance arrays exist (less memory)
    samples = _witness_samples(kind, f, x, ref, k, seed, fx=fx)
    R = ref.value.reshape(yours.shape)
    size = np.maximum(np.abs(R), ref.scale.reshape(R.shape))
    # The float32 probe (a second AD pass) only ever widens the tolerance. In float64 it is
    # run only when the check would fail without it: an entry outside the tolerance, or
    # the witness disagreeing. A check that passes without the probe passes with it, one
    # that fails without it is redone with it, so the verdict, the failing entries and the
    # notes are those of the full tolerance; a passing result reports the tighter
    # tolerance it met (and the slip probability of that tighter comparison). In lower
    # precision the probe is part of what the tolerance reports, so it is always run.
    if eps != np.finfo(np.float64).eps:
        ref.ensure_probe()

    def limits() -> np.ndarray:
        probe = None if ref.probe is None else ref.probe.reshape(R.shape)
        tol = _tolerance(size, probe, eps)
        if rtol is not None:
            tol = tol + rtol * size
        if atol is not None:
            tol = tol + atol
        if ref.error is not None:
            tol = tol + np.nan_to_num(ref.error.reshape(R.shape), nan=np.inf)
        return tol

    tol = limits()
    with np.errstate(all="ignore"):
        diff = np.empty(R.shape, np.result_type(yours, R))
        np.subtract(yours, R, out=diff)
        np.abs(diff, out=diff)
        finite = np.isfinite(yours)
        if not finite.all():
            diff[~finite] = np.inf
    del finite
    bad = ~(diff <= tol)
    wit = _witness_verdict(kind, samples, yours, ref, tol, size)
    if ref.probe is None and (bad.any() or not wit.ok or not wit.user_ok):
        ref.ensure_probe()
        tol = limits()
        bad = ~(diff <= tol)
        wit = _witness_verdict(kind, samples, yours, ref, tol, size)
    res = _result(kind, yours, R, tol, diff, ref, wit, seed, eps, x, k, size)
    if why:
        res.notes.append(f"f could not be traced ({why}); finite differences are the "
                         "reference")
    if not wit.ok and ref.exact:
        res.notes.append("the witness disagrees with the AD reference: f may be "
                         "non-differentiable near x, or a diffcheck rule is wrong")
    if bad.any():
        with np.errstate(all="ignore"):
            excess = diff / np.maximum(tol, np.finfo(float).tiny)
        _explain(res, kind, f, x, bad, excess, ref)
    elif not wit.user_ok and not ref.exact:
        res.ok = False
        res.notes.append("your derivative disagrees with the witness along a random "
                         "direction")
    return res


def _result(kind, yours, R, tol, diff, ref, wit, seed, eps, x, k, size=None) -> CheckResult:
    if size is None:
        size = np.maximum(np.abs(R), ref.scale.reshape(R.shape))
    with np.errstate(all="ignore"):
        rel = np.empty(np.shape(diff), np.result_type(diff, size))
        np.divide(diff, size, out=rel)
        rel[diff == 0] = 0.0  # exact agreement, even where the size is 0
        rel[~(size > 0) & (diff != 0)] = np.inf
    worst = np.unravel_index(int(np.argmax(rel)), R.shape) if R.size else None
    dtype = {2.0 ** -52: "float64", 2.0 ** -23: "float32", 2.0 ** -10: "float16"}.get(
        eps, f"eps={eps:g}")
    return CheckResult(
        kind=kind, ok=True, yours=yours, reference=R, tolerance=tol, method=ref.method,
        witness=wit.text, seed=seed, dtype=dtype,
        max_abs_error=float(np.max(diff, initial=0.0)),
        max_rel_error=float(np.max(rel, initial=0.0)),
        worst_index=tuple(int(i) for i in worst) if worst is not None else None,
        directions=k, slip_probability=wit.slip)


def _explain(res: CheckResult, kind: str, f: Fn, x: np.ndarray, bad: np.ndarray,
             excess: np.ndarray, ref: Reference) -> None:
    """Localise the failing entries, ask every engine about them, forgive kinks."""
    flat_bad = np.flatnonzero(bad)
    order = flat_bad[np.argsort(-np.ravel(excess)[flat_bad], kind="stable")][:MAX_LOCALISE]
    analytic = ref.kinks is not None and ref.kinks.analytic
    info = _localise(kind, f, x, order, analytic)
    entries = []
    forgiven = 0
    for i in order:
        idx = tuple(int(j) for j in np.unravel_index(int(i), res.yours.shape))
        meta = info[int(i)]
        e = Entry(idx, float(res.yours[idx]), float(res.reference[idx]),
                  float(res.tolerance[idx]), meta["engines"], meta.get("step"),
                  meta.get("kink", False))
        lo, hi = meta.get("bracket", (np.nan, np.nan))
        if e.kink and lo - e.tol <= e.yours <= hi + e.tol:
            forgiven += 1
        entries.append(e)
    res.worst = entries[:SHOW]
    res.n_bad = int(flat_bad.size)
    at_kink = ref.kinks is not None and ref.kinks.at_kink
    if forgiven == flat_bad.size or (at_kink and forgiven == len(order) == flat_bad.size):
        res.ok = True
        res.kink = (f"x is at a kink of {ref.kinks.describe() if at_kink else 'f'}: the "
                    f"derivative is not defined at the {forgiven} entr"
                    f"{'y' if forgiven == 1 else 'ies'} shown; your values lie between the "
                    "one-sided derivatives, so they are not counted as errors")
        res.n_bad = 0
    else:
        res.ok = False
        if at_kink:
            res.kink = (f"x is at a kink of {ref.kinks.describe()}; entries whose one-sided "
                        "derivatives bracket your value are marked (kink)")


def _directions_only(kind, f, x, yours, eps, k, seed, why) -> CheckResult:
    """No AD and too many inputs for dense differences: random directions only."""
    flat = yours.reshape(-1, x.size)
    ref = Reference(flat, np.abs(flat), np.zeros_like(flat), "none", False, None)
    tol = tolerance(yours, np.abs(yours), np.zeros_like(yours), eps)
    k = max(k, 3)
    wit = _witness(kind, f, x, yours, ref, tol, k, seed)
    text = wit.text.split(" agrees")[0].split(" DISAGREES")[0]
    res = _result(kind, yours, yours, tol, np.zeros_like(yours), ref, wit, seed, eps, x, k)
    res.reference = np.full_like(yours, np.nan)
    res.method = "none: f could not be traced and has too many inputs for dense differences"
    res.witness = f"{text}: your directional derivatives " + (
        "agree" if wit.user_ok else "DISAGREE")
    res.max_abs_error = res.max_rel_error = float("nan")
    res.worst_index = None
    res.ok = wit.user_ok
    res.notes.append(f"f could not be traced ({why}); only random directions were checked, "
                     "so wrong entries cannot be localised")
    return res


def check_gradient(f: Fn, grad: Fn, x: Any, **opts: Any) -> CheckResult:
    """Check a hand-written gradient ``grad(x)`` of scalar ``f`` at ``x`` (any shape).

    Options: ``seed`` (random directions), ``directions`` (how many), ``rtol``/``atol``
    (added to the derived tolerance; normally not needed).

    >>> import numpy as np
    >>> A = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> f = lambda x: x @ A @ x
    >>> check_gradient(f, lambda x: (A + A.T) @ x, np.array([1.0, -2.0])).ok
    True
    >>> r = check_gradient(f, lambda x: 2 * A @ x, np.array([1.0, -2.0]))
    >>> r.ok, r.worst_index
    (False, (0,))
    """
    from .treecheck import check  # pytrees, and f written with JAX

    return check("gradient", f, grad, x, _check, **opts)


def check_jacobian(f: Fn, jac: Fn, x: Any, **opts: Any) -> CheckResult:
    """Check ``jac(x)`` (shape ``f(x).shape + x.shape``) against ``f``.

    >>> f = lambda x: np.stack([x[0] * x[1], np.exp(x[1])])
    >>> jac = lambda x: np.array([[x[1], x[0]], [0.0, np.exp(x[1])]])
    >>> check_jacobian(f, jac, np.array([2.0, 0.5])).ok
    True
    """
    from .treecheck import check  # pytrees, and f written with JAX

    return check("jacobian", f, jac, x, _check, **opts)


def check_hessian(f: Fn, hess: Fn, x: Any, **opts: Any) -> CheckResult:
    """Check ``hess(x)`` (shape ``x.shape + x.shape``) against scalar ``f``.

    >>> f = lambda x: x[0] ** 2 * x[1]
    >>> check_hessian(f, lambda x: np.array([[2 * x[1], 2 * x[0]], [2 * x[0], 0.0]]),
    ...               np.array([1.0, 3.0])).ok
    True
    """
    from .treecheck import check  # pytrees, and f written with JAX

    return check("hessian", f, hess, x, _check, **opts)


def _assert(result: CheckResult) -> CheckResult:
    if not result.ok:
        raise AssertionError(str(result))
    return result


def assert_gradient(f: Fn, grad: Fn, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_gradient`, raising ``AssertionError`` with the report when it fails.

    >>> assert_gradient(np.sum, np.ones_like, np.zeros(3)).ok
    True
    """
    return _assert(check_gradient(f, grad, x, **opts))


def assert_jacobian(f: Fn, jac: Fn, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_jacobian`, raising ``AssertionError`` with the report when it fails.

    >>> assert_jacobian(lambda x: 2 * x, lambda x: 2 * np.eye(2), np.ones(2)).ok
    True
    """
    return _assert(check_jacobian(f, jac, x, **opts))


def assert_hessian(f: Fn, hess: Fn, x: Any, **opts: Any) -> CheckResult:
    """:func:`check_hessian`, raising ``AssertionError`` with the report when it fails.

    >>> assert_hessian(lambda x: np.sum(x ** 2), lambda x: 2 * np.eye(2), np.ones(2)).ok
    True
    """
    return _assert(check_hessian(f, hess, x, **opts))


# -- Taylor test -----------------------------------------------------------------------------

@dataclass
class TaylorResult:
    """Remainders of the Taylor expansion along one direction and their observed order."""

    steps: np.ndarray
    remainders: np.ndarray
    orders: np.ndarray
    order: float
    expected: int
    ok: bool
    seed: int

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        lines = [f"Taylor test: {'OK' if self.ok else 'FAILED'}: observed order "
                 f"{self.order:.2f}, expected {self.expected} (seed {self.seed})",
                 "    h            remainder     order"]
        for i, (h, r) in enumerate(zip(self.steps, self.remainders, strict=True)):
            o = f"{self.orders[i - 1]:.2f}" if i else ""
            lines.append(f"    {h:.3e}    {r:.3e}     {o}")
        return "\n".join(lines)


def taylor_test(f: Fn, grad: Fn, x: Any, hess: Fn | None = None, *, seed: int = 0,
                levels: int = 12) -> TaylorResult:
    """Remainders ``|f(x+hv) - f(x) - h grad.v [- h^2/2 v.H.v]|`` over halving ``h``.

    For a right gradient they shrink like ``h**2`` (order 2), for a wrong one like ``h``
    (order 1); with a right Hessian, order 3. No tolerance involved.

    >>> t = taylor_test(lambda x: np.sum(np.sin(x)), np.cos, np.array([0.3, 1.2]))
    >>> t.ok, round(t.order)
    (True, 2)
    >>> taylor_test(lambda x: np.sum(np.sin(x)), np.sin, np.array([0.3, 1.2])).ok
    False
    """
    from .treecheck import is_tree, on_tree_taylor  # pytrees: flat views of x, grad, hess

    if is_tree(x):
        return on_tree_taylor(taylor_test, f, grad, x, hess, seed=seed, levels=levels)
    x = as_input(x)
    fx = evaluate(f, x)
    _scalar_output(fx)
    g = _user_array(grad(x), x.shape, "grad", "x's shape").astype(np.float64)
    x64 = x.astype(np.float64)
    v = _directions(x64, 1, seed)[0]
    v = v / max(float(np.max(np.abs(v))), np.finfo(float).tiny) * \
        max(float(np.max(np.abs(x64))), 1.0)
    f0 = float(evaluate(f, x64).ravel()[0])
    slope = float(np.sum(g * v))
    curv = 0.0
    if hess is not None:
        H = _user_array(hess(x), x.shape + x.shape, "hess", "x.shape + x.shape")
        curv = float(v.ravel() @ H.reshape(x.size, x.size).astype(np.float64) @ v.ravel())
    hs = 2.0 ** -4 / 2.0 ** np.arange(levels)
    vals = np.array([float(evaluate(f, x64 + h * v).ravel()[0]) for h in hs])
    rem = np.abs(vals - f0 - hs * slope - 0.5 * hs ** 2 * curv)
    with np.errstate(all="ignore"):
        orders = np.log2(rem[:-1] / rem[1:])
    eps = working_eps(x, fx, evaluate(f, x64))
    noise = 64 * eps * (abs(f0) + np.abs(hs * slope))
    usable = (rem[:-1] > noise[:-1] * 100) & (rem[1:] > noise[1:] * 10) & np.isfinite(orders)
    expected = 3 if hess is not None else 2
    if not np.any(usable):
        order = float(expected)  # remainders at rounding level from the start: exact
    else:
        order = float(np.median(orders[usable][-4:]))
    return TaylorResult(hs, rem, orders, order, expected, order > expected - 0.5, seed)
