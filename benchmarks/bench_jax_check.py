"""The cost of checking a large JAX model's gradient, against one jitted f + grad.

Run: ``python benchmarks/bench_jax_check.py [--hidden H] [--runs R]``. A two-layer MLP with
dict parameters (784 x H + H x 192 weights: about 1e6 parameters at the default H = 1024) on
a batch of 128 examples, in float32. Prints:

* one ``jax.jit(jax.value_and_grad(loss))`` call: cold (trace + compile + run) and warm;
* ``dc.check_grads(loss, (params,), modes=("rev",))`` (the gradient check that
  ``minimize(check=True)`` runs: JAX's VJP against float64 finite differences along a random
  direction, replayed in float64): cold (the first check of a function) and warm (a
  repeated check, at a new point: the parameters move as an optimizer would move them);
* both ratios, cold / cold and warm / warm (the target: within 20x one jitted f + grad);
* the same check with a planted bug (the gradient of one row of W1, 1024 entries, 1% off),
  which adds the bisection down to the entry. (One wrong entry among a million changes a
  random directional derivative by about 1e-9 relative: below what any check along random
  directions can see; an entry-by-entry reference needs AD, see docs/jax.md.)

Timings are wall-clock medians of ``--runs`` repetitions: each cold number on a fresh model
(new closures, so nothing compiled is reused), the warm ones interleaved (a check, then
jitted f + grad calls) so that a machine shared with other jobs slows both alike. The
check's repeated call reuses the programs compiled by the first (kept per function, like
``jax.jit``'s cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's diffcheck

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import diffcheck as dc  # noqa: E402


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


def check(loss, params):
    return dc.check_grads(loss, (params,), modes=("rev",))


def cold(hidden: int, runs: int) -> tuple[float, float]:
    """Medians of the first jitted f + grad and of the first check, each on a fresh model."""
    fg, ck = [], []
    for i in range(runs):
        loss, params = model(hidden, seed=i)
        vg = jax.jit(jax.value_and_grad(loss))
        fg.append(timed(lambda: jax.block_until_ready(vg(params))))  # noqa: B023
        loss, params = model(hidden, seed=i)
        ck.append(timed(lambda: check(loss, params)))  # noqa: B023
    return statistics.median(fg), statistics.median(ck)


def warm(hidden: int, runs: int) -> tuple[float, float, dc.GradsResult]:
    """Medians of a repeated jitted f + grad and of a repeated check (a new point each time,
    as in an optimizer's loop), interleaved."""
    loss, params = model(hidden)
    vg = jax.jit(jax.value_and_grad(loss))
    jax.block_until_ready(vg(params))
    res = check(loss, params)
    fg, ck = [], []
    for i in range(runs):
        p = jax.tree_util.tree_map(lambda v: v * (1 + 1e-3 * (i + 1)), params)  # noqa: B023
        t = time.perf_counter()
        res = check(loss, p)
        ck.append(time.perf_counter() - t)
        for _ in range(5):
            fg.append(timed(lambda: jax.block_until_ready(vg(p))))  # noqa: B023
    return statistics.median(fg), statistics.median(ck), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    loss, params = model(opts.hidden)
    n = sum(v.size for v in params.values())
    cold_fg, cold_ck = cold(opts.hidden, opts.runs)
    warm_fg, warm_ck, res = warm(opts.hidden, opts.runs)
    print(f"MLP with {n:,} parameters (float32, batch 128); medians of {opts.runs} runs")
    print(f"  jit(value_and_grad): cold {cold_fg:.3f} s, warm {warm_fg * 1e3:.1f} ms")
    print(f"  dc.check_grads rev:  cold {cold_ck:.3f} s, warm {warm_ck * 1e3:.1f} ms -> "
          f"{'OK' if res.ok else 'FAILED'} (max rel error {res.max_rel_error:.1e})")
    print(f"  cold check / cold (f + grad): {cold_ck / cold_fg:.1f}x (target: within 20x)")
    print(f"  warm check / warm (f + grad): {warm_ck / warm_fg:.1f}x (target: within 20x)")
    bad = planted(loss, "W1", (300,), 1.01)
    t = time.perf_counter()
    r = check(bad, params)
    print(f"  planted bug, W1[300, :] 1% off: {time.perf_counter() - t:.2f} s -> "
          f"{'OK' if r.ok else 'FAILED'}, worst {r.worst} (bisected to the entry)")


if __name__ == "__main__":
    main()
