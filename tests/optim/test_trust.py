"""newton-trust: the trust-region subproblem solvers against exact solutions, and the solve on
problems where a line-search Newton stalls or stops at a saddle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck.optim import minimize, problems
from diffcheck.optim import result as R
from diffcheck.optim.trust import more_sorensen, steihaug


def exact_step(h, g, radius):
    """The global minimiser of g.p + p.H.p/2 on ||p|| <= radius, from the eigendecomposition."""
    w, v = np.linalg.eigh(h)
    gt = v.T @ g

    def norm(lam):
        return np.linalg.norm(gt / (w + lam))

    if w[0] > 0 and norm(0.0) <= radius:
        return -v @ (gt / w)
    lo = max(0.0, -w[0])
    if norm(lo + 1e-14) < radius:  # hard case: step to the boundary along the eigenvector
        p = -v[:, 1:] @ (gt[1:] / (w[1:] - w[0]))
        return p + np.sqrt(max(radius**2 - p @ p, 0.0)) * v[:, 0]
    hi = lo + np.linalg.norm(g) / radius + np.abs(w).max() + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if norm(mid) > radius else (lo, mid)
    return -v @ (gt / (w + hi))


def model(h, g, p):
    return g @ p + 0.5 * p @ h @ p


def random_problems(count, seed):
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.integers(2, 7))
        a = rng.normal(size=(n, n))
        h = (a + a.T) / 2 + (i % 2) * n * np.eye(n)  # indefinite and definite ones
        g = rng.normal(size=n) * (0.0 if i % 7 == 0 else 1.0)  # some with g = 0 (saddles)
        yield h, g, 10 ** rng.uniform(-2, 1)


def test_more_sorensen_is_nearly_exact():
    """Moré–Sorensen with k_easy = 0.1, k_hard = 0.2 guarantees a model value within a fixed
    fraction of the optimum; on these problems it is within 15% (and inside the region)."""
    for h, g, radius in random_problems(40, 0):
        step = more_sorensen(jnp.asarray(h), jnp.asarray(g), jnp.asarray(radius))
        p, best = np.asarray(step.p), model(h, g, exact_step(h, g, radius))
        assert np.linalg.norm(p) <= radius * (1 + 1e-9)
        assert model(h, g, p) <= 0.85 * best + 1e-12
        assert float(step.decrease) == pytest.approx(-model(h, g, p), rel=1e-9, abs=1e-12)


def test_steihaug_decreases_the_model_inside_the_region():
    for h, g, radius in random_problems(40, 1):
        hj = jnp.asarray(h)
        step = steihaug(lambda v, hj=hj: hj @ v, jnp.asarray(g), jnp.asarray(radius))
        p = np.asarray(step.p)
        assert np.linalg.norm(p) <= radius * (1 + 1e-9)
        assert float(step.decrease) == pytest.approx(-model(h, g, p), rel=1e-9, abs=1e-12)
        # never worse than the Cauchy point (Steihaug's first iterate is the Cauchy step)
        gnorm, gh = np.linalg.norm(g), g @ h @ g
        if gnorm > 0:
            t = radius / gnorm if gh <= 0 else min(g @ g / gh, radius / gnorm)
            assert model(h, g, p) <= model(h, g, -t * g) + 1e-12


def saddle_problem(x):
    """A saddle at 0 and minima at (0, +-1/sqrt(2)): x^2 - y^2 + y^4."""
    return x[0] ** 2 - x[1] ** 2 + x[1] ** 4


def test_newton_trust_leaves_a_saddle_where_newton_stops():
    x0 = jnp.array([1.0, 0.0])  # the Newton step lands on the saddle (0, 0)
    plain = minimize(saddle_problem, x0, method="newton")
    assert int(plain.status) == R.SADDLE
    for start in (x0, jnp.zeros(2)):  # from the saddle itself, g = 0: the hard case
        res = minimize(saddle_problem, start, method="newton-trust")
        assert bool(res.success), res.message
        assert np.allclose(np.abs(res.x), [0.0, 1 / np.sqrt(2)], atol=1e-6)


def test_newton_trust_chained_rosenbrock_100_within_250_iterations():
    """Plain newton needs 510 iterations (and stops at maxiter 200); SciPy's trust-exact 205."""
    p = problems.chained_rosenbrock(100)
    res = minimize(p.fun, jnp.asarray(p.x0), method="newton-trust")
    assert bool(res.success) and int(res.nit) <= 250
    assert float(jnp.linalg.norm(res.jac)) <= 1e-5


def test_conjugate_gradient_subproblem_jits_and_vmaps():
    starts = jnp.array([[-1.2, 1.0, 1.0, 1.0], [2.0, 2.0, -1.0, 0.5], [0.5, 0.5, 0.5, 0.5]])
    run = jax.jit(jax.vmap(lambda x0: minimize(problems.chained_rosenbrock(4).fun, x0,
                                               method="newton-trust", subproblem="cg")))
    res = run(starts)
    assert np.asarray(res.status).tolist() in ([0, 0, 0],) or np.all(
        np.asarray(res.status) == R.SUCCESS), res.message
    f = np.asarray(res.fun)
    assert np.all((f < 1e-10) | (np.abs(f - 3.70) < 0.01))  # the minimum or the local one
    single = minimize(problems.chained_rosenbrock(4).fun, starts[1], method="newton-trust",
                      subproblem="cg")
    assert int(single.nit) == int(res.nit[1])
    np.testing.assert_allclose(single.x, res.x[1], atol=1e-10)


def test_newton_trust_rejects_a_line_search():
    from diffcheck.errors import UsageError

    with pytest.raises(UsageError, match="no line search"):
        minimize(saddle_problem, jnp.zeros(2), method="newton-trust", linesearch="wolfe")
