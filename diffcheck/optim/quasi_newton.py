r"""Search directions that need only gradients: steepest descent, BFGS and L-BFGS.

Each method is a small object with ``init(x, g) -> aux``, ``direction(aux, x, g) -> (d, alpha0)``,
``reset(aux, flag) -> aux`` (forget the curvature information where ``flag``) and
``update(aux, s, y, accept) -> aux`` (store the pair when ``accept``), where
:math:`s = x_{k+1} - x_k` and :math:`y = g_{k+1} - g_k`; ``aux`` holds only arrays, so the
driver can carry it through ``lax.while_loop``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


def first_step(g: jax.Array) -> jax.Array:
    """Initial trial step ``min(1, 1/||g||)`` when no curvature information is known yet."""
    return jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(g), jnp.finfo(g.dtype).tiny))


def _unit_triangular_solve(n: jax.Array, b: jax.Array, *, lower: bool) -> jax.Array:
    """Solve ``(I + N) x = b`` for a strictly (lower or upper) triangular ``N``."""
    eye = jnp.eye(n.shape[0], dtype=n.dtype)
    return lax.linalg.triangular_solve(eye + n, b[:, None], left_side=True, lower=lower,
                                       unit_diagonal=True)[:, 0]


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

    def reset(self, aux, flag):
        return jax.tree.map(lambda a: jnp.where(flag, jnp.zeros_like(a), a), aux)

    def update(self, aux, s, y, accept=True):
        new = GDState(jnp.vdot(s, s), jnp.vdot(s, y))
        return jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, aux)


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
        return jnp.where(aux.fresh, -g, -(aux.h @ g)), alpha0

    def reset(self, aux, flag):
        """Forget the approximation where ``flag``: the next accepted pair sets ``H_0`` anew."""
        return aux._replace(fresh=aux.fresh | flag)

    def update(self, aux, s, y, accept=True):
        sy = jnp.vdot(s, y)
        h = jnp.where(aux.fresh, (sy / jnp.vdot(y, y)) * jnp.eye(s.shape[0], dtype=s.dtype), aux.h)
        hy = h @ y
        rho = 1.0 / sy
        h_new = h + (rho + rho**2 * jnp.vdot(y, hy)) * jnp.outer(s, s)
        h_new = h_new - rho * (jnp.outer(hy, s) + jnp.outer(s, hy))
        ok = _curvature_ok(s, y) & accept
        return BFGSState(jnp.where(ok, h_new, aux.h), aux.fresh & ~ok)


class LBFGSState(NamedTuple):
    s: jax.Array  # (m + 1, n) steps s_i, a ring buffer over rows 0..m-1; row m is scratch
    y: jax.Array  # (m + 1, n) gradient changes y_i
    sy: jax.Array  # (m + 1, m + 1): sy[i, j] = s_i^T y_j
    yy: jax.Array  # (m + 1, m + 1): yy[i, j] = y_i^T y_j
    rho: jax.Array  # (m + 1,), 1 / (y^T s); 0 marks an empty slot (always 0 in the scratch row)
    head: jax.Array  # slot of the next pair; the newest pair sits at head - 1 (mod m)
    count: jax.Array  # number of stored pairs (saturates at m)
    gamma: jax.Array  # s^T y / y^T y of the newest pair (H^0 = gamma I)


class LBFGS:
    r"""Limited-memory BFGS (Nocedal & Wright Algorithm 7.4), two-loop recursion in matrix form.

    Keeps the last ``m`` pairs :math:`(s_i, y_i)` in a fixed ring buffer (one row written per
    iteration, in place; a rejected pair goes to a scratch row); the initial matrix is
    :math:`H^0 = \gamma I` with :math:`\gamma = s^T y / y^T y` of the newest pair. The two
    loops of the recursion,

    .. math:: a_i = \rho_i s_i^T q_i, \quad q_{i-1} = q_i - a_i y_i \quad (\text{newest first}),
              \qquad b_i = \rho_i y_i^T r_i, \quad r_{i+1} = r_i + (a_i - b_i) s_i ,

    are two unit-triangular ``m x m`` solves on the Gram matrices :math:`S^TY` and
    :math:`Y^TY` (kept up to date with two matrix-vector products per pair), so a direction
    costs two products with the history and no loop over the pairs. Empty slots have
    :math:`\rho = 0` and drop out.
    """

    needs_hessian = False

    def __init__(self, m: int = 10):
        self.m = m

    def init(self, x, g):
        n, dtype, m = x.shape[0], x.dtype, self.m
        big = jnp.zeros((m + 1, n), dtype)
        small = jnp.zeros((m + 1, m + 1), dtype)
        return LBFGSState(big, big, small, small, jnp.zeros((m + 1,), dtype), jnp.int32(0),
                          jnp.int32(0), jnp.ones((), dtype))

    def reset(self, aux, flag):
        """Forget all pairs where ``flag`` (the buffers keep their values, ``rho`` is zeroed)."""
        return aux._replace(rho=jnp.where(flag, 0.0, aux.rho).astype(aux.rho.dtype),
                            count=jnp.where(flag, 0, aux.count),
                            gamma=jnp.where(flag, 1.0, aux.gamma).astype(aux.gamma.dtype))

    def direction(self, aux, x, g):
        m = self.m
        dtype = g.dtype
        order = (aux.head + jnp.arange(m)) % m  # slots from the oldest to the newest pair
        rho = aux.rho[order]
        sg = (aux.s @ g)[order]
        yg = (aux.y @ g)[order]
        sy = aux.sy[order][:, order]
        yy = aux.yy[order][:, order]
        # first loop, newest first: a_i + rho_i sum_{j newer} s_i^T y_j a_j = rho_i s_i^T g
        a = _unit_triangular_solve(rho[:, None] * jnp.triu(sy, 1), rho * sg, lower=False)
        # second loop, oldest first: y_i^T r_i = gamma y_i^T q + sum_{j older} (a_j - b_j) y_i^T s_j
        u = aux.gamma * (yg - yy @ a)
        low = jnp.tril(sy.T, -1)
        b = _unit_triangular_solve(rho[:, None] * low, rho * (u + low @ a), lower=True)
        cs = jnp.zeros((m + 1,), dtype).at[order].set(a - b)
        cy = jnp.zeros((m + 1,), dtype).at[order].set(a)
        r = aux.gamma * (g - cy @ aux.y) + cs @ aux.s
        alpha0 = jnp.where(aux.count > 0, jnp.ones((), dtype), first_step(g))
        return -r, alpha0

    def update(self, aux, s, y, accept=True):
        """Store the pair ``(s, y)`` when ``accept`` and the curvature condition hold."""
        m = self.m
        ok = _curvature_ok(s, y) & accept
        j = jnp.where(ok, aux.head, m)  # a rejected pair goes to the scratch row
        s_buf = lax.dynamic_update_index_in_dim(aux.s, s, j, 0)
        y_buf = lax.dynamic_update_index_in_dim(aux.y, y, j, 0)
        s_y = s_buf @ y  # s_i^T y for every slot i (including the new one)
        y_y = y_buf @ y
        y_s = y_buf @ s
        sy = aux.sy.at[:, j].set(s_y).at[j, :].set(y_s)
        yy = aux.yy.at[:, j].set(y_y).at[j, :].set(y_y)
        sy_new, yy_new = s_y[j], y_y[j]
        rho = aux.rho.at[j].set(jnp.where(ok, 1.0 / jnp.where(ok, sy_new, 1.0), 0.0))
        gamma = jnp.where(ok, sy_new / jnp.where(yy_new > 0, yy_new, 1.0), aux.gamma)
        return LBFGSState(s_buf, y_buf, sy, yy, rho, jnp.where(ok, (aux.head + 1) % m, aux.head),
                          jnp.where(ok, jnp.minimum(aux.count + 1, m), aux.count), gamma)
