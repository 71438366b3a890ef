import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import X_QUAD, quadratic, rosenbrock, six_hump_camel

from diffcheck.errors import UsageError
from diffcheck.optim import format_iterations, minimize, problems
from diffcheck.optim import result as R

METHODS = ["gd", "newton", "newton-damped", "newton-trust", "bfgs", "lbfgs"]
PROBLEMS = {"quadratic": (1.0, X_QUAD), "rosenbrock": (0.0, jnp.ones(2))}


def quadratic_or_rosenbrock(x, w):
    """``quadratic`` (w = 1) or ``rosenbrock`` (w = 0): one traced function, so the two problems
    share one compiled solver per method and dtype (``w`` is a traced argument)."""
    return w * quadratic(x) + (1 - w) * rosenbrock(x)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("method", METHODS)
def test_method_converges(method, problem, dtype):
    w, x_star = PROBLEMS[problem]
    tol = 1e-3 if dtype == jnp.float32 else 1e-6
    res = minimize(quadratic_or_rosenbrock, jnp.array([-1.2, 1.0], dtype), method=method, tol=tol,
                   args=(jnp.asarray(w, dtype),))
    assert res.x.dtype == dtype and res.fun.dtype == dtype
    assert bool(res.success), res.message
    assert float(jnp.linalg.norm(res.jac)) <= tol
    assert np.allclose(res.x, x_star, atol=2e-2 if dtype == jnp.float32 else 1e-5)
    assert int(res.nfev) >= int(res.nit) >= 1


@pytest.mark.parametrize("linesearch", ["armijo", "wolfe"])
def test_linesearches_both_work_for_lbfgs(linesearch):
    res = minimize(rosenbrock, jnp.array([-1.2, 1.0, 1.0]), method="lbfgs", linesearch=linesearch)
    assert bool(res.success) and np.allclose(res.x, 1.0, atol=1e-4)


@pytest.mark.parametrize("method", ["gd", "bfgs", "lbfgs", "newton"])
def test_float32_noise_floor_is_stagnation_not_success(method):
    c = jnp.array([1.0, 10.0, 100.0], jnp.float32)
    fun = lambda x: 1.0 + jnp.sum(c * (x - 1.0 / 3.0) ** 2) + jnp.sum(x) ** 4 * 1e-3  # noqa: E731
    res = minimize(fun, jnp.array([-1.2, 1.0, 0.5], jnp.float32), method=method, tol=1e-12,
                   history=True)
    assert not bool(res.success)
    assert int(res.status) == R.STAGNATION, res.message
    f = np.asarray(res.history.f[: int(res.nit) + 1])
    last_progress = int(np.nonzero(np.diff(f) < 0)[0].max()) + 1
    assert int(res.nit) - last_progress <= 100
    assert float(jnp.linalg.norm(res.jac)) > 1e-12


def test_nonfinite_start_reports_status():
    res = minimize(lambda x: jnp.sum(jnp.log(x)), jnp.array([-1.0, 2.0]), method="bfgs")
    assert int(res.status) == R.NONFINITE and not bool(res.success)
    assert "NaN" in res.message


def test_nonfinite_trial_points_shrink_the_step():
    fun = lambda x: jnp.sum(x - jnp.log(x))  # noqa: E731  (NaN for x < 0)
    res = minimize(fun, jnp.array([20.0, 0.05]), method="newton")
    assert bool(res.success) and np.allclose(res.x, 1.0, atol=1e-6)


def test_singular_hessian_is_reported():
    res = minimize(lambda x: x[0] ** 2 + 0.0 * x[1], jnp.array([1.0, 1.0]), method="newton")
    assert int(res.status) == R.SINGULAR and not bool(res.success)


def test_newton_reports_saddle():
    res = minimize(lambda x: x[0] ** 2 - x[1] ** 2, jnp.array([1.0, 0.0]), method="newton")
    assert int(res.status) == R.SADDLE and not bool(res.success)
    assert "saddle" in res.message


