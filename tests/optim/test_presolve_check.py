"""check=True on minimize, root and fit: verified derivatives feed the optimizer."""

import jax
import jax.numpy as jnp
import pytest

import diffcheck as dc
from diffcheck.optim import fit, minimize, root, sgd


def scaled_square(factor):
    """x**2 with a custom_vjp whose backward is factor * 2x (right when factor == 1)."""
    @jax.custom_vjp
    def sq(x):
        return x ** 2
    sq.defvjp(lambda x: (x ** 2, x), lambda x, g: (g * 2 * x * factor,))
    return sq


def test_minimize_check_passes_a_right_rule_and_refuses_a_wrong_one():
    def objective(factor):
        sq = scaled_square(factor)
        return lambda p: jnp.sum(sq(p["w"] - 1.0)) + jnp.sum(p["w"] ** 4) + (p["b"] - 2.0) ** 2

    x0 = {"w": jnp.array([0.3, -0.7]), "b": jnp.array(0.5)}
    res = minimize(objective(1.0), x0, method="bfgs", check=True)
    assert bool(res.success)
    with pytest.raises(dc.DerivativeError) as err:
        minimize(objective(1.05), x0, check=True)
    assert isinstance(err.value, dc.DiffcheckError)
    assert "gradient of fun at x0 is wrong" in str(err.value)
    assert "worst entry x['w'][" in str(err.value) and not err.value.result.ok


def test_minimize_check_inside_jit_or_vmap_is_a_usage_error():
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    with pytest.raises(dc.UsageError, match="inside jax.jit / jax.vmap"):
        jax.jit(lambda x0: minimize(f, x0, check=True).x)(jnp.zeros(2))
    with pytest.raises(dc.UsageError, match="check=True"):
        jax.vmap(lambda x0: minimize(f, x0, check=True).x)(jnp.zeros((3, 2)))


def test_root_check_verifies_the_jacobian():
    @jax.custom_jvp
    def cube(x):
        return x ** 3

    @cube.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return cube(x), 2 * x ** 2 * t  # should be 3 x**2

    assert float(root(lambda x: x ** 3 - 2.0, jnp.array(1.0), check=True).x) == \
        pytest.approx(2 ** (1 / 3))
    with pytest.raises(dc.DerivativeError, match="Jacobian of fun"):
        root(lambda x: cube(x) - 2.0, jnp.array([1.0, 1.5]), check=True)


def test_fit_check_runs_on_the_first_batch():
    X = jnp.arange(8.0)[:, None]
    y = 3.0 * X[:, 0]
    sq = scaled_square(0.5)
    good = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)  # noqa: E731
    bad = lambda w, b: jnp.mean(sq(b[0] @ w - b[1]))  # noqa: E731
    w, _ = fit(good, jnp.zeros(1), (X, y), sgd(0.02), batch_size=4, epochs=30,
               key=jax.random.key(0), check=True)
    assert float(w[0]) == pytest.approx(3.0, abs=1e-2)
    with pytest.raises(dc.DerivativeError, match="gradient of loss"):
        fit(bad, jnp.zeros(1), (X, y), sgd(0.02), batch_size=4, epochs=1,
            key=jax.random.key(0), check=True)
