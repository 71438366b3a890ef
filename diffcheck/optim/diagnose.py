r"""Why a solve stopped: checks that run once, after the loop, to choose an honest status.

* :func:`curvature`: at a point where :math:`\|\nabla f\| \le` ``tol``, does the Hessian show
  negative curvature (a saddle or a maximum), or is it singular to working precision once its
  diagonal is scaled to one (a flat region, a degenerate stationary point, a minimum at
  infinity)? Only a Hessian that is positive definite by a margin certifies a minimum.
* :func:`gradient_agrees`: after a line search (or a trust region) found no decrease along
  :math:`-\nabla f`, is that the floating-point floor (the gradient is resolved only to its
  rounding noise, or the decrease it promises is below the rounding of ``f``), or does the
  function contradict the gradient (a wrong derivative, a kink)? Decided by evidence: the
  gradient at a point a few units in the last place away, and central differences of ``f``
  along the gradient on a ladder of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from diffcheck.optim.newton import _abs_max, _factor, _shift, _stack_aware


def _curvature_stack(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    eps = jnp.finfo(h.dtype).eps
    delta = jnp.sqrt(eps) * jnp.maximum(1.0, _abs_max(h))
    negative = ~_factor(_shift(h, delta))[1]
    # a diagonal entry below eps max(1, |H|) is zero to working precision: a flat direction;
    # otherwise scale the diagonal to one and ask for a margin of sqrt(eps) above zero
    floor = eps * jnp.maximum(1.0, _abs_max(h))
    diag = jnp.diagonal(h, axis1=-2, axis2=-1)
    flat = jnp.any(diag < floor[..., None], axis=-1)
    r = lax.rsqrt(jnp.maximum(diag, floor[..., None]))
    scaled = h * r[..., :, None] * r[..., None, :]
    singular = flat | ~_factor(_shift(scaled, -jnp.sqrt(eps) * jnp.ones_like(delta)))[1]
    return negative, singular


_curvature = _stack_aware(_curvature_stack)


def curvature(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""``(negative, singular)`` for a symmetric Hessian ``h``.

    ``negative``: :math:`H + \delta I` is not positive definite, :math:`\delta = \sqrt{\varepsilon}
    \max(1, \max|H_{ij}|)`. ``singular``: a diagonal entry is below
    :math:`\varepsilon\max(1, \max|H_{ij}|)` (zero to working precision: a flat direction), or,
    with :math:`D = \mathrm{diag}(H_{ii})`, :math:`D^{-1/2} H D^{-1/2} - \sqrt{\varepsilon} I`
    is not positive definite; the scaling
    ignores bad scaling of the variables (Brown's badly scaled function has a condition number
    of 1e12 at its minimum, Powell's of 7e17, and neither is singular) and keeps near-zero
    rows near zero.

    Example:
        >>> import jax.numpy as jnp
        >>> [bool(v) for v in curvature(jnp.array([[2.0, 0.0], [0.0, 1e-20]]))]
        [False, True]
        >>> [bool(v) for v in curvature(jnp.array([[1e4, 1.0], [1.0, 2.0]]))]
        [False, False]
    """
    return _curvature(h)


def ladder_size(dtype) -> int:
    """The number ``k`` of steps of the ladder: 10^-1 ... 10^-k (times the scale of x), down
    to about sqrt(eps)."""
    return max(2, int(-math.log10(math.sqrt(float(jnp.finfo(dtype).eps)))))


def probes(dtype) -> int:
    """How many evaluations :func:`gradient_agrees` needs: the nearby point and the ladder."""
    return 1 + 2 * ladder_size(dtype)


