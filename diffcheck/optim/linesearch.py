r"""Line searches along a descent direction ``d``: Armijo backtracking and strong Wolfe (zoom).

With :math:`\psi(\alpha) = f(x + \alpha d)` and :math:`\psi'(0) = \nabla f(x)^T d < 0`:

* Armijo (sufficient decrease), :math:`0 < c_1 < 1/2`:
  :math:`\psi(\alpha) \le \psi(0) + c_1 \alpha \psi'(0)`.
* strong Wolfe adds the curvature condition, :math:`c_1 < c_2 < 1`:
  :math:`|\psi'(\alpha)| \le c_2 |\psi'(0)|`.

Both are one ``lax.while_loop``; every trial evaluates the value and the gradient together.
``d0`` (optional) is :math:`\psi'(0) = g^Td` when the caller already has it.
A trial where either is NaN or infinite is rejected and the step shrinks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

ValueAndGrad = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class LineSearchResult(NamedTuple):
    """Accepted step: ``alpha``, the new point, its value and gradient, evaluations used, ``ok``."""

    alpha: jax.Array
    x: jax.Array
    f: jax.Array
    g: jax.Array
    nfev: jax.Array
    ok: jax.Array


def _vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Inner product in full precision (GPUs and TPUs may otherwise round float32 inputs)."""
    return jnp.vdot(a, b, precision=lax.Precision.HIGHEST)


def _finite(f: jax.Array, g: jax.Array) -> jax.Array:
    return jnp.isfinite(f) & jnp.all(jnp.isfinite(g))


def armijo(
    vg: ValueAndGrad,
    x: jax.Array,
    f: jax.Array,
    g: jax.Array,
    d: jax.Array,
    alpha0: jax.Array,
    *,
    c1: Any = 1e-4,
    maxiter: int = 50,
    d0: jax.Array | None = None,
) -> LineSearchResult:
    r"""Backtracking line search until the Armijo condition holds.

    The trial step shrinks by a safeguarded quadratic interpolation
    :math:`\alpha \leftarrow -\psi'(0)\alpha^2 / (2(\psi(\alpha) - \psi(0) - \psi'(0)\alpha))`
    clipped to :math:`[0.1\alpha, 0.5\alpha]`, and halves after a non-finite trial.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> vg = jax.value_and_grad(lambda x: jnp.sum(x ** 2))
        >>> x = jnp.array([1.0]); f, g = vg(x)
        >>> float(armijo(vg, x, f, g, -g, jnp.array(1.0)).alpha)
        0.5
    """
    dtype = x.dtype
    gd = _vdot(g, d) if d0 is None else d0
    c1 = jnp.asarray(c1, dtype)

    def cond(s):
        return ~s[5] & (s[4] < maxiter)

    def body(s):
        alpha, _, _, _, i, _ = s
        x_t = x + alpha * d
        f_t, g_t = vg(x_t)
        finite = _finite(f_t, g_t)
        ok = finite & (f_t <= f + c1 * alpha * gd) & (f_t < f)  # strict: x_t != x in floats
        denom = 2.0 * (f_t - f - gd * alpha)
        quad = jnp.where(denom > 0, -gd * alpha**2 / denom, 0.5 * alpha)
        nxt = jnp.where(finite, jnp.clip(quad, 0.1 * alpha, 0.5 * alpha), 0.5 * alpha)
        alpha = jnp.where(ok, alpha, nxt)
        return alpha, x_t, f_t, g_t, i + 1, ok

    init = (jnp.asarray(alpha0, dtype), x, f, g, jnp.int32(0), jnp.bool_(False))
    alpha, x_t, f_t, g_t, i, ok = lax.while_loop(cond, body, init)
    return LineSearchResult(alpha, x_t, f_t, g_t, i, ok)


class _WolfeState(NamedTuple):
    i: jax.Array
    done: jax.Array
    zoom: jax.Array  # False: bracketing phase, True: zoom phase
    a: jax.Array  # next trial step
    # points (step, value, slope) packed as 3-vectors: one select updates each end (on a CPU,
    # every separate scalar update is a kernel launch)
    lo: jax.Array  # bracketing: previous trial; zoom: best step with sufficient decrease
    x_lo: jax.Array
    g_lo: jax.Array
    hi: jax.Array


def _cubic_min(a0, f0, d0, a1, f1, d1):
    """Minimiser of the cubic interpolating (a0, f0, d0), (a1, f1, d1) (Nocedal–Wright 3.59)."""
    d_1 = d0 + d1 - 3.0 * (f0 - f1) / (a0 - a1)
    rad = d_1**2 - d0 * d1
    d_2 = jnp.sign(a1 - a0) * jnp.sqrt(jnp.maximum(rad, 0.0))
    a = a1 - (a1 - a0) * (d1 + d_2 - d_1) / (d1 - d0 + 2.0 * d_2)
    return jnp.where((rad >= 0) & jnp.isfinite(a), a, 0.5 * (a0 + a1))


def _extrapolate(a0, f0, d0, a1, f1, d1):
    """Next trial beyond ``a1`` while the slope is still negative (MINPACK's ``dcsrch`` rule).

    Within ``[a1 + 1.1 (a1 - a0), a1 + 4 (a1 - a0)]``: the cubic's minimiser when the slope's
    magnitude decreases (the cubic has a minimum ahead), else the far end (the function bends
    down: go far).
    """
    lo = a1 + 1.1 * (a1 - a0)
    hi = a1 + 4.0 * (a1 - a0)
    cubic = _cubic_min(a0, f0, d0, a1, f1, d1)
    ahead = (jnp.abs(d1) < jnp.abs(d0)) & (cubic > a1)
    return jnp.where(ahead, jnp.clip(cubic, lo, hi), hi)


