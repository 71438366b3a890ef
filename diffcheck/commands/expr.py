"""``diffcheck expr EXPR``: check derivatives with every engine.

Exit status: 0 every engine agrees at every point (and every claimed derivative given with
``--claim``/``--claim-hessian`` is right), 1 a disagreement or a wrong claim, 2 bad input.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..parse import function_names

    p.add_argument("expression", metavar="EXPR",
                   help="scalar expression like 'x**2*y + (x+y)**2', or a bracketed list "
                        "'[f1, f2, ...]' for a vector function (checked as a Jacobian). "
                        f"Functions: {', '.join(function_names())}. Constants pi (or π) and E "
                        "(e too, unless --at or --wrt names e as a variable). ^ means **; "
                        "pasted math works: Greek names (θ, λ), · × − ÷, x², √(x). Use - to "
                        "read EXPR from standard input (for expressions too long for a "
                        "command line).")
    p.add_argument("--at", action="append", metavar="x=1,y=2",
                   help="point to check at (repeat for several); values may be constant "
                        "expressions (t=pi/4, x=1/3, x=sqrt(2)); default: random points")
    p.add_argument("--wrt", metavar="x,y", help="variables to differentiate, in order")
    p.add_argument("--hessian", action="store_true", help="also check second derivatives")
    p.add_argument("--engines", metavar="LIST",
                   help="comma list of symbolic, forward, reverse, finite, jax, or 'all' "
                        "(default: symbolic,forward,reverse,finite)")
    p.add_argument("--points", type=int, default=3, metavar="N",
                   help="random points when --at is not given (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for random points")
    p.add_argument("--rtol", type=float, metavar="R", help="relative tolerance override")
    p.add_argument("--atol", type=float, metavar="A", help="absolute tolerance override")
    p.add_argument("--claim", metavar="G",
                   help="your derivative of EXPR, checked against the true one: one expression "
                        "(one variable), a bracketed gradient '[df/dx, df/dy]' in variable "
                        "(or --wrt) order, or a Jacobian '[[df1/dx, df1/dy], [df2/dx, ...]]' "
                        "for a vector EXPR. Each entry is proved, agrees, partly (right on part "
                        "of the domain) or wrong (with a counterexample and the likely "
                        "mistake). Write --claim=-2*x when G starts with '-'")
    p.add_argument("--claim-hessian", metavar="H",
                   help="your Hessian of a scalar EXPR, n rows of n: '[[d2f/dxdx, d2f/dxdy], "
                        "[d2f/dydx, d2f/dydy]]'; checked like --claim (implies --hessian)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trace", action="store_true",
                   help="print the evaluation trace (values, partials, tangents, adjoints)")
    p.add_argument("--direction", metavar="x | x=1,y=-1",
                   help="tangent direction for --trace (default: the first --wrt variable)")
    p.add_argument("--graph", metavar="FILE",
                   help="write the computational graph (.dot, or .svg/.png with Graphviz)")


def run(args: argparse.Namespace) -> int:
    from ..check import check_expression
    from . import expression_text

    args.expression = expression_text(args.expression)
    report = check_expression(args.expression, at=args.at, wrt=args.wrt, hessian=args.hessian,
                              engines=args.engines, points=args.points, seed=args.seed,
                              rtol=args.rtol, atol=args.atol, claim=args.claim,
                              claim_hessian=args.claim_hessian)
    extra = _trace_and_graph(args, report)
    if args.json:
        doc = report.to_dict()
        if "trace" in extra:
            doc["trace"] = extra["trace"]
        print(json.dumps(doc, indent=2))
    else:
        print(report)
        if "trace_text" in extra:
            print()
            print(extra["trace_text"])
    return 0 if report.ok else 1


def _trace_and_graph(args: argparse.Namespace, report) -> dict:
    if not (args.trace or args.graph):
        return {}
    from .. import trace

    return trace.for_cli(args, report)
