"""Finite differences that stay inside the domain, with honest error estimates.

The independent witness: it only evaluates the function. For every entry it tries a ladder
of steps ``h_k = h0 / 2**k`` (``h0`` relative to ``|x_i|``) and three kinds of differences:
central (error ``O(h**2)``) and one-sided forward and backward (``O(h)``, from the same points
and ``f(x)``). Each column is extrapolated (Richardson: error orders 4, 6, 8 for central,
2 to 5 for one-sided) and the candidate whose estimated error, truncation (the size of the
last extrapolation correction) plus rounding (``eps * scale / h``), is smallest wins.

* **The domain.** A point where ``f`` is not finite (or where the optional ``domain``
  callback says no) is outside. A ladder whose central differences leave the domain
  restarts below the edge (at half the largest step that fits, found by probing every
  ``PROBE`` levels when none fits), so its steps stay well inside the Taylor radius; a
  one-sided difference resolves what a central one cannot (a kink just beside the point).
* **Resolution.** A candidate counts only in the asymptotic regime: where halving the
  step shrinks the change between successive differences (by 4 central, 2 one-sided).
  While an entry's error is dominated by truncation and halving the step still helps (its
  finest differences change by more than rounding), the ladder is extended by ``EXTEND``
  levels, then probed every ``PROBE`` levels for where the differences settle, and
  restarted there: a function that oscillates a million times per unit, or a pole 1e-150
  away, gets steps short enough. An entry that cannot be resolved (no usable step, f
  jumping across one float, still dominated by truncation when the steps run out) is NaN
  with an infinite error: "not resolved", never a confident wrong value.
* **Rounding.** Per level, from the values that level uses (their running-error bound
  with ``fscale``), not from the whole ladder.
* **One-sided** differences join in with ``one_sided=True`` (the expression checks);
  without it (the default, the NumPy checks) only central differences are used, so a
  point on a kink gets the average of its two sides.

>>> f = lambda X: np.stack([np.sin(X[:, 0]) * X[:, 1]], axis=1)
>>> J, err = jacobian(f, np.array([0.5, 2.0]))
>>> bool(abs(J[0, 0] - 2 * np.cos(0.5)) <= err[0, 0] < 1e-9)
True
>>> J, err = jacobian(lambda X: np.sqrt(X), np.array([1e-300]))  # its edge 1e-300 away
>>> bool(abs(J[0, 0] - 0.5e150) <= err[0, 0] < 1e-6 * 0.5e150)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = np.finfo(float).eps
LEVELS = 12  #: step sizes tried, each half the previous
ORDERS = 3  #: Richardson extrapolation steps for central differences (error orders 4, 6, 8)
ONE_SIDED_ORDERS = 4  #: and for one-sided differences (error orders 2, 3, 4, 5)
H0 = 0.125  #: first step, relative to max(|x_i|, 1)
SAFETY = 2.0  #: factor on the estimated error
CHUNK = 4_000_000  #: coordinates of perturbed points evaluated per batch (memory bound)
EXTEND = 8  #: levels added to a ladder whose entries are not resolved yet
ROUNDS = 12  #: most refinement rounds (restarts below a domain edge and extensions)
PROBE = 4  #: stride, in levels, of the search for a step that fits inside the domain
RESTARTS = 3  #: most restarts of one ladder below a domain edge
SCALE_LEVELS = 52  #: most extra levels for |x_i| > 1 (beyond, steps fall below ulp(x_i))
UNDERFLOW = np.finfo(float).tiny * 2.0 ** 53  #: quotients below this have lost digits
MIN_STEP = 2.0 ** -1012  #: no step below this (nor below the spacing of floats at x_i)
SETTLE = 0.05  #: probed differences "settle" where they change by less than this fraction
KAPPA = 2.0 ** 20  #: past this many times |f(x)|, the rounding scale is taken point by point
COMPARABLE = 4.0  #: a kind of difference whose error is within this factor of the best's
#: widens the best's error to cover it
CONTRACT = 0.7  #: in the asymptotic regime a change is at most this fraction of the one
#: before (the theory: 1/4 central, 1/2 one-sided; this is for one-sided, half for central)
CHAOS = 0.01  #: f jumping by this fraction of its size across one float: unresolvable
TREND = 1.8  #: differences of one sign, each this many times the one before: a trend
FINER = 16.0  #: smaller steps help while the finest differences change by more than this
#: many times their rounding

Batch = Callable[[np.ndarray], np.ndarray]  # (Q, n) points -> (Q, m) values
Domain = Callable[[np.ndarray], np.ndarray]  # (Q, n) points -> (Q,) True where f is defined
Scale = np.ndarray | Callable[[np.ndarray], np.ndarray]  # f's rounding scale at x, or at points


def steps(x: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Steps ``(K, n)``: exactly representable offsets relative to |x|, each half the previous.

    The ladder starts at ``H0 * 2**ceil(log2 max(|x_i|, 1))``. Where some ``|x_i| > 1`` it is
    longer than ``levels`` by ``log2`` of the largest such scale (at most
    :data:`SCALE_LEVELS`), so its finest step is the same absolute ``H0 / 2**(levels - 1)``
    as at ``|x| <= 1``: a function that varies on a unit scale far from 0 (``sin(x)`` at
    ``x = 1e6``) still gets steps short enough to resolve it.
    """
    scale = _scale(x)
    return (H0 * scale)[None, :] / np.exp2(np.arange(levels + _extra(scale)))[:, None]


def _scale(x: np.ndarray) -> np.ndarray:
    return np.exp2(np.ceil(np.log2(np.maximum(np.abs(x), 1.0))))


def _extra(scale: np.ndarray) -> int:
    return min(int(np.log2(np.max(scale))), SCALE_LEVELS) if scale.size else 0


def _amplification(order: int, base: float = 4.0) -> float:
    """How much an extrapolation of this order can amplify rounding in its inputs."""
    amp = 1.0
    for lvl in range(1, order + 1):
        amp *= (base ** lvl + 1) / (base ** lvl - 1)
    return amp


