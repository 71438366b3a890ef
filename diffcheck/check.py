"""Checking the derivatives of an expression with every engine.

>>> import diffcheck as dc
>>> report = dc.check_expression("(x1 + w1)**2 * (x1*w1 + x2*w2)", wrt="w1,w2",
...                              at="x1=1,w1=2,x2=3,w2=4")
>>> report.ok, report.to_dict()["points"][0]["engines"]["reverse"]["gradient"]
(True, [93.0, 27.0])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy

from . import compare
from .engines import ad, finite, symbolic
from .engines.rounding import rounding_bound
from .errors import DomainError, UsageError
from .parse import natural_key, parse, variables_of
from .program import Program
from .report import PointResult, Report

MAX_POINTS = 1000
POINTWISE_WORK = 20_000  #: (Program nodes x variables) up to which finite differences take
#: f's rounding bound at every point they evaluate
TINY = np.finfo(float).tiny


@dataclass
class Function:
    """A parsed expression (or list of them) ready for the engines."""

    text: str
    exprs: list[Any]
    vector: bool
    variables: list[str]  # all inputs, in order
    wrt: list[str]  # the variables differentiated, in order
    program: Program

    @classmethod
    def from_text(cls, expr: Any, wrt: Any = None) -> Function:
        """Parse text (or accept SymPy expressions) and compile the Program."""
        if isinstance(expr, str):
            parsed = parse(expr)
            text = expr.strip()
        else:
            parsed = expr
            text = str(expr)
        vector = isinstance(parsed, list)
        exprs = list(parsed) if vector else [parsed]
        exprs = [sympy.sympify(e) if isinstance(e, int | float) else e for e in exprs]
        found = variables_of(exprs)
        wrt_list = found
        if wrt is not None:
            wrt_list = _names(wrt)
            _check_names(wrt_list)
        variables = wrt_list + [v for v in found if v not in wrt_list]
        program = Program.from_sympy(exprs, variables)
        return cls(text, exprs, vector, variables, wrt_list, program)

    def batch(self, X: np.ndarray) -> np.ndarray:
        """Values ``(Q, m)`` at points ``(Q, n)``."""
        with np.errstate(all="ignore"):
            outs = self.program.evaluate([X[:, i] for i in range(X.shape[1])])
        return np.stack([np.broadcast_to(np.asarray(o, dtype=float), (X.shape[0],))
                         for o in outs], axis=1)


def _names(wrt: Any) -> list[str]:
    if isinstance(wrt, str):
        return [w.strip() for w in wrt.split(",") if w.strip()]
    return [str(w) for w in wrt]


def _check_names(names: list[str]) -> None:
    if not names:
        raise UsageError("--wrt names no variable; give a comma-separated list like x,y")
    for n in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", n):
            raise UsageError(f"'{n}' is not a variable name (use letters, digits and _)")
    if len(set(names)) != len(names):
        raise UsageError(f"a variable is named twice in {', '.join(names)}")


# -- points ---------------------------------------------------------------------------------
def parse_at(at: Any, variables: list[str]) -> list[dict[str, float]]:
    """Points given by the user: "x=1,y=2", a mapping, a sequence of numbers, or a list."""
    if isinstance(at, str):
        return [_parse_assignments(at)]
    if isinstance(at, Mapping):
        return [{str(k): _number(v, str(k)) for k, v in at.items()}]
    if isinstance(at, Sequence) and at and all(isinstance(p, Mapping | str) for p in at):
        return [q for p in at for q in parse_at(p, variables)]
    values = np.asarray(at, dtype=float).ravel() if not isinstance(at, str) else None
    if values is None or values.size != len(variables):
        raise UsageError(f"the point has {0 if values is None else values.size} values but "
                         f"there are {len(variables)} variables ({', '.join(variables)})")
    return [dict(zip(variables, map(float, values), strict=True))]


def _parse_assignments(text: str) -> dict[str, float]:
    point: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, eq, val = part.partition("=")
        name = name.strip()
        if not eq or not name:
            raise UsageError(f"cannot read '{part.strip()}' in --at '{text}': write "
                             "name=value pairs separated by commas, e.g. --at x=1,y=2")
        if name in point:
            raise UsageError(f"--at gives {name} twice")
        point[name] = _number(val.strip(), name)
    return point


def _number(v: Any, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise UsageError(f"value of {name} is not a number: {v!r}") from None
    if not math.isfinite(x):
        raise UsageError(f"value of {name} is {v}; points must be finite numbers")
    return x


def user_points(fn: Function, at: Any) -> np.ndarray:
    pts = parse_at(at, fn.variables)
    rows = []
    for p in pts:
        extra = sorted(set(p) - set(fn.variables), key=natural_key)
        missing = [v for v in fn.variables if v not in p]
        if extra:
            raise UsageError(f"--at names {', '.join(extra)}, which "
                             f"{'is not a variable' if len(extra) == 1 else 'are not variables'}"
                             f" of the expression (variables: {', '.join(fn.variables)})")
        if missing:
            raise UsageError(f"--at gives no value for {', '.join(missing)}; every variable "
                             f"needs one (variables: {', '.join(fn.variables)})")
        rows.append([p[v] for v in fn.variables])
    X = np.array(rows, dtype=float).reshape(len(rows), len(fn.variables))
    for x in X:
        _require_domain(fn, x)
    return X


def _require_domain(fn: Function, x: np.ndarray) -> None:
    bad = fn.program.first_violation(list(x))
    if bad is None:
        return
    node, need = bad
    where = ", ".join(f"{v}={_fmt(val)}" for v, val in zip(fn.variables, x, strict=True))
    what = str(node.expr) if node.expr is not None else node.op
    raise DomainError(
        f"{what} is undefined (or not differentiable) at {where}: {node.op} needs {need}. "
        "Choose a point inside the domain, or omit --at to let diffcheck draw points "
        "where the function is defined.")


def _fmt(v: float) -> str:
    return f"{v:.12g}"


_BOXES = [(-2.0, 2.0), (0.1, 3.0), (-0.9, 0.9), (0.1, 0.9), (1.1, 4.0), (-5.0, 5.0)]


def random_points(fn: Function, count: int, seed: int) -> np.ndarray:
    """``count`` points where every node is defined, drawn reproducibly from ``seed``."""
    n = len(fn.variables)
    if n == 0:
        return np.zeros((1, 0))
    rng = np.random.default_rng(seed)
    found: list[np.ndarray] = []
    for attempt in range(8):
        C = _candidates(rng, attempt, n)
        with np.errstate(all="ignore"):
            ok = fn.program.check_domain([C[:, i] for i in range(n)])
        found.extend(C[np.broadcast_to(ok, (C.shape[0],))])
        if len(found) >= count:
            return np.array(found[:count])
    why = ""
    bad = fn.program.first_violation(list(C[0]))
    if bad is not None:
        node, need = bad
        why = f" (e.g. {node.expr if node.expr is not None else node.op} needs {need})"
    raise DomainError(
        f"could not find {count} points where {fn.text} and its derivatives are defined "
        f"(found {len(found)}){why}; give points with --at.")


def _candidates(rng: np.random.Generator, attempt: int, n: int) -> np.ndarray:
    size = 512
    if attempt == 0:
        C = rng.uniform(-2.0, 2.0, size=(size, n))
    else:  # each coordinate from a randomly chosen box
        which = rng.integers(0, len(_BOXES), size=(size, n))
        lo = np.array([b[0] for b in _BOXES])[which]
        hi = np.array([b[1] for b in _BOXES])[which]
        C = rng.uniform(lo, hi)
    return np.round(C, 4)


# -- the check ------------------------------------------------------------------------------
def _engines(engines: Any) -> list[str]:
    if engines is None:
        return list(compare.DEFAULT_ENGINES)
    names = _names(engines) if isinstance(engines, str) else list(engines)
    if names == ["all"]:
        return list(compare.ALL_ENGINES)
    unknown = [e for e in names if e not in compare.ALL_ENGINES]
    if unknown:
        raise UsageError(f"unknown engine {', '.join(unknown)}; choose from "
                         f"{', '.join(compare.ALL_ENGINES)} or 'all'")
    if not any(e in compare.EXACT for e in names) or len(set(names)) < 2:
        raise UsageError("give at least two engines, one of them exact (symbolic, forward, "
                         "reverse or jax), so there is something to compare")
    return sorted(set(names), key=compare.ALL_ENGINES.index)


def _validate(points: Any, seed: Any, rtol: Any, atol: Any) -> None:
    if not isinstance(points, int | np.integer) or isinstance(points, bool) or \
            not 1 <= points <= MAX_POINTS:
        raise UsageError(f"points must be a whole number from 1 to {MAX_POINTS}, got {points!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise UsageError(f"{name} must be a finite number >= 0, got {v!r}")


def run_engines(fn: Function, X: np.ndarray, names: list[str], hessian: bool, *,
                sym: Any = None, cond: Conditioning | None = None):
    """Each engine's Jacobians (and Hessians) at the points, plus finite-difference errors.

    Returns ``(values, errors, sym)`` where ``values[engine][kind]`` has shape
    ``(P, m, n[, n])``, restricted to the ``wrt`` variables. With ``cond`` (see
    :func:`conditioning`), the symbolic engine's values are its high-precision ones.
    """
    cols = list(range(len(fn.wrt)))
    values: dict[str, dict[str, np.ndarray]] = {}
    errors: dict[str, dict[str, np.ndarray]] = {}
    if sym is None and "symbolic" in names:
        sym = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    if not fn.variables:  # a constant: every derivative is an empty array
        P, m = X.shape[0], len(fn.exprs)
        empty = {"jacobian": np.zeros((P, m, 0))}
        if hessian:
            empty["hessian"] = np.zeros((P, m, 0, 0))
        errs = {"finite": dict(empty)} if "finite" in names else {}
        return {name: dict(empty) for name in names}, errs, sym
    for name in names:
        if name == "symbolic":
            J, H = (cond.jacobian, cond.hessian) if cond is not None else sym.evaluate(X)
        elif name == "forward":
            J = ad.jacobian_forward(fn.program, X)
            H = ad.hessian_forward(fn.program, X) if hessian else None
        elif name == "reverse":
            J = ad.jacobian_reverse(fn.program, X)
            H = ad.hessian_reverse(fn.program, X) if hessian else None
        elif name == "jax":
            from .engines import jaxref

            J, H = jaxref.derivatives(fn.program, X, hessian=hessian)
        else:
            same = cond is not None and not cond.inexact  # (then both bounds are one)
            J, H, errors["finite"] = _finite(fn, X, hessian,
                                             cond.bound["value"] if same else None)
            if cond is not None:
                errors["finite"] = _with_rounding(errors["finite"], fn, sym, X, cond, cols)
        values[name] = {"jacobian": J[..., cols]}
        if hessian:
            values[name]["hessian"] = H[..., cols, :][..., cols]
    return values, errors, sym


def _finite(fn: Function, X: np.ndarray, hessian: bool, known: np.ndarray | None = None):
    """Finite differences at every point; ``known`` (P, m): f's rounding bound at the
    points, when already computed."""
    def fscale(P: np.ndarray) -> np.ndarray:
        if known is not None and P.shape[0] == 1:
            hit = np.nonzero(np.all(X == P[0], axis=1))[0]
            if hit.size:
                return known[hit[:1]]
        return rounding_bound(fn.program, P, constants=False)

    # f's rounding bound at every point of the ladders where that is cheap (the expressions
    # people type); for huge ones only where x is ill-conditioned (see finite._Values)
    opts = {"fscale": fscale, "one_sided": True,
            "pointwise": len(fn.program.nodes) * max(1, X.shape[1]) <= POINTWISE_WORK}

    Js, Je, Hs, He = [], [], [], []
    for x in X:
        J, E = finite.jacobian(fn.batch, x, **opts)
        Js.append(J)
        Je.append(E)
        if hessian:
            H, HE = finite.hessian(fn.batch, x, **opts)
            Hs.append(H)
            He.append(HE)
    cols = list(range(len(fn.wrt)))
    errs = {"jacobian": np.array(Je)[..., cols]}
    if hessian:
        errs["hessian"] = np.array(He)[..., cols, :][..., cols]
    return np.array(Js), np.array(Hs) if hessian else None, errs


def _with_rounding(errs: dict[str, np.ndarray], fn: Function, sym: Any, X: np.ndarray,
                   cond: Conditioning, cols: list[int]) -> dict[str, np.ndarray]:
    """Finite differences measure the derivative of f as float64 evaluates it. Where an
    intermediate that does not vary along the step is rounded (asin(x - 1.3) * y,
    differentiated in y), f differs from its float64 self smoothly along the step: no noise
    to them, yet their estimate is off by it. Its size is the running-error bound of the
    derivative formula counting only the operations that do not depend on the step's
    variable (both variables of a Hessian entry): added to their error. Skipped for
    formulas too large (one bound per variable)."""
    P, m = X.shape[0], len(fn.exprs)
    n = len(fn.variables)
    if not cols or len(sym.program.nodes) * n > POINTWISE_WORK:
        return errs
    eps = np.finfo(float).eps
    inexact = _inexact_constants(sym, fn.exprs)
    smooth = [np.nan_to_num(rounding_bound(sym.program, X, constants=inexact, varying=i),
                            posinf=0.0) for i in cols]
    jac = np.stack([s_[:, :m * n].reshape(P, m, n)[..., i] for i, s_ in zip(cols, smooth,
                                                                         strict=True)], -1)
    out = {"jacobian": errs["jacobian"] + SAFETY_ROUNDING * eps * jac}
    if "hessian" in errs:  # entry (a, b): what varies along neither (at most either bound)
        H = [s_[:, m * n:].reshape(P, m, n, n)[..., cols, :][..., cols] for s_ in smooth]
        both = np.zeros(errs["hessian"].shape)
        for a in range(len(cols)):
            for b in range(len(cols)):
                both[..., a, b] = np.minimum(H[a][..., a, b], H[b][..., a, b])
        out["hessian"] = errs["hessian"] + SAFETY_ROUNDING * eps * both
    return out


def _scales(fn: Function, X: np.ndarray, values, hessian: bool) -> dict[str, np.ndarray]:
    """Rounding scale per entry: path sums for first derivatives; for second derivatives
    the largest of the entry's row and column and ``S_i * S_j / F`` (first-derivative
    path sums over f's rounding scale, which has the units of a second derivative)."""
    cols = list(range(len(fn.wrt)))
    S = ad.jacobian_reverse(fn.program, X, absolute=True)[..., cols]
    scales = {"jacobian": S}
    if hessian:  # (an entry finite differences could not resolve is NaN: left out)
        every = np.abs(np.stack([v["hessian"] for v in values.values()]))
        ref = np.max(np.where(np.isfinite(every), every, 0.0), axis=0)
        scales["hessian"] = hessian_scale(ref, S, ad.rounding_scale(fn.program, X))
    return scales


