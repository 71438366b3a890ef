r"""Step-size schedules ``count -> learning rate`` and iterate (Polyak–Ruppert) averaging.

SGD with constant step :math:`h` only reaches a ball of radius :math:`O(G^2 h)`; the
Robbins–Monro conditions :math:`\sum_k \alpha_k = \infty`, :math:`\sum_k \alpha_k^2 < \infty`
(e.g. :math:`\alpha_k = \alpha_0/(1 + k/k_0)`) give convergence, and averaging the iterates
weighted by :math:`\alpha_k` gives the :math:`O(1/\sqrt{k})` bound of the lecture notes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffcheck.optim.first_order import Schedule


def constant_schedule(value: float) -> Schedule:
    """``η_k = value``.

    Example:
        >>> round(float(constant_schedule(0.1)(5)), 6)
        0.1
    """
    return lambda count: jnp.asarray(value)


def robbins_monro(init_value: float, decay_steps: float = 1.0, power: float = 1.0) -> Schedule:
    r"""``η_k = init_value / (1 + k / decay_steps) ** power``; Robbins–Monro for
    :math:`1/2 < p \le 1` (``power=1`` is the classic :math:`1/k` schedule).

    Example:
        >>> float(robbins_monro(1.0)(3))
        0.25
    """
    if not 0 < power:
        from diffcheck.errors import UsageError

        raise UsageError(f"power must be positive, got {power}")
    return lambda count: init_value / (1.0 + jnp.asarray(count) / decay_steps) ** power


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """optax's ``exponential_decay``: ``init_value * decay_rate ** ((k - begin) / steps)``.

    Example:
        >>> float(exponential_decay(1.0, 10, 0.5)(20))
        0.25
    """

    def schedule(count):
        k = jnp.asarray(count) - transition_begin
        p = k / transition_steps if transition_steps > 0 else 0.0 * k
        p = jnp.floor(p) if staircase else p
        value = jnp.where(k <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            clip = jnp.maximum if decay_rate < 1 else jnp.minimum
            value = clip(value, end_value)
        return value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    r"""optax's cosine decay: :math:`\eta_0((1-\alpha)[\tfrac12(1+\cos(\pi k/T))]^p + \alpha)`.

    Example:
        >>> round(float(cosine_decay_schedule(1.0, 10)(5)), 6)
        0.5
    """

    def schedule(count):
        k = jnp.minimum(jnp.asarray(count, float), float(decay_steps))
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * k / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


class AverageState(NamedTuple):
    """Running weighted mean of iterates: ``mean`` and the total weight ``weight``."""

    mean: Any
    weight: jax.Array


def average_init(params: Any) -> AverageState:
    """Start an iterate average at ``params`` with zero weight (in the parameters' precision,
    at least float32: float64 iterates get float64 weights)."""
    dtype = jnp.result_type(jnp.float32, *jax.tree.leaves(params))
    return AverageState(params, jnp.zeros([], dtype))


def average_update(state: AverageState, params: Any, weight: Any = 1.0) -> AverageState:
    r"""Polyak–Ruppert averaging :math:`\bar x \leftarrow \bar x + \frac{w}{W}(x - \bar x)`.

    Example:
        >>> import jax.numpy as jnp
        >>> s = average_init(jnp.zeros(1))
        >>> for x in (1.0, 2.0, 3.0): s = average_update(s, jnp.array([x]))
        >>> s.mean.tolist()
        [2.0]
    """
    total = state.weight + weight
    frac = weight / total
    mean = jax.tree.map(lambda m, p: (m + frac.astype(m.dtype) * (p - m)).astype(m.dtype),
                        state.mean, params)
    return AverageState(mean, total)
