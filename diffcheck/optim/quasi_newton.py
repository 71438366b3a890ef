r"""Search directions that need only gradients: steepest descent, BFGS and L-BFGS.

Each method is a small object with ``init(x, g) -> aux``,
``direction(aux, x, g, gnorm=None) -> (d, alpha0)``, ``reset(aux, flag) -> aux`` (forget the
curvature information where ``flag``) and ``update(aux, s, y, accept, inner=None) -> aux``
(store the pair when ``accept``), and ``update_direction(aux, s, y, accept, inner, x, g,
gnorm) -> (aux, d, alpha0, slope)``, both at once at the new gradient ``g`` (which L-BFGS does
with one product less, and with the slope ``g.d`` from the small products it has; ``slope``
is ``None`` where the driver is to compute it), where :math:`s = x_{k+1} - x_k` and
:math:`y = g_{k+1} - g_k`; ``aux`` holds only arrays, so the driver can carry it through
``lax.while_loop``. The driver passes the norms and inner products it already has
(``gnorm`` = :math:`\|g\|`, ``inner`` = :class:`Inner`), so a method adds no reductions of its own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """Matrix product in full precision (GPUs and TPUs may otherwise round float32 inputs)."""
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _small_mv(a: jax.Array, v: jax.Array) -> jax.Array:
    """``a @ v`` for a small matrix, as products and sums: XLA fuses it with the neighbouring
    elementwise work into one kernel (a dot is a kernel of its own, each with its compile
    time and its launch per iteration)."""
    return jnp.sum(a * v[None, :], axis=1)


BLOCK = 32


def sums(*terms: jax.Array) -> tuple[jax.Array, ...]:
    """The sums of several vectors of terms, as one reduction: in blocks of 32 (zero-padded at
    both ends, the order XLA's CPU compiler gives a single long sum), then over the blocks.

    XLA fuses a reduction of several operands with the elementwise work that produces their
    terms into one kernel, where every single long sum costs three (the products, a window
    reduction, the sum of the windows): each a compile and, in a loop, a launch per pass.
    """
    n = terms[0].shape[0]
    if n <= BLOCK or len(terms) == 1:  # short sums fuse anyway
        return tuple(jnp.sum(t) for t in terms)
    zeros = tuple(jnp.zeros((), t.dtype) for t in terms)

    def add(a, b):
        return tuple(u + v for u, v in zip(a, b, strict=True))

    pad = -n % BLOCK
    blocks = tuple(jnp.pad(t, (pad // 2, pad - pad // 2)).reshape(-1, BLOCK) for t in terms)
    return tuple(lax.reduce(lax.reduce(blocks, zeros, add, (1,)), zeros, add, (0,)))


def vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Inner product of two vectors, as a product and a sum: XLA fuses it into one pass with
    its neighbours (a dot is a library call of its own; on a CPU twice as long for n = 1000)
    and computes it in the working precision on every backend."""
    return jnp.sum(a * b)


def first_step(g: jax.Array, gnorm: jax.Array | None = None) -> jax.Array:
    """Initial trial step ``min(1, 1/||g||)`` when no curvature information is known yet."""
    gnorm = jnp.linalg.norm(g) if gnorm is None else gnorm
    return jnp.minimum(1.0, 1.0 / jnp.maximum(gnorm, jnp.finfo(g.dtype).tiny))


class Inner(NamedTuple):
    """Inner products of a step ``s`` and gradient change ``y``."""

    ss: jax.Array
    sy: jax.Array
    yy: jax.Array

    @staticmethod
    def of(s: jax.Array, y: jax.Array) -> Inner:
        v = jnp.stack([s, y])
        gram = _mm(v, v.T)
        return Inner(gram[0, 0], gram[0, 1], gram[1, 1])


def _curvature_ok(inner: Inner) -> jax.Array:
    """``s^T y > eps ||s|| ||y||``: the pair keeps the approximation positive definite."""
    eps = jnp.finfo(inner.sy.dtype).eps
    return jnp.isfinite(inner.sy) & (inner.sy > eps * jnp.sqrt(inner.ss * inner.yy))


def _update_then_direction(meth, aux, s, y, accept, inner, x, g, gnorm):
    aux = meth.update(aux, s, y, accept, inner)
    return (aux, *meth.direction(aux, x, g, gnorm), None)


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

    def direction(self, aux, x, g, gnorm=None):
        bb = aux.ss / jnp.where(aux.sy > 0, aux.sy, 1.0)
        alpha0 = jnp.where((aux.sy > 0) & jnp.isfinite(bb), bb, first_step(g, gnorm))
        return -g, alpha0

    def reset(self, aux, flag):
        return jax.tree.map(lambda a: jnp.where(flag, jnp.zeros_like(a), a), aux)

    def update(self, aux, s, y, accept=True, inner=None):
        inner = Inner.of(s, y) if inner is None else inner
        new = GDState(inner.ss, inner.sy)
        return jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, aux)

    update_direction = _update_then_direction


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

    def direction(self, aux, x, g, gnorm=None):
        alpha0 = jnp.where(aux.fresh, first_step(g, gnorm), jnp.ones((), x.dtype))
        return jnp.where(aux.fresh, -g, -_mm(aux.h, g)), alpha0

    def reset(self, aux, flag):
        """Forget the approximation where ``flag``: the next accepted pair sets ``H_0`` anew."""
        return aux._replace(fresh=aux.fresh | flag)

    def update(self, aux, s, y, accept=True, inner=None):
        inner = Inner.of(s, y) if inner is None else inner
        sy = inner.sy
        h = jnp.where(aux.fresh, (sy / inner.yy) * jnp.eye(s.shape[0], dtype=s.dtype), aux.h)
        hy = _mm(h, y)
        rho = 1.0 / sy
        h_new = h + (rho + rho**2 * _mm(y, hy)) * jnp.outer(s, s)
        h_new = h_new - rho * (jnp.outer(hy, s) + jnp.outer(s, hy))
        ok = _curvature_ok(inner) & accept
        return BFGSState(jnp.where(ok, h_new, aux.h), aux.fresh & ~ok)

    update_direction = _update_then_direction


