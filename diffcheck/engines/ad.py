"""Jacobians and Hessians of a Program by forward mode and by reverse mode.

All functions take points ``X`` of shape ``(P, n)`` and evaluate every point at once (the
values flowing through the interpreter are arrays of length P).

* forward: one vector-mode pass gives the Jacobian; duals of duals give Hessians
  (forward over forward).
* reverse: one backward sweep per output gives the Jacobian; a tape over duals gives
  Hessians (forward over reverse).

>>> import sympy
>>> from diffcheck.program import Program
>>> x, y = sympy.symbols("x y", real=True)
>>> prog = Program.from_sympy([x**2 * y + y], ["x", "y"])
>>> jacobian_forward(prog, np.array([[2.0, 3.0]]))[0].tolist()
[[12.0, 5.0]]
>>> jacobian_reverse(prog, np.array([[2.0, 3.0]]))[0].tolist()
[[12.0, 5.0]]
>>> hessian_forward(prog, np.array([[2.0, 3.0]]))[0, 0].tolist()
[[6.0, 4.0], [4.0, 0.0]]
"""

from __future__ import annotations

import numpy as np

from ..program import Program
from ..tracing import next_level
from .forward import Dual, tangent_of
from .reverse import Tape, Var, backward


def _columns(X: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(X[:, i]) for i in range(X.shape[1])]


def _seeds(n: int, P: int) -> list[np.ndarray]:
    eye = np.eye(n)
    return [np.repeat(eye[i][:, None], P, axis=1) for i in range(n)]


def _full(v, P: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=float), (P,))


def _bar(bars: list, v: Var, zero=0.0):
    """The adjoint of input ``v`` (inputs recorded after the output have none)."""
    b = bars[v.index] if v.index < len(bars) else None
    return zero if b is None else b


def jacobian_forward(prog: Program, X: np.ndarray) -> np.ndarray:
    """Jacobian ``(P, m, n)`` by vector-mode forward duals (one pass)."""
    P, n = X.shape
    level = next_level()
    duals = [Dual(c, s, level) for c, s in zip(_columns(X), _seeds(n, P), strict=True)]
    outs = prog.evaluate(duals)
    J = np.stack([np.broadcast_to(np.reshape(tangent_of(y, level, n), (n, -1)), (n, P))
                  for y in outs])  # (a constant output has tangents (n,))
    return np.transpose(J, (2, 0, 1))


def hessian_forward(prog: Program, X: np.ndarray) -> np.ndarray:
    """Hessians ``(P, m, n, n)`` by forward over forward (duals of duals)."""
    P, n = X.shape
    inner, outer = next_level(), next_level()
    seeds = _seeds(n, P)
    xs = [Dual(Dual(c, s, inner), s, outer) for c, s in zip(_columns(X), seeds, strict=True)]
    hs = []
    for y in prog.evaluate(xs):
        g = tangent_of(y, outer, n)  # gradient: a dual over the inner level, or zeros
        h = tangent_of(g, inner, n) if isinstance(g, Dual) else np.zeros((n, n, P))
        hs.append(np.broadcast_to(h, (n, n, P)))
    return np.transpose(np.stack(hs), (3, 0, 1, 2))


def jacobian_reverse(prog: Program, X: np.ndarray, *, absolute: bool = False) -> np.ndarray:
    """Jacobian ``(P, m, n)`` by reverse mode (one backward sweep per output).

    With ``absolute=True``: the sums over paths of |products of partials|, the scale of
    rounding error in each entry.
    """
    P, n = X.shape
    tape = Tape()
    xs = [tape.var(c) for c in _columns(X)]
    rows = []
    for y in prog.evaluate(xs):
        if not isinstance(y, Var):
            rows.append(np.zeros((n, P)))
            continue
        bars = backward(y, np.ones(P), absolute=absolute)
        rows.append(np.stack([_full(_bar(bars, v), P) for v in xs]))
    return np.transpose(np.stack(rows), (2, 0, 1))


def hessian_reverse(prog: Program, X: np.ndarray) -> np.ndarray:
    """Hessians ``(P, m, n, n)`` by forward over reverse (a tape whose values are duals)."""
    P, n = X.shape
    inner = next_level()
    tape = Tape()
    xs = [tape.var(Dual(c, s, inner)) for c, s in zip(_columns(X), _seeds(n, P), strict=True)]
    hs = []
    for y in prog.evaluate(xs):
        if not isinstance(y, Var):
            hs.append(np.zeros((n, n, P)))
            continue
        bars = backward(y, np.ones(P))
        rows = []
        for v in xs:
            b = _bar(bars, v, None)
            rows.append(np.broadcast_to(tangent_of(b, inner, n), (n, P)) if b is not None
                        else np.zeros((n, P)))
        hs.append(np.stack(rows))
    return np.transpose(np.stack(hs), (3, 0, 1, 2))


def rounding_scale(prog: Program, X: np.ndarray) -> np.ndarray:
    """Per point and output, sum over nodes of |value| * |adjoint|: f's rounding scale.

    ``eps * rounding_scale`` bounds, to first order, the rounding error of evaluating
    the outputs in floating point (running error analysis).
    """
    P, n = X.shape
    tape = Tape()
    nodes = prog.evaluate([tape.var(c) for c in _columns(X)], keep=True)
    scales = []
    for o in prog.outputs:
        y = nodes[o]
        if not isinstance(y, Var):
            scales.append(np.abs(_full(y, P)))
            continue
        bars = backward(y, np.ones(P), absolute=True)
        total = np.zeros(P)
        for v in nodes:
            if isinstance(v, Var) and v.index < len(bars) and bars[v.index] is not None:
                total = total + np.abs(v.val) * bars[v.index]
        scales.append(total)
    return np.stack(scales, axis=1)
