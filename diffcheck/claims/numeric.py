"""Claimed vs true values at sampled points, at a precision rounding cannot fool.

Every pair (claimed, true) is evaluated at :data:`LOW` and :data:`HIGH` digits; the
difference of the two evaluations estimates the error of each, and a point is decided only
when that error is far below the values (otherwise the point is evaluated again with more
digits, up to :data:`MAX_DIGITS`). A claimed entry *holds* at a point when claimed and true
agree within a few times the estimated error plus 10**-40 of their size; it *fails* when they
differ by more, or when the claim is undefined where F's derivative is defined. So
``0.9999*x`` against ``x``, or an extra ``1e-9*x**3``, fails, and a right claim whose float64
evaluation would cancel badly still holds.

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> plan = Plan([x + sympy.Rational(1, 10**9) * x**3, x], ["x"])
>>> read_point(plan, [1.5], 1)[0].status
'fail'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from ..errors import DomainError
from .highprec import TOO_LARGE, Plan, Value

HOLD, FAIL, SKIP = "hold", "fail", "skip"
LOW, HIGH = 50, 80  #: digits of the two evaluations
MAX_DIGITS = 1600  #: escalation stops here; an undecided point is skipped
SURE = mpmath.mpf(10) ** -20  #: estimated relative error below which a point is decided
RELATIVE = mpmath.mpf(10) ** -40  #: relative tolerance when the evaluations are exact
TINY = mpmath.mpf(10) ** -60  #: absolute tolerance when both values are 0
RANDOM_POINTS = 24  #: random points drawn by F's sampler (fewer for huge claims)
WIDE_POINTS = 8  #: extra points from a wider box, inside F's domain
WORK = 250_000  #: node evaluations per precision that fix the number of points
NICE = [1.0, 2.0, -1.0, 0.5, 3.0, -2.0, -0.5, 1.5, 0.0]  #: coordinates of readable points


@dataclass
class Reading:
    """One claimed entry at one point: HOLD, FAIL or SKIP, and the two values."""

    status: str
    claimed: Value  # None: undefined there
    true: Value


def judge(lo: tuple[Value, Value], hi: tuple[Value, Value]) -> Reading | None:
    """Decide from (claimed, true) at two precisions; None when more digits are needed."""
    (c_lo, t_lo), (c, t) = lo, hi
    if TOO_LARGE in (c, t, c_lo, t_lo):  # too large to decide here
        return Reading(SKIP, None, None)
    if t is None or t_lo is None:
        return Reading(SKIP, c, t)
    if c is None or c_lo is None:
        return Reading(FAIL, None, t)
    with mpmath.workdps(30):
        err = abs(c_lo - c) + abs(t_lo - t)
        scale = max(abs(c), abs(t))
        if err > SURE * scale:
            return None
        tol = 10 * err + RELATIVE * scale + TINY
        return Reading(HOLD if abs(c - t) <= tol else FAIL, c, t)


def read_point(plan: Plan, x: Any, entries: int, digits: tuple[int, int] = (LOW, HIGH)
               ) -> list[Reading]:
    """Readings of every entry at ``x``; the plan's outputs are (claimed, true) pairs."""
    lo, hi = digits
    while True:
        a, b = plan.evaluate(x, lo), plan.evaluate(x, hi)
        out = [judge((a[2 * e], a[2 * e + 1]), (b[2 * e], b[2 * e + 1]))
               for e in range(entries)]
        if all(r is not None for r in out) or hi >= MAX_DIGITS:
            return [r if r is not None else Reading(SKIP, b[2 * e], b[2 * e + 1])
                    for e, r in enumerate(out)]
        lo, hi = hi, 2 * hi


def point_count(plan: Plan) -> int:
    """Random points to draw: :data:`RANDOM_POINTS`, fewer (at least 4) for huge plans."""
    return int(np.clip(WORK // max(len(plan), 1), 4, RANDOM_POINTS))


def sample(fn: Any, user: np.ndarray | None, count: int, seed: int) -> np.ndarray:
    """The user's points, then ``count`` random points from F's own sampler, then a few
    from a wider box (all inside F's domain)."""
    from ..check import random_points

    parts = [] if user is None else [user]
    try:
        parts.append(random_points(fn, count, seed))
    except DomainError:
        if user is None:
            raise
    parts.append(_wide(fn, max(2, count // 3), seed))
    X = np.concatenate([p for p in parts if p.size], axis=0) if parts else np.zeros((0, 0))
    _, first = np.unique(X, axis=0, return_index=True)
    return X[np.sort(first)]


def _wide(fn: Any, count: int, seed: int) -> np.ndarray:
    n = len(fn.variables)
    rng = np.random.default_rng([seed, 1])
    C = np.round(rng.uniform(-6.0, 6.0, size=(64, n)), 3)
    return C[in_domain(fn, C)][:count]


def in_domain(fn: Any, C: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``C`` where F and its derivatives are defined."""
    if C.shape[0] == 0 or C.shape[1] == 0:
        return np.ones(C.shape[0], dtype=bool)
    with np.errstate(all="ignore"):
        ok = fn.program.check_domain([C[:, i] for i in range(C.shape[1])])
    return np.broadcast_to(ok, (C.shape[0],)).copy()


def nice_points(fn: Any, limit: int = 12) -> np.ndarray:
    """Readable points (coordinates 1, 2, -1, 0.5, ...) inside F's domain, simplest first."""
    n = len(fn.variables)
    if n == 0 or n > 4:
        return np.zeros((0, n))
    ranks = sorted(itertools.product(range(len(NICE)), repeat=n), key=lambda r: (sum(r), r))
    C = np.array([[NICE[i] for i in r] for r in ranks[:400]])
    return C[in_domain(fn, C)][:limit]


def persists(plan: Plan, fn: Any, x: np.ndarray, entry: int, entries: int,
             rng: np.random.Generator, tries: int = 3) -> bool:
    """Does the entry hold near ``x`` too (so on a region, not at an isolated point)?"""
    for _ in range(tries):
        y = x + rng.normal(size=x.shape) * 1e-3 * (1 + np.abs(x))
        if in_domain(fn, y[None, :])[0] and \
                read_point(plan, y, entries)[entry].status == HOLD:
            return True
    return False


def verify(plan: Plan, x: np.ndarray, entry: int, entries: int) -> Reading:
    """The reading at 50 and 100 digits (a counterexample must fail here too)."""
    return read_point(plan, x, entries, digits=(50, 100))[entry]
