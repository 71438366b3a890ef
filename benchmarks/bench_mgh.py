"""The Moré–Garbow–Hillstrom benchmark: every diffcheck method against SciPy, optimistix, jaxopt
and optax.lbfgs (those installed), on the 18 MGH problems from 1, 10 and 100 times their
standard starts plus chained Rosenbrock n = 100 and n = 1000 (56 starts).

Run: ``python benchmarks/bench_mgh.py [--solvers a,b] [--no-float32] [--json PATH]``
(``scripts/make_mgh_docs.py`` runs it and draws the performance profile of the docs).

A start counts as solved when the returned point has ``||grad f||_2 <= 1e-5`` (float64) and no
negative curvature (the smallest eigenvalue of the float64 Hessian is above
``-sqrt(eps) max(1, |lambda|_max)``), whatever the solver says; a *false success* is a start
where the solver claims success but the point is not solved. In float32 (the JAX solvers only)
the bound is ``1e-3``. f-evals count value-and-gradient evaluations; on each start the best
solver is the one that solved it with the fewest, and a solver's ratio on a start it solved is
its count over that. Every solver is given 20000 iterations and aims at ``||g||_2 <= 1e-5``:
SciPy's BFGS with ``norm=2``, L-BFGS-B with ``gtol = 1e-5 / sqrt(n)`` (its test is on the
largest component) and ``ftol = 0``, Newton-CG with ``xtol = 1e-10`` (it has no gradient
test), optimistix with ``rtol = atol = 1e-10`` (its test is on successive iterates), jaxopt
and optax with the gradient norm. Methods that form a dense Hessian (diffcheck newton and
newton-damped, SciPy trust-exact) are not run on n = 1000 (counted as unsolved).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import diffcheck.optim as dco  # noqa: E402
from diffcheck.optim import problems as P  # noqa: E402
from diffcheck.optim import result as R  # noqa: E402

MAXITER = 20000
DENSE_MAX_N = 200
DIFFCHECK = ("gd", "newton", "newton-damped", "newton-trust", "bfgs", "lbfgs")


def _outcome(x, nfev, claimed, status=None):
    return {"x": np.asarray(x, dtype=np.float64), "nfev": int(nfev), "claimed": bool(claimed),
            "status": status}


# -- solvers: each maps (problem, stacked starts, dtype, gtol) to one outcome per start ------


def each_start(solve_one):
    """A solver from ``solve_one(p, dtype, gtol) -> (jitted x0 -> outcome parts)``: one compile
    per problem, one call per start."""
    def run(p, starts, dtype, gtol):
        solve = solve_one(p, dtype, gtol)
        return [_outcome(*jax.tree.map(np.asarray, solve(jnp.asarray(x0, dtype))))
                for x0 in starts]
    return run


def diffcheck_solver(method):
    def solve_one(p, dtype, gtol):
        def one(x0):
            r = dco.minimize(p.fun, x0, method=method, tol=gtol, maxiter=MAXITER)
            return r.x, r.nfev, r.success, r.status
        return jax.jit(one)

    run = each_start(solve_one)

    def named(p, starts, dtype, gtol):
        outs = run(p, starts, dtype, gtol)
        for o in outs:
            o["status"] = R.NAMES[int(o["status"])]
        return outs
    named.dense = method in ("newton", "newton-damped")
    return named


def optimistix_solver(kind):
    import optimistix as optx

    def solve_one(p, dtype, gtol):
        tol = 1e-10 if dtype == jnp.float64 else 1e-6
        solver = getattr(optx, kind)(rtol=tol, atol=tol)

        def one(x0):
            sol = optx.minimise(lambda y, _: p.fun(y), solver, x0, max_steps=MAXITER,
                                throw=False)
            return sol.value, sol.stats["num_steps"] + 1, sol.result == optx.RESULTS.successful
        return jax.jit(one)
    return each_start(solve_one)


def jaxopt_solver(kind):
    import jaxopt

    def solve_one(p, dtype, gtol):
        solver = getattr(jaxopt, kind)(fun=p.fun, tol=gtol, maxiter=MAXITER)

        def one(x0):
            r = solver.run(x0)
            return r.params, r.state.num_fun_eval, r.state.error <= gtol
        return jax.jit(one)
    return each_start(solve_one)


def _optax_lbfgs(p, dtype, gtol):
    import optax

    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(p.fun)

    def one(x0):
        def cond(c):
            _, s, k, _ = c
            g = optax.tree.get(s, "grad")
            return (k == 0) | ((k < MAXITER) & (optax.tree.norm(g) > gtol))

        def body(c):
            x, s, k, n = c
            v, g = vg(x, state=s)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=p.fun)
            n = n + optax.tree.get(s, "num_linesearch_steps")
            return optax.apply_updates(x, u), s, k + 1, n

        x, s, k, n = jax.lax.while_loop(cond, body, (x0, opt.init(x0), 0, 0))
        return x, n + 1, optax.tree.norm(optax.tree.get(s, "grad")) <= gtol

    return jax.jit(one)


optax_lbfgs = each_start(_optax_lbfgs)


def scipy_solver(method):
    import scipy.optimize

    def run(p, starts, dtype, gtol):
        vg = jax.jit(jax.value_and_grad(p.fun))
        hess = jax.jit(jax.hessian(p.fun))
        hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(p.fun), (x,), (v,))[1])

        def fg(x):
            f, g = vg(x)
            return float(f), np.asarray(g)

        out = []
        for x0 in starts:
            n = len(x0)
            opts = {"maxiter": MAXITER}
            kw = {}
            if method == "BFGS":
                opts.update(gtol=gtol, norm=2)
            elif method == "L-BFGS-B":
                opts.update(gtol=gtol / math.sqrt(n), ftol=0.0, maxfun=10 * MAXITER)
            elif method == "Newton-CG":
                opts.update(xtol=1e-10)
                kw["hessp"] = lambda x, v: np.asarray(hvp(x, v))
            else:
                opts.update(gtol=gtol)
                kw["hess"] = lambda x: np.asarray(hess(x))
            r = scipy.optimize.minimize(fg, np.asarray(x0, float), jac=True, method=method,
                                        options=opts, **kw)
            out.append(_outcome(r.x, r.nfev, r.success))
        return out
    run.float64_only = True
    run.dense = method == "trust-exact"
    return run


def solvers(selected=None):
    table = {f"diffcheck {m}": diffcheck_solver(m) for m in DIFFCHECK}
    peers = {"scipy BFGS": ("scipy", lambda: scipy_solver("BFGS")),
             "scipy L-BFGS-B": ("scipy", lambda: scipy_solver("L-BFGS-B")),
             "scipy Newton-CG": ("scipy", lambda: scipy_solver("Newton-CG")),
             "scipy trust-exact": ("scipy", lambda: scipy_solver("trust-exact")),
             "optimistix BFGS": ("optimistix", lambda: optimistix_solver("BFGS")),
             "optimistix LBFGS": ("optimistix", lambda: optimistix_solver("LBFGS")),
             "jaxopt BFGS": ("jaxopt", lambda: jaxopt_solver("BFGS")),
             "jaxopt LBFGS": ("jaxopt", lambda: jaxopt_solver("LBFGS")),
             "optax.lbfgs": ("optax", lambda: optax_lbfgs)}
    for name, (module, make) in peers.items():
        try:
            __import__(module)
        except ImportError:
            print(f"  ({name}: {module} is not installed, skipped)")
            continue
        table[name] = make()
    if selected:
        table = {k: v for k, v in table.items() if any(s in k for s in selected)}
    return table


# -- judging the answers --------------------------------------------------------------------


def judge(p, outcome, gtol):
    """Solved (small true gradient, no negative curvature); the Hessian's scaled smallest
    eigenvalue for the singular-Hessian count."""
    x = outcome["x"]
    if not np.all(np.isfinite(x)):
        return False, math.inf, math.nan
    g = np.asarray(jax.grad(p.fun)(jnp.asarray(x)))
    gnorm = float(np.linalg.norm(g))
    h = np.asarray(jax.hessian(p.fun)(jnp.asarray(x)))
    if not np.all(np.isfinite(h)):
        return False, gnorm, math.nan
    w = np.linalg.eigvalsh(h)
    eps = np.finfo(float).eps
    negative = w[0] < -math.sqrt(eps) * max(1.0, abs(w[-1]))
    floor = eps * max(1.0, np.abs(h).max())
    d = np.maximum(np.diag(h), floor)
    # the smallest eigenvalue with the diagonal scaled to one; a diagonal entry below the
    # floor (zero to working precision) makes the Hessian singular outright
    scaled = np.linalg.eigvalsh(h / np.sqrt(np.outer(d, d)))[0]
    scaled = -math.inf if np.any(np.diag(h) < floor) else float(scaled)
    return bool(np.isfinite(gnorm) and gnorm <= gtol and not negative), gnorm, scaled


def run_all(table, dtypes, quick=False):
    pairs = P.benchmark_set()
    groups = {}
    for p, x0 in pairs:
        groups.setdefault(p.name, (p, []))[1].append(x0)
    if quick:
        groups = {k: (p, xs[:1]) for k, (p, xs) in list(groups.items())[:6]}
    records = []
    for dtype in dtypes:
        gtol = 1e-5 if dtype == jnp.float64 else 1e-3
        for name, run in table.items():
            if dtype == jnp.float32 and getattr(run, "float64_only", False):
                continue
            t0 = time.perf_counter()
            for p, xs in groups.values():
                outs = [None] * len(xs)
                if not (getattr(run, "dense", False) and p.n > DENSE_MAX_N):
                    try:
                        outs = run(p, np.stack(xs), dtype, gtol)
                    except Exception as exc:  # a peer that cannot run a problem loses it
                        print(f"  {name} failed on {p.name}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:120]}")
                for x0, out in zip(xs, outs, strict=True):
                    rec = {"solver": name, "dtype": jnp.dtype(dtype).name, "problem": p.name,
                           "start": float(np.max(np.abs(x0))), "n": p.n}
                    if out is None:
                        rec.update(run=False, solved=False, claimed=False, nfev=None)
                    else:
                        solved, gnorm, scaled = judge(p, out, gtol)
                        rec.update(run=True, solved=solved, claimed=out["claimed"],
                                   nfev=out["nfev"], gnorm=gnorm, scaled_min=scaled,
                                   status=out["status"])
                    records.append(rec)
            print(f"  {jnp.dtype(dtype).name} {name:22s} {time.perf_counter() - t0:6.1f} s",
                  flush=True)
    return records


# -- summary ---------------------------------------------------------------------------------


def best_counts(records):
    """The fewest f-evals any solver needed on each (problem, start) it solved, float64."""
    best = {}
    for r in records:
        if r["dtype"] == "float64" and r["solved"]:
            key = (r["problem"], r["start"])
            best[key] = min(best.get(key, math.inf), r["nfev"])
    return best


def summarise(records):
    """Per solver: solved count, median f-evals over the best solver's, false successes."""
    best = best_counts(records)
    rows = {}
    for r in records:
        row = rows.setdefault(r["solver"], {"solved": 0, "starts": 0, "ratios": [],
                                            "false64": 0, "false32": None, "statuses32": {},
                                            "singular_success": 0})
        if r["dtype"] == "float64":
            row["starts"] += 1
            row["solved"] += r["solved"]
            row["false64"] += r["claimed"] and not r["solved"]
            if r["solved"]:
                row["ratios"].append(r["nfev"] / best[(r["problem"], r["start"])])
            scaled = r.get("scaled_min", math.nan)
            if r["claimed"] and r["solver"].startswith("diffcheck newton") and \
                    scaled <= math.sqrt(np.finfo(float).eps):
                row["singular_success"] += 1
        else:
            row["false32"] = (row["false32"] or 0) + (r["claimed"] and not r["solved"])
            if r.get("status"):
                row["statuses32"][r["status"]] = row["statuses32"].get(r["status"], 0) + 1
    for row in rows.values():
        row["median_ratio"] = float(np.median(row["ratios"])) if row["ratios"] else math.nan
    return rows


