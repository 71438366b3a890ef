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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import numpy_kinks, numpy_precision
from .engines import finite
from .engines.forward import Dual
from .engines.numpy_ops import KinkLog, strip, trace_call, watch_kinks
from .engines.reverse import Tape, Var, backward
from .errors import DiffcheckError, DomainError, ShapeError, UnsupportedError, UsageError
from .numpy_fd import (  # noqa: F401 -- _richardson is re-exported (tests use it)
    Difference,
    _output_eps,
    _richardson,
    _second_difference,
    _step,
    _value_at,
    complex_step,
    directional_difference,
)
from .numpy_precision import Precision, dtype_label, smallest_normal
from .numpy_witness import (  # noqa: F401 -- SLIP_USEFUL and _witness are re-exported
    SLIP_USEFUL,
    WITNESS_REL,
    _directions,
    _Witness,
    _witness,
    _witness_samples,
    _witness_verdict,
)
from .tracing import Traced, next_level

MODES = ("forward", "reverse", "finite", "complex")
A_SCALE = 256.0  #: tolerance: multiples of eps times the magnitude of the terms
B_PROBE = 16.0  #: tolerance: multiples of the rounding a float32 AD pass shows
DENSE_FD_LIMIT = 64  #: without AD, full finite differences up to this many inputs
MAX_LOCALISE = 20  #: entries examined by every engine when a check fails
SHOW = 5  #: worst entries shown
CHUNK = 256  #: forward-mode directions per pass

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
    y = trace_call(f, v)
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
    y = trace_call(f, Dual(x, directions, level))
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
    y = trace_call(f, Dual(Dual(x, seeds, inner), seeds, outer))
    if not (isinstance(y, Dual) and y.level == outer):
        return np.zeros((n, n))
    _scalar_output(np.asarray(strip(y)))
    g = y.tan
    if not (isinstance(g, Dual) and g.level == inner):
        return np.zeros((n, n))
    return np.reshape(np.broadcast_to(strip(g.tan), (n, n)), (n, n)).T


# -- complex step and finite differences ------------------------------------------------------

def _require_analytic(f: Fn, x: np.ndarray) -> None:
    with watch_kinks() as log:
        traced, _ = _attempt(lambda: _reverse(f, x))
    if traced is None:  # f cannot be traced: nothing known against the complex step
        return
    if not log.analytic:
        raise UnsupportedError(
            "the complex step needs analytic code, but f uses "
            f"{', '.join('np.' + k for k in log.names())} (kinks, comparisons or conjugation); "
            "use mode='forward', 'reverse' or 'finite'")


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
                except (ValueError, ArithmeticError):  # a point outside f's domain
                    rows.append(None)
        m = next(len(r) for r in rows if r is not None)
        return np.stack([r if r is not None else np.full(m, np.nan) for r in rows])
    return run


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
        return _traced("reverse", f, x, lambda: _gradient_reverse(f, x))
    return jacobian(f, x, mode=mode, _scalar=True).reshape(x.shape)


def _gradient_reverse(f: Fn, x: np.ndarray) -> np.ndarray:
    y, ty, tape, v = _reverse(f, x)
    val = _checked_value(y)
    _scalar_output(val)
    if ty is None:
        return np.zeros_like(x)
    g = _adjoint(backward(ty, np.ones_like(val), keep={v.index}, consume=True), v, x)
    if isinstance(g, np.ndarray) and g.shape == x.shape and g.flags.writeable:
        return g
    return np.array(np.broadcast_to(g, x.shape))


def _traced(mode: str, f: Fn, x: np.ndarray, run: Callable[[], Any]) -> Any:
    """``run()`` (a pass that traces f), with what it raises made a clear error.

    A :class:`DiffcheckError` (an unsupported function, a non-finite value, a wrong
    shape) is raised as is. Anything else is either f's own error, raised as is when f
    fails on plain arrays too, or something tracing cannot handle: an
    :class:`UnsupportedError` naming it and pointing to ``mode="finite"``."""
    try:
        return run()
    except DiffcheckError:
        raise
    except Exception as exc:  # noqa: BLE001 -- sorted out below
        with np.errstate(all="ignore"):
            f(x)  # f's own error on plain arrays is the user's: raised unchanged
        raise UnsupportedError(
            f"f could not be traced in {mode} mode ({_why(exc)}); mode='finite' only "
            "evaluates it (check_gradient and friends fall back to it by themselves)"
        ) from exc


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
        engine = _vjp_rows if mode == "reverse" else _jac_forward
        val, J = _traced(mode, f, x, lambda: engine(f, x))
        y = _checked_value(val)
    else:
        y = evaluate(f, x)
        mode = _mode(mode) if mode is not None else \
            ("forward" if x.size < y.size else "reverse")
        if mode in ("forward", "reverse"):
            engine = _vjp_rows if mode == "reverse" else _jac_forward
            J = _traced(mode, f, x, lambda: engine(f, x))[1]
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
        H = _traced(mode, f, x, lambda: _hess_reverse(f, x))
    elif mode == "forward":
        H = _traced(mode, f, x, lambda: _hess_forward(f, x))
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
    # and never below the smallest normal number of that precision: a float32 derivative
    # cannot tell 1e-240 from 0
    floor = max(eps * eps * float(np.max(size, initial=0.0)), smallest_normal(eps))
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
    precision: Precision | None = None  # f's measured precision (finite differences only)

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
    with np.errstate(all="ignore"):
        low, _ = _attempt(lambda: np.asarray(fn(x.astype(np.float32)), dtype=np.float64))
    if low is None:  # f cannot be traced in float32: no probe (the tolerance stays as is)
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


