"""Checking the derivatives of an expression with every engine.

>>> import diffcheck as dc
>>> report = dc.check_expression("(x1 + w1)**2 * (x1*w1 + x2*w2)", wrt="w1,w2",
...                              at="x1=1,w1=2,x2=3,w2=4")
>>> report.ok, report.to_dict()["points"][0]["engines"]["reverse"]["gradient"]
(True, [93.0, 27.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from . import compare
from .conditioning import (
    Conditioning,
    conditioning,
    recondition,
    require_representable,
    with_rounding,
)
from .engines import ad, finite, symbolic
from .engines.rounding import rounding_bound
from .errors import DomainError, ParseError, UsageError
from .parse import NAME, canonical_name, natural_key, parse_expression, variables_of
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
    def from_text(cls, expr: Any, wrt: Any = None, at: Any = None) -> Function:
        """Parse text (or accept SymPy expressions) and compile the Program.

        The variables are the names the text uses, including one that cancels (``x`` in
        ``x - x + y``, whose derivative is then 0). A name the point ``at`` or ``wrt`` gives
        is a variable even where it would be a constant (``e``) or a function (``gamma``).

        >>> Function.from_text("e**x").variables, Function.from_text("e**x", at="e=2,x=1").variables
        (['x'], ['e', 'x'])
        """
        wrt_list = None
        if wrt is not None:
            wrt_list = _names(wrt)
            _check_names(wrt_list)
        if isinstance(expr, str):
            declared = set(wrt_list or ()) | set(point_names(at))
            parsed = parse_expression(expr, variables=declared)
            body, found = parsed.expr, parsed.names
            text = expr.strip()
        else:
            body, found, text = expr, None, str(expr)
        vector = isinstance(body, list)
        exprs = list(body) if vector else [body]
        exprs = [sympy.sympify(e) if isinstance(e, int | float) else e for e in exprs]
        found = variables_of(exprs) if found is None else found
        wrt_list = found if wrt_list is None else wrt_list
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
        return [canonical_name(w.strip()) for w in wrt.split(",") if w.strip()]
    return [canonical_name(str(w)) for w in wrt]


def _check_names(names: list[str]) -> None:
    if not names:
        raise UsageError("--wrt names no variable; give a comma-separated list like x,y")
    for n in names:
        if not NAME.fullmatch(n):
            raise UsageError(f"'{n}' is not a variable name (use letters, digits and _; "
                             "Greek letters are letters too)")
    if len(set(names)) != len(names):
        raise UsageError(f"a variable is named twice in {', '.join(names)}")


# -- points ---------------------------------------------------------------------------------
def parse_at(at: Any, variables: list[str]) -> list[dict[str, float]]:
    """Points given by the user: "x=1,y=2", a mapping, a sequence of numbers, or a list.

    A value may be a constant expression, read by the same safe parser: ``t=pi/4``,
    ``x=1/3``, ``x=sqrt(2)``, ``x=log(8, 2)`` (no variables).

    >>> parse_at("t=pi/4,x=sqrt(2)", ["t", "x"])
    [{'t': 0.7853981633974483, 'x': 1.4142135623730951}]
    """
    if isinstance(at, str):
        return [_parse_assignments(at)]
    if isinstance(at, Mapping):
        return [{canonical_name(str(k)): _number(v, str(k)) for k, v in at.items()}]
    if isinstance(at, Sequence) and at and all(isinstance(p, Mapping | str) for p in at):
        return [q for p in at for q in parse_at(p, variables)]
    values = np.asarray(at, dtype=float).ravel() if not isinstance(at, str) else None
    if values is None or values.size != len(variables):
        raise UsageError(f"the point has {0 if values is None else values.size} values but "
                         f"there are {len(variables)} variables ({', '.join(variables)})")
    return [dict(zip(variables, map(float, values), strict=True))]


def point_names(at: Any) -> list[str]:
    """The names a point (or list of points) gives values for, without reading the values.

    >>> point_names("x=1,e=atan2(1, 2)"), point_names([{"θ": 1}, "y=2"])
    (['x', 'e'], ['θ', 'y'])
    """
    if isinstance(at, str):
        return [canonical_name(p.partition("=")[0].strip()) for p in _split_top(at)]
    if isinstance(at, Mapping):
        return [canonical_name(str(k)) for k in at]
    if isinstance(at, Sequence) and all(isinstance(p, Mapping | str) for p in at):
        return [n for p in at for n in point_names(p)]
    return []


def _split_top(text: str) -> list[str]:
    """Split at the commas outside parentheses and brackets (``x=atan2(1, 2),y=3``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _parse_assignments(text: str) -> dict[str, float]:
    point: dict[str, float] = {}
    for part in _split_top(text):
        name, eq, val = part.partition("=")
        name = canonical_name(name.strip())
        if not eq or not name:
            raise UsageError(f"cannot read '{part.strip()}' in --at '{text}': write "
                             "name=value pairs separated by commas, e.g. --at x=1,y=2")
        if name in point:
            raise UsageError(f"--at gives {name} twice")
        point[name] = _number(val.strip(), name)
    return point


def _number(v: Any, name: str) -> float:
    """A coordinate: a number, or text that is a number or a constant expression
    (``"pi/4"``, ``"sqrt(2)"``: parsed safely, computed in float64)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        if not isinstance(v, str):
            raise UsageError(f"value of {name} is not a number: {v!r}") from None
        x = _evaluate_constant(v, name)
    if not math.isfinite(x):
        raise UsageError(f"value of {name} is {v}; points must be finite numbers")
    return x


def _evaluate_constant(text: str, name: str) -> float:
    try:
        parsed = parse_expression(text)
    except ParseError as err:
        raise ParseError(f"cannot read the value of {name}: {err.message}", text=err.text,
                         column=err.column) from None
    if parsed.names or isinstance(parsed.expr, list):
        what = "is a list" if not parsed.names else \
            f"uses the variable{'s' if len(parsed.names) > 1 else ''} {', '.join(parsed.names)}"
        raise UsageError(f"value of {name} is not a number or a constant expression (such "
                         f"as pi/4, 1/3 or sqrt(2)): '{text}' {what}")
    try:
        with np.errstate(all="ignore"):
            return float(Program.from_sympy([parsed.expr], []).evaluate([])[0])
    except DomainError:  # sqrt(-1) is SymPy's I
        return math.nan


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
    """A DomainError naming the subexpression that leaves its domain at ``x``, with the
    value of its argument (``log(t - 5): its argument t - 5 = -4 must be > 0``)."""
    why = fn.program.explain_violation(list(x))
    if why is None or _float64_artifact(fn, x):
        return
    what, reason = why
    raise DomainError(
        f"{what} is undefined (or not differentiable) at {_where(fn, x)}: {reason}. "
        "Choose a point inside the domain, or omit --at to let diffcheck draw points "
        "where the function is defined.")


def _float64_artifact(fn: Function, x: np.ndarray) -> bool:
    """True when the point is inside the domain and only float64 puts it outside: an
    underflow or overflow on the way (``x**2 + y**2`` is 0 in float64 at x = 1e-170), seen
    by evaluating again in extended precision, where the platform has it. The checks then go
    on, and the conditioning machinery says which engines float64 cannot resolve there."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        return False
    wide = [np.longdouble(v) for v in x]
    with np.errstate(all="ignore"):
        return fn.program.explain_violation(wide) is None


def _where(fn: Function, x: np.ndarray) -> str:
    return ", ".join(f"{v}={_fmt(val)}" for v, val in zip(fn.variables, x, strict=True))


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
    bad = fn.program.explain_violation(list(C[0]))
    if bad is not None:
        why = f" (e.g. at {_where(fn, C[0])}, {bad[0]}: {bad[1]})"
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
                errors["finite"] = with_rounding(errors["finite"], fn, sym, X, cond, cols)
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
                     rtol: float | None = None, atol: float | None = None,
                     claim: Any = None, claim_hessian: Any = None) -> Report:
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
        claim, claim_hessian: a derivative you derived, checked against F's (see
            docs/claims.md): text in EXPR's syntax (``"2*x"``, ``"[y, x]"``,
            ``"[[2, 2*x2], [-2*x1, 3]]"``), SymPy expressions, or lists of them. Each entry
            gets a verdict (proved, agrees, partly, wrong) in ``report.claims``.

    Returns:
        A :class:`~diffcheck.report.Report`; ``report.ok`` is True when every engine agrees
        at every point (and every claimed entry is proved or agrees).

    Raises:
        DiffcheckError: bad text (ParseError), a point outside the domain (DomainError),
        a bad option (UsageError).

    >>> check_expression("3*x**2 + 2*x*y + 3*y**2", at="x=1,y=1", hessian=True).ok
    True
    """
    names = _engines(engines)
    _validate(points, seed, rtol, atol)
    fn = Function.from_text(expr, wrt, at)
    claims = None
    if claim is not None or claim_hessian is not None:
        from .claims import prepare

        claims = prepare(expr, fn, claim, claim_hessian)  # bad claims fail before any work
        hessian = hessian or claims.hessian
    X = user_points(fn, at) if at is not None else random_points(fn, points, seed)
    sym = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    cond = conditioning(fn, sym, X, hessian)
    require_representable(fn, X, cond)
    with np.errstate(all="ignore"):
        values, errors, sym = run_engines(fn, X, names, hessian, sym=sym, cond=cond)
        scales = _scales(fn, X, values, hessian)
        recondition(fn, X, names, hessian, sym, values, cond)
    report = Report(fn.text, list(fn.wrt), fn.vector, _formulas(fn, sym, hessian), names)
    for p in range(X.shape[0]):
        report.points.append(_point(fn, X[p], cond, p, values, errors, scales, rtol, atol))
    if claims is not None:
        report.claims = claims.decide(report.formulas, X if at is not None else None, seed)
    return report


def _point(fn: Function, x: np.ndarray, cond: Conditioning, p: int, values, errors, scales,
           rtol, atol) -> PointResult:
    """One point's verdict; at an ill-conditioned point the float64 engines carry their
    rounding bars (shown with their values, added to their tolerance)."""
    vals = {e: {k: v[p] for k, v in kinds.items()} for e, kinds in values.items()}
    errs = {e: {k: v[p] for k, v in kinds.items()} for e, kinds in errors.items()}
    scl = {k: v[p] for k, v in scales.items()}
    rounding = cond.rounding(p, len(fn.wrt)) if cond.ill[p] else None
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


def _formulas(fn: Function, sym: Any, hessian: bool) -> dict[str, Any]:
    if sym is None:
        sym = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    cols = range(len(fn.wrt))
    text = sym.text  # str() when small, a bounded summary when huge (cost bounded too)
    out: dict[str, Any] = {"jacobian": [[text(row[i]) for i in cols] for row in sym.jacobian]}
    if hessian:
        out["hessian"] = [[[text(h[i][j]) for j in cols] for i in cols] for h in sym.hessian]
    return out
