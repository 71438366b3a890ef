"""The symbolic engine: SymPy's own derivatives, accumulated over the expression DAG.

Derivatives come from SymPy, never from the rule table: the local derivative of a node
``f(a, b)`` with respect to its argument ``a`` is ``sympy.diff(f(A, B), A)`` with dummy symbols
``A, B`` (each function's own ``fdiff``, Pow's own rule), with ``A, B`` then replaced by the
actual arguments; sums pass their adjoint through and products use the product rule, as
SymPy's ``Add``/``Mul`` differentiate. The gradient of an expression is built by reverse
accumulation over its DAG (shared subexpressions are one node, SymPy's structural hashing is
the key), so

- a term is differentiated only with respect to the symbols it contains, and a symbol's
  derivative collects one contribution per use: the work is linear in the size of the
  expression, not in (size x number of variables) as ``[diff(f, x) for x in xs]`` is;
- a subexpression shared by many derivatives (``4*x_i*S`` for ``S = sum(x_j**2)``) stays one
  object, so the compiled Program computes it once;
- a Hessian row is the gradient of a gradient entry, so only the pairs of symbols that occur
  together get an entry (the rest are zero without any work).

SymPy objects are built canonically (readable formulas such as ``2*x*y + 2*x + 2*y``), through
the templates of :mod:`diffcheck.canon` so that thousands of similar terms cost little; a huge
subexpression (more than :data:`~diffcheck.canon.MAX_SYMBOLS` symbols) is never distributed
over or copied: ``2*(x0**2 + ... + x999**2)`` stays a product. All formulas are compiled into
one Program (common subexpressions computed once) and evaluated at every point at once.

>>> import sympy
>>> x, y = sympy.symbols("x y", real=True)
>>> d = derive([x**2 * y + y], ["x", "y"], hessian=True)
>>> d.jacobian
[[2*x*y, x**2 + 1]]
>>> J, H = d.evaluate(np.array([[2.0, 3.0]]))
>>> J.tolist(), H[0, 0].tolist()
([[[12.0, 5.0]]], [[6.0, 4.0], [4.0, 0.0]])
>>> derive([x**2 * y + (x + y)**2], ["x", "y"]).jacobian
[[2*x*y + 2*x + 2*y, x**2 + 2*x + 2*y]]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy.core.mul import _keep_coeff
from sympy.printing.str import StrPrinter

from ..canon import Canon, fold_dag, paused_gc, substitute
from ..program import Program, has_free_symbols

ONE, ZERO = sympy.S.One, sympy.S.Zero
MUL_DIRECT = 16  #: products with more factors get each factor's cofactor from prefix/suffix
BRIEF_NODES = 300  #: formulas with more tree nodes than this are printed in brief
SMALL_WORK = 3000  #: (DAG nodes x symbols) up to which ``derive`` calls ``sympy.diff`` per entry
PRECISE_DIGITS = 50  #: digits of the high-precision evaluation (at least)
PRECISE_BUDGET = 60_000  #: most (DAG nodes x points) evaluated at high precision
PRECISE_SECONDS = 4.0  #: wall-clock budget of one high-precision evaluation


@dataclass
class SymbolicDerivatives:
    """Jacobian (m x n) and optional Hessians (m x n x n) as SymPy expressions."""

    variables: list[str]
    jacobian: list[list[Any]]
    hessian: list[list[list[Any]]] | None
    _program: Program | None = None
    _sizes: dict[int, int] = field(default_factory=dict, repr=False)
    _texts: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def program(self) -> Program:
        """All formulas compiled into one Program (shared subexpressions computed once)."""
        if self._program is None:
            flat = [e for row in self.jacobian for e in row]
            if self.hessian is not None:
                flat += [e for h in self.hessian for row in h for e in row]
            with paused_gc():
                self._program = Program.from_sympy(flat, self.variables)
        return self._program

    def evaluate(self, X: np.ndarray):
        """Values at points ``X`` (P, n): Jacobians (P, m, n), Hessians (P, m, n, n) or None."""
        P, n = X.shape
        m = len(self.jacobian)
        with np.errstate(all="ignore"):
            outs = self.program.evaluate([np.ascontiguousarray(X[:, i]) for i in range(n)])
        flat = np.empty((P, len(outs)))
        for k, o in enumerate(outs):
            flat[:, k] = o
        J = flat[:, : m * n].reshape(P, m, n)
        H = flat[:, m * n:].reshape(P, m, n, n) if self.hessian is not None else None
        return J, H

    def text(self, expr: Any) -> str:
        """A formula as text: ``str(expr)`` when small, a bounded summary when huge.

        The cost is bounded too (a huge formula is never printed in full), so reports and
        JSON stay proportional to the number of entries.

        >>> x = sympy.Symbol("x", real=True)
        >>> big = sympy.Add(*[sympy.Symbol(f"x{i}", real=True)**2 for i in range(500)])
        >>> d = SymbolicDerivatives(["x"], [[4*x*big]], None)
        >>> d.text(4*x*big)
        '4*x*(x0**2 + x1**2 + x10**2 + ... + x99**2) [formula of 1,504 nodes]'
        """
        from ..report import summarise

        if not expr.args:
            return str(expr)
        got = self._texts.get(id(expr))
        if got is None:
            size = _tree_size(expr, self._sizes)
            got = summarise(str(expr)) if size <= BRIEF_NODES else \
                f"{summarise(_BriefPrinter().doprint(expr))} [formula of {size:,} nodes]"
            self._texts[id(expr)] = got
        return got


def derive(exprs: Sequence[Any], variables: Sequence[str], *, hessian: bool = False,
           method: str = "auto") -> SymbolicDerivatives:
    """Differentiate each expression with respect to each variable (and twice, for Hessians).

    ``method="dag"`` accumulates over the expression DAG (linear work, shared formulas);
    ``"diff"`` calls ``sympy.diff`` once per entry (SymPy's own formula layout, quadratic
    work); ``"auto"`` takes ``"diff"`` while that costs less than :data:`SMALL_WORK` node
    visits, so small expressions print exactly as SymPy writes their derivatives.

    >>> x, y = sympy.symbols("x y", real=True)
    >>> d = derive([sympy.sin(x) * y], ["x", "y"], hessian=True)
    >>> d.jacobian, d.hessian
    ([[y*cos(x), sin(x)]], [[[-y*sin(x), cos(x)], [cos(x), 0]]])
    >>> derive([(x + y)**3], ["x", "y"], method="dag").jacobian
    [[3*(x + y)**2, 3*(x + y)**2]]
    """
    if method not in ("auto", "dag", "diff"):
        raise ValueError(f"method must be 'auto', 'dag' or 'diff', not {method!r}")
    exprs = [sympy.sympify(e) for e in exprs]
    with paused_gc():
        d = _derive(exprs, list(variables), hessian, method)
        if method == "auto" and _unevaluated(d):
            # sympy.diff leaves Derivative(sign(log(x)), x) alone, and writes the derivative
            # of abs(asin(x)) with re(asin(x)) and im(asin(x)), because log(x) and asin(x)
            # may be complex; diffcheck's functions are real wherever defined, which the DAG
            # method states by differentiating each head at real dummies
            d = _derive(exprs, list(variables), hessian, "dag")
        return d


def _unevaluated(d: SymbolicDerivatives) -> bool:
    entries = [e for row in d.jacobian for e in row]
    if d.hessian is not None:
        entries += [e for h in d.hessian for row in h for e in row]
    # one walk over the shared DAG: entries share subexpressions (the gradient of
    # (x1**2 + ... + xn**2)**2 repeats the sum in every entry), so ``has`` per entry is O(n^2)
    seen: set[int] = set()
    stack = entries
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, _COMPLEX_TRACES):
            return True
        stack.extend(e.args)
    return False


#: heads that sympy.diff writes only when it treats a subexpression as possibly complex
_COMPLEX_TRACES = (sympy.Derivative, sympy.re, sympy.im, sympy.arg, sympy.conjugate)


def _derive(exprs: list[Any], variables: list[str], hessian: bool, method: str
            ) -> SymbolicDerivatives:
    acc = Accumulator()
    by_name = {s.name: s for e in exprs for s in e.free_symbols}
    syms = [by_name.get(v) for v in variables]
    if method == "auto":
        work = sum(len(acc.topological(e)) for e in exprs) * max(1, len(by_name))
        method = "diff" if work <= SMALL_WORK else "dag"
    if method == "diff":
        jac = [[_diff(e, s) for s in syms] for e in exprs]
    else:
        jac = []
        for e in exprs:
            grad = acc.gradient(e)
            jac.append([grad.get(s, ZERO) if s is not None else ZERO for s in syms])
    hess = None
    if hessian:
        second = _hessian_diff if method == "diff" else _hessian
        hess = [second(acc, row, syms) for row in jac]
    return SymbolicDerivatives(variables, jac, hess)


def _diff(e: Any, s: Any) -> Any:
    if s is None or s not in e.free_symbols:
        return ZERO
    return sympy.diff(e, s)


def _hessian_diff(acc: Accumulator, grad_row: list[Any], syms: list[Any]) -> list[list[Any]]:
    n = len(syms)
    h = [[ZERO] * n for _ in range(n)]
    for i, g in enumerate(grad_row):
        for j in range(i, n):
            h[i][j] = h[j][i] = _diff(g, syms[j])
    return h


def _hessian(acc: Accumulator, grad_row: list[Any], syms: list[Any]) -> list[list[Any]]:
    n = len(syms)
    h = [[ZERO] * n for _ in range(n)]
    for i, g in enumerate(grad_row):
        if not acc.symbolic(g):  # (never ask g.is_zero: SymPy's assumptions are slow)
            continue
        second = acc.gradient(g)
        for j in range(i, n):
            if syms[j] is not None and syms[j] in second:
                h[i][j] = h[j][i] = second[syms[j]]
    return h


class Accumulator:
    """Reverse accumulation of SymPy derivatives over expression DAGs.

    Remembers, across calls, which nodes contain symbols and each node's local derivatives,
    so the second derivatives reuse the first ones' work.

    >>> x = sympy.Symbol("x", real=True)
    >>> Accumulator().gradient(sympy.exp(x**2))
    {x: 2*x*exp(x**2)}
    """

    def __init__(self) -> None:
        self.canon = Canon()
        self._symbolic: dict[Any, bool] = {}
        self._locals: dict[Any, list[Any]] = {}

    # -- the sweep -------------------------------------------------------------------------
    def gradient(self, root: Any) -> dict[Any, Any]:
        """``{symbol: d root / d symbol}`` for the symbols ``root`` contains."""
        order = self.topological(root)
        parts: dict[Any, list[Any]] = {root: [ONE]}
        grad: dict[Any, Any] = {}
        for node in reversed(order):
            got = parts.pop(node, None)
            if got is None:  # every path to it has a zero local derivative
                continue
            adj = self.add(got)
            if node.is_Symbol:
                grad[node] = self.finish(adj)
                continue
            for child, local in zip(self.children(node), self.locals(node), strict=True):
                if local is not ZERO:
                    parts.setdefault(child, []).append(self.mul([adj, local]))
        return grad

    def finish(self, e: Any) -> Any:
        """A derivative as SymPy writes it: small formulas distribute the sums kept whole
        during accumulation (``2*(x + y)`` becomes ``2*x + 2*y``); huge ones stay shared."""
        if not e.args or self.canon.info(e) is None:
            return e
        return self.canon.make("canonical", _reevaluate, [e])

    def topological(self, root: Any) -> list[Any]:
        """Nodes with symbols below ``root``, each after all of its children (iterative)."""
        order: list[Any] = []
        seen: set[Any] = set()
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen or not self.symbolic(node):
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((c, False) for c in self.children(node) if c not in seen)
        return order

    def symbolic(self, e: Any) -> bool:
        """Whether ``e`` contains a free symbol (memoised over the DAG)."""
        return has_free_symbols(e, self._symbolic)

    def children(self, node: Any) -> list[Any]:
        """The nodes ``node`` is differentiated through: its symbolic arguments (or, for a
        head without argument-wise rules, its free symbols)."""
        if _walkable(node):
            return [a for a in node.args if self.symbolic(a)]
        return sorted(node.free_symbols, key=lambda s: s.name)

    # -- local derivatives -------------------------------------------------------------------
    def locals(self, node: Any) -> list[Any]:
        """d node / d child for each child, from SymPy (memoised)."""
        got = self._locals.get(node)
        if got is None:
            got = self._locals[node] = self._local_derivatives(node)
        return got

    def _local_derivatives(self, node: Any) -> list[Any]:
        if node.is_Add:
            return [ONE for a in node.args if self.symbolic(a)]
        if node.is_Mul:
            return self._cofactors(node)
        if not _walkable(node):  # e.g. Max, Piecewise: SymPy differentiates it whole
            return [sympy.diff(node, s) for s in self.children(node)]
        out = []
        for i, a in enumerate(node.args):
            if self.symbolic(a):
                out.append(self._local(node, i))
        return out

    def _cofactors(self, node: Any) -> list[Any]:
        """Product rule: the product of the other factors, for each symbolic factor."""
        args = node.args
        idx = [i for i, a in enumerate(args) if self.symbolic(a)]
        if len(args) <= MUL_DIRECT:
            return [self.mul([a for k, a in enumerate(args) if k != i]) for i in idx]
        prefix, suffix = [ONE], [ONE]
        for a in args[:-1]:
            prefix.append(_raw_mul(prefix[-1], a))
        for a in reversed(args[1:]):
            suffix.append(_raw_mul(a, suffix[-1]))
        suffix.reverse()
        return [_raw_mul(prefix[i], suffix[i]) for i in idx]

    def _local(self, node: Any, i: int) -> Any:
        """``diff(f(A, B, ...), A)`` with dummies, then the dummies replaced by the arguments."""
        args = node.args
        symbolic = [a for a in args if self.symbolic(a)]
        pattern = tuple(None if self.symbolic(a) else (type(a), a) for a in args)
        template, dummies = _local_template(type(node), pattern, i)
        if template is ZERO:
            return ZERO
        # a sum or huge product stands in as an opaque symbol: never distributed or copied
        opaque = {}
        shown = []
        for a in symbolic:
            if a.is_Add or self._huge(a):  # sums stay whole: 2*(x + y), not 2*x + 2*y
                q = opaque.setdefault(a, sympy.Dummy(real=True))
                shown.append(q)
            else:
                shown.append(a)

        def build(*xs: Any) -> Any:
            return template.xreplace(dict(zip(dummies, xs, strict=True)))

        if opaque:
            return substitute(build(*shown), {q: a for a, q in opaque.items()})
        return self.canon.make(("d", type(node), pattern, i), build, shown)

    # -- building ----------------------------------------------------------------------------
    def mul(self, factors: list[Any]) -> Any:
        """The product, canonical; a huge sum or product among the factors stays one factor."""
        factors = [f for f in factors if f is not ONE]
        if not factors:
            return ONE
        if len(factors) == 1:
            return factors[0]
        if any(f is ZERO for f in factors):
            return ZERO
        big = [f for f in factors if self._huge(f)]
        if not big:
            return self.canon.make(("mul", len(factors)), sympy.Mul, factors)
        coeff, rest = ONE, []
        small = [f for f in factors if not self._huge(f)]
        core = self.mul(small) if small else ONE
        if core.is_Number:
            coeff = core
        elif core.is_Mul:
            c, fs = core.as_coeff_mul()
            coeff, rest = c, list(fs)
        else:
            rest = [core]
        for f in big:
            if f.is_Mul and f.args[0].is_Number:
                coeff *= f.args[0]
                f = f.func._from_args(f.args[1:]) if len(f.args) > 2 else f.args[1]
            rest.append(f)
        body = rest[0] if len(rest) == 1 else sympy.Mul._from_args(tuple(rest))
        return _keep_coeff(coeff, body, sign=True)

    def add(self, terms: list[Any]) -> Any:
        """The sum, canonical; a huge sum among the terms stays one term (nested)."""
        if len(terms) == 1:
            return terms[0]
        big = [t for t in terms if t.is_Add and self._huge(t)]
        if not big:
            return self.canon.make(("add", len(terms)), sympy.Add, terms)
        small = [t for t in terms if not (t.is_Add and self._huge(t))]
        core = self.add(small) if small else ZERO
        parts = ([] if core is ZERO else [core]) + big
        return parts[0] if len(parts) == 1 else sympy.Add._from_args(tuple(parts))

    def _huge(self, e: Any) -> bool:
        return (e.is_Add or e.is_Mul) and self.canon.info(e) is None


def _reevaluate(e: Any) -> Any:
    """Evaluate the products ``c*(a + b)`` kept unevaluated, and everything above them."""

    def rebuild(node: Any, done: dict[Any, Any]) -> Any:
        new = tuple(done[a] for a in node.args)
        kept = node.is_Mul and len(new) == 2 and new[0].is_Number and new[1].is_Add
        changed = any(n is not a for n, a in zip(new, node.args, strict=True))
        return node.func(*new) if kept or changed else node

    return fold_dag(e, lambda n: n.args, rebuild)


def _walkable(node: Any) -> bool:
    """Nodes differentiated argument by argument: sums, products, powers and functions
    whose arguments are plain expressions."""
    if node.is_Add or node.is_Mul or node.is_Pow or not node.args:
        return True
    return isinstance(node, sympy.Function) and not isinstance(node, sympy.Piecewise) and \
        all(isinstance(a, sympy.Expr) for a in node.args)


_TEMPLATES: dict[tuple, tuple[Any, tuple]] = {}


def _local_template(head: type, pattern: tuple, i: int) -> tuple[Any, tuple]:
    """``(diff(head(D0, c, D1, ...), D_i), (D0, D1, ...))``: constant arguments stay, the
    symbolic ones become real dummies."""
    key = (head, pattern, i)
    if key not in _TEMPLATES:
        dummies = []
        args = []
        for p in pattern:
            if p is None:
                dummies.append(sympy.Dummy(real=True))
                args.append(dummies[-1])
            else:
                args.append(p[1])
        wrt = args[i]
        _TEMPLATES[key] = (sympy.diff(head(*args), wrt), tuple(dummies))
    return _TEMPLATES[key]


def _raw_mul(a: Any, b: Any) -> Any:
    if a is ONE:
        return b
    if b is ONE:
        return a
    return sympy.Mul._from_args((a, b))


def _tree_size(expr: Any, memo: dict[int, int]) -> int:
    """Nodes of ``expr`` as a tree (what printing it costs), counted over the DAG."""
    stack = [expr]
    while stack:
        node = stack[-1]
        if id(node) in memo:
            stack.pop()
            continue
        todo = [a for a in node.args if id(a) not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[id(node)] = 1 + sum(memo[id(a)] for a in node.args)
    return memo[id(expr)]


class _BriefPrinter(StrPrinter):
    """Prints at most a few terms of each long sum or product, to a bounded depth, in the
    order SymPy stores them (its printing order would sort, reading every term)."""

    SHOW = 3
    DEPTH = 8

    def __init__(self) -> None:
        super().__init__({"order": "none"})  # stored order: sorting would read every term
        self._depth = 0

    def _print(self, expr: Any, **kwargs: Any) -> str:
        self._depth += 1
        try:
            if self._depth > self.DEPTH:
                return "..."
            if isinstance(expr, sympy.Basic) and (expr.is_Add or expr.is_Mul) and \
                    len(expr.args) > 2 * self.SHOW:
                head = expr.func._from_args(expr.args[: self.SHOW])
                sep = " + " if expr.is_Add else "*"
                return f"{super()._print(head)}{sep}...{sep}{super()._print(expr.args[-1])}"
            return super()._print(expr, **kwargs)
        finally:
            self._depth -= 1


# -- high precision ------------------------------------------------------------------------------
def precise_values(exprs: Sequence[Any], variables: Sequence[str], X: np.ndarray, *,
                   digits: Any = PRECISE_DIGITS, budget: int = PRECISE_BUDGET,
                   seconds: float = PRECISE_SECONDS) -> np.ndarray | None:
    """Values ``(P, len(exprs))`` of SymPy expressions at points ``X``, with mpmath.

    Each point is evaluated at ``digits`` significant digits (one number, or one per point),
    walking the expressions' shared DAG once per point; numbers keep their exact values
    (a decimal such as ``0.1`` is the binary number SymPy stores, ``1/3`` and ``pi`` are
    exact). Returns an object array of ``mpmath.mpf`` (NaN where undefined), or None when
    the DAG times the points exceeds ``budget`` or the walk takes longer than ``seconds``:
    huge formulas are then left to float64.

    >>> x = sympy.Symbol("x", real=True)
    >>> v = precise_values([(sympy.exp(x) - 1 - x) / x**2], ["x"], np.array([[1e-5]]))
    >>> mpmath.nstr(v[0, 0], 12)
    '0.500001666671'
    """
    plan = _PrecisePlan(list(exprs), list(variables))
    P = X.shape[0]
    if len(plan.steps) * max(P, 1) > budget:
        return None
    digits = np.broadcast_to(np.asarray(digits, dtype=int), (P,))
    deadline = time.perf_counter() + seconds
    out = np.empty((P, len(plan.roots)), dtype=object)
    for p in range(P):
        with mpmath.workdps(int(digits[p])):
            vals = plan.run([mpmath.mpf(float(v)) for v in X[p]], deadline)
        if vals is None:
            return None
        out[p] = [vals[r] for r in plan.roots]
    return out


_NAN = mpmath.mpf("nan")
_HEADS: dict[Any, Any] = {sympy.Abs: mpmath.fabs, sympy.Max: max, sympy.Min: min,
                          sympy.DiracDelta: lambda x, *order: mpmath.mpf(0) if x != 0
                          else mpmath.inf}


class _PrecisePlan:
    """The expressions' DAG in evaluation order, as steps ``(kind, argument steps, data)``."""

    def __init__(self, exprs: list[Any], variables: list[str]):
        self.variables = {name: i for i, name in enumerate(variables)}
        self.steps: list[tuple[str, tuple[int, ...], Any]] = []
        index: dict[Any, int] = {}
        for e in exprs:
            self._add(sympy.sympify(e), index)
        self.roots = [index[sympy.sympify(e)] for e in exprs]

    def _add(self, root: Any, index: dict[Any, int]) -> None:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in index:
                continue
            kids = self._children(node)
            if expanded or not kids:
                index[node] = len(self.steps)
                self.steps.append(self._step(node, tuple(index[k] for k in kids)))
                continue
            stack.append((node, True))
            stack.extend((k, False) for k in kids if k not in index)

    @staticmethod
    def _children(node: Any) -> tuple[Any, ...]:
        if not node.args or node.is_Number:
            return ()
        if node.is_Add or node.is_Mul or node.is_Pow or (
                isinstance(node, sympy.Function) and not isinstance(node, sympy.Piecewise)
                and all(isinstance(a, sympy.Expr) for a in node.args)):
            return node.args
        return ()  # anything else (Piecewise, ...) is evaluated whole by SymPy

    def _step(self, node: Any, args: tuple[int, ...]) -> tuple[str, tuple[int, ...], Any]:
        if node.is_Symbol:
            return ("var", args, self.variables.get(node.name))
        if not args:
            if not node.free_symbols:
                return ("const", args, node)
            where = [(s, self.variables.get(s.name)) for s in node.free_symbols]
            return ("whole", args, (node, where))
        if node.is_Add:
            return ("add", args, None)
        if node.is_Mul:
            return ("mul", args, None)
        if node.is_Pow:
            return ("pow", args, None)
        head = type(node)
        name = _known_mpmath().get(head.__name__)
        if head in _HEADS:
            return ("fn", args, _HEADS[head])
        if name is not None and hasattr(mpmath, name):
            return ("fn", args, getattr(mpmath, name))
        return ("head", args, head)

    def run(self, point: list[Any], deadline: float) -> list[Any] | None:
        """Every step's value at one point (at the current mpmath precision)."""
        vals: list[Any] = [None] * len(self.steps)
        prec = mpmath.mp.prec
        for i, (kind, args, data) in enumerate(self.steps):
            if i % 1024 == 1023 and time.perf_counter() > deadline:
                return None
            try:
                v = _apply(kind, [vals[a] for a in args], data, point, prec)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                v = _NAN
            vals[i] = _real(v)
        return vals


