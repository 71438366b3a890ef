"""Benchmarks of diffcheck.optim against optax, optimistix and SciPy, in one process.

Run: ``python benchmarks/bench_optim.py [lbfgs|chained|compile|newton|multistart|cli|fit]``
(float64, BLAS pinned to one thread). Prints times and the ratios of the "Done when" lists:
medians of interleaved repeats (ours, then each peer, in turn), so that a change in the
machine's load hits every solver alike.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import optimistix as optx  # noqa: E402
import scipy.optimize  # noqa: E402
from jax import lax  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import diffcheck.optim as dco  # noqa: E402

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # the environment variables above already pin OpenBLAS
    pass


def best(fn, reps=7):
    """Best wall time of ``fn()`` (which must block) over ``reps`` runs."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


CPU_TIMES = {}


def interleaved(fns, reps=11):
    """Median wall time of each of ``fns`` (which must block), run in turn ``reps`` times. The
    median CPU times go to ``CPU_TIMES[fn]`` (steadier than wall time on a shared machine)."""
    times = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[i].append(time.perf_counter() - t)
            cpu[i].append(time.process_time() - c)
    for fn, c in zip(fns, cpu, strict=True):
        CPU_TIMES[fn] = float(np.median(c))
    return [float(np.median(t)) for t in times]


def cpu_ratio(a, b):
    """The ratio of the median CPU times of two functions timed by :func:`interleaved`."""
    return f"(CPU-time ratio {CPU_TIMES[a] / CPU_TIMES[b]:.3f})"


def ours_jit(fn):
    """``jax.jit`` with the XLA options ``minimize`` compiles its own solves with (a direct call
    of ``minimize`` uses them; an outer ``jax.jit`` decides for the whole program)."""
    from diffcheck.optim.compilation import compiler_options

    return jax.jit(fn, compiler_options=dict(compiler_options()))


def optax_lbfgs_solver(fun, maxiter=20000, tol=1e-5):
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(fun)

    @jax.jit
    def run(x):
        def cond(c):
            _, s, k = c
            g = optax.tree.get(s, "grad")
            return (k == 0) | ((k < maxiter) & (optax.tree.norm(g) > tol))

        def body(c):
            x, s, k = c
            v, g = vg(x, state=s)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=fun)
            return optax.apply_updates(x, u), s, k + 1

        return jax.lax.while_loop(cond, body, (x, opt.init(x), 0))

    return run


def block(tree):
    return jax.block_until_ready(tree)


def ext_rosenbrock(x):
    return jnp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)


def broyden(x):
    xp = jnp.concatenate([jnp.zeros(1), x[:-1]])
    xn = jnp.concatenate([x[1:], jnp.zeros(1)])
    return (3.0 - 2.0 * x) * x - xp - 2.0 * xn + 1.0


def camel(x):
    return (4 - 2.1 * x[0] ** 2 + x[0] ** 4 / 3) * x[0] ** 2 + x[0] * x[1] + (
        -4 + 4 * x[1] ** 2) * x[1] ** 2


def report(name, value, target, ok):
    print(f"  {name:58s} {value:>12s}   target {target:12s} {'MET' if ok else 'NOT MET'}")


def bench_lbfgs(n=1000):
    print(f"\nL-BFGS, extended Rosenbrock n={n}, x0=(-1.2, 1, ...), ||g|| <= 1e-5")
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), n // 2)
    ours = ours_jit(lambda x: dco.minimize(ext_rosenbrock, x, method="lbfgs", tol=1e-5,
                                           maxiter=2000))
    res = block(ours(x0))
    gn = float(jnp.linalg.norm(res.jac))
    per_it = int(res.nfev) / int(res.nit)
    optax_run = optax_lbfgs_solver(ext_rosenbrock, maxiter=2000)
    xo, so, ko = block(optax_run(x0))
    g_optax = float(jnp.linalg.norm(jax.grad(ext_rosenbrock)(xo)))
    vg_jit = jax.jit(jax.value_and_grad(ext_rosenbrock))
    x0n = np.asarray(x0)

    def scipy_run():
        return scipy.optimize.minimize(lambda x: tuple(np.asarray(a) for a in vg_jit(x)), x0n,
                                       jac=True, method="L-BFGS-B",
                                       options={"gtol": 1e-5, "maxiter": 2000, "ftol": 0})

    r_sp = scipy_run()
    fns = [lambda: block(ours(x0)), lambda: block(optax_run(x0)), scipy_run]
    t_ours, t_optax, t_scipy = interleaved(fns, reps=21)
    print(f"  diffcheck: nit={int(res.nit)} nfev={int(res.nfev)} ||g||={gn:.2e} "
          f"success={bool(res.success)} time={t_ours * 1e3:.3f} ms (median of 21)")
    print(f"  optax.lbfgs: nit={int(ko)} ||g||={g_optax:.2e} time={t_optax * 1e3:.3f} ms")
    print(f"  SciPy L-BFGS-B: nit={r_sp.nit} nfev={r_sp.nfev} time={t_scipy * 1e3:.3f} ms")
    report("converges ||g|| <= 1e-5", f"{gn:.1e}", "<= 1e-5", gn <= 1e-5 and bool(res.success))
    report("f-evals per iteration (nfev / nit, nfev counts x0)", f"{per_it:.3f}", "<= 1.25",
           per_it <= 1.25)
    report("time ratio vs optax.lbfgs (jitted while_loop)", f"{t_ours / t_optax:.3f}", "<= 0.6",
           t_ours / t_optax <= 0.6)
    print(f"  {cpu_ratio(fns[0], fns[1])}")
    report("time ratio vs SciPy L-BFGS-B (jitted JAX grads)", f"{t_ours / t_scipy:.4f}",
           "<= 0.1", t_ours / t_scipy <= 0.1)
    print(f"  {cpu_ratio(fns[0], fns[2])}")


