"""Checks of JAX code: dc.check_grads on custom rules, JAX functions in the NumPy checks.

Each check compiles two small programs; the tests share cases to keep the compiles few.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads as jax_check_grads

import diffcheck as dc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from jax_custom_rules import gelu, logits, logsumexp  # noqa: E402 - the example's rules


def softplus_rule(bwd_factor=1.0):
    """softplus with a custom_vjp whose backward is sigmoid(x) * bwd_factor."""
    @jax.custom_vjp
    def softplus(x):
        return jnp.logaddexp(x, 0.0)

    def fwd(x):
        return softplus(x), x

    def bwd(x, g):
        return (g * jax.nn.sigmoid(x) * bwd_factor,)
    softplus.defvjp(fwd, bwd)
    return softplus


X = np.linspace(-3.0, 3.0, 7)


# -- custom rules, right and wrong, in each dtype ----------------------------------------------

@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
def test_custom_vjp_right_passes_and_wrong_is_named(dtype):
    x = jnp.asarray(X, dtype)
    right = dc.check_grads(softplus_rule(), (x,), order=1)
    assert right.ok and bool(right), str(right)
    assert right.mode("JVP").skipped and "custom_vjp" in right.mode("JVP").skipped
    assert right.dtype == jnp.dtype(dtype).name and "replayed in float64" in str(right)
    wrong = dc.check_grads(softplus_rule(1.0 + 2 ** -6), (x,), order=1)  # 1.6% off
    assert not wrong.ok and not bool(wrong)
    assert wrong.worst.startswith("args[0][") and "VJP is wrong" in str(wrong)
    assert wrong.mode("VJP").n_bad > 0 and wrong.max_rel_error > 1e-3


def test_float16_rule_below_its_rounding_is_still_caught():
    """A 1e-4 relative bug is invisible in float16 (eps 1e-3) but not in the float64 replay."""
    x = jnp.asarray(X, jnp.float16)
    r = dc.check_grads(softplus_rule(1.0 + 1e-4), (x,), modes=("rev",))
    assert not r.ok and r.mode("VJP").replay_rel_error > 5e-5


def test_nonfinite_rule_in_float16_is_flagged():
    @jax.custom_vjp
    def sp(x):
        return jnp.logaddexp(x, 0.0)
    sp.defvjp(lambda x: (sp(x), x), lambda x, g: (g * jnp.exp(x) / (1 + jnp.exp(x)),))
    x = jnp.asarray(np.linspace(-14, 14, 8), jnp.float16)  # exp(14) overflows float16
    r = dc.check_grads(sp, (x,), modes=("rev",))
    assert not r.ok and r.worst == "args[0][7]"


def test_custom_jvp_gelu_tanh_derivative_caught_where_jax_misses_it():
    x = jnp.asarray(X, jnp.float32)
    with jax.enable_x64(False):  # JAX's default configuration (tests/optim switches it on)
        jax_check_grads(gelu(tanh_derivative=True), (x,), order=1)  # no complaint
    r = dc.check_grads(gelu(tanh_derivative=True), (x,), order=1)
    assert not r.ok and {m.label for m in r.modes if not m.ok} == {"JVP", "VJP"}
    assert r.worst is not None and r.worst.startswith("args[0][")
    assert dc.check_grads(gelu(), (x,), order=1).ok


def test_correct_float32_rule_jax_test_util_rejects_and_dc_accepts():
    """Log-sum-exp of logits around 30 (|f| ~ 650): a correct custom_jvp rule."""
    lse = logsumexp()

    def f(x):
        return jnp.sum(lse(x))
    x = logits(np.float32)
    assert abs(float(f(x))) > 600
    with jax.enable_x64(False), pytest.raises(AssertionError):
        jax_check_grads(f, (x,), order=1)
    r = dc.check_grads(f, (x,), order=1)
    assert r.ok, str(r)
    assert r.max_rel_error < 1e-5  # as computed in float32


# -- pytrees, localisation, order 2 --------------------------------------------------------------

def mlp_loss(params, X, y):
    h = jnp.tanh(X @ params["W1"] + params["b1"])
    return jnp.mean((h @ params["W2"] + params["b2"] - y) ** 2)


def _mlp(n_in, n_hidden, seed=0):
    r = np.random.default_rng(seed)
    params = {"W1": jnp.asarray(r.standard_normal((n_in, n_hidden)) / 2, jnp.float32),
              "b1": jnp.zeros(n_hidden, jnp.float32),
              "W2": jnp.asarray(r.standard_normal((n_hidden, 1)) / 2, jnp.float32),
              "b2": jnp.zeros(1, jnp.float32)}
    return params, jnp.asarray(r.standard_normal((8, n_in)), jnp.float32), \
        jnp.asarray(r.standard_normal((8, 1)), jnp.float32)


def _one_entry_wrong(loss, where, factor):
    """loss with a custom_vjp identity on params whose backward scales one entry."""
    key, idx = where

    @jax.custom_vjp
    def tap(p):
        return p

    def bwd(_, g):
        return ({**g, key: g[key].at[idx].multiply(factor)},)
    tap.defvjp(lambda p: (p, None), bwd)
    return lambda p, *a: loss(tap(p), *a)


@pytest.mark.parametrize("n_in, n_hidden", [(3, 4), (20, 12)])  # every entry / bisection
def test_dict_params_wrong_entry_is_localised(n_in, n_hidden):
    params, X, y = _mlp(n_in, n_hidden)
    f = _one_entry_wrong(mlp_loss, ("W1", (2, 3)), 1.01)
    r = dc.check_grads(f, (params, X, y), modes=("rev",))
    assert not r.ok and r.worst == "args[0]['W1'][2, 3]", str(r)
    assert "args[0]['W1'][2, 3]" in str(r)
    assert r.mode("VJP").localised == (n_in * n_hidden + 2 * n_hidden + 1 + 8 * n_in + 8 > 128)
    good = dc.check_grads(mlp_loss, (params, X, y))
    assert good.ok, str(good)


def test_list_of_tuples_and_tuple_outputs():
    layers = [(jnp.ones((2, 3)) * 0.3, jnp.zeros(3)), (jnp.ones((3, 1)) * -0.2, jnp.ones(1))]

    def f(layers, x):
        h = x
        for W, b in layers:
            h = jnp.tanh(h @ W + b)
        return h.sum(), {"hidden": h}
    r = dc.check_grads(f, (layers, jnp.array([0.5, -1.0])))
    assert r.ok and "[0][1][0]" in r.layout and "2 entries" in r.layout


def test_integer_leaves_are_held_fixed():
    def f(p, n):
        return jnp.sum(p["w"] ** n) * p["k"]
    r = dc.check_grads(f, ({"w": jnp.array([1.0, 2.0]), "k": 3}, 3))
    assert r.ok and "2 entries" in r.layout


def test_order_two_sees_a_rule_wrong_only_in_its_derivative():
    @jax.custom_jvp
    def th(x):
        return jnp.tanh(x)

    @th.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        y = th(x)
        return y, (1 - jax.lax.stop_gradient(y) ** 2) * t  # right value, wrong derivative

    x = jnp.array([0.3, -0.8, 1.1])
    assert dc.check_grads(th, (x,), order=1).ok
    r = dc.check_grads(th, (x,), order=2, modes=("fwd",))
    assert not r.ok and [m.label for m in r.modes] == ["JVP", "JVP of JVP"]
    assert r.mode("JVP").ok and not r.mode("JVP of JVP").ok
    assert r.worst.startswith("args[0][")


# -- the drop-in arguments -----------------------------------------------------------------------

def test_drop_in_arguments_eps_and_per_dtype_tolerances():
    x = jnp.asarray(X, jnp.float32)
    f = softplus_rule(1.01)
    assert not dc.check_grads(f, (x,), 1, ("rev",), eps=1e-3).ok
    assert dc.check_grads(f, (x,), 1, ("rev",), rtol={np.float32: 0.05}).ok
    assert dc.check_grads(f, (x,), 1, ("rev",), rtol={"float32": 0.05}).ok
    assert not dc.check_grads(f, (x,), 1, ("rev",), rtol={jnp.float16: 0.05}).ok  # other dtype
    assert dc.check_grads(f, (x,), 1, ("rev",), atol=0.05).ok
    with pytest.raises(AssertionError, match="VJP is wrong"):
        dc.assert_grads(f, (x,), 1, ("rev",))
    assert dc.assert_grads(softplus_rule(), (x,), 1, ("rev",)).ok


def test_only_fwd_on_a_custom_vjp_is_skipped_not_failed():
    r = dc.check_grads(softplus_rule(), (jnp.asarray(X, jnp.float32),), modes=("fwd",))
    assert r.ok and "nothing was checked" in str(r)


def test_bad_arguments_are_usage_errors():
    with pytest.raises(dc.UsageError, match="tuple of arguments"):
        dc.check_grads(jnp.sin, jnp.ones(3))
    with pytest.raises(dc.UsageError, match="modes"):
        dc.check_grads(jnp.sin, (jnp.ones(3),), modes=("sideways",))
    with pytest.raises(dc.UsageError, match="order"):
        dc.check_grads(jnp.sin, (jnp.ones(3),), order=0)
    with pytest.raises(dc.UsageError, match="could not be evaluated"):
        dc.check_grads(lambda x: x @ jnp.ones(4), (jnp.ones(3),))



@pytest.mark.parametrize("args, kw, match", [
    (("abc",), {}, r"args\[0\] = 'abc' \(type str\) is not a number"),  # was a TypeError
    (({"a": jnp.ones(2), "s": object()},), {}, r"args\[0\]\['s'\] = .* is not a number"),
    ((jnp.ones(2),), {"rtol": float("nan")}, "finite numbers >= 0"),  # was FAILED, tol nan
    ((jnp.ones(2),), {"atol": -1.0}, "finite numbers >= 0"),
    ((jnp.ones(2),), {"rtol": {np.float16: "x"}}, "finite numbers >= 0"),  # any dtype's
])
def test_bad_leaves_and_tolerances_are_usage_errors(args, kw, match):
    with pytest.raises(dc.UsageError, match=match):
        dc.check_grads(jnp.sin, args, **kw)


# -- JAX functions in the NumPy checks -----------------------------------------------------------

def test_check_gradient_of_a_jax_function_with_a_custom_rule():
    """The issue's reproduction: f in jax.numpy with a custom_vjp softplus inside."""
    for factor, ok in ((1.0, True), (1.01, False)):
        sp = softplus_rule(factor)

        def f(x, sp=sp):
            return jnp.sum(sp(x) * x)
        with jax.enable_x64(False):  # x float64 NumPy, JAX computes in float32 by default
            r = dc.check_gradient(f, jax.grad(f), X)
        assert r.ok == ok, str(r)
        assert r.dtype == "float32" and isinstance(r.worst_index, tuple)