# -- Richardson extrapolation ----------------------------------------------------------------
@dataclass
class _Best:
    """The winning candidate per entry: value, error (with SAFETY), and its parts."""

    value: np.ndarray
    err: np.ndarray
    trunc: np.ndarray  # truncation part (corrections and the gap to finer differences)
    round: np.ndarray  # rounding part
    step: np.ndarray
    settled: np.ndarray | None = None  # its column's finest changes shrink (or are rounding)
    clash: np.ndarray | None = None  # another kind of difference contradicts it
    union: tuple[np.ndarray, np.ndarray] | None = None  # (value, err) covering both
    lonely: np.ndarray | None = None  # only the central difference converges (see _pick)


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

    >>> h = 0.1 / 2.0 ** np.arange(6)
    >>> D = np.sin(1 + h) - np.sin(1 - h)
    >>> best, err = richardson(D / (2 * h), h, np.array(1e-16))
    >>> bool(abs(best - np.cos(1)) <= err < 1e-12)
    True
    """
    noise = np.asarray(noise)
    levels = np.broadcast_to(noise, (D.shape[0], *noise.shape))
    g = gain if gain is not None else _amplification
    b = _table(D, np.asarray(h), levels, power=power, base=4.0, orders=ORDERS, gain=g)
    if with_step:
        return b.value, b.err, b.step
    return b.value, b.err


def _table(D: np.ndarray, h: np.ndarray, noise: np.ndarray, *, power: int, base: float,
           orders: int, gain: Callable[[int], float], plain: np.ndarray | None = None
           ) -> _Best:
    """Richardson table of differences ``D`` (L, ...) whose error expands in powers of
    ``h**(log2 base)``; ``noise`` (L, ...) is the rounding scale of the values at each level.
    Invalid levels are NaN; a candidate built from one has an infinite error."""
    K = D.shape[0]
    h = h.reshape(h.shape + (1,) * (D.ndim - h.ndim))  # (K,) steps for (K, ...) differences
    below, above = _finer_bounds(D, h, noise, power)
    table = [[D[k]] for k in range(K)]
    shape = np.broadcast_shapes(D.shape[1:], noise.shape[1:])
    best = np.full(shape, np.nan)
    best_err = np.full(shape, np.inf)
    best_tr, best_rn = np.full(shape, np.inf), np.full(shape, np.inf)
    best_step = np.full(shape, np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        growing = _growing(D, h, noise, power, base, noise if plain is None else plain)
        for lvl in range(1, orders + 1):
            g = gain(lvl)
            window = _window_max(noise, lvl)
            for k in range(lvl, K):
                prev, coarse = table[k][lvl - 1], table[k - 1][lvl - 1]
                r = prev + (prev - coarse) / (base ** lvl - 1)
                table[k].append(r)
                if k == lvl:  # no same-order value at the coarser step to compare with: two
                    continue  # columns can agree by coincidence there, so it is no candidate
                trunc = np.maximum(np.abs(r - prev), np.abs(r - table[k - 1][lvl]))
                # and at least as far as the finer differences, clear of a kink, put it
                gap = np.maximum(np.maximum(r - above[k], below[k] - r), 0.0) \
                    if k < K - 1 else 0.0
                rn = g * window[k] / h[k] ** power
                err = trunc + rn + gap
                asymptotic = ~np.any(growing[k - lvl + 1:k + 1], axis=0)
                err = np.where(np.isfinite(r) & np.isfinite(err) & asymptotic, err, np.inf)
                better = err < best_err
                best = np.where(better, r, best)
                best_err = np.where(better, err, best_err)
                best_tr = np.where(better, trunc + gap, best_tr)
                best_rn = np.where(better, rn, best_rn)
                best_step = np.where(better, h[k], best_step)
    return _Best(best, SAFETY * best_err, best_tr, best_rn, best_step)


def _growing(D: np.ndarray, h: np.ndarray, noise: np.ndarray, power: int, base: float,
             plain: np.ndarray) -> np.ndarray:
    """Rows outside the asymptotic regime, where extrapolation is not valid.

    There each halving of the step shrinks the change ``c_j = |D[j] - D[j-1]|`` (by 4 for
    central differences, 2 for one-sided ones). Row j is out when its change grows beyond
    that (by more than the rounding: the steps straddle a pole, a kink, an unresolved
    oscillation, or sit just below a singularity where the series in h converges too
    slowly), and so is every finer row until a change shrinks visibly above the rounding:
    differences that go from growing straight into rounding noise never resolved the
    derivative (near a pole their trend hides under the rounding bound). ``plain``: the
    rounding of the values themselves (4 eps |f|), below which no trend is read.
    """
    shape = np.broadcast_shapes(D.shape, noise.shape)
    out = np.zeros(shape, bool)
    if D.shape[0] <= 2:
        return out
    step = np.diff(D, axis=0)  # row j - 1: D[j] - D[j-1]
    change = np.abs(step)
    slack = noise[2:] / h[2:] ** power
    limit = CONTRACT * (2.0 / base) * change[:-1]
    grows = (change[1:] > limit + slack) | _trend(D, plain / h ** power)
    shrinks = (change[1:] <= limit) & (change[:-1] > 2 * slack)
    state = np.zeros(shape[1:], bool)  # the last visible trend was growth
    for j in range(2, D.shape[0]):
        state = np.where(grows[j - 2], True, np.where(shrinks[j - 2], False, state))
        out[j] = state
    return out


def _trend(D: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Row j - 2 (for j >= 2): D[j-2], D[j-1], D[j] have one sign, each is at least TREND
    times the one before, and the first is well above the rounding of the values themselves
    (``floor``): a trend, however small against a rounding *bound* (rounding scatters D about
    its value and flips its sign; a pole's 1/h**2 does not, and where a bound is
    pessimistic, as for mixed second differences of g(x) k(y), the pole's trend can hide
    under it; one ulp of f over h**2 alone also grows 4 times per halving, hence the floor)."""
    a, b, c = D[:-2], D[1:-1], D[2:]
    with np.errstate(invalid="ignore"):
        return (np.sign(a) == np.sign(b)) & (np.sign(b) == np.sign(c)) & \
            (np.abs(a) > FINER * floor[:-2]) & \
            (np.abs(b) >= TREND * np.abs(a)) & (np.abs(c) >= TREND * np.abs(b))


