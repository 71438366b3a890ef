import jax.numpy as jnp
import numpy as np
import pytest
from problems import broyden_tridiagonal

from diffcheck.optim import observed_order, root
from diffcheck.optim import result as R


def test_seed_example_quadratic_convergence():
    res = root(lambda x: x**2 - 9.0, jnp.array(1.0), history=True)
    assert bool(res.success) and float(res.x) == pytest.approx(3.0)
    x = np.asarray(res.history.x[: int(res.nit) + 1, 0])
    e = x - 3.0
    ok = np.abs(e[:-1]) > 1e-7
    ratio = e[1:][ok] / (e[:-1][ok] ** 2 / (2 * x[:-1][ok]))  # e_{k+1} = e_k^2 / (2 x_k)
    assert np.allclose(ratio, 1.0, rtol=1e-6)
    assert observed_order(np.abs(e[2:]))[-1] > 1.9
    assert res.jac.shape == () and float(res.jac) == pytest.approx(6.0)


@pytest.mark.parametrize("solver", ["dense", "gmres"])
def test_broyden_tridiagonal(solver):
    res = root(broyden_tridiagonal, -jnp.ones(50), linear_solver=solver)
    assert bool(res.success) and float(jnp.linalg.norm(res.fun)) <= 1e-10
    assert int(res.nit) <= 8


def test_float32_root():
    res = root(lambda x: x**3 - 2.0, jnp.array([1.0], jnp.float32))
    assert bool(res.success) and res.x.dtype == jnp.float32
    assert float(jnp.abs(res.fun[0])) <= 1e-4 and abs(float(res.x[0]) - 2 ** (1 / 3)) < 5e-5


def test_singular_jacobian():
    res = root(lambda x: jnp.array([x[0] ** 2 + x[1] ** 2, x[0] + x[1]]), jnp.array([1.0, 1.0]))
    assert int(res.status) == R.SINGULAR and not bool(res.success)


def test_no_root_stagnates_or_maxiter():
    res = root(lambda x: x**2 + 1.0, jnp.array(0.5), maxiter=60)
    assert not bool(res.success)
    assert int(res.status) in (R.MAXITER, R.STAGNATION, R.SINGULAR)
