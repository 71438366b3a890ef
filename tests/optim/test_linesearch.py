"""Line searches: the conditions they promise hold at the returned step."""

import jax
import jax.numpy as jnp
import pytest

from diffcheck.optim import linesearch as ls

FUNCTIONS = {
    # the slope steepens past alpha = 1: extrapolation must go far, not creep (MINPACK rule)
    "bends-down": lambda x: -jnp.exp(-((x[0] - 3.0) ** 2) / 4),
    "steep-valley": lambda x: jnp.cosh(x[0] - 3.0) - 0.3 * x[0],
    "quartic": lambda x: (x[0] - 3.0) ** 4 - 5 * x[0],
    "overshoot": lambda x: 50.0 * (x[0] - 0.05) ** 2,
    "quadratic-far": lambda x: 0.001 * (x[0] - 40.0) ** 2,
}


def start(name):
    vg = jax.value_and_grad(FUNCTIONS[name])
    x = jnp.zeros(1)
    f, g = vg(x)
    return vg, x, f, g, -jnp.sign(g)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_strong_wolfe_conditions_hold(name):
    vg, x, f, g, d = start(name)
    r = ls.wolfe(vg, x, f, g, d, jnp.array(1.0), c1=1e-4, c2=0.9)
    f_a, g_a = vg(x + r.alpha * d)
    d0 = float(jnp.vdot(g, d))
    assert bool(r.ok)
    assert float(f_a) <= float(f) + 1e-4 * float(r.alpha) * d0
    assert abs(float(jnp.vdot(g_a, d))) <= 0.9 * abs(d0)
    assert float(r.f) == pytest.approx(float(f_a), rel=1e-12)


def test_extrapolation_goes_far_when_the_slope_steepens():
    """Doubling (1, 2, 4, zoom) needs 4+ evaluations on this line; MINPACK's rule needs 3."""
    vg, x, f, g, d = start("bends-down")
    r = ls.wolfe(vg, x, f, g, d, jnp.array(1.0))
    assert int(r.nfev) <= 3
    assert float(r.alpha) == pytest.approx(3.0, abs=0.05)


def test_extrapolate_rule():
    # slope magnitude grows: the far end, a1 + 4 (a1 - a0)
    assert float(ls._extrapolate(0.0, 0.0, -1.0, 1.0, -1.5, -2.0)) == pytest.approx(5.0)
    # slope magnitude shrinks: the cubic's minimiser, kept within [a1 + 1.1 h, a1 + 4 h]
    a = float(ls._extrapolate(0.0, 0.0, -1.0, 1.0, -0.8, -0.5))
    assert 2.1 <= a <= 5.0


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_armijo_sufficient_decrease(name):
    vg, x, f, g, d = start(name)
    r = ls.armijo(vg, x, f, g, d, jnp.array(1.0), c1=1e-4)
    assert bool(r.ok)
    assert float(r.f) <= float(f) + 1e-4 * float(r.alpha) * float(jnp.vdot(g, d))
