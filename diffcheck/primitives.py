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
>>> sorted(PARSE_FUNCTIONS, key=str.lower)[:4]
['abs', 'Abs', 'acos', 'acosh']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from . import sympy_ext
from .errors import ParseError
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
        domain_text: the same in words, for error messages: a template over the argument
            texts ``{0}``, ``{1}`` (``"{0} > 0"``), so a message can name the subexpression
            that leaves the domain (``log(t - 5)``: its argument ``t - 5``).
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
        build: how the parser builds the SymPy form of a call, when it is not ``sympy(*args)``
            (``log10(x)`` is ``log(x)/log(10)`` in SymPy); it may raise ParseError (without a
            column) for arguments it refuses.
        nargs: the argument counts the parser accepts (default: the arity).
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
    build: Callable[..., Any] | None = None
    nargs: Sequence[int] = ()
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


# -- how the parser builds some calls (the ``build`` column) ----------------------------------
_SEVERAL = range(2, 65)  #: max and min take 2 to 64 arguments


def _build_log(x, base=None):
    """``log(x)``, or ``log(x, base)`` = log(x)/log(base); a numeric base must be > 0, != 1."""
    if base is None:
        return sympy.log(x)
    if base.is_Number and (base <= 0 or base == 1):
        raise ParseError(f"log(x, base) needs a base > 0 other than 1, got {base}")
    return sympy.log(x, base)


