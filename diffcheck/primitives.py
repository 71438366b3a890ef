"""THE rule table: every differentiable operation diffcheck knows, one row each.

A row says everything about one operation: its NumPy implementation, the SymPy head it
stands for, its JAX function, one local partial derivative per argument (written with NumPy
calls, so the same rule runs on floats, arrays, forward-mode duals and reverse-mode tape
values), the open set where its derivative exists, how to print the partials, and its
cost in the flop model. Forward mode computes ``y_dot = sum_i d_i * x_dot_i`` from the
partials, reverse mode ``x_bar_i += d_i * y_bar``, the trace prints them.

Structural operations (sums over axes, matrix products, reshapes, indexing) have no
elementwise partials; their rows carry a ``jvp``/``vjp`` pair instead (see
:mod:`diffcheck.engines.numpy_ops`).

SymPy's own ``diff``, JAX and finite differences never read this table, so a wrong row is
caught by them.

>>> float(ROWS["sin"].partials[0](0.0, 0.0))
1.0
>>> sorted(PARSE_FUNCTIONS)[:4]
['Abs', 'abs', 'acos', 'acosh']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from . import sympy_ext
from .tracing import dispatch, is_traced

Partial = Callable[..., Any]


@dataclass(frozen=True, eq=False)
class Primitive:
    """One row of the rule table.

    Attributes:
        name: short name, also the Program op name (``"sin"``).
        impl: numeric implementation on floats and arrays (a NumPy ufunc where one exists).
        partials: one function per argument, ``d_i(*args, out) -> value``: the local partial
            derivative of the output with respect to argument ``i``, elementwise.
        sympy: the SymPy head this row stands for (``sympy.sin``), or None.
        jax: dotted path of the JAX function under ``jax`` (``"numpy.sin"``).
        domain: ``domain(*args) -> bool array``: where the derivative exists (open set).
        domain_text: the same in words, for error messages.
        varying_domain: the domain when an argument after the first depends on the variables
            (``base**exponent``: its derivative in the exponent is ``base**exponent log(base)``,
            so a varying exponent needs ``base > 0`` even where it happens to be an integer);
            None: ``domain`` throughout.
        varying_domain_text: the same in words.
        dtext: the partials as text templates over the argument names ``{0}``, ``{1}`` and
            the output ``{out}``, for the evaluation trace.
        flops: cost of the operation in the flop model (see :mod:`diffcheck.cost`).
        infix: operator symbol for binary arithmetic (``"+"``), used by the trace.
        parse: the names under which the parser accepts the operation as a function.
        smooth: False for operations with kinks (abs, max), whose checks report kinks.
        ufunc: the NumPy ufunc this row answers for in ``__array_ufunc__``.
        jvp: structural rows: ``jvp(primals, tangents, out, **params)``; tangents carry a
            leading direction axis and are None for constant arguments.
        vjp: structural rows: ``vjp(primals, out, out_bar, **params) -> tuple`` of
            cotangents, one per argument (None where not needed).
    """

    name: str
    impl: Callable[..., Any]
    partials: tuple[Partial, ...]
    sympy: Any = None
    jax: str | None = None
    domain: Callable[..., Any] | None = None
    domain_text: str = ""
    varying_domain: Callable[..., Any] | None = None
    varying_domain_text: str = ""
    dtext: tuple[str, ...] = ()
    flops: int = 1
    infix: str | None = None
    parse: tuple[str, ...] = ()
    smooth: bool = True
    ufunc: Any = field(default=None)
    jvp: Callable[..., Any] | None = None
    vjp: Callable[..., Any] | None = None

    @property
    def arity(self) -> int:
        return len(self.partials)

    @property
    def structural(self) -> bool:
        """True for rows differentiated by a jvp/vjp pair instead of elementwise partials."""
        return self.jvp is not None

    def __call__(self, *args: Any, **params: Any) -> Any:
        if any(is_traced(a) for a in args):
            return dispatch(self, args, params)
        return self.impl(*args, **params)

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"


def _erf(x):
    return np.vectorize(math.erf, otypes=[float])(x) if np.ndim(x) else math.erf(float(x))


def _sigmoid(x):
    x = np.asarray(x, dtype=float) if np.ndim(x) else float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))[()]


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sign_partial(x, out):
    return 0.0 * x


def _dirac(x, *order):
    """SymPy's DiracDelta(x[, k]) away from 0 (where points are drawn): zero."""
    return 0.0 * x