def test_saddle_advice_fits_every_newton_method():
    """newton-damped at a saddle used to advise "use method='newton-damped'"."""
    res = minimize(lambda x: x[0] ** 2 - x[1] ** 2, jnp.zeros(2), method="newton-damped")
    assert int(res.status) == R.SADDLE
    assert "newton-damped" not in res.message and "newton-trust" in res.message


def test_damped_newton_detects_nonglobal_minimum_of_extended_rosenbrock():
    x0 = jnp.array([-1.2, 1.0, 1.0, 1.0, 1.0, 1.0])
    res = minimize(rosenbrock, x0, method="newton-damped", f_lower=0.0)
    assert abs(float(res.fun) - 3.97394) < 1e-4
    assert float(jnp.linalg.norm(res.jac)) <= 1e-5
    assert int(res.status) == R.LOCAL_MINIMUM and not bool(res.success)


def test_damped_newton_descends_on_nonconvex_and_newton_to_1e12():
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), 10)
    ext = lambda x: jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)  # noqa: E731
    for method in ("newton", "newton-damped"):
        res = minimize(ext, x0, method=method, tol=1e-8)
        assert bool(res.success) and float(res.fun) < 1e-12


def test_list_x0_is_one_array():
    """A list start reached fun as a list: (list - 1.0) raised a TypeError inside fun."""
    res = minimize(lambda x: jnp.sum((x - 1.0) ** 2), [-1.2, 1.0], method="bfgs")
    assert bool(res.success) and res.x.shape == (2,) and np.allclose(res.x, 1.0)


def test_float64_numpy_start_without_x64_warns_once():
    with jax.enable_x64(False):
        with pytest.warns(UserWarning, match="x64 mode is off"):
            res = minimize(lambda x: jnp.sum((x - 1.0) ** 2), np.array([3.0, 2.0]),
                           method="lbfgs")
    assert res.x.dtype == jnp.float32 and bool(res.success)


def test_unbounded_objective_is_reported_as_such():
    """x^2 - y^2 from (1, 1e-3) ended at f = -1e308, ||g|| = inf with "Line search failed"."""
    res = minimize(lambda x: x[0] ** 2 - x[1] ** 2, jnp.array([1.0, 1e-3]), method="bfgs")
    assert int(res.status) == R.UNBOUNDED and not bool(res.success)
    assert "unbounded below" in res.message
    assert float(res.fun) < -1e15 and np.all(np.isfinite(res.x))


@pytest.mark.parametrize("method", ["bfgs", "newton"])
def test_float32_badly_scaled_floor_is_stagnation(method):
    """Brown's badly scaled function in float32 reaches its minimum to float32 resolution and
    stopped with "Line search failed ... is the gradient consistent with the function?"."""
    p = problems.problem("brown_badly_scaled")
    res = minimize(p.fun, jnp.asarray(p.x0, jnp.float32), method=method)
    assert int(res.status) == R.STAGNATION, res.message
    assert np.allclose(res.x, [1e6, 2e-6], rtol=1e-6)


def test_line_search_failure_with_wrong_gradient():
    @jax.custom_jvp
    def f(x):
        return jnp.sum(x**2)

    f.defjvp(lambda p, t: (f(p[0]), -2.0 * jnp.vdot(p[0], t[0])))  # wrong sign
    res = minimize(f, jnp.array([1.0, 2.0]), method="gd")
    assert int(res.status) == R.LINESEARCH_FAILED and not bool(res.success)


def test_maxiter():
    res = minimize(rosenbrock, jnp.array([-1.2, 1.0]), method="gd", maxiter=5)
    assert int(res.status) == R.MAXITER and int(res.nit) == 5 and not bool(res.success)


def test_bad_arguments_raise_usage_error():
    with pytest.raises(UsageError, match="unknown method"):
        minimize(quadratic, jnp.zeros(2), method="cg")
    with pytest.raises(UsageError, match="c1"):
        minimize(quadratic, jnp.zeros(2), method="gd", c1=0.6)
    with pytest.raises(UsageError, match="line search"):
        minimize(quadratic, jnp.zeros(2), linesearch="exact")


