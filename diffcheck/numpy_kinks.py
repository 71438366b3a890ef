"""Subgradient-aware verdicts where a checked derivative sits on a kink or a tie.

At a kink (``abs`` at 0, ``maximum`` of equal arguments, a ``max`` over tied entries, relu
through ``x > 0``) the derivative is not defined and many values are right: an equal split
over a tie, all of it to the first argmax (what argmax-based backward passes do), anything
in between. The policy: **a value between the one-sided derivatives passes, one outside
fails**, entry by entry and along directions that move several entries at once (a "1 to
every tied entry" gradient has each entry in range but their sum out of it). Every failing
entry is examined, however many sit on ties.

The one-sided limits come from the exact engine, cheaply: the derivative at ``x + tau u``
for a tiny ``tau`` is the one-sided limit along ``u`` (the point sits inside one smooth
piece), so one reverse pass at a perturbed point gives that limit for *every* entry at once.
Perturbing along ``+u`` and ``-u`` for a few random ``u`` gives each entry's range; entries
still out of range get a pass of their own; along a direction ``v``, ``G(x + tau v) . v`` and
``G(x - tau v) . v`` are the right and left derivatives, which bound ``yours . v``. Without
AD (``f`` cannot be traced) one-sided finite differences play the same part.

>>> import numpy as np
>>> f_grad = lambda z: np.array([[1.0, 0.0] if z[0] > z[1] else [0.0, 1.0]])  # max(x0, x1)
>>> x = np.array([1.0, 1.0])
>>> v = one_sided_ad(f_grad, x, R=np.array([[0.5, 0.5]]), yours=np.array([[1.0, 0.0]]),
...                  tol=np.zeros((1, 2)), bad=np.ones((1, 2), bool), eps=2.0 ** -52)
>>> v.ok, v.failure
(True, '')
>>> v = one_sided_ad(f_grad, x, R=np.array([[0.5, 0.5]]), yours=np.array([[1.0, 1.0]]),
...                  tol=np.zeros((1, 2)), bad=np.ones((1, 2), bool), eps=2.0 ** -52)
>>> v.ok, bool(v.forgiven.all()), v.failure.split(":")[0]
(False, True, 'along the direction of your error')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TAU_ULPS = 2.0 ** 10  #: perturbation, in ulps of the precision f computes in
RANDOM_DIRECTIONS = 3  #: random directions (each both ways) over the failing entries
COVER_PASSES = 3  #: further passes over the entries still out of their range
CONFIRM = 8  #: entries given a pass of their own before an out-of-range entry is final

JacAt = Callable[[np.ndarray], np.ndarray]  # z -> (m, n) derivative at z (flat)


@dataclass
class KinkVerdict:
    """Which failing entries a kink explains, each entry's range, and any failed direction.

    ``forgiven``: mask (flat ``(m, n)``) of failing entries whose value lies between the
    one-sided limits; ``lo``/``hi``: those limits (NaN where not examined); ``failure``:
    the direction test that failed, in words (empty if none); ``examined``: how many
    failing entries were examined (all of them); ``how``: where the limits came from.
    """

    forgiven: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    failure: str = ""
    examined: int = 0
    how: str = ""
    kinked: np.ndarray | None = None  #: failing entries whose one-sided limits differ

    @property
    def ok(self) -> bool:
        """True when the kinks explain every failing entry: each in range, no direction
        test failed."""
        return not self.failure and self.examined == int(np.count_nonzero(self.forgiven))


def _sizes(x: np.ndarray) -> np.ndarray:
    size = np.abs(x).ravel()
    typical = float(np.sqrt(np.mean(size ** 2))) if size.size else 1.0
    return np.where(size > 0, size, max(typical, 1.0))


def _normalise(u: np.ndarray, size: np.ndarray) -> np.ndarray:
    """``u`` scaled so that its largest entry relative to ``size`` is 1."""
    top = float(np.max(np.abs(u) / size, initial=0.0))
    return u / top if top > 0 else u


class _Limits:
    """One-sided limits of the derivative at x, gathered pass by pass (flat ``(m, n)``)."""

    def __init__(self, jac_at: JacAt, x: np.ndarray, R: np.ndarray, tau: float):
        self.jac_at, self.x, self.R, self.tau = jac_at, x, R, tau
        self.lo = np.full(R.shape, np.inf)
        self.hi = np.full(R.shape, -np.inf)
        self.passes = 0

    def along(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What ``yours . v`` may be, per output: ``(low, high, slack)``; the ranges widen.

        Each entry's one-sided limits along ``+v`` and ``-v`` bound its part of ``. v``:
        ``sum_j min`` and ``sum_j max`` of ``G_j v_j`` over the two sides. For one convex
        kink that is the left and right derivative along v; summed entry by entry it
        stays a valid bound for a sum of kinks of either curvature (max pools weighted
        by both signs), which the whole function's one-sided derivatives are not."""
        parts, drifts = [], []
        for sign in (1.0, -1.0):
            G, drift = self._limit(sign * v)
            self.lo = np.minimum(self.lo, G - drift)
            self.hi = np.maximum(self.hi, G + drift)
            parts.append(G * v)
            drifts.append(np.abs(drift) @ np.abs(v))
        low = np.sum(np.minimum(parts[0], parts[1]), axis=-1)
        high = np.sum(np.maximum(parts[0], parts[1]), axis=-1)
        return low, high, drifts[0] + drifts[1]

    def _limit(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The derivative's one-sided limit along ``v``, and how much it still drifts (the
        smooth change between ``tau`` and ``2 tau``, which is ~0 on a kink's flat piece)."""
        shape = self.x.shape
        near = self.jac_at(self.x + (self.tau * v).reshape(shape))
        far = self.jac_at(self.x + (2 * self.tau * v).reshape(shape))
        self.passes += 2
        near, far = np.reshape(near, self.R.shape), np.reshape(far, self.R.shape)
        return 2 * near - far, 2 * np.abs(far - near)


def one_sided_ad(jac_at: JacAt, x: np.ndarray, *, R: np.ndarray, yours: np.ndarray,
                 tol: np.ndarray, bad: np.ndarray, eps: float, seed: int = 0,
                 directions: bool = True) -> KinkVerdict:
    """Judge the failing entries ``bad`` of ``yours`` by the one-sided limits of ``jac_at``.

    ``jac_at(z)`` is the exact derivative at ``z`` (flat ``(m, n)``); ``R``, ``yours``,
    ``tol``, ``bad`` are flat ``(m, n)``; ``eps`` is the precision f computes in (the
    perturbation is ``TAU_ULPS`` of its ulps, enough to break a tie it computes). With
    ``directions=False`` (Hessians) only the entries' ranges are tested.
    """
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed + 7)
    size = _sizes(x)
    cols = np.flatnonzero(np.any(bad, axis=0))
    lim = _Limits(jac_at, x, R, TAU_ULPS * eps)
    failure = ""
    if directions:
        d = np.zeros(x.size)
        d[cols] = np.sum(np.where(bad, yours - R, 0.0), axis=0)[cols]
        failure = _direction_test(lim, _normalise(d, size), yours, tol,
                                  "along the direction of your error")
    for k in range(RANDOM_DIRECTIONS):
        u = np.zeros(x.size)
        u[cols] = rng.standard_normal(cols.size) * size[cols]
        if directions and not failure:
            failure = _direction_test(lim, _normalise(u, size), yours, tol,
                                      f"along random direction {k + 1}")
        elif not directions:
            lim.along(_normalise(u, size))
    outside = bad & ~_inside(lim, yours, tol)
    for _ in range(COVER_PASSES):
        if not outside.any():
            break
        u = np.zeros(x.size)
        sus = np.flatnonzero(np.any(outside, axis=0))
        u[sus] = rng.uniform(0.5, 1.0, sus.size) * size[sus]
        lim.along(_normalise(u, size))
        outside = bad & ~_inside(lim, yours, tol)
    _confirm(lim, outside, yours, tol, size)
    outside = bad & ~_inside(lim, yours, tol)
    if directions and not failure and np.any(bad & ~outside):
        failure = _direction_test(lim, _along_kinks(lim, tol, size), yours, tol,
                                  "along every entry at a kink at once")
    return KinkVerdict(bad & ~outside, np.where(bad, lim.lo, np.nan),
                       np.where(bad, lim.hi, np.nan), failure, int(np.count_nonzero(bad)),
                       f"one-sided limits of AD at points {lim.tau:.0e} x |x| away "
                       f"({lim.passes} passes)", bad & (lim.hi - lim.lo > tol))


