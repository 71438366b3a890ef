"""Finite differences: central differences, Richardson extrapolation, error estimates.

The independent witness: it only evaluates the function. For every entry it tries a
sequence of steps ``h_k = h0 / 2**k`` (``h0`` relative to ``|x_i|``), extrapolates
(orders 2, 4, 6, 8) and keeps the candidate whose estimated error, truncation (the size
of the last extrapolation correction) plus rounding (``eps * scale / h``), is smallest.
Points where the function is undefined (a step that leaves the domain) drop out.

>>> f = lambda X: np.stack([np.sin(X[:, 0]) * X[:, 1]], axis=1)
>>> J, err = jacobian(f, np.array([0.5, 2.0]))
>>> bool(abs(J[0, 0] - 2 * np.cos(0.5)) <= err[0, 0] < 1e-9)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = np.finfo(float).eps
LEVELS = 12  #: step sizes tried, each half the previous
ORDERS = 3  #: Richardson extrapolation steps (error orders 4, 6, 8)
H0 = 0.125  #: first step, relative to max(|x_i|, 1)
SAFETY = 2.0  #: factor on the estimated error
CHUNK = 4_000_000  #: coordinates of perturbed points evaluated per batch (memory bound)

Batch = Callable[[np.ndarray], np.ndarray]  # (Q, n) points -> (Q, m) values


def steps(x: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Steps ``(K, n)``: exactly representable offsets relative to |x|, each half the previous.

    The ladder starts at ``H0 * 2**ceil(log2 max(|x_i|, 1))``. Where some ``|x_i| > 1`` it is
    longer than ``levels`` by ``log2`` of the largest such scale, so its finest step is the
    same absolute ``H0 / 2**(levels - 1)`` as at ``|x| <= 1``: a function that varies on a unit
    scale far from 0 (``sin(x)`` at ``x = 1e6``) still gets steps short enough to resolve it.
    """
    scale = np.exp2(np.ceil(np.log2(np.maximum(np.abs(x), 1.0))))
    extra = int(np.log2(np.max(scale))) if scale.size else 0
    return (H0 * scale)[None, :] / np.exp2(np.arange(levels + extra))[:, None]


def _amplification(order: int) -> float:
    """How much an extrapolation of this order can amplify rounding in its inputs."""
    amp = 1.0
    for lvl in range(1, order + 1):
        amp *= (4.0 ** lvl + 1) / (4.0 ** lvl - 1)
    return amp


def richardson(D: np.ndarray, h: np.ndarray, noise: np.ndarray, *, power: int = 1,
               gain: Callable[[int], float] | None = None, with_step: bool = False):
    """Best extrapolated value and its error estimate per entry (and the step it came from).

    D: (K, ...) central differences at steps h, (K, ...) or (K,) (each half the previous);
    noise: the rounding scale of f (...). An extrapolation of order ``l`` is a candidate
    only when its same-order value at the coarser step exists (two columns can agree by
    coincidence otherwise); its error is the larger of its two corrections plus the
    rounding ``gain(l) * noise / h**power``, ``gain`` defaulting to the amplification of
    ``l`` extrapolation steps. Returns ``(best, SAFETY * error)``, with ``with_step=True``
    also the step each best value came from (NaN where there is none).
    """
    K = D.shape[0]
    below, above = _finer_bounds(D, h, noise, power)
    table = [[D[k]] for k in range(K)]
    best = np.full(D.shape[1:], np.nan)
    best_err = np.full(D.shape[1:], np.inf)
    best_step = np.full(D.shape[1:], np.nan) if with_step else None
    for lvl in range(1, ORDERS + 1):
        g = _amplification(lvl) if gain is None else gain(lvl)
        for k in range(lvl, K):
            prev, coarse = table[k][lvl - 1], table[k - 1][lvl - 1]
            r = prev + (prev - coarse) / (4.0 ** lvl - 1)
            table[k].append(r)
            if k == lvl:  # no same-order value at the coarser step to compare with: two
                continue  # columns can agree by coincidence there, so it is no candidate
            trunc = np.maximum(np.abs(r - prev), np.abs(r - table[k - 1][lvl]))
            # and at least as far as the finer differences, clear of a kink, put it from them
            gap = np.maximum(np.maximum(r - above[k], below[k] - r), 0.0) if k < K - 1 else 0.0
            err = trunc + g * noise / h[k] ** power + gap
            err = np.where(np.isfinite(r) & np.isfinite(err), err, np.inf)
            better = err < best_err
            best = np.where(better, r, best)
            best_err = np.where(better, err, best_err)
            if with_step:
                best_step = np.where(better, h[k], best_step)
    if with_step:
        return best, SAFETY * best_err, best_step
    return best, SAFETY * best_err