def test_check_gradient_jacobian_hessian_of_jax_dict_model():
    params, X_, y = _mlp(3, 4)

    def loss(params):
        return mlp_loss(params, X_, y)
    r = dc.check_gradient(loss, jax.grad(loss), params)
    assert r.ok and set(r.reference) == set(params), str(r)
    bad = lambda p: {**jax.grad(loss)(p), "b1": jnp.zeros(4)}  # noqa: E731
    r = dc.check_gradient(loss, bad, params)
    assert not r.ok and r.worst_index.startswith("params['b1']")

    def out(params):
        return jnp.tanh(X_[:2] @ params["W1"] + params["b1"]).ravel()
    assert dc.check_jacobian(out, jax.jacrev(out), params).ok
    r = dc.check_jacobian(out, lambda p: {**jax.jacrev(out)(p), "b1": jnp.zeros((8, 4))},
                          params)
    assert not r.ok and "wrt params['b1']" in r.worst_index

    small = {"a": jnp.array([0.3, -0.2]), "c": jnp.array(0.7)}

    def s(p):
        return jnp.sum(jnp.sin(p["a"]) * p["c"] ** 2)
    assert dc.check_hessian(s, jax.hessian(s), small).ok
    wrong = lambda p: {**jax.hessian(s)(p), "c": {"a": jnp.zeros(2), "c": jnp.array(1.0)}}  # noqa: E731
    r = dc.check_hessian(s, wrong, small)
    assert not r.ok and r.worst_index.startswith("p['c'], p[")