def _along_kinks(lim: _Limits, tol: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The direction that moves every entry whose one-sided limits differ, each by its size.

    Tied entries of equal size stay tied along it, so f is smooth there and the sum of your
    entries over a tie is pinned down: ``[0, .55, .5, 0]`` for ``max`` at ``[1, 3, 3, 2]``
    has each entry between its one-sided limits 0 and 1, but sums to 1.05 over the tie
    where every subgradient sums to 1. Entries the earlier passes left untested (still at
    ``lo = inf``) are not moved."""
    with np.errstate(invalid="ignore"):
        kinked = np.any(lim.hi - lim.lo > np.maximum(tol, 0.0), axis=0)
    v = np.where(kinked, size, 0.0)
    return _normalise(v, size)


def _inside(lim: _Limits, yours: np.ndarray, tol: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (yours >= lim.lo - tol) & (yours <= lim.hi + tol)


def _confirm(lim: _Limits, outside: np.ndarray, yours: np.ndarray, tol: np.ndarray,
             size: np.ndarray) -> None:
    """Give the worst out-of-range columns a pass of their own (each moved alone), until
    one stays out of range: that one is a wrong value, not an unlucky sample."""
    cols = np.flatnonzero(np.any(outside, axis=0))
    with np.errstate(invalid="ignore"):
        gap = np.max(np.where(outside, np.maximum(lim.lo - yours, yours - lim.hi) / np.maximum(
            tol, np.finfo(float).tiny), 0.0), axis=0)
    for j in cols[np.argsort(-gap[cols], kind="stable")][:CONFIRM]:
        e = np.zeros(lim.x.size)
        e[j] = size[j]
        lim.along(e)
        if np.any(outside[:, j] & ~_inside(lim, yours, tol)[:, j]):
            return


def _direction_test(lim: _Limits, v: np.ndarray, yours: np.ndarray, tol: np.ndarray,
                    name: str) -> str:
    """'' if ``yours . v`` lies within what the one-sided limits allow along ``v`` (per
    output, see :meth:`_Limits.along`), else the failure in words."""
    if not np.any(v):
        return ""
    low, high, drift = lim.along(v)
    slack = np.abs(tol) @ np.abs(v) + drift
    mine = yours @ v
    out = (mine < low - slack) | (mine > high + slack)
    if not np.any(out):
        return ""
    i = int(np.argmax(np.where(out, np.maximum(low - mine, mine - high), -np.inf)))
    where = f" (output {i})" if len(low) > 1 else ""
    return (f"{name}{where}: yours . v = {mine[i]:.6g}, but the one-sided derivatives of "
            f"the entries there allow {low[i]:.6g} .. {high[i]:.6g}: together your entries "
            "at the kink are no subgradient")


def one_sided_fd(difference: Callable[[np.ndarray], object], x: np.ndarray, *,
                 yours: np.ndarray, tol: np.ndarray, bad: np.ndarray, R: np.ndarray
                 ) -> KinkVerdict:
    """The same verdict from one-sided finite differences (``f`` cannot be traced).

    ``difference(v)`` returns a :class:`~diffcheck.numpy_check.Difference` along ``v``;
    every failing column gets one (so ``n`` of them at most), entries where the one-sided
    limits stay apart are judged by them, and the direction of your error is tested too.
    """
    n = np.asarray(x).size
    size = _sizes(np.asarray(x, dtype=np.float64))
    lo = np.full(R.shape, np.nan)
    hi = np.full(R.shape, np.nan)
    kinked = np.zeros(R.shape, bool)
    for j in np.flatnonzero(np.any(bad, axis=0)):
        e = np.zeros(n)
        e[j] = size[j]
        d = difference(e)
        with np.errstate(all="ignore"):
            left, right = np.ravel(d.left) / size[j], np.ravel(d.right) / size[j]
            slack = _one_sided_error(d) / size[j]
        lo[:, j] = np.minimum(left, right) - slack
        hi[:, j] = np.maximum(left, right) + slack
        kinked[:, j] = np.ravel(d.kink)
    with np.errstate(invalid="ignore"):
        inside = kinked & (yours >= lo - tol) & (yours <= hi + tol)
    failure = ""
    if np.any(bad & inside):
        v = np.zeros(n)
        cols = np.flatnonzero(np.any(bad & inside, axis=0))
        v[cols] = np.sum(np.where(bad, yours - R, 0.0), axis=0)[cols]
        v = _normalise(v, size)
        if np.any(v):
            # Only where f is smooth along v (equal one-sided derivatives: v keeps every tie,
            # as the sum of a tied group's entries does) is yours . v pinned down: across
            # kinks of both curvatures the whole function's one-sided derivatives bound
            # nothing (the AD test bounds entry by entry instead)
            d = difference(v)
            left, right = np.ravel(d.left), np.ravel(d.right)
            mine = yours @ v
            slack = np.abs(tol) @ np.abs(v) + _one_sided_error(d)
            smooth = np.abs(right - left) <= _one_sided_error(d)
            if np.any(smooth & (np.abs(mine - 0.5 * (left + right)) > slack)):
                failure = ("along the direction of your error, where f has no kink: yours . v "
                           "differs from f's derivative there (finite differences): together "
                           "your entries at the kink are no subgradient")
    return KinkVerdict(bad & inside, lo, hi, failure, int(np.count_nonzero(bad)),
                       "one-sided finite differences", bad & kinked)


def _one_sided_error(d: object) -> np.ndarray:
    """What the extrapolated one-sided limits may still be off by (``Difference.side_error``:
    their change over the last levels plus rounding)."""
    return np.ravel(d.side_error)
