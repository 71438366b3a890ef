"""Symbolic proof that claimed − true ≡ 0: cheap rewrites first, each under a time budget.

The routes run in order of cost until one of them turns the difference into 0: SymPy's
automatic simplification, ``expand``, ``cancel(together(...))``, ``expand`` of the ``exp``
rewrite (trigonometric, hyperbolic and logistic identities become rational identities in
exponentials), ``trigsimp``, and ``simplify``. Expansion is skipped where it would blow up
(an estimate of the number of terms), and every route is abandoned when its time is up (see
:mod:`diffcheck.claims.budget`), so a hostile claim cannot stall the check; it then stays
"agrees" rather than "proved".

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> d = sympy.sin(x)**2 + sympy.cos(x)**2 - 1
>>> prove_zero(d, Budget(2.0))
'exp rewrite'
>>> prove_zero(x - 1, Budget(2.0)) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import sympy

from .budget import Budget

MAX_TERMS = 3000  #: expansions estimated to make more terms than this are not tried
MAX_NODES = 5000  #: differences larger than this (tree nodes) get only the automatic route
STEP_SECONDS = 0.5  #: time limit of one route


def _expand(d: Any) -> Any:
    return sympy.expand(d)


def _cancel(d: Any) -> Any:
    return sympy.cancel(sympy.together(d))


def _exp_rewrite(d: Any) -> Any:
    return sympy.cancel(sympy.expand(d.rewrite(sympy.exp)))


ROUTES: list[tuple[str, Callable[[Any], Any], bool]] = [
    # name, route, needs expansion
    ("expand", _expand, True),
    ("cancel", _cancel, True),
    ("exp rewrite", _exp_rewrite, True),
    ("trigsimp", sympy.trigsimp, False),
    ("simplify", sympy.simplify, False),
]


def prove_zero(d: Any, budget: Budget) -> str | None:
    """The name of the first route that shows ``d`` is 0, or None (not proved)."""
    if d == 0:
        return "automatic"
    size = tree_size(d, MAX_NODES + 1)
    if size > MAX_NODES:
        return None
    expandable = expanded_terms(d) <= MAX_TERMS
    for name, route, needs_expansion in ROUTES:
        if needs_expansion and not expandable:
            continue
        small = needs_expansion and size <= 60
        done, value = budget.run(lambda r=route: r(d), STEP_SECONDS, small=small)
        if done and value == 0:
            return name
        if budget.left() <= 0:
            break
    return None


def tree_size(e: Any, limit: int) -> int:
    """Nodes of the expression tree, counting stops past ``limit``."""
    count, stack = 0, [e]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        stack.extend(node.args)
    return count


def expanded_terms(e: Any) -> float:
    """An upper estimate of the terms ``expand`` makes (sums add, products multiply,
    integer powers of sums grow binomially); functions count as one term each."""
    memo: dict[Any, float] = {}
    order, stack = [], [e]
    while stack:
        node = stack.pop()
        if node in memo:
            continue
        memo[node] = 1.0
        order.append(node)
        stack.extend(node.args)
    for node in reversed(order):
        memo[node] = _terms(node, memo)
    return memo[e]


def _terms(node: Any, memo: dict[Any, float]) -> float:
    if node.is_Add:
        return sum(memo[a] for a in node.args)
    if node.is_Mul:
        out = 1.0
        for a in node.args:
            out = min(out * memo[a], 1e300)
        return out
    if node.is_Pow and node.exp.is_Integer:
        k, n = memo[node.base], abs(int(node.exp))
        if k <= 1:
            return 1.0
        return float(math.comb(n + int(k) - 1, n)) if k < 50 and n < 500 else 1e300
    return 1.0