def _lattice(head, args):
    """max/min of several arguments as a balanced tree of unevaluated pairs: SymPy's own
    n-ary Max compares every pair of arguments (seconds for 20 of them), and its derivative
    of an n-ary Max builds n-ary Max again."""
    args = list(args)
    while len(args) > 1:
        pairs = [head(*args[i:i + 2], evaluate=False) for i in range(0, len(args) - 1, 2)]
        args = pairs + args[len(args) - len(args) % 2:]
    return args[0]


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
              jax="numpy.divide", domain=lambda x, y: y != 0, domain_text="{1} != 0",
              dtext=("1/{1}", "-{0}/{1}**2"), flops=4, infix="/", ufunc=np.divide),
    Primitive("pow", np.power,
              (lambda x, y, out: y * x ** (y - 1), lambda x, y, out: out * np.log(x)),
              sympy=sympy.Pow, jax="numpy.power", domain=_pow_domain,
              domain_text="{0} > 0, or {0} != 0 with a whole-number exponent {1}",
              varying_domain=lambda x, y: x > 0,
              varying_domain_text="{0} > 0 (the exponent varies, and the derivative in the "
                                  "exponent {1} needs log({0}))",
              dtext=("{1}*{0}**({1} - 1)", "{0}**{1}*log({0})"), flops=10, infix="**",
              ufunc=np.power),
    Primitive("neg", np.negative, (lambda x, out: -1.0,), jax="numpy.negative",
              dtext=("-1",), ufunc=np.negative),
    # -- elementary functions -----------------------------------------------------------
    Primitive("exp", np.exp, (lambda x, out: out,), sympy=sympy.exp, jax="numpy.exp",
              dtext=("exp({0})",), flops=10, parse=("exp",), ufunc=np.exp),
    Primitive("log", np.log, (lambda x, out: 1.0 / x,), sympy=sympy.log, jax="numpy.log",
              domain=lambda x: x > 0, domain_text="{0} > 0", dtext=("1/{0}",), flops=10,
              parse=("log", "ln"), build=_build_log, nargs=(1, 2), ufunc=np.log),
    Primitive("sqrt", np.sqrt, (lambda x, out: 0.5 / out,), jax="numpy.sqrt",
              domain=lambda x: x > 0, domain_text="{0} > 0", dtext=("1/(2*sqrt({0}))",),
              flops=4, parse=("sqrt",), build=sympy.sqrt, ufunc=np.sqrt),
    Primitive("sin", np.sin, (lambda x, out: np.cos(x),), sympy=sympy.sin, jax="numpy.sin",
              dtext=("cos({0})",), flops=10, parse=("sin",), ufunc=np.sin),
    Primitive("cos", np.cos, (lambda x, out: -np.sin(x),), sympy=sympy.cos, jax="numpy.cos",
              dtext=("-sin({0})",), flops=10, parse=("cos",), ufunc=np.cos),
    Primitive("tan", np.tan, (lambda x, out: 1.0 + out * out,), sympy=sympy.tan,
              jax="numpy.tan", domain=lambda x: np.cos(x) != 0, domain_text="cos({0}) != 0",
              dtext=("1 + tan({0})**2",), flops=10, parse=("tan",), ufunc=np.tan),
    Primitive("asin", np.arcsin, (lambda x, out: 1.0 / np.sqrt(1.0 - x * x),),
              sympy=sympy.asin, jax="numpy.arcsin", domain=lambda x: np.abs(x) < 1,
              domain_text="-1 < {0} < 1", dtext=("1/sqrt(1 - {0}**2)",), flops=10,
              parse=("asin", "arcsin"), ufunc=np.arcsin),
    Primitive("acos", np.arccos, (lambda x, out: -1.0 / np.sqrt(1.0 - x * x),),
              sympy=sympy.acos, jax="numpy.arccos", domain=lambda x: np.abs(x) < 1,
              domain_text="-1 < {0} < 1", dtext=("-1/sqrt(1 - {0}**2)",), flops=10,
              parse=("acos", "arccos"), ufunc=np.arccos),
    Primitive("atan", np.arctan, (lambda x, out: 1.0 / (1.0 + x * x),), sympy=sympy.atan,
              jax="numpy.arctan", dtext=("1/(1 + {0}**2)",), flops=10,
              parse=("atan", "arctan"), ufunc=np.arctan),
    Primitive("atan2", np.arctan2,
              (lambda y, x, out: x / (x * x + y * y), lambda y, x, out: -y / (x * x + y * y)),
              sympy=sympy.atan2, jax="numpy.arctan2",
              domain=lambda y, x: (x > 0) | (y != 0),
              domain_text="{1} > 0 or {0} != 0 (off the branch cut {0} = 0, {1} <= 0)",
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
              domain_text="{0} > 1", dtext=("1/sqrt({0}**2 - 1)",), flops=10,
              parse=("acosh", "arccosh"), ufunc=np.arccosh),
    Primitive("atanh", np.arctanh, (lambda x, out: 1.0 / (1.0 - x * x),), sympy=sympy.atanh,
              jax="numpy.arctanh", domain=lambda x: np.abs(x) < 1, domain_text="-1 < {0} < 1",
              dtext=("1/(1 - {0}**2)",), flops=10, parse=("atanh", "arctanh"),
              ufunc=np.arctanh),
    Primitive("erf", _erf, (lambda x, out: (2.0 / math.sqrt(math.pi)) * np.exp(-x * x),),
              sympy=sympy.erf, jax="scipy.special.erf", dtext=("2*exp(-{0}**2)/sqrt(pi)",),
              flops=20, parse=("erf",)),
    Primitive("abs", np.abs, (lambda x, out: np.sign(x),), sympy=sympy.Abs, jax="numpy.abs",
              domain=lambda x: x != 0, domain_text="{0} != 0 (abs has a kink at 0)",
              dtext=("sign({0})",), parse=("abs", "Abs"), smooth=False, ufunc=np.abs),
    Primitive("sign", np.sign, (_sign_partial,), sympy=sympy.sign, jax="numpy.sign",
              domain=lambda x: x != 0, domain_text="{0} != 0 (sign jumps at 0)", dtext=("0",),
              parse=("sign",), smooth=False, ufunc=np.sign),
    # SymPy's derivative of sign (so in Hessians of abs and sign); no parser name
    Primitive("dirac", _dirac, (lambda x, *rest: 0.0 * x,), sympy=sympy.DiracDelta,
              jax="numpy.zeros_like", domain=lambda x, *rest: x != 0,
              domain_text="{0} != 0 (the delta is concentrated at 0)", dtext=("0",),
              smooth=False),
    Primitive("sigmoid", _sigmoid, (lambda x, out: out * (1.0 - out),),
              sympy=sympy_ext.sigmoid, jax="nn.sigmoid",
              dtext=("sigmoid({0})*(1 - sigmoid({0}))",), flops=12, parse=("sigmoid",)),
    Primitive("softplus", _softplus, (lambda x, out: ROWS["sigmoid"](x),),
              sympy=sympy_ext.softplus, jax="nn.softplus", dtext=("sigmoid({0})",), flops=12,
              parse=("softplus",)),
    Primitive("log1p", np.log1p, (lambda x, out: 1.0 / (1.0 + x),), jax="numpy.log1p",
              domain=lambda x: x > -1, domain_text="{0} > -1", dtext=("1/(1 + {0})",),
              flops=10, ufunc=np.log1p),
    Primitive("expm1", np.expm1, (lambda x, out: out + 1.0,), jax="numpy.expm1",
              dtext=("exp({0})",), flops=10, ufunc=np.expm1),
    # at a tie each argument gets half (as in JAX): a subgradient, like max/min's split
    Primitive("maximum", np.maximum,
              (lambda x, y, out: _wins(x, y), lambda x, y, out: _wins(y, x)),
              sympy=sympy.Max, jax="numpy.maximum", domain=lambda x, y: x != y,
              domain_text="{0} != {1} (max has a kink where they tie)",
              dtext=("[{0} > {1}]", "[{0} < {1}]"), parse=("max", "Max"),
              build=lambda *a: _lattice(sympy.Max, a), nargs=_SEVERAL, smooth=False,
              ufunc=np.maximum),
    Primitive("minimum", np.minimum,
              (lambda x, y, out: _wins(y, x), lambda x, y, out: _wins(x, y)),
              sympy=sympy.Min, jax="numpy.minimum", domain=lambda x, y: x != y,
              domain_text="{0} != {1} (min has a kink where they tie)",
              dtext=("[{0} < {1}]", "[{0} > {1}]"), parse=("min", "Min"),
              build=lambda *a: _lattice(sympy.Min, a), nargs=_SEVERAL, smooth=False,
              ufunc=np.minimum),
]


