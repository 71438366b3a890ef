r"""Newton directions for minimisation: plain Newton and damped Newton (modified Cholesky).

Newton solves :math:`H(x_k) d = -\nabla f(x_k)`. Damped Newton factors
:math:`H + \tau I = LL^T` with the smallest :math:`\tau` of the sequence
:math:`0, \beta, 2\beta, \dots` (Nocedal & Wright, Algorithm 3.3, "Cholesky with added multiple
of the identity") that makes the factorisation succeed, so :math:`d` is a descent direction
even where :math:`H` is indefinite, and it is the exact Newton step where :math:`H` is positive
definite (hence quadratic convergence near a strong minimum).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve


class NewtonInfo(NamedTuple):
    singular: jax.Array  # the Newton system could not be solved
    nonfinite: jax.Array  # the Hessian has NaN or inf entries


def _cholesky(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    # the Hessian is symmetric: skip jnp.linalg.cholesky's (a + a^T) / 2 pass over the matrix
    chol = lax.linalg.cholesky(a, symmetrize_input=False)
    # a failed factorisation is all NaN: checking the diagonal is enough (O(n), not O(n^2))
    return chol, jnp.all(jnp.isfinite(jnp.diagonal(chol)))


def _scale(h: jax.Array) -> jax.Array:
    return jnp.maximum(1.0, jnp.max(jnp.abs(h)))


def has_negative_curvature(h: jax.Array) -> jax.Array:
    r"""True when :math:`H + \delta I` is not positive definite, :math:`\delta = \sqrt{\varepsilon}
    \max(1, \max|H_{ij}|)`: a curvature below :math:`-\delta` (a saddle or a maximum)."""
    delta = jnp.sqrt(jnp.finfo(h.dtype).eps) * _scale(h)
    return ~_cholesky(h + delta * jnp.eye(h.shape[0], dtype=h.dtype))[1]


def modified_cholesky(h: jax.Array, *, max_tries: int = 64) -> tuple[jax.Array, jax.Array]:
    r"""Cholesky factor of :math:`H + \tau I` for the first :math:`\tau` that works.

    :math:`\tau_0 = 0` if :math:`\min_i H_{ii} > 0`, else :math:`\beta - \min_i H_{ii}`; then
    :math:`\tau \leftarrow \max(2\tau, \beta)` with :math:`\beta = 10^{-3}\max(1, \max|H_{ij}|)`.

    Returns:
        ``(L, tau)``.

    Example:
        >>> import jax.numpy as jnp
        >>> L, tau = modified_cholesky(jnp.array([[1.0, 0.0], [0.0, -1.0]]))
        >>> bool(tau > 1.0)
        True
    """
    eye = jnp.eye(h.shape[0], dtype=h.dtype)
    beta = 1e-3 * _scale(h)
    min_diag = jnp.min(jnp.diag(h))
    tau0 = jnp.where(min_diag > 0, 0.0, beta - min_diag).astype(h.dtype)
    chol0, ok0 = _cholesky(h + tau0 * eye)  # the usual case: one factorisation, no loop

    def cond(s):
        return ~s[2] & (s[3] < max_tries)

    def body(s):
        tau, _, _, i = s
        tau = jnp.maximum(2.0 * tau, beta)
        chol, ok = _cholesky(h + tau * eye)
        return tau, chol, ok, i + 1

    tau, chol, _, _ = lax.while_loop(cond, body, (tau0, chol0, ok0, jnp.int32(1)))
    return chol, tau


class Newton:
    r"""Newton's method :math:`x_{k+1} = x_k - \alpha_k H(x_k)^{-1}\nabla f(x_k)`.

    ``damped=False``: solve with Cholesky when :math:`H` is positive definite, else with LU; an
    exactly singular :math:`H` stops the solve (status ``SINGULAR``); a non-descent step falls
    back to steepest descent in the driver. ``damped=True``: modified Cholesky (never singular,
    always a descent direction).
    """

    needs_hessian = True

    def __init__(self, hess, *, damped: bool):
        self.hess = hess
        self.damped = damped

    def init(self, x, g):
        return ()

    def direction_with_hessian(self, h, g):
        """Newton direction from the Hessian ``h``: ``(d, NewtonInfo)``; one factorisation."""
        finite_h = jnp.all(jnp.isfinite(h))
        h = jnp.where(finite_h, h, jnp.eye(h.shape[0], dtype=h.dtype))
        if self.damped:
            chol, _ = modified_cholesky(h)
            d = -cho_solve((chol, True), g)
        else:
            chol, pd = _cholesky(h)
            d = lax.cond(pd, lambda: -cho_solve((chol, True), g),
                         lambda: -jnp.linalg.solve(h, g))
        singular = ~jnp.all(jnp.isfinite(d))
        d = jnp.where(singular, -g, d)
        return d, NewtonInfo(singular & finite_h, ~finite_h)

    def update(self, aux, s, y):
        return aux
