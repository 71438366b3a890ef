"""L-BFGS's compact form against the textbook two-loop recursion (NumPy, float64)."""

import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck.optim.quasi_newton import LBFGS


def two_loop(pairs, g):
    """Nocedal & Wright Algorithm 7.4 over ``pairs`` (oldest first), H0 = gamma I."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q = q - a * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), a in zip(pairs, reversed(alphas), strict=True):
        b = (y @ r) / (s @ y)
        r = r + (a - b) * s
    return -r


def random_pair(rng, n):
    """A pair with s^T y > 0 (y = A s for an SPD A plus a small perturbation)."""
    s = rng.normal(size=n)
    a = rng.normal(size=(n, n))
    y = (a @ a.T / n + np.eye(n)) @ s
    return s, y


@pytest.mark.parametrize("npairs", [1, 3, 5, 12])
def test_direction_equals_two_loop_recursion(npairs):
    """Ring-buffer wrap-around (12 pairs, m = 5) keeps exactly the last m pairs."""
    rng = np.random.default_rng(npairs)
    n, m = 7, 5
    method = LBFGS(m)
    x = jnp.zeros(n)
    aux = method.init(x, x)
    pairs = []
    for _ in range(npairs):
        s, y = random_pair(rng, n)
        aux = method.update(aux, jnp.asarray(s), jnp.asarray(y), True)
        pairs.append((s, y))
    g = rng.normal(size=n)
    d, alpha0 = method.direction(aux, x, jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(d), two_loop(pairs[-m:], g), rtol=1e-10, atol=1e-12)
    assert float(alpha0) == 1.0


def test_rejected_pairs_and_reset():
    """A pair with s^T y <= 0 or accept=False is skipped; reset forgets everything."""
    rng = np.random.default_rng(7)
    n, m = 6, 3
    method = LBFGS(m)
    x = jnp.zeros(n)
    aux = method.init(x, x)
    pairs = []
    for k in range(6):
        s, y = random_pair(rng, n)
        if k == 2:
            aux = method.update(aux, jnp.asarray(s), jnp.asarray(-y), True)  # negative curvature
        elif k == 4:
            aux = method.update(aux, jnp.asarray(s), jnp.asarray(y), False)  # not accepted
        else:
            aux = method.update(aux, jnp.asarray(s), jnp.asarray(y), True)
            pairs.append((s, y))
    g = rng.normal(size=n)
    d, _ = method.direction(aux, x, jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(d), two_loop(pairs[-m:], g), rtol=1e-10, atol=1e-12)
    aux = method.reset(aux, jnp.bool_(True))
    d, alpha0 = method.direction(aux, x, jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(d), -g, rtol=0, atol=0)
    assert float(alpha0) == pytest.approx(min(1.0, 1.0 / np.linalg.norm(g)))
    s, y = random_pair(rng, n)  # the first pair after a reset is the only one used
    aux = method.update(aux, jnp.asarray(s), jnp.asarray(y), True)
    d, _ = method.direction(aux, x, jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(d), two_loop([(s, y)], g), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", ["inf", "nan", "overflow"])
def test_a_nonfinite_rejected_pair_leaves_no_trace(bad):
    """A rejected pair goes to the scratch slot, which R^-1 ignores; inf or NaN there (or a
    y^T y that overflows float32) must not reach the directions."""
    rng = np.random.default_rng(11)
    n, m = 6, 3
    method = LBFGS(m)
    x = jnp.zeros(n, jnp.float32)
    aux = method.init(x, x)
    pairs = []
    for k in range(4):
        s, y = random_pair(rng, n)
        if k == 1:
            y_bad = {"inf": np.full(n, np.inf), "nan": np.full(n, np.nan),
                     "overflow": np.full(n, 1e20)}[bad]
            aux = method.update(aux, jnp.asarray(s, jnp.float32), jnp.asarray(y_bad, jnp.float32),
                                True)
        else:
            aux = method.update(aux, jnp.asarray(s, jnp.float32), jnp.asarray(y, jnp.float32),
                                True)
            pairs.append((s, y))
        g = rng.normal(size=n)
        d, _ = method.direction(aux, x, jnp.asarray(g, jnp.float32))
        np.testing.assert_allclose(np.asarray(d), two_loop(pairs[-m:], g), rtol=2e-4,
                                   atol=1e-5)


def test_update_direction_and_its_slope_match_the_two_loop_recursion():
    """The driver's fused step (update, then direction at the new gradient, with ``W y`` from
    ``W g - W g_old`` and the new slot's ``s^T y``, ``y^T y`` from ``inner``) gives the textbook
    direction, and its slope ``g.d`` from the small products equals the inner product; a
    rejected pair (accept=False) changes nothing."""
    from diffcheck.optim.quasi_newton import Inner

    rng = np.random.default_rng(3)
    n, m = 40, 4
    method = LBFGS(m)
    x = jnp.zeros(n)
    g = rng.normal(size=n)
    aux = method.init(x, jnp.asarray(g))
    pairs = []
    for k in range(9):
        s, y = random_pair(rng, n)
        accept = k != 5
        g = g + y
        inner = Inner(jnp.asarray(s @ s), jnp.asarray(s @ y), jnp.asarray(y @ y))
        aux, d, alpha0, slope = method.update_direction(
            aux, jnp.asarray(s), jnp.asarray(y), accept, inner, x, jnp.asarray(g),
            jnp.asarray(np.linalg.norm(g)))
        if accept:
            pairs.append((s, y))
        np.testing.assert_allclose(np.asarray(d), two_loop(pairs[-m:], g), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(float(slope), float(np.asarray(d) @ g), rtol=1e-10)
        assert float(alpha0) == 1.0


@pytest.mark.parametrize("n", [1, 5, 32, 33, 1000, 1001])
def test_sums_of_several_vectors_in_one_reduction(n):
    """``sums`` agrees with separate sums, in float64 and float32, under jit and vmap."""
    import jax

    from diffcheck.optim.quasi_newton import sums

    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(2, n))
    got = jax.jit(lambda a, b: sums(a * b, a * a, b))(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(got), [a @ b, a @ a, b.sum()], rtol=1e-12,
                               atol=1e-12)
    a32 = jnp.asarray(np.stack([a, b]), jnp.float32)
    got32 = jax.vmap(lambda v: sums(v, v * v))(a32)
    assert got32[0].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got32[1]), (np.stack([a, b]) ** 2).sum(axis=1),
                               rtol=1e-5)
    assert sums(jnp.asarray(a))[0].shape == ()