# =============================================================================================
# Functions people write daily: reciprocal trigonometry, log10/log2, relu, floor/ceil, the
# gamma family, and the step function in the derivatives of max/min/relu. SymPy writes some of
# them as other heads (log10(x) is log(x)/log(10), relu(x) is Max(0, x), factorial(x) is
# gamma(x + 1), SymPy's derivative of gamma is gamma(x)*polygamma(0, x)); such rows carry a
# ``build`` and no SymPy head, and serve the parser, the NumPy engines and the trace.
# =============================================================================================
MAX_GAMMA_ARGUMENT = 171  #: size of a numeric argument of gamma, lgamma, factorial, polygamma
MAX_POLYGAMMA_ORDER = 30  #: largest order n of polygamma(n, x)


def _elementwise(scalar: Callable[[float], float]) -> Callable[[Any], Any]:
    """A float function on floats and arrays (NaN where it raises: poles, overflow)."""
    def safe(v: float) -> float:
        try:
            return scalar(v)
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.nan

    vector = np.vectorize(safe, otypes=[float])

    def run(x):
        if not np.ndim(x):
            return safe(float(x))
        with np.errstate(all="ignore"):
            return vector(x)

    return run


def _at_poles(x):
    """True at the poles 0, -1, -2, ... of gamma."""
    return (x <= 0) & (np.floor(x) == x)


def _gamma_scalar(v: float) -> float:
    try:
        return math.gamma(v)
    except OverflowError:  # past 171.6; poles raise ValueError (NaN)
        return math.inf


_gamma = _elementwise(_gamma_scalar)
def _lgamma_scalar(v: float) -> float:
    try:
        return math.lgamma(v)
    except OverflowError:
        return math.inf


_lgamma = _elementwise(_lgamma_scalar)

# B_2, B_4, ..., B_24
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798, -174611 / 330, 854513 / 138, -236364091 / 2730)


