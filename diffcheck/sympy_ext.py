"""SymPy functions diffcheck adds: ``sigmoid`` and ``softplus``, and ``floor``/``ceiling``
with their derivative off the jumps (0).

Their derivatives are SymPy's own (``fdiff``), written independently of the rule table.

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> sympy.diff(softplus(x), x)
sigmoid(x)
"""

from __future__ import annotations

import sympy


class sigmoid(sympy.Function):  # noqa: N801  (SymPy's naming)
    """The logistic function 1/(1+exp(-x))."""

    is_real = True

    def fdiff(self, argindex: int = 1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_evalf(self, prec):
        x = self.args[0]._eval_evalf(prec)
        if x is None:
            return None
        return (1 / (1 + sympy.exp(-x)))._eval_evalf(prec)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))


class softplus(sympy.Function):  # noqa: N801
    """log(1 + exp(x))."""

    is_real = True

    def fdiff(self, argindex: int = 1):
        return sigmoid(self.args[0])

    def _eval_evalf(self, prec):
        x = self.args[0]._eval_evalf(prec)
        if x is None:
            return None
        return sympy.log(1 + sympy.exp(x))._eval_evalf(prec)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


class floor(sympy.floor):  # noqa: N801
    """SymPy's floor with its derivative away from the whole numbers: 0.

    SymPy leaves ``Derivative(floor(x), x)`` unevaluated (the derivative is a sum of deltas
    at the whole numbers); diffcheck checks derivatives only off the jumps, where it is 0.

    >>> x = sympy.Symbol("x", real=True)
    >>> sympy.diff(floor(x) * x, x)
    floor(x)
    """

    def fdiff(self, argindex: int = 1):
        return sympy.S.Zero


class ceiling(sympy.ceiling):  # noqa: N801
    """SymPy's ceiling with its derivative away from the whole numbers: 0."""

    def fdiff(self, argindex: int = 1):
        return sympy.S.Zero
