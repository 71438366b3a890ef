import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffcheck.errors import UsageError
from diffcheck.optim import adam, fit, random_permutation
from diffcheck.optim.fit import _affine, _affine_key

N, D = 512, 4
X = jax.random.normal(jax.random.key(1), (N, D), jnp.float32)
W = jnp.arange(1.0, D + 1.0, dtype=jnp.float32)
Y = X @ W


def loss(w, batch):
    xb, yb = batch
    return jnp.mean((xb @ w - yb) ** 2)


OPT = adam(5e-2)


@pytest.mark.parametrize("sampling", ["shuffle", "replacement"])
def test_fit_least_squares(sampling):
    w, hist = fit(loss, jnp.zeros(D, jnp.float32), (X, Y), OPT, batch_size=32, epochs=15,
                  sampling=sampling, key=jax.random.key(0))
    assert hist.loss.shape == (15, N // 32)
    assert float(hist.epoch_loss[-1]) < 1e-2 * float(hist.epoch_loss[0])
    assert np.allclose(w, W, atol=5e-2)


def test_fit_accepts_optax_and_averaging():
    w, _ = fit(loss, jnp.zeros(D, jnp.float32), (X, Y), optax.sgd(0.05), batch_size=64,
               epochs=20, key=jax.random.key(0), average=True)
    assert np.allclose(w, W, atol=0.3)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1000, 1023])
def test_random_permutation_is_a_bijection(n):
    p = np.asarray(random_permutation(jax.random.key(n), n))
    assert sorted(p.tolist()) == list(range(n))


def test_shuffle_epochs_visit_every_example_once_in_fresh_order():
    n = 1000
    base = np.asarray(random_permutation(jax.random.key(3), n))
    orders = []
    for e in range(3):
        pos = _affine(_affine_key(jax.random.key(e), n), jnp.arange(n), n)
        order = base[np.asarray(pos)]
        assert sorted(order.tolist()) == list(range(n))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    assert abs(np.corrcoef(orders[0], orders[1])[0, 1]) < 0.2


def test_fit_bad_arguments():
    with pytest.raises(UsageError, match="sampling"):
        fit(loss, jnp.zeros(D), (X, Y), OPT, batch_size=8, epochs=1, sampling="x",
            key=jax.random.key(0))
    with pytest.raises(UsageError, match="first axis"):
        fit(loss, jnp.zeros(D), (X, Y[:10]), OPT, batch_size=8, epochs=1, key=jax.random.key(0))
    with pytest.raises(UsageError, match="divisible"):
        fit(loss, jnp.zeros(D), (X, Y), OPT, batch_size=7, epochs=1, key=jax.random.key(0),
            devices=jax.devices() * 2)


SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from diffcheck.optim import adam, fit
    assert len(jax.devices()) == 4
    X = jax.random.normal(jax.random.key(1), (256, 4), jnp.float32)
    Y = X @ jnp.arange(1.0, 5.0)
    loss = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    opt = adam(5e-2)
    kw = dict(batch_size=32, epochs=3, key=jax.random.key(0))
    w1, h1 = fit(loss, jnp.zeros(4), (X, Y), opt, **kw)
    w4, h4 = fit(loss, jnp.zeros(4), (X, Y), opt, devices=jax.devices(), **kw)
    np.testing.assert_allclose(w4, w1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h4.loss, h1.loss, rtol=1e-5, atol=1e-6)
    print("OK", float(jnp.max(jnp.abs(w4 - w1))))
""")


def test_fit_on_four_simulated_devices_equals_one_device():
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("OK")