def _psi_asymptotic(n: int, y: np.ndarray) -> np.ndarray:
    """psi^(n)(y) by its asymptotic series (accurate to rounding for y >= 16 + 2n)."""
    if n == 0:
        out = np.log(y) - 0.5 / y
        for k, b in enumerate(_BERNOULLI, start=1):
            out -= b / (2 * k * y ** (2 * k))
        return out
    out = math.factorial(n - 1) / y**n + math.factorial(n) / (2 * y ** (n + 1))
    for k, b in enumerate(_BERNOULLI, start=1):
        out += b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / y ** (2 * k + n)
    return (-1) ** (n + 1) * out


def _psi_right(n: int, x: np.ndarray) -> np.ndarray:
    """psi^(n)(x) for x >= 1/2: shift up with psi^(n)(y) = psi^(n)(y+1) - (-1)^n n!/y^(n+1)."""
    y, acc, start = x.copy(), np.zeros_like(x), 16.0 + 2 * n
    low = y < start
    while low.any():
        acc[low] += y[low] ** -(n + 1)
        y[low] += 1.0
        low = y < start
    return _psi_asymptotic(n, y) - (-1) ** n * math.factorial(n) * acc


def _cot_derivative(n: int, x: np.ndarray) -> np.ndarray:
    """d^n/dx^n cot(pi x) = pi^n P_n(cot(pi x)), P_0(c) = c, P_{k+1} = -(1 + c^2) P_k'(c)."""
    p = [0.0, 1.0]  # coefficients, lowest power first
    for _ in range(n):
        d = [i * p[i] for i in range(1, len(p))]
        p = [0.0] * (len(d) + 2)
        for i, v in enumerate(d):
            p[i] -= v
            p[i + 2] -= v
    c = 1.0 / np.tan(math.pi * (x - np.round(x)))  # cot has period 1; the shift is exact
    out = np.zeros_like(x)
    for coeff in reversed(p):
        out = out * c + coeff
    return math.pi**n * out


def _psi(n: int, x: np.ndarray) -> np.ndarray:
    """psi^(n)(x) for a whole number n >= 0; x < 1/2 by the reflection formula
    psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi d^n/dx^n cot(pi x); NaN at the poles."""
    out = np.full(x.shape, np.nan)
    right = x >= 0.5
    left = (x < 0.5) & ~_at_poles(x)
    out[right & np.isfinite(x)] = _psi_right(n, x[right & np.isfinite(x)])
    out[np.isposinf(x)] = np.inf if n == 0 else 0.0
    xl = x[left & np.isfinite(x)]
    out[left & np.isfinite(x)] = (-1) ** n * _psi_right(n, 1.0 - xl) - \
        math.pi * _cot_derivative(n, xl)
    return out


def _polygamma(n, x):
    """The polygamma function psi^(n)(x) (n = 0: digamma), without SciPy.

    >>> round(float(_polygamma(0, 1.0)), 12)  # -EulerGamma
    -0.577215664902
    """
    scalar = np.ndim(x) == 0 and np.ndim(n) == 0
    n, x = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(x, dtype=float))
    out = np.full(x.shape, np.nan)
    for order in np.unique(n[np.isfinite(n)]):
        if order >= 0 and order == int(order) and order <= MAX_POLYGAMMA_ORDER + 4:
            at = n == order
            out[at] = _psi(int(order), x[at])
    return float(out) if scalar else out


def _polygamma_domain(n, x):
    whole = (np.floor(n) == n) & (n >= 0)
    return whole & ~_at_poles(x)


def _heaviside(x, h0):
    return np.heaviside(x, h0)


def _zero_partial(*args):
    return 0.0 * args[0]


def _gamma_guard(name: str, args) -> None:
    """Numeric arguments SymPy would evaluate exactly (gamma(10**8) is an integer of 7e8
    digits) must stay small; gamma overflows float64 past 171 anyway."""
    for a in args:
        if a.is_Number and abs(a) > MAX_GAMMA_ARGUMENT:
            raise ParseError(f"{name}() of the number {a} is too large: numeric arguments of "
                             f"gamma, lgamma, factorial and polygamma must lie within "
                             f"+-{MAX_GAMMA_ARGUMENT} (gamma overflows float64 past 171)")