class LBFGSState(NamedTuple):
    w: jax.Array  # (2m + 2, n): rows 0..m-1 the steps s_i (a ring buffer), row m scratch;
    #               rows m+1..2m the gradient changes y_i of the same slots, row 2m+1 scratch
    rinv: jax.Array  # (m + 1, m + 1) inverse of R (R_ij = s_i^T y_j, i not newer than j), by slot
    yy: jax.Array  # (m + 1, m + 1): yy[i, j] = y_i^T y_j
    dsy: jax.Array  # (m + 1,): s_i^T y_i
    head: jax.Array  # slot of the next pair (the oldest pair once the buffer is full)
    count: jax.Array  # number of stored pairs (saturates at m)
    gamma: jax.Array  # s^T y / y^T y of the newest pair (H^0 = gamma I)
    wg: jax.Array  # (2m + 2,): W g at the gradient of the last update_direction


class LBFGS:
    r"""Limited-memory BFGS (Nocedal & Wright Algorithm 7.4) in its compact form.

    Keeps the last ``m`` pairs :math:`(s_i, y_i)` in one fixed ring buffer :math:`W = [S; Y]`
    (two rows written per iteration, in place; a rejected pair goes to scratch rows). With
    :math:`S, Y` the stored pairs, :math:`R` the upper triangle of :math:`S^TY` in age order,
    :math:`D` its diagonal and :math:`H^0 = \gamma I` (:math:`\gamma = s^Ty / y^Ty` of the
    newest pair), the matrix of the two-loop recursion is (Byrd, Nocedal & Schnabel 1994,
    eq. 3.1)

    .. math:: H g = \gamma g + S\,R^{-T}\big((D + \gamma Y^TY) u - \gamma Y^Tg\big)
              - \gamma Y u, \qquad u = R^{-1} S^T g .

    :math:`R^{-1}` itself is kept up to date in :math:`O(m^2)` per pair: dropping the oldest
    pair deletes its row and column (the trailing block of a triangular inverse is the inverse
    of the trailing block), and appending the newest adds the column
    :math:`-\rho R^{-1} S^T y` and the diagonal entry :math:`\rho = 1 / s^Ty`. A direction
    costs two products with :math:`W` (an update one more) and a few ``m x m`` products: no
    loop over the pairs, no triangular solve. Empty slots have zero rows and columns in
    :math:`R^{-1}` and drop out.
    """

    needs_hessian = False

    def __init__(self, m: int = 10):
        self.m = m

    def init(self, x, g):
        n, dtype, m = x.shape[0], x.dtype, self.m
        small = jnp.zeros((m + 1, m + 1), dtype)
        return LBFGSState(jnp.zeros((2 * m + 2, n), dtype), small, small,
                          jnp.zeros((m + 1,), dtype), jnp.int32(0), jnp.int32(0),
                          jnp.ones((), dtype), jnp.zeros((2 * m + 2,), dtype))

    def reset(self, aux, flag):
        """Forget all pairs where ``flag`` (the buffers keep their values, ``R^-1`` is zeroed)."""
        return aux._replace(rinv=jnp.where(flag, 0.0, aux.rinv).astype(aux.rinv.dtype),
                            count=jnp.where(flag, 0, aux.count),
                            gamma=jnp.where(flag, 1.0, aux.gamma).astype(aux.gamma.dtype))

    def direction(self, aux, x, g, gnorm=None):
        # S^T g and Y^T g in one product
        return self._direction(aux, g, gnorm, _mm(aux.w, g))[:2]

    def _direction(self, aux, g, gnorm, wg):
        r"""``(d, alpha0, g.d)``: :math:`d = -Hg = -(\gamma g + W^Tv)`, and its slope
        :math:`g^Td = -(\gamma\|g\|^2 + v^T(Wg))` from the products at hand (no pass over
        ``n`` entries)."""
        dtype, k = g.dtype, self.m + 1
        gnorm = jnp.linalg.norm(g) if gnorm is None else gnorm
        u = _small_mv(aux.rinv, wg[:k])
        c = _small_mv(aux.rinv.T, aux.dsy * u + aux.gamma * (_small_mv(aux.yy, u) - wg[k:]))
        v = jnp.concatenate([c, -aux.gamma * u])
        r = aux.gamma * g + _mm(v, aux.w)
        alpha0 = jnp.where(aux.count > 0, jnp.ones((), dtype), first_step(g, gnorm))
        return -r, alpha0, -(aux.gamma * gnorm**2 + jnp.sum(v * wg))

    def _store(self, aux, s, y, accept, inner):
        """Write the pair to its slot (a rejected one, as zeros, to the scratch slot)."""
        m = self.m
        ok = _curvature_ok(Inner.of(s, y) if inner is None else inner) & accept
        j = jnp.where(ok, aux.head, m)  # a rejected pair goes to the scratch row
        # a rejected pair may hold inf or NaN: the scratch slot gets zeros instead, since its
        # zero row and column in R^-1 cancel it only by multiplication (0 * inf is NaN)
        s, y = jnp.where(ok, s, 0.0), jnp.where(ok, y, 0.0)
        w = lax.dynamic_update_index_in_dim(aux.w, s, j, 0)
        return ok, j, s, y, lax.dynamic_update_index_in_dim(w, y, j + m + 1, 0)

    def _absorb(self, aux, ok, j, w, wy, wg):
        """The rest of the update, from ``wy`` = ``W y`` (``W`` with the new pair written)."""
        m = self.m
        # slot j's entries are written by selects on a one-hot mask, not by indexed updates:
        # on these small arrays a select fuses with its neighbours into one kernel
        hot = jnp.arange(m + 1) == j
        keep = ~hot
        # drop the pair in slot j (the oldest once the buffer is full): zero its row and column
        rinv = jnp.where(keep[:, None] & keep[None, :], aux.rinv, 0.0)
        s_y, y_y = wy[: m + 1], wy[m + 1:]  # s_i^T y and y_i^T y for every slot
        sy_new = s_y[j]
        rho = 1.0 / jnp.where(ok, sy_new, 1.0)
        col = jnp.where(keep, -rho * _small_mv(rinv, s_y), rho)
        rinv = jnp.where(ok, jnp.where(hot[None, :], col[:, None], rinv), aux.rinv)
        yy = jnp.where(hot[None, :], y_y[:, None], jnp.where(hot[:, None], y_y[None, :], aux.yy))
        dsy = jnp.where(hot, sy_new, aux.dsy)
        yy_new = y_y[j]
        gamma = jnp.where(ok, sy_new / jnp.where(yy_new > 0, yy_new, 1.0), aux.gamma)
        return LBFGSState(w, rinv, yy, dsy, jnp.where(ok, (aux.head + 1) % m, aux.head),
                          jnp.where(ok, jnp.minimum(aux.count + 1, m), aux.count), gamma, wg)

    def update(self, aux, s, y, accept=True, inner=None):
        """Store the pair ``(s, y)`` when ``accept`` and the curvature condition hold."""
        ok, j, _, y, w = self._store(aux, s, y, accept, inner)
        return self._absorb(aux, ok, j, w, _mm(w, y), aux.wg)

    def update_direction(self, aux, s, y, accept, inner, x, g, gnorm):
        r""":meth:`update`, then :meth:`direction` at the new gradient ``g``, with two products
        with the buffer, not three: ``W y = W g - W g_{old}``, where ``W g_{old}`` is kept from
        the last call (only the new slot's rows change: their products with ``y`` are the
        driver's ``s^T y`` and ``y^T y``). The difference loses digits only where
        :math:`|s_i^Ty| \ll |s_i^Tg|`, a tiny step; those products enter the update as
        corrections of the curvature pairs, as in any quasi-Newton update."""
        m = self.m
        inner = Inner.of(s, y) if inner is None else inner
        ok, j, _, _, w = self._store(aux, s, y, accept, inner)
        wg = _mm(w, g)
        # the new slot's rows: s^T y and y^T y, which the driver has already (zeros in the
        # scratch slot of a rejected pair)
        slot = jnp.arange(2 * m + 2)
        zero = jnp.zeros((), wg.dtype)
        wy = jnp.where(slot == j, jnp.where(ok, inner.sy, zero),
                       jnp.where(slot == j + m + 1, jnp.where(ok, inner.yy, zero), wg - aux.wg))
        aux = self._absorb(aux, ok, j, w, wy, wg)
        return (aux, *self._direction(aux, g, gnorm, wg))