def test_mixed_precision_casts_are_removed_for_the_reference():
    @jax.custom_vjp
    def dense(W, x):
        return (x.astype(jnp.bfloat16) @ W.astype(jnp.bfloat16)).astype(x.dtype)

    def bwd(res, g, transpose=True):
        W, x = res
        gb = g.astype(jnp.bfloat16)
        return ((x.astype(jnp.bfloat16).T @ gb).astype(W.dtype),
                (gb @ W.T.astype(jnp.bfloat16)).astype(x.dtype))
    dense.defvjp(lambda W, x: (dense(W, x), (W, x)), bwd)
    r = np.random.default_rng(0)
    args = (jnp.asarray(r.standard_normal((4, 4)), jnp.float32),
            jnp.asarray(r.standard_normal((3, 4)), jnp.float32))
    res = dc.check_grads(lambda W, x: jnp.sum(jnp.tanh(dense(W, x))), args, modes=("rev",))
    assert res.ok and "casts to bfloat16" in str(res), str(res)


def test_kinks_a_valid_subgradient_passes_and_another_value_does_not():
    relu = lambda x: jnp.maximum(x, 0.0)  # noqa: E731
    x = jnp.array([0.0, 1.0, -2.0])  # a kink at x[0]
    r = dc.check_grads(lambda x: jnp.sum(relu(x) * jnp.array([1.0, 2.0, 3.0])), (x,))
    assert r.ok and "kink" in str(r)

    @jax.custom_jvp
    def steep(x):
        return jnp.maximum(x, 0.0)
    steep.defjvp(lambda p, t: (steep(p[0]), jnp.where(p[0] >= 0, 1.5, 0.0) * t[0]))
    r = dc.check_grads(lambda x: jnp.sum(steep(x)), (x,))  # 1.5 at 0: outside [0, 1]
    assert not r.ok and r.worst == "args[0][0]"
    assert dc.check_gradient(lambda x: jnp.sum(relu(x)), jax.grad(lambda x: jnp.sum(relu(x))),
                             np.array([0.0, 1.0, -2.0])).ok