def _build_gamma(x):
    _gamma_guard("gamma", [x])
    return sympy.gamma(x)


def _build_lgamma(x):
    _gamma_guard("lgamma", [x])
    return sympy.loggamma(x)


def _build_factorial(x):
    _gamma_guard("factorial", [x])
    return sympy.gamma(x + 1)


def _build_polygamma(n, x):
    if n.is_Number and not (n.is_Integer and 0 <= n <= MAX_POLYGAMMA_ORDER):
        raise ParseError(f"the order n of polygamma(n, x) must be a whole number from 0 to "
                         f"{MAX_POLYGAMMA_ORDER}, got {n}")
    _gamma_guard("polygamma", [x])
    return sympy.polygamma(n, x)


def _build_rounding(head):
    """floor/ceil: a constant argument that is not a plain number stays unevaluated (SymPy
    would compute floor(exp(exp(exp(3)))) digit by digit); it is computed in float64."""
    return lambda x: head(x, evaluate=bool(x.is_Number or x.free_symbols))


_J = "diffcheck.engines.jax_forms:"  # JAX forms of rows JAX has no single function for

ROW_LIST += [
    Primitive("sec", lambda x: 1.0 / np.cos(x), (lambda x, out: out * out * np.sin(x),),
              sympy=sympy.sec, jax=_J + "sec", domain=lambda x: np.cos(x) != 0,
              domain_text="cos({0}) != 0", dtext=("sec({0})*tan({0})",), flops=14,
              parse=("sec",)),
    Primitive("csc", lambda x: 1.0 / np.sin(x), (lambda x, out: -out * out * np.cos(x),),
              sympy=sympy.csc, jax=_J + "csc", domain=lambda x: np.sin(x) != 0,
              domain_text="sin({0}) != 0", dtext=("-csc({0})*cot({0})",), flops=14,
              parse=("csc",)),
    Primitive("cot", lambda x: np.cos(x) / np.sin(x), (lambda x, out: -1.0 - out * out,),
              sympy=sympy.cot, jax=_J + "cot", domain=lambda x: np.sin(x) != 0,
              domain_text="sin({0}) != 0", dtext=("-1 - cot({0})**2",), flops=24,
              parse=("cot",)),
    Primitive("log10", np.log10, (lambda x, out: 1.0 / (x * math.log(10.0)),),
              jax="numpy.log10", domain=lambda x: x > 0, domain_text="{0} > 0",
              dtext=("1/({0}*log(10))",), flops=11, parse=("log10",),
              build=lambda x: sympy.log(x, 10)),
    Primitive("log2", np.log2, (lambda x, out: 1.0 / (x * math.log(2.0)),),
              jax="numpy.log2", domain=lambda x: x > 0, domain_text="{0} > 0",
              dtext=("1/({0}*log(2))",), flops=11, parse=("log2",),
              build=lambda x: sympy.log(x, 2)),
    # relu(x) is SymPy's Max(0, x); the Program builder lowers Max(0, e) to this row
    Primitive("relu", lambda x: np.maximum(x, 0.0), (lambda x, out: _wins(x, 0),),
              jax="nn.relu", domain=lambda x: x != 0,
              domain_text="{0} != 0 (relu has a kink at 0)", dtext=("[{0} > 0]",),
              parse=("relu",), build=lambda x: sympy.Max(0, x, evaluate=False), smooth=False),
    # SymPy's derivative of Max, Min and relu: Heaviside(x, 1/2) (its value at 0 is H0)
    Primitive("heaviside", _heaviside,
              (lambda x, h0, out: 0.0 * x, lambda x, h0, out: np.equal(x, 0) * 1.0),
              sympy=sympy.Heaviside, jax="numpy.heaviside", domain=lambda x, h0: x != 0,
              domain_text="{0} != 0 (the step is at 0)", dtext=("0", "[{0} == 0]"),
              parse=("heaviside", "Heaviside"), build=sympy.Heaviside, nargs=(1, 2),
              smooth=False),
    Primitive("floor", np.floor, (_zero_partial,), sympy=sympy_ext.floor, jax="numpy.floor",
              domain=lambda x: np.floor(x) != x,
              domain_text="{0} a non-integer (floor jumps at whole numbers)", dtext=("0",),
              parse=("floor",), build=_build_rounding(sympy_ext.floor), smooth=False),
    Primitive("ceil", np.ceil, (_zero_partial,), sympy=sympy_ext.ceiling, jax="numpy.ceil",
              domain=lambda x: np.ceil(x) != x,
              domain_text="{0} a non-integer (ceil jumps at whole numbers)", dtext=("0",),
              parse=("ceil", "ceiling"), build=_build_rounding(sympy_ext.ceiling),
              smooth=False),
    Primitive("gamma", _gamma, (lambda x, out: out * ROWS["polygamma"](0.0, x),),
              sympy=sympy.gamma, jax="scipy.special.gamma", domain=lambda x: ~_at_poles(x),
              domain_text="{0} other than 0, -1, -2, ... (the poles of gamma)",
              dtext=("gamma({0})*polygamma(0, {0})",), flops=40, parse=("gamma",),
              build=_build_gamma),
    # log|gamma(x)|, as math.lgamma, scipy.special.gammaln and JAX's gammaln (SymPy's
    # loggamma is complex for x < 0, but its derivative, polygamma(0, x), is the same)
    Primitive("lgamma", _lgamma, (lambda x, out: ROWS["polygamma"](0.0, x),),
              sympy=sympy.loggamma, jax="scipy.special.gammaln",
              domain=lambda x: ~_at_poles(x),
              domain_text="{0} other than 0, -1, -2, ... (the poles of gamma)",
              dtext=("polygamma(0, {0})",), flops=40, parse=("lgamma", "loggamma"),
              build=_build_lgamma),
    Primitive("factorial", lambda x: _gamma(x + 1.0),
              (lambda x, out: out * ROWS["polygamma"](0.0, x + 1.0),),
              jax=_J + "factorial", domain=lambda x: ~_at_poles(x + 1.0),
              domain_text="{0} other than -1, -2, -3, ... (the poles of factorial)",
              dtext=("gamma({0} + 1)*polygamma(0, {0} + 1)",), flops=41,
              parse=("factorial",), build=_build_factorial),
    # polygamma(n, x): the n-th derivative of digamma; the parser takes n a constant whole
    # number (the partial in n is never used)
    Primitive("polygamma", _polygamma,
              (lambda n, x, out: 0.0 * x, lambda n, x, out: ROWS["polygamma"](n + 1.0, x)),
              sympy=sympy.polygamma, jax=_J + "polygamma", domain=_polygamma_domain,
              domain_text="{0} a whole number >= 0 and {1} other than 0, -1, -2, ... (the poles)",
              dtext=("0", "polygamma({0} + 1, {1})"), flops=60, parse=("polygamma",),
              build=_build_polygamma),
]

