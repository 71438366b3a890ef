"""Verdicts of the NumPy checks at hard points (issue 13's NumPy side, issue 14's fallback).

float32 inside untraceable code, the rounding of the user's own formula, kinks and ties,
untraceable Hessians, tracing that fails in any pass, and reports that never contradict
their verdict. Each case has a right derivative (must pass) and a wrong one (must fail,
never raise).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import diffcheck as dc
from diffcheck import numpy_check as nc
from diffcheck.engines.forward import Dual
from diffcheck.engines.reverse import Var


def assert_consistent(res) -> None:
    """The report never contradicts its verdict."""
    text = str(res)
    head = text.splitlines()[0]
    assert ("OK" in head) == res.ok and ("FAILED" in head) != res.ok, text
    assert "nan at None" not in text and "(0 of" not in head, text
    for value in re.findall(r"rel\. difference ([0-9.e+-]+)", text):
        if "agrees" in text:
            assert float(value) < 1.0, text
    if res.ok:
        assert res.n_bad == 0 and "your derivative disagrees" not in text, text
        assert "DISAGREE\n" not in text and "directional derivatives DISAGREE" not in text
        quoted = re.search(r"probability <= ([0-9.e+-]+)", text)
        assert quoted is None or float(quoted.group(1)) <= 0.5, text  # never "<= 1.0"
        if getattr(res, "localised", True):
            assert np.isfinite(res.max_rel_error), text
    elif getattr(res, "localised", True):
        assert res.n_bad > 0 or res.directional, text


def off_at(grad, index, factor):
    """``grad`` with one entry scaled by ``factor``: a bug in a single entry."""
    def bug(x):
        g = np.array(grad(x), copy=True)
        g[index] *= factor
        return g
    return bug


# -- taylor_test: the verdict is the order the table shows -----------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_taylor_float32_wrong_gradient_fails_with_the_order_shown(seed):
    """Old code: 'OK: observed order 2.00' above orders settling at 1.00 (float32 x made
    it assume float32 noise for a function that computes in float64)."""
    x = np.random.default_rng(1).normal(size=10).astype(np.float32)
    f = lambda x: np.sum(np.exp(x)) + 100.0  # noqa: E731
    wrong = dc.taylor_test(f, lambda x: np.exp(x) * 1.1, x, seed=seed)
    assert not wrong.ok and abs(wrong.order - 1) < 0.2, str(wrong)
    usable = getattr(wrong, "usable", np.ones(wrong.steps.size, bool))
    settled = wrong.orders[usable[:-1] & usable[1:]][-3:]
    assert abs(np.median(settled) - wrong.order) < 1e-12
    right = dc.taylor_test(f, np.exp, x, seed=seed)
    assert right.ok and abs(right.order - 2) < 0.3, str(right)


def test_taylor_f_computing_in_float32_inside():
    rng = np.random.default_rng(0)
    x = rng.normal(size=100).astype(np.float32)
    f = lambda v: np.sum(np.sin(np.asarray(v, np.float32)) * np.asarray(v, np.float32))  # noqa: E731,E501
    g = lambda v: np.cos(v) * v + np.sin(v)  # noqa: E731
    assert dc.taylor_test(f, g, x).ok
    wrong = dc.taylor_test(f, lambda v: g(v) * 1.1, x)
    assert not wrong.ok and "FAILED: observed order 1.0" in str(wrong)
    assert "(rounding level)" in str(dc.taylor_test(f, g, x))


# -- float32 inside code that cannot be traced ------------------------------------------------

def _f32_array(v):  # float() of each entry cannot be traced; the rest computes in float32
    v = np.array([float(a) for a in v], dtype=np.float32)
    return np.sum(np.sin(v) * v ** 2)


def _f32_math(v):
    return sum(math.exp(float(np.float32(a))) * float(np.float32(a)) for a in v)


def _f32_result(v):
    return float(np.float32(sum(math.exp(a) * a for a in v)))


UNTRACEABLE_F32 = [
    (_f32_array, lambda v: np.cos(v) * v ** 2 + 2 * v * np.sin(v)),
    (_f32_math, lambda v: np.exp(v) * (1 + v)),
    (_f32_result, lambda v: np.exp(v) * (1 + v)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(UNTRACEABLE_F32)))
def test_untraceable_float32_inside_right_passes_wrong_fails(case, dtype):
    f, grad = UNTRACEABLE_F32[case]
    x = np.random.default_rng(case).normal(size=6).astype(dtype)
    res = dc.check_gradient(f, grad, x)
    assert res.ok and "finite differences" in res.method, str(res)
    assert_consistent(res)
    for bug in (1.01, 1.1):
        bad = dc.check_gradient(f, lambda v, b=bug: grad(v) * b, x)
        assert not bad.ok, str(bad)
        assert_consistent(bad)


def test_float32_inside_is_named_in_the_report():
    x = np.random.default_rng(0).normal(size=5)
    assert dc.check_gradient(_f32_result, UNTRACEABLE_F32[2][1], x).dtype.startswith("float32")
    assert "float32" in dc.check_gradient(_f32_array, UNTRACEABLE_F32[0][1], x).dtype


# -- check_hessian of untraceable code ----------------------------------------------------------

def _mathy(x):
    return math.exp(x[0]) * x[1] ** 2 + x[2] * x[1]


def _mathy_hess(x):
    e = math.exp(x[0])
    return np.array([[e * x[1] ** 2, 2 * e * x[1], 0], [2 * e * x[1], 2 * e, 1], [0, 1, 0]])


def _interp_f(x):  # np.interp of a traced value cannot be traced (UnsupportedError)
    return np.sum(np.interp(x, [-5.0, 5.0], [-5.0, 5.0]) ** 3) + np.sum(np.exp(x))


def _interp_hess(x):
    return np.diag(6 * x + np.exp(x))


@pytest.mark.parametrize("f, hess", [(_mathy, _mathy_hess), (_interp_f, _interp_hess)])
def test_untraceable_hessian_is_failed_not_raised(f, hess):
    x = np.array([0.3, 0.7, -0.2])
    right = dc.check_hessian(f, hess, x)
    assert right.ok, str(right)
    wrong = dc.check_hessian(f, lambda x: hess(x) * 1.01, x)
    assert not wrong.ok and wrong.n_bad > 0 and wrong.worst, str(wrong)
    assert "finite" in wrong.worst[0].engines
    assert_consistent(right)
    assert_consistent(wrong)


# -- reports that contradicted themselves ------------------------------------------------------

def _springs(n=20, seed=0):
    rng = np.random.default_rng(seed)
    P0 = 3e3 + rng.normal(size=(n, 2))
    I, J = np.triu_indices(n, 1)
    keep = rng.random(I.size) < 0.3
    I, J = I[keep], J[keep]

    def energy(p):  # norm: not analytic, so the witness is finite differences
        return np.sum((np.linalg.norm(p[I] - p[J], axis=1) - 1.0) ** 2)

    def grad(p):
        d = p[I] - p[J]
        r = np.sqrt(np.sum(d * d, axis=1))
        c = (2 * (r - 1.0) / r)[:, None] * d
        g = np.zeros_like(p)
        np.add.at(g, I, c)
        np.add.at(g, J, -c)
        return g
    return energy, grad, P0


def test_spring_network_far_from_zero_witness_fits_the_function_scale():
    """Old code: 'gradient check: OK' above 'your derivative disagrees with it along some
    direction' (finite-difference steps of ~190 for unit springs at coordinates 3e3)."""
    energy, grad, P0 = _springs()
    res = dc.check_gradient(energy, grad, P0)
    assert res.ok and "agrees with the reference" in res.witness, str(res)
    assert_consistent(res)
    res = dc.check_gradient(energy, off_at(grad, (3, 1), 1.01), P0)
    assert not res.ok and res.worst_index == (3, 1) and res.n_bad == 1, str(res)
    assert_consistent(res)


