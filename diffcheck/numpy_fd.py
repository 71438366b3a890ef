"""Derivatives of a plain function that only evaluate it: finite differences along a
direction (Richardson-extrapolated, with honest error bars and one-sided limits) and the
complex step.

The step ladder starts at ``h0`` (relative to the direction) and halves until the estimate
settles, so it comes to fit the scale ``f`` varies on, however far that is from the size of
``x``; the rounding of ``f``'s values (``noise``, measured by
:mod:`diffcheck.numpy_precision` where f computes in less than float64) sets the floor.
These are the independent witnesses of :mod:`diffcheck.numpy_check`.

>>> d = directional_difference(np.exp, np.array(1.0), np.array(1.0))
>>> bool(abs(d.value - np.e) <= d.error < 1e-9)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engines import finite
from .errors import UnsupportedError

MAX_LEVELS = 40  #: the longest step ladder along one direction
LADDER_RTOL = 1e-9  #: a ladder stops once its error is this relative

Fn = Callable[[Any], Any]


def _values(f: Fn, z: np.ndarray) -> np.ndarray:
    """f at ``z`` as a real floating array (complex and integer values are made float)."""
    with np.errstate(all="ignore"):
        y = np.asarray(f(z))
    if y.dtype.kind == "c":
        y = y.real
    return y if y.dtype.kind == "f" else y.astype(np.float64)


@dataclass
class Difference:
    """A finite-difference derivative along one direction.

    ``value`` (central, Richardson-extrapolated), its estimated error ``error``, the step
    ``step`` it came from, and the one-sided limits ``left``/``right``; ``kink`` is True
    when they stay apart as the step shrinks (a non-differentiable point). ``scale`` is the
    size of the differences seen, ``rounding`` the rounding error of one difference at the
    finest step (``noise / h``): where it exceeds ``error``, finer steps cannot help.
    """

    value: np.ndarray
    error: np.ndarray
    step: float
    left: np.ndarray
    right: np.ndarray
    kink: np.ndarray
    scale: np.ndarray | None = None
    rounding: np.ndarray | None = None
    levels: int = 0
    side_error: np.ndarray | None = None  #: what left/right may be off by

    def settled(self, rtol: float) -> bool:
        """True when no finer step is worth taking: every entry has converged to ``rtol``
        of its scale, is limited by rounding, or sits at a kink (one-sided limits apart)."""
        if self.scale is None or self.rounding is None:
            return True
        with np.errstate(invalid="ignore"):
            done = (self.error <= rtol * self.scale) | (self.rounding >= self.error) | self.kink
        return bool(np.all(done))


def directional_difference(f: Fn, x: np.ndarray, v: np.ndarray, *, levels: int = 8,
                           h0: float = 2.0 ** -4, f0: np.ndarray | None = None,
                           noise: np.ndarray | None = None, rtol: float = LADDER_RTOL
                           ) -> Difference:
    """Central differences of ``t -> f(x + t v)`` at 0, Richardson-extrapolated.

    The steps start at ``h0`` and halve. After ``levels`` of them the ladder goes on while
    the estimate has not settled (its error above ``rtol`` times the differences' size)
    and a finer step can still help (rounding, ``noise / h``, below the error so far), up
    to :data:`MAX_LEVELS`: the step comes to fit the scale on which f varies, however far
    that is from the scale of ``x`` (unit springs at coordinates 3e3). ``noise``: the
    absolute noise of f's values (flat per output; see :mod:`diffcheck.numpy_precision`),
    at least ``4 eps |f|`` in the precision of f's output.

    >>> d = directional_difference(np.sin, np.array(0.5), np.array(1.0))
    >>> bool(abs(d.value - np.cos(0.5)) <= d.error < 1e-9)
    True
    >>> d = directional_difference(lambda t: np.sin(3e3 * t), np.array(0.0), np.array(1.0))
    >>> bool(abs(d.value - 3e3) <= d.error < 1e-3), d.step < 1e-3
    (True, True)
    """
    x = x.astype(np.float64, copy=False)
    f0 = _values(f, x) if f0 is None else np.asarray(f0)
    eps = _output_eps(f0)
    floor = None if noise is None else np.reshape(noise, f0.shape)
    f0 = f0.astype(np.float64)
    plus: list[np.ndarray] = []
    minus: list[np.ndarray] = []
    d = None
    while len(plus) < MAX_LEVELS:
        h = h0 / 2.0 ** len(plus)
        for side, op in ((plus, np.add), (minus, np.subtract)):
            y = _stepped_value(f, _step(x, h, v, op), f0.shape)
            eps = max(eps, _output_eps(y))
            side.append(y.astype(np.float64))
        if len(plus) < levels:
            continue
        hs = h0 / 2.0 ** np.arange(len(plus))
        d = _estimate(np.stack(plus), np.stack(minus), f0, hs, eps, floor)
        if d.settled(rtol) or np.array_equal(_step(x, h / 2, v, np.add), x):
            break
    return d


def _stepped_value(f: Fn, z: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """f at a stepped point; NaN where the step leaves f's domain (f raises ValueError or
    an arithmetic error there, as ``math.log`` of a negative number does)."""
    try:
        with np.errstate(all="ignore"):
            return _values(f, z)
    except (ValueError, ArithmeticError):
        return np.full(shape, np.nan)


def _output_eps(y: np.ndarray) -> float:
    return float(np.finfo(np.result_type(y.dtype, np.float16)).eps) if y.dtype.kind == "f" \
        else float(np.finfo(np.float64).eps)


def _estimate(plus: np.ndarray, minus: np.ndarray, f0: np.ndarray, hs: np.ndarray, eps: float,
              floor: np.ndarray | None) -> Difference:
    """The Richardson estimate, its error and the one-sided limits from a ladder's values
    (values near overflow make infinities here: data, not warnings to the user)."""
    with np.errstate(all="ignore"):
        return _estimate_quiet(plus, minus, f0, hs, eps, floor)


def _estimate_quiet(plus: np.ndarray, minus: np.ndarray, f0: np.ndarray, hs: np.ndarray,
                    eps: float, floor: np.ndarray | None) -> Difference:
    levels = len(hs)
    noise = 4 * eps * np.maximum(np.max(np.abs(plus), axis=0), np.abs(f0))
    if floor is not None:
        noise = np.maximum(noise, floor)
    shape = (levels,) + (1,) * f0.ndim
    D = (plus - minus) / (2 * hs.reshape(shape))
    best, err, step = _richardson(D, hs, noise)
    right = (plus - f0) / hs.reshape(shape)
    left = (f0 - minus) / hs.reshape(shape)
    jump = np.abs(right - left)
    settled = jump[-1] > 0.7 * jump[-2] if levels > 1 else np.zeros(jump.shape[1:], bool)
    big = jump[-1] > 1e3 * noise / hs[-1] + 1e-6 * (np.abs(right[-1]) + np.abs(left[-1]))
    kink = settled & big
    scale = np.nanmax(np.abs(np.where(np.isfinite(D), D, np.nan)), axis=0) \
        if np.any(np.isfinite(D)) else np.zeros(D.shape[1:])
    scale = np.nan_to_num(scale, nan=0.0)
    lo, hi, side = _one_sided(left, right, noise / hs[-1])
    return Difference(best, np.where(kink, np.inf, err), step, lo, hi, kink, scale,
                      noise / hs[-1], levels, side)


def _one_sided(left: np.ndarray, right: np.ndarray, rounding: np.ndarray):
    """Extrapolated one-sided limits from one-sided differences (their error is O(h), so
    ``2 D(h/2) - D(h)``) and what they may still be off by."""
    if len(left) < 3:
        return left[-1], right[-1], np.abs(right[-1] - left[-1]) + 2 * rounding
    lo, hi = 2 * left[-1] - left[-2], 2 * right[-1] - right[-2]
    lo_prev, hi_prev = 2 * left[-2] - left[-3], 2 * right[-2] - right[-3]
    side = 2 * np.maximum(np.abs(lo - lo_prev), np.abs(hi - hi_prev)) + 4 * rounding
    return lo, hi, side


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


def _second_difference(f: Fn, x: np.ndarray, v: np.ndarray, noise: np.ndarray | None = None,
                       levels: int = 4, rtol: float = LADDER_RTOL) -> Difference:
    """v^T H v by central second differences of t -> f(x + t v), Richardson; the ladder
    goes on until it settles (``rtol``), like :func:`directional_difference`'s."""
    y0 = _values(f, x)
    f0, eps = float(y0.astype(np.float64).ravel()[0]), _output_eps(y0)
    plus: list[float] = []
    minus: list[float] = []
    best = err = None
    step = 0.0
    while len(plus) < MAX_LEVELS:
        h = 2.0 ** -3 / 2.0 ** len(plus)
        plus.append(_value_at(f, x + h * v))
        minus.append(_value_at(f, x - h * v))
        if len(plus) < levels:
            continue
        hs = 2.0 ** -3 / 2.0 ** np.arange(len(plus))
        P, M = np.array(plus), np.array(minus)
        D = (P - 2 * f0 + M) / hs ** 2
        rounding = 8 * eps * max(float(np.nanmax(np.abs(P), initial=0.0)), abs(f0))
        if noise is not None:
            rounding = max(rounding, 2 * float(np.max(noise)))
        best, err, step = _richardson(D[:, None], hs, np.array([rounding]), power=2)
        size = float(np.nanmax(np.abs(D), initial=0.0))
        if err[0] <= rtol * size or rounding / hs[-1] ** 2 >= err[0]:
            break
    lo, hi, kink = _second_sides(np.array(plus), np.array(minus), f0, rounding)
    return Difference(best, np.where(kink, np.inf, err), step, lo, hi, kink,
                      side_error=np.array([8 * rounding / hs[-1] ** 2]))


