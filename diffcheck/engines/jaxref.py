"""The JAX reference engine (imported only when asked for).

The Program is translated with the rows' JAX functions and differentiated by
``jax.jacrev`` / ``jax.hessian`` in float64, vectorised over points with ``jax.vmap``:
an implementation of the derivatives that shares nothing with diffcheck's own engines.

>>> import sympy
>>> from diffcheck.program import Program
>>> x = sympy.Symbol("x", real=True)
>>> prog = Program.from_sympy([sympy.sin(x) * x], ["x"])
>>> J, H = derivatives(prog, np.array([[0.0]]), hessian=True)
>>> J.tolist(), H.tolist()
([[[0.0]]], [[[[2.0]]]])
"""

from __future__ import annotations

import numpy as np

from ..program import Program


def derivatives(prog: Program, X: np.ndarray, *, hessian: bool = False):
    """Jacobians ``(P, m, n)`` and, if asked, Hessians ``(P, m, n, n)`` by JAX."""
    import jax

    with jax.enable_x64(True):
        f = prog.to_jax()
        xs = jax.numpy.asarray(X, dtype=jax.numpy.float64)
        J = np.asarray(jax.jit(jax.vmap(jax.jacrev(f)))(xs))
        H = np.asarray(jax.jit(jax.vmap(jax.hessian(f)))(xs)) if hessian else None
    return J, H
