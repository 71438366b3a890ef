"""Formulas and numbers in words: how claims are printed.

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> show(sympy.Rational(63, 10) * x**2 + x / 2)
'6.3*x**2 + x/2'
>>> number(2.0), number(-0.1 + 0.2), number(None)
('2', '0.1', 'undefined')
"""

from __future__ import annotations

import math
from typing import Any

import sympy

from ..report import summarise

SHOWN_NODES = 400  #: formulas larger than this are summarised


def _decimal(r: Any) -> Any:
    """A rational with a finite decimal expansion and a 5 in its denominator (63/10, 126/5:
    what decimal literals become) as the decimal it spells; other numbers unchanged."""
    q, a, b = r.q, 0, 0
    while q % 2 == 0:
        q, a = q // 2, a + 1
    while q % 5 == 0:
        q, b = q // 5, b + 1
    k = max(a, b)
    if q != 1 or b == 0 or k > 30:
        return r
    digits = abs(r.p) * 2 ** (k - a) * 5 ** (k - b)
    whole, frac = divmod(digits, 10**k)
    text = f"{'-' if r.p < 0 else ''}{whole}.{str(frac).zfill(k)}"
    return sympy.Float(text, max(len(str(digits).rstrip("0")), 2))


def show(e: Any) -> str:
    """A formula for people: decimals as written, huge ones summarised."""
    from .proof import tree_size

    if tree_size(e, SHOWN_NODES) > SHOWN_NODES:
        return summarise(str(e)[:100_000])
    reps = {r: _decimal(r) for r in e.atoms(sympy.Rational)}
    return str(e.xreplace({r: d for r, d in reps.items() if d is not r}))


def number(v: Any) -> str:
    """A value with 12 significant digits (the closest float's shortest form when that is
    shorter)."""
    if v is None:
        return "undefined"
    f = float(v)
    if not math.isfinite(f):
        return "huge" if math.isinf(f) else "undefined"
    short = repr(f)
    g = f"{f:.12g}"
    return short.removesuffix(".0") if len(short) <= len(g) else g


def point(at: dict[str, float]) -> str:
    return ", ".join(f"{k}={number(v)}" for k, v in at.items())
