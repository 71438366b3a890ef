r"""Line searches along a descent direction ``d``: Armijo backtracking and strong Wolfe (zoom).

With :math:`\psi(\alpha) = f(x + \alpha d)` and :math:`\psi'(0) = \nabla f(x)^T d < 0`:

* Armijo (sufficient decrease), :math:`0 < c_1 < 1/2`:
  :math:`\psi(\alpha) \le \psi(0) + c_1 \alpha \psi'(0)`.
* strong Wolfe adds the curvature condition, :math:`c_1 < c_2 < 1`:
  :math:`|\psi'(\alpha)| \le c_2 |\psi'(0)|`.

Each search is a state machine over one packed vector of scalars (:class:`Armijo`,
:class:`Wolfe`: ``init`` and ``step``, one trial per ``step``), so that a solver can run its
line search and its own iteration as one flat ``lax.while_loop`` with one evaluation per
pass (under ``jax.vmap`` a nested loop would run, at every outer iteration, as many trials as
the slowest problem of the batch needs). :func:`armijo` and :func:`wolfe` drive the same
machines in a loop of their own. Every trial evaluates the value and the gradient together;
a trial where either is NaN or infinite is rejected and the step shrinks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

ValueAndGrad = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class LineSearchResult(NamedTuple):
    """Accepted step: ``alpha``, the new point, its value and gradient, evaluations used, ``ok``.

    A failed search (``ok`` False) returns the start point, ``alpha = 0``.
    """

    alpha: jax.Array
    x: jax.Array
    f: jax.Array
    g: jax.Array
    nfev: jax.Array
    ok: jax.Array


# layout of the packed state: the next trial step, the best step with sufficient decrease so
# far ("lo": step, value, slope), the other end of the bracket ("hi"), the phase (Wolfe: 0
# bracketing, 1 zoom) and the number of trials so far. One vector: each update is one select
# (on a CPU every separate scalar is a kernel launch).
A, LO_A, LO_F, LO_D, HI_A, HI_F, HI_D, ZOOM, TRIALS = range(9)
SIZE = 9


def _vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Inner product in full precision (GPUs and TPUs may otherwise round float32 inputs)."""
    return jnp.vdot(a, b, precision=lax.Precision.HIGHEST)


def initial_state(f0: jax.Array, d0: jax.Array, alpha0: jax.Array) -> jax.Array:
    """Packed state of a search from a point with value ``f0`` and slope ``d0 < 0``."""
    zero = jnp.zeros_like(f0)
    return jnp.stack([jnp.asarray(alpha0, f0.dtype), zero, f0, d0, zero,
                      jnp.full_like(f0, jnp.inf), zero, zero, zero])


def ok(v: jax.Array) -> jax.Array:
    """Whether the search found a step with sufficient decrease (``v[LO_A] > 0``)."""
    return v[LO_A] > 0


class Armijo(NamedTuple):
    r"""Backtracking until :math:`\psi(\alpha) \le \psi(0) + c_1\alpha\psi'(0)`, ``0 < c1 < 1/2``.

    The trial step shrinks by a safeguarded quadratic interpolation
    :math:`\alpha \leftarrow -\psi'(0)\alpha^2 / (2(\psi(\alpha) - \psi(0) - \psi'(0)\alpha))`
    clipped to :math:`[0.1\alpha, 0.5\alpha]`, and halves after a non-finite trial.
    """

    c1: Any = 1e-4
    maxiter: int = 50

    def step(self, v, f0, d0, f_t, d_t):
        """One trial at ``v[A]`` with value ``f_t`` and slope ``d_t``: ``(v, new_lo, done)``."""
        a = v[A]
        finite = jnp.isfinite(f_t) & jnp.isfinite(d_t)
        accept = finite & (f_t <= f0 + self.c1 * a * d0) & (f_t < f0)  # strict: x_t != x
        denom = 2.0 * (f_t - f0 - d0 * a)
        quad = jnp.where(denom > 0, -d0 * a**2 / denom, 0.5 * a)
        nxt = jnp.where(finite, jnp.clip(quad, 0.1 * a, 0.5 * a), 0.5 * a)
        trial = jnp.stack([a, f_t, d_t])
        v = v.at[LO_A:LO_D + 1].set(jnp.where(accept, trial, v[LO_A:LO_D + 1]))
        v = v.at[A].set(jnp.where(accept, a, nxt)).at[TRIALS].add(1)
        return v, accept, accept | (v[TRIALS] >= self.maxiter)


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


