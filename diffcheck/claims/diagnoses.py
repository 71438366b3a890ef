"""What the mistake is: the usual slips of hand differentiation, tested against the values.

Each test compares expressions at the points where the claim fails (60 digits), most
specific first, as the contract orders them:

* ``transposed``: a Jacobian or Hessian entry (i, j) equals the true (j, i);
* ``sign``: claimed = −true;
* ``missing-chain-factor``: claimed equals the derivative of F with one inner derivative
  du/dx replaced by 1 (for a single application g(u), true = claimed · du/dx);
* ``constant-factor``: claimed = c · true for a constant c;
* ``missing-term`` / ``extra-term``: claimed − true is minus, or plus, one term: a term of a
  sum or of the product (or quotient) rule (the derivative through one factor or summand of
  F, or through the base or the exponent of a power u**v), a term of the true derivative
  written as a sum, a term of the claim, or the derivative with respect to another variable
  (which is held constant).

>>> import sympy, numpy as np
>>> x = sympy.Symbol("x", real=True)
>>> f = sympy.sin(x**2)
>>> case = Case(f, sympy.cos(x**2), sympy.diff(f, x), ["x"], ("x",), np.array([[0.7], [1.3]]))
>>> print(diagnose(case))
missing-chain-factor: you dropped the chain-rule factor d/dx(x**2) = 2*x of sin(x**2)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy

from .highprec import Plan, Value, defined
from .proof import tree_size
from .words import show

DIGITS = 60
CLOSE = mpmath.mpf(10) ** -30  #: relative agreement that counts as equal
MAX_SITES = 150  #: subexpressions of F tried as a dropped factor or term
MAX_TERMS = 40  #: terms of a sum tried as a missing or extra term
MAX_F_NODES = 3000  #: F larger than this gets only the value-based diagnoses


@dataclass
class Diagnosis:
    """A named mistake and what it is in words."""

    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "text": self.text}


@dataclass
class Case:
    """One wrong entry: F's row ``f``, claimed ``D``, true ``T``, the variables, the
    differentiation variables (one, or two for a Hessian entry) and the failing points."""

    f: Any
    D: Any
    T: Any
    variables: list[str]
    wrt: tuple[str, ...]
    X: np.ndarray
    transposed: Any = None  # the true (j, i) entry, for a square Jacobian or Hessian
    transposed_name: str = ""
    others: list[str] = field(default_factory=list)  # variables held constant
    _cache: dict[Any, list[Value]] = field(default_factory=dict, repr=False)

    def values(self, e: Any) -> list[Value]:
        got = self._cache.get(e)
        if got is None:
            plan = Plan([e], self.variables)
            got = [plan.evaluate(x, DIGITS)[0] for x in self.X]
            self._cache[e] = got
        return got

    def equal(self, a: Any, b: Any) -> bool:
        """Equal at every failing point (both defined)."""
        return _close(self.values(a), self.values(b))

    def symbol(self, k: int = 0) -> Any:
        return sympy.Symbol(self.wrt[k], real=True)


def _close(u: list[Value], v: list[Value]) -> bool:
    """Equal at every point to 30 digits; values below 10**-50 of the largest at all points
    count as 0 (so 1e-200 is not taken for -1e-200 where every value is that small)."""
    if not all(defined(a) for a in [*u, *v]):
        return False
    with mpmath.workdps(DIGITS):
        floor = mpmath.mpf(10) ** -50 * max([abs(a) for a in [*u, *v]], default=0)
        for a, b in zip(u, v, strict=True):
            if abs(a - b) > CLOSE * max(abs(a), abs(b)) + floor:
                return False
    return bool(u)


def diagnose(case: Case) -> Diagnosis | None:
    """The most specific diagnosis that fits, or None."""
    for test in (_transposed, _sign, _chain, _constant, _terms):
        found = test(case)
        if found is not None:
            return found
    return None


# -- the tests, most specific first ----------------------------------------------------------
def _transposed(c: Case) -> Diagnosis | None:
    if c.transposed is None or not c.equal(c.D, c.transposed):
        return None
    return Diagnosis("transposed", f"this entry holds the true {c.transposed_name} = "
                     f"{show(c.transposed)}: rows and columns are swapped (row i holds the "
                     "derivatives of output i, column j those with respect to variable j)")


def _sign(c: Case) -> Diagnosis | None:
    if not c.equal(c.D, -c.T):
        return None
    return Diagnosis("sign", f"the claim is -1 times the true derivative {show(c.T)}")


def _chain(c: Case) -> Diagnosis | None:
    if tree_size(c.f, MAX_F_NODES) > MAX_F_NODES:
        return None
    for dropped, node, u, v in _dropped_factors(c):
        if dropped != c.T and c.equal(c.D, dropped):
            factor = f"the chain-rule factor d/d{v}({show(u)}) = {show(sympy.diff(u, v))}"
            if node is None:
                return Diagnosis("missing-chain-factor", f"you dropped {factor} wherever "
                                 f"{show(u)} is inside (the claim is the derivative with "
                                 f"respect to {show(u)}, not {v})")
            return Diagnosis("missing-chain-factor", f"you dropped {factor} of {show(node)}")
    return None


def _constant(c: Case) -> Diagnosis | None:
    ratios = []
    with mpmath.workdps(DIGITS):
        for d, t in zip(c.values(c.D), c.values(c.T), strict=True):
            if not (defined(d) and defined(t)) or t == 0:
                return None
            ratios.append(d / t)
    if not ratios or not _close(ratios, [ratios[0]] * len(ratios)) or ratios[0] == 0:
        return None
    if abs(abs(ratios[0]) - 1) <= CLOSE:  # 1 is no mistake, -1 is the sign test's
        return None
    k = _identify(ratios[0])
    if k.is_Float and abs(abs(ratios[0]) - 1) < 1e-6:
        k = None  # 1 + 1e-15: printed with its deviation, not as 1.00000000000000
    return Diagnosis("constant-factor", f"the claim is {_ratio_text(k, ratios[0])} times the "
                     f"true derivative {show(c.T)}{_factor_hint(k) if k is not None else ''}")


def _ratio_text(k: Any, r: Value) -> str:
    """``k`` in words, or a ratio near +-1 as ``1 + 1.0e-15`` (its deviation shown)."""
    if k is not None:
        return show(k)
    one = 1 if r > 0 else -1
    with mpmath.workdps(DIGITS):
        d = r - one
    return f"({one} {'+' if d > 0 else '-'} {mpmath.nstr(abs(d), 3, min_fixed=1, max_fixed=0)})"


def _terms(c: Case) -> Diagnosis | None:
    delta = c.D - c.T
    for sign, term, words in _term_candidates(c):
        if c.equal(delta, sign * term):
            kind = "missing-term" if sign < 0 else "extra-term"
            return Diagnosis(kind, words)
    return None


# -- candidates -------------------------------------------------------------------------------
def _dropped_factors(c: Case) -> Iterator[tuple[Any, Any, Any, Any]]:
    """(derivative with one inner derivative taken as 1, the application, inner, variable)."""
    if len(c.wrt) == 1:
        yield from _dropped(c.f, c.symbol(0))
        return
    x, y = c.symbol(0), c.symbol(1)  # d2f/dxdy: a factor dropped in either step
    yield from _dropped(sympy.diff(c.f, x), y)
    for d, node, u, v in _dropped(c.f, x):
        yield sympy.diff(d, y), node, u, v


def _dropped(f: Any, v: Any) -> Iterator[tuple[Any, Any, Any, Any]]:
    """One inner function u of one application (node) at a time, then each u that is the
    inner function of several applications everywhere at once (node None)."""
    s = sympy.Dummy("u", real=True)
    shared: dict[Any, int] = {}
    for node in _nodes(f):
        for a, u in enumerate(node.args):
            if not _inner(node, u, v):
                continue
            shared[u] = shared.get(u, 0) + 1
            args = list(node.args)
            args[a] = s
            g = f.xreplace({node: node.func(*args)})
            yield (sympy.diff(g, v) + sympy.diff(g, s)).xreplace({s: u}), node, u, v
    for u, count in shared.items():
        if count > 1 or f.count(u) > 1:
            g = f.xreplace({u: s})
            yield (sympy.diff(g, v) + sympy.diff(g, s)).xreplace({s: u}), None, u, v


def _inner(node: Any, u: Any, v: Any) -> bool:
    """Is u an inner function whose derivative in v can be dropped: an argument of a
    function or a power, or a function or power inside a sum or product."""
    if u.is_Symbol or not isinstance(u, sympy.Expr) or v not in u.free_symbols:
        return False
    if node.is_Add or node.is_Mul:
        return u.is_Pow or isinstance(u, sympy.Function)
    return True


def _nodes(f: Any) -> list[Any]:
    """Distinct subexpressions, outermost first (breadth first), at most MAX_SITES."""
    out, seen, queue = [], set(), [f]
    while queue and len(out) < MAX_SITES:
        e = queue.pop(0)
        if e in seen:
            continue
        seen.add(e)
        out.append(e)
        queue.extend(e.args)
    return out


def _term_candidates(c: Case) -> Iterator[tuple[int, Any, str]]:
    """(sign, term, words): claimed - true = sign * term would mean that mistake."""
    v = c.symbol(len(c.wrt) - 1)
    g = c.f if len(c.wrt) == 1 else sympy.diff(c.f, c.symbol(0))
    small = tree_size(c.f, MAX_F_NODES) <= MAX_F_NODES
    if small:
        for term, site, parent, at in _contributions(g, v):
            yield -1, term, (f"the {_rule(site, parent, at)} term {show(term)} is missing "
                             f"(the one from differentiating {_site(site, parent, at)})")
    for term in _sum_terms(c.T):
        yield -1, term, f"the term {show(term)} of the true derivative {show(c.T)} is missing"
    for term in _sum_terms(c.D):
        yield 1, term, f"the term {show(term)} should not be there (the true derivative is " \
                       f"{show(c.T)})"
    for name in c.others:
        w = sympy.Symbol(name, real=True)
        term = sympy.diff(g, w)
        if term != 0:
            yield 1, term, (f"the extra term {show(term)} is the derivative with respect to "
                            f"{name}, which is held constant in d/d{v}")
    if small:
        for term, site, parent, at in _contributions(g, v):
            yield 1, term, (f"the {_rule(site, parent, at)} term {show(term)} is counted "
                            f"twice (the one from differentiating {_site(site, parent, at)})")


def _sum_terms(e: Any) -> list[Any]:
    terms = sympy.Add.make_args(e)
    return list(terms[:MAX_TERMS]) if len(terms) > 1 else []


def _site(site: Any, parent: Any, at: int) -> str:
    if parent.is_Pow:
        return f"the {'exponent' if at else 'base'} of {show(parent)}"
    return f"{show(site)} in {show(parent)}"


def _rule(site: Any, parent: Any, at: int) -> str:
    if parent.is_Pow:  # d(u**v) = v*u**(v-1)*du + u**v*log(u)*dv
        return "exponential-rule" if at else "power-rule"
    if parent.is_Mul:
        return "quotient-rule" if site.is_Pow and site.exp.is_negative else "product-rule"
    if parent.is_Add:
        return "sum-rule"
    return "chain-rule"


def _contributions(f: Any, v: Any) -> Iterator[tuple[Any, Any, Any, int]]:
    """(∂f/∂N · dN/dv, N, parent, N's index in parent) for each factor or summand N of a
    product or sum in f, and the base and exponent of a power u**v, replaced at its one
    position (a factor x of x*sin(x) is not the x inside sin)."""
    s = sympy.Dummy("n", real=True)
    count = 0
    for path, parent in _positions(f):
        if count >= MAX_SITES:
            return
        site = parent.args[path[-1]]
        if v not in site.free_symbols or parent.is_Pow and not all(
                v in a.free_symbols for a in parent.args):
            continue  # a power splits in two terms only where base and exponent both vary
        count += 1
        g = _replace_at(f, path, s)
        term = (sympy.diff(g, s).xreplace({s: site}) * sympy.diff(site, v))
        if term != 0:
            yield term, site, parent, path[-1]


def _positions(f: Any) -> Iterator[tuple[tuple[int, ...], Any]]:
    """Paths to each argument of a sum or product in f, outermost first."""
    queue: list[tuple[tuple[int, ...], Any]] = [((), f)]
    while queue:
        path, e = queue.pop(0)
        for i, a in enumerate(e.args):
            if e.is_Add or e.is_Mul or e.is_Pow and not e.exp.is_Number:
                yield (*path, i), e  # a power's base and its varying exponent: u**v
            if isinstance(a, sympy.Basic) and a.args:
                queue.append(((*path, i), a))


def _replace_at(e: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    args = list(e.args)
    args[path[0]] = _replace_at(args[path[0]], path[1:], new)
    return e.func(*args)


def _identify(r: Value) -> Any:
    """An exact constant for a ratio: a short fraction, or a multiple of pi or e."""
    f = sympy.Float(r, DIGITS)
    for basis in ([], [sympy.pi], [sympy.E]):
        k = sympy.nsimplify(f, basis, tolerance=10.0**-25, rational=not basis)
        if len(str(k)) <= 24 and abs(sympy.N(k, DIGITS) - f) <= 1e-25 * abs(f):
            return k
    return sympy.Float(r, 15)


def _factor_hint(k: Any) -> str:
    if k.is_Rational and k.p == 1 and k.q > 1:
        return f" (a factor {k.q} is missing)"
    if k.is_Integer:
        return f" (an extra factor {k})"
    return ""

