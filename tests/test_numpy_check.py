"""check_gradient / check_jacobian / check_hessian / taylor_test on realistic NumPy code.

Every case has a right derivative (must pass: no false alarm) and a buggy one (must fail,
at the right entry).
"""

from __future__ import annotations

import numpy as np
import pytest

import diffcheck as dc

RNG = np.random.default_rng(7)


# -- models and their hand-written gradients -------------------------------------------------

def batchnorm_loss(x, gamma, beta, w):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + 1e-5)
    return np.sum(w * (gamma * xhat + beta))


def batchnorm_backward(x, gamma, w):
    n = x.shape[0]
    mu, var = x.mean(axis=0), x.var(axis=0)
    inv = 1 / np.sqrt(var + 1e-5)
    xhat = (x - mu) * inv
    dxhat = w * gamma
    return (inv / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0))


def batchnorm_backward_bug(x, gamma, w):
    """The classic bug: mean and variance treated as constants."""
    return w * gamma / np.sqrt(x.var(axis=0) + 1e-5)


def softmax_ce(z, y):
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def softmax_ce_grad(z, y):
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = p / p.sum(axis=1, keepdims=True)
    onehot = np.zeros_like(z)
    onehot[np.arange(len(y)), y] = 1
    return (p - onehot) / len(y)


def mlp_loss(w, X, t):
    """A float32 two-layer network with tanh and squared error; w packs both layers."""
    W1, W2 = w[:, :8], w[:, 8:]
    h = np.tanh(X @ W1)
    out = h @ W2.T
    return 0.5 * np.mean((out - t) ** 2)


def mlp_grad(w, X, t):
    W1, W2 = w[:, :8], w[:, 8:]
    h = np.tanh(X @ W1)
    out = h @ W2.T
    d = (out - t) / out.size
    gW2 = d.T @ h
    gh = d @ W2
    gW1 = X.T @ (gh * (1 - h * h))
    return np.concatenate([gW1, gW2], axis=1)


