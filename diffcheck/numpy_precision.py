"""How precisely a user's NumPy code computes: the noise in ``f``'s values, the dtype it
rounds to, and the rounding in the user's own derivative formula.

The NumPy checks compare a hand-written derivative with a reference under a tolerance made
from the precision the code runs in. Three things feed it, all measured, none guessed:

* :func:`detect` -- the precision ``f`` actually computes in. Its output dtype says most;
  a function that rounds to float32 inside (``np.asarray(v, np.float32)``, ``math.*`` on
  ``np.float32`` values) and returns float64 is caught by its values: at perturbed points
  they are all exactly float32 numbers, or they are noisy (:func:`noise_level`). Finite
  differences of ``f`` are taken with that noise, so their error bars are honest.
* :func:`noise_level` -- the noise in ``f``'s values along a direction, by the difference
  table of Moré and Wild's ECnoise (SIAM J. Sci. Comput. 33(3), 2011).
* :func:`derivative_rounding` -- the rounding in the user's own derivative formula: it is
  evaluated at a few points a few hundred ulps away, where the exact reference is known
  too; a bug is the same there, rounding is not, so the spread of ``yours - reference``
  over those points measures the rounding alone (``x - np.mean(x)`` at ``x ~ 1000`` in
  float32 loses digits no tolerance on the reference's terms can see).

>>> import numpy as np
>>> p = detect(lambda v: np.sum(np.asarray(v, np.float32) ** 2), np.array([0.3, 1.7]))
>>> p.label
'float32'
>>> detect(lambda v: np.sum(v ** 2), np.array([0.3, 1.7])).label
'float64'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

EPS64 = float(np.finfo(np.float64).eps)
POINTS = 9  #: ECnoise: function values along the line
NOISE_H = 2.0 ** -20  #: ECnoise: first spacing, relative to the size of x
NOISE_TRIES = 4  #: ECnoise: spacings tried (each 2**7 times the previous or a 2**7th of it)
MAX_ORDER = 3  #: ECnoise: the noise must show by differences of order 3..5 (a kink's spike
#: spreads into every difference of higher orders)
ROUNDING_POINTS = 8  #: derivative_rounding: perturbed points
ROUNDING_ULPS = 2.0 ** 10  #: derivative_rounding: how far they are, in ulps of x
ROUNDING_FACTOR = 6.0  #: derivative_rounding: allowance in units of the residual seen
ROUNDING_VOTES = 3  #: _rounds_inputs: entries tried one by one

Fn = Callable[[Any], Any]

_LABELS = {2.0 ** -52: "float64", 2.0 ** -23: "float32", 2.0 ** -10: "float16"}


def dtype_label(eps: float) -> str:
    """The name of the floating type whose epsilon is ``eps``.

    >>> dtype_label(2.0 ** -23)
    'float32'
    """
    return _LABELS.get(eps, f"eps={eps:g}")


@dataclass
class Precision:
    """The precision ``f`` computes in, as seen from its values near ``x``.

    ``eps``: machine epsilon of that precision; ``noise``: absolute noise of each output
    entry (flat), at least ``4 eps |f|``; ``label``: its name for reports; ``how``: how it
    was found, when not from the output dtype alone (empty otherwise).
    """

    eps: float
    noise: np.ndarray
    label: str
    how: str = ""


def _plain(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind not in "fc":
        arr = arr.astype(np.float64)
    return arr.real if arr.dtype.kind == "c" else arr


def smallest_normal(eps: float) -> float:
    """The smallest normal number of the floating type whose epsilon is ``eps``.

    >>> smallest_normal(2.0 ** -23) == float(np.finfo(np.float32).tiny)
    True
    """
    for dtype in (np.float64, np.float32, np.float16):
        if float(np.finfo(dtype).eps) == eps:
            return float(np.finfo(dtype).tiny)
    return float(np.finfo(np.float64).tiny)


def dtype_eps(arr: np.ndarray) -> float:
    """Machine epsilon of ``arr``'s floating dtype (float64 for integers)."""
    return float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else EPS64