def test_directional_difference_fits_a_short_scale_far_from_zero():
    energy, grad, P0 = _springs()
    for v in nc._directions(P0, 3, 0):
        d = nc.directional_difference(energy, P0, v)
        assert abs(d.value - np.sum(grad(P0) * v)) <= d.error, (d.value, d.error)


def test_directions_only_failure_is_stated_without_nan():
    """Old code: 'FAILED (0 of 5000 entries outside tolerance) ... max rel error nan at
    None'."""
    x = np.random.default_rng(0).uniform(0.5, 1.5, 5000)
    f = lambda x: float(np.sum(np.log(np.asarray(x))))  # noqa: E731
    bad = dc.check_gradient(f, lambda x: 1.01 / x, x)
    assert not bad.ok and not getattr(bad, "localised", True) and "DISAGREE" in bad.witness
    assert "random directions only" in str(bad).splitlines()[0]
    assert_consistent(bad)
    good = dc.check_gradient(f, lambda x: 1 / x, x)
    assert good.ok and "agree" in good.witness
    assert_consistent(good)


def test_witness_at_a_kink_reports_a_sane_difference():
    """Old code: 'agrees (rel. difference 4.9e+299)' (relu at 0: a reference of 0 divided
    into the witness's 1/2 with a floor of 1e-300) above 'max rel error inf'."""
    f = lambda x: np.sum(np.maximum(x, 0.0))  # noqa: E731
    for grad in (np.ones_like, np.zeros_like):
        res = dc.check_gradient(f, grad, np.zeros(5))
        assert res.ok and "agrees" in res.witness, str(res)
        assert_consistent(res)
    res = dc.check_gradient(f, lambda x: 2 * np.ones_like(x), np.zeros(5))
    assert not res.ok and res.n_bad == 5
    assert_consistent(res)


