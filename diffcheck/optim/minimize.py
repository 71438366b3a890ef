r"""``minimize``: gradient descent, Newton, damped Newton, BFGS and L-BFGS in one ``while_loop``.

Every method iterates :math:`x_{k+1} = x_k + \alpha_k d_k` with a line search on
:math:`\psi(\alpha) = f(x_k + \alpha d_k)` and stops when :math:`\|\nabla f(x_k)\|_2 \le`
``tol``. The whole solve is one ``lax.while_loop`` over a state of arrays, so it jits and
``jax.vmap`` batches it over starting points (multistart) or over problem data (``args``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from diffcheck.optim import linesearch as _ls
from diffcheck.optim import result as R
from diffcheck.optim.newton import Newton, has_negative_curvature, symmetric_hessian
from diffcheck.optim.quasi_newton import BFGS, LBFGS, Inner, SteepestDescent, first_step

METHODS = ("gd", "newton", "newton-damped", "bfgs", "lbfgs")
LINESEARCHES = ("armijo", "wolfe")
_DEFAULT_LS = {"gd": "armijo", "newton": "armijo", "newton-damped": "armijo",
               "bfgs": "wolfe", "lbfgs": "wolfe"}
RUNNING = -1
PENDING = -2  # converged; a Newton method checks the curvature at x in the next pass


class _State(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    aux: Any
    k: jax.Array
    nfev: jax.Array
    njev: jax.Array
    nhev: jax.Array
    status: jax.Array
    stall: jax.Array
    force_sd: jax.Array
    hist: Any
    gnorm: Any = None  # ||g||, carried by the gradient methods (Newton recomputes it)


def _usage(msg: str) -> Exception:
    from diffcheck.errors import UsageError

    return UsageError(msg)


def _make_method(name: str, grad_fn, m: int):
    if name == "gd":
        return SteepestDescent()
    if name == "bfgs":
        return BFGS()
    if name == "lbfgs":
        return LBFGS(m)
    return Newton(symmetric_hessian(grad_fn), damped=name == "newton-damped")


def _write(hist, k, f, gnorm, step, x):
    if hist is None:
        return None
    return R.History(hist.f.at[k].set(f), hist.gnorm.at[k].set(gnorm),
                     hist.step.at[k].set(step), hist.x.at[k].set(x))


def _new_history(maxiter, x, f, gnorm):
    nan = jnp.full((maxiter + 1,), jnp.nan, x.dtype)
    xs = jnp.full((maxiter + 1, x.shape[0]), jnp.nan, x.dtype)
    return _write(R.History(nan, nan, nan, xs), 0, f, gnorm, jnp.nan, x)


def _initial_state(vg, x0, tol, maxiter, history, aux, pending_status):
    dtype = x0.dtype
    f0, g0 = vg(x0)
    f0 = f0.astype(dtype)
    g0 = g0.astype(dtype)
    gnorm0 = jnp.linalg.norm(g0)
    finite0 = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0))
    status0 = jnp.where(~finite0, R.NONFINITE,
                        jnp.where(gnorm0 <= tol, pending_status, RUNNING))
    status0 = jnp.where((status0 == RUNNING) & (maxiter == 0), R.MAXITER, status0)
    hist = _new_history(maxiter, x0, f0, gnorm0) if history else None
    return _State(x0, f0, g0, aux(x0, g0), jnp.int32(0), jnp.int32(1), jnp.int32(1),
                  jnp.int32(0), jnp.int32(status0), jnp.int32(0), jnp.bool_(False), hist)


def _progress(s, f, eps, tiny, patience, maxiter, k):
    """Stall counter and the MAXITER / STAGNATION status after a step to ``f``."""
    negligible = (s.f - f) <= 2.0 * eps * jnp.maximum(jnp.abs(s.f), tiny)
    stall = jnp.where(negligible, s.stall + 1, 0)
    status = jnp.where(k >= maxiter, R.MAXITER, RUNNING)
    status = jnp.where(stall >= patience, R.STAGNATION, status)
    return stall, status


def _solve_flat(vg, grad_fn, x0, tol, c1, c2, f_lower, *, method, linesearch, maxiter, m,
                history, patience):
    dtype = x0.dtype
    tol = jnp.asarray(tol, dtype)
    meth = _make_method(method, grad_fn, m)
    if linesearch == "wolfe":
        search = functools.partial(_ls.wolfe, vg, c1=c1, c2=c2)
    else:
        search = functools.partial(_ls.armijo, vg, c1=c1)
    solve = _solve_newton if meth.needs_hessian else _solve_gradient
    s = solve(vg, meth, search, x0, tol, maxiter=maxiter, history=history, patience=patience)
    f_lower = jnp.asarray(f_lower, dtype)
    eps = jnp.finfo(dtype).eps
    above = jnp.isfinite(f_lower) & (
        s.f > f_lower + jnp.sqrt(eps) * jnp.maximum(1.0, jnp.abs(f_lower)))
    status = jnp.where((s.status == R.SUCCESS) & above, R.LOCAL_MINIMUM, s.status)
    return s, status


def _cond(s: _State):
    return s.status == RUNNING


def _solve_gradient(vg, meth, search, x0, tol, *, maxiter, history, patience):
    """Steepest descent, BFGS, L-BFGS: a lean loop body (one line search, one history update).

    All inner products an iteration needs after the line search (``||g||``, ``s^T s``,
    ``s^T y``, ``y^T y``) come from one 3 x 3 Gram matrix: on a CPU every reduction is a few
    separate kernels, and the scalar bookkeeping, not the arithmetic, is what costs.
    """
    dtype = x0.dtype
    eps = jnp.finfo(dtype).eps
    tiny = jnp.finfo(dtype).tiny
    state = _initial_state(vg, x0, tol, maxiter, history, meth.init, R.SUCCESS)
    state = state._replace(gnorm=jnp.linalg.norm(state.g))

    def body(s: _State) -> _State:
        d_m, alpha_m = meth.direction(s.aux, s.x, s.g, s.gnorm)
        gd_m = jnp.vdot(s.g, d_m, precision="highest")
        use_sd = s.force_sd | ~(jnp.isfinite(gd_m) & (gd_m < 0))
        d = jnp.where(use_sd, -s.g, d_m)
        gd = jnp.where(use_sd, -s.gnorm**2, gd_m)
        alpha0 = jnp.where(use_sd, first_step(s.g, s.gnorm), alpha_m)
        ls = search(s.x, s.f, s.g, d, alpha0, d0=gd)
        ok = ls.ok
        # a failed search returns the start point: x, f, g are unchanged and step = 0
        x, f, g = ls.x, ls.f, ls.g
        step = x - s.x
        y = g - s.g
        v = jnp.stack([g, step, y])
        gram = jnp.matmul(v, v.T, precision="highest")
        gnorm = jnp.sqrt(gram[0, 0])
        inner = Inner(gram[1, 1], gram[1, 2], gram[2, 2])
        aux = meth.update(meth.reset(s.aux, use_sd & ok), step, y, ok, inner)
        k = s.k + 1
        stall, status = _progress(s, f, eps, tiny, patience, maxiter, k)
        predicted = jnp.abs(alpha0 * gd)
        at_floor = predicted <= 100.0 * eps * jnp.maximum(jnp.abs(s.f), tiny)
        failed = ~ok & use_sd
        status = jnp.where(failed, jnp.where(at_floor, R.STAGNATION, R.LINESEARCH_FAILED), status)
        status = jnp.where(ok & (gnorm <= tol), R.SUCCESS, status)
        hist = s.hist
        if history:
            hist = _write(s.hist, k, f, gnorm, jnp.sqrt(inner.ss), x)
        return _State(x, f, g, aux, k, s.nfev + ls.nfev, s.njev + ls.nfev, s.nhev,
                      status.astype(jnp.int32), stall, ~ok & ~use_sd, hist, gnorm)

    return lax.while_loop(_cond, body, state)


def _solve_newton(vg, meth, search, x0, tol, *, maxiter, history, patience):
    """Newton and damped Newton; the curvature (saddle) check runs once, after the loop."""
    dtype = x0.dtype
    eps = jnp.finfo(dtype).eps
    tiny = jnp.finfo(dtype).tiny
    state = _initial_state(vg, x0, tol, maxiter, history, meth.init, PENDING)

    def body(s: _State) -> _State:
        h = meth.hess(s.x).astype(dtype)
        d_m, info = meth.direction_with_hessian(h, s.g)
        h_bad = info.singular | info.nonfinite
        gd_m = jnp.vdot(s.g, d_m)
        use_sd = s.force_sd | ~(jnp.isfinite(gd_m) & (gd_m < 0))
        d = jnp.where(use_sd, -s.g, d_m)
        alpha0 = jnp.where(use_sd, first_step(s.g), jnp.ones((), dtype))
        ls = search(s.x, s.f, s.g, d, alpha0)
        ok = ls.ok & ~h_bad
        x = jnp.where(ok, ls.x, s.x)
        f = jnp.where(ok, ls.f, s.f)
        g = jnp.where(ok, ls.g, s.g)
        gnorm = jnp.linalg.norm(g)
        k = jnp.where(h_bad, s.k, s.k + 1)
        stall, status = _progress(s, f, eps, tiny, patience, maxiter, k)
        predicted = jnp.abs(alpha0 * jnp.vdot(s.g, d))
        at_floor = predicted <= 100.0 * eps * jnp.maximum(jnp.abs(s.f), tiny)
        failed = ~ok & use_sd
        status = jnp.where(failed, jnp.where(at_floor, R.STAGNATION, R.LINESEARCH_FAILED), status)
        status = jnp.where(ok & (gnorm <= tol), PENDING, status)
        status = jnp.where(h_bad, jnp.where(info.nonfinite, R.NONFINITE, R.SINGULAR), status)
        hist = s.hist
        if history:
            snorm = jnp.where(ok, jnp.linalg.norm(ls.x - s.x), 0.0)
            new = _write(s.hist, k, f, gnorm, snorm, x)
            hist = jax.tree.map(lambda a, b: jnp.where(h_bad, b, a), new, s.hist)
        return _State(x, f, g, s.aux, k, jnp.where(h_bad, s.nfev, s.nfev + ls.nfev),
                      jnp.where(h_bad, s.njev, s.njev + ls.nfev), s.nhev + 1,
                      status.astype(jnp.int32), jnp.where(h_bad, s.stall, stall),
                      ~ok & ~use_sd & ~h_bad, hist)

    s = lax.while_loop(_cond, body, state)
    # converged (PENDING): one Hessian at x decides between SUCCESS and SADDLE
    pending = s.status == PENDING
    saddle = lax.cond(pending, lambda x: has_negative_curvature(meth.hess(x).astype(dtype)),
                      lambda x: jnp.bool_(False), s.x)
    status = jnp.where(pending, jnp.where(saddle, R.SADDLE, R.SUCCESS), s.status)
    return s._replace(status=status.astype(jnp.int32),
                      nhev=s.nhev + pending.astype(jnp.int32))


@functools.partial(jax.jit, static_argnames=("fun", "method", "linesearch", "maxiter", "m",
                                             "history", "patience"))
def _minimize(fun, x0, args, tol, c1, c2, f_lower, *, method, linesearch, maxiter, m, history,
              patience):
    flat, unravel = ravel_pytree(x0)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        flat = flat.astype(jnp.result_type(float))
        unravel_int = unravel
        unravel = lambda v: jax.tree.map(  # noqa: E731
            lambda a: a.astype(flat.dtype), unravel_int(v))

    def f_flat(v):
        # the solve runs in the dtype of x0: a float64 constant inside fun must not promote f
        return jnp.asarray(fun(unravel(v), *args)).astype(flat.dtype)

    grad_fn = jax.grad(f_flat)
    vg = jax.value_and_grad(f_flat)
    s, status = _solve_flat(vg, grad_fn, flat, tol, c1, c2, f_lower, method=method,
                            linesearch=linesearch, maxiter=maxiter, m=m, history=history,
                            patience=patience)
    return R.OptimizeResult(unravel(s.x), s.f, unravel(s.g), s.k, s.nfev, s.njev, s.nhev,
                            status == R.SUCCESS, status, s.hist)


def _check_float(name, value, lo, hi):
    if isinstance(value, int | float) and not lo < value < hi:
        raise _usage(f"{name} must lie in ({lo}, {hi}), got {value}")


def minimize(
    fun: Callable[..., jax.Array],
    x0: Any,
    method: str = "lbfgs",
    *,
    tol: float | None = None,
    maxiter: int | None = None,
    linesearch: str | None = None,
    c1: float = 1e-4,
    c2: float = 0.9,
    m: int = 10,
    args: tuple = (),
    history: bool = False,
    f_lower: float | None = None,
    patience: int = 20,
    check: bool = False,
) -> R.OptimizeResult:
    r"""Minimise a scalar JAX-traceable function.

    Methods (``d_k`` the direction, then a line search picks :math:`\alpha_k`):

    * ``"gd"``: steepest descent :math:`d = -\nabla f` (Barzilai–Borwein first trial step).
    * ``"newton"``: :math:`H d = -\nabla f`; converges quadratically near a strong minimum,
      stops with status ``SINGULAR`` on an exactly singular Hessian.
    * ``"newton-damped"``: modified Cholesky :math:`(H + \tau I) d = -\nabla f`, a descent
      direction also where :math:`H` is indefinite (non-convex problems).
    * ``"bfgs"``: dense inverse-Hessian quasi-Newton update.
    * ``"lbfgs"``: limited memory, the last ``m`` pairs (two-loop recursion in compact form).

    Line searches: ``"armijo"`` (backtracking, ``0 < c1 < 1/2``; default for gd and Newton)
    and ``"wolfe"`` (strong Wolfe with zoom, ``c1 < c2 < 1``; default for BFGS and L-BFGS).

    Honesty: ``success`` is true only when :math:`\|\nabla f(x)\|_2 \le` ``tol`` (and, for the
    Newton methods, :math:`\nabla^2 f(x)` has no negative curvature). Otherwise ``status`` says
    why it stopped: ``MAXITER``, ``LINESEARCH_FAILED``, ``NONFINITE`` (NaN/inf at ``x0`` or in
    the Hessian; non-finite trial points only shrink the step), ``STAGNATION`` (``patience``
    iterations without a decrease above rounding, or a failed line search whose predicted
    decrease is at the noise floor, e.g. float32), ``SINGULAR``, ``SADDLE`` (Newton methods at
    a point with negative curvature) and ``LOCAL_MINIMUM`` (converged, but ``f`` is above the
    known lower bound ``f_lower``, e.g. ``f_lower=0`` for a sum of squares).

    Args:
        fun: ``fun(x, *args) -> scalar``, JAX-traceable; ``x`` has ``x0``'s pytree structure.
        x0: starting point, an array or a pytree of arrays; float32 and float64 are kept.
        method: one of ``"gd"``, ``"newton"``, ``"newton-damped"``, ``"bfgs"``, ``"lbfgs"``.
        tol: bound on the 2-norm of the gradient; default ``1e-5`` (float64) / ``1e-3``
            (float32).
        maxiter: iteration budget; default 10000 for ``gd``, 200 for Newton, 1000 otherwise.
        linesearch: ``"armijo"`` or ``"wolfe"``; default per method, see above.
        c1, c2: the Armijo and curvature constants.
        m: L-BFGS memory.
        args: extra arguments of ``fun`` (traced, so ``vmap`` can batch problem data).
        history: record ``f``, ``||g||``, the step length and the iterate per iteration into
            ``result.history`` (fixed ``maxiter + 1`` rows, NaN past ``nit``).
        f_lower: a known lower bound of ``f``; converging above it reports ``LOCAL_MINIMUM``.
        patience: iterations without progress before ``STAGNATION``.
        check: before the solve, verify the gradient of ``fun`` at ``x0`` (its custom rules
            included; reverse mode, so ``custom_vjp`` objectives work) with
            :func:`diffcheck.check_grads`; a wrong one raises :class:`diffcheck.DerivativeError`
            naming the worst entry. Needs concrete values: a ``UsageError`` inside jit/vmap.

    Returns:
        :class:`OptimizeResult` (x, fun, jac, nit, nfev, njev, nhev, success, status,
        history, and the ``message`` property).

    Example:
        >>> import jax.numpy as jnp
        >>> from diffcheck.optim import minimize
        >>> rosen = lambda x: 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        >>> res = minimize(rosen, jnp.array([-1.2, 1.0]), method="bfgs")
        >>> bool(res.success), [round(float(v), 4) for v in res.x]
        (True, [1.0, 1.0])
    """
    if method not in METHODS:
        raise _usage(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    linesearch = linesearch or _DEFAULT_LS[method]
    if linesearch not in LINESEARCHES:
        raise _usage(f"unknown line search {linesearch!r}; choose 'armijo' or 'wolfe'")
    _check_float("c1", c1, 0.0, 0.5)
    if isinstance(c1, int | float) and isinstance(c2, int | float) and not c1 < c2 < 1:
        raise _usage(f"c2 must lie in (c1, 1) = ({c1}, 1), got {c2}")
    if maxiter is None:
        maxiter = {"gd": 10000, "newton": 200, "newton-damped": 200}.get(method, 1000)
    if int(maxiter) < 0 or int(m) < 1 or int(patience) < 1:
        raise _usage("maxiter must be >= 0, m and patience >= 1")
    if tol is None:
        leaves = jax.tree.leaves(x0)
        single = bool(leaves) and all(jnp.result_type(a) == jnp.float32 for a in leaves)
        tol = 1e-3 if single or not jax.config.jax_enable_x64 else 1e-5
    if isinstance(tol, int | float) and not tol >= 0:
        raise _usage(f"tol must be >= 0, got {tol}")
    f_lower = -jnp.inf if f_lower is None else f_lower
    if check:  # verified gradients feed the optimizer
        from diffcheck.jaxcheck import verify

        verify(fun, x0, tuple(args), mode="rev", caller="minimize")
    return _minimize(fun, x0, tuple(args), tol, c1, c2, f_lower, method=method,
                     linesearch=linesearch, maxiter=int(maxiter), m=int(m),
                     history=bool(history), patience=int(patience))
