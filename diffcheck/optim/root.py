r"""``root``: Newton's method for :math:`F(x) = 0`, scalar or vector.

.. math:: x_{k+1} = x_k - J(x_k)^{-1} F(x_k), \qquad J_{jk} = \partial F_j / \partial x_k .

Near a simple root the error squares each step; for :math:`F(x) = x^2 - 9`,
:math:`e_{k+1} = e_k^2 / (2 x_k)` with :math:`e_k = x_k - 3`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from diffcheck.optim import result as R


class _RootState(NamedTuple):
    x: jax.Array
    fx: jax.Array
    jac: jax.Array
    k: jax.Array
    nfev: jax.Array
    njev: jax.Array
    status: jax.Array
    stall: jax.Array
    hist: Any


def _dense_step(fun_flat, x, fx):
    jac = jax.jacfwd(fun_flat)(x)
    lu_piv = jax.scipy.linalg.lu_factor(jac)  # one LU per iteration, no other O(n^3) work
    return -jax.scipy.linalg.lu_solve(lu_piv, fx), jac


def _gmres_step(fun_flat, x, fx):
    _, jvp = jax.linearize(fun_flat, x)
    forcing = jnp.clip(jnp.linalg.norm(fx), jnp.finfo(x.dtype).eps, 0.1)
    d, _ = jax.scipy.sparse.linalg.gmres(jvp, -fx, tol=forcing, restart=30, maxiter=10)
    return d, jnp.zeros((0,), x.dtype)


def _backtrack_finite(fun_flat, x, d, max_halvings=40):
    """Step ``x + a d`` with ``a = 1, 1/2, …``: the first trial where ``F`` is finite."""

    def cond(s):
        return ~jnp.all(jnp.isfinite(s[1])) & (s[2] < max_halvings)

    def body(s):
        a = 0.5 * s[0]
        return a, fun_flat(x + a * d), s[2] + 1

    one = jnp.ones((), x.dtype)
    a, fx, i = lax.while_loop(cond, body, (one, fun_flat(x + d), jnp.int32(1)))
    return x + a * d, fx, i


@functools.partial(jax.jit, static_argnames=("fun", "maxiter", "history", "solver", "patience"))
def _root(fun, x0, args, tol, *, maxiter, history, solver, patience):
    flat, unravel = ravel_pytree(x0)
    scalar = jnp.ndim(x0) == 0 and not isinstance(x0, list | tuple | dict)
    dtype = flat.dtype if jnp.issubdtype(flat.dtype, jnp.floating) else jnp.result_type(float)
    flat = flat.astype(dtype)
    eps = jnp.finfo(dtype).eps

    def fun_flat(v):
        return ravel_pytree(fun(unravel(v), *args))[0].astype(dtype)

    step_fn = _gmres_step if solver == "gmres" else _dense_step
    tol = jnp.asarray(tol, dtype)
    fx0 = fun_flat(flat)
    r0 = jnp.linalg.norm(fx0)
    status0 = jnp.where(~jnp.all(jnp.isfinite(fx0)), R.NONFINITE,
                        jnp.where(r0 <= tol, R.SUCCESS, -1))
    status0 = jnp.where((status0 == -1) & (maxiter == 0), R.MAXITER, status0)
    hist = None
    if history:
        nan = jnp.full((maxiter + 1,), jnp.nan, dtype)
        xs = jnp.full((maxiter + 1, flat.shape[0]), jnp.nan, dtype)
        hist = R.History(nan.at[0].set(0.5 * r0**2), nan.at[0].set(r0), nan, xs.at[0].set(flat))
    # the loop does not carry the (n, n) Jacobian (a copy per iteration): J(x) is recomputed once
    # after the loop for the result
    state = _RootState(flat, fx0, jnp.zeros((0,), dtype), jnp.int32(0), jnp.int32(1),
                       jnp.int32(0), jnp.int32(status0), jnp.int32(0), hist)

    def body(s: _RootState) -> _RootState:
        d, _ = step_fn(fun_flat, s.x, s.fx)
        singular = ~jnp.all(jnp.isfinite(d))
        x, fx, nf = _backtrack_finite(fun_flat, s.x, jnp.where(singular, 0.0, d))
        r_old, r = jnp.linalg.norm(s.fx), jnp.linalg.norm(fx)
        stall = jnp.where(r >= r_old * (1.0 - 4.0 * eps), s.stall + 1, 0)
        k = s.k + 1
        status = jnp.int32(-1)
        status = jnp.where(k >= maxiter, R.MAXITER, status)
        status = jnp.where(stall >= patience, R.STAGNATION, status)
        status = jnp.where(~jnp.all(jnp.isfinite(fx)), R.NONFINITE, status)
        status = jnp.where(r <= tol, R.SUCCESS, status)
        status = jnp.where(singular, R.SINGULAR, status)
        x, fx = jnp.where(singular, s.x, x), jnp.where(singular, s.fx, fx)
        hist = s.hist
        if history:
            r = jnp.linalg.norm(fx)
            hist = R.History(s.hist.f.at[k].set(0.5 * r**2), s.hist.gnorm.at[k].set(r),
                             s.hist.step.at[k].set(jnp.linalg.norm(x - s.x)),
                             s.hist.x.at[k].set(x))
        return _RootState(x, fx, s.jac, k, s.nfev + nf, s.njev + 1, status.astype(jnp.int32),
                          stall, hist)

    s = lax.while_loop(lambda s: s.status == -1, body, state)
    if solver == "dense":
        jac = jax.jacfwd(fun_flat)(s.x)
    else:
        jac = s.jac
    if scalar:
        jac = jac.reshape(())
    fx_out = s.fx.reshape(()) if scalar else s.fx
    return R.RootResult(unravel(s.x), fx_out, jac, s.k, s.nfev, s.njev, jnp.int32(0),
                        s.status == R.SUCCESS, s.status, s.hist)


def root(
    fun: Callable[..., Any],
    x0: Any,
    method: str = "newton",
    *,
    tol: float | None = None,
    maxiter: int = 100,
    args: tuple = (),
    linear_solver: str = "dense",
    history: bool = False,
    patience: int = 10,
    check: bool = False,
) -> R.RootResult:
    r"""Solve :math:`F(x) = 0` by Newton's method, :math:`x_{k+1} = x_k - J(x_k)^{-1}F(x_k)`.

    The Jacobian comes from ``jax.jacfwd``; ``linear_solver="gmres"`` instead solves
    :math:`J d = -F` matrix-free with GMRES on Jacobian–vector products (inexact Newton with
    forcing term :math:`\eta_k = \min(0.1, \|F(x_k)\|)`, still quadratically convergent) — the
    choice for large sparse systems. A trial point where :math:`F` is not finite halves the
    step. Stops with ``SUCCESS`` when :math:`\|F(x)\|_2 \le` ``tol``, ``SINGULAR`` when the
    Newton system has no finite solution, ``STAGNATION`` when :math:`\|F\|` stops decreasing
    for ``patience`` steps, ``NONFINITE`` or ``MAXITER``.

    Args:
        fun: ``fun(x, *args)``, same shape as ``x`` (scalar or array or pytree).
        x0: starting point.
        method: only ``"newton"``.
        tol: bound on :math:`\|F(x)\|_2`; default ``1e-10`` (float64) / ``1e-4`` (float32).
        maxiter: iteration budget.
        args: extra traced arguments of ``fun``.
        linear_solver: ``"dense"`` (LU) or ``"gmres"``.
        history: record :math:`\|F\|^2/2`, :math:`\|F\|`, the step and the iterate.
        patience: iterations without decrease of :math:`\|F\|` before ``STAGNATION``.
        check: before the solve, verify the Jacobian of ``fun`` at ``x0`` (forward mode, as
            the solve uses it) with :func:`diffcheck.check_grads`; a wrong one raises
            :class:`diffcheck.DerivativeError`. A ``UsageError`` inside jit/vmap.

    Returns:
        :class:`RootResult` with ``x``, ``fun`` = F(x), ``jac`` = J(x) (empty for GMRES), …

    Example:
        >>> import jax.numpy as jnp
        >>> from diffcheck.optim import root
        >>> res = root(lambda x: x ** 2 - 9.0, jnp.array(1.0))
        >>> bool(res.success), round(float(res.x), 6)
        (True, 3.0)
    """
    if method != "newton":
        raise R._usage_error(f"unknown root method {method!r}; only 'newton' is available")
    if linear_solver not in ("dense", "gmres"):
        raise R._usage_error(f"linear_solver must be 'dense' or 'gmres', got {linear_solver!r}")
    if int(maxiter) < 0 or int(patience) < 1:
        raise R._usage_error("maxiter must be >= 0 and patience >= 1")
    if tol is None:
        leaves = jax.tree.leaves(x0)
        single = bool(leaves) and all(jnp.result_type(a) == jnp.float32 for a in leaves)
        tol = 1e-4 if single or not jax.config.jax_enable_x64 else 1e-10
    if check:  # verified derivatives feed the solver
        from diffcheck.jaxcheck import verify

        verify(fun, x0, tuple(args), mode="fwd", caller="root")
    return _root(fun, x0, tuple(args), tol, maxiter=int(maxiter), history=bool(history),
                 solver=linear_solver, patience=int(patience))
