"""Reverse mode on plain NumPy against autograd, and the cost of check_gradient.

Run: ``python benchmarks/bench_numpy.py``. Prints, for n = 1e3, 1e5, 1e6:

* the time of one reverse-mode gradient by diffcheck (``dc.gradient(f, x)``) and by
  autograd (``autograd.grad``) on the same function body (written once, run with
  ``numpy`` and ``autograd.numpy``), and their ratio (below 1: diffcheck is faster);
* the time of ``dc.check_gradient(f, grad, x)`` over the time of one ``f(x)`` plus one
  hand-written ``grad(x)`` (the target is 10 or less at n = 1e6).

Each timing is the best of several repeats, all in the same process.
"""

from __future__ import annotations

import time

import numpy as np

import diffcheck as dc


def make_loss(xp):
    """A regularised least-squares model, elementwise and reduced, in module ``xp``."""
    def f(x, c, b):
        r = xp.tanh(x) * c - b
        return 0.5 * xp.sum(r * r) + 0.1 * xp.sum(xp.log1p(x * x)) + 0.01 * xp.mean(xp.exp(-x))
    return f


def grad_loss(x, c, b):
    t = np.tanh(x)
    r = t * c - b
    return r * c * (1 - t * t) + 0.2 * x / (1 + x * x) - 0.01 * np.exp(-x) / x.size


def interleaved(fns: dict, repeats: int) -> dict:
    """Best time of each function, the calls interleaved so load changes hit all alike."""
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def run(n: int, f_np, f_ag) -> dict:
    """Timings at size ``n``."""
    import autograd

    rng = np.random.default_rng(0)
    x, c, b = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)

    def f(x):
        return f_np(x, c, b)

    def g(x):
        return grad_loss(x, c, b)

    ag = autograd.grad(lambda x: f_ag(x, c, b))
    np.testing.assert_allclose(dc.gradient(f, x), ag(x), rtol=1e-10, atol=1e-12)
    result = dc.check_gradient(f, g, x)
    assert result.ok, str(result)
    t = interleaved({"dc": lambda: dc.gradient(f, x), "ag": lambda: ag(x),
                     "fg": lambda: (f(x), g(x))}, 30 if n <= 10 ** 5 else 7)
    t.update(interleaved({"check": lambda: dc.check_gradient(f, g, x),
                          "fg_check": lambda: (f(x), g(x))}, 5))
    return t


def main() -> None:
    import autograd.numpy as anp

    f_np, f_ag = make_loss(np), make_loss(anp)
    print(f"{'n':>9} {'diffcheck':>11} {'autograd':>11} {'dc/ag':>7} "
          f"{'f+grad':>9} {'check':>9} {'check/(f+grad)':>15}")
    print("(check/(f+grad) uses f+grad timed interleaved with the check)")
    for n in (10 ** 3, 10 ** 5, 10 ** 6):
        t = run(n, f_np, f_ag)
        print(f"{n:>9} {t['dc'] * 1e3:>9.2f}ms {t['ag'] * 1e3:>9.2f}ms "
              f"{t['dc'] / t['ag']:>7.2f} {t['fg'] * 1e3:>7.2f}ms {t['check'] * 1e3:>7.1f}ms "
              f"{t['check'] / t['fg_check']:>15.1f}")


if __name__ == "__main__":
    main()