def _samples(f: Fn, x: np.ndarray, p: np.ndarray, h: float) -> np.ndarray | None:
    """f at ``x + (i - 4) h p``, ``i = 0..8``, as float64 rows ``(9, m)``; None if f fails."""
    rows = []
    for i in range(POINTS):
        t = (i - POINTS // 2) * h
        try:
            with np.errstate(all="ignore"):
                y = _plain(f(x + t * p))
        except Exception:  # noqa: BLE001 -- a point f rejects: no noise estimate there
            return None
        rows.append(np.ravel(y).astype(np.float64))
    if len({r.size for r in rows}) != 1:
        return None
    return np.stack(rows)


def ecnoise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise level of each column of ``values`` (equally spaced samples along a line).

    Returns ``(sigma, inform)`` per column: ``inform`` 1 when the estimate is good, 2 when
    the spacing is too small (most first differences are zero), 3 when it is too large (no
    order of the difference table is dominated by noise). From Moré and Wild (2011), with
    orders up to ``MAX_ORDER + 2`` only.

    >>> rng = np.random.default_rng(0)
    >>> t = np.linspace(-1e-3, 1e-3, 9)
    >>> sigma, inform = ecnoise((np.exp(t) + 1e-9 * rng.standard_normal(9))[:, None])
    >>> int(inform[0]), bool(3e-10 < sigma[0] < 3e-9)
    (1, True)
    """
    n, m = values.shape
    sigma = np.zeros(m)
    inform = np.full(m, 3)
    with np.errstate(all="ignore"):
        span = np.max(values, axis=0) - np.min(values, axis=0)
        big = np.maximum(np.abs(np.max(values, axis=0)), np.abs(np.min(values, axis=0)))
        too_large = span > 0.1 * big
        levels, signs = [], []
        table, gamma = values.copy(), 1.0
        for j in range(1, n):
            table = np.diff(table, axis=0)
            if j == 1:
                too_small = np.sum(table == 0, axis=0) >= n / 2
            gamma *= 0.5 * j / (2 * j - 1)
            levels.append(np.sqrt(gamma * np.mean(table ** 2, axis=0)))
            signs.append((np.min(table, axis=0) < 0) & (np.max(table, axis=0) > 0))
    levels_arr, signs_arr = np.array(levels), np.array(signs)
    for k in range(MAX_ORDER - 1, -1, -1):  # the lowest consistent order wins
        if k + 3 > len(levels_arr):
            continue
        window = levels_arr[k:k + 3]
        ok = (np.max(window, axis=0) <= 4 * np.min(window, axis=0)) & signs_arr[k]
        sigma = np.where(ok, levels_arr[k], sigma)
        inform = np.where(ok, 1, inform)
    inform = np.where(too_small, 2, np.where(too_large, 3, inform))
    return sigma, inform


def noise_level(f: Fn, x: np.ndarray, p: np.ndarray, h: float = NOISE_H
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Noise of ``f``'s values near ``x`` along ``p`` (per output entry), and the samples.

    Three parallel lines, one through x and two through points ``2**-10`` of x's size
    away, each sampled by ECnoise; the median of their three estimates is the noise. A
    kink at x (relu at 0) is on every line through x and looks like noise there; off x it
    is not met, so the median ignores it. The spacing starts at ``h`` and moves (up when
    the values do not change, down when the smooth part dominates) until the difference
    table shows noise. Entries without a reliable estimate get NaN. Returns ``(sigma,
    samples)``, ``(None, None)`` if f fails at x.
    """
    rng = np.random.default_rng(5)
    bases = [x] + [x + 2.0 ** -10 * np.abs(p) * rng.standard_normal(x.shape) for _ in range(2)]
    found, seen = [], []
    for i, base in enumerate(bases):
        sigma, vals = _line_noise(f, base, p, h)
        if vals is None:
            if i == 0:
                return None, None
            continue
        found.append(sigma)
        seen.append(vals)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no estimate
        return np.nanmedian(np.stack(found), axis=0), np.concatenate(seen)


def _line_noise(f: Fn, x: np.ndarray, p: np.ndarray, h: float
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """ECnoise along one line, the spacing adjusted: ``(sigma, samples)``."""
    sigma = None
    seen = []
    for _ in range(NOISE_TRIES):
        vals = _samples(f, x, p, h)
        if vals is None:
            break
        seen.append(vals)
        s, inform = ecnoise(vals)
        sigma = np.where(inform == 1, s, np.nan) if sigma is None else \
            np.where(np.isnan(sigma) & (inform == 1), s, sigma)
        if np.all(inform != 2) and np.all(inform != 3) or not np.any(np.isnan(sigma)):
            break
        h = h * 2.0 ** 7 if np.any(inform == 2) else h / 2.0 ** 7
    if not seen:
        return None, None
    return sigma, np.concatenate(seen)


def _representable(values: np.ndarray) -> float | None:
    """The epsilon of float16 or float32 if every value is exactly such a number."""
    finite = values[np.isfinite(values)]
    if np.unique(finite).size < 3:  # too few distinct values to tell
        return None
    for dtype in (np.float16, np.float32):
        with np.errstate(all="ignore"):
            if np.array_equal(finite.astype(dtype).astype(np.float64), finite):
                return float(np.finfo(dtype).eps)
    return None


def _rounds_inputs(f: Fn, x: np.ndarray, p: np.ndarray, seed: int = 3) -> float | None:
    """float32's epsilon if f rounds its inputs to float32, else None.

    At a point near x (``x + p / 64``, no entry 0 or below float32's range), one entry at a
    time is scaled by ``1 + 2**-22``
    (two float32 ulps) and by ``1 + 2**-34`` (below one), where a smooth f moves ``2**-12``
    times as much. If that is many ulps of f and f does not move at all, f rounds its
    inputs (``np.asarray(v, np.float32)``, ``np.float32(a)``). A few entries vote; every
    entry that can tell must agree."""
    z = np.ravel(x + 2.0 ** -6 * p).astype(np.float64)
    rng = np.random.default_rng(seed)
    try:
        base = _at(f, z, x.shape)
        votes = [_vote(f, z, x.shape, int(j), base)
                 for j in rng.choice(z.size, size=min(ROUNDING_VOTES, z.size), replace=False)]
    except Exception:  # noqa: BLE001 -- no answer: no claim
        return None
    votes = [v for v in votes if v is not None]
    if not votes or not all(votes):
        return None
    return float(np.finfo(np.float32).eps)


def _at(f: Fn, z: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.ravel(_plain(f(z.reshape(shape)))).astype(np.float64)


def _vote(f: Fn, z: np.ndarray, shape: tuple[int, ...], j: int, base: np.ndarray
          ) -> bool | None:
    """Whether entry ``j`` shows inputs rounded to float32, or None when it cannot tell
    (f does not move with it, or the move is too small to see)."""
    def moved(e: int) -> np.ndarray:
        w = z.copy()
        w[j] *= 1.0 + 2.0 ** e
        return _at(f, w, shape) - base
    e = -22
    big = moved(e)
    if not (np.all(np.isfinite(big)) and np.any(big != 0)):
        return None  # f does not see this entry at this scale (or rounds coarser): no vote
    if not np.any(np.abs(big) * 2.0 ** -12 > 64 * np.spacing(np.abs(base))):
        return None
    return bool(np.all(moved(e - 12) == 0))


def _direction(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """A seeded Gaussian direction scaled by ``max(|x|, 1)``: the scale finite differences
    step on (so the noise is measured where they will meet it, and tiny or subnormal x
    does not hide a function that rounds to float32)."""
    return np.random.default_rng(seed).standard_normal(x.shape) * np.maximum(np.abs(x), 1.0)


def detect(f: Fn, x: np.ndarray, f0: np.ndarray | None = None) -> Precision:
    """The precision ``f`` computes in near ``x`` (float64 ``x``), and its noise.

    The output dtype gives a first answer; values that are all float32 (or float16)
    numbers at perturbed points lower it; and an ECnoise estimate of the noise in the
    values, where larger than ``4 eps |f|``, raises the noise (a function that rounds its
    inputs to float32 and computes in float64 returns float64 values with float32 noise).
    """
    x = np.asarray(x, dtype=np.float64)
    f0 = _plain(f(x)) if f0 is None else _plain(f0)
    eps = dtype_eps(f0)
    label, how = dtype_label(eps), ""
    base = 4 * eps * np.abs(np.ravel(f0).astype(np.float64))
    sigma, samples = noise_level(f, x, _direction(x))
    if samples is None:
        return Precision(eps, base, label)
    if eps == EPS64:
        low = _representable(samples)
        if low is not None:
            eps, label = low, dtype_label(low)
            how = f"f's values are all {label} numbers: it rounds to {label} inside"
        else:
            low = _rounds_inputs(f, x, _direction(x, seed=2))
            if low is not None:
                eps, label = low, dtype_label(low)
                how = f"f rounds its inputs to {label}"
        base = 4 * eps * np.abs(np.ravel(f0).astype(np.float64))
    size = np.max(np.abs(samples), axis=0)
    base = np.maximum(base, 4 * eps * size)
    if sigma is not None:
        measured = np.where(np.isfinite(sigma), 4 * sigma, 0.0)
        louder = measured > 4 * base
        if np.any(louder):
            rel = float(np.max(measured[louder] / np.maximum(size[louder], 1e-300)))
            if not how:
                how = (f"f's values are noisy (about {rel:.0e} relative, "
                       f"{max(0.0, -math.log10(max(rel, 1e-300))):.0f} digits)")
            base = np.maximum(base, measured)
    return Precision(eps, base, label, how)


def derivative_rounding(yours_at: Fn, reference_at: Fn, x: np.ndarray, *,
                        seed: int = 0) -> np.ndarray | None:
    """The rounding in the user's derivative formula, per entry (same shape as theirs).

    ``yours_at(z)`` and ``reference_at(z)`` give the user's derivative and the exact one at
    ``z`` (in ``x``'s dtype; the reference from float64). At points ``x (1 + s)``, ``s`` a
    few hundred ulps, the difference ``yours - reference`` is a bug, smooth in ``s`` (a
    straight line at that scale), plus rounding, different at each point. What a line
    fitted over the points leaves over, times a margin, bounds the rounding; a bug,
    however it varies with x, leaves nothing. Scaling x as a whole keeps its ties and
    zeros, so the points sit on the same side of every kink x is on. None when a point
    cannot be evaluated.

    >>> x = (1000 + np.arange(8.0)).astype(np.float32)
    >>> exact = lambda z: 2 * (z.astype(np.float64) - np.mean(z.astype(np.float64)))
    >>> rounding = derivative_rounding(lambda z: 2 * (z - np.mean(z)), exact, x)
    >>> bool(np.all(rounding < 1e-2)), bool(np.any(rounding > 1e-6))
    (True, True)
    >>> bug = derivative_rounding(lambda z: 2.1 * (z - np.mean(z)), exact, x)
    >>> bool(np.all(bug < 1e-2))  # the bug (0.1 * ...) is no rounding
    True
    """
    rng = np.random.default_rng(seed + 101)
    eps = float(np.finfo(x.dtype).eps) if x.dtype.kind == "f" else EPS64
    errs, scales, shape = [], [], None
    for _ in range(ROUNDING_POINTS):
        # all of x scaled by one factor: ties between entries (a max over equal values)
        # and zeros (relu at 0) stay exactly as they are, so no kink is crossed
        step = rng.uniform(-1.0, 1.0) * ROUNDING_ULPS * eps
        z = (x.astype(np.float64) * (1.0 + step)).astype(x.dtype)
        try:
            with np.errstate(all="ignore"):
                e = np.asarray(yours_at(z), dtype=np.float64) - reference_at(z)
        except Exception:  # noqa: BLE001 -- no estimate: the tolerance stays as it was
            return None
        errs.append(np.ravel(e))
        scales.append(step)
        shape = np.shape(e)
    E = np.stack(errs)
    design = np.stack([np.ones(len(scales)), np.array(scales) / (ROUNDING_ULPS * eps)], axis=1)
    with np.errstate(all="ignore"):
        fit, *_ = np.linalg.lstsq(design, np.nan_to_num(E), rcond=None)
        left = np.max(np.abs(E - design @ fit), axis=0)
    left = np.where(np.isfinite(left), left, 0.0)
    return (ROUNDING_FACTOR * left).reshape(shape)