class Wolfe(NamedTuple):
    r"""Strong Wolfe search: bracketing then zoom with cubic interpolation, ``c1 < c2 < 1``.

    Nocedal & Wright, *Numerical Optimization*, Algorithms 3.5 and 3.6. The bracketing phase
    extrapolates (MINPACK's rule: 2.1 to 5 times the step) until the interval
    ``[a_lo, a_hi]`` contains a point satisfying the strong Wolfe conditions; ``zoom`` shrinks
    it by safeguarded cubic interpolation (bisection when the upper end is not finite). If the
    budget runs out, the best step with sufficient decrease is the answer (the Armijo
    condition holds there).
    """

    c1: Any = 1e-4
    c2: Any = 0.9
    maxiter: int = 30

    def step(self, v, f0, d0, f_t, d_t):
        """One trial at ``v[A]`` with value ``f_t`` and slope ``d_t``: ``(v, new_lo, done)``."""
        a, i, zoom = v[A], v[TRIALS], v[ZOOM] > 0
        lo, hi = v[LO_A:LO_D + 1], v[HI_A:HI_D + 1]
        finite = jnp.isfinite(f_t) & jnp.isfinite(d_t)  # a NaN/inf in g_t makes d_t NaN/inf
        armijo_ok = finite & (f_t <= f0 + self.c1 * a * d0)
        better = armijo_ok & (f_t < lo[1])
        accept = better & (jnp.abs(d_t) <= -self.c2 * d0)
        # bracketing phase: lo is the previous trial
        to_zoom_hi = ~armijo_ok | ((i > 0) & (f_t >= lo[1]))  # zoom(a_prev, a)
        to_zoom_lo = armijo_ok & ~to_zoom_hi & (d_t >= 0)  # zoom(a, a_prev)
        # zoom phase: a is inside (a_lo, a_hi); a worse trial becomes the upper end, a better
        # one the lower end, and the old lower end the upper one when the slope points back
        zoom_next = zoom | to_zoom_hi | to_zoom_lo
        new_lo = jnp.where(zoom, better, ~to_zoom_hi)
        hi_is_t = jnp.where(zoom, ~better, to_zoom_hi)
        hi_is_lo = jnp.where(zoom, better & (d_t * (hi[0] - lo[0]) >= 0), to_zoom_lo)
        trial = jnp.stack([a, jnp.where(finite, f_t, jnp.inf), d_t])
        hi = jnp.where(hi_is_t, trial, jnp.where(hi_is_lo, lo, hi))
        lo_next = jnp.where(new_lo, trial, lo)
        width = hi[0] - lo_next[0]
        interp = _cubic_min(lo_next[0], lo_next[1], lo_next[2], hi[0], hi[1], hi[2])
        lo_b = jnp.minimum(lo_next[0] + 0.1 * width, hi[0] - 0.1 * width)
        hi_b = jnp.maximum(lo_next[0] + 0.1 * width, hi[0] - 0.1 * width)
        a_zoom = jnp.where(jnp.isfinite(hi[1]), jnp.clip(interp, lo_b, hi_b),
                           lo_next[0] + 0.5 * width)
        a_next = jnp.where(zoom_next, a_zoom, _extrapolate(lo[0], lo[1], lo[2], a, f_t, d_t))
        tiny = jnp.abs(width) <= 10 * jnp.finfo(v.dtype).eps * jnp.maximum(lo_next[0], hi[0])
        v = jnp.concatenate([a_next[None], lo_next, hi,
                             zoom_next.astype(v.dtype)[None], (i + 1)[None]])
        return v, new_lo, accept | (zoom_next & tiny) | (i + 1 >= self.maxiter)


def search(
    vg: ValueAndGrad,
    rule: Armijo | Wolfe,
    x: jax.Array,
    f: jax.Array,
    g: jax.Array,
    d: jax.Array,
    alpha0: jax.Array,
    d0: jax.Array | None = None,
) -> LineSearchResult:
    """Run ``rule`` along ``d`` from ``x`` in a loop of its own (one trial per pass)."""
    d0 = _vdot(g, d) if d0 is None else d0

    def cond(s):
        return ~s[3]

    def body(s):
        v, x_lo, g_lo, _ = s
        x_t = x + v[A] * d
        f_t, g_t = vg(x_t)
        v, new_lo, done = rule.step(v, f, d0, f_t.astype(f.dtype), _vdot(g_t, d))
        return v, jnp.where(new_lo, x_t, x_lo), jnp.where(new_lo, g_t, g_lo), done

    init = (initial_state(f, d0, alpha0), x, g, jnp.bool_(False))
    v, x_lo, g_lo, _ = lax.while_loop(cond, body, init)
    return LineSearchResult(v[LO_A], x_lo, v[LO_F], g_lo, v[TRIALS].astype(jnp.int32), ok(v))


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
    r"""Backtracking line search until the Armijo condition holds (see :class:`Armijo`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> vg = jax.value_and_grad(lambda x: jnp.sum(x ** 2))
        >>> x = jnp.array([1.0]); f, g = vg(x)
        >>> float(armijo(vg, x, f, g, -g, jnp.array(1.0)).alpha)
        0.5
    """
    return search(vg, Armijo(c1, maxiter), x, f, g, d, alpha0, d0)


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
    r"""Strong Wolfe line search: bracketing then zoom (see :class:`Wolfe`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> vg = jax.value_and_grad(lambda x: jnp.sum(x ** 4))
        >>> x = jnp.array([1.0]); f, g = vg(x)
        >>> r = wolfe(vg, x, f, g, -g, jnp.array(1.0))
        >>> bool(r.ok), bool(r.f < f)
        (True, True)
    """
    return search(vg, Wolfe(c1, c2, maxiter), x, f, g, d, alpha0, d0)