def profile(records, taus):
    """Dolan–Moré performance profile on f-evals: for each solver, the fraction of starts it
    solved within tau times the best solver's f-evals."""
    f64 = [r for r in records if r["dtype"] == "float64"]
    keys = sorted({(r["problem"], r["start"]) for r in f64})
    best = best_counts(records)
    out = {}
    for solver in sorted({r["solver"] for r in f64}):
        ratios = [math.inf] * len(keys)
        for r in f64:
            if r["solver"] == solver and r["solved"]:
                key = (r["problem"], r["start"])
                ratios[keys.index(key)] = r["nfev"] / best[key]
        out[solver] = [float(np.mean([q <= t for q in ratios])) for t in taus]
    return out


def table_markdown(rows):
    lines = ["| solver | solved of 56 | median f-evals / best solver's | "
             "false \"success\" (f64 / f32) |", "|---|---|---|---|"]
    for name, row in sorted(rows.items(), key=lambda kv: (-kv[1]["solved"],
                                                          kv[1]["median_ratio"])):
        f32 = "–" if row["false32"] is None else str(row["false32"])
        lines.append(f"| {name} | {row['solved']} | {row['median_ratio']:.2f} | "
                     f"{row['false64']} / {f32} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solvers", help="comma-separated substrings of solver names")
    ap.add_argument("--no-float32", action="store_true")
    ap.add_argument("--quick", action="store_true", help="six problems, first start only")
    ap.add_argument("--json", help="write the records and the profile to this file")
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    table = solvers(args.solvers.split(",") if args.solvers else None)
    dtypes = [jnp.float64] + ([] if args.no_float32 else [jnp.float32])
    records = run_all(table, dtypes, quick=args.quick)
    rows = summarise(records)
    print()
    print(table_markdown(rows))
    print()
    for name, row in rows.items():
        if name.startswith("diffcheck") and row["statuses32"]:
            stag, lsf = (row["statuses32"].get(k, 0) for k in ("STAGNATION",
                                                               "LINESEARCH_FAILED"))
            print(f"  {name}: float32 STAGNATION {stag}, LINESEARCH_FAILED {lsf}")
    newton_singular = {k: v["singular_success"] for k, v in rows.items()
                       if k.startswith("diffcheck newton")}
    print(f"  SUCCESS where the scaled Hessian is singular (Newton methods): {newton_singular}")
    taus = [float(t) for t in np.logspace(0, 4, 81, base=2)]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"records": records, "taus": taus, "profile": profile(records, taus),
                       "table": table_markdown(rows)}, fh, indent=1)
        print(f"  wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
