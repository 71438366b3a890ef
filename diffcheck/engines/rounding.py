"""How much float64 rounding a Program's outputs can carry: a running error bound.

A :class:`Bounded` value is a float (or array) with a bound ``b`` on its accumulated
rounding error, in units of the machine epsilon: every operation rounds its result
(``|out|``) and passes on the errors of its arguments through its local partial derivatives
(``|d_i| * b_i``), from the same rule table the AD engines use. Inputs are exact (the point
is the float64 number given); constants that are not whole numbers are rounded (``pi``,
``1/3``). To first order, ``eps * b`` bounds the error of evaluating the output in
floating point: where ``b`` is far above ``|out|`` the value is a small difference of large
terms (cancellation), and float64 loses ``log10(b / |out|)`` of its ~16 digits there.

>>> import sympy
>>> from diffcheck.program import Program
>>> x = sympy.Symbol("x", real=True)
>>> prog = Program.from_sympy([(sympy.exp(x) - 1 - x) / x**2], ["x"])
>>> b = rounding_bound(prog, np.array([[1e-5]]))
>>> 1e10 < float(b[0, 0]) < 1e11  # f ~ 0.5: float64 keeps only ~6 of its 16 digits
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..tracing import Traced, next_level

EPS = float(np.finfo(float).eps)


class Bounded(Traced):
    """A value and the bound ``bound`` (units of eps) on the rounding error it carries."""

    __slots__ = ("val", "bound", "level", "constants", "varies")

    def __init__(self, val: Any, bound: Any, level: int, constants: Any = True,
                 varies: bool = False):
        self.val = val
        self.bound = bound
        self.level = level
        self.constants = constants  # which constants are rounded: all, none, or a set
        self.varies = varies  # depends on the input whose own roundings are not counted

    @classmethod
    def apply(cls, prim: Any, args: tuple, params: dict, level: int) -> Bounded:
        if prim.structural:
            raise UnsupportedError(f"no rounding bound for the structural row {prim.name}")
        primal, mine = [], []
        for a in args:
            own = isinstance(a, Bounded) and a.level == level
            primal.append(a.val if own else a)
            mine.append(own)
        first = args[mine.index(True)]
        constants = first.constants
        varies = any(a.varies for a, own in zip(args, mine, strict=True) if own)
        out = prim.impl(*primal, **params) if not any(
            isinstance(p, Traced) for p in primal) else prim(*primal, **params)
        bound = 0.0 if varies else np.abs(out)
        for i, a in enumerate(args):
            carried = a.bound if mine[i] else _carried(a, level, constants)
            if carried is None or not np.any(carried):
                continue
            through = np.abs(prim.partials[i](*primal, out)) * carried
            if not np.all(carried):  # (exact values carry none: inf * 0 is no bound)
                through = np.where(carried == 0, 0.0, through)
            bound = bound + through
        return cls(out, np.broadcast_to(bound, np.shape(out)) if np.ndim(bound) == 0 and
                   np.ndim(out) else bound, level, constants, varies)


def _carried(a: Any, level: int, constants: Any) -> Any:
    """The rounding an argument brings: its bound, or |c| for a rounded constant c."""
    if isinstance(a, Bounded) and a.level == level:
        return a.bound
    if constants is False or isinstance(a, Traced) or np.ndim(a) != 0:
        return None
    c = float(a)
    if constants is True:
        return None if not np.isfinite(c) or c == int(c) else abs(c)
    return abs(c) if c in constants else None


def rounding_bound(prog: Any, X: np.ndarray, *, constants: Any = True,
                   with_values: bool = False, varying: int | None = None) -> Any:
    """``(P, outputs)``: the running error bound of each output at each point (units of eps).

    ``constants``: True counts every constant that is not a whole number as rounded, a set
    of floats counts those, False none (a fixed perturbation of the function, smooth in x,
    which finite differences do not see as noise). Non-finite bounds (an infinite partial
    somewhere) come back as ``inf``. ``with_values=True`` returns ``(values, bounds)``: the
    outputs themselves come with the bounds at no extra cost. ``varying=i`` leaves out the
    roundings of operations that depend on input i: what remains perturbs the outputs
    smoothly along x_i (finite differences along x_i see the rest as noise).
    """
    P, n = X.shape
    level = next_level()
    inputs = [Bounded(np.ascontiguousarray(X[:, i]), np.zeros(P), level, constants, i == varying)
              for i in range(n)]
    with np.errstate(all="ignore"):
        outs = prog.evaluate(inputs)
        cols = [np.broadcast_to(o.bound if isinstance(o, Bounded) else
                                np.zeros(()), (P,)) for o in outs]
    B = np.stack(cols, axis=1) if cols else np.zeros((P, 0))
    B = np.where(np.isnan(B), np.inf, B)
    if not with_values:
        return B
    vals = [np.broadcast_to(np.asarray(o.val if isinstance(o, Bounded) else o, dtype=float),
                            (P,)) for o in outs]
    return (np.stack(vals, axis=1) if vals else np.zeros((P, 0))), B
