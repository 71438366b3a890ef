"""The cost of checking a large JAX model's gradient, against one jitted f + grad.

Run: ``python benchmarks/bench_jax_check.py [--hidden H]``. A two-layer MLP with dict
parameters (784 x H + H x 192 weights: about 1e6 parameters at the default H = 1024) on a
batch of 128 examples, in float32. Prints:

* one ``jax.jit(jax.value_and_grad(loss))`` call: cold (trace + compile + run) and warm;
* ``dc.check_grads(loss, (params,), modes=("rev",))`` (the gradient check that
  ``minimize(check=True)`` runs: JAX's VJP against float64 finite differences along a random
  direction, replayed in float64): cold and a second call;
* the ratios (the target: within 20x one jitted f + grad);
* the same check with a planted bug (the gradient of one row of W1, 1024 entries, 1% off),
  which adds the bisection down to the entry. (One wrong entry among a million changes a
  random directional derivative by about 1e-9 relative: below what any check along random
  directions can see; an entry-by-entry reference needs AD, see docs/jax.md.)

Timings are wall-clock on whatever machine runs it; a machine shared with other jobs makes
them noisy, so the best of several runs is printed for the warm numbers. The check's second
call reuses the programs compiled by the first (kept per function, like ``jax.jit``'s cache).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import diffcheck as dc


def model(hidden: int, seed: int = 0):
    r = np.random.default_rng(seed)
    params = {"W1": r.standard_normal((784, hidden)) / 28, "b1": np.zeros(hidden),
              "W2": r.standard_normal((hidden, 192)) / np.sqrt(hidden), "b2": np.zeros(192)}
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    X = jnp.asarray(r.standard_normal((128, 784)), jnp.float32)
    y = jnp.asarray(r.integers(0, 192, 128))

    def loss(p):
        h = jax.nn.gelu(X @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(128), y])
    return loss, params


def planted(loss, key: str, idx: tuple[int, ...], factor: float):
    @jax.custom_vjp
    def tap(p):
        return p
    tap.defvjp(lambda p: (p, None), lambda _, g: ({**g, key: g[key].at[idx].multiply(factor)},))
    return lambda p: loss(tap(p))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    opts = ap.parse_args()
    loss, params = model(opts.hidden)
    n = sum(v.size for v in params.values())
    vg = jax.jit(jax.value_and_grad(loss))
    cold_fg = timed(lambda: jax.block_until_ready(vg(params)))
    warm_fg = min(timed(lambda: jax.block_until_ready(vg(params))) for _ in range(5))
    res = None

    def check():
        nonlocal res
        res = dc.check_grads(loss, (params,), modes=("rev",))
    cold_ck = timed(check)
    warm_ck = min(timed(check) for _ in range(3))
    print(f"MLP with {n:,} parameters (float32, batch 128)")
    print(f"  jit(value_and_grad): cold {cold_fg:.3f} s, warm {warm_fg * 1e3:.1f} ms")
    print(f"  dc.check_grads rev:  cold {cold_ck:.3f} s, second call {warm_ck:.3f} s -> "
          f"{'OK' if res.ok else 'FAILED'} (max rel error {res.max_rel_error:.1e})")
    print(f"  ratio check / (f + grad): cold {cold_ck / cold_fg:.1f}x, second call / cold "
          f"{warm_ck / cold_fg:.1f}x, second call / warm {warm_ck / warm_fg:.0f}x")
    bad = planted(loss, "W1", (300,), 1.01)
    t = time.perf_counter()
    r = dc.check_grads(bad, (params,), modes=("rev",))
    print(f"  planted bug, W1[300, :] 1% off: {time.perf_counter() - t:.2f} s -> "
          f"{'OK' if r.ok else 'FAILED'}, worst {r.worst} (bisected to the entry)")


if __name__ == "__main__":
    main()
