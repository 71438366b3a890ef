r"""Newton directions for minimisation: plain Newton and damped Newton (modified Cholesky).

Newton solves :math:`H(x_k) d = -\nabla f(x_k)`. Damped Newton factors
:math:`H + \tau I = LL^T` with the smallest :math:`\tau` of the sequence
:math:`0, \beta, 2\beta, \dots` (Nocedal & Wright, Algorithm 3.3, "Cholesky with added multiple
of the identity") that makes the factorisation succeed, so :math:`d` is a descent direction
even where :math:`H` is indefinite, and it is the exact Newton step where :math:`H` is positive
definite (hence quadratic convergence near a strong minimum).

The direction is written once for a stack of Hessians ``(..., n, n)`` and given to ``jax.vmap``
through :func:`jax.custom_batching.custom_vmap`. Under a plain ``vmap`` every data-dependent
branch turns into "compute both, select", and every ``while_loop`` carry into a select per
iteration: the retry loop of the modified Cholesky and the LU fallback of plain Newton would run
for the whole batch at every iteration, and each select is a pass over all the matrices. The
stacked version asks instead whether *any* problem of the batch needs the retry or the fallback,
so a multistart batch costs one batched factorisation and two batched triangular solves per
iteration, as a single problem does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import custom_batching, lax


class NewtonInfo(NamedTuple):
    singular: jax.Array  # the Newton system could not be solved
    nonfinite: jax.Array  # the Hessian has NaN or inf entries


def _factor(m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Lower Cholesky factor of the symmetric stack ``m`` and, per matrix, whether it worked.

    LAPACK wants column-major matrices: the transpose of a row-major symmetric matrix is the
    same matrix stored column-major, so XLA passes it through without a copy. The symmetric
    input also skips ``jnp.linalg.cholesky``'s ``(a + a^T) / 2`` pass. A failed factorisation
    is all NaN, so its diagonal is enough to tell (O(n), not O(n^2)).
    """
    chol = lax.linalg.cholesky(jnp.swapaxes(m, -1, -2), symmetrize_input=False)
    return chol, jnp.all(jnp.isfinite(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def _chol_solve(chol: jax.Array, b: jax.Array) -> jax.Array:
    """``(L L^T)^{-1} b`` for stacks ``L (..., n, n)``, ``b (..., n)``."""
    y = lax.linalg.triangular_solve(chol, b[..., None], left_side=True, lower=True)
    return lax.linalg.triangular_solve(chol, y, left_side=True, lower=True,
                                       transpose_a=True)[..., 0]


def _shift(h: jax.Array, tau: jax.Array) -> jax.Array:
    return h + tau[..., None, None] * jnp.eye(h.shape[-1], dtype=h.dtype)


def _abs_max(h: jax.Array) -> jax.Array:
    """``max |H_ij|`` per matrix; NaN or inf when an entry is (one pass gives both)."""
    return jnp.max(jnp.abs(h), axis=(-2, -1))


MAX_TRIES = 64  # shifts tried by the modified Cholesky before it gives up


def _first_factor(h: jax.Array) -> tuple[jax.Array, ...]:
    r"""The first try of the modified Cholesky on a stack: ``(L, tau, beta, retry, finite)``.

    :math:`\tau_0 = 0` if :math:`\min_i H_{ii} > 0`, else :math:`\beta - \min_i H_{ii}`, with
    :math:`\beta = 10^{-3}\max(1, \max|H_{ij}|)`; ``retry`` marks the matrices whose
    factorisation failed; a matrix with a NaN or inf entry (``finite`` False) is not retried.
    """
    amax = _abs_max(h)
    finite = jnp.isfinite(amax)
    beta = (1e-3 * jnp.maximum(1.0, amax)).astype(h.dtype)
    min_diag = jnp.min(jnp.diagonal(h, axis1=-2, axis2=-1), axis=-1)
    tau = jnp.where((min_diag > 0) | ~finite, 0.0, beta - min_diag).astype(h.dtype)
    chol, ok = _factor(_shift(h, tau))  # the usual case: one factorisation, no loop
    return chol, tau, beta, ~ok & finite, finite


def _search_shift(h, tau, beta, retry, max_tries: int) -> jax.Array:
    r""":math:`\tau \leftarrow \max(2\tau, \beta)` for the matrices in ``retry`` until
    :math:`H + \tau I` factors. The loop carries only the shifts: the caller factors once more
    at the final ones (retries are rare; a factor in the carry would cost copies every time)."""

    def cond(s):
        return jnp.any(s[1]) & (s[2] < max_tries)

    def body(s):
        tau, retry, i = s
        tau = jnp.where(retry, jnp.maximum(2.0 * tau, beta), tau)
        return tau, retry & ~_factor(_shift(h, tau))[1], i + 1

    return lax.while_loop(cond, body, (tau, retry, jnp.int32(1)))[0]


def _modified_cholesky_stack(h: jax.Array, max_tries: int) -> tuple[jax.Array, jax.Array]:
    chol, tau, beta, retry, _ = _first_factor(h)
    tau = _search_shift(h, tau, beta, retry, max_tries)
    return lax.cond(jnp.any(retry), lambda: _factor(_shift(h, tau))[0], lambda: chol), tau


def _stack_aware(stack_fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function of single arrays from ``stack_fn`` of stacks: called on one problem it sees a
    stack of one; under ``jax.vmap`` it sees the batch (see the module docstring)."""

    @custom_batching.custom_vmap
    def single(*args):
        return jax.tree.map(lambda o: o[0], stack_fn(*(a[None] for a in args)))

    @single.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape))
                for a, b in zip(args, in_batched, strict=True)]
        out = stack_fn(*args)
        return out, jax.tree.map(lambda _: True, out)

    return single


def _damped_stack(h: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    chol, tau, beta, retry, finite = _first_factor(h)
    d = -_chol_solve(chol, g)

    def shifted(d):
        new = _search_shift(h, tau, beta, retry, MAX_TRIES)
        return jnp.where(retry[..., None], -_chol_solve(_factor(_shift(h, new))[0], g), d)

    # the factor never enters a branch (a conditional's operands get the default layout, so
    # a column-major factor would be copied into it)
    return lax.cond(jnp.any(retry), shifted, lambda d: d, d), finite


def _plain_stack(h: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    finite = jnp.isfinite(_abs_max(h))
    chol, pd = _factor(h)
    d = -_chol_solve(chol, g)
    # an indefinite (or singular) Hessian: LU, run only when some matrix of the stack needs it
    return lax.cond(jnp.all(pd), lambda: d,
                    lambda: jnp.where(pd[..., None], d, -jnp.linalg.solve(h, g[..., None])[..., 0])
                    ), finite


_damped_direction = _stack_aware(_damped_stack)
_plain_direction = _stack_aware(_plain_stack)


def _curvature_stack(h: jax.Array) -> jax.Array:
    delta = jnp.sqrt(jnp.finfo(h.dtype).eps) * jnp.maximum(1.0, _abs_max(h))
    return ~_factor(_shift(h, delta))[1]


_curvature = _stack_aware(_curvature_stack)


def has_negative_curvature(h: jax.Array) -> jax.Array:
    r"""True when :math:`H + \delta I` is not positive definite, :math:`\delta = \sqrt{\varepsilon}
    \max(1, \max|H_{ij}|)`: a curvature below :math:`-\delta` (a saddle or a maximum).

    Example:
        >>> import jax.numpy as jnp
        >>> bool(has_negative_curvature(jnp.array([[2.0, 0.0], [0.0, -1e-3]])))
        True
    """
    return _curvature(h)


def modified_cholesky(h: jax.Array, *, max_tries: int = MAX_TRIES) -> tuple[jax.Array, jax.Array]:
    r"""Cholesky factor of :math:`H + \tau I` for the first :math:`\tau` that works.

    :math:`\tau_0 = 0` if :math:`\min_i H_{ii} > 0`, else :math:`\beta - \min_i H_{ii}`; then
    :math:`\tau \leftarrow \max(2\tau, \beta)` with :math:`\beta = 10^{-3}\max(1, \max|H_{ij}|)`.
    ``h`` may be a stack ``(..., n, n)``; each matrix gets its own :math:`\tau`.

    Returns:
        ``(L, tau)``, ``L`` lower triangular.

    Example:
        >>> import jax.numpy as jnp
        >>> L, tau = modified_cholesky(jnp.array([[1.0, 0.0], [0.0, -1.0]]))
        >>> bool(tau > 1.0)
        True
    """
    stack = h[None] if h.ndim == 2 else h
    chol, tau = _modified_cholesky_stack(stack, max_tries)
    return (chol[0], tau[0]) if h.ndim == 2 else (chol, tau)


def symmetric_hessian(grad_fn: Callable[[jax.Array], jax.Array]) -> Callable[..., jax.Array]:
    r"""``x -> H(x)`` by forward over reverse, stacked as the products :math:`H e_i`.

    ``jax.jacfwd`` stacks the same products and then moves the stacking axis last, a transpose
    XLA carries out as a copy of the matrix; a Hessian is symmetric, so the stack already is
    :math:`H`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> hess = symmetric_hessian(jax.grad(lambda x: x[0] ** 2 * x[1]))
        >>> hess(jnp.array([1.0, 2.0])).tolist()
        [[4.0, 2.0], [2.0, 0.0]]
    """

    def hess(x: jax.Array) -> jax.Array:
        basis = jnp.eye(x.shape[0], dtype=x.dtype)
        return jax.vmap(lambda v: jax.jvp(grad_fn, (x,), (v,))[1])(basis)

    return hess


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
        d, finite_h = (_damped_direction if self.damped else _plain_direction)(h, g)
        singular = ~jnp.all(jnp.isfinite(d))
        d = jnp.where(singular, -g, d)
        return d, NewtonInfo(singular & finite_h, ~finite_h)

    def update(self, aux, s, y):
        return aux
