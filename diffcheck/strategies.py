"""Hypothesis strategies for property tests of derivatives.

* :func:`expressions`: random differentiable expressions over the rule table, as
  :class:`Expression` objects: the text (for ``dc.check_expression`` and the CLI) and a
  plain-NumPy function of a 1-D array (for ``dc.gradient`` and ``dc.check_gradient``).
  By default they are smooth everywhere (``log`` and ``sqrt`` get ``1 + u**2``, divisions
  ``1 + u**2``), so every point is in the domain.
* :func:`points`: float arrays of a given shape inside a box, optionally only where a
  function is finite.
* :func:`expressions_with_points`: both at once.

Use them with ``@given`` (see docs/numpy.md)::

    from hypothesis import given
    import diffcheck as dc
    from diffcheck import strategies as dst

    @given(dst.points((5,)))
    def test_my_gradient(x):
        dc.assert_gradient(my_loss, my_grad, x)

>>> from hypothesis import find
>>> e = find(expressions(max_depth=2), lambda e: "sin" in e.text)
>>> e.text, float(e(np.array([0.0, 1.0])))
('sin(x) + y/8', 0.125)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .primitives import PARSE_FUNCTIONS

#: unary templates, smooth on the whole real line; ``{}`` is the argument
SMOOTH_UNARY = {
    "sin": "sin({})", "cos": "cos({})", "tanh": "tanh({})", "atan": "atan({})",
    "sigmoid": "sigmoid({})", "softplus": "softplus({})", "exp": "exp(tanh({}))",
    "log": "log(1 + ({})**2)", "sqrt": "sqrt(1 + ({})**2)", "square": "({})**2",
    "asinh": "asinh({})",
}
#: binary templates
SMOOTH_BINARY = {
    "add": "({}) + ({})", "sub": "({}) - ({})", "mul": "({}) * ({})",
    "div": "({}) / (1 + ({})**2)",
}


@dataclass(frozen=True)
class Expression:
    """A random expression: ``text`` over ``variables``; call it on a 1-D array."""

    text: str
    variables: tuple[str, ...]

    def __call__(self, x: Any) -> Any:
        """Evaluate at ``x`` (``x[i]`` is variable ``i``); works on traced values too."""
        from .parse import parse
        from .program import Program

        prog = _program_cache.get(self)
        if prog is None:
            prog = Program.from_sympy([parse(self.text, variables=self.variables)],
                                      list(self.variables))
            _program_cache[self] = prog
        return prog.evaluate([x[i] for i in range(len(self.variables))])[0]

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


_program_cache: dict[Expression, Any] = {}


def _usable(names: Sequence[str]) -> list[str]:
    return [n for n in names if n == "square" or n in PARSE_FUNCTIONS or n == "exp"]


@st.composite
def _tree(draw: Callable, variables: tuple[str, ...], depth: int,
          unary: tuple[str, ...], binary: tuple[str, ...]) -> str:
    leaf = st.one_of(st.sampled_from(variables),
                     st.sampled_from(["0.5", "2", "3", "1.5"]))
    if depth <= 0:
        return draw(leaf)
    kind = draw(st.sampled_from(["leaf", "unary", "binary", "binary"]))
    if kind == "leaf":
        return draw(st.sampled_from(variables))
    if kind == "unary":
        name = draw(st.sampled_from(unary))
        return SMOOTH_UNARY[name].format(draw(_tree(variables, depth - 1, unary, binary)))
    name = draw(st.sampled_from(binary))
    left = draw(_tree(variables, depth - 1, unary, binary))
    right = draw(_tree(variables, depth - 1, unary, binary))
    return SMOOTH_BINARY[name].format(left, right)


def expressions(variables: Sequence[str] = ("x", "y"), *, max_depth: int = 3,
                functions: Sequence[str] | None = None) -> st.SearchStrategy[Expression]:
    """Random expressions, smooth on the whole real line, that use every variable.

    ``functions`` restricts the unary functions (names from :data:`SMOOTH_UNARY`).

    >>> from hypothesis import find
    >>> find(expressions(("a",), max_depth=1), lambda e: True).variables
    ('a',)
    """
    variables = tuple(variables)
    unary = tuple(_usable(functions if functions is not None else list(SMOOTH_UNARY)))
    if not unary:
        raise ValueError("no usable unary functions")
    tree = _tree(variables, max_depth, unary, tuple(SMOOTH_BINARY))
    uses_all = tree.map(lambda t: t + "".join(f" + {v}/8" for v in variables
                                              if not _mentions(t, v)))
    return uses_all.map(lambda t: Expression(t, variables))


def _mentions(text: str, name: str) -> bool:
    import re

    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def points(shape: int | tuple[int, ...], *, low: float = -2.0, high: float = 2.0,
           dtype: Any = np.float64, where: Callable[[np.ndarray], Any] | None = None
           ) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` with entries in ``[low, high]``; with ``where``, only points
    where ``where(x)`` is finite (and truthy if boolean): in-domain points.

    >>> from hypothesis import find
    >>> x = find(points((2, 2), low=0.5, high=1.0), lambda x: True)
    >>> x.shape, bool(np.all((x >= 0.5) & (x <= 1.0)))
    ((2, 2), True)
    """
    width = 32 if np.dtype(dtype) == np.float32 else 64
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=width)
    arrays = hnp.arrays(dtype, shape, elements=elements)
    if where is None:
        return arrays
    return arrays.filter(lambda x: _inside(where, x))


def _inside(where: Callable[[np.ndarray], Any], x: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        try:
            v = np.asarray(where(x))
        except (ValueError, ArithmeticError):
            return False
    if v.dtype == bool:
        return bool(np.all(v))
    return bool(np.all(np.isfinite(v)))


@st.composite
def expressions_with_points(draw: Callable, variables: Sequence[str] = ("x", "y"), *,
                            max_depth: int = 3, low: float = -2.0, high: float = 2.0
                            ) -> tuple[Expression, np.ndarray]:
    """An expression and a point (1-D array) where it is finite.

    >>> from hypothesis import find
    >>> e, x = find(expressions_with_points(("x",)), lambda ex: True)
    >>> x.shape
    (1,)
    """
    expr = draw(expressions(variables, max_depth=max_depth))
    x = draw(points((len(tuple(variables)),), low=low, high=high, where=expr))
    return expr, x
