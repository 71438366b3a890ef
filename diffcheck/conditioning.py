"""How far float64 can be trusted at a point, and what the engines are compared with there.

* **Bounds.** A running-error bound (:mod:`diffcheck.engines.rounding`) of f and of the
  symbolic derivative formulas evaluated in float64: ``eps * bound`` bounds the rounding of
  each entry. Where it exceeds the exact tolerance (float64 loses about 7 of its 16 digits:
  a small difference of large terms), the point is **ill-conditioned**.
* **Extended precision.** Forward mode runs again in ``np.longdouble`` at every point
  (for all but huge expressions): the change is its own float64 rounding, which the
  formulas' bound cannot see when SymPy arranges the formulas differently from f. A change
  above the tolerance flags the point too; at flagged points every float64 engine reruns
  and its change joins its rounding bar.
  A wrong rule gives the same wrong value at any precision: that part of a bar cannot hide
  it.
* **50 digits.** At flagged points (and where a float64 value is zero or infinite with a
  nonzero bound: a total cancellation, an overflow on the way) the formulas are evaluated
  with 50+ digits (:func:`~diffcheck.engines.symbolic.precise_values`): the symbolic
  column shows the true value there.
* **Overflow.** f or a derivative beyond float64's range at a point is bad input.

>>> import diffcheck as dc
>>> p = dc.check_expression("(exp(x) - 1 - x)/x**2", at="x=1e-5").points[0]
>>> p.ill_conditioned, round(float(p.values["symbolic"]["jacobian"][0, 0]), 9)
(True, 0.1666675)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import sympy

from . import compare
from .engines import ad, symbolic
from .engines.rounding import rounding_bound
from .errors import DomainError

if TYPE_CHECKING:
    from .check import Function

ROUNDING_BAR = 4.0  #: factor on eps times a rounding bound (or change): a float64 engine's bar
SAFETY_ROUNDING = 2.0  #: the same for the part of a finite-difference bar it adds
DIGITS = 16  #: decimal digits of float64
SMOOTH_WORK = 20_000  #: (formula nodes x variables) up to which the smooth part of float64's
#: perturbation is bounded per variable (see with_rounding)
RERUN_WORK = 200_000  #: (Program nodes x variables) up to which forward mode reruns in
#: extended precision at every point (beyond, only at the points the bounds flag)
EPS = float(np.finfo(float).eps)


@dataclass
class Conditioning:
    """How far float64 can be trusted at each point, and the values to compare with.

    ``bound[kind]``: running-error bounds (units of eps) of f ("value", (P, m)) and of the
    symbolic derivative formulas evaluated in float64 ("jacobian", "hessian"; all
    variables); ``lost``: the digits float64 loses (the most over f and every entry whose
    true value is not 0 and whose bound is finite, or seen lost); ``ill``: where it loses
    more than the exact engines' tolerance; ``value``, ``jacobian``, ``hessian``: the
    values, at 50+ digits (rounded to float64) where ``precise``, else in float64 (which has
    the digits that matter there); ``extra[engine][kind]``: each float64 engine's change in
    extended precision, at ill-conditioned points.
    """

    bound: dict[str, np.ndarray]
    lost: np.ndarray
    ill: np.ndarray
    value: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray | None
    precise: np.ndarray  # (P,) bool
    exact: np.ndarray | None  # the mpmath values (P, entries; None where not computed)
    inexact: set[float] = field(default_factory=set)  # constants float64 rounds
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def rounding(self, p: int, wrt: int) -> compare.Rounding:
        """Rounding bars of the float64 engines' entries at point ``p`` (``wrt`` columns)."""
        cols = list(range(wrt))
        finite = {k: np.nan_to_num(v[p], posinf=0.0) for k, v in self.bound.items()}
        bars = {"jacobian": ROUNDING_BAR * EPS * finite["jacobian"][..., cols]}
        if self.hessian is not None:  # (a bound that overflowed gives no bar of its own)
            bars["hessian"] = ROUNDING_BAR * EPS * finite["hessian"][..., cols, :][..., cols]
        extra = {e: {k: ROUNDING_BAR * v[p] for k, v in kinds.items()}
                 for e, kinds in self.extra.items()}
        return compare.Rounding(bars, ("symbolic",) if self.precise[p] else (), extra)