def test_zero_directional_derivative_is_no_huge_relative_difference():
    """Where the derivative along the directions is 0, no ratio with 1e-300."""
    f = lambda x: (x[0] - x[1]) ** 2 + 0 * np.sum(np.abs(x))  # noqa: E731
    g = lambda x: np.array([2 * (x[0] - x[1]), -2 * (x[0] - x[1])])  # noqa: E731
    res = dc.check_gradient(f, g, np.array([1.3, 1.3]))
    assert res.ok and "e+2" not in res.witness and "e+3" not in res.witness, str(res)
    assert_consistent(res)


def test_zero_reference_entry_within_tolerance_is_no_infinite_error():
    """An 'OK' with 'max rel error inf': a finite-difference reference of 0 at a
    1e-300 entry."""
    f = lambda x: float(np.sum(np.asarray(x) ** 2))  # noqa: E731
    res = dc.check_gradient(f, lambda x: 2 * x, np.array([1.0, -1.0, 1e-300]))
    assert res.ok and np.isfinite(res.max_rel_error) and res.max_rel_error < 1e-6, str(res)
    assert_consistent(res)


def test_slip_probability_near_one_is_not_quoted_as_a_probability():
    """'OK' with 'slips past ... with probability <= 1.0': when the tolerance is that wide
    the report says the directions cannot resolve such a bug instead."""
    x = (1000 + np.random.default_rng(0).normal(size=10)).astype(np.float32)
    res = dc.check_gradient(lambda x: np.sum((x - np.mean(x)) ** 2),
                            lambda x: 2 * (x - np.mean(x)), x)
    assert res.ok, str(res)
    assert_consistent(res)
    assert res.slip_probability is not None
    if res.slip_probability > getattr(nc, "SLIP_USEFUL", 0.5):
        assert "cannot catch" in str(res) or "too wide" in str(res)


# -- kinks and ties ------------------------------------------------------------------------------

def test_maximum_and_minimum_split_ties_evenly():
    assert dc.gradient(lambda x: np.maximum(x[0], x[1]), [1.0, 1.0]).tolist() == [0.5, 0.5]
    assert dc.gradient(lambda x: np.minimum(x[0], x[1]), [1.0, 1.0]).tolist() == [0.5, 0.5]
    assert dc.gradient(lambda x: np.maximum(x[0], x[1]), [1.0, 1.0], mode="forward"
                       ).tolist() == [0.5, 0.5]
    assert dc.gradient(lambda x: np.maximum(x[0], x[1]), [2.0, 1.0]).tolist() == [1.0, 0.0]
    assert dc.gradient(lambda x: np.sum(np.maximum(x, 0.0)), np.zeros(2)).tolist() == [0.5, 0.5]


def _row_max(X):
    return np.sum(np.max(X, axis=1))


def _first_argmax(X):
    G = np.zeros_like(X)
    G[np.arange(len(X)), np.argmax(X, axis=1)] = 1
    return G


def _even_split(X):
    M = (X == X.max(axis=1, keepdims=True)).astype(float)
    return M / M.sum(axis=1, keepdims=True)