def _window_max(noise: np.ndarray, lvl: int) -> np.ndarray:
    """Row k: the largest noise of the levels ``k - lvl .. k`` an order-``lvl`` value uses."""
    out = noise.copy()
    for s in range(1, lvl + 1):
        out[s:] = np.maximum(out[s:], noise[:-s])
    return out


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
    shape = np.broadcast_shapes(D.shape, noise.shape)
    below = np.full(shape, -np.inf)
    above = np.full(shape, np.inf)
    lo, hi = np.full(shape[1:], -np.inf), np.full(shape[1:], np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(K - 1, 0, -1):
            below[j], above[j] = lo, hi
            e = np.abs(D[j] - D[j - 1]) + noise[j] / h[j] ** power
            usable = np.isfinite(e)
            lo = np.where(usable, np.maximum(lo, D[j] - e), lo)
            hi = np.where(usable, np.minimum(hi, D[j] + e), hi)
        below[0], above[0] = lo, hi
    return below, above


def _plain(values: np.ndarray) -> np.ndarray:
    return np.abs(np.where(np.isfinite(values), values, 0.0))


def _level_noise(*scales: np.ndarray) -> np.ndarray:
    """Rounding scale of a difference per level: ``4 eps`` times the largest rounding scale
    of the values it uses (those at that level's points, not at the whole ladder: at a pole
    just beside x, |f(x)| is far above the values at the coarse points)."""
    seen = np.zeros(np.broadcast_shapes(*[np.shape(v) for v in scales]))
    for v in scales:
        seen = np.maximum(seen, v)
    return np.maximum(4.0 * EPS * seen, np.finfo(float).tiny)


def _contiguous(valid: np.ndarray) -> np.ndarray:
    """``valid[k:]`` all true, for each level k (a step is usable only when every finer
    step is: the segment to the coarse point may leave the domain and come back)."""
    return np.flip(np.logical_and.accumulate(np.flip(valid, 0), axis=0), 0)


# -- the two stencils ----------------------------------------------------------------------
@dataclass
class _Variant:
    """One kind of difference at every level: ``D`` (L, c, m), NaN where it does not fit."""

    D: np.ndarray
    noise: np.ndarray  # rounding scale of D * h**power, per level (L, c, m)
    base: float  # 4: error in powers of h**2 (central); 2: in powers of h (one-sided)
    orders: int
    gain: float  # factor on the amplification of rounding
    plain: np.ndarray | None = None  # the same from |f| alone (the values' own rounding)


@dataclass
class _Estimate:
    """Per entry and output: the best candidate, whether smaller steps would still help
    (or the kinds of differences contradict each other), and per entry the coarsest level
    from which every central difference fits the domain (L when none does)."""

    best: _Best
    finer: np.ndarray  # (c, m) bool
    fits_from: np.ndarray  # (c,) int


class _Values:
    """``f`` on batches of points, NaN where it is undefined (or ``domain`` says no), and
    the rounding scale of each value (``eps`` times it bounds the value's rounding error).

    The rounding scale is ``|f|``, or more where f cancels: with ``fscale`` a callable, its
    bound at each point when ``pointwise`` or wherever x itself is ill-conditioned (the
    cancellation near a pole or at a small difference of large terms changes quickly with
    the point, and a factor that vanishes at x can hide it there); otherwise the excess at x
    (``fscale - |f(x)|``) scaled down with |f| away from x."""

    def __init__(self, f: Batch, domain: Domain | None, fscale: Scale | None,
                 pointwise: bool = False):
        self.f, self.domain, self.fscale = f, domain, fscale
        self.excess: np.ndarray | float = 0.0
        self.f0 = np.zeros(0)
        self.exact = pointwise and callable(fscale)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            vals = np.array(self.f(pts), dtype=float)
            if self.domain is not None:
                inside = np.broadcast_to(np.asarray(self.domain(pts), dtype=bool),
                                         (pts.shape[0],))
                vals[~inside] = np.nan
        return vals

    def start(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f(x) and its rounding scale; decides how the scale is found elsewhere."""
        f0 = self(x[None, :])[0]
        self.f0 = np.abs(np.nan_to_num(f0))
        big = self._bound(x[None, :])
        if big is not None:
            self.excess = np.maximum(big[0] - self.f0, 0.0)
            self.exact = self.exact or (callable(self.fscale) and
                                        bool(np.any(self.excess > KAPPA * self.f0)))
        return f0, self.f0 + self.excess

    def _bound(self, pts: np.ndarray) -> np.ndarray | None:
        if self.fscale is None:
            return None
        with np.errstate(all="ignore"):
            b = self.fscale(pts) if callable(self.fscale) else \
                np.broadcast_to(np.asarray(self.fscale, dtype=float), (1, self.f0.size))
        return np.nan_to_num(np.asarray(b, dtype=float), nan=0.0,
                             posinf=np.finfo(float).max)

    def scale(self, pts: np.ndarray, vals: np.ndarray) -> np.ndarray:
        a = np.abs(np.where(np.isfinite(vals), vals, 0.0))
        if self.exact:
            return np.maximum(a, self._bound(pts))
        with np.errstate(all="ignore"):
            ratio = np.where(self.f0 > 0, np.minimum(1.0, a / self.f0), 1.0)
        return np.maximum(a, self.excess * ratio)

    def both(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vals = self(pts)
        return vals, self.scale(pts, vals)


def _usable(vals: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Levels whose points are defined, and every finer present level's too."""
    ok = np.isfinite(vals) | ~present[..., None]
    return _contiguous(ok) & present[..., None]


class _First:
    """First derivatives: entry ``i`` is coordinate ``i``, points ``x ± h e_i``."""

    power = 1

    def __init__(self, x: np.ndarray, one_sided: bool = True):
        self.x = x
        self.one_sided = one_sided
        self.n = self.size = x.size
        scale = _scale(x)
        self.h0 = H0 * scale
        self.levels = LEVELS + _extra(scale)
        self.min_step = np.maximum(np.spacing(np.abs(x)), MIN_STEP)

    def step(self, es: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return self.h0[es][:, None] * np.exp2(-ks.astype(float))  # (c, L)

    @staticmethod
    def points_per_level() -> int:
        return 2

    def evaluate(self, values: _Values, es: np.ndarray, ks: np.ndarray) -> dict:
        """Values at the points of entries ``es`` (c,) at levels ``ks`` (c, L); steps below
        the spacing of x_i are absent."""
        h = self.step(es, ks)
        xi = self.x[es][:, None]
        xp, xm = xi + h, xi - h
        c, L = h.shape
        pts = np.broadcast_to(self.x, (2, c, L, self.n)).copy()
        rows = np.arange(c)
        pts[0, rows, :, es] = xp
        pts[1, rows, :, es] = xm
        vals, big = (a.reshape(2, c, L, -1) for a in values.both(pts.reshape(-1, self.n)))
        return {"plus": np.moveaxis(vals[0], 1, 0), "minus": np.moveaxis(vals[1], 1, 0),
                "plus_scale": np.moveaxis(big[0], 1, 0), "minus_scale": np.moveaxis(big[1], 1, 0),
                "h": h.T, "hp": (xp - xi).T, "hm": (xi - xm).T,
                "present": (h >= self.min_step[es][:, None]).T}

    def variants(self, f0: np.ndarray, d: dict, s0: np.ndarray
                 ) -> tuple[list[_Variant], np.ndarray]:
        """Central, forward and backward differences (with the actual steps ``(x + h) - x``),
        and where the central ones fit (L, c, m). ``s0``: the rounding scale of f(x)."""
        fp, fm, hp, hm = d["plus"], d["minus"], d["hp"][..., None], d["hm"][..., None]
        sp, sm = d["plus_scale"], d["minus_scale"]
        okp, okm = _usable(fp, d["present"]), _usable(fm, d["present"])
        with np.errstate(all="ignore"):
            central = np.where(okp & okm, _quotient(fp - fm, hp + hm), np.nan)
            forward = np.where(okp, _quotient(fp - f0, hp), np.nan)
            backward = np.where(okm, _quotient(f0 - fm, hm), np.nan)
        ap, am, a0 = _plain(fp), _plain(fm), _plain(f0)
        out = [_Variant(central, _level_noise(sp, sm), 4.0, ORDERS, 1.0,
                        _level_noise(ap, am))]
        if self.one_sided:
            out += [_Variant(forward, 2 * _level_noise(sp, s0), 2.0, ONE_SIDED_ORDERS, 1.0,
                             2 * _level_noise(ap, a0)),
                    _Variant(backward, 2 * _level_noise(sm, s0), 2.0, ONE_SIDED_ORDERS, 1.0,
                             2 * _level_noise(am, a0))]
        return out, okp & okm

    @staticmethod
    def steps_of(d: dict) -> np.ndarray:
        return d["h"][..., None]

    @staticmethod
    def touching(coord: np.ndarray) -> np.ndarray:
        return coord


class _Second:
    """Second derivatives: entry ``(a, b)``, a <= b, from the corners ``x ± h_a e_a ± h_b e_b``
    (on the diagonal ``x ± 2h e_a``), the axis points ``x ± h e_a``, ``x ± h e_b`` and x."""

    power = 2

    def __init__(self, x: np.ndarray, levels: int, one_sided: bool = True):
        self.x = x
        self.one_sided = one_sided
        self.n = x.size
        self.ia, self.ib = np.triu_indices(self.n)
        self.size = self.ia.size
        scale = _scale(x)
        self.h0 = H0 * scale
        self.levels = levels + _extra(scale)
        self.spacing = np.maximum(2 * np.spacing(np.abs(x)), MIN_STEP)
        self.min_step = np.maximum(self.spacing[self.ia], self.spacing[self.ib])

    def step(self, es: np.ndarray, ks: np.ndarray) -> np.ndarray:
        scale = np.maximum(self.h0[self.ia[es]], self.h0[self.ib[es]])
        return scale[:, None] * np.exp2(-ks.astype(float))

    @staticmethod
    def points_per_level() -> int:
        return 8

    def evaluate(self, values: _Values, es: np.ndarray, ks: np.ndarray) -> dict:
        a, b = self.ia[es], self.ib[es]
        e2 = np.exp2(-ks.astype(float))  # (c, L)
        ha, hb = self.h0[a][:, None] * e2, self.h0[b][:, None] * e2
        c, L = ha.shape
        n, rows = self.n, np.arange(c)
        corners = []
        for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            off = np.zeros((c, L, n))
            off[rows, :, a] += sa * ha
            off[rows, :, b] += sb * hb
            corners.append(self.x + off)
        axes = []
        for idx, hh in ((a, ha), (b, hb)):
            for s in (1, -1):
                p = np.broadcast_to(self.x, (c, L, n)).copy()
                p[rows, :, idx] = self.x[idx][:, None] + s * hh
                axes.append(p)
        pts = np.stack(corners + axes)  # (8, c, L, n)
        vals, big = (np.moveaxis(a.reshape(8, c, L, -1), 2, 1)
                     for a in values.both(pts.reshape(-1, n)))
        xa, xb = self.x[a][:, None], self.x[b][:, None]
        pa = np.stack([corners[0][rows, :, a] - xa, xa - corners[3][rows, :, a]])  # diag: 2h
        qa = np.stack([axes[0][rows, :, a] - xa, xa - axes[1][rows, :, a]])
        qb = np.stack([axes[2][rows, :, b] - xb, xb - axes[3][rows, :, b]])
        present = (ha >= self.spacing[a][:, None]) & (hb >= self.spacing[b][:, None])
        return {"v": vals, "v_scale": big, "ha": ha.T, "hb": hb.T, "diag": (a == b),
                "present": present.T,
                "pa": np.moveaxis(pa, 2, 1), "qa": np.moveaxis(qa, 2, 1),
                "qb": np.moveaxis(qb, 2, 1)}

    def variants(self, f0: np.ndarray, d: dict, s0: np.ndarray
                 ) -> tuple[list[_Variant], np.ndarray]:
        """The central four-point difference and the one-sided one of each quadrant."""
        v, diag = d["v"], d["diag"][:, None]  # v: (8, L, c, m): ++ +- -+ -- a+ a- b+ b-
        sv = d["v_scale"]
        ok = [_usable(w, d["present"]) for w in v]
        qa, qb, pa = d["qa"][..., None], d["qb"][..., None], d["pa"][..., None]
        fits = ok[0] & ok[1] & ok[2] & ok[3]
        with np.errstate(all="ignore"):
            hh = d["ha"][..., None] * d["hb"][..., None]
            central = _central_second(v, pa, qa, qb, hh, diag)
            av = _plain(v)
            out = [_Variant(np.where(fits, central, np.nan), _level_noise(*sv[:4]), 4.0,
                            ORDERS, 2.0, _level_noise(*av[:4]))]
            quadrants = ((1, 1), (1, -1), (-1, 1), (-1, -1)) if self.one_sided else ()
            for corner, (sa, sb) in enumerate(quadrants):
                ia, ib = (0 if sa > 0 else 1), (0 if sb > 0 else 1)
                quad = _quadrant(v[corner], v[4 + ia], v[6 + ib], f0, sa * qa[ia],
                                 sb * qb[ib], pa[ia] if sa == sb else None, diag)
                good = ok[corner] & ok[4 + ia] & ok[6 + ib]
                nz = 4.0 * _level_noise(sv[corner], sv[4 + ia], sv[6 + ib], s0)
                pz = 4.0 * _level_noise(av[corner], av[4 + ia], av[6 + ib], _plain(f0))
                out.append(_Variant(np.where(good, quad, np.nan), nz, 2.0, ONE_SIDED_ORDERS,
                                    1.0, pz))
        return out, fits

    @staticmethod
    def steps_of(d: dict) -> np.ndarray:
        return np.sqrt(d["ha"] * d["hb"])[..., None]

    def touching(self, coord: np.ndarray) -> np.ndarray:
        return coord[self.ia] | coord[self.ib]


def _quotient(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where a nonzero numerator underflows (the quotient has lost its
    digits: a difference of 1e-200 over a step of 1e184 is no slope at all)."""
    q = num / den
    return np.where((num != 0) & (np.abs(q) < UNDERFLOW), np.nan, q)


def _central_second(v, pa, qa, qb, hh, diag):
    """Four-point mixed difference (on the diagonal: the second difference over x ± 2h)."""
    plain = (v[0] - v[1] - v[2] + v[3]) / (4 * hh)
    p, m = pa[0], pa[1]  # actual steps of the corners along a (2h on the diagonal)
    exact = (qa[0] == qa[1]) & (qb[0] == qb[1]) & (p == m)
    mixed = (v[0] - v[1] - v[2] + v[3]) / ((qa[0] + qa[1]) * (qb[0] + qb[1]))
    second = 2 * (v[0] / (p * (p + m)) + v[3] / (m * (p + m)) - v[1] / (p * m))
    out = np.where(exact, plain, np.where(diag, second, mixed))
    return np.where((v[0] - v[1] - v[2] + v[3] != 0) & (np.abs(out) < UNDERFLOW), np.nan, out)


def _quadrant(corner, axis_a, axis_b, f0, sa, sb, p2, diag):
    """One-sided second difference in one quadrant: steps ``sa`` along a, ``sb`` along b
    (signed, actual); on the diagonal the corner sits at the actual step ``p2`` (signed as
    ``sa``) and this is the forward (or backward) second difference over x, x + h, x + 2h."""
    mixed = _quotient(corner - axis_a - axis_b + f0, sa * sb)
    if p2 is None:  # (+, -) and (-, +): on the diagonal the corner is x itself
        return mixed
    q, p = sa, np.sign(sa) * p2
    second = 2 * (corner / (p * (p - q)) - axis_a / (q * (p - q)) + f0 / (p * q))
    second = np.where((second != 0) & (np.abs(second) < UNDERFLOW), np.nan, second)
    return np.where(diag, second, mixed)


def _estimate(scheme, f0: np.ndarray, d: dict, s0: np.ndarray) -> _Estimate:
    variants, fits = scheme.variants(f0, d, s0)
    h = scheme.steps_of(d)
    best, finer = _pick([_candidate(v, h, scheme.power) for v in variants])
    present = d["present"]
    every = np.all(fits, axis=-1) | ~present  # (L, c)
    run = _contiguous(every)
    fits_from = every.shape[0] - run.sum(axis=0)
    some = np.any(run & present, axis=0)
    return _Estimate(best, finer, np.where(some, fits_from, every.shape[0]))


def _candidate(v: _Variant, h: np.ndarray, power: int) -> tuple[_Best, np.ndarray]:
    """The best of one column's extrapolations, and whether smaller steps would help it:
    its error is mostly truncation and its finest differences still change by more than
    their rounding."""
    def gain(lvl: int) -> float:
        return v.gain * _amplification(lvl, v.base)

    b = _table(v.D, h, v.noise, power=power, base=v.base, orders=v.orders, gain=gain,
               plain=v.plain)
    D = v.D
    last = D.shape[0] - 1 - np.argmax(np.isfinite(D)[::-1], axis=0)  # finest usable level

    def at(a: np.ndarray, back: int) -> np.ndarray:
        idx = np.maximum(last - back, 0)[None]
        return np.take_along_axis(np.broadcast_to(a, D.shape), idx, 0)[0]

    floor = FINER * at(v.noise, 0) / at(h, 0) ** power
    with np.errstate(invalid="ignore"):
        change = [np.where(last > i, np.abs(at(D, i) - at(D, i + 1)), np.inf) for i in range(3)]
        # no candidate at all (nothing in the asymptotic regime yet) counts as truncation
        finer = ((b.trunc > b.round) | ~np.isfinite(b.err)) & ~(change[0] <= floor)
        # the asymptotic regime: each halving shrinks the change (by 4 central, 2 one-sided),
        # or the finest ones are rounding
        b.settled = (change[0] <= floor) | ((change[0] <= 0.6 * change[1]) &
                                            (change[1] <= 0.6 * change[2]))
    return b, finer


def _pick(cands: list[tuple[_Best, np.ndarray]]) -> tuple[_Best, np.ndarray]:
    """Per entry, the candidate with the smallest error (the first on ties), its error
    widened to what the other kinds of differences say (see :func:`_others`); and whether
    the entry wants smaller steps: its candidate does, two kinds contradict each other
    (their intervals do not overlap: a kink or a pole just beside the point, straddled by
    one of them), or only the central difference converges (one-sided ones converge wherever
    f is smooth on their side: a central one alone is straddling something it cannot see)."""
    best, fin = _smallest(cands)
    err, clash, union = _others(best, cands)
    lonely = np.zeros(best.value.shape, bool)
    if len(cands) > 1:
        lonely = np.isfinite(cands[0][0].err) & (cands[0][0].err == best.err) & \
            np.all([~np.isfinite(b.err) for b, _ in cands[1:]], axis=0)
    best = _Best(best.value, err, best.trunc, best.round, best.step, best.settled, clash,
                 union, lonely)
    return best, fin | clash | lonely


def _smallest(cands: list[tuple[_Best, np.ndarray]]) -> tuple[_Best, np.ndarray]:
    best, finer = cands[0]
    out = {k: getattr(best, k).copy() for k in ("value", "err", "trunc", "round", "step",
                                                "settled")}
    fin = finer.copy()
    for b, f in cands[1:]:
        better = b.err < out["err"]
        for k in out:
            out[k] = np.where(better, getattr(b, k), out[k])
        fin = np.where(better, f, fin)
    return _Best(**out), fin


def _others(best: _Best, cands: list[tuple[_Best, np.ndarray]]):
    """``(err, clash, union)``: the best's error widened to cover every kind about as good
    that says something else (a kink in a higher derivative just beside x fools one kind
    exactly), or, where the best is nothing but rounding, every kind that resolves more (a
    central difference straddling a kink sees 0 where a one-sided one sees the slope);
    where kinds contradict each other; and the interval covering every kind that converges
    (for an entry whose contradiction outlives the refinement)."""
    value, err = best.value, best.err
    lo = np.where(best.settled, value - err, np.inf)
    hi = np.where(best.settled, value + err, -np.inf)
    clash = np.zeros(value.shape, bool)
    wide = err.copy()
    blank = (best.round >= best.trunc) & (np.abs(value) <= err)
    with np.errstate(invalid="ignore"):
        for b, _ in cands:
            apart = np.isfinite(b.err) & np.isfinite(err) & \
                (np.abs(b.value - value) > b.err + err)
            clash |= apart
            member = apart & b.settled
            lo = np.where(member, np.minimum(lo, b.value - b.err), lo)
            hi = np.where(member, np.maximum(hi, b.value + b.err), hi)
            near = ((b.err <= COMPARABLE * err) | blank) & np.isfinite(b.value) & \
                np.isfinite(value) & np.isfinite(b.err)
            wide = np.where(near, np.maximum(wide, np.abs(b.value - value) + b.err), wide)
    return wide, clash, ((lo + hi) / 2, (hi - lo) / 2)


# -- the driver: base ladder, restarts below domain edges, extensions ------------------------
@dataclass
class _Entry:
    """One entry's ladder (levels ``ks``), its values, and its state."""

    ks: np.ndarray
    data: dict
    fits_from: int  # index of the coarsest level from which every central difference fits
    finer: np.ndarray  # (m,) bool: smaller steps would still help
    best: _Best  # of this entry (arrays (m,))
    restarts: int = 0
    extended: int = 0  # extensions since the last restart
    probed: bool = False
    done: bool = False
    stuck: bool = False  # wants smaller steps but cannot have them


def _solve(scheme, values: _Values, x: np.ndarray):
    """Estimates ``(E, m)`` and errors for every entry of ``scheme``."""
    f0, s0 = values.start(x)
    E, K = scheme.size, scheme.levels
    if E == 0:
        return np.zeros((0, f0.size)), np.zeros((0, f0.size))
    ks = np.broadcast_to(np.arange(K), (E, K))
    data = _evaluate(scheme, values, np.arange(E), ks)
    est = _estimate(scheme, f0, data, s0)
    value, err = est.best.value.copy(), est.best.err.copy()
    wild = _wild(scheme, values, x, f0, data)
    value[wild], err[wild] = np.nan, np.inf
    todo = ((est.fits_from > 0) | np.any(est.finer, axis=-1)) & ~wild
    if not np.any(todo):
        return value, err
    entries = {int(e): _Entry(np.arange(K), _take(data, e), int(est.fits_from[e]),
                              est.finer[e], _row(est.best, e))
               for e in np.nonzero(todo)[0]}
    for _ in range(ROUNDS):
        active = [e for e, en in entries.items() if not en.done]
        if not active:
            break
        _advance(scheme, values, f0, s0, entries, active)
        _reestimate(scheme, f0, s0, entries, active, value, err)
    for e, en in entries.items():
        value[e], err[e] = _final(en)
    return value, err


def _row(b: _Best, e: int) -> _Best:
    return _Best(b.value[e], b.err[e], b.trunc[e], b.round[e], b.step[e], b.settled[e],
                 b.clash[e], (b.union[0][e], b.union[1][e]), b.lonely[e])


def _final(en: _Entry) -> tuple[np.ndarray, np.ndarray]:
    """An entry's answer once refinement stops. Still contradicted by another kind of
    difference: the interval covering every kind that converges (a kink or a jump in a
    higher derivative closer than the smallest step: each side's difference converges to
    its own side's value); none converges: not resolved. Still wanting smaller steps, its
    finest differences not converging: not resolved (NaN, infinite error)."""
    b = en.best
    if en.done and not en.stuck:
        return b.value, b.err
    union = b.clash & np.isfinite(b.union[1]) & (b.union[1] >= 0)
    value = np.where(union, b.union[0], b.value)
    err = np.where(union, b.union[1], b.err)
    unresolved = (en.finer & ~b.settled & ~b.clash) | (b.clash & ~union) | b.lonely
    return np.where(unresolved, np.nan, value), np.where(unresolved, np.inf, err)


def _wild(scheme, values: _Values, x: np.ndarray, f0: np.ndarray, data: dict) -> np.ndarray:
    """Entries along a coordinate where f jumps by more than CHAOS of its typical size
    across the smallest step (one float apart): no step can resolve f there (a pole or a
    kink within a float of x, ``tan(c - x)`` at x = 1e200 where floats are 1e184 apart)."""
    n = x.size
    s = np.maximum(np.spacing(np.abs(x)), MIN_STEP)
    pts = np.concatenate([x + np.diag(s), x - np.diag(s)])
    near = values(pts)  # (2n, m)
    seen = np.concatenate([v.reshape(-1, f0.size) for k, v in data.items()
                           if k in ("plus", "minus", "v")] + [f0[None]])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (an all-NaN output)
        size = np.nan_to_num(np.nanpercentile(np.abs(np.where(np.isfinite(seen), seen, np.nan)),
                                              75, axis=0))  # typical |f| (robust to spikes)
    size = np.maximum(size, np.abs(np.nan_to_num(f0)))
    with np.errstate(invalid="ignore"):
        jump = np.abs(near - f0) > CHAOS * size
    coord = np.any(jump[:n] | jump[n:], axis=-1)  # (n,)
    return scheme.touching(coord)


def _evaluate(scheme, values: _Values, es: np.ndarray, ks: np.ndarray) -> dict:
    """``scheme.evaluate`` in blocks of entries (bounded memory)."""
    per = max(1, int(CHUNK // max(1, scheme.points_per_level() * ks.shape[1] * scheme.n)))
    parts = [scheme.evaluate(values, es[i:i + per], ks[i:i + per])
             for i in range(0, es.size, per)]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts], axis=_entry_axis(k))
            for k in parts[0]}


def _entry_axis(key: str) -> int:
    """Arrays keep levels first and entries next (``v``: slot, level, entry; ``diag``: entry;
    ``pa``/``qa``/``qb``: side, level, entry)."""
    if key == "diag":
        return 0
    return 2 if key in ("v", "v_scale", "pa", "qa", "qb") else 1


def _take(data: dict, e: int) -> dict:
    return {k: np.take(arr, [e], axis=_entry_axis(k)) for k, arr in data.items()}


def _join(a: dict, b: dict) -> dict:
    """Levels of ``b`` appended to those of ``a`` (one entry each)."""
    return {k: a[k] if k == "diag" else
            np.concatenate([a[k], b[k]], axis=_entry_axis(k) - 1) for k in a}


def _advance(scheme, values: _Values, f0: np.ndarray, s0: np.ndarray, entries: dict,
             active: list[int]) -> None:
    """One round for every active entry: restart below a domain edge; or, while smaller
    steps would help, extend the ladder once, then probe for where the differences settle
    (and restart there), then extend again."""
    restart, probe, extend = [], [], []
    for e in active:
        en = entries[e]
        if en.fits_from >= en.ks.size and en.restarts < RESTARTS and not en.probed:
            probe.append(e)
        elif 0 < en.fits_from < en.ks.size and en.restarts < RESTARTS:
            restart.append(e)
        elif not np.any(en.finer):
            en.done = True
        elif en.extended == 0 or en.probed:
            extend.append(e)
        else:
            probe.append(e)
    starts = {e: int(entries[e].ks[entries[e].fits_from]) + 1 for e in restart}
    starts.update(_probe(scheme, values, f0, s0, entries, probe))
    _restart(scheme, values, entries, starts)
    _extend(scheme, values, entries, extend)


def _restart(scheme, values, entries, starts: dict[int, int | None]) -> None:
    """New ladders of LEVELS levels from the given levels."""
    for e, k in starts.items():
        if k is None:
            entries[e].done = entries[e].stuck = True
    go = [e for e, k in starts.items() if k is not None]
    if not go:
        return
    ks = np.array([starts[e] + np.arange(LEVELS) for e in go])
    data = _evaluate(scheme, values, np.array(go), ks)
    for i, e in enumerate(go):
        en = entries[e]
        en.ks, en.data = ks[i], _take(data, i)
        en.restarts += 1
        en.extended = 0


def _probe(scheme, values, f0, s0, entries, es: list[int]) -> dict[int, int | None]:
    """Every PROBE-th level below each ladder, down to the smallest step: the ladder
    restarts at the coarsest probed level whose central difference agrees with the next
    one (within SETTLE, and clearly above their rounding), provided every finer probed level
    fits the domain and agrees with its neighbour (within SETTLE or within rounding). None
    where there is none: differences that only ever agree within their rounding never
    resolved anything."""
    if not es:
        return {}
    for e in es:
        entries[e].probed = True
    earr = np.array(es)
    first = np.array([entries[e].ks[-1] for e in es]) + PROBE
    top = np.log2(scheme.step(earr, np.zeros((len(es), 1)))[:, 0])
    count = int(np.max(np.floor((top - np.log2(scheme.min_step[earr]) - first) / PROBE))) + 1
    if count < 2:
        return {e: None for e in es}
    ks = first[:, None] + PROBE * np.arange(count)[None, :]
    data = _evaluate(scheme, values, earr, ks)
    variants, fits = scheme.variants(f0, data, s0)
    D, h, noise = variants[0].D, scheme.steps_of(data), variants[0].noise
    with np.errstate(invalid="ignore"):
        size = SETTLE * np.maximum(np.abs(D[1:]), np.abs(D[:-1]))
        rounding = variants[0].gain * noise / h ** scheme.power
        gap = np.abs(D[1:] - D[:-1])
        settled = gap <= size + FINER * rounding[1:]
        clear = (gap <= size) & (rounding[:-1] < size)  # the coarser one is clear of rounding
        grows = np.abs(D[1:]) - np.abs(D[:-1]) > size + FINER * rounding[1:]
        grows[1:] |= _trend(D, variants[0].plain / h ** scheme.power)  # (16x to 256x)
    present = data["present"]
    settled |= ~present[1:, :, None]  # (the last present level has no finer neighbour)
    last = np.ones((1, *settled.shape[1:]), bool)
    good = np.all(np.concatenate([settled, last]) & fits, axis=-1)  # (count, c)
    run = _contiguous(good | ~present) & present
    # where the differences grew on the way down, only a clear agreement will do (growth
    # that vanishes into rounding is a pole's trend hiding under the rounding bound)
    grew = np.logical_or.accumulate(np.any(np.concatenate([~last, grows]), axis=-1), axis=0)
    starts = run & (np.all(np.concatenate([clear, ~last]), axis=-1) | ~grew)
    out: dict[int, int | None] = {}
    for i, e in enumerate(es):
        j = np.nonzero(starts[:, i])[0]
        out[e] = int(ks[i, j[0]]) if j.size else None
    return out


def _extend(scheme, values, entries, es: list[int]) -> None:
    """EXTEND more levels below each ladder's finest (not below the smallest step)."""
    go = []
    for e in es:
        en = entries[e]
        if scheme.step(np.array([e]), en.ks[-1:][None] + 1)[0, 0] < scheme.min_step[e]:
            en.done = en.stuck = True
        else:
            go.append(e)
    if not go:
        return
    ks = np.array([entries[e].ks[-1] + 1 + np.arange(EXTEND) for e in go])
    data = _evaluate(scheme, values, np.array(go), ks)
    for i, e in enumerate(go):
        en = entries[e]
        new = _take(data, i)
        en.ks = np.concatenate([en.ks, ks[i]])
        en.data = _join(en.data, new)
        en.extended += 1


def _reestimate(scheme, f0, s0, entries, active, value, err) -> None:
    for e in active:
        en = entries[e]
        if en.done:
            continue
        est = _estimate(scheme, f0, en.data, s0)
        value[e], err[e] = est.best.value[0], est.best.err[0]
        en.fits_from, en.finer, en.best = int(est.fits_from[0]), est.finer[0], \
            _row(est.best, 0)


# -- public functions ----------------------------------------------------------------------
def jacobian(f: Batch, x: np.ndarray, *, fscale: Scale | None = None,
             domain: Domain | None = None, one_sided: bool = False, pointwise: bool = False):
    """Jacobian ``(m, n)`` of ``f`` at ``x`` and the estimated absolute error per entry.

    ``f`` maps a batch of points ``(Q, n)`` to values ``(Q, m)``, NaN (or inf) where it is
    undefined; ``domain`` (optional) maps points ``(Q, n)`` to True where f is defined, for
    functions that return finite numbers outside their domain. ``fscale`` is an optional
    bound on the rounding scale of f: ``(m,)`` at x, or a callable giving it ``(Q, m)`` at
    a batch of points (see ``engines.rounding.rounding_bound``), used at the ladder's points
    where x is ill-conditioned, or everywhere with ``pointwise=True``. ``one_sided=True``
    also tries forward and backward differences (a kink or a domain edge just beside x);
    where they contradict each other to the end, the error covers them all. Without it,
    only central differences: at a kink itself, their average of the two sides. An entry
    that cannot be resolved is NaN with an infinite error.

    >>> J, err = jacobian(lambda X: np.log(X), np.array([1e-6]))  # steps fit below 1e-6
    >>> bool(abs(J[0, 0] - 1e6) <= err[0, 0] < 1e-3)
    True
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        value, err = _solve(_First(x, one_sided), _Values(f, domain, fscale, pointwise), x)
    return value.T, err.T


def hessian(f: Batch, x: np.ndarray, *, fscale: Scale | None = None,
            levels: int = LEVELS, domain: Domain | None = None, one_sided: bool = False,
            pointwise: bool = False):
    """Hessians ``(m, n, n)`` of ``f`` at ``x`` and estimated absolute errors.

    Uses the four-point mixed difference
    ``[f(+a+b) - f(+a-b) - f(-a+b) + f(-a-b)] / (4 h_a h_b)`` for every pair ``a <= b``
    (``a == b`` gives the second difference with step ``2h``) and its one-sided versions in
    each quadrant (``one_sided=True``), then Richardson; the ladder stays inside the domain
    as for :func:`jacobian`.

    >>> H, E = hessian(lambda X: np.sqrt(X), np.array([1e-4]), one_sided=True)
    >>> bool(abs(H[0, 0, 0] + 0.25e6) <= E[0, 0, 0] < 1e2)
    True
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    scheme = _Second(x, levels, one_sided)
    with np.errstate(all="ignore"):
        best, err = _solve(scheme, _Values(f, domain, fscale, pointwise), x)
    m = best.shape[1]
    ia, ib = scheme.ia, scheme.ib
    H = np.zeros((m, n, n))
    E = np.zeros((m, n, n))
    H[:, ia, ib] = best.T
    H[:, ib, ia] = best.T
    E[:, ia, ib] = err.T
    E[:, ib, ia] = err.T
    return H, E