def bench_chained(n=1000):
    print(f"\nL-BFGS, chained Rosenbrock n={n}, x0=(-1.2, 1, -1.2, 1, ...), ||g|| <= 1e-5")
    fun = dco.problems.chained_rosenbrock(n).fun
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), n // 2)
    ours = ours_jit(lambda x: dco.minimize(fun, x, method="lbfgs", tol=1e-5, maxiter=20000))
    res = block(ours(x0))
    optax_run = optax_lbfgs_solver(fun)
    xo, so, ko = block(optax_run(x0))
    g_optax = float(jnp.linalg.norm(jax.grad(fun)(xo)))
    fns = [lambda: block(ours(x0)), lambda: block(optax_run(x0))]
    t_ours, t_optax = interleaved(fns, reps=11)
    print(f"  diffcheck: nit={int(res.nit)} nfev={int(res.nfev)} "
          f"||g||={float(jnp.linalg.norm(res.jac)):.2e} success={bool(res.success)} "
          f"time={t_ours * 1e3:.1f} ms (median of 11)")
    print(f"  optax.lbfgs: nit={int(ko)} ||g||={g_optax:.2e} time={t_optax * 1e3:.1f} ms")
    report("time ratio vs optax.lbfgs", f"{t_ours / t_optax:.3f}", "<= 0.6",
           t_ours / t_optax <= 0.6)
    print(f"  {cpu_ratio(fns[0], fns[1])}")


def bench_compile(n=1000):
    """First calls in this process: ``minimize`` (its own compile options) and optax.lbfgs's
    jitted loop, each a new program; wall and CPU time (CPU is steadier on a busy machine)."""
    print(f"\nFirst call (trace, compile, run), L-BFGS, extended Rosenbrock n={n}")
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), n // 2)
    # warm JAX and both libraries up on another problem (n = 2): what is timed below is the
    # trace, compile and run of new programs, not one-off initialisation that whichever runs
    # first would pay for both
    small = jnp.array([-1.2, 1.0])
    block(dco.minimize(ext_rosenbrock, small, method="lbfgs", tol=1e-5, maxiter=2000))
    block(optax_lbfgs_solver(ext_rosenbrock, 2000)(small))
    fresh = {"diffcheck": lambda: block(dco.minimize(ext_rosenbrock, x0, method="lbfgs",
                                                     tol=1e-5, maxiter=2000)),
             "optax.lbfgs": lambda: block(optax_lbfgs_solver(ext_rosenbrock, 2000)(x0))}
    wall, cpu = {}, {}
    for name, fn in fresh.items():
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
        print(f"  {name}: {wall[name]:.2f} s wall, {cpu[name]:.2f} s CPU")
    ratio = wall["diffcheck"] / wall["optax.lbfgs"]
    report("first-call time ratio vs optax.lbfgs (wall)", f"{ratio:.2f}", "<= 0.7", ratio <= 0.7)
    ratio = cpu["diffcheck"] / cpu["optax.lbfgs"]
    print(f"  (CPU-time ratio {ratio:.2f})")


