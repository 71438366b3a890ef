"""Newton directions: the modified Cholesky on single matrices, stacks and under vmap, and the
batched Newton solve against the same problems solved one by one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import rosenbrock

from diffcheck.optim import minimize
from diffcheck.optim.newton import has_negative_curvature, modified_cholesky, symmetric_hessian

SPD = jnp.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
INDEFINITE = jnp.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, -3.0]])
NEG_DIAG = jnp.array([[-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
STACK = jnp.stack([SPD, INDEFINITE, NEG_DIAG])


def _reference_tau(h):
    """Nocedal & Wright Algorithm 3.3 in NumPy, the way the docstring states it."""
    h = np.asarray(h)
    beta = 1e-3 * max(1.0, np.abs(h).max())
    tau = 0.0 if h.diagonal().min() > 0 else beta - h.diagonal().min()
    while True:
        try:
            np.linalg.cholesky(h + tau * np.eye(len(h)))
            return tau
        except np.linalg.LinAlgError:
            tau = max(2 * tau, beta)


@pytest.mark.parametrize("h", [SPD, INDEFINITE, NEG_DIAG], ids=["spd", "indefinite", "neg_diag"])
def test_modified_cholesky_factors_the_first_shift_that_works(h):
    chol, tau = modified_cholesky(h)
    assert float(tau) == pytest.approx(_reference_tau(h), rel=1e-12)
    np.testing.assert_allclose(chol @ chol.T, h + tau * jnp.eye(3), atol=1e-12)
    assert np.all(np.triu(np.asarray(chol), 1) == 0)


def test_modified_cholesky_of_a_stack_and_under_vmap_match_one_by_one():
    chol_s, tau_s = modified_cholesky(STACK)
    chol_v, tau_v = jax.vmap(modified_cholesky)(STACK)
    for i, h in enumerate(STACK):
        chol, tau = modified_cholesky(h)
        np.testing.assert_allclose(chol_s[i], chol, atol=1e-14)
        np.testing.assert_allclose(chol_v[i], chol, atol=1e-14)
        assert float(tau_s[i]) == float(tau_v[i]) == float(tau)


def test_nonfinite_hessian_is_not_retried():
    h = SPD.at[0, 1].set(jnp.nan).at[1, 0].set(jnp.nan)
    chol, tau = modified_cholesky(h)
    assert float(tau) == 0.0 and not np.all(np.isfinite(chol))


def test_negative_curvature_single_and_vmapped():
    expected = [False, True, True]
    assert [bool(has_negative_curvature(h)) for h in STACK] == expected
    assert np.asarray(jax.vmap(has_negative_curvature)(STACK)).tolist() == expected


def test_symmetric_hessian_equals_jax_hessian():
    x = jnp.array([-1.2, 1.0, 0.3, 2.0])
    np.testing.assert_allclose(symmetric_hessian(jax.grad(rosenbrock))(x),
                               jax.hessian(rosenbrock)(x), rtol=1e-14)


@pytest.mark.parametrize("method", ["newton", "newton-damped"])
def test_vmapped_and_nested_vmapped_newton_equal_one_by_one(method):
    """Starts far from the minimum, so some problems of the batch need the shifted factorisation
    (damped) or the LU fallback (plain) while others do not, in the same iteration."""
    starts = jnp.tile(jnp.array([-1.2, 1.0]), 3) + 0.5 * jax.random.normal(
        jax.random.key(3), (2, 3, 6))

    def one(x0):
        return minimize(rosenbrock, x0, method=method, tol=1e-9, history=True)

    nested = jax.jit(jax.vmap(jax.vmap(one)))(starts)
    flat = jax.vmap(one)(starts.reshape(6, 6))
    singles = [one(x0) for x0 in starts.reshape(6, 6)]
    # the premise: in some iteration, part of the batch has an indefinite Hessian (shift or
    # LU fallback) while the rest has a positive definite one
    hess = jax.jit(jax.vmap(jax.hessian(rosenbrock)))
    definite = [np.all(np.linalg.eigvalsh(np.asarray(hess(jnp.nan_to_num(r.history.x)))) > 0,
                       axis=-1)[: int(r.nit)] for r in singles]  # (history rows past nit are NaN)
    first = min(map(len, definite))
    assert any(len({bool(d[k]) for d in definite}) == 2 for k in range(first))
    for i, single in enumerate(singles):
        assert int(single.status) == int(flat.status[i]) == int(nested.status.reshape(6)[i])
        assert int(single.nit) == int(flat.nit[i]) == int(nested.nit.reshape(6)[i])
        np.testing.assert_allclose(flat.x[i], single.x, atol=1e-10)
        np.testing.assert_allclose(nested.x.reshape(6, 6)[i], single.x, atol=1e-10)
