"""The Moré–Garbow–Hillstrom problems: their definitions against the paper's values, and a few
quick solves against the known minima."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck.optim import minimize, problems
from diffcheck.optim import result as R

# f at the standard start, from the paper's tables (Moré, Garbow & Hillstrom 1981)
AT_X0 = {"helical_valley": 2500.0, "powell_badly_scaled": 1.13526, "box_3d": 1031.15,
         "watson": 30.0, "brown_badly_scaled": 9.99998e11, "beale": 14.2031, "wood": 19192.0,
         "extended_rosenbrock": 121.0, "extended_powell": 645.0, "chebyquad": 0.0386177,
         "brown_dennis": 7.92669e6, "gulf": 12.1107, "gaussian": 3.88811e-6}
MINIMISERS = {"helical_valley": [1, 0, 0], "biggs_exp6": [1, 10, 1, 5, 4, 3],
              "box_3d": [1, 10, 1], "brown_badly_scaled": [1e6, 2e-6], "gulf": [50, 25, 1.5],
              "beale": [3, 0.5], "wood": [1, 1, 1, 1], "extended_powell": [0.0] * 12,
              "extended_rosenbrock": [1.0] * 10, "variably_dimensioned": [1.0] * 10}


@pytest.mark.parametrize("name", sorted(AT_X0))
def test_value_at_the_standard_start(name):
    p = problems.problem(name)
    assert float(p.fun(jnp.asarray(p.x0))) == pytest.approx(AT_X0[name], rel=1e-5)


@pytest.mark.parametrize("name", sorted(MINIMISERS))
def test_zero_at_the_known_minimiser(name):
    p = problems.problem(name)
    assert float(p.fun(jnp.asarray(MINIMISERS[name], jnp.float64))) <= 1e-20


def test_the_benchmark_set():
    pairs = problems.benchmark_set()
    assert len(pairs) == 56 and len(problems.MGH) == 18
    watson = [x0 for p, x0 in pairs if p.name == "watson"]
    assert [float(x[0]) for x in watson] == [0.0, 10.0, 100.0]  # MINPACK's convention
    with pytest.raises(KeyError, match="no test problem"):
        problems.problem("nonesuch")


def test_float32_start_gives_a_float32_objective():
    for p in problems.MGH:
        assert p.fun(jnp.asarray(p.x0, jnp.float32)).dtype == jnp.float32, p.name


@pytest.mark.parametrize("name, method", [("helical_valley", "newton-trust"),
                                          ("beale", "bfgs"), ("wood", "lbfgs"),
                                          ("penalty_1", "newton-damped")])
def test_quick_solves_reach_the_known_minimum(name, method):
    p = problems.problem(name)
    res = minimize(p.fun, jnp.asarray(p.x0), method=method)
    assert bool(res.success), res.message
    assert float(res.fun) == pytest.approx(p.f_min, abs=1e-10, rel=1e-5)


@pytest.mark.parametrize("method", ["newton", "newton-damped", "newton-trust"])
def test_flat_region_is_not_success(method):
    """Gaussian where the model is zero at every data point: the gradient and the Hessian
    vanish (newton-damped reported success at such a plateau, f = 0.564, from 10 x0)."""
    gauss = problems.problem("gaussian")
    res = minimize(gauss.fun, jnp.array([4.0, 10.0, 1000.0]), method=method)
    assert float(res.fun) == pytest.approx(0.5642, abs=1e-4)
    assert int(res.status) == R.DEGENERATE and not bool(res.success), res.message


def test_minimum_at_infinity_is_not_success():
    """Box 3-D from (0, 100, 200): newton reported success at f = 0.0756, x_2 -> infinity."""
    box = problems.problem("box_3d")
    res = minimize(box.fun, jnp.asarray(10 * box.x0), method="newton")
    hess = np.asarray(jax.hessian(box.fun)(res.x))
    assert float(jnp.linalg.norm(res.jac)) <= 1e-5 and float(res.fun) > 0.07  # the premise
    assert np.linalg.eigvalsh(hess)[0] < 1e-6 * np.abs(hess).max()
    assert int(res.status) == R.DEGENERATE and not bool(res.success), res.message


def test_degenerate_minimum_at_the_lower_bound_is_success():
    """Powell's singular function has a singular Hessian at its minimum x = 0; reaching the
    known bound f_lower = 0 certifies it."""
    p = problems.problem("extended_powell")
    res = minimize(p.fun, jnp.full(4, 1e-3), method="newton", tol=1e-12)
    assert int(res.status) == R.DEGENERATE
    res = minimize(p.fun, jnp.full(4, 1e-3), method="newton", tol=1e-12, f_lower=0.0)
    assert bool(res.success), res.message


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_gradient_only_methods_do_not_call_a_saddle_a_success(method):
    """From the standard start of Biggs' EXP6, BFGS and L-BFGS converge (||g|| <= tol) to a
    point with negative curvature; they reported SUCCESS there."""
    p = problems.problem("biggs_exp6")
    res = minimize(p.fun, jnp.asarray(p.x0), method=method)
    hess = np.asarray(jax.hessian(p.fun)(res.x))
    assert float(jnp.linalg.norm(res.jac)) <= 1e-5  # the premise: the gradient test passed
    assert np.linalg.eigvalsh(hess)[0] < 0
    assert int(res.status) == R.SADDLE and not bool(res.success), res.message
    assert int(res.nhev) == 1  # the one Hessian that decided it


@pytest.mark.parametrize("method", ["gd", "bfgs", "lbfgs"])
def test_gradient_only_methods_report_a_flat_region(method):
    """The Gaussian problem where the model vanishes at every data point: gradient and
    Hessian are zero (the gradient-only methods called it SUCCESS)."""
    gauss = problems.problem("gaussian")
    res = minimize(gauss.fun, jnp.array([4.0, 10.0, 1000.0]), method=method)
    assert float(res.fun) == pytest.approx(0.5642, abs=1e-4)
    assert int(res.status) == R.DEGENERATE and not bool(res.success), res.message


def test_a_certified_minimum_and_an_untraceable_hessian_stay_success():
    """A strict minimum is SUCCESS (one Hessian evaluated); an objective JAX cannot
    differentiate twice (its custom VJP calls back into NumPy) keeps the first-order verdict."""
    res = minimize(lambda x: jnp.sum((x - 1.0) ** 4) + jnp.sum(x ** 2), jnp.ones(3) * 3,
                   method="bfgs")
    assert bool(res.success) and int(res.nhev) == 1

    @jax.custom_vjp
    def f(x):
        return jnp.sum((x - 2.0) ** 2)

    def fwd(x):
        return f(x), x

    def bwd(x, ct):
        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return (ct * jax.pure_callback(lambda v: 2 * (v - 2.0), shape, x),)

    f.defvjp(fwd, bwd)
    res = minimize(f, jnp.zeros(2), method="bfgs")
    assert bool(res.success), res.message
    assert float(jnp.max(jnp.abs(res.x - 2.0))) <= 1e-4
