"""Dispatch of rule-table operations to traced values (duals, tape variables).

Each differentiation pass gets a *level* from one global counter. When an operation meets
traced values of several passes, the highest level handles it and treats the others as
constants; that keeps nested derivatives apart ("perturbation confusion").

>>> next_level() < next_level()
True
"""

from __future__ import annotations

import itertools
from typing import Any

_levels = itertools.count(1)


def next_level() -> int:
    """A fresh level, higher than every level handed out before."""
    return next(_levels)


class Traced:
    """Base of values that carry derivative information through the interpreter.

    Subclasses (``Dual``, tape ``Var``) have a ``level`` and a classmethod
    ``apply(prim, args, params, level)`` that applies a rule-table row to arguments of which
    those at ``level`` are theirs; :func:`dispatch` calls it.
    """

    __slots__ = ()
    level: int


def is_traced(x: Any) -> bool:
    return isinstance(x, Traced)


def top_level(args: tuple) -> tuple[int, Any]:
    """The highest level among traced args and the class that owns it."""
    best, owner = 0, None
    for a in args:
        if isinstance(a, Traced) and a.level > best:
            best, owner = a.level, type(a)
    return best, owner


def dispatch(prim: Any, args: tuple, params: dict) -> Any:
    """Apply ``prim`` to ``args`` where at least one is traced."""
    level, owner = top_level(args)
    return owner.apply(prim, args, params, level)
