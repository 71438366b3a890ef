"""The adaptive SGD family on one small problem (lecture notes: momentum, NAG, Adagrad,
RMSprop, Adadelta, Adam, AdamW).

Each optimizer is an optax-shaped ``(init, update)`` pair from ``dc.optim``; 300 steps on
the ill-conditioned quadratic F(x, y) = (x - 1)² + 10(y + 0.5)² from (-1, 1). When optax
is installed, each trajectory is compared with optax's optimizer of the same name and
settings: they must be equal to rounding.

Run: python examples/adam_family.py
"""

import numpy as np

import diffcheck as dc

STEPS = 300
SETTINGS = {
    "sgd": {"learning_rate": 0.04},
    "sgd momentum": {"learning_rate": 0.01, "momentum": 0.9},
    "sgd nesterov": {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
    "adagrad": {"learning_rate": 0.5},
    "rmsprop": {"learning_rate": 0.02},
    "adadelta": {"learning_rate": 5.0},
    "adam": {"learning_rate": 0.05},
    "adamw": {"learning_rate": 0.05, "weight_decay": 1e-3},
}


def run(make, F, x0, steps):
    import jax

    opt = make()

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(jax.grad(F)(x), state, x)
        x = x + updates
        return (x, state), F(x)

    (x, _), fs = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
    return x, fs


def main() -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    try:
        import optax
    except ImportError:
        optax = None
    F = lambda v: (v[0] - 1) ** 2 + 10 * (v[1] + 0.5) ** 2  # noqa: E731
    x0 = jnp.array([-1.0, 1.0])
    out = {}
    print(f"F(x0) = {float(F(x0)):.4g}; minimum 0 at (1, -0.5)")
    print(f"{'optimizer':<14} {'F after ' + str(STEPS):>14} {'x':>26} {'vs optax':>10}")
    for name, kw in SETTINGS.items():
        base = name.split()[0]
        x, fs = run(lambda b=base, k=kw: getattr(dc.optim, b)(**k), F, x0, STEPS)
        diff = None
        if optax is not None:
            _, ref = run(lambda b=base, k=kw: getattr(optax, b)(**k), F, x0, STEPS)
            diff = float(np.max(np.abs(np.asarray(fs) - np.asarray(ref))))
        shown = "n/a" if diff is None else f"{diff:.1e}"
        print(f"{name:<14} {float(fs[-1]):14.3e} {str(np.asarray(x).round(4).tolist()):>26} "
              f"{shown:>10}")
        out[name] = {"final": float(fs[-1]), "x": np.asarray(x).tolist(), "optax_diff": diff}
    return out


if __name__ == "__main__":
    main()
