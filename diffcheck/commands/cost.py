"""``diffcheck cost EXPR``: forward vs reverse mode, counted and measured.

``diffcheck cost --sweep`` runs a family with growing n and m and plots cost/f against
both (matplotlib, the ``plot`` extra). JAX and matplotlib are imported inside ``run``
only, when asked for.

Exit status: 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expression", metavar="EXPR", nargs="?",
                   help="scalar expression like 'x**2*y', or a bracketed list '[f1, f2]' for "
                        "a vector function")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--jax", action="store_true",
                   help="also time JAX's jvp, vjp, jacfwd and jacrev (jit + vmap)")
    p.add_argument("--points", type=int, default=None, metavar="P",
                   help="points evaluated by each engine call (default 64; sweep 1024)")
    p.add_argument("--repeat", type=int, default=None, metavar="R",
                   help="timing rounds, the minimum is reported (default 5; sweep 7)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the points")
    sweep = p.add_argument_group("sweep")
    sweep.add_argument("--sweep", action="store_true",
                       help="instead of EXPR: time network(n, m) for growing n (m fixed) and "
                            "growing m (n fixed) and plot cost/f against them")
    sweep.add_argument("--fixed", type=int, default=16, metavar="K",
                       help="the size held fixed in the sweep (default 16)")
    sweep.add_argument("--sizes", default="1,2,4,8,16,32,64", metavar="LIST",
                       help="comma list of the growing sizes (default 1,2,4,8,16,32,64)")
    sweep.add_argument("--out", default="cost_sweep.png", metavar="FILE",
                       help="where the sweep writes its plot (default cost_sweep.png)")
    sweep.add_argument("--no-plot", action="store_true", help="sweep without plotting")
    sweep.add_argument("--no-jax", action="store_true", help="sweep without JAX timings")


def run(args: argparse.Namespace) -> int:
    from .. import cost
    from ..errors import UsageError

    if args.sweep:
        if args.expression is not None:
            raise UsageError("--sweep runs its own family of functions; give either EXPR or "
                             "--sweep, not both")
        return _sweep(args)
    if args.expression is None:
        raise UsageError("give an expression, e.g. diffcheck cost 'sin(x)*y', or --sweep")
    report = cost.cost(args.expression, points=64 if args.points is None else args.points,
                       repeat=5 if args.repeat is None else args.repeat, seed=args.seed,
                       jax=args.jax)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .. import cost
    from ..errors import UsageError

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--sizes '{args.sizes}' is not a comma list of whole numbers, "
                         "e.g. 1,2,4,8,16") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 512 or not 1 <= args.fixed <= 512:
        raise UsageError("sweep sizes and --fixed must be whole numbers from 1 to 512")
    if not args.no_plot:  # fail before the long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("the sweep plot needs matplotlib, which is not installed: pip "
                             "install 'diffcheck[plot]' (or pip install matplotlib); "
                             "--no-plot prints the numbers without a plot") from None
    say = (lambda msg: print(msg, file=sys.stderr)) if not args.json else None
    result = cost.sweep(fixed=args.fixed, sizes=sizes,
                        points=1024 if args.points is None else args.points,
                        repeat=7 if args.repeat is None else args.repeat,
                        jax=not args.no_jax, seed=args.seed, progress=say)
    if not args.no_plot:
        result["plot"] = cost.plot_sweep(result, args.out)
    print(json.dumps(result, indent=2) if args.json else sweep_text(result))
    return 0


def sweep_text(result: dict) -> str:
    """The sweep as two small tables of cost/f, then the fitted slopes."""
    lines = []
    for key, title in (("vary_n", f"m = {result['fixed']}, n grows"),
                       ("vary_m", f"n = {result['fixed']}, m grows")):
        lines.append(f"{title} (cost / cost of f; time at {result['points']} points)")
        header = ["n", "m", "ops fwd", "ops rev", "time fwd", "time rev"]
        jax = "jax" in result[key][0]
        header += ["jacfwd", "jacrev"] if jax else []
        rows = []
        for r in result[key]:
            o, s = r["ops"], r["seconds"]
            row = [str(r["n"]), str(r["m"]), *(f"{o[k] / o['function']:.1f}"
                                               for k in ("forward", "reverse")),
                   *(f"{s[k] / s['function']:.1f}" for k in ("forward", "reverse"))]
            if jax:
                j = r["jax"]
                row += [f"{j[k] / j['function']:.1f}" for k in ("jacfwd", "jacrev")]
            rows.append(row)
        widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
        lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths, strict=True))
                  for row in [header, *rows]]
        fits = result.get("slopes", {}).get(key, {})
        if fits:
            lines.append("log-log slopes (largest sizes): " +
                         ", ".join(f"{k} {v:.2f}" for k, v in fits.items()))
        lines.append("")
    if "plot" in result:
        lines.append(f"plot written to {result['plot']}")
    return "\n".join(lines).rstrip()
