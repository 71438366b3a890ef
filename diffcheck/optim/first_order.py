r"""First-order methods in optax's shape: ``GradientTransformation(init, update)``.

``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, state)`` are
pure functions over pytrees; states are NamedTuples of arrays. The maths (and the defaults)
follow optax exactly, so equal hyperparameters give equal trajectories:

* SGD with momentum ``μ`` (heavy ball): :math:`t_k = g_k + \mu t_{k-1}`, update
  :math:`-\eta t_k` (Nesterov: :math:`-\eta (g_k + \mu t_k)`).
* AdaGrad: :math:`G_k = G_{k-1} + g_k^2`, update :math:`-\eta g_k / \sqrt{G_k + \epsilon}`.
* RMSProp: :math:`v_k = \rho v_{k-1} + (1-\rho) g_k^2`, update
  :math:`-\eta g_k/\sqrt{v_k+\epsilon}`.
* AdaDelta: :math:`E[g^2]_k = \rho E[g^2]_{k-1} + (1-\rho) g_k^2`,
  :math:`u_k = \sqrt{E[u^2]_{k-1} + \epsilon} / \sqrt{E[g^2]_k + \epsilon}\, g_k`.
* Adam: :math:`m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k`,
  :math:`v_k = \beta_2 v_{k-1} + (1-\beta_2) g_k^2`, update
  :math:`-\eta \hat m_k / (\sqrt{\hat v_k + \epsilon_{root}} + \epsilon)` with
  :math:`\hat m_k = m_k / (1-\beta_1^k)`, :math:`\hat v_k = v_k/(1-\beta_2^k)`.
* AdamW adds decoupled weight decay :math:`-\eta \lambda x_k`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = float | jax.Array | Schedule


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``init(params)`` and ``update(grads, state, params=None)``."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """State of a stateless transformation."""


class CountState(NamedTuple):
    count: jax.Array


class TraceState(NamedTuple):
    trace: Any


class RssState(NamedTuple):
    sum_of_squares: Any


class RmsState(NamedTuple):
    nu: Any


class AdaDeltaState(NamedTuple):
    e_g: Any
    e_x: Any


class AdamState(NamedTuple):
    count: jax.Array
    mu: Any
    nu: Any


def _map(f, *trees):
    return jax.tree.map(f, *trees)


def _increment(count: jax.Array) -> jax.Array:
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def identity() -> GradientTransformation:
    """The transformation that leaves updates unchanged."""
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (updates, state))


def scale(step_size: Any) -> GradientTransformation:
    """Multiply updates by a constant ``step_size``."""
    return GradientTransformation(
        lambda params: EmptyState(),
        lambda updates, state, params=None: (_map(lambda g: step_size * g, updates), state))


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply updates by ``step_size_fn(count)``, ``count`` the number of updates so far."""

    def update(updates, state, params=None):
        step = step_size_fn(state.count)
        updates = _map(lambda g: jnp.array(step, dtype=g.dtype) * g, updates)
        return updates, CountState(_increment(state.count))

    return GradientTransformation(lambda params: CountState(jnp.zeros([], jnp.int32)), update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *,
                           flip_sign: bool = True) -> GradientTransformation:
    """Multiply updates by ``-learning_rate`` (a constant or a schedule)."""
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


