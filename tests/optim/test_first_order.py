import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import diffcheck.optim as dco

CASES = [
    ("sgd", dict(learning_rate=1e-3)),
    ("sgd", dict(learning_rate=1e-3, momentum=0.9)),
    ("sgd", dict(learning_rate=1e-3, momentum=0.9, nesterov=True)),
    ("adagrad", dict(learning_rate=0.1)),
    ("rmsprop", dict(learning_rate=1e-2)),
    ("rmsprop", dict(learning_rate=1e-2, momentum=0.5, nesterov=True)),
    ("adadelta", dict(learning_rate=1.0)),
    ("adam", dict(learning_rate=1e-2)),
    ("adam", dict(learning_rate=1e-2, b1=0.8, b2=0.99, eps=1e-6)),
    ("adamw", dict(learning_rate=1e-2, weight_decay=0.1)),
]


def rosen(p):
    x = p["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2) + jnp.sum(p["b"] ** 2)


def quad(p):
    return jnp.sum(p["x"] ** 2 * jnp.arange(1.0, 4.0)) + jnp.sum(p["b"] ** 2)


def _run(opt, fun, params, steps):
    def step(carry, _):
        p, s = carry
        g = jax.grad(fun)(p)
        u, s = opt.update(g, s, p)
        return (jax.tree.map(lambda a, b: a + b, p, u), s), fun(p)

    (p, _), fs = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return p, fs


def run(opt, fun, params, steps=30):
    return jax.jit(lambda p: _run(opt, fun, p, steps))(params)


def run_both(opt, ref, fun, params, steps=30):
    """Both trajectories from one compiled function (one compile per case, not two)."""
    return jax.jit(lambda p: (_run(opt, fun, p, steps), _run(ref, fun, p, steps)))(params)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("fun", [quad, rosen], ids=["parabola", "rosenbrock"])
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(CASES)])
def test_same_trajectory_as_optax(name, kw, fun, dtype):
    params = {"x": jnp.array([-1.2, 1.0, 0.5], dtype), "b": jnp.ones((2,), dtype)}
    (p_ours, f_ours), (p_ref, f_ref) = run_both(getattr(dco, name)(**kw),
                                                getattr(optax, name)(**kw), fun, params)
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    assert p_ours["x"].dtype == dtype
    np.testing.assert_allclose(f_ours, f_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(p_ours["x"], p_ref["x"], rtol=rtol, atol=rtol)
    assert float(f_ours[-1]) < float(f_ours[0])


def test_defaults_match_optax():
    import inspect

    for name in ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"]:
        ours = inspect.signature(getattr(dco, name)).parameters
        ref = inspect.signature(getattr(optax, name)).parameters
        for key, par in ours.items():
            assert key in ref, (name, key)
            assert par.default == ref[key].default, (name, key)


def test_schedules_match_optax():
    k = jnp.arange(0, 40)
    pairs = [
        (dco.exponential_decay(0.5, 7, 0.3), optax.exponential_decay(0.5, 7, 0.3)),
        (dco.exponential_decay(0.5, 7, 0.3, staircase=True, end_value=0.05),
         optax.exponential_decay(0.5, 7, 0.3, staircase=True, end_value=0.05)),
        (dco.cosine_decay_schedule(0.5, 30, alpha=0.1), optax.cosine_decay_schedule(0.5, 30, 0.1)),
        (dco.constant_schedule(0.2), optax.constant_schedule(0.2)),
    ]
    for ours, ref in pairs:
        np.testing.assert_allclose(jax.vmap(ours)(k), jax.vmap(ref)(k), rtol=1e-6)
    rm = dco.robbins_monro(1.0, decay_steps=2.0)
    assert float(rm(0)) == 1.0 and float(rm(2)) == pytest.approx(0.5)


def test_schedule_as_learning_rate_matches_optax():
    sched = dco.cosine_decay_schedule(0.1, 20)
    params = {"x": jnp.array([-1.2, 1.0, 0.5]), "b": jnp.ones(2)}
    np.testing.assert_allclose(run(dco.adam(sched), quad, params)[1],
                               run(optax.adam(optax.cosine_decay_schedule(0.1, 20)), quad,
                                   params)[1], rtol=1e-12)


def test_chain_and_apply_updates():
    opt = dco.chain(dco.scale_by_adam(), dco.scale_by_learning_rate(0.1))
    ref = optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(0.1))
    p = jnp.array([1.0, -2.0], jnp.float32)
    u1, _ = opt.update(p, opt.init(p))
    u2, _ = ref.update(p, ref.init(p))
    np.testing.assert_allclose(u1, u2)
    out = dco.apply_updates(p, jnp.array([0.5, 0.5], jnp.float64))
    assert out.dtype == jnp.float32 and out.tolist() == [1.5, -1.5]


def test_jitted_step_does_not_retrace():
    opt = dco.adam(1e-2)
    traces = []

    @jax.jit
    def step(p, s):
        traces.append(1)
        u, s = opt.update(jax.grad(quad)(p), s, p)
        return dco.apply_updates(p, u), s

    p = {"x": jnp.ones(3), "b": jnp.ones(2)}
    s = opt.init(p)
    p, s = step(p, s)
    p, s = step(p, s)
    assert len(traces) == 1


def test_iterate_average_weighted():
    s = dco.average_init(jnp.zeros(2))
    for x, w in [(1.0, 1.0), (4.0, 2.0)]:
        s = dco.average_update(s, jnp.full(2, x), w)
    assert np.allclose(s.mean, 3.0)