def _every_argmax(X):  # the classic max-pool bug: 1 to every tied entry
    return (X == X.max(axis=1, keepdims=True)).astype(float)


@pytest.mark.parametrize("ties", [2, 25, 60])
def test_max_over_ties_any_subgradient_passes_others_fail(ties):
    """Old code: a valid choice failed once more than 20 entries sat on ties (only 20
    were examined) or at 2 tied rows."""
    rng = np.random.default_rng(ties)
    X = rng.normal(size=(60, 4))
    X[:ties, 1] = X[:ties, 0] = np.max(X[:ties], axis=1)
    res = dc.check_gradient(_row_max, _first_argmax, X)
    assert res.ok and "kink" in res.kink, str(res)
    assert_consistent(res)
    res = dc.check_gradient(_row_max, _even_split, X)  # AD's own choice: no kink to explain
    assert res.ok and res.max_abs_error < 1e-12, str(res)
    assert_consistent(res)
    res = dc.check_gradient(_row_max, _every_argmax, X)
    assert not res.ok and "no subgradient" in res.kink, str(res)
    assert_consistent(res)

    def out_of_range(X):
        G = _first_argmax(X)
        G[0] = [2.0, 0.0, 0.0, 0.0]
        return G
    res = dc.check_gradient(_row_max, out_of_range, X)
    assert not res.ok and res.worst[0].index == (0, 0), str(res)
    assert "outside the range" in res.kink
    assert_consistent(res)


@pytest.mark.parametrize("ties", [1, 2, 30])
def test_a_tie_split_that_does_not_sum_to_one_fails(ties):
    """Each entry between its one-sided limits (0 and 1) is not enough: over a tie of
    ``max`` every subgradient sums to 1. ``[.55, .5]`` and ``[.5, .45]`` on a tied pair passed
    (only the entry that differs from the reference was moved, and it stayed in range)."""
    rng = np.random.default_rng(ties)
    X = rng.normal(size=(40, 4))
    X[:ties, 1] = X[:ties, 0] = np.max(X[:ties], axis=1) + 0.5
    for extra in (0.05, -0.05):
        def off(X, extra=extra):
            G = _even_split(X)
            G[0, 0] += extra
            return G
        res = dc.check_gradient(_row_max, off, X)
        assert not res.ok and "no subgradient" in res.kink, str(res)
        assert_consistent(res)

    def lopsided(X):  # a valid subgradient: 0.3 and 0.7 over each tied pair
        G = _even_split(X)
        G[:ties, 0], G[:ties, 1] = 0.3, 0.7
        return G
    res = dc.check_gradient(_row_max, lopsided, X)
    assert res.ok, str(res)


@pytest.mark.parametrize("ties", [1, 2, 3, 40])
def test_tied_pairs_of_maximum(ties):
    rng = np.random.default_rng(ties)
    x = rng.normal(size=(40, 2))
    x[:ties, 1] = x[:ties, 0]
    f = lambda x: np.sum(np.maximum(x[:, 0], x[:, 1]))  # noqa: E731
    assert dc.check_gradient(f, _first_argmax, x).ok

    def both(x):
        G = _first_argmax(x)
        G[:ties] = 1.0
        return G
    res = dc.check_gradient(f, both, x)
    assert not res.ok, str(res)
    assert_consistent(res)


@pytest.mark.parametrize("value, ok", [(0.0, True), (0.5, True), (1.0, True), (2.0, False),
                                       (-0.1, False)])
@pytest.mark.parametrize("form", ["maximum", "where"])
def test_relu_at_many_zeros(value, ok, form):
    x = np.random.default_rng(3).normal(size=300)
    x[::3] = 0.0
    f = (lambda x: np.sum(np.maximum(x, 0) * 3)) if form == "maximum" else \
        (lambda x: np.sum(np.where(x > 0, x, 0.0) * 3))
    res = dc.check_gradient(f, lambda x: 3.0 * (x > 0) + 3 * value * (x == 0), x)
    assert res.ok == ok, str(res)
    if not ok:
        assert res.n_bad == 100
    assert_consistent(res)