def wolfe(
    vg: ValueAndGrad,
    x: jax.Array,
    f: jax.Array,
    g: jax.Array,
    d: jax.Array,
    alpha0: jax.Array,
    *,
    c1: Any = 1e-4,
    c2: Any = 0.9,
    maxiter: int = 30,
    d0: jax.Array | None = None,
) -> LineSearchResult:
    r"""Strong Wolfe line search: bracketing then zoom with cubic interpolation.

    Nocedal & Wright, *Numerical Optimization*, Algorithms 3.5 and 3.6. The bracketing phase
    extrapolates (MINPACK's rule: 2.1 to 5 times the step) until the interval
    ``[a_lo, a_hi]`` contains a point satisfying the strong Wolfe conditions; ``zoom`` shrinks
    it by safeguarded cubic interpolation (bisection when the upper end is not finite). If the
    budget runs out, the best step with sufficient decrease is returned (``ok`` stays true: the
    Armijo condition holds).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> vg = jax.value_and_grad(lambda x: jnp.sum(x ** 4))
        >>> x = jnp.array([1.0]); f, g = vg(x)
        >>> r = wolfe(vg, x, f, g, -g, jnp.array(1.0))
        >>> bool(r.ok), bool(r.f < f)
        (True, True)
    """
    dtype = x.dtype
    c1 = jnp.asarray(c1, dtype)
    c2 = jnp.asarray(c2, dtype)
    d0 = _vdot(g, d) if d0 is None else d0
    zero = jnp.zeros((), dtype)

    def cond(s: _WolfeState):
        return ~s.done & (s.i < maxiter)

    def body(s: _WolfeState) -> _WolfeState:
        a = s.a
        x_t = x + a * d
        f_t, g_t = vg(x_t)
        d_t = _vdot(g_t, d)
        finite = jnp.isfinite(f_t) & jnp.isfinite(d_t)  # a NaN/inf in g_t makes d_t NaN/inf
        armijo_ok = finite & (f_t <= f + c1 * a * d0)
        curv_ok = jnp.abs(d_t) <= -c2 * d0
        a_lo0, f_lo0, d_lo0 = s.lo[0], s.lo[1], s.lo[2]
        better = armijo_ok & (f_t < f_lo0)
        accept = better & curv_ok
        # bracketing phase (zoom == False); lo is the previous trial
        to_zoom_hi = ~armijo_ok | ((s.i > 0) & (f_t >= f_lo0))  # zoom(a_prev, a)
        to_zoom_lo = armijo_ok & ~to_zoom_hi & (d_t >= 0)  # zoom(a, a_prev)
        # zoom phase: a is inside (a_lo, a_hi)
        z_hi = ~better  # a becomes the new upper end
        z_flip = better & (d_t * (s.hi[0] - a_lo0) >= 0)  # old lo becomes hi

        zoom_next = s.zoom | to_zoom_hi | to_zoom_lo
        new_lo = jnp.where(s.zoom, better, ~to_zoom_hi)  # trial becomes lo
        new_hi_is_t = jnp.where(s.zoom, z_hi, to_zoom_hi)
        new_hi_is_lo = jnp.where(s.zoom, z_flip, to_zoom_lo)

        trial = jnp.stack([a, f_t, d_t])
        hi = jnp.where(new_hi_is_t, trial.at[1].set(jnp.where(finite, f_t, jnp.inf)),
                       jnp.where(new_hi_is_lo, s.lo, s.hi))
        lo = jnp.where(new_lo, trial, s.lo)
        x_lo = jnp.where(new_lo, x_t, s.x_lo)
        g_lo = jnp.where(new_lo, g_t, s.g_lo)

        a_lo, f_lo, d_lo = lo[0], lo[1], lo[2]
        a_hi, f_hi, d_hi = hi[0], hi[1], hi[2]
        width = a_hi - a_lo
        interp = _cubic_min(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi)
        lo_b = jnp.minimum(a_lo + 0.1 * width, a_hi - 0.1 * width)
        hi_b = jnp.maximum(a_lo + 0.1 * width, a_hi - 0.1 * width)
        a_zoom = jnp.where(jnp.isfinite(f_hi), jnp.clip(interp, lo_b, hi_b), a_lo + 0.5 * width)
        a_next = jnp.where(zoom_next, a_zoom, _extrapolate(a_lo0, f_lo0, d_lo0, a, f_t, d_t))
        tiny = jnp.abs(width) <= 10 * jnp.finfo(dtype).eps * jnp.maximum(a_lo, a_hi)
        done = accept | (zoom_next & tiny)
        return _WolfeState(s.i + 1, done, zoom_next, a_next, lo, x_lo, g_lo, hi)

    a0 = jnp.asarray(alpha0, dtype)
    init = _WolfeState(jnp.int32(0), jnp.bool_(False), jnp.bool_(False), a0,
                       jnp.stack([zero, f, d0]), x, g, jnp.stack([zero, jnp.inf, zero]))
    s = lax.while_loop(cond, body, init)
    return LineSearchResult(s.lo[0], s.x_lo, s.lo[1], s.g_lo, s.i, s.lo[0] > 0)