def _wins(x, y):
    """1 where ``x > y``, 1/2 where they tie, 0 elsewhere: the partial of max(x, y) in x."""
    return np.greater(x, y) * 1.0 + np.equal(x, y) * 0.5


def _pow_domain(x, y):
    y_int = np.equal(np.mod(y, 1), 0)
    return np.where(y_int, (y >= 1) | (x != 0), x > 0)


ROW_LIST: list[Primitive] = [
    # -- arithmetic ---------------------------------------------------------------------
    Primitive("add", np.add, (lambda x, y, out: 1.0, lambda x, y, out: 1.0),
              sympy=sympy.Add, jax="numpy.add", dtext=("1", "1"), infix="+", ufunc=np.add),
    Primitive("sub", np.subtract, (lambda x, y, out: 1.0, lambda x, y, out: -1.0),
              jax="numpy.subtract", dtext=("1", "-1"), infix="-", ufunc=np.subtract),
    Primitive("mul", np.multiply, (lambda x, y, out: y, lambda x, y, out: x),
              sympy=sympy.Mul, jax="numpy.multiply", dtext=("{1}", "{0}"), infix="*",
              ufunc=np.multiply),
    Primitive("div", np.divide, (lambda x, y, out: 1.0 / y, lambda x, y, out: -out / y),
              jax="numpy.divide", domain=lambda x, y: y != 0, domain_text="denominator != 0",
              dtext=("1/{1}", "-{0}/{1}**2"), flops=4, infix="/", ufunc=np.divide),
    Primitive("pow", np.power,
              (lambda x, y, out: y * x ** (y - 1), lambda x, y, out: out * np.log(x)),
              sympy=sympy.Pow, jax="numpy.power", domain=_pow_domain,
              domain_text="base > 0 (or an integer exponent and base != 0)",
              varying_domain=lambda x, y: x > 0,
              varying_domain_text="base > 0 (the exponent varies, and the derivative in it is "
                                  "base**exponent*log(base))",
              dtext=("{1}*{0}**({1} - 1)", "{0}**{1}*log({0})"), flops=10, infix="**",
              ufunc=np.power),
    Primitive("neg", np.negative, (lambda x, out: -1.0,), jax="numpy.negative",
              dtext=("-1",), ufunc=np.negative),
    # -- elementary functions -----------------------------------------------------------
    Primitive("exp", np.exp, (lambda x, out: out,), sympy=sympy.exp, jax="numpy.exp",
              dtext=("exp({0})",), flops=10, parse=("exp",), ufunc=np.exp),
    Primitive("log", np.log, (lambda x, out: 1.0 / x,), sympy=sympy.log, jax="numpy.log",
              domain=lambda x: x > 0, domain_text="x > 0", dtext=("1/{0}",), flops=10,
              parse=("log", "ln"), ufunc=np.log),
    Primitive("sqrt", np.sqrt, (lambda x, out: 0.5 / out,), jax="numpy.sqrt",
              domain=lambda x: x > 0, domain_text="x > 0", dtext=("1/(2*sqrt({0}))",),
              flops=4, parse=("sqrt",), ufunc=np.sqrt),
    Primitive("sin", np.sin, (lambda x, out: np.cos(x),), sympy=sympy.sin, jax="numpy.sin",
              dtext=("cos({0})",), flops=10, parse=("sin",), ufunc=np.sin),
    Primitive("cos", np.cos, (lambda x, out: -np.sin(x),), sympy=sympy.cos, jax="numpy.cos",
              dtext=("-sin({0})",), flops=10, parse=("cos",), ufunc=np.cos),
    Primitive("tan", np.tan, (lambda x, out: 1.0 + out * out,), sympy=sympy.tan,
              jax="numpy.tan", domain=lambda x: np.cos(x) != 0, domain_text="cos(x) != 0",
              dtext=("1 + tan({0})**2",), flops=10, parse=("tan",), ufunc=np.tan),
    Primitive("asin", np.arcsin, (lambda x, out: 1.0 / np.sqrt(1.0 - x * x),),
              sympy=sympy.asin, jax="numpy.arcsin", domain=lambda x: np.abs(x) < 1,
              domain_text="-1 < x < 1", dtext=("1/sqrt(1 - {0}**2)",), flops=10,
              parse=("asin", "arcsin"), ufunc=np.arcsin),
    Primitive("acos", np.arccos, (lambda x, out: -1.0 / np.sqrt(1.0 - x * x),),
              sympy=sympy.acos, jax="numpy.arccos", domain=lambda x: np.abs(x) < 1,
              domain_text="-1 < x < 1", dtext=("-1/sqrt(1 - {0}**2)",), flops=10,
              parse=("acos", "arccos"), ufunc=np.arccos),
    Primitive("atan", np.arctan, (lambda x, out: 1.0 / (1.0 + x * x),), sympy=sympy.atan,
              jax="numpy.arctan", dtext=("1/(1 + {0}**2)",), flops=10,
              parse=("atan", "arctan"), ufunc=np.arctan),
    Primitive("atan2", np.arctan2,
              (lambda y, x, out: x / (x * x + y * y), lambda y, x, out: -y / (x * x + y * y)),
              sympy=sympy.atan2, jax="numpy.arctan2",
              domain=lambda y, x: (x > 0) | (y != 0),
              domain_text="not on the branch cut y = 0, x <= 0",
              dtext=("{1}/({0}**2 + {1}**2)", "-{0}/({0}**2 + {1}**2)"), flops=12,
              parse=("atan2", "arctan2"), ufunc=np.arctan2),
    Primitive("sinh", np.sinh, (lambda x, out: np.cosh(x),), sympy=sympy.sinh,
              jax="numpy.sinh", dtext=("cosh({0})",), flops=10, parse=("sinh",),
              ufunc=np.sinh),
    Primitive("cosh", np.cosh, (lambda x, out: np.sinh(x),), sympy=sympy.cosh,
              jax="numpy.cosh", dtext=("sinh({0})",), flops=10, parse=("cosh",),
              ufunc=np.cosh),
    Primitive("tanh", np.tanh, (lambda x, out: 1.0 - out * out,), sympy=sympy.tanh,
              jax="numpy.tanh", dtext=("1 - tanh({0})**2",), flops=10, parse=("tanh",),
              ufunc=np.tanh),
    Primitive("asinh", np.arcsinh, (lambda x, out: 1.0 / np.sqrt(x * x + 1.0),),
              sympy=sympy.asinh, jax="numpy.arcsinh", dtext=("1/sqrt({0}**2 + 1)",),
              flops=10, parse=("asinh", "arcsinh"), ufunc=np.arcsinh),
    Primitive("acosh", np.arccosh, (lambda x, out: 1.0 / np.sqrt(x * x - 1.0),),
              sympy=sympy.acosh, jax="numpy.arccosh", domain=lambda x: x > 1,
              domain_text="x > 1", dtext=("1/sqrt({0}**2 - 1)",), flops=10,
              parse=("acosh", "arccosh"), ufunc=np.arccosh),
    Primitive("atanh", np.arctanh, (lambda x, out: 1.0 / (1.0 - x * x),), sympy=sympy.atanh,
              jax="numpy.arctanh", domain=lambda x: np.abs(x) < 1, domain_text="-1 < x < 1",
              dtext=("1/(1 - {0}**2)",), flops=10, parse=("atanh", "arctanh"),
              ufunc=np.arctanh),
    Primitive("erf", _erf, (lambda x, out: (2.0 / math.sqrt(math.pi)) * np.exp(-x * x),),
              sympy=sympy.erf, jax="scipy.special.erf", dtext=("2*exp(-{0}**2)/sqrt(pi)",),
              flops=20, parse=("erf",)),
    Primitive("abs", np.abs, (lambda x, out: np.sign(x),), sympy=sympy.Abs, jax="numpy.abs",
              domain=lambda x: x != 0, domain_text="x != 0 (abs has a kink at 0)",
              dtext=("sign({0})",), parse=("abs", "Abs"), smooth=False, ufunc=np.abs),
    Primitive("sign", np.sign, (_sign_partial,), sympy=sympy.sign, jax="numpy.sign",
              domain=lambda x: x != 0, domain_text="x != 0 (sign jumps at 0)", dtext=("0",),
              parse=("sign",), smooth=False, ufunc=np.sign),
    # SymPy's derivative of sign (so in Hessians of abs and sign); no parser name
    Primitive("dirac", _dirac, (lambda x, *rest: 0.0 * x,), sympy=sympy.DiracDelta,
              jax="numpy.zeros_like", domain=lambda x, *rest: x != 0,
              domain_text="x != 0 (the delta is concentrated at 0)", dtext=("0",),
              smooth=False),
    Primitive("sigmoid", _sigmoid, (lambda x, out: out * (1.0 - out),),
              sympy=sympy_ext.sigmoid, jax="nn.sigmoid",
              dtext=("sigmoid({0})*(1 - sigmoid({0}))",), flops=12, parse=("sigmoid",)),
    Primitive("softplus", _softplus, (lambda x, out: ROWS["sigmoid"](x),),
              sympy=sympy_ext.softplus, jax="nn.softplus", dtext=("sigmoid({0})",), flops=12,
              parse=("softplus",)),
    Primitive("log1p", np.log1p, (lambda x, out: 1.0 / (1.0 + x),), jax="numpy.log1p",
              domain=lambda x: x > -1, domain_text="x > -1", dtext=("1/(1 + {0})",),
              flops=10, ufunc=np.log1p),
    Primitive("expm1", np.expm1, (lambda x, out: out + 1.0,), jax="numpy.expm1",
              dtext=("exp({0})",), flops=10, ufunc=np.expm1),
    # at a tie each argument gets half (as in JAX): a subgradient, like max/min's split
    Primitive("maximum", np.maximum, (lambda x, y, out: _wins(x, y), lambda x, y, out: _wins(y, x)),
              jax="numpy.maximum", domain=lambda x, y: x != y,
              domain_text="x != y (maximum has a kink where they tie)",
              dtext=("[{0} > {1}]", "[{0} < {1}]"), smooth=False, ufunc=np.maximum),
    Primitive("minimum", np.minimum, (lambda x, y, out: _wins(y, x), lambda x, y, out: _wins(x, y)),
              jax="numpy.minimum", domain=lambda x, y: x != y,
              domain_text="x != y (minimum has a kink where they tie)",
              dtext=("[{0} < {1}]", "[{0} > {1}]"), smooth=False, ufunc=np.minimum),
]

#: name -> row
ROWS: dict[str, Primitive] = {row.name: row for row in ROW_LIST}

#: NumPy ufunc -> row, for the dispatch protocols
UFUNC_ROWS: dict[Any, Primitive] = {row.ufunc: row for row in ROW_LIST if row.ufunc is not None}

#: function names the parser accepts -> row
PARSE_FUNCTIONS: dict[str, Primitive] = {n: row for row in ROW_LIST for n in row.parse}

#: SymPy head -> row (Add, Mul and Pow are lowered specially by the Program builder)
SYMPY_ROWS: dict[Any, Primitive] = {row.sympy: row for row in ROW_LIST if row.sympy is not None}


def partial_text(row: Primitive, arg_names: list[str], out_name: str) -> list[str]:
    """The row's local partials as text over the given argument names.

    >>> partial_text(ROWS["mul"], ["x", "y"], "z")
    ['y', 'x']
    """
    return [t.format(*arg_names, out=out_name) for t in row.dtext]