@pytest.mark.parametrize("value, ok", [(0.0, True), (-1.0, True), (0.3, True), (1.5, False)])
def test_abs_at_many_zeros(value, ok):
    x = np.random.default_rng(4).normal(size=(10, 30))
    x[:, ::2] = 0.0
    res = dc.check_gradient(lambda x: np.sum(np.abs(x)), lambda x: np.sign(x) + value * (x == 0),
                            x)
    assert res.ok == ok, str(res)
    assert_consistent(res)


def test_real_bug_next_to_kinks_still_fails():
    x = np.random.default_rng(5).normal(size=200)
    x[::2] = 0.0
    f = lambda x: np.sum(np.abs(x)) + np.sum(x ** 2)  # noqa: E731
    grad = lambda x: np.where(x >= 0, 1.0, -1.0) + 2 * x  # noqa: E731
    res = dc.check_gradient(f, off_at(grad, 7, 1.001), x)  # x[7] != 0: a smooth entry
    assert not res.ok and res.n_bad == 1 and res.worst[0].index == (7,), str(res)
    assert_consistent(res)


@pytest.mark.parametrize("value, ok", [(1.0, True), (0.5, True), (2.0, False)])
def test_untraceable_kinks_use_one_sided_differences(value, ok):
    def f(x):
        x = np.array([float(v) for v in x])  # defeats tracing
        return np.sum(np.maximum(x, 0) * 3)
    x = np.random.default_rng(6).normal(size=30)
    x[::3] = 0.0
    res = dc.check_gradient(f, lambda x: 3.0 * (x > 0) + 3 * value * (x == 0), x)
    assert res.ok == ok and "finite differences" in res.method, str(res)
    assert_consistent(res)