def _second_sides(plus: np.ndarray, minus: np.ndarray, f0: float, rounding: float):
    """One-sided second derivatives along the ladder's direction (``f(x + 2h v) - 2 f(x +
    h v) + f(x)`` over ``h^2``, from neighbouring levels) and whether they stay apart as h
    shrinks: a kink of the first derivative (``relu(x)**2`` at 0)."""
    none = (np.array([np.nan]), np.array([np.nan]), np.array([False]))
    if len(plus) < 4:
        return none
    hs = 2.0 ** -3 / 2.0 ** np.arange(len(plus))
    right = (plus[:-1] - 2 * plus[1:] + f0) / hs[1:] ** 2
    left = (minus[:-1] - 2 * minus[1:] + f0) / hs[1:] ** 2
    jump = np.abs(right - left)
    settled = jump[-1] > 0.7 * jump[-2] and abs(right[-1] - right[-2]) < 0.3 * jump[-1]
    big = jump[-1] > 1e3 * rounding / hs[-1] ** 2 + 1e-6 * (abs(right[-1]) + abs(left[-1]))
    return (np.array([min(left[-1], right[-1])]), np.array([max(left[-1], right[-1])]),
            np.array([bool(settled and big)]))


def _value_at(f: Fn, z: np.ndarray) -> float:
    """f's one value at ``z`` (NaN where f fails or leaves its domain there)."""
    try:
        with np.errstate(all="ignore"):
            return float(np.ravel(np.asarray(f(z), dtype=np.float64))[0])
    except Exception:  # noqa: BLE001 -- a step outside f's domain: that point drops out
        return float("nan")


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
