"""The tolerance model and the verdict: which engine disagrees, where and by how much.

* Exact engines (symbolic, forward, reverse, jax) must agree with the reference to
  ``atol + rtol * max(|ref|, scale)``, where ``scale`` is the sum over computational
  paths of |products of local partials| (the size of the terms whose rounding the result
  carries; computed by an absolute-value reverse sweep). Default ``rtol`` is
  :data:`RTOL_EXACT`, a few thousand float64 epsilons.
* Finite differences must agree to their own error estimate (plus the exact tolerance).
* The reference is the symbolic engine (its formulas evaluated at 50 digits when they fit
  the budget). If the symbolic result disagrees with finite differences while another
  exact engine agrees with them, that engine becomes the reference, so the verdict blames
  the odd one out.
* At an ill-conditioned point (float64 loses more digits than the tolerance allows: a
  small difference of large terms, see :mod:`diffcheck.engines.rounding`) the path-sum
  scale gives way to the rounding bar each float64 engine carries: the tolerance is
  ``atol + rtol * |reference|`` plus the bars, shown as ``±``; the relative errors there
  are relative to the reference itself, so lost digits show.
* A finite-difference entry that could not be resolved (NaN with an infinite error) is
  not compared: it never makes the verdict DISAGREE.

>>> ref = np.array([1.0, 2.0]); scale = np.abs(ref)
>>> tolerance(ref, scale, None, None).tolist()
[1e-09, 2e-09]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RTOL_EXACT = 1e-9
EXACT = ("symbolic", "forward", "reverse", "jax")
ALL_ENGINES = ("symbolic", "forward", "reverse", "finite", "jax")
DEFAULT_ENGINES = ("symbolic", "forward", "reverse", "finite")
TINY = np.finfo(float).tiny
SUBNORMAL = 16 * np.finfo(float).smallest_subnormal  #: below tiny, floats lose relative digits


def tolerance(ref: np.ndarray, scale: np.ndarray, rtol: float | None, atol: float | None
              ) -> np.ndarray:
    """Allowed absolute difference from the reference, per entry."""
    rtol = RTOL_EXACT if rtol is None else rtol
    atol = 0.0 if atol is None else atol
    return atol + rtol * np.maximum(np.abs(ref), scale) + SUBNORMAL


def relative_error(value: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """|value - ref| relative to max(|ref|, scale); 0 where both are exactly equal."""
    diff = np.abs(value - ref)
    den = np.maximum(np.maximum(np.abs(ref), scale), TINY)
    with np.errstate(all="ignore"):
        rel = np.where(diff == 0, 0.0, diff / den)
    return np.where(np.isfinite(rel), rel, np.inf)


@dataclass
class Mismatch:
    """One entry where an engine is outside its tolerance."""

    engine: str
    kind: str  # "jacobian" or "hessian"
    index: tuple[int, ...]  # (output, var) or (output, var, var)
    value: float
    reference: float
    allowed: float
    relative: float


@dataclass
class Verdict:
    reference: str
    errors: dict[str, float] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    unresolved: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    #: engines that differ from the reference by more than the plain tolerance, but within
    #: their float64 rounding at an ill-conditioned point
    rounding_limited: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def unresolved_by(self, finite: bool) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
        """Unresolved entries per engine: those of finite differences (``finite``), or
        those float64 could not represent on the way (the other engines)."""
        out: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for name, kind, idx in self.unresolved:
            if (name == "finite") == finite:
                out.setdefault(name, []).append((kind, idx))
        return out

    @property
    def disagreeing(self) -> list[str]:
        return sorted({m.engine for m in self.mismatches}, key=ALL_ENGINES.index)


@dataclass
class Rounding:
    """Float64 rounding at an ill-conditioned point: ``bars[kind]`` bounds the rounding
    error of a float64 engine's entries from the derivative formulas' running-error bound,
    ``extra[engine][kind]`` adds what that engine's own computation showed (its change when
    rerun in extended precision); ``precise`` names the engines computed with more digits
    (the symbolic one at 50 digits), which carry none."""

    bars: dict[str, np.ndarray]
    precise: tuple[str, ...] = ()
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def bar(self, engine: str, kind: str) -> np.ndarray | float:
        if engine in self.precise:
            return 0.0
        return self.bars[kind] + self.extra.get(engine, {}).get(kind, 0.0)


def _allowed(name: str, kind: str, ref, scale, errors, rtol, atol, rounding, reference):
    tol = tolerance(ref, scale if rounding is None else 0.0, rtol, atol)
    if name == "finite":
        tol = tol + np.nan_to_num(errors[name][kind], nan=np.inf)
    if rounding is not None:  # both sides may carry float64 rounding
        tol = tol + rounding.bar(name, kind) + rounding.bar(reference, kind)
    return tol


def judge(values: dict[str, dict[str, np.ndarray]], errors: dict[str, dict[str, np.ndarray]],
          scales: dict[str, np.ndarray], rtol: float | None, atol: float | None,
          reference: str, *, rounding: Rounding | None = None) -> Verdict:
    """Compare every engine with the reference at one point.

    ``values[engine][kind]`` are arrays ("jacobian" (m, n), "hessian" (m, n, n));
    ``errors["finite"][kind]`` the finite-difference error estimates; ``scales[kind]``
    the rounding scale per entry; ``rounding`` the float64 rounding bars at an
    ill-conditioned point (None elsewhere).
    """
    verdict = Verdict(reference)
    with np.errstate(all="ignore"):
        for name, kinds in values.items():
            worst = 0.0
            for kind, val in kinds.items():
                worst = max(worst, _judge_kind(verdict, name, kind, val, values, errors,
                                               scales, rtol, atol, rounding))
            verdict.errors[name] = worst
    return verdict


def _judge_kind(verdict: Verdict, name: str, kind: str, val, values, errors, scales, rtol,
                atol, rounding: Rounding | None) -> float:
    """Record the mismatches of one engine's entries of one kind; its worst relative error."""
    reference = verdict.reference
    ref = values[reference][kind]
    scale = scales[kind] if rounding is None else np.zeros_like(ref)  # lost digits show
    rel = relative_error(val, ref, scale)
    if name == "finite":
        unresolved = ~np.isfinite(val) | ~np.isfinite(errors[name][kind])
    elif rounding is not None:  # float64 over/underflowed on the way: an infinite bar
        unresolved = ~np.isfinite(val) & ~np.isfinite(rounding.bar(name, kind))
    else:
        unresolved = np.zeros(val.shape, bool)
    rel = np.where(unresolved, 0.0, rel)
    if name == reference:
        return float(np.max(rel, initial=0.0))
    allowed = _allowed(name, kind, ref, scales[kind], errors, rtol, atol, rounding, reference)
    diff = np.abs(val - ref)
    bad = ~(diff <= allowed) & ~unresolved
    for idx in zip(*np.nonzero(unresolved), strict=True):
        if kind != "hessian" or idx[-2] <= idx[-1]:  # (a Hessian entry once, not twice)
            verdict.unresolved.append((name, kind, tuple(int(i) for i in idx)))
    for idx in zip(*np.nonzero(bad), strict=True):
        verdict.mismatches.append(Mismatch(
            name, kind, tuple(int(i) for i in idx), float(val[idx]), float(ref[idx]),
            float(allowed[idx]), float(rel[idx])))
    if rounding is not None and name != "finite" and name not in verdict.rounding_limited:
        plain = tolerance(ref, 0.0, rtol, atol)
        if np.any(~bad & ~unresolved & ~(diff <= plain)):
            verdict.rounding_limited.append(name)
    return float(np.max(rel, initial=0.0))


def choose_reference(values, errors, scales, rtol, atol, rounding: Rounding | None = None
                     ) -> str:
    """Symbolic, unless it alone contradicts finite differences and an exact engine agrees."""
    exact = [e for e in EXACT if e in values]
    first = exact[0]
    if "finite" not in values or len(exact) < 2:
        return first
    for ref in exact:
        if judge(_pick(values, ref, "finite"), errors, scales, rtol, atol, ref,
                 rounding=rounding).ok:
            return ref
    return first


def _pick(values, a, b):
    return {a: values[a], b: values[b]}