def trace(decay: Any, nesterov: bool = False) -> GradientTransformation:
    r"""Momentum :math:`t_k = g_k + \mu t_{k-1}`; returns :math:`t_k` (Nesterov:
    :math:`g_k + \mu t_k`)."""

    def update(updates, state, params=None):
        new = _map(lambda g, t: g + decay * t, updates, state.trace)
        out = _map(lambda g, t: g + decay * t, updates, new) if nesterov else new
        return out, TraceState(new)

    return GradientTransformation(lambda params: TraceState(_map(jnp.zeros_like, params)), update)


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> GradientTransformation:
    """AdaGrad's scaling by the root of the sum of squared gradients."""

    def init(params):
        return RssState(_map(lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update(updates, state, params=None):
        sos = _map(lambda g, t: g * g + t, updates, state.sum_of_squares)
        out = _map(lambda g, t: jnp.where(t > 0, jax.lax.rsqrt(t + eps), 0.0) * g, updates, sos)
        return out, RssState(sos)

    return GradientTransformation(init, update)


def scale_by_rms(decay: Any = 0.9, eps: Any = 1e-8,
                 initial_scale: Any = 0.0) -> GradientTransformation:
    """RMSProp's scaling by the root of the moving average of squared gradients."""

    def init(params):
        return RmsState(_map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(updates, state, params=None):
        nu = _map(lambda g, n: (1 - decay) * g * g + decay * n, updates, state.nu)
        return _map(lambda g, n: jax.lax.rsqrt(n + eps) * g, updates, nu), RmsState(nu)

    return GradientTransformation(init, update)


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> GradientTransformation:
    """AdaDelta's unit-correcting scaling."""

    def init(params):
        return AdaDeltaState(_map(jnp.zeros_like, params), _map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        e_g = _map(lambda g, t: (1 - rho) * g * g + rho * t, updates, state.e_g)
        out = _map(lambda g, eg, ex: jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps) * g,
                   updates, e_g, state.e_x)
        e_x = _map(lambda u, t: (1 - rho) * u * u + rho * t, out, state.e_x)
        return out, AdaDeltaState(e_g, e_x)

    return GradientTransformation(init, update)


def scale_by_adam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
                  eps_root: Any = 0.0) -> GradientTransformation:
    """Adam's bias-corrected moment scaling."""

    def init(params):
        zeros = _map(jnp.zeros_like, params)
        return AdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(updates, state, params=None):
        mu = _map(lambda g, t: (1 - b1) * g + b1 * t, updates, state.mu)
        nu = _map(lambda g, t: (1 - b2) * g * g + b2 * t, updates, state.nu)
        count = _increment(state.count)
        c1 = 1 - b1**count
        c2 = 1 - b2**count
        out = _map(lambda m, v: (m / c1.astype(m.dtype))
                   / (jnp.sqrt(v / c2.astype(v.dtype) + eps_root) + eps), mu, nu)
        return out, AdamState(count, mu, nu)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: Any = 0.0) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay)."""

    def update(updates, state, params=None):
        if isinstance(weight_decay, int | float) and weight_decay == 0:
            return updates, state
        if params is None:
            raise _usage("add_decayed_weights needs params: call update(grads, state, params)")
        return _map(lambda g, p: g + weight_decay * p, updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update)


def _usage(msg: str) -> Exception:  # noqa: N802
    from diffcheck.errors import UsageError

    return UsageError(msg)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations in sequence; the state is the tuple of their states.

    Example:
        >>> import jax.numpy as jnp
        >>> from diffcheck.optim import chain, scale_by_adam, scale_by_learning_rate
        >>> opt = chain(scale_by_adam(), scale_by_learning_rate(0.1))
        >>> u, _ = opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))
        >>> [round(float(v), 4) for v in u]
        [-0.1, -0.1]
    """

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype (as optax)."""
    return _map(lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype), params, updates)


def _no_momentum(momentum: Any) -> bool:
    return momentum is None or (isinstance(momentum, int | float) and momentum == 0)


def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None,
        nesterov: bool = False) -> GradientTransformation:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    :math:`x_{k+1} = x_k - \eta_k t_k`, :math:`t_k = g_k + \mu t_{k-1}` (no state when
    ``momentum`` is ``None`` or 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from diffcheck.optim import sgd, apply_updates
        >>> opt = sgd(0.1); x = jnp.array([1.0]); state = opt.init(x)
        >>> u, state = opt.update(2 * x, state); round(float(apply_updates(x, u)[0]), 6)
        0.8
    """
    first = identity() if _no_momentum(momentum) else trace(momentum, nesterov)
    return chain(first, scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    r"""AdaGrad: per-coordinate steps :math:`\eta / \sqrt{\sum_i g_i^2 + \epsilon}`.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = adagrad(1.0); u, _ = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
        >>> round(float(u[0]), 4)
        -0.9945
    """
    return chain(scale_by_rss(initial_accumulator_value, eps),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, momentum: float | None = None,
            nesterov: bool = False) -> GradientTransformation:
    r"""RMSProp: steps :math:`\eta g / \sqrt{v + \epsilon}`, :math:`v` an EMA of :math:`g^2`.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = rmsprop(0.01); u, _ = opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))
        >>> round(float(u[0]), 4)
        -0.0316
    """
    last = identity() if _no_momentum(momentum) else trace(momentum, nesterov)
    return chain(scale_by_rms(decay, eps, initial_scale), scale_by_learning_rate(learning_rate),
                 last)


def adadelta(learning_rate: ScalarOrSchedule | None = None, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: float = 0.0) -> GradientTransformation:
    r"""AdaDelta (Zeiler 2012): steps in the units of :math:`x`, no learning rate needed.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = adadelta(1.0); u, _ = opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))
        >>> round(float(u[0]), 5)
        -0.00316
    """
    lr = identity() if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(add_decayed_weights(weight_decay), scale_by_adadelta(rho, eps), lr)


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0) -> GradientTransformation:
    r"""Adam (Kingma & Ba 2015): bias-corrected first and second moment estimates.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = adam(0.1); u, _ = opt.update(jnp.array([5.0]), opt.init(jnp.zeros(1)))
        >>> round(float(u[0]), 4)
        -0.1
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, weight_decay: float = 1e-4) -> GradientTransformation:
    r"""AdamW (Loshchilov & Hutter 2019): Adam plus decoupled weight decay
    :math:`-\eta\lambda x`.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = adamw(0.1, weight_decay=0.5); x = jnp.array([2.0])
        >>> u, _ = opt.update(jnp.array([0.0]), opt.init(x), x)
        >>> round(float(u[0]), 4)
        -0.1
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay),
                 scale_by_learning_rate(learning_rate))