def _ad_value(kind: str, f: Fn, z: np.ndarray) -> np.ndarray:
    """The exact derivative at ``z`` (flat ``(m, n)`` or ``(n, n)``), by the reference's
    engine: one more AD pass."""
    with np.errstate(all="ignore"):
        if kind == "hessian":
            return _hess_reverse(f, z)
        if kind == "gradient":
            return _vjp_rows(f, z, scalar=True)[1]
        return (_vjp_rows if _prefer_reverse(f, z) else _jac_forward)(f, z)[1]


def _fd_reference(kind: str, f: Fn, x64: np.ndarray, precision: Precision) -> Reference:
    """Dense finite differences with error bars for the noise f's values really have."""
    batch = _batch(f, x64.shape)
    fscale = precision.noise / (4 * finite.EPS)  # the engine's noise is 4 eps max(|f|, fscale)
    if kind == "hessian":
        H, E = finite.hessian(batch, x64.ravel(), fscale=fscale)
        value, err = H[0], E[0]
    else:
        value, err = finite.jacobian(batch, x64.ravel(), fscale=fscale)
    value = np.nan_to_num(value, nan=0.0)
    return Reference(value, np.abs(value), np.zeros_like(value),
                     "finite differences (Richardson)", False, None, err, precision=precision)


def _attempt(run: Callable[[], Any]) -> tuple[Any, str]:
    """``(run(), "")``, or ``(None, why)`` when it raises: every pass that traces f goes
    through here, so whatever tracing meets (any exception type) means falling back to
    finite differences, never a crash. Errors of f on plain arrays are raised elsewhere,
    where f is evaluated plainly."""
    try:
        return run(), ""
    except Exception as exc:  # noqa: BLE001 -- by design: any failure to trace falls back
        return None, _why(exc)


def _why(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, UnsupportedError) and text else \
        f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def reference(kind: str, f: Fn, x: np.ndarray, *, defer_probe: bool = False
              ) -> tuple[Reference | None, str, np.ndarray]:
    """AD if ``f`` traces, else dense finite differences if small; why not AD; and f(x).

    ``f(x)`` is checked (finite, an array, scalar where needed) before anything else
    uses it; a float64 ``x`` reuses the value of the AD pass. ``defer_probe``: see
    :func:`_ad_reference`. Whatever the AD pass raises (an unsupported function, a
    ``TypeError`` from code that needs plain arrays, ...) means finite differences, with
    the reason returned; f itself is then evaluated on plain arrays, and its own errors
    (non-finite values, a wrong shape, an exception) are raised as the user's.
    """
    x64 = x.astype(np.float64, copy=False)
    got, why = _attempt(lambda: _ad_reference(kind, f, x64, defer_probe))
    ref, fx = got if got is not None else (None, None)
    if fx is None or x.dtype != np.float64:
        fx = evaluate(f, x)
    if kind in ("gradient", "hessian"):
        _scalar_output(fx)
    if ref is None and x.size <= DENSE_FD_LIMIT:
        ref = _fd_reference(kind, f, x64, numpy_precision.detect(f, x64, evaluate(f, x64)))
    return ref, why, fx


# -- results ---------------------------------------------------------------------------------

@dataclass
class Entry:
    """One entry of a checked derivative, with every engine's value.

    ``bracket``: the range between the one-sided derivatives where the entry sits on a
    kink (your value passes inside it)."""

    index: tuple[int, ...]
    yours: float
    reference: float
    tol: float
    engines: dict[str, float] = field(default_factory=dict)
    step: float | None = None
    kink: bool = False
    bracket: tuple[float, float] | None = None

    @property
    def diff(self) -> float:
        return abs(self.yours - self.reference)