def test_pytree_x0_and_args():
    fun = lambda p, c: jnp.sum((p["a"] - c) ** 2) + (p["b"] - 2.0) ** 2  # noqa: E731
    res = minimize(fun, {"a": jnp.zeros(3), "b": jnp.array(0.0)}, method="bfgs",
                   args=(jnp.arange(3.0),))
    assert bool(res.success)
    assert np.allclose(res.x["a"], [0, 1, 2], atol=1e-6) and abs(float(res.x["b"]) - 2) < 1e-6


def test_jit_and_vmap_multistart_six_hump_camel():
    starts = jax.random.uniform(jax.random.key(0), (2000, 2), minval=jnp.array([-3.0, -2.0]),
                                maxval=jnp.array([3.0, 2.0]))
    res = jax.jit(jax.vmap(lambda s: minimize(six_hump_camel, s, method="bfgs")))(starts)
    ok = np.asarray(res.success)
    assert ok.all()
    minima = np.unique(np.round(np.asarray(res.x)[ok], 3), axis=0)
    assert len(minima) == 6
    assert np.allclose(np.sort(np.abs(minima[:, 0])), [0.09, 0.09, 1.607, 1.607, 1.704, 1.704],
                       atol=2e-3)
    assert isinstance(res.message, list) and len(res.message) == 2000
    x = jax.jit(lambda x0: minimize(six_hump_camel, x0, method="lbfgs").x)(jnp.array([0.1, 0.5]))
    assert np.allclose(x, [-0.0898, 0.7127], atol=1e-3)


def test_vmap_over_problem_data_newton():
    targets = jnp.linspace(-1.0, 1.0, 4)[:, None] * jnp.ones((4, 3))
    fun = lambda x, t: jnp.sum((x - t) ** 4 + (x - t) ** 2)  # noqa: E731
    res = jax.vmap(lambda t: minimize(fun, jnp.zeros(3), method="newton", args=(t,)))(targets)
    assert np.asarray(res.success).all() and np.allclose(res.x, targets, atol=1e-6)


def test_no_retrace_on_second_call():
    traces = []

    def fun(x):
        traces.append(1)
        return jnp.sum((x - 1.0) ** 2)

    minimize(fun, jnp.zeros(3), method="lbfgs")
    n = len(traces)
    res = minimize(fun, jnp.ones(3) * 5.0, method="lbfgs")
    assert len(traces) == n and bool(res.success)


def test_history_and_iteration_table():
    res = minimize(rosenbrock, jnp.array([-1.2, 1.0]), method="newton", history=True, maxiter=50)
    h = res.history
    nit = int(res.nit)
    assert h.f.shape == (51,) and h.x.shape == (51, 2)
    assert np.all(np.isfinite(h.f[: nit + 1])) and np.all(np.isnan(h.f[nit + 1:]))
    assert float(h.f[nit]) == pytest.approx(float(res.fun))
    assert np.all(np.diff(np.asarray(h.f[: nit + 1])) <= 0)  # monotone descent
    table = format_iterations(res)
    assert len(table.splitlines()) == nit + 2 and "||g||" in table
    e = np.linalg.norm(np.asarray(h.x[: nit + 1]) - 1.0, axis=1)
    assert R.observed_order(e[-4:])[-1] > 1.8  # quadratic at the end


def test_history_jits_and_vmaps():
    run = jax.jit(jax.vmap(lambda x0: minimize(quadratic, x0, method="bfgs", history=True,
                                               maxiter=20)))
    res = run(jnp.stack([jnp.zeros(2), jnp.ones(2)]))
    assert res.history.f.shape == (2, 21)


@pytest.mark.parametrize("method", ["lbfgs", "newton-damped"])
def test_float64_constants_in_fun_keep_the_solve_in_float32(method):
    """With x64 on, a float64 constant inside fun would promote f; the solve stays in x0's
    dtype (a while_loop carry cannot change dtype)."""
    target = jnp.array([1.0, 2.0], jnp.float64)
    res = minimize(lambda x: jnp.sum((x - target) ** 2), jnp.zeros(2, jnp.float32), method=method)
    assert res.x.dtype == res.fun.dtype == res.jac.dtype == jnp.float32
    assert bool(res.success) and np.allclose(res.x, [1.0, 2.0], atol=1e-5)