#: name -> row
ROWS: dict[str, Primitive] = {row.name: row for row in ROW_LIST}

#: NumPy ufunc -> row, for the dispatch protocols
UFUNC_ROWS: dict[Any, Primitive] = {row.ufunc: row for row in ROW_LIST if row.ufunc is not None}

#: function names the parser accepts -> row
PARSE_FUNCTIONS: dict[str, Primitive] = {n: row for row in ROW_LIST for n in row.parse}

#: SymPy head -> row (Add, Mul and Pow are lowered specially by the Program builder)
SYMPY_ROWS: dict[Any, Primitive] = {row.sympy: row for row in ROW_LIST if row.sympy is not None}


def jax_function(row: Primitive) -> Callable[..., Any]:
    """The row's JAX function (imports JAX): ``row.jax`` is a dotted path under ``jax``
    (``"numpy.sin"``), or ``"module:name"`` for a JAX form written in diffcheck.

    >>> jax_function(ROWS["sin"]).__name__  # doctest: +SKIP
    'sin'
    """
    import importlib

    module, sep, attr = row.jax.partition(":")
    if not sep:
        module, _, attr = ("jax." + row.jax).rpartition(".")
    return getattr(importlib.import_module(module), attr)


def partial_text(row: Primitive, arg_names: list[str], out_name: str) -> list[str]:
    """The row's local partials as text over the given argument names.

    >>> partial_text(ROWS["mul"], ["x", "y"], "z")
    ['y', 'x']
    """
    return [t.format(*arg_names, out=out_name) for t in row.dtext]