@dataclass
class CheckResult:
    """The verdict of :func:`check_gradient`, :func:`check_jacobian` or :func:`check_hessian`.

    ``ok`` is the verdict (``bool(result)`` too); ``reference`` the reference derivative
    (the shape of yours); ``method`` names the reference and the witness; ``worst`` the
    worst entries with every engine's value; ``str(result)`` renders all of it.
    ``localised`` is False when ``f`` could be checked along random directions only (no
    reference per entry): then ``reference`` is NaN and the errors are directional.
    ``directional`` holds why the check failed along random directions although every
    entry is within its tolerance (empty otherwise).
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
    localised: bool = True
    directional: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return render(self)


def _fmt(v: float | None, width: int = 13) -> str:
    """A table cell of at least ``width`` characters, always ending in a space (a
    three-digit exponent, `` 1.014232e+304``, fills 14 and must not touch the next)."""
    if v is None:
        return "-".ljust(width)
    text = f"{v: .6e}" if np.isfinite(v) else str(v)
    return text.ljust(width - 1) + " "


def _headline(res: CheckResult) -> str:
    if not res.localised:
        return f"{'OK' if res.ok else 'FAILED'} (along random directions only: f could not " \
               "be traced, so entries cannot be localised)"
    if res.ok:
        return "OK"
    if res.n_bad:
        return f"FAILED ({res.n_bad} of {res.yours.size} entries outside tolerance)"
    return "FAILED (every entry is within its tolerance, but not along random directions)"


def render(res: CheckResult) -> str:
    """The readable text of a check result."""
    lines = [f"{res.kind} check: {_headline(res)}",
             f"  shape {res.yours.shape}, computed in {res.dtype}; seed {res.seed}",
             f"  reference: {res.method}",
             f"  witness: {res.witness}"]
    if res.localised:
        lines.append(f"  max abs error {res.max_abs_error:.3e}, max rel error "
                     f"{res.max_rel_error:.3e} at {res.worst_index}")
    else:
        lines.append(f"  largest directional difference {res.max_abs_error:.3e} "
                     f"({res.max_rel_error:.3e} relative)")
    if res.worst:
        lines += _worst_table(res.worst)
    if res.kink:
        lines.append(f"  kink: {res.kink}")
    if res.directional:
        lines.append(f"  directions: {res.directional}")
    lines += _slip_lines(res)
    lines += [f"  note: {n}" for n in res.notes]
    return "\n".join(lines)


def _worst_table(worst: list[Entry]) -> list[str]:
    names = sorted({k for e in worst for k in e.engines})
    cols = ["index", "yours", "reference", *names, "|diff|", "tol", "step"]
    lines = ["  worst entries:",
             "    " + "".join(c.ljust(14 if c != "index" else 16) for c in cols)]
    for e in worst:
        row = [str(e.index).ljust(16), _fmt(e.yours, 14), _fmt(e.reference, 14)]
        row += [_fmt(e.engines.get(n), 14) for n in names]
        row += [f"{e.diff:.2e}".ljust(14), f"{e.tol:.2e}".ljust(14),
                f"{e.step:.2e}" if e.step else "-"]
        mark = ""
        if e.bracket is not None:
            mark = f"  (kink: one-sided {e.bracket[0]:.6g} .. {e.bracket[1]:.6g})"
        elif e.kink:
            mark = "  (kink)"
        lines.append("    " + "".join(row) + mark)
    return lines


def _slip_lines(res: CheckResult) -> list[str]:
    if res.slip_probability is None:
        return []
    if res.slip_probability > SLIP_USEFUL:
        return [f"  random directions: {res.directions}; their error bars are too wide here "
                f"to catch a wrong {res.kind} whose error has norm {WITNESS_REL:g} x the "
                f"{res.kind}'s"]
    return [f"  random directions: {res.directions}; a wrong {res.kind} whose error has norm "
            f">= {WITNESS_REL:g} x the {res.kind}'s slips past them with probability <= "
            f"{res.slip_probability:.1e}"]


# -- every engine at the worst entries ---------------------------------------------------------

def _localise(kind: str, f: Fn, x: np.ndarray, flat_idx: np.ndarray, analytic: bool,
              exact: bool = True, noise: np.ndarray | None = None
              ) -> dict[int, dict[str, Any]]:
    """Every engine's value at a few entries: forward mode, differences, complex step.

    Each engine that traces f is tried and left out where it fails (any exception):
    finite differences, which only evaluate f, always answer."""
    x64 = x.astype(np.float64)
    n = x.size
    found: dict[int, dict[str, Any]] = {int(i): {"engines": {}} for i in flat_idx}
    cols = sorted({int(i) % n for i in flat_idx}) if kind != "hessian" else \
        sorted({int(i) // n for i in flat_idx})
    f0 = evaluate(f, x64)
    fwd = _forward_columns(kind, f, x64, cols) if exact else {}
    for c in cols:
        e = np.zeros(n)
        size = abs(float(x64.flat[c]))
        e[c] = size if size > 0 else 1.0
        e = e.reshape(x.shape)
        rows = [(i // n if kind != "hessian" else i % n) for i in found
                if (i % n if kind != "hessian" else i // n) == c]
        fd = _column_difference(kind, f, x64, e, c, f0, exact, noise, rows)
        cs = None
        if analytic:
            g = (lambda z: _complex_gradient(f, z)) if kind == "hessian" else f
            cs, _ = _attempt(lambda g=g, e=e, c=c: np.ravel(complex_step(g, x64, e)) / e.flat[c])
        for i in found:
            row, col = (i // n, i % n) if kind != "hessian" else (i % n, i // n)
            if col != c:
                continue
            eng = found[i]["engines"]
            if c in fwd:
                eng["forward"] = float(fwd[c][row])
            if cs is not None:
                eng["complex"] = float(cs[row])
            if fd is None:
                continue
            d, values = fd
            eng["finite"] = values[row]
            found[i]["step"] = d.step * e.flat[c]
            kinks = np.ravel(d.kink)
            found[i]["kink"] = bool(kinks[row]) if row < kinks.size else False
    return found


def _forward_columns(kind: str, f: Fn, x64: np.ndarray, cols: list[int]
                     ) -> dict[int, np.ndarray]:
    """Columns of the derivative by forward mode (Hessian: forward over reverse); empty
    when f cannot be traced."""
    def run() -> dict[int, np.ndarray]:
        if kind == "hessian":
            return {c: np.ravel(_hessian_column(f, x64, c)) for c in cols}
        seeds = np.zeros((len(cols), x64.size))
        seeds[np.arange(len(cols)), cols] = 1.0
        _, tan = _jvp(f, x64, seeds.reshape((len(cols), *x64.shape)))
        return {c: np.ravel(tan[j]) for j, c in enumerate(cols)}
    got, _ = _attempt(run)
    return got or {}


def _column_difference(kind: str, f: Fn, x64: np.ndarray, e: np.ndarray, c: int,
                       f0: np.ndarray, exact: bool, noise: np.ndarray | None, rows: list[int]):
    """Finite differences of column ``c`` at ``rows``: ``(Difference, {row: value})``, or
    None.

    Hessians difference the AD gradient when f traces, else come from second differences
    of f alone (f cannot be traced: nothing else is at hand)."""
    if kind == "hessian" and not exact:
        return _hessian_entries_fd(f, x64, c, rows, noise)
    if kind != "hessian":
        d = directional_difference(f, x64, e, levels=4, f0=f0, noise=noise)
    else:
        d, _ = _attempt(lambda: directional_difference(
            lambda z: _complex_gradient(f, z), x64, e, levels=4))
        if d is None:
            return None
    col = np.ravel(d.value) / e.flat[c]
    return d, {r: float(col[r]) for r in rows}


def _hessian_entries_fd(f: Fn, x64: np.ndarray, c: int, rows: list[int],
                        noise: np.ndarray | None):
    """``H[r, c]`` from second differences of f: ``(q(e_r + e_c) - q(e_r - e_c)) / 4``
    with ``q(v) = v^T H v`` (and ``q(e_c)`` on the diagonal)."""
    n = x64.size
    size = np.where(np.abs(x64.ravel()) > 0, np.abs(x64.ravel()), 1.0)
    out, last = {}, None
    for r in rows:
        er, ec = np.zeros(n), np.zeros(n)
        er[r], ec[c] = size[r], size[c]
        if r == c:
            last = _second_difference(f, x64, ec.reshape(x64.shape), noise)
            out[r] = float(np.ravel(last.value)[0]) / size[c] ** 2
            continue
        last = _second_difference(f, x64, (er + ec).reshape(x64.shape), noise)
        down = _second_difference(f, x64, (er - ec).reshape(x64.shape), noise)
        out[r] = float(np.ravel(last.value)[0] - np.ravel(down.value)[0]) / (4 * size[r] * size[c])
    return last, out


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


# -- the checks ------------------------------------------------------------------------------

_NAMES = {"gradient": ("grad", "x's shape"), "jacobian": ("jac", "f(x).shape + x.shape"),
          "hessian": ("hess", "x.shape + x.shape")}


def _layout(kind: str, x: np.ndarray, fx: np.ndarray) -> tuple[tuple[int, ...], str, str]:
    """The shape the user's derivative must have, its name and the shape in words."""
    shape = {"gradient": x.shape, "jacobian": fx.shape + x.shape,
             "hessian": x.shape + x.shape}[kind]
    return shape, *_NAMES[kind]