def test_a_rule_jax_cannot_evaluate_is_a_failure_and_bad_points_are_domain_errors():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)
    f.defvjp(lambda x: (f(x), x), lambda x, g: (jnp.zeros(2),))  # wrong shape
    r = dc.check_grads(f, (jnp.ones(3),), modes=("rev",))
    assert not r.ok and "JAX raised evaluating VJP" in str(r)
    with pytest.raises(dc.DomainError, match=r"args\[0\]\[1\]"):
        dc.check_grads(jnp.sin, (jnp.array([1.0, np.nan]),))
    with pytest.raises(dc.DomainError, match="not finite"):
        dc.check_grads(jnp.log, (jnp.array([1.0, -1.0]),))


def test_computed_in_the_least_precise_of_x_f_and_yours():
    """f casts to float32 inside; the hand-written NumPy gradient is float64."""
    def f(v):
        return jnp.sum(jnp.sin(jnp.asarray(v, jnp.float32)) ** 2)
    g = lambda v: np.sin(2 * v)  # noqa: E731
    x = np.array([0.3, -1.1, 0.7])
    r = dc.check_gradient(f, g, x)
    assert r.ok and r.dtype == "float32", str(r)
    assert not dc.check_gradient(f, lambda v: g(v) * 1.01, x).ok


# -- large inputs: the warm path of a million-parameter check ---------------------------------