# -- the Done-when cases ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_backward_right_and_classic_bug(dtype):
    x = RNG.normal(2.0, 3.0, (16, 5)).astype(dtype)
    gamma, beta = RNG.normal(size=5).astype(dtype), RNG.normal(size=5).astype(dtype)
    w = RNG.normal(size=(16, 5)).astype(dtype)
    f = lambda x: batchnorm_loss(x, gamma, beta, w)  # noqa: E731
    good = dc.check_gradient(f, lambda x: batchnorm_backward(x, gamma, w), x)
    assert good.ok, str(good)
    bad = dc.check_gradient(f, lambda x: batchnorm_backward_bug(x, gamma, w), x)
    assert not bad.ok
    assert bad.n_bad > 0 and "FAILED" in str(bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy(dtype):
    z = RNG.normal(size=(8, 4)).astype(dtype) * 3
    y = RNG.integers(0, 4, 8)
    f = lambda z: softmax_ce(z, y)  # noqa: E731
    assert dc.check_gradient(f, lambda z: softmax_ce_grad(z, y), z).ok
    # bug: forgot the 1/N of the mean
    assert not dc.check_gradient(f, lambda z: softmax_ce_grad(z, y) * len(y), z).ok
    # bug: 0.1% off in a single entry
    def one_off(z):
        g = softmax_ce_grad(z, y)
        g[3, 1] *= 1.001
        return g
    res = dc.check_gradient(f, one_off, z)
    assert not res.ok and res.worst_index == (3, 1)


def test_float32_model_is_not_a_false_alarm_and_bugs_are_caught():
    X = RNG.normal(size=(64, 6)).astype(np.float32)
    t = RNG.normal(size=(64, 6)).astype(np.float32)
    w = (RNG.normal(size=(6, 16)) * 0.5).astype(np.float32)
    f = lambda w: mlp_loss(w, X, t)  # noqa: E731
    res = dc.check_gradient(f, lambda w: mlp_grad(w, X, t), w)
    assert res.ok, str(res)
    assert res.dtype == "float32"
    # the float32 rounding is real: the float32 gradient is not float64-exact
    assert res.max_rel_error > 1e-9

    def bug(w):
        g = mlp_grad(w, X, t)
        g[2, 9] *= 1.001
        return g
    res = dc.check_gradient(f, bug, w)
    assert not res.ok and res.worst_index == (2, 9)


def test_matrix_input_quadratic_form_nonsymmetric():
    A = RNG.normal(size=(6, 6))
    x = RNG.normal(size=6)
    f = lambda x: x @ A @ x  # noqa: E731
    assert dc.check_gradient(f, lambda x: (A + A.T) @ x, x).ok
    assert not dc.check_gradient(f, lambda x: 2 * A @ x, x).ok
    X = RNG.normal(size=(3, 4))
    B = RNG.normal(size=(3, 3))
    g = lambda X: np.trace(X.T @ B @ X)  # noqa: E731
    assert dc.check_gradient(g, lambda X: (B + B.T) @ X, X).ok
    res = dc.check_gradient(g, lambda X: 2 * B @ X, X)
    assert not res.ok and res.yours.shape == (3, 4)


def test_badly_scaled_input():
    x = np.logspace(-6, 6, 13) * np.resize([1.0, -1.0], 13)
    c = np.logspace(3, -3, 13)
    f = lambda x: np.sum(c * x ** 2) + np.sum(np.log1p(x ** 2))  # noqa: E731
    grad = lambda x: 2 * c * x + 2 * x / (1 + x ** 2)  # noqa: E731
    assert dc.check_gradient(f, grad, x).ok
    for i in range(13):  # a 0.1% error in any single entry, of any magnitude, is caught
        bad = lambda x, i=i: grad(x) * (1 + 1e-3 * (np.arange(13) == i))  # noqa: E731
        res = dc.check_gradient(f, bad, x)
        assert not res.ok and res.worst_index == (i,), (i, str(res))


def test_jacobian_right_and_bug():
    def f(x):
        return np.stack([x[0] * x[1], np.sin(x[2]) * x[0], x[1] ** 2])

    def jac(x):
        return np.array([[x[1], x[0], 0], [np.sin(x[2]), 0, x[0] * np.cos(x[2])],
                         [0, 2 * x[1], 0]])

    def jac_bug(x):
        J = jac(x)
        J[1, 2] = -J[1, 2]  # sign error in d/dx2 sin
        return J

    x = np.array([1.0, 2.0, 0.5])
    assert dc.check_jacobian(f, jac, x).ok
    res = dc.check_jacobian(f, jac_bug, x)
    assert not res.ok and res.worst_index == (1, 2)
    with pytest.raises(AssertionError, match=r"\(1, 2\)"):
        dc.assert_jacobian(f, jac_bug, x)


def test_jacobian_of_matrix_function_of_matrix():
    W = RNG.normal(size=(2, 3))
    f = lambda X: np.tanh(W @ X)  # noqa: E731  (2,4) output of a (3,4) input
    def jac(X):
        d = 1 - np.tanh(W @ X) ** 2
        return np.einsum("ik,ij,kl->iljk", d, W, np.eye(4)).transpose(0, 1, 2, 3)
    X = RNG.normal(size=(3, 4))
    J = dc.jacobian(f, X)
    assert J.shape == (2, 4, 3, 4)
    assert dc.check_jacobian(f, lambda X: J, X).ok


def test_hessian_right_and_bug():
    f = lambda x: x[0] ** 2 * x[1] + np.exp(x[1] * x[2])  # noqa: E731

    def hess(x):
        e = np.exp(x[1] * x[2])
        return np.array([[2 * x[1], 2 * x[0], 0],
                         [2 * x[0], x[2] ** 2 * e, e + x[1] * x[2] * e],
                         [0, e + x[1] * x[2] * e, x[1] ** 2 * e]])

    def hess_bug(x):  # forgot the product rule in the mixed term
        H = hess(x)
        H[1, 2] = H[2, 1] = np.exp(x[1] * x[2])
        return H

    x = np.array([1.0, 0.5, -0.7])
    assert dc.check_hessian(f, hess, x).ok
    res = dc.check_hessian(f, hess_bug, x)
    assert not res.ok and res.worst_index in ((1, 2), (2, 1))
    with pytest.raises(AssertionError):
        dc.assert_hessian(f, hess_bug, x)


def test_hessian_of_matrix_input():
    A = RNG.normal(size=(2, 2))
    f = lambda X: np.sum(np.sin(A @ X) ** 2)  # noqa: E731
    X = RNG.normal(size=(2, 2))
    H = dc.hessian(f, X)
    assert H.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(H, dc.hessian(f, X, mode="finite"), rtol=1e-6, atol=1e-7)
    assert dc.check_hessian(f, lambda X: H, X).ok
    assert not dc.check_hessian(f, lambda X: H * (1 + 1e-3 * (np.arange(16) == 5)
                                                  ).reshape(H.shape), X).ok


# -- readable failures -----------------------------------------------------------------------

def test_failure_text_names_everything():
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    grad = lambda x: np.cos(x) * x + np.sin(x) + 1e-3 * (np.arange(x.size) == 2).reshape(x.shape)  # noqa: E501, E731
    x = np.linspace(0.1, 1.0, 6).reshape(2, 3)
    res = dc.check_gradient(f, grad, x, seed=11)
    text = str(res)
    assert not res.ok and res.worst_index == (0, 2)
    for needle in ("FAILED", "(0, 2)", "yours", "reference", "forward", "finite", "complex",
                   "tol", "step", "seed 11", "reverse-mode AD"):
        assert needle in text, needle
    with pytest.raises(AssertionError) as info:
        dc.assert_gradient(f, grad, x, seed=11)
    assert str(info.value) == text
    assert bool(res) is False and res.max_abs_error == pytest.approx(1e-3, rel=1e-6)
    assert res.reference.shape == x.shape and res.method.startswith("reverse-mode AD")


def test_ok_result_fields():
    res = dc.assert_gradient(np.sum, np.ones_like, np.ones((2, 2)))
    assert res.ok and bool(res) and res.max_abs_error == 0.0 and "OK" in str(res)


# -- kinks -----------------------------------------------------------------------------------

def test_kink_is_reported_not_failed():
    x = np.array([0.0, 1.5, -2.0, 0.3])
    f = lambda x: np.sum(np.abs(x)) + np.sum(np.maximum(x, 0.0) ** 2)  # noqa: E731
    # a valid one-sided choice at x[0] == 0 that differs from the AD rule's choice
    grad = lambda x: np.where(x >= 0, 1.0, -1.0) + 2 * np.maximum(x, 0)  # noqa: E731
    res = dc.check_gradient(f, grad, x)
    assert res.ok and "kink" in res.kink and "np.abs" in str(res)
    # a real bug elsewhere is still caught
    bad = lambda x: grad(x) + 0.01 * (np.arange(4) == 1)  # noqa: E731
    res = dc.check_gradient(f, bad, x)
    assert not res.ok and (1,) in [e.index for e in res.worst]


def test_relu_kink_without_tracing():
    def f(x):
        x = np.array([float(v) for v in x])  # defeats tracing: finite differences decide
        return np.sum(np.maximum(x, 0) ** 1 * 3)
    x = np.array([0.0, 1.0, -1.0])
    res = dc.check_gradient(f, lambda x: 3.0 * (x >= 0), x)
    assert res.ok and "finite differences" in res.method and res.kink
    assert not dc.check_gradient(f, lambda x: 3.1 * (x >= 0), x).ok


# -- scale -----------------------------------------------------------------------------------

def test_large_input_uses_directions_and_localises_a_single_wrong_entry():
    n = 200_000
    x = RNG.normal(size=n)
    c = RNG.uniform(0.5, 2.0, n)
    f = lambda x: np.sum(c * np.tanh(x) ** 2)  # noqa: E731
    grad = lambda x: 2 * c * np.tanh(x) * (1 - np.tanh(x) ** 2)  # noqa: E731
    res = dc.check_gradient(f, grad, x)
    assert res.ok and res.directions == 1 and res.slip_probability is not None
    j = 123_457

    def bad(x):
        g = grad(x)
        g[j] *= 1.001
        return g
    res = dc.check_gradient(f, bad, x)
    assert not res.ok and res.worst_index == (j,) and res.n_bad == 1


def test_untraceable_large_function_checks_directions_only():
    n = 5000
    x = RNG.uniform(0.5, 1.5, n)
    f = lambda x: float(np.sum(np.log(np.asarray(x))))  # noqa: E731
    assert dc.check_gradient(f, lambda x: 1 / x, x).ok
    res = dc.check_gradient(f, lambda x: 1.01 / x, x)
    assert not res.ok and "cannot be localised" in str(res)


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("f, grad, err, match", [
    (lambda x: np.sum(x) * np.nan, lambda x: x, dc.DomainError, "not finite"),
    (lambda x: "loss", lambda x: x, dc.UsageError, "str"),
    (lambda x: None, lambda x: x, dc.UsageError, "NoneType"),
    (lambda x: x * 2, lambda x: x, dc.ShapeError, "scalar"),
    (np.sum, lambda x: x[:2], dc.ShapeError, r"grad\(x\) has shape \(2,\)"),
    (np.sum, lambda x: np.ones((3, 1)), dc.ShapeError, "expected"),
])
def test_bad_input_raises_a_clear_error(f, grad, err, match):
    with pytest.raises(err, match=match):
        dc.check_gradient(f, grad, np.ones(3))


def test_bad_input_shapes_for_jacobian_and_hessian():
    with pytest.raises(dc.ShapeError, match=r"f\(x\).shape \+ x.shape"):
        dc.check_jacobian(lambda x: x * 2, lambda x: np.eye(3)[0], np.ones(3))
    with pytest.raises(dc.ShapeError, match=r"x.shape \+ x.shape"):
        dc.check_hessian(np.sum, lambda x: np.zeros(3), np.ones(3))
    with pytest.raises(dc.DiffcheckError):
        dc.check_gradient(np.sum, np.ones_like, np.array([1.0, np.inf]))
    with pytest.raises(dc.UsageError):
        dc.check_gradient(np.sum, np.ones_like, np.array(["a"]))


# -- Taylor test -----------------------------------------------------------------------------

def test_taylor_orders():
    f = lambda x: x[0] ** 2 * x[1] + np.exp(x[1] * x[2])  # noqa: E731
    x = np.array([1.0, 0.5, -0.7])
    g = lambda x: dc.gradient(f, x)  # noqa: E731
    h = lambda x: dc.hessian(f, x)  # noqa: E731
    right = dc.taylor_test(f, g, x)
    assert right.ok and abs(right.order - 2) < 0.3
    wrong = dc.taylor_test(f, lambda x: g(x) * (1 + 1e-3 * (np.arange(3) == 0)), x)
    assert not wrong.ok and abs(wrong.order - 1) < 0.3
    third = dc.taylor_test(f, g, x, h)
    assert third.ok and abs(third.order - 3) < 0.3 and "order" in str(third)
    bad_h = dc.taylor_test(f, g, x, lambda x: h(x) * 1.01)
    assert not bad_h.ok


# -- the float32 probe runs when the verdict can depend on it ---------------------------------

def _count_probes(monkeypatch):
    from diffcheck import numpy_check as nc

    calls = []
    real = nc._probe

    def counted(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(nc, "_probe", counted)
    return calls


def _tolerances(f, x):
    """The tolerance without and with the probe, from an eagerly computed reference."""
    from diffcheck import numpy_check as nc

    ref, _, _ = nc.reference("gradient", f, x)
    R, S = ref.value.reshape(x.shape), ref.scale.reshape(x.shape)
    eps = 2.0 ** -52
    return nc.tolerance(R, S, None, eps), nc.tolerance(R, S, ref.probe.reshape(x.shape), eps), R


def test_float64_probe_runs_only_when_the_check_needs_it(monkeypatch):
    calls = _count_probes(monkeypatch)
    x = RNG.uniform(1.0, 2.0, 20)
    f = lambda x: np.sum(np.log(x) * x)  # noqa: E731
    grad = lambda x: np.log(x) + 1  # noqa: E731
    res = dc.check_gradient(f, grad, x)
    assert res.ok and calls == []  # passes without the probe: it is not run
    tight, full, _ = _tolerances(f, x)
    calls.clear()
    assert np.array_equal(res.tolerance, tight) and np.all(tight <= full)
    # a bug: the probe runs and the entries are judged under the full tolerance
    bad = dc.check_gradient(f, lambda x: grad(x) * (1 + 1e-3 * (np.arange(20) == 7)), x)
    assert not bad.ok and bad.worst_index == (7,) and bad.n_bad == 1 and calls == [1]
    # the full tolerance, plus the rounding measured in the user's own formula (a failing
    # check measures it too): a few float64 ulps at most here
    assert np.all(bad.tolerance >= full) and np.all(bad.tolerance - full <= 1e-14)


def test_float64_probe_still_forgives_cancellation(monkeypatch):
    """(x + 1e4) - 1e4 loses digits in the AD reference itself: only the probe's term
    covers that, so the check runs it and passes; a real bug is still caught."""
    calls = _count_probes(monkeypatch)
    x = np.random.default_rng(5).uniform(1.0, 2.0, 20)
    f = lambda x: np.sum(np.log((x + 1e4) - 1e4))  # noqa: E731
    tight, full, R = _tolerances(f, x)
    assert np.any(np.abs(1 / x - R) > tight) and np.all(np.abs(1 / x - R) <= full)
    calls.clear()
    res = dc.check_gradient(f, lambda x: 1 / x, x)
    assert res.ok and calls == [1] and np.array_equal(res.tolerance, full)
    assert not dc.check_gradient(f, lambda x: 1.001 / x, x).ok


def test_witness_disagreement_runs_the_probe(monkeypatch):
    from diffcheck import numpy_check as nc

    calls = _count_probes(monkeypatch)
    seen = []
    real = nc._witness_verdict

    def first_disagrees(kind, samples, yours, ref, tol, size=None):
        wit = real(kind, samples, yours, ref, tol, size)
        seen.append(ref.probe is not None)
        if len(seen) == 1:
            wit.ok = False
        return wit
    monkeypatch.setattr(nc, "_witness_verdict", first_disagrees)
    x = RNG.uniform(1.0, 2.0, 6)
    res = dc.check_gradient(lambda x: np.sum(x ** 3), lambda x: 3 * x ** 2, x)
    assert res.ok and calls == [1] and seen == [False, True]


def test_float32_always_runs_the_probe(monkeypatch):
    calls = _count_probes(monkeypatch)
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    res = dc.check_gradient(lambda x: np.sum(np.tanh(x) ** 2),
                            lambda x: 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), x)
    assert res.ok and res.dtype == "float32" and calls == [1]


def test_non_finite_entry_of_yours_fails_there():
    x = RNG.uniform(1.0, 2.0, 6)

    def grad(x):
        g = 3 * x ** 2
        g[4] = np.nan
        return g
    res = dc.check_gradient(lambda x: np.sum(x ** 3), grad, x)
    assert not res.ok and res.n_bad == 1 and res.worst_index == (4,)
    assert res.max_abs_error == np.inf and res.max_rel_error == np.inf


# -- finite differences along a direction ----------------------------------------------------

def test_step_points_are_x_plus_h_v_exactly():
    from diffcheck.numpy_check import _step

    x = RNG.normal(size=(3, 4))
    for v in (RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4)).astype(np.float32),
              np.float64(0.3)):
        for h in (2.0 ** -4, np.float64(0.1)):
            assert np.array_equal(_step(x, h, v, np.add), x + h * v)
            assert np.array_equal(_step(x, h, v, np.subtract), x - h * v)


