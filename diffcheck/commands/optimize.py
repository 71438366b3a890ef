"""``diffcheck optimize EXPR --x0 ... --method ...``: verify, then minimise with the JAX core.

The gradient (and, for Newton methods, the Hessian) is checked first with every core engine
at ``x0`` and at random points; an objective whose derivatives disagree is refused
(exit 1). The verified expression is then translated to JAX through the rule table's JAX
column and minimised by :func:`diffcheck.optim.minimize` in float64, with JAX's persistent
compilation cache on (a second run of the same problem loads the compiled solver from disk;
``DIFFCHECK_CACHE=off`` turns it off) and XLA options for a short compile.

Exit status: 0 converged, 1 derivatives disagree or the solver did not converge, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import numpy as np

METHODS = ("lbfgs", "bfgs", "newton", "newton-damped", "newton-trust", "gd")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expression", metavar="EXPR", help="scalar objective, e.g. "
                   "'(1-x)**2 + 100*(y-x**2)**2' (- reads it from standard input)")
    p.add_argument("--x0", required=True, metavar="x=-1.2,y=1", help="starting point")
    p.add_argument("--method", default="lbfgs", choices=METHODS, help="default lbfgs")
    p.add_argument("--linesearch", choices=("armijo", "wolfe"),
                   help="default: armijo for gd and Newton, wolfe for (L-)BFGS "
                   "(newton-trust has none)")
    p.add_argument("--tol", type=float, help="bound on the gradient 2-norm (default 1e-5)")
    p.add_argument("--maxiter", type=int, help="iteration budget")
    p.add_argument("--f-lower", type=float, metavar="F",
                   help="a known lower bound of the objective (0 for a sum of squares): "
                   "converging above it is reported as a local minimum")
    p.add_argument("--every", type=int, metavar="K", help="print every K-th iteration "
                   "(besides the first and last five; default: about twenty rows)")
    p.add_argument("--all", action="store_true", help="print every iteration")
    p.add_argument("--points", type=int, default=3, metavar="N",
                   help="random points checked besides x0 (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..check import Function, check_expression, random_points
    from ..errors import UsageError
    from . import expression_text

    args.expression = expression_text(args.expression)
    fn = Function.from_text(args.expression, at=args.x0)  # --x0 e=1 makes e a variable
    if fn.vector or not fn.variables:
        raise UsageError("optimize needs a scalar objective of at least one variable; "
                         f"got {'a vector function' if fn.vector else 'a constant'}")
    _validate(args)
    x0 = _start(fn, args.x0)
    pts = [dict(zip(fn.variables, map(float, x0), strict=True))]
    if args.points:
        pts += [dict(zip(fn.variables, map(float, p), strict=True))
                for p in random_points(fn, args.points, args.seed)]
    report = check_expression(args.expression, at=pts, hessian=args.method.startswith("newton"))
    if not report.ok:
        return _refuse(args, report)
    result = _solve(fn, x0, args)
    return _print(args, fn, report, result)


def _start(fn, text: str) -> np.ndarray:
    """The point given with ``--x0``; the messages of the shared point parser name ``--x0``."""
    from ..check import user_points
    from ..errors import DiffcheckError

    try:
        return user_points(fn, text)[0]
    except DiffcheckError as exc:
        message = re.sub(r",? or omit --at\b[^.]*", "", str(exc)).replace("--at", "--x0")
        raise type(exc)(message) from None


def _validate(args: argparse.Namespace) -> None:
    from ..errors import UsageError

    if args.tol is not None and not (np.isfinite(args.tol) and args.tol > 0):
        raise UsageError(f"--tol must be a positive number, got {args.tol}")
    if args.maxiter is not None and args.maxiter < 1:
        raise UsageError(f"--maxiter must be at least 1, got {args.maxiter}")
    if not 0 <= args.points <= 100:
        raise UsageError(f"--points must be from 0 to 100, got {args.points}")
    if args.every is not None and args.every < 1:
        raise UsageError(f"--every must be at least 1, got {args.every}")
    if args.every is not None and args.all:
        raise UsageError("--every and --all exclude each other (--all prints every row)")
    if args.f_lower is not None and not np.isfinite(args.f_lower):
        raise UsageError(f"--f-lower must be a finite number, got {args.f_lower}")
    if args.method == "newton-trust" and args.linesearch:
        raise UsageError("--linesearch does not apply to newton-trust (a trust-region method)")


def _solve(fn, x0: np.ndarray, args: argparse.Namespace):
    import jax

    from ..optim import minimize
    from ..optim.compilation import enable_compilation_cache, fast_compile

    enable_compilation_cache()
    with jax.enable_x64(True), fast_compile():
        f = fn.program.to_jax()
        res = minimize(lambda x: f(x)[0], jax.numpy.asarray(x0, dtype=jax.numpy.float64),
                       method=args.method, tol=args.tol, maxiter=args.maxiter,
                       linesearch=args.linesearch, history=True, f_lower=args.f_lower)
        return jax.tree_util.tree_map(np.asarray, res)


def _unbounded_direction(fn, res) -> dict[str, float] | None:
    """The direction of the last step of an UNBOUNDED solve, as a unit vector by variable."""
    from ..optim import result as R

    if int(res.status) != R.UNBOUNDED or int(res.nit) < 1:
        return None
    xs = res.history.x
    step = xs[int(res.nit)] - xs[int(res.nit) - 1]
    norm = np.linalg.norm(step)
    if not np.isfinite(norm) or norm == 0:
        return None
    return {v: float(d) for v, d in zip(fn.variables, step / norm, strict=True)}


def _result_dict(fn, res) -> dict[str, Any]:
    from ..optim import result as R

    return {
        "x": {v: float(x) for v, x in zip(fn.variables, res.x, strict=True)},
        "fun": float(res.fun), "jac": [float(g) for g in res.jac],
        "gnorm": float(np.linalg.norm(res.jac)), "nit": int(res.nit),
        "nfev": int(res.nfev), "njev": int(res.njev), "success": bool(res.success),
        "status": int(res.status), "status_name": R.NAMES.get(int(res.status), "UNKNOWN"),
        "message": res.message, "unbounded_direction": _unbounded_direction(fn, res),
    }


def _history(res) -> list[dict[str, float | None]]:
    h = res.history
    rows = []
    for k in range(int(res.nit) + 1):
        step = float(h.step[k])
        rows.append({"k": k, "f": float(h.f[k]), "gnorm": float(h.gnorm[k]),
                     "step": None if np.isnan(step) else step})
    return rows


def _print(args, fn, report, res) -> int:
    out = _result_dict(fn, res)
    if args.json:
        print(json.dumps({"expression": fn.text, "variables": fn.variables,
                          "method": args.method, "check": report.to_dict(), "result": out,
                          "history": _history(res)}, indent=2))
    else:
        _print_text(args, fn, report, res, out)
    return 0 if out["success"] else 1


def _print_text(args, fn, report, res, out) -> None:
    from ..optim import format_iterations

    n = len(report.points)
    print(f"objective: {fn.text}")
    print(f"gradient check: all {len(report.engines)} engines agree at {n} points "
          f"({', '.join(report.engines)}){' incl. the Hessian' if report.hessian else ''}")
    print(f"method: {args.method}\n")
    print(format_iterations(res, every=1 if args.all else args.every))
    print()
    print("x* = " + ", ".join(f"{k}={v:.12g}" for k, v in out["x"].items()))
    print(f"f(x*) = {out['fun']:.12g}   ||grad|| = {out['gnorm']:.3e}   "
          f"iterations {out['nit']}, f-evals {out['nfev']}")
    if out["unbounded_direction"]:
        along = ", ".join(f"{k}={v:.3g}" for k, v in out["unbounded_direction"].items())
        print(f"unbounded below along ({along}): f fell from {float(res.history.f[0]):.6g} "
              f"to {out['fun']:.6g}")
    verdict = "converged" if out["success"] else f"NOT converged ({out['status_name']})"
    print(f"{verdict}: {out['message']}")


def _refuse(args, report) -> int:
    from ..render import verdict_line

    if args.json:
        print(json.dumps({"expression": report.expression, "check": report.to_dict(),
                          "result": None}, indent=2))
    else:
        print(report)
        print(f"\nrefusing to optimise: the derivatives disagree ({verdict_line(report)})")
    return 1