def hessian_scale(H: np.ndarray, S: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Scale of Hessian entries ``(..., m, n, n)`` from |H|, path sums S ``(..., m, n)`` and
    f's rounding scale F ``(..., m)``."""
    row = np.max(H, axis=-1, keepdims=True)
    col = np.max(H, axis=-2, keepdims=True)
    with np.errstate(all="ignore"):
        cross = S[..., :, None] * S[..., None, :] / np.maximum(F, TINY)[..., None, None]
    cross = np.where(np.isfinite(cross), cross, 0.0)
    return np.maximum(np.maximum(H, np.maximum(row, col)), cross)


def check_expression(expr: Any, at: Any = None, *, wrt: Any = None, hessian: bool = False,
                     engines: Any = None, points: int = 3, seed: int = 0,
                     rtol: float | None = None, atol: float | None = None) -> Report:
    """Check the gradient (or Jacobian, and optionally Hessian) of an expression.

    Args:
        expr: expression text (``"x**2*y + (x+y)**2"``), a bracketed list for a vector
            function, or SymPy expression(s).
        at: the point(s): ``"x=1,y=2"``, ``{"x": 1, "y": 2}``, a list of those, or values
            in variable order. Without it, ``points`` random points where f is defined.
        wrt: variables to differentiate with respect to, in order (default: all, sorted
            by name with digits compared as numbers).
        hessian: also check second derivatives.
        engines: names among symbolic, forward, reverse, finite, jax, or "all".
        points, seed: how many random points, and the seed that draws them.
        rtol, atol: override the tolerance model for the exact engines.

    Returns:
        A :class:`~diffcheck.report.Report`; ``report.ok`` is True when every engine agrees
        at every point.

    Raises:
        DiffcheckError: bad text (ParseError), a point outside the domain (DomainError),
        a bad option (UsageError).

    >>> check_expression("3*x**2 + 2*x*y + 3*y**2", at="x=1,y=1", hessian=True).ok
    True
    """
    names = _engines(engines)
    _validate(points, seed, rtol, atol)
    fn = Function.from_text(expr, wrt)
    X = user_points(fn, at) if at is not None else random_points(fn, points, seed)
    sym = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    cond = conditioning(fn, sym, X, hessian)
    _require_representable(fn, X, cond)
    with np.errstate(all="ignore"):
        values, errors, sym = run_engines(fn, X, names, hessian, sym=sym, cond=cond)
        scales = _scales(fn, X, values, hessian)
        _recondition(fn, X, names, hessian, sym, values, cond)
    report = Report(fn.text, list(fn.wrt), fn.vector, _formulas(fn, sym, hessian), names)
    for p in range(X.shape[0]):
        report.points.append(_point(fn, X[p], cond, p, values, errors, scales, rtol, atol))
    return report


def _point(fn: Function, x: np.ndarray, cond: Conditioning, p: int, values, errors, scales,
           rtol, atol) -> PointResult:
    """One point's verdict; at an ill-conditioned point the float64 engines carry their
    rounding bars (shown with their values, added to their tolerance)."""
    vals = {e: {k: v[p] for k, v in kinds.items()} for e, kinds in values.items()}
    errs = {e: {k: v[p] for k, v in kinds.items()} for e, kinds in errors.items()}
    scl = {k: v[p] for k, v in scales.items()}
    rounding = cond.rounding(p, fn) if cond.ill[p] else None
    ref = compare.choose_reference(vals, errs, scl, rtol, atol, rounding)
    verdict = compare.judge(vals, errs, scl, rtol, atol, ref, rounding=rounding)
    if rounding is not None:
        for e in vals:
            if e not in errs and e not in rounding.precise:
                errs[e] = {k: np.broadcast_to(rounding.bar(e, k), v.shape)
                           for k, v in vals[e].items()}
    at_p = dict(zip(fn.variables, map(float, x), strict=True))
    return PointResult(at_p, cond.value[p], vals, errs, verdict, bool(cond.ill[p]),
                       float(cond.lost[p]), bool(cond.precise[p]))


# -- conditioning ---------------------------------------------------------------------------
ROUNDING_BAR = 4.0  #: factor on eps times the running-error bound: a float64 engine's bar
SAFETY_ROUNDING = 2.0  #: the same for the part of a finite-difference bar it adds
DIGITS = 16  #: decimal digits of float64


@dataclass
class Conditioning:
    """How far float64 can be trusted at each point, and the high-precision values.

    ``bound[kind]``: running-error bounds (units of eps) of f ("value", (P, m)) and of the
    symbolic derivative formulas evaluated in float64 ("jacobian", "hessian"; all
    variables); ``lost``: the digits float64 loses (the most over f and every entry whose
    true value is not 0 and whose bound is finite); ``ill``: where it loses more than the
    exact engines' tolerance;
    ``value``, ``jacobian``, ``hessian``: the values, at 50+ digits (rounded to float64)
    where ``precise`` (the ill-conditioned points, when the formulas fit the budget), else
    in float64 (which has the digits that matter there).
    """

    bound: dict[str, np.ndarray]
    lost: np.ndarray
    ill: np.ndarray
    value: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray | None
    precise: np.ndarray  # (P,) bool: the values there have 50+ digits behind them
    exact: np.ndarray | None  # the mpmath values (P, entries; None where not computed)
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # _recondition
    inexact: set[float] = field(default_factory=set)  # constants float64 rounds

    def rounding(self, p: int, fn: Function) -> compare.Rounding:
        """Rounding bars of the float64 engines' entries at point ``p`` (wrt columns)."""
        cols = list(range(len(fn.wrt)))
        eps = np.finfo(float).eps
        finite = {k: np.nan_to_num(v[p], posinf=0.0) for k, v in self.bound.items()}
        bars = {"jacobian": ROUNDING_BAR * eps * finite["jacobian"][..., cols]}
        if self.hessian is not None:  # (a bound that overflowed gives no bar of its own)
            bars["hessian"] = ROUNDING_BAR * eps * finite["hessian"][..., cols, :][..., cols]
        extra = {e: {k: ROUNDING_BAR * v[p] for k, v in kinds.items()}
                 for e, kinds in self.extra.items()}
        return compare.Rounding(bars, ("symbolic",) if self.precise[p] else (), extra)


def conditioning(fn: Function, sym: Any, X: np.ndarray, hessian: bool) -> Conditioning:
    """Running-error bounds of f and of the derivative formulas, the digits float64 loses,
    and the values at high precision (enough digits to see through the loss, at least
    :data:`~diffcheck.engines.symbolic.PRECISE_DIGITS`; float64 where the formulas are too
    large for the budget)."""
    P, m, n = X.shape[0], len(fn.exprs), len(fn.variables)
    inexact = _inexact_constants(sym, fn.exprs)
    value64, bound_f = rounding_bound(fn.program, X, constants=inexact, with_values=True)
    d64, bound_d = rounding_bound(sym.program, X, constants=inexact, with_values=True) if n \
        else (np.zeros((P, 0)), np.zeros((P, 0)))
    flat64, bound = np.concatenate([value64, d64], axis=1), np.concatenate([bound_f, bound_d], 1)
    # at well-conditioned points float64 already has the digits that matter; elsewhere (and
    # where a value overflows float64, to say by how much) the formulas get 50+ digits
    ill = _ill(bound, flat64)
    # a float64 zero with a rounding bound may be a total cancellation, a bound that
    # overflowed (an intermediate beyond float64) may hide anything: ask the digits too
    vanished = np.any((flat64 == 0) & (bound > 0) & np.isfinite(bound), axis=1)
    want = ill | vanished | np.any(~np.isfinite(flat64) | ~np.isfinite(bound), axis=1)
    true, exact = flat64.copy(), None
    observed = np.zeros(P)
    if np.any(want):
        digits = symbolic.PRECISE_DIGITS + np.clip(np.max(_lost(bound, flat64), axis=1,
                                                          initial=0.0) - 20, 0, 250)
        exact = symbolic.precise_values(_flat(fn.exprs, sym), fn.variables, X[want],
                                        digits=digits[want].astype(int))
        if exact is not None:
            true[want] = [[float(v) for v in row] for row in exact]
            with np.errstate(all="ignore"):  # float64 observably off: ill too
                off = np.isfinite(true[want]) & ~(np.abs(flat64[want] - true[want]) <=
                                                  compare.RTOL_EXACT * np.abs(true[want]) +
                                                  compare.SUBNORMAL)
            ill[want] = _ill(bound[want], true[want]) | np.any(off, axis=1)
            seen = np.any(off, axis=1)  # what float64 observably lost counts as lost
            observed = np.zeros(P)
            observed[np.nonzero(want)[0][seen]] = DIGITS
    known = np.isfinite(true) & (true != 0) & np.isfinite(bound)
    lost = np.max(np.where(known, _lost(bound, true), 0.0), axis=1, initial=0.0)
    lost = np.maximum(lost, observed)
    J = true[:, m:m + m * n].reshape(P, m, n)
    H = true[:, m + m * n:].reshape(P, m, n, n) if hessian else None
    kinds = {"value": bound_f, "jacobian": bound_d[:, :m * n].reshape(P, m, n)}
    if hessian:
        kinds["hessian"] = bound_d[:, m * n:].reshape(P, m, n, n)
    full = None
    if exact is not None:
        full = np.full(true.shape, None, dtype=object)
        full[want] = exact
    return Conditioning(kinds, lost, ill, true[:, :m], J, H, want & (exact is not None),
                        full, inexact=inexact)


def _ill(bound: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Points where float64 may lose more than the exact engines' tolerance on an entry
    (entries that are 0, or whose bound overflowed on the way, say nothing)."""
    known = np.isfinite(value) & (value != 0) & np.isfinite(bound)
    with np.errstate(all="ignore"):
        return np.any(known & (np.finfo(float).eps * bound > compare.RTOL_EXACT *
                               np.abs(value)), axis=1)


def _recondition(fn: Function, X: np.ndarray, names: list[str], hessian: bool, sym: Any,
                 values: dict, cond: Conditioning) -> None:
    """Each float64 engine's own rounding: how much its values change when it runs again in
    extended precision (np.longdouble).

    Forward mode reruns at every point: where it changes by more than the exact tolerance,
    the point is ill-conditioned even if the formulas' bounds did not say so (the engines
    differentiate f's own float64 intermediates, ``acosh(fl(x + c))``, which SymPy's
    formulas may arrange differently), and its values get their 50 digits. At every
    ill-conditioned point each float64 engine's change joins its rounding bar: a wrong rule
    gives the same wrong value at any precision, so that part of the bar cannot hide it.
    """
    if not fn.variables or np.finfo(np.longdouble).eps >= np.finfo(float).eps:
        return
    cols = list(range(len(fn.wrt)))
    kinds = ["jacobian", "hessian"] if hessian else ["jacobian"]
    base = values.get("forward") or _engine_values(fn, X, "forward", hessian, cols)
    change = _change(base, _engine_values(fn, X.astype(np.longdouble), "forward", hessian,
                                          cols))
    true = {"jacobian": cond.jacobian[..., cols]}
    if hessian:
        true["hessian"] = cond.hessian[..., cols, :][..., cols]
    P = X.shape[0]
    with np.errstate(all="ignore"):
        rel = np.max(np.concatenate([np.where(np.isfinite(change[k]) & (true[k] != 0),
                                              change[k] / np.abs(true[k]), 0.0).reshape(P, -1)
                                     for k in kinds], axis=1), axis=1, initial=0.0)
    newly = (rel > compare.RTOL_EXACT) & ~cond.ill
    cond.lost = np.maximum(cond.lost, np.clip(np.log10(np.maximum(rel, 1e-300) /
                                                       np.finfo(float).eps), 0, DIGITS))
    if np.any(newly):
        _precise_at(fn, sym, X, newly, cond, values, cols, hessian)
    cond.ill = cond.ill | newly
    ill = np.nonzero(cond.ill)[0]
    if ill.size == 0:
        return
    cond.extra = {"forward": {k: np.where(cond.ill.reshape((P,) + (1,) * (v.ndim - 1)), v, 0.0)
                              for k, v in change.items()}} if "forward" in names else {}
    for name in ("reverse", "symbolic"):
        if name in names and not (name == "symbolic" and np.all(cond.precise[ill])):
            got = _engine_values(fn, X[ill].astype(np.longdouble), name, hessian, cols, sym)
            cond.extra[name] = {}
            for k in kinds:
                full = np.zeros(values[name][k].shape)
                full[ill] = _change({k: values[name][k][ill]}, got)[k]
                cond.extra[name][k] = full


def _engine_values(fn: Function, X: np.ndarray, name: str, hessian: bool, cols: list[int],
                   sym: Any = None) -> dict[str, np.ndarray]:
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
    return {k: np.nan_to_num(np.abs(a[k] - b[k]), nan=0.0, posinf=0.0) for k in a}


def _precise_at(fn: Function, sym: Any, X: np.ndarray, where: np.ndarray, cond: Conditioning,
                values: dict, cols: list[int], hessian: bool) -> None:
    """The 50-digit values at more points (those found ill-conditioned late)."""
    m, n = len(fn.exprs), len(fn.variables)
    exact = symbolic.precise_values(_flat(fn.exprs, sym), fn.variables, X[where])
    if exact is None:
        return
    true = np.array([[float(v) for v in row] for row in exact], dtype=float)
    cond.value[where] = true[:, :m]
    cond.jacobian[where] = true[:, m:m + m * n].reshape(-1, m, n)
    if hessian:
        cond.hessian[where] = true[:, m + m * n:].reshape(-1, m, n, n)
    cond.precise = cond.precise | where
    if "symbolic" in values:
        values["symbolic"]["jacobian"][where] = cond.jacobian[where][..., cols]
        if hessian:
            values["symbolic"]["hessian"][where] = cond.hessian[where][..., cols, :][..., cols]


def _require_representable(fn: Function, X: np.ndarray, cond: Conditioning) -> None:
    """f and the derivatives checked must fit in float64 at every point: one that overflows
    is bad input (a DomainError naming it), never a comparison of infinities."""
    m, n, nw = len(fn.exprs), len(fn.variables), len(fn.wrt)
    names = [f"f{j + 1}" if fn.vector else "f" for j in range(m)]
    entries = [(k, names[k]) for k in range(m)]
    entries += [(m + j * n + i, f"d{names[j]}/d{fn.wrt[i]}") for j in range(m)
                for i in range(nw)]
    if cond.hessian is not None:
        entries += [(m + m * n + (j * n + a) * n + b,
                     f"d2{names[j]}/d{fn.wrt[a]}d{fn.wrt[b]}")
                    for j in range(m) for a in range(nw) for b in range(a, nw)]
    flat = np.concatenate([cond.value, cond.jacobian.reshape(X.shape[0], -1)] +
                          ([cond.hessian.reshape(X.shape[0], -1)]
                           if cond.hessian is not None else []), axis=1)
    for p in range(X.shape[0]):
        for k, name in entries:
            if np.isinf(flat[p, k]):
                _overflow(fn, X[p], name, cond.exact[p, k] if cond.exact is not None else None,
                          cond.value[p])


def _overflow(fn: Function, x: np.ndarray, name: str, exact: Any, value: np.ndarray) -> None:
    where = ", ".join(f"{v}={_fmt(val)}" for v, val in zip(fn.variables, x, strict=True))
    size = mpmath.nstr(exact, 3) if exact is not None else "±inf in float64"
    at_f = "" if name.startswith("f") or not np.all(np.isfinite(value)) else \
        f" (where f = {', '.join(_fmt(v) for v in value)})"
    raise DomainError(
        f"{name} = {size} overflows float64 at {where}{at_f}: a value that large cannot be "
        "checked in float64 (it is infinite to every float64 engine). Choose a point where f "
        "and its derivatives stay below 1.8e308 in magnitude.")


def _flat(exprs: list[Any], sym: Any) -> list[Any]:
    flat = list(exprs) + [e for row in sym.jacobian for e in row]
    if sym.hessian is not None:
        flat += [e for h in sym.hessian for row in h for e in row]
    return flat


def _lost(bound: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Decimal digits float64 loses: log10 of the rounding bound over |value| (0..16)."""
    with np.errstate(all="ignore"):
        ratio = bound / np.abs(value)
    return np.clip(np.nan_to_num(np.log10(np.maximum(ratio, 1.0)), nan=DIGITS,
                                 posinf=DIGITS), 0.0, DIGITS)


def _inexact_constants(sym: Any, exprs: list[Any]) -> set[float]:
    """Float values of the constants float64 rounds (1/3, pi; not 0.1: a decimal is the
    binary number the parser stores). One walk over the formulas' shared DAG."""
    out: set[float] = set()
    seen: set[int] = set()
    stack = _flat(exprs, sym)
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


def _formulas(fn: Function, sym: Any, hessian: bool) -> dict[str, Any]:
    if sym is None:
        sym = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    cols = range(len(fn.wrt))
    text = sym.text  # str() when small, a bounded summary when huge (cost bounded too)
    out: dict[str, Any] = {"jacobian": [[text(row[i]) for i in cols] for row in sym.jacobian]}
    if hessian:
        out["hessian"] = [[[text(h[i][j]) for j in cols] for i in cols] for h in sym.hessian]
    return out