def probe_point(x: jax.Array, g: jax.Array, j: jax.Array) -> jax.Array:
    r"""Probe ``j`` of the check: ``j = 0`` moves every coordinate of ``x`` by four units in
    the last place (alternating signs); ``j = 1..k`` is :math:`x + h_j u`, ``j = k+1..2k`` is
    :math:`x - h_{j-k} u`, with :math:`u = g / \|g\|`, :math:`h_i = s\,10^{-i}`,
    :math:`s = \max(1, \|x\|_\infty)`."""
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    k = ladder_size(dtype)
    sign = jnp.where(jnp.arange(x.shape[0]) % 2 == 0, 1.0, -1.0).astype(dtype)
    gnorm = jnp.linalg.norm(g)
    u = g / jnp.where(gnorm > 0, gnorm, 1.0)
    i = jnp.where(j > k, j - k, j)
    h = jnp.max(jnp.abs(x), initial=1.0) * jnp.asarray(10.0, dtype) ** -i.astype(dtype)
    ladder = x + jnp.where(j > k, -h, h) * u
    return jnp.where(j == 0, x + 4.0 * eps * x * sign, ladder)


def probe_record(j: jax.Array, f_t: jax.Array, g_t: jax.Array, g: jax.Array) -> jax.Array:
    """What probe ``j`` contributes: the gradient change at the nearby point (``j = 0``), else
    the value."""
    return jnp.where(j == 0, jnp.linalg.norm(g_t - g), f_t)


def verdict(records: jax.Array, x: jax.Array, g: jax.Array) -> jax.Array:
    """Whether the gradient agrees, from the records of probes ``0 .. 2k`` at ``x``."""
    dtype = records.dtype
    k = ladder_size(dtype)
    gnorm = jnp.linalg.norm(g)
    noisy = ~(records[0] <= 0.5 * gnorm)  # NaN counts as noise
    h = jnp.max(jnp.abs(x), initial=1.0) * jnp.asarray(10.0, dtype) ** -jnp.arange(
        1, k + 1, dtype=dtype)
    q = (records[1:k + 1] - records[k + 1:]) / (2.0 * h)
    spread = jnp.abs(jnp.diff(q))
    spread = jnp.where(jnp.isfinite(spread), spread, jnp.inf)
    j = jnp.argmin(spread)
    estimate, error = q[j + 1], spread[j]
    agrees = jnp.isfinite(error) & (jnp.abs(estimate - gnorm) <= 0.5 * gnorm + 2.0 * error)
    return noisy | agrees


def gradient_agrees(vg: Callable[[jax.Array], tuple[jax.Array, jax.Array]], x: jax.Array,
                    g: jax.Array | None = None) -> jax.Array:
    r"""Whether the gradient of ``vg`` (value and gradient) at ``x`` is consistent with its
    value to working precision.

    True when the gradient is at its rounding floor (moving ``x`` by four units in the last
    place of each coordinate changes it by half its norm or more), or when central
    differences of the value along :math:`u = g / \|g\|` agree with :math:`\|g\|`: the
    difference quotient is taken on the ladder :math:`h = s\,10^{-1}, \dots, s\,10^{-k}`
    (:math:`s = \max(1, \|x\|_\infty)`, :math:`10^{-k} \approx \sqrt{\varepsilon}`), its most
    stable neighbouring pair gives the estimate and its spread the error bar, and it agrees
    when within half of :math:`\|g\|` plus twice the error bar. The :func:`probes` evaluations
    are :func:`probe_point` ``(x, g, j)``; a solver whose loop evaluates one point per pass
    can run them as passes of its own loop (:func:`probe_record`, :func:`verdict`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> x = jnp.array([1.0, 2.0])
        >>> bool(gradient_agrees(jax.value_and_grad(f), x))
        True
        >>> bool(gradient_agrees(lambda x: (f(x), -2 * x), x))  # the sign is wrong
        False
    """
    dtype = x.dtype
    g = vg(x)[1].astype(dtype) if g is None else g

    def record(j):
        f_t, g_t = vg(probe_point(x, g, j))
        return probe_record(j, f_t.astype(dtype), g_t.astype(dtype), g)

    records = lax.map(record, jnp.arange(probes(dtype)))
    return verdict(records, x, g)