def _check(kind: str, f: Fn, yours_fn: Fn, x: Any, *, seed: int = 0,
           directions: int | None = None, rtol: float | None = None,
           atol: float | None = None) -> CheckResult:
    x = as_input(x)
    ref, why, fx = reference(kind, f, x, defer_probe=True)
    shape, name, expected = _layout(kind, x, fx)
    yours = _user_array(yours_fn(x), shape, name, expected)
    prec = ref.precision if ref is not None else \
        numpy_precision.detect(f, x.astype(np.float64), evaluate(f, x.astype(np.float64)))
    eps = max(working_eps(x, fx, yours), prec.eps if prec is not None else 0.0)
    label = dtype_label(eps) + (f" ({prec.how})" if prec is not None and prec.how else "")
    k = directions if directions is not None else (1 if x.size > 10 ** 5 else 3)
    if ref is None:
        return _directions_only(kind, f, x, yours, eps, k, seed, why, prec, label)
    # the witness's evaluations of f first, before the tolerance arrays exist (less memory)
    samples = _witness_samples(kind, f, x, ref, k, seed, fx=fx,
                               noise=prec.noise if prec is not None else None)
    # The float32 probe (a second AD pass) only ever widens the tolerance. In float64 it is
    # run only when the check would fail without it: an entry outside the tolerance, or
    # the witness disagreeing. A check that passes without the probe passes with it, one
    # that fails without it is redone with it, so the verdict, the failing entries and the
    # notes are those of the full tolerance; a passing result reports the tighter
    # tolerance it met (and the slip probability of that tighter comparison). In lower
    # precision the probe is part of what the tolerance reports, so it is always run.
    # The rounding in the user's own formula is measured (and allowed for) the same way:
    # only when the check would fail without it.
    if eps != np.finfo(np.float64).eps:
        ref.ensure_probe()
    cmp = _Comparison(kind, yours, ref, samples, eps, rtol, atol)
    if ref.probe is None and (cmp.failing or not cmp.wit.ok):
        ref.ensure_probe()
        cmp.judge()
    rescued = 0
    if cmp.failing:
        rescued = cmp.allow(_user_rounding(kind, f, yours_fn, x, ref, shape, name, expected,
                                           seed))
    res = _result(kind, yours, cmp.R, cmp.tol, cmp.diff, ref, cmp.wit, seed, label, k, eps,
                  cmp.size)
    if rescued > 0:
        res.notes.append(
            f"your {name} carries rounding of its own (measured at points a few hundred ulps "
            f"away: up to {float(np.max(cmp.rounding)):.1e}); the tolerance allows for it, "
            f"which accepts {rescued} entr{'y' if rescued == 1 else 'ies'}")
    if why:
        res.notes.append(f"f could not be traced ({why}); finite differences are the "
                         "reference")
    if not cmp.wit.ok and ref.exact:
        res.notes.append("the witness disagrees with the AD reference: f may be "
                         "non-differentiable near x, or a diffcheck rule is wrong")
    if cmp.bad.any():
        _explain(res, kind, f, x, cmp.bad, cmp.diff, cmp.tol, ref, seed)
    elif not cmp.wit.user_ok and not ref.exact:
        res.ok = False
        res.directional = (f"your directional derivatives disagree with the witness "
                           f"(largest difference {cmp.wit.worst_user[0]:.3e}, "
                           f"{cmp.wit.worst_user[1]:.1e} relative)")
    return res