def _finer_bounds(D: np.ndarray, h: np.ndarray, noise: np.ndarray, power: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For each level k, the interval every finer difference ``D[j]`` (j > k) allows.

    Where f is smooth on ``[x - h_j, x + h_j]``, ``D[j]`` lies within ``e_j = |D[j] - D[j-1]|
    + noise / h_j**power`` of the derivative (its truncation error shrinks by 4 per level, so
    the change from the previous level bounds it). Near a kink (``|.|``, ``max``, ``sign`` of
    an argument close to zero) the coarse steps straddle it and their extrapolations can agree
    by coincidence on a wrong value, while the finer steps, clear of it, agree on the right
    one: a candidate from step ``h_k`` must then stay within ``[max_j (D[j] - e_j),
    min_j (D[j] + e_j)]`` or its error grows by the distance. Returns ``(below, above)``,
    shaped like ``D`` (row k bounds over j > k; the last row is unused).
    """
    K = D.shape[0]
    below = np.full(D.shape, -np.inf)
    above = np.full(D.shape, np.inf)
    lo, hi = np.full(D.shape[1:], -np.inf), np.full(D.shape[1:], np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(K - 1, 0, -1):
            below[j], above[j] = lo, hi
            e = np.abs(D[j] - D[j - 1]) + noise / h[j] ** power
            usable = np.isfinite(e)
            lo = np.where(usable, np.maximum(lo, D[j] - e), lo)
            hi = np.where(usable, np.minimum(hi, D[j] + e), hi)
        below[0], above[0] = lo, hi
    return below, above


def _noise(values: np.ndarray, fscale: np.ndarray | None) -> np.ndarray:
    """Rounding error scale of f per output: eps * max(|f| seen, running-error scale)."""
    with np.errstate(invalid="ignore"):
        seen = np.nanmax(np.abs(np.where(np.isfinite(values), values, np.nan)), axis=0)
    seen = np.nan_to_num(seen, nan=0.0)
    if fscale is not None:
        seen = np.maximum(seen, fscale)
    return 4.0 * EPS * np.maximum(seen, np.finfo(float).tiny)


def jacobian(f: Batch, x: np.ndarray, *, fscale: np.ndarray | None = None):
    """Jacobian ``(m, n)`` of ``f`` at ``x`` and the estimated absolute error per entry.

    ``f`` maps a batch of points ``(Q, n)`` to values ``(Q, m)``. ``fscale`` (m,) is an
    optional bound on the rounding scale of f (see ``engines.ad.rounding_scale``).
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    h = steps(x)  # (K, n)
    K = h.shape[0]
    block = max(1, int(CHUNK // max(1, 2 * K * n)))  # coordinates per batch: bounded memory
    plus, minus = [], []
    for lo in range(0, n, block):
        idx = np.arange(lo, min(n, lo + block))
        offsets = np.zeros((K, idx.size, n))
        offsets[:, np.arange(idx.size), idx] = h[:, idx]
        pts = np.concatenate([(x + offsets).reshape(-1, n), (x - offsets).reshape(-1, n)])
        with np.errstate(all="ignore"):
            vals = np.asarray(f(pts), dtype=float)
        half = K * idx.size
        plus.append(vals[:half].reshape(K, idx.size, -1))
        minus.append(vals[half:].reshape(K, idx.size, -1))
    plus, minus = np.concatenate(plus, axis=1), np.concatenate(minus, axis=1)  # (K, n, m)
    D = (plus - minus) / (2 * h[:, :, None])
    noise = _noise(np.concatenate([plus, minus]).reshape(-1, plus.shape[2]), fscale)[None, :]
    best, err = richardson(D, h[:, :, None], noise)
    return best.T, err.T


def hessian(f: Batch, x: np.ndarray, *, fscale: np.ndarray | None = None,
            levels: int = LEVELS):
    """Hessians ``(m, n, n)`` of ``f`` at ``x`` and estimated absolute errors.

    Uses the four-point mixed difference
    ``[f(+a+b) - f(+a-b) - f(-a+b) + f(-a-b)] / (4 h_a h_b)`` for every pair ``a <= b``
    (``a == b`` gives the second difference with step ``2h``), then Richardson.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    h = steps(x, levels)
    K = h.shape[0]
    ia, ib = np.triu_indices(n)
    npair = ia.size
    eye = np.eye(n)
    da = h[:, ia, None] * eye[ia][None]  # (K, npair, n)
    db = h[:, ib, None] * eye[ib][None]
    pts = np.concatenate([x + da + db, x + da - db, x - da + db, x - da - db], axis=0)
    with np.errstate(all="ignore"):
        vals = np.asarray(f(pts.reshape(-1, n)), dtype=float)
    m = vals.shape[1]
    v = vals.reshape(4, K, npair, m)
    hh = (h[:, ia] * h[:, ib])[:, :, None]  # (K, npair, 1)
    D = (v[0] - v[1] - v[2] + v[3]) / (4 * hh)
    noise = _noise(vals, fscale)[None, :]
    # rounding ~ noise / h**2, from four values
    best, err = richardson(D, np.sqrt(hh), noise, power=2,
                           gain=lambda lvl: 2.0 * _amplification(lvl))
    H = np.zeros((m, n, n))
    E = np.zeros((m, n, n))
    H[:, ia, ib] = best.T
    H[:, ib, ia] = best.T
    E[:, ia, ib] = err.T
    E[:, ib, ia] = err.T
    return H, E