def conditioning(fn: Function, sym: Any, X: np.ndarray, hessian: bool) -> Conditioning:
    """Running-error bounds of f and of the derivative formulas, the digits float64 loses,
    and the values at high precision where float64 is not enough."""
    P, m, n = X.shape[0], len(fn.exprs), len(fn.variables)
    inexact = inexact_constants(sym, fn.exprs)
    value64, bound_f = rounding_bound(fn.program, X, constants=inexact, with_values=True)
    d64, bound_d = rounding_bound(sym.program, X, constants=inexact, with_values=True) if n \
        else (np.zeros((P, 0)), np.zeros((P, 0)))
    flat64, bound = np.concatenate([value64, d64], 1), np.concatenate([bound_f, bound_d], 1)
    true, ill, seen, exact = _with_digits(fn, sym, X, flat64, bound)
    known = np.isfinite(true) & (true != 0) & np.isfinite(bound)
    lost = np.max(np.where(known, _lost(bound, true), 0.0), axis=1, initial=0.0)
    kinds = {"value": bound_f, "jacobian": bound_d[:, :m * n].reshape(P, m, n)}
    if hessian:
        kinds["hessian"] = bound_d[:, m * n:].reshape(P, m, n, n)
    precise = _wanted(flat64, bound) if exact is not None else np.zeros(P, bool)
    return Conditioning(kinds, np.maximum(lost, np.where(seen, DIGITS, 0.0)), ill, true[:, :m],
                        true[:, m:m + m * n].reshape(P, m, n),
                        true[:, m + m * n:].reshape(P, m, n, n) if hessian else None,
                        precise, exact, inexact)