class _Comparison:
    """Yours against the reference entry by entry and along the witness's directions,
    under a tolerance that can be widened (the float32 probe, your own rounding) and the
    comparison redone: :meth:`judge`."""

    def __init__(self, kind: str, yours: np.ndarray, ref: Reference, samples: Any,
                 eps: float, rtol: float | None, atol: float | None):
        self.kind, self.yours, self.ref, self.samples = kind, yours, ref, samples
        self.eps, self.rtol, self.atol = eps, rtol, atol
        self.R = ref.value.reshape(yours.shape)
        self.size = np.maximum(np.abs(self.R), ref.scale.reshape(self.R.shape))
        self.rounding: np.ndarray | None = None
        self.diff = _abs_diff(yours, self.R)
        self.judge()

    @property
    def failing(self) -> bool:
        return bool(self.bad.any()) or not self.wit.user_ok

    def limits(self) -> np.ndarray:
        """The tolerance per entry, from what is known so far."""
        ref, shape = self.ref, self.R.shape
        probe = None if ref.probe is None else ref.probe.reshape(shape)
        tol = _tolerance(self.size, probe, self.eps)
        if self.rtol is not None:
            tol = tol + self.rtol * self.size
        if self.atol is not None:
            tol = tol + self.atol
        if ref.error is not None:
            tol = tol + np.nan_to_num(ref.error.reshape(shape), nan=np.inf)
        if self.rounding is not None:
            tol = tol + self.rounding
        return tol

    def judge(self) -> None:
        self.tol = self.limits()
        self.bad = ~(self.diff <= self.tol)
        self.wit = _witness_verdict(self.kind, self.samples, self.yours, self.ref, self.tol,
                                    self.size)

    def allow(self, rounding: np.ndarray | None) -> int:
        """Allow for your own rounding (if measured and not 0); how many entries it accepts."""
        if rounding is None or not np.any(rounding > 0):
            return 0
        before = int(np.count_nonzero(self.bad))
        self.rounding = rounding.reshape(self.R.shape)
        self.judge()
        return before - int(np.count_nonzero(self.bad))


def _abs_diff(yours: np.ndarray, R: np.ndarray) -> np.ndarray:
    """|yours - R| in one array (infinite where yours is not finite)."""
    with np.errstate(all="ignore"):
        diff = np.empty(R.shape, np.result_type(yours, R))
        np.subtract(yours, R, out=diff)
        np.abs(diff, out=diff)
        finite_ = np.isfinite(yours)
        if not finite_.all():
            diff[~finite_] = np.inf
    return diff


def _user_rounding(kind: str, f: Fn, yours_fn: Fn, x: np.ndarray, ref: Reference,
                   shape: tuple[int, ...], name: str, expected: str, seed: int
                   ) -> np.ndarray | None:
    """The rounding in the user's own formula (see
    :func:`numpy_precision.derivative_rounding`), or None if it cannot be measured."""
    def ref_at(z: np.ndarray) -> np.ndarray:
        z64 = z.astype(np.float64)
        if ref.exact:
            return np.reshape(_ad_value(kind, f, z64), shape)
        return np.reshape(_fd_reference(kind, f, z64, ref.precision).value, shape)

    return numpy_precision.derivative_rounding(
        lambda z: _user_array(yours_fn(z), shape, name, expected), ref_at, x, seed=seed)


