r"""Test problems with known minima: the Moré–Garbow–Hillstrom set and chained Rosenbrock.

The 18 unconstrained problems of J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing
unconstrained optimization software", ACM TOMS 7 (1981) 17–41, each a sum of squares
:math:`f(x) = \sum_i r_i(x)^2`, written once as JAX residuals that keep the dtype of ``x`` (a
float32 start gives a float32 solve: every constant is cast to ``x.dtype``). The usual
benchmark runs each from its standard start :math:`x_0` and from :math:`10 x_0` and
:math:`100 x_0` (Watson's standard start is 0: it then starts from 10 and 100 in every
coordinate, as in MINPACK's driver), 54 starts, plus chained Rosenbrock with n = 100 and
n = 1000 from :math:`(-1.2, 1, -1.2, 1, \dots)`.

``f_min`` is the least value the paper reports for the chosen dimension (a local minimum may
be lower for some starts: several problems have more than one).

Example:
    >>> import jax.numpy as jnp
    >>> p = problem("beale")
    >>> float(p.fun(jnp.array([3.0, 0.5]))), p.n, len(starts(p))
    (0.0, 2, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Problem(NamedTuple):
    """A least-squares test problem: ``fun(x) = sum(residuals(x) ** 2)``.

    Attributes:
        name: short name (``"helical_valley"``, ``"chained_rosenbrock_100"``, ...).
        residuals: ``x -> r(x)``, JAX-traceable, in ``x``'s dtype.
        x0: the standard starting point (float64 NumPy array).
        f_min: the least known value of ``f`` (the paper's Table), ``None`` when unknown.
    """

    name: str
    residuals: Callable[[jax.Array], jax.Array]
    x0: np.ndarray
    f_min: float | None

    @property
    def n(self) -> int:
        return int(self.x0.shape[0])

    def fun(self, x: jax.Array) -> jax.Array:
        """The objective :math:`\\sum_i r_i(x)^2`."""
        r = self.residuals(x)
        return jnp.sum(r * r)


def _c(x: jax.Array, values) -> jax.Array:
    """Constants in the dtype of ``x`` (a float64 constant would promote a float32 solve)."""
    return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=x.dtype)


def _index(x: jax.Array, start: int, stop: int) -> jax.Array:
    return jnp.arange(start, stop, dtype=x.dtype)


def helical_valley(x):
    t = jnp.arctan2(x[1], x[0]) / (2 * math.pi)
    theta = jnp.where(t < -0.25, t + 1.0, t)  # MGH's branch: theta in [-1/4, 3/4)
    return jnp.stack([10.0 * (x[2] - 10.0 * theta),
                      10.0 * (jnp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]])


def biggs_exp6(x):
    t = 0.1 * _index(x, 1, 14)
    y = jnp.exp(-t) - 5.0 * jnp.exp(-10.0 * t) + 3.0 * jnp.exp(-4.0 * t)
    return (x[2] * jnp.exp(-t * x[0]) - x[3] * jnp.exp(-t * x[1])
            + x[5] * jnp.exp(-t * x[4]) - y)


_GAUSSIAN_Y = (9.0e-4, 4.4e-3, 1.75e-2, 5.4e-2, 1.295e-1, 2.42e-1, 3.521e-1, 3.989e-1,
               3.521e-1, 2.42e-1, 1.295e-1, 5.4e-2, 1.75e-2, 4.4e-3, 9.0e-4)


def gaussian(x):
    t = (8.0 - _index(x, 1, 16)) / 2.0
    return x[0] * jnp.exp(-0.5 * x[1] * (t - x[2]) ** 2) - _c(x, _GAUSSIAN_Y)


def powell_badly_scaled(x):
    return jnp.stack([1e4 * x[0] * x[1] - 1.0, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])


def box_3d(x):
    t = 0.1 * _index(x, 1, 11)
    return jnp.exp(-t * x[0]) - jnp.exp(-t * x[1]) - x[2] * (jnp.exp(-t) - jnp.exp(-10.0 * t))


def variably_dimensioned(x):
    s = jnp.sum(_index(x, 1, x.shape[0] + 1) * (x - 1.0))
    return jnp.concatenate([x - 1.0, jnp.stack([s, s * s])])


def watson(x):
    n = x.shape[0]
    t = _index(x, 1, 30)[:, None] / 29.0
    j = _index(x, 0, n)[None, :]
    powers = t ** j  # t_i^(j-1) for j = 1..n
    s1 = jnp.sum(j[:, 1:] * powers[:, :-1] * x[1:], axis=1)
    s2 = jnp.sum(powers * x, axis=1)
    return jnp.concatenate([s1 - s2**2 - 1.0, jnp.stack([x[0], x[1] - x[0] ** 2 - 1.0])])


def penalty_1(x):
    return jnp.concatenate([math.sqrt(1e-5) * (x - 1.0), jnp.stack([jnp.sum(x**2) - 0.25])])


def penalty_2(x):
    n = x.shape[0]
    a = math.sqrt(1e-5)
    i = _index(x, 2, n + 1)
    y = jnp.exp(i / 10.0) + jnp.exp((i - 1.0) / 10.0)
    e = jnp.exp(x / 10.0)
    weights = _index(x, 1, n + 1)[::-1]  # n - j + 1
    return jnp.concatenate([jnp.stack([x[0] - 0.2]), a * (e[1:] + e[:-1] - y),
                            a * (e[1:] - math.exp(-0.1)),
                            jnp.stack([jnp.sum(weights * x**2) - 1.0])])


def brown_badly_scaled(x):
    return jnp.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])


def brown_dennis(x):
    t = _index(x, 1, 21) / 5.0
    return (x[0] + t * x[1] - jnp.exp(t)) ** 2 + (x[2] + x[3] * jnp.sin(t) - jnp.cos(t)) ** 2


def gulf(x):
    t = _index(x, 1, 100) / 100.0
    y = 25.0 + (-50.0 * jnp.log(t)) ** (2.0 / 3.0)
    return jnp.exp(-jnp.abs(y - x[1]) ** x[2] / x[0]) - t


def trigonometric(x):
    i = _index(x, 1, x.shape[0] + 1)
    return x.shape[0] - jnp.sum(jnp.cos(x)) + i * (1.0 - jnp.cos(x)) - jnp.sin(x)


def extended_rosenbrock(x):
    odd, even = x[::2], x[1::2]
    return jnp.concatenate([10.0 * (even - odd**2), 1.0 - odd])


def extended_powell(x):
    a, b, c, d = x[::4], x[1::4], x[2::4], x[3::4]
    return jnp.concatenate([a + 10.0 * b, math.sqrt(5.0) * (c - d), (b - 2.0 * c) ** 2,
                            math.sqrt(10.0) * (a - d) ** 2])


def beale(x):
    i = _index(x, 1, 4)
    return _c(x, (1.5, 2.25, 2.625)) - x[0] * (1.0 - x[1] ** i)


def wood(x):
    return jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0], math.sqrt(90.0) * (x[3] - x[2] ** 2),
                      1.0 - x[2], math.sqrt(10.0) * (x[1] + x[3] - 2.0),
                      (x[1] - x[3]) / math.sqrt(10.0)])


def chebyquad(x):
    n = x.shape[0]
    u = 2.0 * x - 1.0
    # T_1 .. T_n at u by the three-term recurrence (n is static)
    rows, t_prev, t_cur = [], jnp.ones_like(u), u
    for _ in range(n):
        rows.append(t_cur)
        t_prev, t_cur = t_cur, 2.0 * u * t_cur - t_prev
    y = [-1.0 / (i * i - 1.0) if i % 2 == 0 else 0.0 for i in range(1, n + 1)]
    return jnp.mean(jnp.stack(rows), axis=1) - _c(x, y)


def chained_rosenbrock_residuals(x):
    return jnp.concatenate([10.0 * (x[1:] - x[:-1] ** 2), 1.0 - x[:-1]])


def _p(name, residuals, x0, f_min):
    return Problem(name, residuals, np.asarray(x0, dtype=np.float64), f_min)


def _ramp(n, fn):
    return [fn(j) for j in range(1, n + 1)]


MGH: tuple[Problem, ...] = (
    _p("helical_valley", helical_valley, [-1.0, 0.0, 0.0], 0.0),
    _p("biggs_exp6", biggs_exp6, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0], 0.0),
    _p("gaussian", gaussian, [0.4, 1.0, 0.0], 1.12793e-8),
    _p("powell_badly_scaled", powell_badly_scaled, [0.0, 1.0], 0.0),
    _p("box_3d", box_3d, [0.0, 10.0, 20.0], 0.0),
    _p("variably_dimensioned", variably_dimensioned, _ramp(10, lambda j: 1.0 - j / 10), 0.0),
    _p("watson", watson, np.zeros(6), 2.28767e-3),
    _p("penalty_1", penalty_1, _ramp(10, float), 7.08765e-5),
    _p("penalty_2", penalty_2, np.full(10, 0.5), 2.93660e-4),
    _p("brown_badly_scaled", brown_badly_scaled, [1.0, 1.0], 0.0),
    _p("brown_dennis", brown_dennis, [25.0, 5.0, -5.0, -1.0], 85822.2),
    _p("gulf", gulf, [5.0, 2.5, 0.15], 0.0),
    _p("trigonometric", trigonometric, np.full(10, 0.1), 0.0),
    _p("extended_rosenbrock", extended_rosenbrock, np.tile([-1.2, 1.0], 5), 0.0),
    _p("extended_powell", extended_powell, np.tile([3.0, -1.0, 0.0, 1.0], 3), 0.0),
    _p("beale", beale, [1.0, 1.0], 0.0),
    _p("wood", wood, [-3.0, -1.0, -3.0, -1.0], 0.0),
    _p("chebyquad", chebyquad, _ramp(8, lambda j: j / 9), 3.51687e-3),
)


def chained_rosenbrock(n: int) -> Problem:
    """Chained Rosenbrock :math:`\\sum_{i<n} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2` from
    :math:`(-1.2, 1, -1.2, 1, \\dots)`; minimum 0 at (1, ..., 1), and a local minimum
    near 3.99 (n >= 4)."""
    return _p(f"chained_rosenbrock_{n}", chained_rosenbrock_residuals,
              np.resize([-1.2, 1.0], n), 0.0)


def problem(name: str) -> Problem:
    """The problem of the MGH set (or ``chained_rosenbrock_<n>``) called ``name``."""
    if name.startswith("chained_rosenbrock_"):
        return chained_rosenbrock(int(name.rsplit("_", 1)[1]))
    for p in MGH:
        if p.name == name:
            return p
    raise KeyError(f"no test problem {name!r}; the MGH set has {', '.join(q.name for q in MGH)}")


def starts(p: Problem, factors: tuple[float, ...] = (1.0, 10.0, 100.0)) -> list[np.ndarray]:
    """``factor * x0`` for each factor; a zero standard start (Watson) becomes ``factor`` in
    every coordinate for ``factor != 1`` (MINPACK's convention)."""
    if not np.any(p.x0):
        return [p.x0 if f == 1.0 else np.full_like(p.x0, f) for f in factors]
    return [f * p.x0 for f in factors]


def benchmark_set() -> list[tuple[Problem, np.ndarray]]:
    """The 56 (problem, start) pairs: the MGH set from 1, 10 and 100 times its standard start,
    then chained Rosenbrock with n = 100 and n = 1000."""
    pairs = [(p, x0) for p in MGH for x0 in starts(p)]
    return pairs + [(c, c.x0) for c in (chained_rosenbrock(100), chained_rosenbrock(1000))]
