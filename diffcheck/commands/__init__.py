"""CLI subcommands: each module has ``add_arguments(parser)`` and ``run(args) -> int``.

Modules stay light at import time (JAX, SciPy and matplotlib are imported inside ``run``),
so ``diffcheck expr`` starts as fast as SymPy allows.
"""

import sys


def expression_text(arg: str) -> str:
    """The EXPR argument, or standard input when it is ``-`` (for very long expressions)."""
    if arg != "-":
        return arg
    from ..errors import UsageError

    try:
        return sys.stdin.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"EXPR is '-' but standard input could not be read ({exc}); pipe "
                         "the expression in, e.g. diffcheck expr - < expression.txt") from None


#: subcommand -> (module under diffcheck.commands, one-line help)
COMMANDS = {
    "expr": ("expr", "check the derivatives of an expression with every engine"),
    "optimize": ("optimize", "check the gradient, then minimise with the JAX core"),
    "cost": ("cost", "forward vs reverse mode: operation counts and timings"),
    "chain": ("chain", "cost of a matrix chain product in each order"),
}
