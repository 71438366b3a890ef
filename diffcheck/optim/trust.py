r"""Trust-region Newton: the step minimises the quadratic model inside a ball.

At :math:`x_k` the model is :math:`m(p) = g^Tp + \tfrac12 p^THp` with :math:`g = \nabla f(x_k)`,
:math:`H = \nabla^2 f(x_k)`; the step solves :math:`\min m(p)` subject to
:math:`\|p\| \le \Delta_k`. The ratio :math:`\rho = (f(x_k) - f(x_k + p)) / (-m(p))` of the
actual to the predicted decrease decides: the step is taken when :math:`\rho > \eta`, the
radius shrinks when :math:`\rho < 1/4` and grows when :math:`\rho > 3/4` on the boundary
(Nocedal & Wright, Algorithm 4.1). Unlike a line search along a Newton direction, the step is
defined where :math:`H` is singular or indefinite, and a direction of negative curvature is
followed out of saddles.

Two solvers of the subproblem:

* :func:`more_sorensen`, for small ``n``: the nearly exact solution of Moré & Sorensen (1983),
  Newton's method on the secular equation :math:`1/\|p(\lambda)\| = 1/\Delta` with
  :math:`(H + \lambda I) p(\lambda) = -g`, one Cholesky factorisation per trial
  :math:`\lambda`, safeguarded by bounds from Gershgorin's theorem (Conn, Gould & Toint,
  *Trust-region methods*, 7.3), and the "hard case" (``g`` orthogonal to the eigenvector of the
  smallest eigenvalue) by a step to the boundary along an approximate eigenvector from inverse
  iteration with the same factor.
* :func:`steihaug`, for large ``n``: conjugate gradients on Hessian-vector products (Steihaug
  1983, Toint 1981), stopped at the boundary, at negative curvature, or when the residual is
  below :math:`\min(0.1, \sqrt{\|g\|})\|g\|`; never forms :math:`H`.

Both are ``lax.while_loop`` s over arrays, so the whole solve jits and ``vmap`` s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from diffcheck.optim.newton import _chol_solve, _factor


class Step(NamedTuple):
    """A subproblem solution: the step, whether it lies on the boundary, the model decrease
    :math:`-m(p)`, and whether negative curvature was met on the way (conjugate gradients
    only; the dense solver leaves the curvature test to the caller, who has the Hessian)."""

    p: jax.Array
    boundary: jax.Array
    decrease: jax.Array
    negative: jax.Array


def _to_boundary(p, z, radius):
    """Both roots ``t`` of ``||p + t z|| = radius`` (``||p|| <= radius``): ``(t_minus, t_plus)``."""
    a = jnp.vdot(z, z)
    b = 2.0 * jnp.vdot(p, z)
    c = jnp.vdot(p, p) - radius**2
    root = jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0))
    a = jnp.where(a > 0, a, 1.0)
    # stable quadratic formula: one root from q, the other from c / q
    q = -0.5 * (b + jnp.where(b >= 0, root, -root))
    q = jnp.where(q == 0, -jnp.finfo(p.dtype).tiny, q)
    t1, t2 = q / a, c / q
    return jnp.minimum(t1, t2), jnp.maximum(t1, t2)


def _gershgorin(h):
    diag = jnp.diagonal(h)
    off = jnp.sum(jnp.abs(h), axis=1) - jnp.abs(diag)
    return jnp.min(diag - off), jnp.max(diag + off)


def _lambda_bounds(h, gnorm, radius):
    """Initial bounds on the multiplier (Conn, Gould & Toint 7.3.8); the upper one with a
    relative margin of sqrt(eps), so that for g = 0 (a saddle) the interval holds
    multipliers that make H + lambda I positive definite, not only -lambda_min."""
    lb, ub = _gershgorin(h)
    norm = jnp.minimum(jnp.linalg.norm(h), jnp.max(jnp.sum(jnp.abs(h), axis=1)))
    hi = jnp.maximum(0.0, gnorm / radius + jnp.minimum(-lb, norm))
    hi = hi + jnp.sqrt(jnp.finfo(h.dtype).eps) * jnp.maximum(hi, norm)
    lo = jnp.maximum(jnp.maximum(0.0, -jnp.min(jnp.diagonal(h))),
                     gnorm / radius - jnp.minimum(ub, norm))
    return lo, hi


def _between(lo, hi):
    """A multiplier inside ``(lo, hi)``, biased towards ``lo`` (Conn, Gould & Toint 7.3.14)."""
    return jnp.maximum(jnp.sqrt(jnp.abs(lo * hi)), lo + 0.01 * (hi - lo))


def _smallest_direction(chol, n, dtype):
    """Approximate eigenvector of the smallest eigenvalue of ``L L^T``: three steps of inverse
    iteration from a fixed start that is orthogonal to no coordinate direction."""
    v = jnp.cos(jnp.arange(n, dtype=dtype) * 2.399963) + 1.5
    for _ in range(3):
        v = _chol_solve(chol, v)
        v = v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(dtype).tiny)
    return v


class _MS(NamedTuple):
    lam: jax.Array
    lo: jax.Array
    hi: jax.Array
    p: jax.Array
    done: jax.Array
    boundary: jax.Array
    negative: jax.Array
    i: jax.Array


def more_sorensen(h: jax.Array, g: jax.Array, radius: jax.Array, *, maxiter: int = 30,
                  k_easy: float = 0.1, k_hard: float = 0.2) -> Step:
    r"""Nearly exact minimiser of :math:`g^Tp + \frac12 p^THp` over :math:`\|p\| \le \Delta`.

    Stops when :math:`\|p\|` is within ``k_easy`` of the radius (or the unconstrained Newton
    step is inside), or, in the hard case, when the boundary step along the approximate
    eigenvector changes the model by at most ``k_hard`` of its value (Moré & Sorensen 1983).

    Example:
        >>> import jax.numpy as jnp
        >>> step = more_sorensen(jnp.diag(jnp.array([2.0, -1.0])), jnp.array([1.0, 0.0]),
        ...                      jnp.array(2.0))
        >>> p = step.p  # the hard case: along the eigenvector of -1 to the boundary
        >>> bool(step.boundary), round(float(jnp.linalg.norm(p)), 3), round(float(p[0]), 1)
        (True, 2.0, -0.3)
    """
    n, dtype = g.shape[0], g.dtype
    eye = jnp.eye(n, dtype=dtype)
    gnorm = jnp.linalg.norm(g)
    lo, hi = _lambda_bounds(h, gnorm, radius)
    lam0 = jnp.where(lo == 0, 0.0, _between(lo, hi))
    flat_g = gnorm == 0

    def body(s: _MS) -> _MS:
        shifted = h + s.lam * eye
        chol, pd = _factor(shifted[None])
        chol, pd = chol[0], pd[0]
        p = -_chol_solve(chol, g)
        pn = jnp.linalg.norm(p)
        z = _smallest_direction(chol, n, dtype)
        s_min2 = jnp.maximum(jnp.vdot(z, shifted @ z), 0.0)
        # g ~ 0: the answer is a step along z (to the boundary) when lam > 0
        p = jnp.where(flat_g, jnp.zeros_like(p), p)
        pn = jnp.where(flat_g, 0.0, pn)
        interior = pd & (s.lam == 0) & (pn <= radius)
        w = lax.linalg.triangular_solve(chol, p[:, None], left_side=True, lower=True)[:, 0]
        lam_newton = s.lam + (pn / jnp.linalg.norm(w)) ** 2 * (pn - radius) / radius
        inside = pd & ~interior & (pn < radius)
        outside = pd & ~interior & (pn >= radius)
        t_minus, t_plus = _to_boundary(p, z, radius)
        t = jnp.where(jnp.abs(t_minus) < jnp.abs(t_plus), t_minus, t_plus)
        curv = jnp.vdot(p, shifted @ p) + s.lam * radius**2
        hard = inside & (t * t * s_min2 <= k_hard * curv)
        easy = outside & (jnp.abs(pn - radius) <= k_easy * radius)
        lo = jnp.where(inside, jnp.maximum(s.lo, s.lam - s_min2),
                       jnp.where(outside | ~pd, jnp.maximum(s.lo, s.lam), s.lo))
        hi = jnp.where(inside, s.lam, s.hi)
        lam = jnp.where(outside, lam_newton, jnp.where(
            inside & (lam_newton > lo), lam_newton, _between(lo, hi)))
        done = interior | hard | easy
        p_new = jnp.where(hard, p + t * z, p)
        keep = s.done
        return _MS(jnp.where(keep, s.lam, lam), jnp.where(keep, s.lo, lo),
                   jnp.where(keep, s.hi, hi), jnp.where(keep | ~pd, s.p, p_new), keep | done,
                   jnp.where(keep, s.boundary, ~interior), s.negative, s.i + 1)

    def cond(s: _MS) -> jax.Array:
        return ~s.done & (s.i < maxiter)

    # fallback (no factorisation worked): the Cauchy step along -g
    gh = jnp.vdot(g, h @ g)
    t_c = jnp.where(gh > 0, jnp.minimum(gnorm**2 / jnp.where(gh > 0, gh, 1.0), radius / gnorm),
                    radius / gnorm)
    cauchy = -jnp.where(gnorm > 0, t_c, 0.0) * g
    init = _MS(lam0, lo, hi, cauchy, jnp.bool_(False), jnp.bool_(True), jnp.bool_(False),
               jnp.int32(0))
    s = lax.while_loop(cond, body, init)
    p = s.p * jnp.minimum(1.0, radius / jnp.maximum(jnp.linalg.norm(s.p), jnp.finfo(dtype).tiny))
    decrease = -(jnp.vdot(g, p) + 0.5 * jnp.vdot(p, h @ p))
    return Step(p, s.boundary, decrease, s.negative)


class _CG(NamedTuple):
    z: jax.Array
    r: jax.Array
    d: jax.Array
    rr: jax.Array
    model: jax.Array  # m(z)
    done: jax.Array
    boundary: jax.Array
    negative: jax.Array
    i: jax.Array


def steihaug(hvp: Callable[[jax.Array], jax.Array], g: jax.Array, radius: jax.Array, *,
             maxiter: int | None = None) -> Step:
    r"""Steihaug–Toint truncated conjugate gradients for the trust-region subproblem.

    CG on :math:`Hp = -g` from :math:`p = 0` with products ``hvp(v)`` = :math:`Hv`; it stops
    at the boundary (the last iterate is extended to it), at a direction of non-positive
    curvature (the boundary point along it with the lower model value), or when the residual is
    below :math:`\min(0.1, \sqrt{\|g\|})\|g\|` (superlinear convergence of the outer method;
    SciPy's trust-ncg uses 1/2, which takes a third more outer iterations on chained
    Rosenbrock).
    The model value is tracked (:math:`m` falls by :math:`\alpha_k r_k^Tr_k / 2` per step), so no
    extra product is spent on the predicted decrease.

    Example:
        >>> import jax.numpy as jnp
        >>> h = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> step = steihaug(lambda v: h @ v, jnp.array([1.0, 2.0]), jnp.array(0.5))
        >>> round(float(jnp.linalg.norm(step.p)), 6), bool(step.boundary)
        (0.5, True)
    """
    n, dtype = g.shape[0], g.dtype
    maxiter = n if maxiter is None else maxiter
    gnorm = jnp.linalg.norm(g)
    tol = jnp.minimum(0.1, jnp.sqrt(gnorm)) * gnorm

    def body(s: _CG) -> _CG:
        bd = hvp(s.d)
        dbd = jnp.vdot(s.d, bd)
        negative = dbd <= 0
        alpha = s.rr / jnp.where(negative, 1.0, dbd)
        z_next = s.z + alpha * s.d
        outside = jnp.linalg.norm(z_next) >= radius
        t_minus, t_plus = _to_boundary(s.z, s.d, radius)
        # m(z + t d) - m(z) = t r.d + t^2 d'Bd / 2, with r.d = -r.r
        m_minus = -t_minus * s.rr + 0.5 * t_minus**2 * dbd
        m_plus = -t_plus * s.rr + 0.5 * t_plus**2 * dbd
        t = jnp.where(negative & (m_minus < m_plus), t_minus, t_plus)
        stop = negative | outside
        z = jnp.where(stop, s.z + t * s.d, z_next)
        m_t = jnp.where(negative & (m_minus < m_plus), m_minus, m_plus)
        model = s.model + jnp.where(stop, m_t, -0.5 * alpha * s.rr)
        r = s.r + alpha * bd
        rr = jnp.vdot(r, r)
        converged = jnp.sqrt(rr) < tol
        d = -r + (rr / jnp.where(s.rr > 0, s.rr, 1.0)) * s.d
        keep = s.done
        return _CG(jnp.where(keep, s.z, z), jnp.where(keep | stop, s.r, r),
                   jnp.where(keep | stop, s.d, d), jnp.where(keep | stop, s.rr, rr),
                   jnp.where(keep, s.model, model), keep | stop | converged,
                   jnp.where(keep, s.boundary, stop), s.negative | (~keep & negative), s.i + 1)

    def cond(s: _CG) -> jax.Array:
        return ~s.done & (s.i < maxiter)

    zero = jnp.zeros((), dtype)
    init = _CG(jnp.zeros_like(g), g, -g, gnorm**2, zero, gnorm == 0, jnp.bool_(False),
               jnp.bool_(False), jnp.int32(0))
    s = lax.while_loop(cond, body, init)
    return Step(s.z, s.boundary, -s.model, s.negative)