def _result(kind, yours, R, tol, diff, ref, wit, seed, label, k, eps, size=None
            ) -> CheckResult:
    """The result's numbers. The relative error of an entry is its error over its size,
    where that is at least ``sqrt(eps)`` of the largest size (a reference entry that is 0
    up to rounding or a finite-difference error bar makes no entry "100% off")."""
    if size is None:
        size = np.maximum(np.abs(R), ref.scale.reshape(R.shape))
    with np.errstate(all="ignore"):
        rel = np.maximum(size, math.sqrt(eps) * float(np.max(size, initial=0.0)))
        np.divide(diff, rel, out=rel)
        rel[diff == 0] = 0.0  # exact agreement, even where the size is 0
        zero = ~(size > 0) & (diff <= tol)
        if zero.any():  # a reference that is 0, met within tolerance: no error either
            rel[zero] = 0.0
    worst = np.unravel_index(int(np.argmax(rel)), R.shape) if R.size else None
    return CheckResult(
        kind=kind, ok=True, yours=yours, reference=R, tolerance=tol, method=ref.method,
        witness=wit.text, seed=seed, dtype=label,
        max_abs_error=float(np.max(diff, initial=0.0)),
        max_rel_error=float(np.max(rel, initial=0.0)),
        worst_index=tuple(int(i) for i in worst) if worst is not None else None,
        directions=k, slip_probability=wit.slip)


def _explain(res: CheckResult, kind: str, f: Fn, x: np.ndarray, bad: np.ndarray,
             diff: np.ndarray, tol: np.ndarray, ref: Reference, seed: int) -> None:
    """Judge every failing entry at kinks, then show the worst with every engine's value.

    The kink test (:mod:`diffcheck.numpy_kinks`) examines all failing entries, however
    many: a value between the one-sided derivatives passes, one outside fails. Up to
    ``MAX_LOCALISE`` of them are then asked of every engine for the report."""
    with np.errstate(all="ignore"):
        excess = np.ravel(diff / np.maximum(tol, np.finfo(float).tiny))
    flat_bad = np.flatnonzero(bad)
    verdict = _kink_verdict(kind, f, x, ref, res, bad, seed)
    forgiven = np.zeros(bad.size, bool) if verdict is None else np.ravel(verdict.forgiven)
    still, at_kink = flat_bad[~forgiven[flat_bad]], flat_bad[forgiven[flat_bad]]
    order = np.concatenate([still[np.argsort(-excess[still], kind="stable")],
                            at_kink[np.argsort(-excess[at_kink], kind="stable")]])
    order = order[:MAX_LOCALISE]
    analytic = ref.kinks is not None and ref.kinks.analytic
    noise = ref.precision.noise if ref.precision is not None else None
    info = _localise(kind, f, x, order, analytic, ref.exact, noise)
    res.worst = [_entry(res, int(i), info[int(i)], verdict) for i in order][:SHOW]
    where = ref.kinks.describe() if ref.kinks is not None and ref.kinks.at_kink else "f"
    if verdict is not None and verdict.ok:
        res.ok, res.n_bad = True, 0
        m = verdict.examined
        res.kink = (f"x is at a kink of {where}: the derivative is not defined at {m} "
                    f"entr{'y' if m == 1 else 'ies'}; yours lie between the one-sided "
                    f"derivatives there ({verdict.how}), so they are not counted as errors")
        return
    res.ok = False
    if verdict is None:
        res.n_bad = int(flat_bad.size)
        return
    if still.size == 0:  # each entry in its range, but no subgradient together
        res.n_bad = int(flat_bad.size)
        res.kink = (f"x is at a kink of {where}: each failing entry lies between its "
                    f"one-sided derivatives, but {verdict.failure}")
        return
    res.n_bad = int(still.size)
    parts = []
    if at_kink.size:
        parts.append(f"{at_kink.size} failing entr{'y lies' if at_kink.size == 1 else 'ies lie'}"
                     " between the one-sided derivatives and "
                     f"{'is' if at_kink.size == 1 else 'are'} not counted")
    out = [e for e in res.worst if e.bracket is not None and not
           e.bracket[0] - e.tol <= e.yours <= e.bracket[1] + e.tol]
    if out:
        parts.append(f"{out[0].index}: your {out[0].yours:.6g} is outside the range between "
                     f"its one-sided derivatives [{out[0].bracket[0]:.6g}, "
                     f"{out[0].bracket[1]:.6g}]")
    if verdict.failure:
        parts.append(verdict.failure)
    if parts:
        res.kink = f"x is at a kink of {where}: " + "; ".join(parts)


