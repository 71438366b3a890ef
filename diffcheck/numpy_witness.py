"""The witness: ``f`` evaluated along seeded random directions, independent of AD.

Finite differences (Richardson, their step ladder settling on the scale ``f`` varies on), or
the complex step where the traced code is analytic, give ``f``'s directional derivatives
along a few Gaussian directions scaled like ``x``. :func:`_witness_verdict` compares the
reference and the user's derivative with them: the witness *agrees*, *DISAGREES* or is
*inconclusive* (its error bars too wide for ``WITNESS_REL``, or its directions crossing
kinks), and says so in words that never contradict the check's verdict; the chance that a
bug of relative size ``WITNESS_REL`` slips past the directions is quoted only where it is
meaningful.

>>> V = _directions(np.array([3e3, 0.0, 1e-6]), 2, seed=0)
>>> V.shape, bool(np.all(V != 0))
((2, 3), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .numpy_fd import _second_difference, complex_step, directional_difference
from .numpy_precision import smallest_normal

if TYPE_CHECKING:
    from .numpy_check import Reference

COMPLEX_WITNESS_LIMIT = 2 * 10 ** 5  #: above this, differences are the cheaper witness
WITNESS_REL = 1e-3  #: bug size (relative, 2-norm) the slip probability is quoted for
WITNESS_RTOL = WITNESS_REL / 20  #: the witness's step ladders stop once this relative
SLIP_USEFUL = 0.5  #: above this slip probability the directions are said to be too coarse
#: what the witness allows the reference's own rounding, in eps times its terms' size
REFERENCE_ROUNDING = 256.0 * 16

Fn = Callable[[Any], Any]


def _complex_sample(f: Fn, x64: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """The complex step along ``v``, or None when f does not take complex input (any
    exception: the witness then uses finite differences)."""
    try:
        return np.ravel(complex_step(f, x64, v))
    except Exception:  # noqa: BLE001 -- whatever the complex step meets, differences answer
        return None


def _directions(x: np.ndarray, k: int, seed: int, eps: float = 2.0 ** -52) -> np.ndarray:
    """Seeded Gaussian directions, scaled entrywise by |x| (so badly scaled x is fine).

    How far along them to step is left to the step ladder, which shrinks until the
    differences settle: the steps fit the scale f varies on, not the size of x. ``eps``:
    the precision f computes in; entries are at least ``2**40`` times its smallest normal
    number, so that every step of the ladder is one f can resolve (x = 1e-60 in a
    function that rounds its inputs to float32 is 0 to it)."""
    rng = np.random.default_rng(seed)
    size = np.abs(x.astype(np.float64, copy=False))
    if size.size and not np.min(size) > 0:  # zeros take the typical size (or 1)
        typical = float(np.sqrt(np.mean(size ** 2)))
        size = np.where(size > 0, size, max(typical, 1.0))
    size = np.maximum(size, smallest_normal(eps) * 2.0 ** 40)
    return rng.standard_normal((k, *x.shape), dtype=np.float32) * size


@dataclass
class _Witness:
    text: str
    ok: bool  # does not contradict the reference (agrees, or cannot resolve it)
    user_ok: bool  # your derivative agrees with it
    slip: float | None
    kink: bool
    state: str = "agrees"  # "agrees", "inconclusive" or "DISAGREES"
    worst_user: tuple[float, float] = (0.0, 0.0)  # your largest directional difference


@dataclass
class _Samples:
    """The witness's own evaluations: directional derivatives along random directions."""

    V: np.ndarray  # (k, *x.shape) directions
    W: np.ndarray  # (k, m) the witness's directional derivatives (hessian: (k, 1))
    E: np.ndarray  # their estimated errors
    how: str
    kink: bool
    lo: np.ndarray | None = None  # (k, m) one-sided limits where a direction meets a kink
    hi: np.ndarray | None = None
    at_kink: np.ndarray | None = None  # (k, m) bool