def bench_cli(reps=5):
    """``diffcheck optimize`` end to end: a cold run (cache off) and a warm one (cache on)."""
    import subprocess
    import tempfile

    print("\ndiffcheck optimize '(1-x)**2 + 100*(y-x**2)**2' --x0 x=-1.2,y=1 --method bfgs")
    cmd = [sys.executable, "-m", "diffcheck", "optimize", "(1-x)**2 + 100*(y-x**2)**2", "--x0",
           "x=-1.2,y=1", "--method", "bfgs"]
    root = os.path.join(os.path.dirname(__file__), "..")
    with tempfile.TemporaryDirectory() as cache:
        warm_env = {**os.environ, "DIFFCHECK_CACHE": "on", "DIFFCHECK_CACHE_DIR": cache}
        cold_env = {**os.environ, "DIFFCHECK_CACHE": "off"}
        subprocess.run(cmd, env=warm_env, cwd=root, capture_output=True, check=True)

        def timed(env):
            t = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=root, capture_output=True, check=True)
            return time.perf_counter() - t

        cold, warm = interleaved([lambda: timed(cold_env), lambda: timed(warm_env)], reps)
    print(f"  cold (no cache) {cold:.2f} s, warm cache {warm:.2f} s (medians of {reps})")
    report("warm-cache run [s]", f"{warm:.2f}", "<= 2", warm <= 2.0)
    print("  (compare the cold time with the same command on the previous release)")


def bench_newton():
    print("\nNewton")
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), 50)
    run = jax.jit(lambda x: dco.minimize(ext_rosenbrock, x, method="newton", tol=1e-8))
    res = block(run(x0))
    t = best(lambda: block(run(x0)))
    print(f"  Rosenbrock n=100: nit={int(res.nit)} f={float(res.fun):.2e} time={t * 1e3:.2f} ms")
    report("Rosenbrock n=100 f", f"{float(res.fun):.1e}", "< 1e-12", float(res.fun) < 1e-12)
    chained = dco.problems.chained_rosenbrock(100)
    for method in ("newton", "newton-trust"):
        r = dco.minimize(chained.fun, jnp.asarray(chained.x0), method=method, maxiter=2000)
        print(f"  chained Rosenbrock n=100, {method}: nit={int(r.nit)} f={float(r.fun):.4f} "
              f"{dco.result.NAMES[int(r.status)]}")
    report("newton-trust chained Rosenbrock n=100 iterations", str(int(r.nit)), "<= 250",
           bool(r.success) and int(r.nit) <= 250)

    xb = -jnp.ones(1000)
    times = {}
    for solver in ("dense", "gmres"):
        run_b = jax.jit(lambda x, s=solver: dco.root(broyden, x, linear_solver=s, tol=1e-10))
        rb = block(run_b(xb))
        times[solver] = best(lambda r=run_b: block(r(xb)), reps=5)
        print(f"  Broyden tridiagonal n=1000 ({solver}): nit={int(rb.nit)} "
              f"||F||={float(jnp.linalg.norm(rb.fun)):.1e} time={times[solver] * 1e3:.1f} ms")
    solver = optx.Newton(rtol=1e-10, atol=1e-10)
    run_o = jax.jit(lambda x: optx.root_find(lambda y, _: broyden(y), solver, x, max_steps=50,
                                             throw=False).value)
    xo = block(run_o(xb))
    t_o = best(lambda: block(run_o(xb)), reps=5)
    print(f"  optimistix.Newton: ||F||={float(jnp.linalg.norm(broyden(xo))):.1e} "
          f"time={t_o * 1e3:.1f} ms")
    report("Broyden n=1000 dense Newton [ms]", f"{times['dense'] * 1e3:.1f}",
           f"<= {t_o * 1e3:.0f} (optx)", times["dense"] <= t_o)
    report("Broyden n=1000 Newton-GMRES [ms]", f"{times['gmres'] * 1e3:.1f}", "<= 130",
           times["gmres"] <= 0.130)

    starts = x0 + 0.1 * jax.random.normal(jax.random.key(0), (32, 100))
    one = jax.jit(lambda x: dco.minimize(ext_rosenbrock, x, method="newton-damped", tol=1e-8))
    batch = jax.jit(jax.vmap(one))
    rv = block(batch(starts))
    block(one(starts[0]))
    t_v = best(lambda: block(batch(starts)), reps=5)
    t_1 = best(lambda: [block(one(s)) for s in starts], reps=3)
    print(f"  32 problems n=100: vmapped {t_v * 1e3:.1f} ms, one by one {t_1 * 1e3:.1f} ms, "
          f"all success={bool(np.all(rv.success))}")
    report("vmapped speed-up (32 x n=100 Newton)", f"{t_1 / t_v:.2f}x", ">= 3x", t_1 / t_v >= 3)
    _cholesky_bound(starts, t_1, int(np.max(rv.nit)) + 1)


