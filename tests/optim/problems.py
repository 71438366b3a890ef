"""Shared test problems (with known minimisers)."""

import jax.numpy as jnp

A = jnp.array([[3.0, 1.0], [1.0, 2.0]])
B = jnp.array([1.0, -1.0])
X_QUAD = jnp.linalg.solve(A, B)


def quadratic(x):
    return 0.5 * x @ (A.astype(x.dtype) @ x) - B.astype(x.dtype) @ x


def rosenbrock(x):
    """Chained Rosenbrock; minimiser (1, …, 1), f = 0."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def six_hump_camel(x):
    return (4 - 2.1 * x[0] ** 2 + x[0] ** 4 / 3) * x[0] ** 2 + x[0] * x[1] + (
        -4 + 4 * x[1] ** 2) * x[1] ** 2


def broyden_tridiagonal(x):
    xp = jnp.concatenate([jnp.zeros(1, x.dtype), x[:-1]])
    xn = jnp.concatenate([x[1:], jnp.zeros(1, x.dtype)])
    return (3.0 - 2.0 * x) * x - xp - 2.0 * xn + 1.0
