r"""``minimize``: gradient descent, Newton (line search and trust region), BFGS and L-BFGS.

The line-search methods iterate :math:`x_{k+1} = x_k + \alpha_k d_k` with a line search on
:math:`\psi(\alpha) = f(x_k + \alpha d_k)`; ``newton-trust`` takes the step that minimises the
quadratic model in a ball (:mod:`diffcheck.optim.trust`). All stop when
:math:`\|\nabla f(x_k)\|_2 \le` ``tol``. A solve is one ``lax.while_loop`` over a state of
arrays, so it jits and ``jax.vmap`` batches it over starting points (multistart) or over
problem data (``args``). For gd, BFGS and L-BFGS one pass of the loop is one evaluation of
:math:`f` and :math:`\nabla f`: the line search is a state machine inside the same loop, so a
batch runs as many passes as its most expensive member needs evaluations, not, at every
iteration, as many line-search trials as its slowest member.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from diffcheck.optim import compilation
from diffcheck.optim import linesearch as _ls
from diffcheck.optim import result as R
from diffcheck.optim import trust as _trust
from diffcheck.optim.diagnose import (
    curvature,
    gradient_agrees,
    probe_point,
    probe_record,
    probes,
    verdict,
)
from diffcheck.optim.newton import Newton, symmetric_hessian
from diffcheck.optim.quasi_newton import (
    BFGS,
    BLOCK,
    LBFGS,
    Inner,
    SteepestDescent,
    first_step,
    sums,
    vdot,
)

METHODS = ("gd", "newton", "newton-damped", "newton-trust", "bfgs", "lbfgs")
LINESEARCHES = ("armijo", "wolfe")
SUBPROBLEMS = ("auto", "exact", "cg")
_DEFAULT_LS = {"gd": "armijo", "newton": "armijo", "newton-damped": "armijo",
               "bfgs": "wolfe", "lbfgs": "wolfe", "newton-trust": None}
_NEWTON = ("newton", "newton-damped", "newton-trust")
EXACT_MAX_N = 200  # newton-trust: Moré–Sorensen up to this n, conjugate gradients above
DENSE_CHECK_MAX_N = 1024  # the final curvature check forms the Hessian up to this n
CERTIFY_MAX_N = 200  # gd, bfgs, lbfgs: a converged point's Hessian is checked up to this n
RUNNING = -1
PENDING = -2  # converged; a Newton method checks the curvature at x after the loop
PROBED = -3  # the failure diagnosis has its evidence; its verdict comes after the loop


class _Fns(NamedTuple):
    """The objective of a flattened problem: value, value and gradient, gradient."""

    value: Callable
    vg: Callable
    grad: Callable


def _usage(msg: str) -> Exception:
    from diffcheck.errors import UsageError

    return UsageError(msg)


def _write(hist, k, f, gnorm, step, x, commit=True):
    """Row ``k`` of the history (unchanged where ``commit`` is false)."""
    if hist is None:
        return None
    new = (f, gnorm, step, x)
    return R.History(*(h.at[k].set(jnp.where(commit, v, h[k])) for h, v in zip(hist, new,
                                                                                 strict=True)))


def _new_history(maxiter, x, f, gnorm):
    nan = jnp.full((maxiter + 1,), jnp.nan, x.dtype)
    xs = jnp.full((maxiter + 1, x.shape[0]), jnp.nan, x.dtype)
    return _write(R.History(nan, nan, nan, xs), 0, f, gnorm, jnp.nan, x)


def _evaluate_start(fns, x0):
    """``f``, ``g`` and ``||g||`` at the start, in the dtype of ``x0``."""
    f0, g0 = fns.vg(x0)
    f0, g0 = f0.astype(x0.dtype), g0.astype(x0.dtype)
    return f0, g0, jnp.linalg.norm(g0)


def _start_status(f0, g0, gnorm0, tol, maxiter, converged):
    finite = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0))
    status = jnp.where(~finite, R.NONFINITE, jnp.where(gnorm0 <= tol, converged, RUNNING))
    return jnp.where((status == RUNNING) & (maxiter == 0), R.MAXITER, status).astype(jnp.int32)


def _floor_of(f0):
    """The value below which the objective counts as unbounded: 1/eps times its scale below f0."""
    return f0 - jnp.maximum(jnp.abs(f0), 1.0) / jnp.finfo(f0.dtype).eps


def _after_step(f_old, f_new, stall, k, *, eps, tiny, patience, maxiter):
    """Stall counter and the MAXITER / STAGNATION status after a step from f_old to f_new."""
    negligible = (f_old - f_new) <= 2.0 * eps * jnp.maximum(jnp.abs(f_old), tiny)
    stall = jnp.where(negligible, stall + 1, 0)
    status = jnp.where(k >= maxiter, R.MAXITER, RUNNING)
    return stall, jnp.where(stall >= patience, R.STAGNATION, status)


# -- gd, BFGS, L-BFGS: one flat loop, one evaluation per pass ---------------------------------

# the driver's scalars, packed: value, slope along d, gradient norm, divergence floor, and the
# inner products of the line search's best point so far (g.g there, and s.s, s.y, y.y of the
# pair s = x_lo - x, y = g_lo - g), kept for when the search ends there
F, SLOPE, GNORM, FLOOR, LO_GG, LO_SS, LO_SY, LO_YY = range(8)
# and its integers: iterations, evaluations, stall counter, status, steepest-descent flag, and
# the probe of the failure diagnosis under way (-1: none)
K, NFEV, STALL, STATUS, SD, PROBE = range(6)


class _Flat(NamedTuple):
    x: jax.Array  # the current iterate, its gradient, and the search direction
    g: jax.Array
    d: jax.Array
    x_lo: jax.Array  # the best trial point of the current line search, and its gradient
    g_lo: jax.Array
    v: jax.Array  # the line search's packed state
    sc: jax.Array  # F, SLOPE, GNORM, FLOOR, LO_GG, LO_SS, LO_SY, LO_YY
    ints: jax.Array  # K, NFEV, STALL, STATUS, SD, PROBE
    records: jax.Array  # what the probes of a failure diagnosis found
    aux: Any
    hist: Any


def _trial_products(g_t, d, step, y):
    """At a trial point: the slope ``g_t.d`` and, for when the search ends there, ``g_t.g_t``,
    ``s.s``, ``s.y`` and ``y.y`` of the pair ``s = x_t - x``, ``y = g_t - g``, in one fused
    pass (:func:`sums`)."""
    return jnp.stack(sums(g_t * d, g_t * g_t, step * step, step * y, y * y))


def _inner(g, step, y):
    """``||g||`` and the inner products of the pair, after the search (short vectors: their
    sums are cheap and fuse, so computing them at every trial would only cost)."""
    return jnp.sqrt(jnp.sum(g * g)), Inner(jnp.sum(step * step), jnp.sum(step * y),
                                            jnp.sum(y * y))


def _direction(g, gnorm, d_m, alpha_m, gd_m, force_sd):
    """The method's direction ``d_m`` unless it does not descend or ``force_sd`` (then -g):
    ``(d, slope g.d, first trial step, steepest-descent flag)``; ``gd_m`` is the method's
    slope ``g.d_m`` if it has one (else computed here)."""
    gd_m = vdot(g, d_m) if gd_m is None else gd_m
    sd = force_sd | ~(jnp.isfinite(gd_m) & (gd_m < 0))
    return (jnp.where(sd, -g, d_m), jnp.where(sd, -gnorm**2, gd_m),
            jnp.where(sd, first_step(g, gnorm), alpha_m), sd)


def _solve_gradient(fns, meth, rule, x0, tol, *, maxiter, history, patience, probe):
    """gd, BFGS, L-BFGS. Each pass evaluates one point: a trial of the line search, or, after
    a failed steepest-descent search, a probe of the diagnosis (:mod:`.diagnose`) that decides
    between STAGNATION and LINESEARCH_FAILED."""
    dtype = x0.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    n_probes = probes(dtype)
    f0, g0, gnorm0 = _evaluate_start(fns, x0)
    hist = _new_history(maxiter, x0, f0, gnorm0) if history else None
    ints = jnp.stack([jnp.int32(0), jnp.int32(1), jnp.int32(0),
                      _start_status(f0, g0, gnorm0, tol, maxiter, R.SUCCESS), jnp.int32(1),
                      jnp.int32(-1)])
    # the first search is along -g (no curvature is known yet)
    v0 = _ls.initial_state(f0, -gnorm0**2, first_step(g0, gnorm0))
    zero = jnp.zeros((), dtype)
    # long vectors: the inner products at every trial, in one fused reduction (a long sum is
    # otherwise three kernels); short ones: after the search, as separate sums
    at_trial = x0.shape[0] > BLOCK
    sc0 = jnp.stack([f0, -gnorm0**2, gnorm0, _floor_of(f0)] + [zero] * (4 if at_trial else 0))
    state = _Flat(x0, g0, -g0, x0, g0, v0, sc0,
                  ints, jnp.zeros((n_probes if probe else 0,), dtype), meth.init(x0, g0), hist)

    def body(s: _Flat) -> _Flat:
        f, slope = s.sc[F], s.sc[SLOPE]
        probing = (s.ints[PROBE] >= 0) if probe else jnp.bool_(False)
        j = jnp.maximum(s.ints[PROBE], 0)
        x_t = s.x + s.v[_ls.A] * s.d
        if probe:  # a conditional, not a select: a single solve computes the probe only then
            x_t = lax.cond(probing, lambda: probe_point(s.x, s.g, j), lambda: x_t)
        f_t, g_t = fns.vg(x_t)
        f_t, g_t = f_t.astype(dtype), g_t.astype(dtype)
        if at_trial:
            prods = _trial_products(g_t, s.d, x_t - s.x, g_t - s.g)
            slope_t = prods[0]
        else:
            slope_t = vdot(g_t, s.d)
        v, new_lo, done = rule.step(s.v, f, slope, f_t, slope_t)
        new_lo, done = new_lo & ~probing, done & ~probing
        x_lo = jnp.where(new_lo, x_t, s.x_lo)
        g_lo = jnp.where(new_lo, g_t, s.g_lo)
        ok = done & _ls.ok(v)
        # the point after this pass: the search's answer if it ended well, else unchanged (a
        # zero step, no pair)
        x = jnp.where(ok, x_lo, s.x)
        g = jnp.where(ok, g_lo, s.g)
        f_new = jnp.where(ok, v[_ls.LO_F], f)
        step, y = x - s.x, g - s.g
        if at_trial:
            lo = jnp.where(new_lo, prods[1:], s.sc[LO_GG:])
            gnorm = jnp.where(ok, jnp.sqrt(lo[0]), s.sc[GNORM])
            inner = Inner(*jnp.where(ok, lo[1:], 0.0))
        else:
            lo = s.sc[LO_GG:]  # empty
            gnorm, inner = _inner(g, step, y)
        sd = s.ints[SD] > 0
        aux, d_m, alpha_m, gd_m = meth.update_direction(meth.reset(s.aux, sd & ok), step, y, ok,
                                                  inner, x, g, gnorm)
        # a failed quasi-Newton search is retried along -g; a failed steepest-descent search
        # starts the diagnosis, whose last probe ends the solve
        d, gd, a0, sd_next = _direction(g, gnorm, d_m, alpha_m, gd_m, done & ~ok & ~sd)
        ints = _flat_ints(s, f, f_new, gnorm, done, ok, sd, sd_next, probing, j)
        records = s.records
        if probe:
            records = lax.cond(probing, lambda: records.at[j].set(probe_record(j, f_t, g_t, s.g)),
                               lambda: records)
        sc = jnp.concatenate([jnp.stack([f_new, jnp.where(done, gd, slope), gnorm,
                                         s.sc[FLOOR]]), lo])
        hist = s.hist
        if history:
            hist = _write(s.hist, ints[K], f_new, gnorm, jnp.sqrt(inner.ss), x, done)
        v = jnp.where(probing, s.v, jnp.where(done, _ls.initial_state(f_new, gd, a0), v))
        return _Flat(x, g, jnp.where(done, d, s.d), jnp.where(done, x, x_lo),
                     jnp.where(done, g, g_lo), v, sc, ints, records, aux, hist)

    def _flat_ints(s, f, f_new, gnorm, done, ok, sd, sd_next, probing, j):
        """The driver's integers after a pass: iterations, evaluations, stall counter, status
        (RUNNING until a search ends; then SUCCESS, UNBOUNDED, MAXITER, STAGNATION; a failed
        steepest-descent search starts the probes, or, without them, is LINESEARCH_FAILED), the
        steepest-descent flag and the next probe."""
        k = s.ints[K] + done.astype(jnp.int32)
        stall, status = _after_step(f, f_new, s.ints[STALL], k, eps=eps, tiny=tiny,
                                    patience=patience, maxiter=maxiter)
        status = jnp.where(ok & (gnorm <= tol), R.SUCCESS, status)
        status = jnp.where(ok & (f_new < s.sc[FLOOR]), R.UNBOUNDED, status)
        status = jnp.where(done, status, RUNNING)
        failed = done & ~ok & sd
        if probe:
            status = jnp.where(probing & (j + 1 >= n_probes), PROBED, status)
            next_probe = jnp.where(probing, j + 1, jnp.where(failed, 0, -1))
        else:
            status = jnp.where(failed, R.LINESEARCH_FAILED, status)
            next_probe = jnp.int32(-1)
        return jnp.stack([k, s.ints[NFEV] + 1, jnp.where(done, stall, s.ints[STALL]), status,
                          jnp.where(done, sd_next, sd).astype(jnp.int32),
                          jnp.asarray(next_probe, jnp.int32)])

    s = lax.while_loop(lambda s: s.ints[STATUS] == RUNNING, body, state)
    status = s.ints[STATUS]
    if probe:  # without the probes no solve ends PROBED: the verdict would be dead code
        status = jnp.where(status == PROBED, jnp.where(
            verdict(s.records, s.x, s.g), R.STAGNATION, R.LINESEARCH_FAILED), status)
    return s.x, s.sc[F], s.g, s.ints[K], s.ints[NFEV], s.ints[NFEV], jnp.int32(0), \
        status.astype(jnp.int32), s.hist


def _diagnose_failure(fns, x, g, status, probe):
    """A failed steepest-descent search: STAGNATION where the gradient agrees with the function
    to working precision, LINESEARCH_FAILED where the function contradicts it. (With ``probe``
    false the caller diagnoses afterwards, see :func:`_confirm_failures`.)"""
    if not probe:
        return status
    failed = status == R.LINESEARCH_FAILED
    agrees = lax.cond(failed, lambda: gradient_agrees(fns.vg, x, g), lambda: jnp.bool_(False))
    return jnp.where(failed & agrees, R.STAGNATION, status).astype(jnp.int32)


def _stationary_status(h, status):
    """PENDING (converged) becomes SUCCESS, SADDLE or DEGENERATE by the curvature of ``h``."""
    negative, singular = curvature(h)
    decided = jnp.where(negative, R.SADDLE, jnp.where(singular, R.DEGENERATE, R.SUCCESS))
    return jnp.where(status == PENDING, decided, status).astype(jnp.int32)


# -- Newton and damped Newton: a line search per iteration --------------------------------


class _NewtonState(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    k: jax.Array
    nfev: jax.Array
    nhev: jax.Array
    status: jax.Array
    stall: jax.Array
    force_sd: jax.Array
    hist: Any


def _solve_newton(fns, meth, rule, x0, tol, *, maxiter, history, patience, probe):
    """Newton and damped Newton; the curvature at the answer is checked once, after the loop."""
    dtype = x0.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    f0, g0, gnorm0 = _evaluate_start(fns, x0)
    floor = _floor_of(f0)
    hist = _new_history(maxiter, x0, f0, gnorm0) if history else None
    state = _NewtonState(x0, f0, g0, jnp.int32(0), jnp.int32(1), jnp.int32(0),
                         _start_status(f0, g0, gnorm0, tol, maxiter, PENDING), jnp.int32(0),
                         jnp.bool_(False), hist)

    def body(s: _NewtonState) -> _NewtonState:
        h = meth.hess(s.x).astype(dtype)
        d_m, info = meth.direction_with_hessian(h, s.g)
        h_bad = info.singular | info.nonfinite
        gd_m = jnp.vdot(s.g, d_m)
        use_sd = s.force_sd | ~(jnp.isfinite(gd_m) & (gd_m < 0))
        d = jnp.where(use_sd, -s.g, d_m)
        alpha0 = jnp.where(use_sd, first_step(s.g), jnp.ones((), dtype))
        ls = _ls.search(fns.vg, rule, s.x, s.f, s.g, d, alpha0)
        ok = ls.ok & ~h_bad
        x = jnp.where(ok, ls.x, s.x)
        f = jnp.where(ok, ls.f, s.f)
        g = jnp.where(ok, ls.g.astype(dtype), s.g)
        gnorm = jnp.linalg.norm(g)
        k = jnp.where(h_bad, s.k, s.k + 1)
        stall, status = _after_step(s.f, f, s.stall, k, eps=eps, tiny=tiny, patience=patience,
                                    maxiter=maxiter)
        status = jnp.where(~ok & use_sd, R.LINESEARCH_FAILED, status)
        status = jnp.where(ok & (gnorm <= tol), PENDING, status)
        status = jnp.where(ok & (f < floor), R.UNBOUNDED, status)
        status = jnp.where(h_bad, jnp.where(info.nonfinite, R.NONFINITE, R.SINGULAR), status)
        hist = s.hist
        if history:
            snorm = jnp.where(ok, jnp.linalg.norm(ls.x - s.x), 0.0)
            hist = _write(s.hist, k, f, gnorm, snorm, x, ~h_bad)
        return _NewtonState(x, f, g, k, jnp.where(h_bad, s.nfev, s.nfev + ls.nfev), s.nhev + 1,
                            status.astype(jnp.int32), jnp.where(h_bad, s.stall, stall),
                            ~ok & ~use_sd & ~h_bad, hist)

    s = lax.while_loop(lambda s: s.status == RUNNING, body, state)
    status = _diagnose_failure(fns, s.x, s.g, s.status, probe)
    pending = status == PENDING
    status = lax.cond(pending, lambda: _stationary_status(meth.hess(s.x).astype(dtype), status),
                      lambda: status)
    return (s.x, s.f, s.g, s.k, s.nfev, s.nfev, s.nhev + pending.astype(jnp.int32), status,
            s.hist)


# -- Newton in a trust region -------------------------------------------------------------


class _TrustState(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    h: jax.Array  # the Hessian at x (exact subproblem), or an empty array (conjugate gradients)
    radius: jax.Array
    k: jax.Array
    nfev: jax.Array
    nhev: jax.Array
    status: jax.Array
    stall: jax.Array
    hist: Any


def _hvp(grad, x):
    return lambda v: jax.jvp(grad, (x,), (v,))[1]


def _solve_trust(fns, hess, x0, tol, *, maxiter, history, patience, probe, exact, eta=0.1):
    r"""Trust-region Newton (Nocedal & Wright Algorithm 4.1, :math:`\eta = 0.1`): one trial point
    per iteration; the radius starts at 1 (SciPy's default: on the MGH set a radius scaled by
    :math:`\|x_0\|` leads into far-away valleys more often) and is capped at
    :math:`10^{10} \max(1, \|x_0\|_\infty)`."""
    dtype = x0.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    f0, g0, gnorm0 = _evaluate_start(fns, x0)
    floor = _floor_of(f0)
    hessian = (lambda x: hess(x).astype(dtype)) if exact else (lambda x: jnp.zeros((0,), dtype))
    h0 = hessian(x0)
    scale = jnp.max(jnp.abs(x0), initial=1.0)

    def converged(g, h):
        """||g|| <= tol, and (exact subproblem) no negative curvature left to follow."""
        small = jnp.linalg.norm(g) <= tol
        if not exact:
            return small
        return small & ~lax.cond(small, lambda: curvature(h)[0], lambda: jnp.bool_(False))

    status0 = _start_status(f0, g0, gnorm0, tol, maxiter, PENDING)
    status0 = jnp.where((status0 == PENDING) & ~converged(g0, h0), RUNNING, status0)
    status0 = jnp.where(jnp.all(jnp.isfinite(h0)), status0, R.NONFINITE).astype(jnp.int32)
    hist = _new_history(maxiter, x0, f0, gnorm0) if history else None
    state = _TrustState(x0, f0, g0, h0, jnp.ones((), dtype), jnp.int32(0), jnp.int32(1),
                        jnp.int32(int(exact)), status0, jnp.int32(0), hist)

    def body(s: _TrustState) -> _TrustState:
        if exact:
            step = _trust.more_sorensen(s.h, s.g, s.radius)
        else:
            step = _trust.steihaug(jax.linearize(fns.grad, s.x)[1], s.g, s.radius)
        x_t = s.x + step.p
        f_t, g_t = fns.vg(x_t)
        f_t, g_t = f_t.astype(dtype), g_t.astype(dtype)
        pnorm = jnp.linalg.norm(step.p)
        rho, radius = _trust_ratio(s, step, pnorm, f_t, g_t, 1e10 * scale)
        accept = rho > eta
        x = jnp.where(accept, x_t, s.x)
        f = jnp.where(accept, f_t, s.f)
        g = jnp.where(accept, g_t, s.g)
        h = lax.cond(accept, hessian, lambda _: s.h, x) if exact else s.h
        gnorm = jnp.linalg.norm(g)
        k = s.k + 1
        # rejected steps only shrink the region: stagnation counts accepted steps
        stall, _ = _after_step(s.f, f, s.stall, k, eps=eps, tiny=tiny, patience=patience,
                               maxiter=maxiter)
        stall = jnp.where(accept, stall, s.stall)
        status = jnp.where(stall >= patience, R.STAGNATION,
                           jnp.where(k >= maxiter, R.MAXITER, RUNNING))
        # the region shrank below the resolution of x: no decrease is possible from here
        collapsed = radius <= 10.0 * eps * jnp.maximum(jnp.max(jnp.abs(x)), tiny)
        status = jnp.where(collapsed & ~accept, R.LINESEARCH_FAILED, status)
        status = jnp.where(accept & converged(g, h), PENDING, status)
        status = jnp.where(accept & (f < floor), R.UNBOUNDED, status)
        status = jnp.where(jnp.all(jnp.isfinite(h)), status, R.NONFINITE)
        hist = _write(s.hist, k, f, gnorm, jnp.where(accept, pnorm, 0.0), x) if history else None
        return _TrustState(x, f, g, h, radius, k, s.nfev + 1,
                           s.nhev + (accept.astype(jnp.int32) if exact else 0),
                           status.astype(jnp.int32), stall, hist)

    s = lax.while_loop(lambda s: s.status == RUNNING, body, state)
    status = _diagnose_failure(fns, s.x, s.g, s.status, probe)
    pending = status == PENDING
    if exact:
        status = _stationary_status(s.h, status)
        nhev = s.nhev
    else:
        status = lax.cond(pending, lambda: _stationary_status(_final_hessian(fns, hess, s.x),
                                                              status), lambda: status)
        nhev = s.nhev + pending.astype(jnp.int32)
    return s.x, s.f, s.g, s.k, s.nfev, s.nfev, nhev, status, s.hist


def _trust_ratio(s, step, pnorm, f_t, g_t, cap):
    """The ratio of actual to predicted decrease (-inf for a non-finite trial) and the next
    radius: a quarter of the step below 1/4, twice the radius (up to ``cap``) above 3/4 on the
    boundary."""
    finite = jnp.isfinite(f_t) & jnp.all(jnp.isfinite(g_t))
    predicted = jnp.where(step.decrease > 0, step.decrease, 1.0)
    rho = jnp.where(finite & (step.decrease > 0), (s.f - f_t) / predicted, -jnp.inf)
    radius = jnp.where(rho < 0.25, 0.25 * pnorm,
                       jnp.where((rho > 0.75) & step.boundary, jnp.minimum(2.0 * s.radius, cap),
                                 s.radius))
    return rho, radius


def _final_hessian(fns, hess, x):
    """The Hessian for the final curvature check; for very large ``n`` a diagonal stand-in
    built from the curvature along ``g`` (the check then only sees that direction)."""
    if x.shape[0] <= DENSE_CHECK_MAX_N:
        return hess(x).astype(x.dtype)
    g = fns.grad(x)
    u = g / jnp.maximum(jnp.linalg.norm(g), jnp.finfo(x.dtype).tiny)
    c = jnp.vdot(u, _hvp(fns.grad, x)(u))
    return c * jnp.eye(1, dtype=x.dtype)


# -- the jitted solve and the public entry --------------------------------------------------


def _certify(fns, x, f, g, nit, nfev, njev, nhev, status, hist):
    """A gradient-only method's SUCCESS certifies a small gradient; for small ``n`` the
    Hessian at the answer (one more evaluation, only when converged) then decides between
    SUCCESS, SADDLE and DEGENERATE, as for the Newton methods. An objective whose Hessian
    cannot be traced keeps the first-order verdict."""
    done = status == R.SUCCESS
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    try:
        h = lax.cond(done, lambda: _final_hessian(fns, symmetric_hessian(fns.grad), x),
                     lambda: eye)
    except Exception:  # noqa: BLE001 - e.g. a custom rule JAX cannot differentiate again
        return x, f, g, nit, nfev, njev, nhev, status, hist
    status = _stationary_status(h, jnp.where(done, PENDING, status))
    return x, f, g, nit, nfev, njev, nhev + done.astype(nhev.dtype), status, hist


def _make_method(name: str, grad_fn, m: int):
    if name == "gd":
        return SteepestDescent()
    if name == "bfgs":
        return BFGS()
    if name == "lbfgs":
        return LBFGS(m)
    return Newton(symmetric_hessian(grad_fn), damped=name == "newton-damped")


def _solve_flat(fns, x0, tol, c1, c2, f_lower, *, method, linesearch, maxiter, m, history,
                patience, subproblem, probe):
    dtype = x0.dtype
    tol = jnp.asarray(tol, dtype)
    opts = dict(maxiter=maxiter, history=history, patience=patience, probe=probe)
    if method == "newton-trust":
        exact = subproblem == "exact" or (subproblem == "auto" and x0.shape[0] <= EXACT_MAX_N)
        out = _solve_trust(fns, symmetric_hessian(fns.grad), x0, tol, exact=exact, **opts)
    else:
        meth = _make_method(method, fns.grad, m)
        rule = _ls.Wolfe(c1, c2) if linesearch == "wolfe" else _ls.Armijo(c1)
        solve = _solve_newton if meth.needs_hessian else _solve_gradient
        out = solve(fns, meth, rule, x0, tol, **opts)
        if not meth.needs_hessian and x0.shape[0] <= CERTIFY_MAX_N:
            out = _certify(fns, *out)
    x, f, g, nit, nfev, njev, nhev, status, hist = out
    f_lower = jnp.asarray(f_lower, dtype)
    eps = jnp.finfo(dtype).eps
    slack = jnp.sqrt(eps) * jnp.maximum(1.0, jnp.abs(f_lower))
    above = jnp.isfinite(f_lower) & (f > f_lower + slack)
    at_bound = jnp.isfinite(f_lower) & ~above
    # converged above the known bound: a local minimum; at the bound, a degenerate point is
    # still the global minimum
    status = jnp.where((status == R.SUCCESS) & above, R.LOCAL_MINIMUM, status)
    status = jnp.where((status == R.DEGENERATE) & at_bound, R.SUCCESS, status)
    return x, f, g, nit, nfev, njev, nhev, status.astype(jnp.int32), hist


def _minimize_impl(x0, args, tol, c1, c2, f_lower, *, fun, method, linesearch, maxiter, m,
                   history, patience, subproblem, probe=True):
    flat, unravel = ravel_pytree(x0)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        flat = flat.astype(jnp.result_type(float))
        unravel_int = unravel
        unravel = lambda v: jax.tree.map(  # noqa: E731
            lambda a: a.astype(flat.dtype), unravel_int(v))

    def value(v):
        # the solve runs in the dtype of x0: a float64 constant inside fun must not promote f
        return jnp.asarray(fun(unravel(v), *args)).astype(flat.dtype)

    fns = _Fns(value, jax.value_and_grad(value), jax.grad(value))
    x, f, g, nit, nfev, njev, nhev, status, hist = _solve_flat(
        fns, flat, tol, c1, c2, f_lower, method=method, linesearch=linesearch, maxiter=maxiter,
        m=m, history=history, patience=patience, subproblem=subproblem, probe=probe)
    return R.OptimizeResult(unravel(x), f, unravel(g), nit, nfev, njev, nhev,
                            status == R.SUCCESS, status, hist)


_STATIC = ("fun", "method", "linesearch", "maxiter", "m", "history", "patience", "subproblem",
           "probe")


@functools.cache
def _jitted(options: tuple) -> Callable:
    return jax.jit(_minimize_impl, static_argnames=_STATIC, compiler_options=dict(options))


def _check_float(name, value, lo, hi):
    if isinstance(value, int | float) and not lo < value < hi:
        raise _usage(f"{name} must lie in ({lo}, {hi}), got {value}")


def _as_start(x0: Any) -> Any:
    """A list or tuple of plain numbers (possibly nested) is one array, not a pytree of scalars;
    a float64 NumPy start while JAX's x64 mode is off is solved in float32, with a warning."""
    if isinstance(x0, list | tuple) and x0 and all(
            isinstance(v, numbers.Number) for v in jax.tree.leaves(x0)):
        x0 = np.asarray(x0, dtype=float)
        if not jax.config.jax_enable_x64:
            x0 = x0.astype(np.float32)
    if not jax.config.jax_enable_x64 and any(
            isinstance(a, np.ndarray | np.floating) and a.dtype == np.float64
            for a in jax.tree.leaves(x0)):
        warnings.warn(
            "x0 is float64 but JAX's x64 mode is off, so the solve runs in float32 (default "
            "tol 1e-3). Call jax.config.update('jax_enable_x64', True) first for a float64 "
            "solve, or pass a float32 x0 to silence this warning.", UserWarning, stacklevel=3)
    return x0


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
    subproblem: str = "auto",
    check: bool = False,
) -> R.OptimizeResult:
    r"""Minimise a scalar JAX-traceable function.

    Methods (``d_k`` the direction, then a line search picks :math:`\alpha_k`):

    * ``"gd"``: steepest descent :math:`d = -\nabla f` (Barzilai–Borwein first trial step).
    * ``"newton"``: :math:`H d = -\nabla f` (the lecture's form); converges quadratically near
      a strong minimum, stops with status ``SINGULAR`` on an exactly singular Hessian and
      falls back to :math:`-\nabla f` where the Newton direction does not descend.
    * ``"newton-damped"``: modified Cholesky :math:`(H + \tau I) d = -\nabla f`, a descent
      direction also where :math:`H` is indefinite (non-convex problems).
    * ``"newton-trust"``: no line search; the step minimises the quadratic model in a trust
      region (Moré–Sorensen on the Hessian for ``n <= 200``, Steihaug–Toint conjugate
      gradients on Hessian-vector products above; ``subproblem`` chooses), so singular and
      indefinite Hessians are handled and saddles are left along negative curvature.
    * ``"bfgs"``: dense inverse-Hessian quasi-Newton update.
    * ``"lbfgs"``: limited memory, the last ``m`` pairs (two-loop recursion in compact form).

    Line searches: ``"armijo"`` (backtracking, ``0 < c1 < 1/2``; default for gd and Newton)
    and ``"wolfe"`` (strong Wolfe with zoom, ``c1 < c2 < 1``; default for BFGS and L-BFGS).

    Honesty: ``success`` is true only when :math:`\|\nabla f(x)\|_2 \le` ``tol`` and, for the
    Hessian at ``x`` is positive definite by a margin (gd, BFGS and L-BFGS evaluate it once,
    at the answer, for ``n <= 200``; above that their success certifies a small gradient, not a
    minimum). Otherwise
    ``status`` says why it stopped: ``MAXITER``; ``LINESEARCH_FAILED`` (no step along
    :math:`-\nabla f` decreases ``f`` and finite differences of ``f`` contradict the
    gradient); ``STAGNATION`` (``patience`` iterations without a decrease above rounding, or
    no decrease possible although the gradient agrees with ``f``: the floating-point floor,
    e.g. float32); ``NONFINITE`` (NaN/inf at ``x0`` or in the Hessian; non-finite trial points
    only shrink the step); ``SINGULAR`` (plain Newton's Hessian is exactly singular);
    ``SADDLE`` (negative curvature at the answer); ``DEGENERATE`` (converged where the
    Hessian, scaled to a unit diagonal, is singular: a flat region, a degenerate point or a
    minimum at infinity); ``UNBOUNDED`` (``f`` fell more than 1/eps times its
    scale below ``f(x0)``); ``LOCAL_MINIMUM`` (converged, but ``f`` is above the known lower
    bound ``f_lower``, e.g. ``f_lower=0`` for a sum of squares).

    Args:
        fun: ``fun(x, *args) -> scalar``, JAX-traceable; ``x`` has ``x0``'s pytree structure.
        x0: starting point, an array or a pytree of arrays; float32 and float64 are kept. A
            list of numbers is one array. A float64 NumPy array while JAX's x64 mode is off
            runs in float32, with a warning.
        method: one of ``"gd"``, ``"newton"``, ``"newton-damped"``, ``"newton-trust"``,
            ``"bfgs"``, ``"lbfgs"``.
        tol: bound on the 2-norm of the gradient; default ``1e-5`` (float64) / ``1e-3``
            (float32).
        maxiter: iteration budget; default 10000 for ``gd``, 200 for ``newton`` and
            ``newton-damped``, 1000 otherwise (``newton-trust`` counts rejected steps too).
        linesearch: ``"armijo"`` or ``"wolfe"``; default per method, see above (not for
            ``newton-trust``).
        c1, c2: the Armijo and curvature constants.
        m: L-BFGS memory.
        args: extra arguments of ``fun`` (traced, so ``vmap`` can batch problem data).
        history: record ``f``, ``||g||``, the step length and the iterate per iteration into
            ``result.history`` (fixed ``maxiter + 1`` rows, NaN past ``nit``).
        f_lower: a known lower bound of ``f``; converging above it reports ``LOCAL_MINIMUM``,
            reaching it certifies the minimum even where the Hessian is degenerate.
        patience: iterations without progress before ``STAGNATION``.
        subproblem: ``newton-trust``'s step: ``"exact"`` (Moré–Sorensen), ``"cg"``
            (Steihaug–Toint) or ``"auto"`` (exact up to n = 200).
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
        >>> bool(res.success), [round(float(v), 3) for v in res.x]
        (True, [1.0, 1.0])
    """
    if method not in METHODS:
        raise _usage(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "newton-trust" and linesearch is not None:
        raise _usage("newton-trust takes no line search (its steps come from a trust region)")
    linesearch = linesearch or _DEFAULT_LS[method]
    if method != "newton-trust" and linesearch not in LINESEARCHES:
        raise _usage(f"unknown line search {linesearch!r}; choose 'armijo' or 'wolfe'")
    if subproblem not in SUBPROBLEMS:
        raise _usage(f"unknown subproblem {subproblem!r}; choose one of {', '.join(SUBPROBLEMS)}")
    _check_float("c1", c1, 0.0, 0.5)
    if isinstance(c1, int | float) and isinstance(c2, int | float) and not c1 < c2 < 1:
        raise _usage(f"c2 must lie in (c1, 1) = ({c1}, 1), got {c2}")
    if maxiter is None:
        maxiter = {"gd": 10000, "newton": 200, "newton-damped": 200}.get(method, 1000)
    if int(maxiter) < 0 or int(m) < 1 or int(patience) < 1:
        raise _usage("maxiter must be >= 0, m and patience >= 1")
    x0 = _as_start(x0)
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
    static = dict(fun=fun, method=method, linesearch=linesearch, maxiter=int(maxiter), m=int(m),
                  history=bool(history), patience=int(patience), subproblem=subproblem)
    operands = (x0, tuple(args), tol, c1, c2, f_lower)
    if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(operands)):
        return _jitted(())(*operands, **static)  # inside jit or vmap: the outer jit compiles
    try:
        res = _jitted(compilation.compiler_options())(*operands, probe=False, **static)
    except ValueError as exc:  # inside a jit whose trace reaches only fun, not x0
        if "compiler_options" not in str(exc):
            raise
        return _jitted(())(*operands, **static)
    return _confirm_failures(res, fun, tuple(args))


@functools.partial(jax.jit, static_argnames=("fun",))
def _gradient_agrees(x, args, *, fun):
    flat, unravel = ravel_pytree(x)

    def value(v):
        return jnp.asarray(fun(unravel(v), *args)).astype(flat.dtype)

    return gradient_agrees(jax.value_and_grad(value), flat)


def _confirm_failures(res: R.OptimizeResult, fun, args) -> R.OptimizeResult:
    """A direct call (not under ``jit`` or ``vmap``) compiles its solve without the failure
    diagnosis and runs it here, separately, only when a search failed: the solve compiles
    faster, and the diagnosis (the same probes as in the loop) is compiled only when needed."""
    if int(res.status) != R.LINESEARCH_FAILED:
        return res
    if bool(_gradient_agrees(res.x, args, fun=fun)):
        return res._replace(status=jnp.asarray(R.STAGNATION, jnp.int32))
    return res