def _wanted(flat64: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Points whose formulas get 50+ digits: ill-conditioned by the bounds, or a float64
    zero with a rounding bound (a total cancellation?), or a bound or value that overflowed
    (an intermediate beyond float64 may hide anything)."""
    vanished = np.any((flat64 == 0) & (bound > 0) & np.isfinite(bound), axis=1)
    return _ill(bound, flat64) | vanished | np.any(~np.isfinite(flat64) | ~np.isfinite(bound),
                                                   axis=1)


def _with_digits(fn: Function, sym: Any, X: np.ndarray, flat64: np.ndarray,
                 bound: np.ndarray):
    """``(true, ill, seen, exact)``: the values (50+ digits where wanted), where float64 is
    not to be trusted, where it was seen off the 50 digits, and the mpmath values."""
    P = X.shape[0]
    ill, want = _ill(bound, flat64), _wanted(flat64, bound)
    true, seen, exact = flat64.copy(), np.zeros(P, bool), None
    if np.any(want):
        digits = symbolic.PRECISE_DIGITS + np.clip(np.max(_lost(bound, flat64), axis=1,
                                                          initial=0.0) - 20, 0, 250)
        got = symbolic.precise_values(flat(fn.exprs, sym), fn.variables, X[want],
                                      digits=digits[want].astype(int))
        if got is not None:
            true[want] = [[float(v) for v in row] for row in got]
            with np.errstate(all="ignore"):  # float64 observably off the digits: ill too
                off = np.isfinite(true[want]) & ~(np.abs(flat64[want] - true[want]) <=
                                                  compare.RTOL_EXACT * np.abs(true[want]) +
                                                  compare.SUBNORMAL)
            seen[want] = np.any(off, axis=1)
            ill[want] = _ill(bound[want], true[want]) | seen[want]
            exact = np.full(true.shape, None, dtype=object)
            exact[want] = got
    return true, ill, seen, exact


def _ill(bound: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Points where float64 may lose more than the exact engines' tolerance on an entry
    (entries that are 0, or whose bound overflowed on the way, say nothing)."""
    known = np.isfinite(value) & (value != 0) & np.isfinite(bound)
    with np.errstate(all="ignore"):
        return np.any(known & (EPS * bound > compare.RTOL_EXACT * np.abs(value)), axis=1)


def _lost(bound: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Decimal digits float64 loses: log10 of the rounding bound over |value| (0..16)."""
    with np.errstate(all="ignore"):
        ratio = bound / np.abs(value)
    return np.clip(np.nan_to_num(np.log10(np.maximum(ratio, 1.0)), nan=DIGITS,
                                 posinf=DIGITS), 0.0, DIGITS)


def flat(exprs: list[Any], sym: Any) -> list[Any]:
    """f's expressions, then the Jacobian's and the Hessians' formulas, flattened."""
    out = list(exprs) + [e for row in sym.jacobian for e in row]
    if sym.hessian is not None:
        out += [e for h in sym.hessian for row in h for e in row]
    return out


def inexact_constants(sym: Any, exprs: list[Any]) -> set[float]:
    """Float values of the constants float64 rounds (1/3, pi; not 0.1: a decimal is the
    binary number the parser stores). One walk over the formulas' shared DAG."""
    out: set[float] = set()
    seen: set[int] = set()
    stack = flat(exprs, sym)
    while stack:
        a = stack.pop()
        if id(a) in seen:
            continue
        seen.add(id(a))
        if isinstance(a, sympy.NumberSymbol) or (a.is_Rational and not a.is_Integer and
                                                 int(a.q) & (int(a.q) - 1)):
            out.add(float(a))
        stack.extend(a.args)
    return out


# -- the engines' own rounding ----------------------------------------------------------------
def recondition(fn: Function, X: np.ndarray, names: list[str], hessian: bool, sym: Any,
                values: dict, cond: Conditioning) -> None:
    """Forward mode again in extended precision at every point; where it moves by more than
    the exact tolerance the point is ill-conditioned (its values get their 50 digits); at
    every ill-conditioned point each float64 engine's change joins its bar (``cond.extra``)."""
    if not fn.variables or np.finfo(np.longdouble).eps >= EPS:
        return
    cols = list(range(len(fn.wrt)))
    if len(fn.program.nodes) * len(fn.variables) > RERUN_WORK:  # huge: at the bounds' word
        if np.any(cond.ill):
            _bars(fn, X, names, hessian, sym, values, cond, None, cols)
        return
    base = values.get("forward") or engine_values(fn, X, "forward", hessian, cols)
    change = _change(base, engine_values(fn, X.astype(np.longdouble), "forward", hessian,
                                         cols))
    rel = _relative(change, cond, cols)
    newly = (rel > compare.RTOL_EXACT) & ~cond.ill
    cond.lost = np.maximum(cond.lost, np.clip(np.log10(np.maximum(rel, 1e-300) / EPS), 0,
                                              DIGITS))
    if np.any(newly):
        _precise_at(fn, sym, X, newly, cond, values, cols)
    cond.ill = cond.ill | newly
    if np.any(cond.ill):
        _bars(fn, X, names, hessian, sym, values, cond, change, cols)


def _relative(change: dict[str, np.ndarray], cond: Conditioning, cols: list[int]
              ) -> np.ndarray:
    """Per point, the largest change relative to the entry's value."""
    true = {"jacobian": cond.jacobian[..., cols]}
    if "hessian" in change:
        true["hessian"] = cond.hessian[..., cols, :][..., cols]
    P = cond.value.shape[0]
    with np.errstate(all="ignore"):
        rel = [np.where(np.isfinite(change[k]) & (true[k] != 0),
                        change[k] / np.abs(true[k]), 0.0).reshape(P, -1) for k in change]
    return np.max(np.concatenate(rel, axis=1), axis=1, initial=0.0)


def _bars(fn: Function, X: np.ndarray, names: list[str], hessian: bool, sym: Any,
          values: dict, cond: Conditioning, change: dict[str, np.ndarray] | None,
          cols: list[int]) -> None:
    """Each float64 engine's change in extended precision, at the ill-conditioned points."""
    ill = np.nonzero(cond.ill)[0]
    cond.extra = {}
    if change is not None and "forward" in names:
        mask = cond.ill.reshape(-1, *(1,) * (change["jacobian"].ndim - 1))
        cond.extra["forward"] = {k: np.where(mask, v, 0.0) for k, v in change.items()}
    for name in ("reverse", "symbolic") if change is not None else ("forward", "reverse",
                                                                       "symbolic"):
        if name not in names or (name == "symbolic" and np.all(cond.precise[ill])):
            continue
        got = engine_values(fn, X[ill].astype(np.longdouble), name, hessian, cols, sym)
        cond.extra[name] = {}
        for k in got:
            full = np.zeros(values[name][k].shape)
            full[ill] = _change({k: values[name][k][ill]}, got)[k]
            cond.extra[name][k] = full


def engine_values(fn: Function, X: np.ndarray, name: str, hessian: bool, cols: list[int],
                  sym: Any = None) -> dict[str, np.ndarray]:
    """One engine's Jacobians (and Hessians) at points ``X`` of any float dtype."""
    if name == "symbolic":
        J, H = sym.evaluate(X)
    else:
        jac, hess = {"forward": (ad.jacobian_forward, ad.hessian_forward),
                     "reverse": (ad.jacobian_reverse, ad.hessian_reverse)}[name]
        J = jac(fn.program, X)
        H = hess(fn.program, X) if hessian else None
    out = {"jacobian": np.asarray(J, dtype=float)[..., cols]}
    if hessian:
        out["hessian"] = np.asarray(H, dtype=float)[..., cols, :][..., cols]
    return out


def _change(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """|float64 - extended| per entry: infinite where float64 is not finite but the wider
    exponent range is (an intermediate overflowed or underflowed to 0 on the way: float64
    says nothing about that entry); 0 where neither is finite."""
    with np.errstate(all="ignore"):
        return {k: np.where(np.isfinite(a[k]) | ~np.isfinite(b[k]),
                            np.nan_to_num(np.abs(a[k] - b[k]), nan=0.0, posinf=0.0), np.inf)
                for k in a}


def _precise_at(fn: Function, sym: Any, X: np.ndarray, where: np.ndarray, cond: Conditioning,
                values: dict, cols: list[int]) -> None:
    """The 50-digit values at more points (those found ill-conditioned late)."""
    m, n = len(fn.exprs), len(fn.variables)
    exact = symbolic.precise_values(flat(fn.exprs, sym), fn.variables, X[where])
    if exact is None:
        return
    true = np.array([[float(v) for v in row] for row in exact], dtype=float)
    cond.value[where] = true[:, :m]
    cond.jacobian[where] = true[:, m:m + m * n].reshape(-1, m, n)
    if cond.hessian is not None:
        cond.hessian[where] = true[:, m + m * n:].reshape(-1, m, n, n)
    cond.precise = cond.precise | where
    if "symbolic" in values:
        values["symbolic"]["jacobian"][where] = cond.jacobian[where][..., cols]
        if cond.hessian is not None:
            values["symbolic"]["hessian"][where] = cond.hessian[where][..., cols, :][..., cols]


# -- what finite differences cannot see -----------------------------------------------------
def with_rounding(errs: dict[str, np.ndarray], fn: Function, sym: Any, X: np.ndarray,
                  cond: Conditioning, cols: list[int]) -> dict[str, np.ndarray]:
    """Finite differences measure the derivative of f as float64 evaluates it. Where an
    intermediate that does not vary along the step is rounded (asin(x - 1.3) * y,
    differentiated in y), f differs from its float64 self smoothly along the step: no noise
    to them, yet their estimate is off by it. Its size is the running-error bound of the
    derivative formula counting only the operations that do not depend on the step's
    variable (both variables of a Hessian entry): added to their error. Skipped for
    formulas too large (one bound per variable)."""
    P, m, n = X.shape[0], len(fn.exprs), len(fn.variables)
    if not cols or len(sym.program.nodes) * n > SMOOTH_WORK:
        return errs
    smooth = [np.nan_to_num(rounding_bound(sym.program, X, constants=cond.inexact, varying=i),
                            posinf=0.0) for i in cols]
    jac = np.stack([s[:, :m * n].reshape(P, m, n)[..., i]
                    for i, s in zip(cols, smooth, strict=True)], -1)
    out = {"jacobian": errs["jacobian"] + SAFETY_ROUNDING * EPS * jac}
    if "hessian" in errs:  # entry (a, b): what varies along neither (at most either bound)
        H = [s[:, m * n:].reshape(P, m, n, n)[..., cols, :][..., cols] for s in smooth]
        both = np.zeros(errs["hessian"].shape)
        for a in range(len(cols)):
            for b in range(len(cols)):
                both[..., a, b] = np.minimum(H[a][..., a, b], H[b][..., a, b])
        out["hessian"] = errs["hessian"] + SAFETY_ROUNDING * EPS * both
    return out


# -- overflow ---------------------------------------------------------------------------------
def require_representable(fn: Function, X: np.ndarray, cond: Conditioning) -> None:
    """f and the derivatives checked must fit in float64 at every point: one that overflows
    is bad input (a DomainError naming it), never a comparison of infinities."""
    for p in range(X.shape[0]):
        for k, name in _entries(fn, cond.hessian is not None):
            if np.isinf(_flat_values(cond)[p, k]):
                _overflow(fn, X[p], name, cond.exact[p, k] if cond.exact is not None else None,
                          cond.value[p])


def _entries(fn: Function, hessian: bool) -> list[tuple[int, str]]:
    """(column in the flat values, name) of f's outputs and the checked entries."""
    m, n, nw = len(fn.exprs), len(fn.variables), len(fn.wrt)
    names = [f"f{j + 1}" if fn.vector else "f" for j in range(m)]
    out = [(k, names[k]) for k in range(m)]
    out += [(m + j * n + i, f"d{names[j]}/d{fn.wrt[i]}") for j in range(m) for i in range(nw)]
    if hessian:
        out += [(m + m * n + (j * n + a) * n + b, f"d2{names[j]}/d{fn.wrt[a]}d{fn.wrt[b]}")
                for j in range(m) for a in range(nw) for b in range(a, nw)]
    return out


def _flat_values(cond: Conditioning) -> np.ndarray:
    P = cond.value.shape[0]
    parts = [cond.value, cond.jacobian.reshape(P, -1)]
    if cond.hessian is not None:
        parts.append(cond.hessian.reshape(P, -1))
    return np.concatenate(parts, axis=1)


def _overflow(fn: Function, x: np.ndarray, name: str, exact: Any, value: np.ndarray) -> None:
    where = ", ".join(f"{v}={val:.12g}" for v, val in zip(fn.variables, x, strict=True))
    size = mpmath.nstr(exact, 3) if exact is not None else "±inf in float64"
    at_f = "" if name.startswith("f") or not np.all(np.isfinite(value)) else \
        f" (where f = {', '.join(f'{v:.12g}' for v in value)})"
    raise DomainError(
        f"{name} = {size} overflows float64 at {where}{at_f}: a value that large cannot be "
        "checked in float64 (it is infinite to every float64 engine). Choose a point where f "
        "and its derivatives stay below 1.8e308 in magnitude.")
