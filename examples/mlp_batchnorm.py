"""A small MLP as in the lecture notes: Xavier/He initialisation, dropout, batch
normalisation with a hand-written backward pass verified by ``dc.check_gradient``, and
minibatch training with ``dc.optim.fit`` (Adam, shuffled epochs).

1. Initialisation: ``Var[w] = 1/n`` (Xavier) keeps the activation variance through a deep
   tanh stack, ``Var[w] = 2/n`` (He) through a ReLU stack; ``N(0, 1)`` weights blow it up.
2. Batch normalisation, ``BN(y) = gamma * (y - E_m[y]) / sqrt(Var_m[y] + eps) + beta``:
   its hand-written backward is checked; the classic bug (mean and variance treated as
   constants) is caught. The backward of the whole layer (linear, BN, tanh, dropout with a
   fixed mask, squared loss) is checked too.
3. Training: the same network in JAX, trained with ``fit``; dropout masks come from a key
   folded with the batch's sample indices, so every step draws a fresh mask.

Run: python examples/mlp_batchnorm.py
"""

import numpy as np

import diffcheck as dc

EPS = 1e-5


# -- 1. initialisation ----------------------------------------------------------------------
def activations(init: str, act, depth: int = 20, width: int = 256, seed: int = 0):
    """Activations after ``depth`` layers of width ``width``."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((512, width))
    for _ in range(depth):
        if init == "xavier":
            lim = np.sqrt(6.0 / (2 * width))  # Uniform(-a, a), Var = a**2/3 = 1/width
            W = rng.uniform(-lim, lim, (width, width))
        elif init == "he":
            W = rng.standard_normal((width, width)) * np.sqrt(2.0 / width)
        else:
            W = rng.standard_normal((width, width))
        h = act(h @ W)
    return h


# -- 2. batch normalisation and its hand-written backward ---------------------------------
def bn_forward(y, gamma, beta):
    mu = y.mean(axis=0)
    var = y.var(axis=0)
    xhat = (y - mu) / np.sqrt(var + EPS)
    return gamma * xhat + beta, (xhat, var)


def bn_backward(dout, gamma, cache):
    """d loss / d y from d loss / d BN(y), batch statistics included."""
    xhat, var = cache
    m = dout.shape[0]
    dxhat = dout * gamma
    inv = 1.0 / np.sqrt(var + EPS)
    return inv / m * (m * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))


def bn_backward_bug(dout, gamma, cache):
    """The classic bug: mean and variance treated as constants."""
    xhat, var = cache
    return dout * gamma / np.sqrt(var + EPS)


def layer_loss(W1, X, t, gamma, beta, w2, mask):
    h = X @ W1
    z, _ = bn_forward(h, gamma, beta)
    a = np.tanh(z) * mask
    return 0.5 * np.mean((a @ w2 - t) ** 2)


def layer_grad(W1, X, t, gamma, beta, w2, mask):
    """Hand-written backprop of ``layer_loss`` with respect to ``W1``."""
    h = X @ W1
    z, cache = bn_forward(h, gamma, beta)
    a = np.tanh(z) * mask
    r = (a @ w2 - t) / X.shape[0]
    da = np.outer(r, w2) * mask
    dz = da * (1.0 - np.tanh(z) ** 2)
    return X.T @ bn_backward(dz, gamma, cache)


def check_batchnorm(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((16, 5)) * 3 + 1
    gamma, beta = rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)
    G = rng.standard_normal((16, 5))  # the upstream gradient d loss / d BN(y)

    def f(y):
        return np.sum(bn_forward(y, gamma, beta)[0] * G)

    right = dc.check_gradient(f, lambda y: bn_backward(G, gamma, bn_forward(y, gamma, beta)[1]),
                              y)
    wrong = dc.check_gradient(f, lambda y: bn_backward_bug(G, gamma,
                                                           bn_forward(y, gamma, beta)[1]), y)
    X = rng.standard_normal((32, 4))
    t = rng.standard_normal(32)
    W1 = rng.standard_normal((4, 6)) * np.sqrt(1.0 / 4)
    g6, b6, w2 = rng.uniform(0.5, 2, 6), rng.standard_normal(6), rng.standard_normal(6)
    mask = (rng.uniform(size=(32, 6)) > 0.3) / 0.7  # inverted dropout, p = 0.3
    layer = dc.check_gradient(lambda W: layer_loss(W, X, t, g6, b6, w2, mask),
                              lambda W: layer_grad(W, X, t, g6, b6, w2, mask), W1)
    return {"bn_right": right, "bn_bug": wrong, "layer": layer}


# -- 3. training with fit ---------------------------------------------------------------------
def train(epochs: int = 40, seed: int = 0) -> dict:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (2048, 2)).astype(np.float32)
    y = (np.sin(3 * X[:, 0]) + X[:, 1] ** 2).astype(np.float32)
    idx = np.arange(len(X), dtype=np.uint32)
    k1, k2 = jax.random.split(jax.random.key(seed))
    width, p_drop = 64, 0.1
    params = {
        # Xavier for the tanh layer, He for the ReLU layer
        "W1": jax.random.uniform(k1, (2, width), minval=-1, maxval=1) * np.sqrt(6 / (2 + width)),
        "gamma": jnp.ones(width), "beta": jnp.zeros(width),
        "W2": jax.random.normal(k2, (width, width)) * np.sqrt(2 / width),
        "w3": jnp.zeros(width), "b3": jnp.zeros(()),
    }
    drop_key = jax.random.key(seed + 1)

    def forward(p, x, keep):
        h = x @ p["W1"]
        mu, var = h.mean(axis=0), h.var(axis=0)
        h = jnp.tanh(p["gamma"] * (h - mu) / jnp.sqrt(var + EPS) + p["beta"])
        h = jax.nn.relu(h @ p["W2"]) * keep / (1 - p_drop)
        return h @ p["w3"] + p["b3"]

    def loss(p, batch):
        x, t, i = batch
        keep = jax.random.bernoulli(jax.random.fold_in(drop_key, i[0]), 1 - p_drop,
                                    (x.shape[0], width))
        return jnp.mean((forward(p, x, keep) - t) ** 2)

    def full_loss(p):  # evaluation: no dropout
        return float(jnp.mean((forward(p, jnp.asarray(X), 1 - p_drop) - y) ** 2))

    before = full_loss(params)
    params, hist = dc.optim.fit(loss, params, (X, y, idx), dc.optim.adam(3e-3),
                                batch_size=64, epochs=epochs, key=jax.random.key(seed))
    return {"loss_before": before, "loss_after": full_loss(params),
            "epoch_loss": [float(v) for v in hist.epoch_loss]}


def main() -> dict:
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    sat_xavier = float(np.mean(np.abs(activations("xavier", np.tanh)) > 0.99))
    sat_normal = float(np.mean(np.abs(activations("normal", np.tanh)) > 0.99))
    relu_he = float(activations("he", relu).var())
    relu_normal = float(activations("normal", relu).var())
    print("after 20 layers of width 256:")
    print(f"  tanh units saturated (|h| > 0.99): Xavier {sat_xavier:.1%}, N(0,1) {sat_normal:.1%}")
    print(f"  ReLU activation variance: He Var[w]=2/n {relu_he:.3g}, N(0,1) {relu_normal:.3g}")

    checks = check_batchnorm()
    for name, res in checks.items():
        print(f"check_gradient {name}: {'OK' if res.ok else 'WRONG'} "
              f"(max relative error {res.max_rel_error:.2g})")
    print("the bn_bug check is meant to fail (its backward treats the batch mean and variance "
          f"as constants), and it does: {str(checks['bn_bug']).splitlines()[0]}")

    trained = train()
    print(f"training with fit (Adam, shuffled minibatches of 64): loss "
          f"{trained['loss_before']:.4f} -> {trained['loss_after']:.4f}")
    return {
        "tanh_saturated_xavier": sat_xavier, "tanh_saturated_normal": sat_normal,
        "var_relu_he": relu_he, "var_relu_normal": relu_normal,
        "bn_right_ok": checks["bn_right"].ok, "bn_bug_ok": checks["bn_bug"].ok,
        "bn_bug_rel_error": checks["bn_bug"].max_rel_error, "layer_ok": checks["layer"].ok,
        **trained,
    }


if __name__ == "__main__":
    main()