def _apply(kind: str, args: list[Any], data: Any, point: list[Any], prec: int) -> Any:
    if kind == "add":
        return mpmath.fsum(args)
    if kind == "mul":
        return mpmath.fprod(args)
    if kind == "pow":
        return mpmath.power(args[0], args[1])
    if kind == "fn":
        return data(*args)
    if kind == "var":
        return point[data] if data is not None else _NAN
    if kind == "const":
        return _number(data, prec)
    if kind == "head":
        return _number(data(*[sympy.Float._new(a._mpf_, prec) for a in args]), prec)
    # "whole": a node SymPy evaluates itself (Piecewise, ...), its symbols replaced by values
    node, where = data
    if any(i is None for _, i in where):
        return _NAN
    return _number(node.xreplace({s: sympy.Float._new(point[i]._mpf_, prec)
                                  for s, i in where}), prec)


def _number(e: Any, prec: int) -> Any:
    """A SymPy number (or a numeric expression) as an mpmath number at ``prec`` bits."""
    if e.is_Float:
        return mpmath.mpf(e._mpf_)
    if e.is_Integer:
        return mpmath.mpf(int(e))
    if e.is_Rational:
        return mpmath.mpf(int(e.p)) / int(e.q)
    if isinstance(e, sympy.NumberSymbol):
        return mpmath.mpf(e._as_mpf_val(prec))
    if e is sympy.oo:
        return mpmath.inf
    if e is sympy.S.NegativeInfinity:
        return -mpmath.inf
    v = e.evalf(mpmath.libmp.prec_to_dps(prec))
    if v.is_Float:
        return mpmath.mpf(v._mpf_)
    if v.is_Number:
        return _number(v, prec)
    return _NAN


def _real(v: Any) -> Any:
    if isinstance(v, mpmath.mpc):
        return v.real if v.imag == 0 else _NAN
    if isinstance(v, mpmath.mpf):
        return v
    try:
        return mpmath.mpf(v)
    except (TypeError, ValueError):
        return _NAN


_KNOWN: dict[str, str] = {}


def _known_mpmath() -> dict[str, str]:
    """SymPy function names -> mpmath function names (SymPy's own mpmath printer table)."""
    if not _KNOWN:
        from sympy.printing.pycode import _known_functions_mpmath

        _KNOWN.update(_known_functions_mpmath)
    return _KNOWN
