"""The symbolic engine: SymPy's own derivatives, evaluated in float64.

Derivatives come from ``sympy.diff`` (each function class's ``fdiff``), never from the rule
table. Each entry is differentiated only with respect to the symbols it contains, Hessians
only for ``i <= j`` (mirrored). All formulas are compiled into one Program (shared
subexpressions computed once) and evaluated at every point at once.

>>> import sympy
>>> x, y = sympy.symbols("x y", real=True)
>>> d = derive([x**2 * y + y], ["x", "y"], hessian=True)
>>> d.jacobian
[[2*x*y, x**2 + 1]]
>>> J, H = d.evaluate(np.array([[2.0, 3.0]]))
>>> J.tolist(), H[0, 0].tolist()
([[[12.0, 5.0]]], [[6.0, 4.0], [4.0, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ..program import Program


@dataclass
class SymbolicDerivatives:
    """Jacobian (m x n) and optional Hessians (m x n x n) as SymPy expressions."""

    variables: list[str]
    jacobian: list[list[Any]]
    hessian: list[list[list[Any]]] | None
    _program: Program | None = None

    @property
    def program(self) -> Program:
        if self._program is None:
            flat = [e for row in self.jacobian for e in row]
            if self.hessian is not None:
                flat += [e for h in self.hessian for row in h for e in row]
            self._program = Program.from_sympy(flat, self.variables)
        return self._program

    def evaluate(self, X: np.ndarray):
        """Values at points ``X`` (P, n): Jacobians (P, m, n), Hessians (P, m, n, n) or None."""
        P, n = X.shape
        m = len(self.jacobian)
        with np.errstate(all="ignore"):
            outs = self.program.evaluate([np.ascontiguousarray(X[:, i]) for i in range(n)])
        flat = np.stack([np.broadcast_to(np.asarray(o, dtype=float), (P,)) for o in outs],
                        axis=1)
        J = flat[:, : m * n].reshape(P, m, n)
        H = flat[:, m * n:].reshape(P, m, n, n) if self.hessian is not None else None
        return J, H


def derive(exprs: list[Any], variables: list[str], *, hessian: bool = False
           ) -> SymbolicDerivatives:
    """Differentiate each expression by SymPy with respect to each variable."""
    syms = {s.name: s for e in exprs for s in e.free_symbols}
    jac = [[_diff(e, syms.get(v)) for v in variables] for e in exprs]
    hess = None
    if hessian:
        hess = []
        for row in jac:
            h = [[sympy.Integer(0)] * len(variables) for _ in variables]
            for i, gi in enumerate(row):
                for j in range(i, len(variables)):
                    h[i][j] = h[j][i] = _diff(gi, syms.get(variables[j]))
            hess.append(h)
    return SymbolicDerivatives(list(variables), jac, hess)


def _diff(e: Any, s: Any) -> Any:
    if s is None or s not in e.free_symbols:
        return sympy.Integer(0)
    return sympy.diff(e, s)
