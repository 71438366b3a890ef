"""JAX forms of rule-table rows that JAX has no single function for.

A row names one of these with ``jax="diffcheck.engines.jax_forms:NAME"`` (see
:func:`diffcheck.primitives.jax_function`). Each is written with JAX's own functions, never
with the row's NumPy implementation or partials, so the JAX engine stays independent.
This module imports JAX: it is loaded only when the JAX engine or the optimiser runs.

>>> import jax.numpy as jnp
>>> round(float(sec(jnp.float32(0.0))), 6), round(float(factorial(jnp.float32(3.0))), 4)
(1.0, 6.0)
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy import special


def sec(x):
    """1/cos(x)."""
    return 1.0 / jnp.cos(x)


def csc(x):
    """1/sin(x)."""
    return 1.0 / jnp.sin(x)


def cot(x):
    """cos(x)/sin(x)."""
    return jnp.cos(x) / jnp.sin(x)


def factorial(x):
    """gamma(x + 1)."""
    return special.gamma(x + 1.0)


def polygamma(n, x):
    """psi^(n)(x); the order ``n`` (a constant of the Program) is cast to an integer, which
    JAX's polygamma requires."""
    return special.polygamma(jnp.asarray(n).astype(jnp.int32), x)