def _cholesky_bound(starts, t_serial, factorisations):
    """The speed-up vmap can reach if everything but the Cholesky factorisations were free: a
    batched factorisation costs as much per matrix as a single one when the backend loops over
    the batch (LAPACK on a CPU), and the batch factors every matrix at every iteration."""
    h = jax.vmap(jax.hessian(ext_rosenbrock))(starts) + 1e3 * jnp.eye(starts.shape[1])
    reps = 50

    def timed(fn, a):
        def run(a):
            return lax.fori_loop(0, reps, lambda i, acc: acc + fn(a + 1e-12 * i)[..., 0, 0].sum(),
                                 jnp.zeros((), a.dtype))
        run = jax.jit(run)
        block(run(a))
        return best(lambda: block(run(a)), reps=5) / reps

    chol = functools.partial(lax.linalg.cholesky, symmetrize_input=False)
    t_b, t_s = timed(chol, h), timed(chol, h[0])
    print(f"  Cholesky 100x100: {t_s * 1e6:.1f} us alone, {t_b / len(h) * 1e6:.1f} us per matrix "
          f"in a batch of {len(h)}; the {factorisations} batched factorisations alone take "
          f"{factorisations * t_b * 1e3:.1f} ms: speed-up bound "
          f"{t_serial / (factorisations * t_b):.2f}x on this machine")


def bench_multistart(count=1000):
    print(f"\nMultistart, six-hump camel, {count} starts, one jitted vmapped call")
    starts = jax.random.uniform(jax.random.key(0), (count, 2), minval=jnp.array([-3.0, -2.0]),
                                maxval=jnp.array([3.0, 2.0]))
    run = jax.jit(jax.vmap(lambda s: dco.minimize(camel, s, method="bfgs")))
    res = block(run(starts))
    solver = optx.BFGS(rtol=1e-8, atol=1e-8)
    run_o = jax.jit(jax.vmap(lambda s: optx.minimise(lambda y, _: camel(y), solver, s,
                                                     max_steps=1000, throw=False).value))
    block(run_o(starts))
    fns = [lambda: block(run(starts)), lambda: block(run_o(starts))]
    t, t_o = interleaved(fns, reps=21)
    ok = np.asarray(res.success)
    minima = np.unique(np.round(np.asarray(res.x)[ok], 3), axis=0)
    print(f"  diffcheck bfgs {t * 1e3:.1f} ms, optimistix BFGS {t_o * 1e3:.1f} ms (medians "
          f"of 21); successes={ok.sum()}, distinct minima={len(minima)}")
    report("local minima found", str(len(minima)), "6", len(minima) == 6)
    report("time ratio vs optimistix BFGS", f"{t / t_o:.3f}", "<= 1.0", t / t_o <= 1.0)
    print(f"  {cpu_ratio(fns[0], fns[1])}")


def bench_fit():
    print("\nMinibatch Adam, least squares N=1e5, d=100, batch 256, float32")
    n, d, b, epochs = 100_000, 100, 256, 10
    x = jax.random.normal(jax.random.key(0), (n, d), jnp.float32)
    y = x @ jax.random.normal(jax.random.key(1), (d,), jnp.float32)
    loss = lambda w, batch: jnp.mean((batch[0] @ w - batch[1]) ** 2)  # noqa: E731
    opt = dco.adam(1e-2)
    w0 = jnp.zeros(d, jnp.float32)
    rates = {}
    for sampling in ("replacement", "shuffle"):
        def go(s=sampling):
            return block(dco.fit(loss, w0, (x, y), opt, batch_size=b, epochs=epochs, sampling=s,
                                 key=jax.random.key(2)))
        go()
        rates[sampling] = epochs * (n // b) * b / best(go, reps=5) / 1e6
    opt_ref = optax.adam(1e-2)

    @jax.jit
    def optax_epochs(w, key):
        def step(c, idx):
            w, s = c
            lval, g = jax.value_and_grad(loss)(w, (x[idx], y[idx]))
            u, s = opt_ref.update(g, s, w)
            return (optax.apply_updates(w, u), s), lval

        idx = jax.random.randint(key, (epochs, n // b, b), 0, n)
        return jax.lax.scan(lambda c, i: jax.lax.scan(step, c, i), (w, opt_ref.init(w)), idx)

    block(optax_epochs(w0, jax.random.key(2)))
    r_ref = epochs * (n // b) * b / best(lambda: block(optax_epochs(w0, jax.random.key(2))),
                                         reps=5) / 1e6
    print(f"  replacement {rates['replacement']:.2f} M samples/s, shuffle "
          f"{rates['shuffle']:.2f} M samples/s, hand-written optax scan {r_ref:.2f} M samples/s")
    report("fused epochs throughput (shuffle) [M samples/s]", f"{rates['shuffle']:.2f}", ">= 7",
           rates["shuffle"] >= 7)
    ratio = rates["shuffle"] / rates["replacement"]
    report("shuffle / replacement throughput", f"{ratio:.3f}", ">= 0.85", ratio >= 0.85)


if __name__ == "__main__":
    print(f"jax {jax.__version__}, optax {optax.__version__}, optimistix {optx.__version__}, "
          f"scipy {scipy.__version__}, devices {jax.devices()}")
    which = sys.argv[1:] or ["compile", "lbfgs", "chained", "newton", "multistart", "cli", "fit"]
    for name in which:
        globals()[f"bench_{name}"]()