def _witness_samples(kind: str, f: Fn, x: np.ndarray, ref: Reference, k: int, seed: int,
                     fx: np.ndarray | None = None, noise: np.ndarray | None = None
                     ) -> _Samples:
    """Evaluate ``f`` along ``k`` seeded random directions (finite differences, or the
    complex step for analytic code): independent of AD, and of the tolerance.

    ``fx`` is f(x) when it was already computed in float64 (saves one evaluation);
    ``noise`` the measured noise of f's values (finite differences use it)."""
    x64 = x.astype(np.float64, copy=False)
    f0 = np.asarray(fx) if fx is not None and x.dtype == np.float64 else None
    eps = ref.precision.eps if ref.precision is not None else float(np.finfo(float).eps)
    V = _directions(x64, k, seed, eps)
    n = x.size
    use_complex = ref.exact and ref.kinks is not None and ref.kinks.analytic and \
        n <= COMPLEX_WITNESS_LIMIT and kind != "hessian"
    cols: dict[str, list] = {"W": [], "E": [], "lo": [], "hi": [], "kink": []}
    how = ""
    for v in V:
        if use_complex:
            cs = _complex_sample(f, x64, v)
            if cs is not None:
                for key, val in (("W", cs), ("E", np.zeros_like(cs)), ("lo", cs), ("hi", cs),
                                 ("kink", np.zeros(cs.shape, bool))):
                    cols[key].append(val)
                how = "complex step"
                continue
            use_complex = False
        if kind == "hessian":
            d = _second_difference(f, x64, v, noise=noise, rtol=WITNESS_RTOL)
            how = "second differences of f (Richardson)"
        else:
            d = directional_difference(f, x64, v, f0=f0, noise=noise, rtol=WITNESS_RTOL,
                                       **({"levels": 3, "h0": 2.0 ** -6} if n > 10 ** 5 else
                                          {"levels": 4}))
            how = "finite differences (Richardson)"
        # where a direction meets a kink, the error bar is the one-sided limits' (the
        # central difference has none there): the verdict then asks for their range
        err = d.error if d.side_error is None else np.where(d.kink, d.side_error, d.error)
        for key, val in (("W", d.value), ("E", err), ("lo", np.minimum(d.left, d.right)),
                         ("hi", np.maximum(d.left, d.right)), ("kink", d.kink)):
            cols[key].append(np.ravel(val))
    kinks = np.array(cols["kink"])
    return _Samples(V, np.array(cols["W"]), np.array(cols["E"]), how, bool(np.any(kinks)),
                    np.array(cols["lo"]), np.array(cols["hi"]), kinks)


def _witness_verdict(kind: str, s: _Samples, yours: np.ndarray, ref: Reference,
                     tol: np.ndarray, size: np.ndarray | None = None) -> _Witness:
    """Compare reference and yours with the witness's samples under tolerance ``tol``.

    ``size`` is ``max(|reference|, scale)`` in the shape of yours, when already at hand.
    The witness *agrees* when every sample is within its error bar (plus the tolerance
    along the direction) of the reference, *DISAGREES* when one is not, and is
    *inconclusive* when it agrees only because its error bars are wider than the
    ``WITNESS_REL`` it is meant to resolve. Yours is compared with it under the same
    allowance plus your own tolerance along the direction, so every entry within its
    tolerance never makes yours disagree where the reference agrees. A direction that
    crosses a kink has two one-sided derivatives; a value between them agrees, and one
    outside is no disagreement either (along a sum of kinks of both curvatures, a right
    subgradient need not lie between the sum's one-sided derivatives): the witness then
    cannot tell, and says so. Kinks are judged entry by entry elsewhere."""
    k, n = len(s.V), s.V[0].size
    absV = np.abs(s.V.reshape(k, n))
    R = ref.value.reshape(-1, n)
    size = np.maximum(np.abs(R), ref.scale.reshape(R.shape)) if size is None else \
        size.reshape(R.shape)
    ref_d, your_d, bound, scale = _project(kind, s.V.reshape(k, n), R, yours.reshape(-1, n),
                                           tol.reshape(-1, n), size)
    W, E = s.W, s.E
    wtol = E + REFERENCE_ROUNDING * np.finfo(float).eps * scale + 2 * bound
    if s.how == "complex step":
        wtol = wtol + 1e-10 * np.abs(ref_d)
    with np.errstate(invalid="ignore", divide="ignore"):
        near = np.abs(W - ref_d) <= wtol
        mine = np.abs(W - your_d) <= wtol + bound
        size_d = np.maximum(scale, np.abs(ref_d))
        sharp = E <= WITNESS_REL / 10 * size_d
        blind = np.zeros(W.shape, bool)
        if s.at_kink is not None and s.at_kink.any():
            between = (ref_d >= s.lo - wtol) & (ref_d <= s.hi + wtol)
            blind = s.at_kink & ~between
            near, mine = near | s.at_kink, mine | s.at_kink
        # the derivative's size along each direction, at least eps times its largest
        # entry times |v| (entries that are 0 and without terms do not make it 1e-214)
        floor = np.finfo(float).eps * absV.sum(axis=1)[:, None] * float(np.max(size,
                                                                                  initial=0))
        denom = np.maximum(size_d, floor) if np.any(floor > 0) else None
        gap = np.abs(W - your_d)
        worst_user = (_nanmax(gap), _nanmax(gap / denom) if denom is not None else np.inf)
    agree, resolved = bool(np.all(near)), bool(np.all(sharp) and not blind.any())
    state, text = _witness_text(kind, s.how, k, agree, resolved, blind.any(),
                                np.where(s.at_kink, 0.0, np.abs(W - ref_d))
                                if s.at_kink is not None else np.abs(W - ref_d), E, denom)
    return _Witness(text, agree, bool(np.all(mine)), _slip(wtol + bound, absV, R, k),
                    s.kink, state, worst_user)


