"""Claimed vs true values at sampled points, at a precision rounding cannot fool.

Every pair (claimed, true) is evaluated at 50 and 80 digits. The error of the 80-digit values
is estimated twice: from the largest value met while computing them (rounding errors are
relative to it, so cancellation of huge terms shows) and from the gap to the 50-digit values
(which catches error amplification that sizes alone miss); the larger counts. A claimed entry
*fails* at a point when claimed and true differ by more than twice that error, or when the
claim is undefined where F's derivative is defined; it *holds* when the error is below
10**-20 of their size and their difference is no more than the rounding of the 80 digits (the
gap to the 50-digit values scaled down by 10**-30: a difference of 1e-60 passes unseen at 50
digits, so it is not taken for their error), or when both are 0 to the working precision
(and that is below 10**-40) unless both are steady (equal to 20 digits at the two
precisions: exp(-900)*x is tiny beside x**2, not rounding noise, and is compared relative to
itself). Otherwise the point is evaluated again with twice the digits (up to
:data:`LEVELS`' last; still undecided, it is skipped). So ``0.9999*x`` against ``x``, an
extra ``1e-9*x**3`` or a factor ``1 + 1e-40`` fails, and a right claim whose float64
evaluation would cancel badly still holds.

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> plan = Plan([x + sympy.Rational(1, 10**9) * x**3, x], ["x"])
>>> read_point(plan, [1.5], 1)[0].status
'fail'
>>> s, c = sympy.sin(x), sympy.cos(x)
>>> read_point(Plan([s**2 + c**2 - 1, sympy.S.Zero], ["x"]), [0.3], 1)[0].status
'hold'
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from ..errors import DomainError
from .highprec import TOO_LARGE, Plan, Value

HOLD, FAIL, SKIP = "hold", "fail", "skip"
LEVELS = (50, 80, 160, 320, 640, 1280)  #: digits of successive evaluations
VERIFY_LEVELS = (50, 100, 200, 400, 800, 1600)  #: for re-verifying a counterexample
SURE = mpmath.mpf(10) ** -20  #: relative error below which agreement is decided
FLOOR = 10  #: values below 10**-(digits - FLOOR) of the largest term count as 0 ...
RESOLVED = mpmath.mpf(10) ** -40  #: ... when that last digit is below this
SLACK = 100  #: rounding error per node, in units of the last digit of the largest term
RANDOM_POINTS = 24  #: random points drawn by F's sampler (fewer for huge claims)
WORK = 250_000  #: node evaluations per precision that fix the number of points
NICE = [1.0, 2.0, -1.0, 0.5, 3.0, -2.0, -0.5, 1.5, 0.0]  #: coordinates of readable points


@dataclass
class Reading:
    """One claimed entry at one point: HOLD, FAIL or SKIP, and the two values."""

    status: str
    claimed: Value  # None: undefined there
    true: Value


@dataclass
class Level:
    """(claimed, true) at one precision, and the bits of their largest intermediate."""

    digits: int
    claimed: Value
    true: Value
    size: int


def _undefined(levels: list[Level]) -> Reading | None:
    values = [v for lv in levels for v in (lv.claimed, lv.true)]
    if any(v is TOO_LARGE for v in values) or any(lv.true is None for lv in levels):
        return Reading(SKIP, None, None)
    if any(lv.claimed is None for lv in levels):
        return Reading(FAIL, None, levels[-1].true)
    return None


def judge(prev: Level, last: Level, nodes: int) -> Reading | None:
    """Decide from two precisions; None when more digits are needed."""
    bad = _undefined([prev, last])
    if bad is not None:
        return bad
    with mpmath.workdps(30):
        c, t = last.claimed, last.true
        ulp = mpmath.mpf(10) ** -last.digits * mpmath.mpf(2) ** last.size
        rounding = ulp * SLACK * nodes
        gap = abs(prev.claimed - c) + abs(prev.true - t)
        diff, scale = abs(c - t), max(abs(c), abs(t))
        steady = _steady(prev.claimed, c) and _steady(prev.true, t)
        if steady:  # both agree to 20 digits at the two precisions: not rounding noise, so
            # relative to themselves (exp(-900)*x is tiny beside x**2, yet exact to its
            # last digits: products keep relative accuracy)
            rounding = min(rounding, scale * mpmath.mpf(10) ** -last.digits * SLACK * nodes)
        err = max(rounding, gap)
        if diff > 2 * err:
            return Reading(FAIL, c, t)
        if not steady and scale <= ulp * 10**FLOOR and ulp <= RESOLVED:
            return Reading(HOLD, c, t)
        # The gap is the error of the fewer digits: the more digits are that error scaled
        # down (times SLACK). A difference only the gap explains needs more digits: a claim
        # off by 1e-60 looks the same as the truth at 50 digits.
        sharp = max(rounding, gap * mpmath.mpf(10) ** (prev.digits - last.digits) * SLACK)
        if err <= SURE * scale and diff <= 2 * sharp:
            return Reading(HOLD, c, t)
        return None


def _steady(before: Any, now: Any) -> bool:
    """Is ``now`` exactly 0 at both precisions, or equal to ``before`` to 20 digits?"""
    return abs(before - now) <= SURE * abs(now) if now else not before


def read_point(plan: Plan, x: Any, entries: int, levels: tuple[int, ...] = LEVELS,
               deadline: float = math.inf) -> list[Reading]:
    """Readings of every entry at ``x``; the plan's outputs are (claimed, true) pairs.
    Past ``deadline`` (``time.perf_counter()``) no more digits are tried."""
    seen = [_levels(plan, x, levels[0], entries)]
    out: list[Reading | None] = [None] * entries
    for k, digits in enumerate(levels[1:]):
        if k and time.perf_counter() > deadline:
            break
        seen.append(_levels(plan, x, digits, entries))
        for e in range(entries):
            if out[e] is None:
                out[e] = judge(seen[-2][e], seen[-1][e], len(plan))
        if all(r is not None for r in out):
            break
    last = seen[-1]
    return [r if r is not None else Reading(SKIP, last[e].claimed, last[e].true)
            for e, r in enumerate(out)]


def _levels(plan: Plan, x: Any, digits: int, entries: int) -> list[Level]:
    vals, sizes = plan.evaluate_sized(x, digits)
    return [Level(digits, vals[2 * e], vals[2 * e + 1], max(sizes[2 * e], sizes[2 * e + 1]))
            for e in range(entries)]


def point_count(plan: Plan) -> int:
    """Random points to draw: :data:`RANDOM_POINTS`, fewer (at least 4) for huge plans."""
    return int(np.clip(WORK // max(len(plan), 1), 4, RANDOM_POINTS))


def sample(fn: Any, user: np.ndarray | None, count: int, seed: int) -> tuple[np.ndarray, int]:
    """The user's points, then ``count`` random points from F's own sampler, then a few
    from a wider box (all inside F's domain), each once; and how many are the user's."""
    from ..check import random_points

    user = np.unique(user, axis=0) if user is not None else np.zeros((0, len(fn.variables)))
    parts = [user]
    try:
        parts.append(random_points(fn, count, seed))
    except DomainError:
        if not len(user):
            raise
    parts.append(_wide(fn, max(2, count // 3), seed))
    X = np.concatenate(parts, axis=0)
    _, first = np.unique(X, axis=0, return_index=True)
    return X[np.sort(first)], len(user)


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
                read_point(plan, y, entries, VERIFY_LEVELS)[entry].status == HOLD:
            return True
    return False


def verify(plan: Plan, x: np.ndarray, entry: int, entries: int) -> Reading:
    """The reading at 50 and 100 digits (more if needed): a counterexample must fail here
    too."""
    return read_point(plan, x, entries, VERIFY_LEVELS)[entry]