# -- SciPy special functions --------------------------------------------------------------------
# Rows for scipy.special's ufuncs, built when one of them first reaches NumPy's dispatch on a
# traced value (then the user's code has imported SciPy; diffcheck never does), and entered
# in UFUNC_ROWS only: the parser keeps its own erf row above. Partials call SciPy's ufuncs
# again (digamma's is the Hurwitz zeta), so they run on duals and give second derivatives.

def _no_partial(what: str) -> Partial:
    def partial(*args: Any) -> Any:
        from .errors import UnsupportedError

        raise UnsupportedError(f"diffcheck has no derivative of {what}")
    return partial


def _not_a_pole(x: Any) -> Any:
    return (x > 0) | (x != np.floor(x))


def scipy_special_rows(sp: Any) -> list[Primitive]:
    """The rows of ``scipy.special``'s ufuncs (``sp`` is the imported module).

    >>> import scipy.special
    >>> [r.name for r in scipy_special_rows(scipy.special)][:4]
    ['expit', 'log_expit', 'erf', 'erfc']
    """
    import dataclasses

    two_over_root_pi = 2.0 / math.sqrt(math.pi)
    return [
        Primitive("expit", sp.expit, (lambda x, out: out * (1.0 - out),),
                  jax="scipy.special.expit", dtext=("expit({0})*(1 - expit({0}))",), flops=12,
                  ufunc=sp.expit),
        Primitive("log_expit", sp.log_expit, (lambda x, out: sp.expit(-x),),
                  jax="nn.log_sigmoid", dtext=("expit(-{0})",), flops=12, ufunc=sp.log_expit),
        dataclasses.replace(ROWS["erf"], impl=sp.erf, parse=(), ufunc=sp.erf),
        Primitive("erfc", sp.erfc, (lambda x, out: -two_over_root_pi * np.exp(-x * x),),
                  jax="scipy.special.erfc", dtext=("-2*exp(-{0}**2)/sqrt(pi)",), flops=20,
                  ufunc=sp.erfc),
        Primitive("gammaln", sp.gammaln, (lambda x, out: sp.psi(x),),
                  jax="scipy.special.gammaln", domain=_not_a_pole,
                  domain_text="x is not 0, -1, -2, ... (poles of gamma)",
                  dtext=("digamma({0})",), flops=20, ufunc=sp.gammaln),
        Primitive("digamma", sp.psi, (lambda x, out: sp.zeta(2.0, x),),
                  jax="scipy.special.digamma", domain=_not_a_pole,
                  domain_text="x is not 0, -1, -2, ... (poles of digamma)",
                  dtext=("polygamma(1, {0})",), flops=20, ufunc=sp.psi),
        Primitive("zeta", sp._ufuncs._zeta,
                  (_no_partial("the Hurwitz zeta function in its order s"),
                   lambda s, q, out: -s * sp.zeta(s + 1.0, q)),
                  jax="scipy.special.zeta", domain=lambda s, q: q > 0, domain_text="q > 0",
                  dtext=("", "-{0}*zeta({0} + 1, {1})"), flops=30, ufunc=sp._ufuncs._zeta),
        Primitive("xlogy", sp.xlogy, (lambda x, y, out: np.log(y), lambda x, y, out: x / y),
                  jax="scipy.special.xlogy", domain=lambda x, y: y > 0, domain_text="y > 0",
                  dtext=("log({1})", "{0}/{1}"), flops=12, ufunc=sp.xlogy),
        Primitive("xlog1py", sp.xlog1py,
                  (lambda x, y, out: np.log1p(y), lambda x, y, out: x / (1.0 + y)),
                  jax="scipy.special.xlog1py", domain=lambda x, y: y > -1,
                  domain_text="y > -1", dtext=("log1p({1})", "{0}/(1 + {1})"), flops=12,
                  ufunc=sp.xlog1py),
    ]
