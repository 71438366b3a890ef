"""Where a partly right claim holds, in words: a sign condition that separates the points.

The candidates are the variables and the subexpressions of F, of its derivative and of the
claim (arguments of ``Abs``, ``sqrt``, ``log``, factors, ...), smallest first. A condition
``c > 0`` (or ``c < 0``) that is true at every point where the claim holds and false at every
point where it fails describes the region; failing that, a pair ``c1 > 0 and c2 > 0``.

>>> import sympy, numpy as np
>>> x = sympy.Symbol("x", real=True)
>>> describe([sympy.sqrt(x**2)], ["x"], np.array([[1.0], [0.5]]), np.array([[-1.0]]))
'x > 0'
"""

from __future__ import annotations

import itertools
from typing import Any

import mpmath
import numpy as np
import sympy

from .highprec import Plan, defined
from .proof import tree_size
from .words import show

MAX_CANDIDATES = 60  #: subexpressions tried alone
MAX_PAIRED = 20  #: the smallest ones also tried in pairs
MAX_NODES = 2000  #: nodes visited when collecting candidates


def candidates(exprs: list[Any]) -> list[Any]:
    """Subexpressions that vary (variables first, then by size), each once."""
    seen: set[Any] = set()
    found: list[Any] = []
    stack = list(exprs)
    visited = 0
    while stack and visited < MAX_NODES:
        e = stack.pop()
        visited += 1
        if e in seen or not isinstance(e, sympy.Expr):
            continue
        seen.add(e)
        if e.free_symbols and not e.is_Number:
            found.append(e)
            if e.is_Pow and e.exp.is_negative:
                found.append(e.base)
        stack.extend(e.args)
    unique = list(dict.fromkeys(found))
    unique.sort(key=lambda e: (not e.is_Symbol, tree_size(e, 200), str(e)))
    return unique[:MAX_CANDIDATES]


def _signs(plan: Plan, X: np.ndarray) -> np.ndarray:
    rows = []
    for x in X:
        vals = plan.evaluate(x, 20)
        rows.append([int(mpmath.sign(v)) if defined(v) else 0 for v in vals])
    return np.array(rows, dtype=int).reshape(len(X), len(plan.outputs))


def describe(exprs: list[Any], variables: list[str], holds: np.ndarray, fails: np.ndarray
             ) -> str | None:
    """A sign condition true where the claim holds and false where it fails, or None."""
    cands = candidates(exprs)
    if not cands or len(holds) == 0 or len(fails) == 0:
        return None
    plan = Plan(cands, variables)
    H, F = _signs(plan, holds), _signs(plan, fails)
    for k, c in enumerate(cands):
        for s in (1, -1):
            if np.all(H[:, k] == s) and np.all(F[:, k] == -s):
                return condition(c, s)
    for a, b in itertools.combinations(range(min(MAX_PAIRED, len(cands))), 2):
        for sa, sb in itertools.product((1, -1), repeat=2):
            inside = (H[:, a] == sa) & (H[:, b] == sb)
            outside = (F[:, a] == sa) & (F[:, b] == sb)
            if inside.all() and not outside.any():
                return f"{condition(cands[a], sa)} and {condition(cands[b], sb)}"
    return None


def condition(c: Any, s: int) -> str:
    """``c > 0`` (s = 1) or ``c < 0`` (s = -1), solved for the variable when c is linear in
    one: ``x - 1 > 0`` reads ``x > 1``."""
    syms = list(c.free_symbols)
    if len(syms) == 1:
        poly = c.as_poly(syms[0])
        if poly is not None and poly.degree() == 1 and all(k.is_Rational
                                                            for k in poly.all_coeffs()):
            a, b = poly.all_coeffs()
            return f"{syms[0]} {'>' if a * s > 0 else '<'} {show(-b / a)}"
    return f"{show(c)} {'>' if s > 0 else '<'} 0"