@pytest.mark.parametrize("levels", [2, 3, 8])
def test_directional_difference_error_bounds_the_truth(levels):
    """x + atan2(y, 0.5): the case whose error the Richardson fix was about."""
    from diffcheck.numpy_check import directional_difference

    f = lambda x: x[0] + np.arctan2(x[1], 0.5)  # noqa: E731
    rng = np.random.default_rng(3)
    for _ in range(50):
        pt, v = rng.uniform(-2, 2, 2), rng.normal(size=2)
        d = directional_difference(f, pt, v, levels=levels)
        assert abs(d.value - (v[0] + v[1] * 0.5 / (0.25 + pt[1] ** 2))) <= d.error


def test_directional_richardson_is_the_finite_engines():
    from diffcheck.engines import finite
    from diffcheck.numpy_check import _richardson

    hs = 0.25 / 2.0 ** np.arange(6)
    D = np.cos(0.3) + np.outer(hs ** 2, [0.1, -2.0]) + np.outer(hs ** 4, [3.0, 0.5])
    noise = np.array([1e-16, 1e-15])
    best, err, step = _richardson(D, hs, noise)
    b2, e2, steps = finite.richardson(D, hs, noise, gain=lambda lvl: 2.0 ** lvl,
                                      with_step=True)
    assert np.array_equal(best, b2) and np.array_equal(err, e2) and step == np.max(steps)
    assert np.all(np.abs(best - np.cos(0.3)) <= err)
    # the first extrapolation of each order is no candidate: two levels give none there
    none, inf = finite.richardson(D[:2], hs[:2], noise)
    assert np.all(np.isnan(none)) and np.all(np.isinf(inf))
