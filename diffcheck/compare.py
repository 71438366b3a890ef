"""The tolerance model and the verdict: which engine disagrees, where and by how much.

* Exact engines (symbolic, forward, reverse, jax) must agree with the reference to
  ``atol + rtol * max(|ref|, scale)``, where ``scale`` is the sum over computational
  paths of |products of local partials| (the size of the terms whose rounding the result
  carries; computed by an absolute-value reverse sweep). Default ``rtol`` is
  :data:`RTOL_EXACT`, a few thousand float64 epsilons.
* Finite differences must agree to their own error estimate (plus the exact tolerance).
* The reference is the symbolic engine. If the symbolic result disagrees with finite
  differences while another exact engine agrees with them, that engine becomes the
  reference, so the verdict blames the odd one out.

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


def tolerance(ref: np.ndarray, scale: np.ndarray, rtol: float | None, atol: float | None
              ) -> np.ndarray:
    """Allowed absolute difference from the reference, per entry."""
    rtol = RTOL_EXACT if rtol is None else rtol
    atol = 0.0 if atol is None else atol
    return atol + rtol * np.maximum(np.abs(ref), scale)


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

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def disagreeing(self) -> list[str]:
        return sorted({m.engine for m in self.mismatches}, key=ALL_ENGINES.index)


def _allowed(name: str, kind: str, ref, scale, values, errors, rtol, atol):
    tol = tolerance(ref, scale, rtol, atol)
    if name == "finite":
        tol = tol + np.nan_to_num(errors[name][kind], nan=np.inf)
    return tol


def judge(values: dict[str, dict[str, np.ndarray]], errors: dict[str, dict[str, np.ndarray]],
          scales: dict[str, np.ndarray], rtol: float | None, atol: float | None,
          reference: str) -> Verdict:
    """Compare every engine with the reference at one point.

    ``values[engine][kind]`` are arrays ("jacobian" (m, n), "hessian" (m, n, n));
    ``errors["finite"][kind]`` the finite-difference error estimates; ``scales[kind]``
    the rounding scale per entry.
    """
    verdict = Verdict(reference)
    for name, kinds in values.items():
        worst = 0.0
        for kind, val in kinds.items():
            ref = values[reference][kind]
            allowed = _allowed(name, kind, ref, scales[kind], values, errors, rtol, atol)
            rel = relative_error(val, ref, scales[kind])
            worst = max(worst, float(np.max(rel, initial=0.0)))
            if name == reference:
                continue
            bad = ~(np.abs(val - ref) <= allowed)
            for idx in zip(*np.nonzero(bad), strict=True):
                verdict.mismatches.append(Mismatch(
                    name, kind, tuple(int(i) for i in idx), float(val[idx]), float(ref[idx]),
                    float(allowed[idx]), float(rel[idx])))
        verdict.errors[name] = worst
    return verdict


def choose_reference(values, errors, scales, rtol, atol) -> str:
    """Symbolic, unless it alone contradicts finite differences and an exact engine agrees."""
    exact = [e for e in EXACT if e in values]
    first = exact[0]
    if "finite" not in values or len(exact) < 2:
        return first
    if judge(_pick(values, first, "finite"), errors, scales, rtol, atol, first).ok:
        return first
    for other in exact[1:]:
        if judge(_pick(values, other, "finite"), errors, scales, rtol, atol, other).ok:
            return other
    return first


def _pick(values, a, b):
    return {a: values[a], b: values[b]}
