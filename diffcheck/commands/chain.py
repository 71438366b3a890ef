"""``diffcheck chain 10x100 100x100 100x1``: a matrix chain's cost in each order.

Shapes are in data-flow order, input side first (``a×b`` takes ``a`` values to ``b``);
forward mode multiplies left to right, reverse mode right to left, and the optimal
bracketing comes from dynamic programming. Costs are multiply-adds.

Exit status: 0 on success, 2 on bad input (shapes that don't chain).
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shapes", metavar="SHAPE", nargs="+",
                   help="matrix shapes ROWSxCOLS, input side first, e.g. 10x100 100x100 100x1")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..cost import chain_cost

    result = chain_cost(args.shapes)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result)
    return 0