def _entry(res: CheckResult, i: int, meta: dict[str, Any], verdict) -> Entry:
    idx = tuple(int(j) for j in np.unravel_index(i, res.yours.shape))
    bracket = None
    if verdict is not None and verdict.kinked is not None and np.ravel(verdict.kinked)[i]:
        bracket = (float(np.ravel(verdict.lo)[i]), float(np.ravel(verdict.hi)[i]))
    return Entry(idx, float(res.yours[idx]), float(res.reference[idx]),
                 float(res.tolerance[idx]), meta["engines"], meta.get("step"),
                 bool(meta.get("kink", False)) or bracket is not None, bracket)


def _kink_verdict(kind: str, f: Fn, x: np.ndarray, ref: Reference, res: CheckResult,
                  bad: np.ndarray, seed: int):
    """The subgradient verdict on the failing entries, or None where f has no kinks.

    Traced f: one-sided limits of AD at nearby points (only when tracing met a tie: a kink
    of abs, maximum, max, sort, a comparison at equality). Otherwise one-sided finite
    differences, one per failing column (f cannot be traced, so the reference is dense
    differences: few columns)."""
    n = x.size
    x64 = x.astype(np.float64)
    R, Y = ref.value.reshape(-1, n), res.yours.reshape(-1, n)
    T, B = res.tolerance.reshape(-1, n), bad.reshape(-1, n)
    if ref.exact:
        if ref.kinks is None or not ref.kinks.at_kink:
            return None  # no tie at x: every entry's derivative is defined, AD's is it
        eps = _output_eps(evaluate(f, x64))
        got, why = _attempt(lambda: numpy_kinks.one_sided_ad(
            lambda z: _ad_value(kind, f, z), x64, R=R, yours=Y, tol=T, bad=B, eps=eps,
            seed=seed, directions=kind != "hessian"))
        if got is not None:
            return got
        res.notes.append(f"the one-sided derivatives could not be traced ({why}); finite "
                         "differences give them")
    if kind == "hessian" or np.count_nonzero(np.any(B, axis=0)) > 4 * DENSE_FD_LIMIT:
        return None
    noise = ref.precision.noise if ref.precision is not None else None
    return numpy_kinks.one_sided_fd(
        lambda v: directional_difference(f, x64, v.reshape(x.shape), levels=4, noise=noise),
        x64, yours=Y, tol=T, bad=B, R=R)


def _directions_only(kind, f, x, yours, eps, k, seed, why, prec, label) -> CheckResult:
    """No AD and too many inputs for dense differences: random directions only."""
    flat = yours.reshape(-1, x.size)
    ref = Reference(flat, np.abs(flat), np.zeros_like(flat), "none", False, None,
                    precision=prec)
    tol = tolerance(yours, np.abs(yours), np.zeros_like(yours), eps)
    k = max(k, 3)
    s = _witness_samples(kind, f, x, ref, k, seed, noise=prec.noise if prec else None)
    wit = _witness_verdict(kind, s, yours, ref, tol)
    dirs = f"{s.how} along {k} random directions"
    if not wit.user_ok:
        text = f"{dirs}: your directional derivatives DISAGREE"
    elif wit.state == "inconclusive":
        text = (f"{dirs} cannot resolve the {kind} to {WITNESS_REL:g} here: your directional "
                "derivatives are not contradicted, but not confirmed to that level either")
    else:
        text = f"{dirs}: your directional derivatives agree"
    res = CheckResult(
        kind=kind, ok=wit.user_ok, yours=yours, reference=np.full_like(yours, np.nan),
        tolerance=tol, method="none: f could not be traced and has too many inputs for "
        "dense differences", witness=text, seed=seed, dtype=label,
        max_abs_error=wit.worst_user[0], max_rel_error=wit.worst_user[1], worst_index=None,
        directions=k, slip_probability=wit.slip, localised=False)
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
    if isinstance(f, str):  # an expression and a claimed formula: see diffcheck.claims
        return _claim_check("gradient", f, grad, x, **opts)
    from .treecheck import check  # pytrees, and f written with JAX

    return check("gradient", f, grad, x, _check, **opts)


def check_jacobian(f: Fn, jac: Fn, x: Any, **opts: Any) -> CheckResult:
    """Check ``jac(x)`` (shape ``f(x).shape + x.shape``) against ``f``.

    >>> f = lambda x: np.stack([x[0] * x[1], np.exp(x[1])])
    >>> jac = lambda x: np.array([[x[1], x[0]], [0.0, np.exp(x[1])]])
    >>> check_jacobian(f, jac, np.array([2.0, 0.5])).ok
    True
    """
    if isinstance(f, str):  # an expression and a claimed formula: see diffcheck.claims
        return _claim_check("jacobian", f, jac, x, **opts)
    from .treecheck import check  # pytrees, and f written with JAX

    return check("jacobian", f, jac, x, _check, **opts)