def test_large_inputs_reuse_host_buffers_and_stay_right():
    """Above 1e5 inputs a repeated check reuses its host buffers (x, scale, directions) and
    its compiled programs; the reuse must not leak one check's numbers into the next."""
    from diffcheck import jaxcheck

    n = 150_000
    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, n), jnp.float32)

    def f(v):
        return jnp.sum(jnp.sin(v) * v)

    @jax.custom_vjp
    def tap(v):
        return v

    tap.defvjp(lambda v: (v, None), lambda _, g: (g.at[12345].multiply(1.1),))
    first = dc.check_grads(f, (x,), modes=("rev",))
    buf = jaxcheck._scratch("x", (n,))
    kept = next(c for c in jaxcheck._COMPILED.values() if c.fn.label == "f" and
                c.wide.x.shape == (n,))
    jits = dict(kept.wide._jits)
    bad = dc.check_grads(lambda v: f(tap(v)), (x * 1.01,), modes=("rev",))
    again = dc.check_grads(f, (x * 0.99,), modes=("rev",))
    assert jaxcheck._scratch("x", (n,)) is buf and buf.ctypes.data % 64 == 0
    assert kept.wide._jits == jits  # the same compiled programs, none added
    assert first.ok and again.ok, str(again)
    assert not bad.ok and bad.worst == "args[0][12345]", str(bad)
    assert "1 random direction" in str(again)


def test_sequential_ladder_evaluates_the_same_points():
    from diffcheck.engines.jaxfd import Reference, x64

    def F(v):
        return jnp.sin(v) * jnp.sum(v ** 2)

    x, t = np.linspace(0.1, 1.0, 5), np.linspace(-1.0, 1.0, 5)
    ref = Reference(x, levels=3)
    with x64():
        for cs in (True, False):
            batched = jax.jit(ref.ladder(F, complex_step=cs))(t, x)
            one_by_one = jax.jit(ref.ladder(F, complex_step=cs, sequential=True))(t, x)
            np.testing.assert_allclose(one_by_one, batched, rtol=1e-14, atol=0)
    along = ref.finish(t[None], np.asarray(one_by_one)[None])  # the real ladder's values
    exact = np.cos(x) * np.sum(x ** 2) * t + np.sin(x) * 2 * (x @ t)
    assert np.all(np.abs(along.value[0] - exact) <= along.error[0])


def test_program_takes_device_arrays_and_batches_of_one():
    from diffcheck.engines.jaxfd import Part, Program, to_device

    prog = Program({"a": Part(lambda r, x: r * x, jnp.float32, 1)}, np.arange(3.0),
                   wide=False, x_dtype=jnp.float32, widths={"a": 3})
    host = prog(a=np.ones((2, 3)))["a"]
    dev = prog(at=jnp.arange(1.0, 4.0), a=to_device(np.full((1, 3), 2.0), jnp.float32))["a"]
    np.testing.assert_array_equal(host, [[0.0, 1.0, 2.0]] * 2)
    np.testing.assert_array_equal(dev, [[2.0, 4.0, 6.0]])


def test_blockwise_host_passes_match_the_direct_formulas():
    from diffcheck import jaxcheck
    from diffcheck.pytree import Flat

    r = np.random.default_rng(1)
    X, X64, T = r.standard_normal((3, 2, 70_001))
    s, s64, size = jaxcheck._dots(X, X64, T)
    np.testing.assert_allclose(s, np.sum(X * T, axis=1), rtol=1e-12)
    np.testing.assert_allclose(s64, np.sum(X64 * T, axis=1), rtol=1e-12)
    np.testing.assert_allclose(size, np.sum(np.abs(X64 * T), axis=1), rtol=1e-12)
    flat = Flat(("['a']", "['b']"), ((40_000,), (30_001,)),
                (np.dtype(np.float32), jnp.dtype(jnp.bfloat16)), lambda leaves: None)
    V = r.standard_normal((2, 70_001))
    want = np.concatenate([V[:, :40_000].astype(np.float32),
                           V[:, 40_000:].astype(jnp.bfloat16)], axis=1).astype(np.float64)
    np.testing.assert_array_equal(jaxcheck._round(flat, V), want)
    np.testing.assert_array_equal(jaxcheck._round(flat, V.copy(), copy=False), want)