def test_kink_test_runs_few_passes_for_many_tied_entries(monkeypatch):
    calls = []
    real = nc._ad_value

    def counted(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(nc, "_ad_value", counted)
    X = np.random.default_rng(8).normal(size=(500, 4))
    X[:, 1] = X[:, 0] = np.max(X, axis=1)  # 500 tied rows, 1000 entries on ties
    assert dc.check_gradient(_row_max, _first_argmax, X).ok
    assert len(calls) < 60


# -- float32 cancellation in the user's own formula -----------------------------------------------

@pytest.mark.parametrize("n", [10, 100, 1000])
def test_float32_mean_centering_right_passes_bugs_fail(n):
    x = (1000 + np.random.default_rng(n).normal(size=n)).astype(np.float32)
    f = lambda x: np.sum((x - np.mean(x)) ** 2)  # noqa: E731
    g = lambda x: 2 * (x - np.mean(x))  # noqa: E731
    res = dc.check_gradient(f, g, x)
    assert res.ok and res.dtype == "float32", str(res)
    assert_consistent(res)
    # a bug ~1e3 times the rounding (2 eps32 1000 ~ 2.4e-4 here) still fails
    assert not dc.check_gradient(f, lambda x: g(x) * 1.1, x).ok
    assert not dc.check_gradient(f, lambda x: g(x) + 0.2 * (np.arange(n) == 3), x).ok


def test_float64_cancellation_in_the_users_formula():
    x = 1e8 + np.random.default_rng(2).normal(size=50)
    f = lambda x: np.sum((x - np.mean(x)) ** 2)  # noqa: E731
    assert dc.check_gradient(f, lambda x: 2 * (x - np.mean(x)), x).ok
    assert not dc.check_gradient(f, lambda x: 2.002 * (x - np.mean(x)), x).ok


# -- any exception while tracing, in any pass, falls back ----------------------------------------

def _in_reverse(x):
    return isinstance(x, Var)


def _in_forward(x):
    return isinstance(x, Dual)


def _in_complex(x):
    return isinstance(x, np.ndarray) and np.iscomplexobj(x)


def _in_float32_probe(x):
    return isinstance(x, Var) and getattr(np.asarray(x.val), "dtype", None) == np.float32


PASSES = {"reverse": _in_reverse, "forward": _in_forward, "complex": _in_complex,
          "probe": _in_float32_probe}
ERRORS = [TypeError, ValueError, AttributeError, IndexError, KeyError, ZeroDivisionError,
          RuntimeError, dc.UnsupportedError]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("where", list(PASSES))
def test_any_tracing_failure_falls_back(where, error):
    when = PASSES[where]

    def f(x):
        if when(x):
            raise error("this code cannot be traced")
        return np.sum(np.sin(x) * x) + np.sum(x ** 2)

    grad = lambda x: np.cos(x) * x + np.sin(x) + 2 * x  # noqa: E731
    x = np.random.default_rng(1).normal(size=(2, 3))
    assert dc.check_gradient(f, grad, x).ok
    res = dc.check_gradient(f, off_at(grad, (1, 2), 1.01), x)
    assert not res.ok and res.worst_index == (1, 2), str(res)
    assert_consistent(res)
    H = lambda x: np.diag((2 * np.cos(x) - x * np.sin(x) + 2).ravel()  # noqa: E731
                          ).reshape(x.shape + x.shape)
    assert dc.check_hessian(f, H, x).ok
    assert not dc.check_hessian(f, lambda x: H(x) * 1.01, x).ok


@pytest.mark.parametrize("error", [TypeError, ValueError, IndexError])
def test_tracing_failure_at_the_kink_test_points_falls_back(error):
    X = np.random.default_rng(9).normal(size=(8, 3))
    X[:, 1] = X[:, 0] = np.max(X, axis=1)
    X0 = X.copy()

    def f(X):  # traceable at X, not at the nearby points the kink test visits
        if isinstance(X, Var) and not np.array_equal(np.asarray(X.val), X0):
            raise error("not here")
        return _row_max(X)
    assert dc.check_gradient(f, _first_argmax, X).ok
    assert not dc.check_gradient(f, _every_argmax, X).ok


def test_loss_that_writes_into_its_own_gradient_array():
    """Issue 14: dx[np.arange(N), y] -= 1 inside f made the forward-mode localisation pass
    crash with TypeError exactly when the gradient was wrong."""
    N, y = 5, np.array([0, 2, 1, 1, 0])

    def loss(z):
        z = z - np.max(z, axis=1, keepdims=True)
        p = np.exp(z)
        p = p / np.sum(p, axis=1, keepdims=True)
        dx = p.copy()
        dx[np.arange(N), y] -= 1
        return -np.mean(np.log(p[np.arange(N), y]))

    def grad(z):
        p = np.exp(z - np.max(z, axis=1, keepdims=True))
        p = p / np.sum(p, axis=1, keepdims=True)
        p[np.arange(N), y] -= 1
        return p / N
    z = np.random.default_rng(0).normal(size=(N, 3))
    assert dc.check_gradient(loss, grad, z).ok
    res = dc.check_gradient(loss, lambda z: grad(z) * 1.1, z)
    assert not res.ok
    assert_consistent(res)


def test_public_derivatives_name_what_cannot_be_traced():
    def plain_only(x):  # code that needs a real ndarray (a C extension, a strict library)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"expected an ndarray, got {type(x).__name__}")
        return np.sum(x ** 2)
    x = np.array([1.0, 2.0, 3.0])
    for call in (lambda: dc.gradient(plain_only, x),
                 lambda: dc.gradient(plain_only, x, mode="forward"),
                 lambda: dc.jacobian(lambda v: plain_only(v) * v, x, mode="reverse"),
                 lambda: dc.hessian(plain_only, x)):
        with pytest.raises(dc.UnsupportedError, match="could not be traced.*TypeError"):
            call()
    np.testing.assert_allclose(dc.gradient(plain_only, x, mode="finite"), 2 * x, rtol=1e-8)
    assert dc.check_gradient(plain_only, lambda x: 2 * x, x).ok  # checks fall back
    assert not dc.check_hessian(plain_only, lambda x: 3 * np.eye(3), x).ok
    with pytest.raises(IndexError):  # f's own error on plain arrays is the user's
        dc.gradient(lambda v: v[5], x)


# -- kinks as people meet them: max pooling, hinge losses, clipping, second derivatives ----------

def _maxpool(a):
    N, H, W = a.shape
    return a.reshape(N, H // 2, 2, W // 2, 2).max(axis=(2, 4))


def _pool_backward(x, W, route):
    """The CS231n-style loop: each window's upstream gradient to its argmax (``route=
    "first"``) or to every entry equal to the max (``"every"``), through relu's x > 0."""
    a = np.maximum(x, 0)
    g = np.zeros_like(x)
    for n, i, j in np.ndindex(W.shape):
        win = a[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        if route == "first":
            mask = np.zeros((2, 2))
            mask[np.unravel_index(np.argmax(win), (2, 2))] = 1.0
        else:
            mask = (win == win.max()).astype(float)
        g[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = W[n, i, j] * mask * \
            (x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2] > 0)
    return g


@pytest.mark.parametrize("point", ["zeros", "ties"])
def test_max_pool_of_relu_with_ties_weighted_by_both_signs(point):
    """Windows of tied values weighted by upstream gradients of both signs: the sum of
    convex and concave kinks, where the whole function's one-sided derivatives along a
    direction bound nothing; every entry is judged by its own one-sided limits."""
    rng = np.random.default_rng(42)
    X, W = rng.normal(size=(2, 8, 8)), rng.normal(size=(2, 4, 4))
    X = np.minimum(X, 0) if point == "zeros" else np.round(2 * X) / 2
    f = lambda x: np.sum(W * _maxpool(np.maximum(x, 0)))  # noqa: E731
    res = dc.check_gradient(f, lambda x: _pool_backward(x, W, "first"), X)
    assert res.ok and res.kink, str(res)
    assert "DISAGREES" not in res.witness
    assert_consistent(res)
    res = dc.check_gradient(f, lambda x: _pool_backward(x, W, "every"), X)
    assert res.ok == (point == "zeros"), str(res)  # all-zero windows: relu masks them out
    assert_consistent(res)
    res = dc.check_gradient(f, lambda x: _pool_backward(x, W, "first") + 0.01, X)
    assert not res.ok
    assert_consistent(res)


def test_svm_hinge_at_exact_margins():
    rng = np.random.default_rng(1)
    N, C = 10, 4
    y = rng.integers(0, C, N)
    S = np.round(2 * rng.normal(size=(N, C)))
    S[np.arange(N), y] = S[np.arange(N), (y + 1) % C] + 1  # a margin of exactly 0 per row

    def loss(S):
        m = (S - S[np.arange(N), y][:, None] + 1) * (np.arange(C) != y[:, None])
        return np.sum(np.maximum(m, 0)) / N

    def grad(S, strict):
        m = S - S[np.arange(N), y][:, None] + 1
        g = (((m > 0) if strict else (m >= 0)) & (np.arange(C) != y[:, None])).astype(float)
        g[np.arange(N), y] = -g.sum(axis=1)
        return g / N
    assert dc.check_gradient(loss, lambda S: grad(S, True), S).ok
    assert dc.check_gradient(loss, lambda S: grad(S, False), S).ok
    assert not dc.check_gradient(loss, lambda S: grad(S, True) * N, S).ok


def test_clip_at_its_bounds():
    x = np.array([-1.0, 0.3, 1.0, 2.0, -0.5])
    f = lambda x: np.sum(np.clip(x, -1, 1) ** 2)  # noqa: E731
    inside = lambda x, lo, hi: 2 * np.clip(x, -1, 1) * (lo(x) & hi(x))  # noqa: E731
    assert dc.check_gradient(f, lambda x: inside(x, lambda x: x >= -1, lambda x: x <= 1), x).ok
    assert dc.check_gradient(f, lambda x: inside(x, lambda x: x > -1, lambda x: x < 1), x).ok
    assert not dc.check_gradient(f, lambda x: 1.5 * inside(x, lambda x: x > -1,
                                                           lambda x: x < 1), x).ok


def test_jacobian_and_hessian_at_kinks():
    x = np.array([0.0, 1.0, -2.0, 0.0])
    c = np.array([1.0, 2.0, 3.0, 4.0])
    f = lambda x: np.maximum(x, 0) * c  # noqa: E731
    assert dc.check_jacobian(f, lambda x: np.diag((x >= 0) * c), x).ok
    assert not dc.check_jacobian(f, lambda x: np.diag((x >= 0) * c * 2), x).ok
    g = lambda x: np.sum(np.maximum(x, 0) ** 2)  # noqa: E731
    for d in (2.0, 0.0):  # either one-sided second derivative at 0
        res = dc.check_hessian(g, lambda x, d=d: np.diag(np.where(x > 0, 2.0, np.where(
            x == 0, d, 0.0))), x)
        assert res.ok and "DISAGREES" not in res.witness, str(res)
    assert not dc.check_hessian(g, lambda x: np.diag(5.0 * (x >= 0)), x).ok


def test_float32_softmax_classifier_small_bug_is_caught():
    rng = np.random.default_rng(3)
    D, K, N = 300, 10, 40
    X, y = rng.normal(size=(N, D)).astype(np.float32), rng.integers(0, K, N)
    W = (rng.normal(size=(D, K)) * 1e-3).astype(np.float32)

    def probs(W):
        s = X @ W
        e = np.exp(s - np.max(s, axis=1, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)

    def loss(W):
        return -np.mean(np.log(probs(W)[np.arange(N), y])) + 5e-4 * np.sum(W * W)

    def grad(W):
        p = probs(W)
        p[np.arange(N), y] -= 1
        return X.T @ p / N + 1e-3 * W
    assert dc.check_gradient(loss, grad, W).ok
    res = dc.check_gradient(loss, off_at(grad, (100, 3), 1.0019), W)
    assert not res.ok and res.worst_index == (100, 3), str(res)
    assert not dc.check_gradient(loss, lambda W: grad(W) * 1.0019, W).ok


# -- a property: no false alarm, no missed bug, no contradiction ---------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from diffcheck import strategies as dst  # noqa: E402


@given(dst.expressions(("x", "y", "z"), max_depth=3), dst.points((3,), low=-3, high=3),
       st.sampled_from(["float64", "float32", "float32 inside"]), st.integers(0, 2))
def test_property_right_passes_wrong_fails_reports_agree(e, x, precision, j):
    """Random smooth expressions as NumPy code, traced or (rounding to float32 inside)
    not: the exact gradient passes, one entry off by 1% of the gradient's size fails,
    and neither report contradicts itself."""
    if precision == "float32 inside":  # float() cannot be traced: finite differences
        f = lambda v: e(np.array([float(a) for a in v], np.float32))  # noqa: E731
    else:
        f = e
        x = x.astype(precision)
    G = dc.gradient(e, x.astype(np.float64))
    right = dc.check_gradient(f, lambda v: G.astype(v.dtype), x)
    assert right.ok, str(right)
    assert_consistent(right)
    off = np.zeros(3)
    off[j] = 0.01 * (1 + float(np.max(np.abs(G))))
    wrong = dc.check_gradient(f, lambda v: (G + off).astype(v.dtype), x)
    assert not wrong.ok, str(wrong)
    assert_consistent(wrong)


def test_jax_code_in_its_default_float32():
    """f written with jax.numpy computes in float32 by default and cannot be traced by
    diffcheck's engines: finite differences with float32 error bars are the reference."""
    jnp = pytest.importorskip("jax.numpy")

    def f(v):  # float32 explicitly (other tests may have switched JAX to float64)
        v = jnp.asarray(v, jnp.float32)
        return jnp.sum(jnp.sin(v) ** 2 * jnp.exp(v / 3))
    g = lambda v: np.exp(v / 3) * (np.sin(2 * v) + np.sin(v) ** 2 / 3)  # noqa: E731
    x = np.array([0.3, -1.1, 0.7, 2.0])
    res = dc.check_gradient(f, g, x)
    assert res.ok and res.dtype.startswith("float32"), str(res)
    assert not dc.check_gradient(f, lambda v: g(v) * 1.01, x).ok
    assert dc.taylor_test(f, g, x).ok and not dc.taylor_test(f, lambda v: g(v) * 1.1, x).ok


def test_gradients_near_overflow_raise_no_numpy_warnings():
    """f = sum(exp(x)) at x = 700 has a gradient near 1e304: the witness's norms and the
    localisation's difference quotients overflowed NumPy's float64 arithmetic and leaked
    'overflow encountered in dot/divide' RuntimeWarnings into the user's session; the
    wrong-gradient table glued two 14-character cells together."""
    import warnings
    x = np.array([700.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        right = dc.check_gradient(lambda v: np.sum(np.exp(v)), lambda v: np.exp(v), x)
        wrong = dc.check_gradient(lambda v: np.sum(np.exp(v)),
                                  lambda v: np.exp(v) * np.array([1.1, 1.0]), x)
    assert right.ok and not wrong.ok
    assert right.slip_probability is not None and right.slip_probability > 0
    row = next(line for line in str(wrong).splitlines() if line.strip().startswith("(0,)"))
    assert not re.search(r"e[+-]\d+[^\d\s]", row)  # every number ends before the next cell