def check_hessian(f: Fn, hess: Fn, x: Any, **opts: Any) -> CheckResult:
    """Check ``hess(x)`` (shape ``x.shape + x.shape``) against scalar ``f``.

    >>> f = lambda x: x[0] ** 2 * x[1]
    >>> check_hessian(f, lambda x: np.array([[2 * x[1], 2 * x[0]], [2 * x[0], 0.0]]),
    ...               np.array([1.0, 3.0])).ok
    True
    """
    if isinstance(f, str):  # an expression and a claimed formula: see diffcheck.claims
        return _claim_check("hessian", f, hess, x, **opts)
    from .treecheck import check  # pytrees, and f written with JAX

    return check("hessian", f, hess, x, _check, **opts)


def _claim_check(kind: str, f: str, claimed: Any, x: Any, **opts: Any) -> Any:
    from .claims.routing import check_text

    return check_text(kind, f, claimed, x, **opts)


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
    """Remainders of the Taylor expansion along one direction and their observed order.

    ``rounding``: the rounding level of each remainder (f's measured noise, and the
    rounding of your gradient and Hessian times ``h``); ``usable``: the rows well above
    it, from which alone the order is read. ``order`` is NaN when no two consecutive rows
    are usable (the remainders sit at rounding level: nothing to see above it).
    """

    steps: np.ndarray
    remainders: np.ndarray
    orders: np.ndarray
    order: float
    expected: int
    ok: bool
    seed: int
    rounding: np.ndarray | None = None
    usable: np.ndarray | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        if np.isnan(self.order):
            head = (f"Taylor test: {verdict}: the remainders stay at rounding level, expected "
                    f"order {self.expected} (seed {self.seed})")
        else:
            head = (f"Taylor test: {verdict}: observed order {self.order:.2f} (where the "
                    f"remainders settle), expected {self.expected} (seed {self.seed})")
        lines = [head, "    h            remainder     order"]
        for i, (h, r) in enumerate(zip(self.steps, self.remainders, strict=True)):
            o = f"{self.orders[i - 1]:.2f}" if i else ""
            mark = ""
            if self.usable is not None and not self.usable[i]:
                mark = "   (rounding level)"
            lines.append(f"    {h:.3e}    {r:.3e}     {o:<5}{mark}")
        return "\n".join(lines)


def taylor_test(f: Fn, grad: Fn, x: Any, hess: Fn | None = None, *, seed: int = 0,
                levels: int = 12) -> TaylorResult:
    """Remainders ``|f(x+hv) - f(x) - h grad.v [- h^2/2 v.H.v]|`` over halving ``h``.

    For a right gradient they shrink like ``h**2`` (order 2), for a wrong one like ``h``
    (order 1); with a right Hessian, order 3. The verdict is the order the table shows
    where it settles: the median of the last orders between rows well above rounding
    (f's noise as measured, see :mod:`diffcheck.numpy_precision`, and the rounding of your
    gradient's own dtype); rows at rounding level say nothing and are marked so.

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
    _scalar_output(evaluate(f, x))
    g_user = _user_array(grad(x), x.shape, "grad", "x's shape")
    g = g_user.astype(np.float64)
    x64 = x.astype(np.float64)
    v = _directions(x64, 1, seed)[0].astype(np.float64)
    v = v / max(float(np.max(np.abs(v))), np.finfo(float).tiny) * \
        max(float(np.max(np.abs(x64))), 1.0)
    f0_arr = evaluate(f, x64)
    f0 = float(f0_arr.ravel()[0])
    prec = numpy_precision.detect(f, x64, f0_arr)
    slope = float(np.sum(g * v))
    curv, curv_size, eps_h = 0.0, 0.0, 0.0
    if hess is not None:
        H_user = _user_array(hess(x), x.shape + x.shape, "hess", "x.shape + x.shape")
        H = H_user.reshape(x.size, x.size).astype(np.float64)
        curv = float(v.ravel() @ H @ v.ravel())
        curv_size, eps_h = float(np.abs(v.ravel()) @ np.abs(H) @ np.abs(v.ravel())), \
            _output_eps(H_user)
    hs = 2.0 ** -4 / 2.0 ** np.arange(levels)
    vals = np.array([_value_at(f, x64 + h * v) for h in hs])
    rem = np.abs(vals - f0 - hs * slope - 0.5 * hs ** 2 * curv)
    with np.errstate(all="ignore"):
        orders = np.log2(rem[:-1] / rem[1:])
    # what a right gradient (and Hessian) still leaves: f's noise at two points, and the
    # rounding of yours (a float32 gradient is off by ~eps32 |g| |v|: a term of order 1)
    rounding = 2 * float(np.max(prec.noise)) + 4 * np.finfo(float).eps * abs(f0) + \
        4 * hs * _output_eps(g_user) * float(np.sum(np.abs(g * v))) + \
        2 * hs ** 2 * eps_h * curv_size
    usable = np.isfinite(rem) & (rem > 10 * rounding)
    pairs = usable[:-1] & usable[1:] & np.isfinite(orders)
    expected = 3 if hess is not None else 2
    if not np.any(pairs):
        order = float("nan")
        ok = bool(np.all(~usable[1:]))  # nothing above rounding below the first step
    else:
        order = float(np.median(orders[pairs][-3:]))
        ok = order > expected - 0.5
    return TaylorResult(hs, rem, orders, order, expected, ok, seed, rounding, usable)
