"""SymPy expressions evaluated at high precision (mpmath), without ``lambdify`` or recursion.

A :class:`Plan` lists the distinct nodes of some expressions in evaluation order (shared
subexpressions once, an explicit stack instead of recursion, so deep expressions are fine)
and evaluates them at a point with ``mpmath`` at a chosen number of digits. Values are real
or ``None``: ``None`` means undefined there (a logarithm of a negative number, a division by
zero, a real power of a negative number, which SymPy's principal branch makes complex) or too
large to be worth computing: :data:`TOO_LARGE` (more than :data:`MAX_BITS` bits of magnitude,
so ``exp`` of a huge number cannot stall the evaluation; such a point is left undecided).

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> plan = Plan([sympy.Rational(63, 10) * x**2, sympy.log(x)], ["x"])
>>> [mpmath.nstr(v, 20) if v is not None else v for v in plan.evaluate([2.0], 50)]
['25.2', '0.69314718055994530942']
>>> plan.evaluate([-1.0], 50)[1] is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import sympy
from mpmath import libmp

from .. import sympy_ext

MAX_BITS = 4000  #: values beyond 2**MAX_BITS (about 1e1204) are not computed
MAX_SPAN = 20_000  #: extra bits a sum may carry to keep cancelling terms exact
_MAX_LN = MAX_BITS * math.log(2)
Value = Any  # mpmath.mpf, None (undefined) or TOO_LARGE


class _TooLarge:
    def __repr__(self) -> str:
        return "TOO_LARGE"


TOO_LARGE = _TooLarge()  #: the value of a node beyond 2**MAX_BITS (and of all that use it)


def defined(v: Value) -> bool:
    """A real value (not undefined, not too large)."""
    return v is not None and v is not TOO_LARGE


def _real(fn: Callable[..., Any]) -> Callable[..., Value]:
    """A function of mpf arguments that answers None outside its real domain."""
    def call(*args: Value) -> Value:
        try:
            v = fn(*args)
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
        if isinstance(v, mpmath.mpc):
            return v.real if v.imag == 0 else None
        if v is not None and v is not TOO_LARGE and v and _mag(v) > MAX_BITS:
            return TOO_LARGE
        return v
    return call


def _exp(x):
    return TOO_LARGE if x > _MAX_LN else mpmath.exp(x)


def _log(x):
    return mpmath.log(x) if x > 0 else None


def _tan(x):
    c = mpmath.cos(x)
    return None if c == 0 else mpmath.sin(x) / c


def _inside(lo, hi, fn, closed=True):
    def f(x):
        ok = lo <= x <= hi if closed else lo < x < hi
        return fn(x) if ok else None
    return f


def _hyper(fn):
    return lambda x: TOO_LARGE if abs(x) > _MAX_LN else fn(x)


def _atan2(y, x):
    return None if x == 0 and y == 0 else mpmath.atan2(y, x)


def _sigmoid(x):
    return mpmath.exp(x) if -x > _MAX_LN else 1 / (1 + mpmath.exp(-x))


def _softplus(x):
    if x > 0:
        return x + mpmath.log1p(mpmath.exp(-x))
    return mpmath.log1p(mpmath.exp(x))


def _away_from_zero(fn):
    return lambda x, *rest: None if x == 0 else fn(x)


def _gamma(x):
    return None if x <= 0 and x == mpmath.floor(x) else mpmath.gamma(x)


def _heaviside(x, *rest):
    return None if x == 0 else mpmath.mpf(1 if x > 0 else 0)


#: SymPy head -> function of mpf values (None outside the real domain)
FUNCTIONS: dict[Any, Callable[..., Value]] = {head: _real(fn) for head, fn in {
    sympy.exp: _exp, sympy.log: _log,
    sympy.sin: mpmath.sin, sympy.cos: mpmath.cos, sympy.tan: _tan,
    sympy.cot: lambda x: None if mpmath.sin(x) == 0 else mpmath.cos(x) / mpmath.sin(x),
    sympy.sec: lambda x: None if mpmath.cos(x) == 0 else 1 / mpmath.cos(x),
    sympy.csc: lambda x: None if mpmath.sin(x) == 0 else 1 / mpmath.sin(x),
    sympy.asin: _inside(-1, 1, mpmath.asin), sympy.acos: _inside(-1, 1, mpmath.acos),
    sympy.atan: mpmath.atan, sympy.atan2: _atan2,
    sympy.sinh: _hyper(mpmath.sinh), sympy.cosh: _hyper(mpmath.cosh), sympy.tanh: mpmath.tanh,
    sympy.asinh: mpmath.asinh, sympy.acosh: lambda x: mpmath.acosh(x) if x >= 1 else None,
    sympy.atanh: _inside(-1, 1, mpmath.atanh, closed=False),
    sympy.erf: mpmath.erf, sympy.erfc: mpmath.erfc,
    sympy.Abs: abs, sympy.sign: lambda x: mpmath.mpf(mpmath.sign(x)),
    sympy.DiracDelta: _away_from_zero(lambda x: mpmath.mpf(0)),
    sympy.Heaviside: _heaviside,
    sympy.floor: mpmath.floor, sympy.ceiling: mpmath.ceil,
    sympy.Min: lambda *a: min(a), sympy.Max: lambda *a: max(a),
    sympy.gamma: _gamma,
    sympy_ext.sigmoid: _sigmoid, sympy_ext.softplus: _softplus,
}.items()}


def _mag(v: Value) -> int:
    """Bits of magnitude of a nonzero mpf (exponent + mantissa bits)."""
    sign, man, exp, bc = v._mpf_
    return exp + bc if man else -(1 << 62)


def _add(*args):
    """The sum rounded once: partial sums carry enough bits that terms which cancel exactly
    (8**300 - 8**300 + 6) leave the rest intact (mpmath's fsum would not)."""
    terms = [a._mpf_ for a in args if a]
    if not terms:
        return mpmath.mpf(0)
    mags = [_mag(a) for a in args if a]
    prec = mpmath.mp.prec + min(max(mags) - min(mags), MAX_SPAN) + 10
    total = libmp.fzero
    for t in terms:
        total = libmp.mpf_add(total, t, prec, libmp.round_nearest)
    return +mpmath.mpf(total)


def _mul(*args):
    return mpmath.fprod(args)


def _pow(base, exp, integer: int | None):
    """``base**exp`` on SymPy's real branch; ``integer`` is the exponent when it is a
    literal integer."""
    if integer is not None:
        if base == 0:
            return None if integer < 0 else mpmath.mpf(0 if integer else 1)
        if abs(integer) * abs(float(mpmath.log(abs(base), 2))) > MAX_BITS:
            return TOO_LARGE
        return base ** integer
    if base > 0:
        y = exp * mpmath.log(base)
        return TOO_LARGE if y > _MAX_LN else mpmath.exp(y)
    if base == 0:
        return mpmath.mpf(0) if exp > 0 else None
    return None  # a real power of a negative number is complex on SymPy's principal branch


class Plan:
    """Expressions over named variables, ready for :meth:`evaluate` at any precision."""

    def __init__(self, exprs: Sequence[Any], variables: Sequence[str]):
        self.variables = list(variables)
        self.ops: list[tuple[str, Any, tuple[int, ...]]] = []
        self.index: dict[Any, int] = {}
        self.outputs = [self._add_tree(sympy.sympify(e)) for e in exprs]
        self._numbers: dict[tuple[int, int], Value] = {}

    def __len__(self) -> int:
        return len(self.ops)

    # -- building -------------------------------------------------------------------------
    def _add_tree(self, root: Any) -> int:
        stack = [(root, False)]
        while stack:
            e, expanded = stack.pop()
            if e in self.index:
                continue
            kind, payload, children = self._classify(e)
            if expanded or not children:
                self.index[e] = len(self.ops)
                self.ops.append((kind, payload, tuple(self.index[c] for c in children)))
                continue
            stack.append((e, True))
            stack.extend((c, False) for c in reversed(children) if c not in self.index)
        return self.index[root]

    def _classify(self, e: Any) -> tuple[str, Any, tuple]:
        if e.is_Symbol:
            if e.name not in self.variables:
                raise KeyError(f"{e.name} is not one of the variables {self.variables}")
            return "var", self.variables.index(e.name), ()
        if e.is_Number or e.is_NumberSymbol:
            return "num", e, ()
        if e.is_Add:
            return "fn", _add, e.args
        if e.is_Mul:
            return "fn", _mul, e.args
        if e.is_Pow:
            b, x = e.args
            if x.is_Integer:
                return "pow", int(x), (b,)
            return "pow", None, (b, x)
        fn = FUNCTIONS.get(e.func)
        if fn is not None and all(isinstance(a, sympy.Expr) for a in e.args):
            return "fn", fn, e.args
        return "sympy", e, ()  # anything else: SymPy's own evalf at the point

    # -- evaluating -----------------------------------------------------------------------
    def evaluate(self, point: Sequence[float], dps: int) -> list[Value]:
        """Values of the outputs at ``point`` (one float per variable) with ``dps`` digits."""
        return self.evaluate_sized(point, dps)[0]

    def evaluate_sized(self, point: Sequence[float], dps: int
                       ) -> tuple[list[Value], list[int]]:
        """Values of the outputs, and for each the bits of magnitude of the largest value
        met on the way (rounding errors are relative to it: ``8**300 - 8**300 + 6`` is 6
        only with more than 271 digits)."""
        with mpmath.workdps(dps):
            xs = [mpmath.mpf(float(v)) for v in point]
            vals: list[Value] = [None] * len(self.ops)
            sizes = [0] * len(self.ops)
            for i, (kind, payload, args) in enumerate(self.ops):
                v = vals[i] = self._step(kind, payload, args, vals, xs, dps)
                own = _mag(v) if defined(v) and v else -(1 << 62)
                sizes[i] = max([own, *(sizes[j] for j in args)])
            return [vals[o] for o in self.outputs], [sizes[o] for o in self.outputs]

    def _step(self, kind, payload, args, vals, xs, dps) -> Value:
        if kind == "var":
            return xs[payload]
        if kind == "num":
            return self._number(payload, dps)
        if kind == "sympy":
            v = _sympy_value(payload, self.variables, xs, dps)
        else:
            a = [vals[j] for j in args]
            if any(v is None for v in a):
                return None
            if any(v is TOO_LARGE for v in a):
                return TOO_LARGE
            v = _pow(a[0], a[1] if len(a) > 1 else None, payload) if kind == "pow" \
                else payload(*a)
        if defined(v) and v and _mag(v) > MAX_BITS:
            return TOO_LARGE
        return v

    def _number(self, e: Any, dps: int) -> Value:
        key = (id(e), dps)
        v = self._numbers.get(key)
        if v is None:
            v = _number(e, dps)
            self._numbers[key] = v
        return v


def _number(e: Any, dps: int) -> Value:
    if e.is_Rational:
        return mpmath.mpf(e.p) / e.q
    if e.is_Float:
        return mpmath.mpf(e._mpf_)
    if e is sympy.pi:
        return +mpmath.pi
    if e is sympy.E:
        return +mpmath.e
    v = e.evalf(dps + 5)
    return mpmath.mpf(v._mpf_) if v.is_Float else None


def _sympy_value(e: Any, variables: list[str], xs: list[Value], dps: int) -> Value:
    """Rare heads (Piecewise, functions added later): SymPy's evalf with the point put in."""
    try:
        subs = {s: sympy.Float(xs[variables.index(s.name)], dps) for s in e.free_symbols}
        v = e.xreplace(subs).evalf(dps)
    except Exception:  # noqa: BLE001  (undefined there, whatever the reason)
        return None
    if v.is_Number and v.is_real and v.is_finite:
        return mpmath.mpf(sympy.Float(v, dps)._mpf_)
    return None