def _project(kind: str, V: np.ndarray, R: np.ndarray, Y: np.ndarray, T: np.ndarray,
             size: np.ndarray) -> tuple[np.ndarray, ...]:
    """Reference and yours along the directions ``V`` (k, n), what the tolerance allows
    along them, and the size of the terms there: each ``(k, m)`` (Hessians: ``(k, 1)``,
    ``v^T H v``)."""
    absV = np.abs(V)
    if kind == "hessian":
        quad = lambda A, M, B: np.einsum("kn,mn,km->k", A, M, B)[:, None]  # noqa: E731
        return quad(V, R, V), quad(V, Y, V), quad(absV, T, absV), quad(absV, size, absV)
    return V @ R.T, V @ Y.T, absV @ T.T, absV @ size.T


def _witness_text(kind: str, how: str, k: int, agree: bool, resolved: bool, blind: bool,
                  off: np.ndarray, E: np.ndarray, denom: np.ndarray | None
                  ) -> tuple[str, str]:
    dirs = f"{how} along {k} random direction{'s' if k > 1 else ''}"
    if not agree:
        return "DISAGREES", (f"{dirs} DISAGREES with the reference "
                             f"({_relative(off, denom)}, beyond its error bar)")
    if blind:
        return "inconclusive", (f"{dirs} cannot tell here: they cross kinks of f, where the "
                                "reference is one of many right values")
    if not resolved:
        bar = _relative(E, denom).replace("difference", "error bar")
        return "inconclusive", (f"{dirs} cannot resolve the {kind} to {WITNESS_REL:g} here "
                                f"({bar}): it neither confirms nor contradicts the reference")
    return "agrees", f"{dirs} agrees with the reference ({_relative(off, denom)})"


def _nanmax(a: np.ndarray) -> float:
    return float(np.max(np.nan_to_num(a, nan=np.inf), initial=0.0))


def _relative(off: np.ndarray, denom: np.ndarray | None) -> str:
    """``off`` relative to the derivative's size along the directions, in words; in
    absolute terms where that size is 0 (no ratio with 1e-300 in a report)."""
    if denom is None:
        return f"difference {_nanmax(off):.1e}, absolute: the derivative is 0 along them"
    with np.errstate(invalid="ignore", divide="ignore"):
        return f"rel. difference {_nanmax(off / denom):.1e}"


def _witness(kind: str, f: Fn, x: np.ndarray, yours: np.ndarray, ref: Reference,
             tol: np.ndarray, k: int, seed: int, fx: np.ndarray | None = None) -> _Witness:
    """Compare reference and yours with an independent evaluation along random directions.

    ``fx`` is f(x) when it was already computed in float64 (saves one evaluation)."""
    noise = ref.precision.noise if ref.precision is not None else None
    return _witness_verdict(kind, _witness_samples(kind, f, x, ref, k, seed, fx, noise),
                            yours, ref, tol)


def _scaled(norm: Callable[[np.ndarray], Any], a: np.ndarray) -> Any:
    """``norm(a)`` of a homogeneous norm, computed on ``a / max|a|`` so that entries near
    1e300 (or 1e-300) neither overflow nor underflow when squared."""
    big = float(np.max(np.abs(a), initial=0.0))
    if big == 0 or not np.isfinite(big):
        return norm(a)
    return norm(a / big) * big


def _slip(allow: np.ndarray, absV: np.ndarray, R: np.ndarray, k: int) -> float | None:
    """Chance that an error of norm WITNESS_REL*|ref| escapes all k Gaussian directions.

    ``allow``: what each direction lets through ``(k, m)``; ``absV``: the directions'
    magnitudes ``(k, n)``; ``R``: the reference ``(m, n)``."""
    typical_v = absV[0] if k == 1 else absV.mean(axis=0)
    rms_r = np.abs(R[0]) if len(R) == 1 else _scaled(lambda a: np.sqrt(np.mean(a ** 2, axis=0)),
                                                     R)
    norm = float(_scaled(np.linalg.norm, typical_v * rms_r))
    if norm == 0 or not np.all(np.isfinite(allow)):
        return None if norm == 0 else 1.0
    p = 1.0
    for j in range(k):
        p *= min(1.0, math.sqrt(2 / math.pi) * float(np.max(allow[j])) / (WITNESS_REL * norm))
    return p
