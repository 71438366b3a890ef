r"""Search directions that need only gradients: steepest descent, BFGS and L-BFGS.

Each method is a small object with ``init(x, g) -> aux``, ``direction(aux, x, g) -> (d, alpha0)``
and ``update(aux, s, y) -> aux`` where :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k`;
``aux`` holds only arrays, so the driver can carry it through ``lax.while_loop``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def first_step(g: jax.Array) -> jax.Array:
    """Initial trial step ``min(1, 1/||g||)`` when no curvature information is known yet."""
    return jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(g), jnp.finfo(g.dtype).tiny))


def _curvature_ok(s: jax.Array, y: jax.Array) -> jax.Array:
    sy = jnp.vdot(s, y)
    eps = jnp.finfo(s.dtype).eps
    return jnp.isfinite(sy) & (sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y))


class GDState(NamedTuple):
    ss: jax.Array  # s^T s of the last step
    sy: jax.Array  # s^T y of the last step


class SteepestDescent:
    r"""Steepest descent :math:`d = -\nabla f`, first trial step Barzilai–Borwein :math:`s^Ts/s^Ty`.

    The line search still enforces sufficient decrease, so the iteration is monotone.
    """

    needs_hessian = False

    def init(self, x, g):
        z = jnp.zeros((), x.dtype)
        return GDState(z, z)

    def direction(self, aux, x, g):
        bb = aux.ss / jnp.where(aux.sy > 0, aux.sy, 1.0)
        alpha0 = jnp.where((aux.sy > 0) & jnp.isfinite(bb), bb, first_step(g))
        return -g, alpha0

    def update(self, aux, s, y):
        return GDState(jnp.vdot(s, s), jnp.vdot(s, y))


class BFGSState(NamedTuple):
    h: jax.Array  # inverse Hessian approximation, (n, n)
    fresh: jax.Array  # True until the first curvature pair was accepted


class BFGS:
    r"""BFGS with the inverse-Hessian update (Nocedal & Wright eq. 6.17).

    :math:`H_{k+1} = (I - \rho s y^T) H_k (I - \rho y s^T) + \rho s s^T`, :math:`\rho = 1/y^Ts`,
    with :math:`H_0 = (s^Ty / y^Ty) I` set at the first accepted pair; pairs with
    :math:`s^Ty \le \varepsilon \|s\|\|y\|` are skipped so that :math:`H` stays positive definite.
    """

    needs_hessian = False

    def init(self, x, g):
        return BFGSState(jnp.eye(x.shape[0], dtype=x.dtype), jnp.bool_(True))

    def direction(self, aux, x, g):
        alpha0 = jnp.where(aux.fresh, first_step(g), jnp.ones((), x.dtype))
        return -(aux.h @ g), alpha0

    def update(self, aux, s, y):
        sy = jnp.vdot(s, y)
        h = jnp.where(aux.fresh, (sy / jnp.vdot(y, y)) * jnp.eye(s.shape[0], dtype=s.dtype), aux.h)
        hy = h @ y
        rho = 1.0 / sy
        h_new = h + (rho + rho**2 * jnp.vdot(y, hy)) * jnp.outer(s, s)
        h_new = h_new - rho * (jnp.outer(hy, s) + jnp.outer(s, hy))
        ok = _curvature_ok(s, y)
        return BFGSState(jnp.where(ok, h_new, aux.h), aux.fresh & ~ok)


class LBFGSState(NamedTuple):
    s: jax.Array  # (m, n), newest pair last
    y: jax.Array  # (m, n)
    rho: jax.Array  # (m,), 1 / (y^T s); 0 marks an empty slot
    count: jax.Array  # number of stored pairs (saturates at m)


class LBFGS:
    r"""Limited-memory BFGS with the two-loop recursion (Nocedal & Wright Algorithm 7.4).

    Keeps the last ``m`` pairs :math:`(s_i, y_i)`; the initial matrix is
    :math:`H^0 = \gamma I` with :math:`\gamma = s^T y / y^T y` of the newest pair. Empty slots
    have :math:`\rho = 0` and drop out of both loops, so the recursion is unrolled over a
    static ``m``.
    """

    needs_hessian = False

    def __init__(self, m: int = 10):
        self.m = m

    def init(self, x, g):
        n, dtype = x.shape[0], x.dtype
        zeros = jnp.zeros((self.m, n), dtype)
        return LBFGSState(zeros, zeros, jnp.zeros((self.m,), dtype), jnp.int32(0))

    def direction(self, aux, x, g):
        q = g
        alphas = []
        for i in reversed(range(self.m)):
            a = aux.rho[i] * jnp.vdot(aux.s[i], q)
            q = q - a * aux.y[i]
            alphas.append(a)
        s_new, y_new = aux.s[-1], aux.y[-1]
        yy = jnp.vdot(y_new, y_new)
        gamma = jnp.where(aux.count > 0, jnp.vdot(s_new, y_new) / jnp.where(yy > 0, yy, 1.0), 1.0)
        r = gamma * q
        for i, a in zip(range(self.m), reversed(alphas), strict=True):
            b = aux.rho[i] * jnp.vdot(aux.y[i], r)
            r = r + (a - b) * aux.s[i]
        alpha0 = jnp.where(aux.count > 0, jnp.ones((), x.dtype), first_step(g))
        return -r, alpha0

    def update(self, aux, s, y):
        ok = _curvature_ok(s, y)
        rho = 1.0 / jnp.where(ok, jnp.vdot(s, y), 1.0)
        new = LBFGSState(
            jnp.concatenate([aux.s[1:], s[None]]),
            jnp.concatenate([aux.y[1:], y[None]]),
            jnp.concatenate([aux.rho[1:], rho[None]]),
            jnp.minimum(aux.count + 1, self.m),
        )
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, aux)
