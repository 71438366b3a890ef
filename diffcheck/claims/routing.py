"""``dc.check_gradient("x*y*z", "[y*z, x*z, x*y]", x)``: text in, a claim check out.

``check_gradient``, ``check_jacobian`` and ``check_hessian`` take plain-NumPy functions; given
F as text they route here, and the claimed derivative (text, SymPy expressions or lists of
them) is checked with :func:`diffcheck.check_expression` at ``x`` (values in variable order,
a mapping or ``"x=1,y=2"``), plus the random points a claim check always samples.

>>> import numpy as np
>>> r = check_text("gradient", "x*y*z", "[y*z, x*z, x*y]", np.array([1.0, 2.0, 3.0]))
>>> r.ok, [e.verdict for e in r.claims[0].entries]
(True, ['proved', 'proved', 'proved'])
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError

PASSED_ON = ("wrt", "engines", "points", "seed", "rtol", "atol")


def check_text(kind: str, f: str, claimed: Any, x: Any, **opts: Any) -> Any:
    """Check a claimed gradient, Jacobian or Hessian of the expression ``f``."""
    from ..check import check_expression

    if callable(claimed):
        raise UsageError(f"f is text ('{f[:40]}') but the claimed {kind} is a function: give "
                         f"the claim as text too, e.g. check_expression(F, claim=G), or give f "
                         "as a NumPy function")
    unknown = sorted(set(opts) - set(PASSED_ON))
    if unknown:
        raise UsageError(f"option {', '.join(unknown)} does not apply when f is text; use "
                         f"{', '.join(PASSED_ON)}")
    key = "claim_hessian" if kind == "hessian" else "claim"
    return check_expression(f, at=x, hessian=kind == "hessian", **{key: claimed}, **opts)
