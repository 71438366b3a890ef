"""SymPy expression -> Program: a Wengert list evaluated by one interpreter.

A :class:`Program` is a list of nodes in evaluation order: inputs, constants and
applications of rule-table rows to earlier nodes. Shared subexpressions are computed once
(SymPy's structural hashing is the key), n-ary sums and products are folded into binary
``add``/``sub``/``mul``/``div`` nodes. :meth:`Program.evaluate` is the one interpreter:
the values decide the engine (floats and arrays: plain evaluation and finite differences;
:class:`~diffcheck.engines.forward.Dual`: forward mode; tape ``Var``: reverse mode; JAX
arrays with ``backend="jax"``: the JAX reference).

>>> import sympy
>>> x = sympy.Symbol("x", real=True)
>>> c = x**2 + sympy.exp(x**2)
>>> prog = Program.from_sympy([sympy.sqrt(c) + sympy.cos(c)], ["x"])
>>> [n.op for n in prog.nodes]
['input', 'const', 'pow', 'exp', 'add', 'cos', 'sqrt', 'add']
>>> round(float(prog.evaluate([1.0])[0]), 6)
1.090012
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from .canon import fold_dag
from .errors import DomainError, UnsupportedError
from .primitives import ROWS, SYMPY_ROWS, Primitive, jax_function
from .tracing import is_traced


@dataclass(frozen=True)
class Node:
    """One step of a Program: ``op`` is "input", "const" or a rule-table row name."""

    op: str
    args: tuple[int, ...] = ()
    value: float | None = None  # constants
    name: str | None = None  # inputs
    expr: Any = field(default=None, compare=False)  # the SymPy subexpression, if any

    @property
    def row(self) -> Primitive:
        return ROWS[self.op]


class Program:
    """A straight-line program over the rule table."""

    def __init__(self, inputs: list[str], nodes: list[Node], outputs: list[int]):
        self.inputs = inputs
        self.nodes = nodes
        self.outputs = outputs
        self._last_use = None
        self._varies: list[bool] | None = None

    def __repr__(self) -> str:
        return f"Program({len(self.inputs)} inputs, {len(self.nodes)} nodes, " \
               f"{len(self.outputs)} outputs)"

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_sympy(cls, exprs: Sequence[Any], variables: Sequence[str]) -> Program:
        """Compile SymPy expressions over the named variables."""
        return _Builder(list(variables)).build(list(exprs))

    # -- the interpreter ------------------------------------------------------------------
    def evaluate(self, inputs: Sequence[Any], *, backend: str = "numpy",
                 keep: bool = False) -> list[Any]:
        """Evaluate at ``inputs`` (one value per variable); returns the outputs.

        With ``keep=True`` returns every node's value instead. ``backend="jax"`` evaluates
        with the rows' JAX functions (traceable by ``jax.jit``/``grad``).
        """
        fns = _jax_functions() if backend == "jax" else None
        vals: list[Any] = [None] * len(self.nodes)
        last = None if keep else self.last_use()
        position = {name: k for k, name in reversed(list(enumerate(self.inputs)))}
        plain = fns is None and not any(is_traced(v) for v in inputs)
        for i, nd in enumerate(self.nodes):
            if nd.op == "input":
                vals[i] = inputs[position[nd.name]] if nd.name else None
            elif nd.op == "const":
                vals[i] = nd.value
            else:
                args = [vals[a] for a in nd.args]
                if fns:
                    vals[i] = fns[nd.op](*args)
                else:  # untraced values skip the rows' dispatch check
                    vals[i] = nd.row.impl(*args) if plain else nd.row(*args)
            if last is not None:
                for a in last[i]:
                    vals[a] = None
        return vals if keep else [vals[o] for o in self.outputs]

    def last_use(self) -> list[tuple[int, ...]]:
        """For each node, the argument nodes whose last use it is (to free memory)."""
        if self._last_use is None:
            final: dict[int, int] = {}
            for i, nd in enumerate(self.nodes):
                for a in nd.args:
                    final[a] = i
            keep = set(self.outputs)
            lists: list[list[int]] = [[] for _ in self.nodes]
            for a, i in final.items():
                if a not in keep and self.nodes[a].op not in ("input", "const"):
                    lists[i].append(a)
            self._last_use = [tuple(x) for x in lists]
        return self._last_use

    def check_domain(self, inputs: Sequence[Any]) -> np.ndarray:
        """Boolean mask: where every node's value is finite and inside its row's domain.

        ``inputs`` may hold arrays of candidate points (one array per variable).
        """
        vals = self.evaluate(inputs, keep=True)
        ok = np.ones(np.broadcast_shapes(*[np.shape(v) for v in inputs]) if inputs else (),
                     dtype=bool)
        with np.errstate(all="ignore"):
            for i, (nd, v) in enumerate(zip(self.nodes, vals, strict=True)):
                ok &= np.isfinite(v)
                domain = self._domain(i)
                if domain is not None:
                    ok &= domain[0](*[vals[a] for a in nd.args])
        return ok

    def first_violation(self, inputs: Sequence[float]) -> tuple[Node, str] | None:
        """The first node (in evaluation order) that is undefined at a single point, and the
        condition it needs, over its arguments (``"t - 5 > 0"``)."""
        found = self._violation(inputs)
        if found is None:
            return None
        nd, template = self.nodes[found[0]], found[2]
        texts = [self.node_text(a) for a in nd.args]
        return nd, "a finite value" if template is None else _fill(template, texts)

    def explain_violation(self, inputs: Sequence[float]) -> tuple[str, str] | None:
        """Which subexpression leaves its domain at a single point, and why in words, with
        the values of its arguments (None when every node is defined).

        >>> x = sympy.Symbol("t", real=True)
        >>> Program.from_sympy([sympy.log(x - 5)], ["t"]).explain_violation([1.0])
        ('log(t - 5)', 'its argument t - 5 = -4 must be > 0')
        """
        found = self._violation(inputs)
        if found is None:
            return None
        i, vals, template = found
        nd = self.nodes[i]
        if template is None:
            v = float(np.asarray(vals[i]).flat[0])
            why = f"overflows float64 ({v})" if np.isinf(v) else "is not a number (nan)"
            return self.node_text(i), f"its value {why}"
        args = [(self.node_text(a), vals[a], self.nodes[a].op == "const") for a in nd.args]
        role = "denominator" if nd.row.infix == "/" else "argument"
        return self.node_text(i), _explain(template, args, role)

    def _violation(self, inputs: Sequence[float]) -> tuple[int, list[Any], str | None] | None:
        """(node, all values, domain text or None for a non-finite value) of the first node
        that is undefined at a single point."""
        with np.errstate(all="ignore"):
            vals = self.evaluate(inputs, keep=True)
            for i, (nd, v) in enumerate(zip(self.nodes, vals, strict=True)):
                if nd.op in ("input", "const"):
                    continue
                domain = self._domain(i)
                if domain is not None and not bool(np.all(domain[0](*[vals[a]
                                                                       for a in nd.args]))):
                    return i, vals, domain[1]
                if not bool(np.all(np.isfinite(v))):
                    return i, vals, None
        return None

    def node_text(self, i: int, depth: int = 3) -> str:
        """Node ``i`` as text: its SymPy subexpression, its name, its value, or (for the
        intermediate nodes of a folded sum or product) its operation over its arguments."""
        nd = self.nodes[i]
        if nd.op == "input":
            return str(nd.name)
        if nd.op == "const":
            return _fmt(nd.value)
        if nd.expr is not None:
            return _brief(str(nd.expr))
        if depth == 0:
            return "..."
        args = [self.node_text(a, depth - 1) for a in nd.args]
        row = nd.row
        if row.infix:
            return f"({f' {row.infix} '.join(args)})"
        if row.name == "neg":
            return f"(-{args[0]})"
        return f"{row.parse[0] if row.parse else row.name}({', '.join(args)})"

    def _domain(self, i: int) -> tuple[Callable[..., Any], str] | None:
        """Node ``i``'s domain and its text: the row's, or its ``varying_domain`` when an
        argument after the first depends on the variables."""
        nd = self.nodes[i]
        if nd.op in ("input", "const"):
            return None
        row = nd.row
        if row.varying_domain is not None:
            if self._varies is None:
                self._varies = self._depends_on_inputs()
            if any(self._varies[a] for a in nd.args[1:]):
                return row.varying_domain, row.varying_domain_text
        return (row.domain, row.domain_text) if row.domain is not None else None

    def _depends_on_inputs(self) -> list[bool]:
        varies: list[bool] = []
        for nd in self.nodes:
            varies.append(nd.op == "input" or any(varies[a] for a in nd.args))
        return varies

    def varies(self) -> list[bool]:
        """For each node, whether it depends on the inputs (``log(10)`` does not)."""
        if self._varies is None:
            self._varies = self._depends_on_inputs()
        return self._varies

    def op_count(self) -> dict[str, int]:
        """How many nodes of each operation."""
        counts: dict[str, int] = {}
        for nd in self.nodes:
            if nd.op not in ("input", "const"):
                counts[nd.op] = counts.get(nd.op, 0) + 1
        return counts

    def to_jax(self):
        """A JAX function ``f(x) -> outputs`` (``x`` a 1-D array, outputs stacked)."""
        import jax.numpy as jnp

        def f(x):
            # unstack: one split whose transpose is one stack (x[i] would pad in reverse mode)
            cols = list(jnp.unstack(x)) if self.inputs else []
            outs = self.evaluate(cols, backend="jax")
            outs = [jnp.asarray(o, dtype=x.dtype) + jnp.zeros((), x.dtype) for o in outs]
            return jnp.stack(outs)

        return f


def _fmt(v: Any) -> str:
    """A value for messages: 12 significant digits (``-4``, ``0.333333333333``)."""
    v = float(np.asarray(v).flat[0]) if np.ndim(v) else float(v)
    return f"{v:.12g}"


def _brief(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 20] + " ... " + text[-15:]


def _explain(template: str, args: list[tuple[str, Any, bool]], role: str = "argument") -> str:
    """A domain condition in words, with the values of the arguments it is about.

    ``args`` holds (text, value, is a constant) per argument of the node; ``template`` is the
    row's domain text over ``{0}``, ``{1}``, ...; ``role`` names the argument a condition on
    one argument is about, when it is not the first (a quotient's denominator).

    >>> _explain("{0} > 0", [("t - 5", -4.0, False)])
    'its argument t - 5 = -4 must be > 0'
    >>> _explain("{1} != 0", [("1", 1.0, True), ("x - 1", 0.0, False)], "denominator")
    'its denominator x - 1 = 0 must be != 0'
    >>> _explain("-1 < {0} < 1", [("x/4", 1.25, False)])
    'its argument x/4 = 1.25 must satisfy -1 < x/4 < 1'
    """
    texts = [t for t, _, _ in args]
    used = [k for k in range(len(args)) if f"{{{k}}}" in template] or range(len(args))
    if len(used) == 1 and template.count(f"{{{used[0]}}}") == 1:
        k = used[0]
        text, value, const = args[k]
        prefix = "its argument " if k == 0 else f"its {role} " if role != "argument" else ""
        subject = prefix + text + ("" if const else f" = {_fmt(value)}")
        if template.startswith(f"{{{k}}} "):
            return f"{subject} must be {template[len(str(k)) + 3:]}"
        return f"{subject} must satisfy {_fill(template, texts)}"
    values = ", ".join(f"{t} = {_fmt(v)}" for k, (t, v, const) in enumerate(args)
                       if k in used and not const)
    return f"it needs {_fill(template, texts)}" + (f"; here {values}" if values else "")


def _fill(template: str, texts: list[str]) -> str:
    """A domain text with the argument texts in place (as written, if it has no slots)."""
    try:
        return template.format(*texts)
    except (IndexError, KeyError, ValueError):
        return template


def _jax_functions() -> dict[str, Any]:
    return {name: jax_function(row) for name, row in ROWS.items()}


class _Builder:
    """Lowers SymPy trees to nodes, iteratively (deep trees do not recurse)."""

    def __init__(self, variables: list[str]):
        self.variables = variables
        self.nodes: list[Node] = []
        self.memo: dict[Any, int] = {}  # SymPy expr -> node
        self.keys: dict[tuple, int] = {}  # (op, args) / ("const", value) -> node
        self.symbol_index = {name: i for i, name in enumerate(variables)}
        for name in variables:
            self.emit(Node("input", name=name))

    def emit(self, node: Node) -> int:
        key = (node.op, node.args, node.value, node.name)
        if key in self.keys:
            return self.keys[key]
        self.nodes.append(node)
        self.keys[key] = len(self.nodes) - 1
        return len(self.nodes) - 1

    def build(self, exprs: list[Any]) -> Program:
        outputs = [self.lower(sympy.sympify(e) if not isinstance(e, sympy.Basic) else e)
                   for e in exprs]
        return Program(self.variables, self.nodes, outputs)

    def lower(self, root: Any) -> int:
        stack: list[tuple[Any, tuple | None]] = [(root, None)]
        while stack:
            expr, plan = stack.pop()
            if expr in self.memo:
                continue
            if plan is not None:
                self.memo[expr] = self.realise(expr, plan)
                continue
            plan = self.plan(expr)
            stack.append((expr, plan))
            stack.extend((c, None) for c in _children(plan) if c not in self.memo)
        return self.memo[root]

    def plan(self, e: Any) -> tuple:
        """How to compute ``e`` from SymPy subexpressions (a small recipe)."""
        if e.is_Symbol:
            if e.name not in self.symbol_index:
                raise UnsupportedError(f"variable {e.name} is not an input")
            return ("input", e.name)
        # Numbers and named constants (pi, E) are constants; compound constants such as
        # atan(log(2)) are lowered like any other expression and computed in float64, as
        # SymPy's arbitrary-precision evalf can take minutes on them.
        if not e.args:
            return ("const", _constant(e))
        if e.is_Add:
            return ("sum", *_split_signs(e.args))
        if e.is_Mul:
            return ("product", *_split_factors(e.args))
        if e.is_Pow:
            return _plan_pow(e)
        head = type(e)
        if head in SYMPY_ROWS:
            if head is sympy.Max and len(e.args) == 2 and e.args[0] == 0:
                return ("apply", "relu", [e.args[1]])  # Max(0, x), as relu(x) is written
            return ("apply", SYMPY_ROWS[head].name, list(e.args))
        if isinstance(e, sympy.Derivative):
            raise UnsupportedError(
                f"SymPy cannot differentiate {e.expr} in {', '.join(map(str, e.variables))} "
                "(it leaves the derivative unevaluated), so neither can diffcheck: a function "
                "is differentiated in an argument it has no rule for (the order n of "
                "polygamma(n, x) must be a constant; the argument comes second)")
        raise UnsupportedError(f"no rule for SymPy '{head.__name__}' in {e}")

    def realise(self, e: Any, plan: tuple) -> int:
        kind = plan[0]
        if kind == "input":
            return self.symbol_index[plan[1]]
        if kind == "const":
            return self.const(plan[1])
        ids = lambda xs: [self.memo[x] for x in xs]  # noqa: E731
        if kind == "apply":
            args = ids(plan[2])
            while len(args) > ROWS[plan[1]].arity:  # n-ary Max/Min: a chain of pairs
                args = [self.emit(Node(plan[1], tuple(args[:2]))), *args[2:]]
            return self.emit(Node(plan[1], tuple(args), expr=e))
        if kind == "sum":
            return self.fold(ids(plan[1]), ids(plan[2]), "add", "sub", "neg", e)
        if kind == "product":
            node = self.fold(ids(plan[2]), ids(plan[3]), "mul", "div", None, e)
            coeff = plan[1]
            if coeff == -1:
                return self.emit(Node("neg", (node,), expr=e))
            if coeff != 1:
                return self.emit(Node("mul", (self.const(coeff), node), expr=e))
            return node
        if kind == "pow":
            return self.emit(Node("pow", (self.memo[plan[1]], self.const(plan[2])), expr=e))
        if kind == "powv":
            return self.emit(Node("pow", tuple(ids(plan[1:3])), expr=e))
        if kind in ("sqrt", "recip"):
            base = self.memo[plan[1]]
            if kind == "sqrt":
                return self.emit(Node("sqrt", (base,), expr=e))
            return self.emit(Node("div", (self.const(1.0), base), expr=e))
        raise AssertionError(kind)

    def const(self, value: float) -> int:
        return self.emit(Node("const", value=float(value)))

    def fold(self, pos: list[int], neg: list[int], op: str, inv: str, negate: str | None,
             e: Any) -> int:
        if pos:
            acc = pos[0]
            for p in pos[1:]:
                acc = self.emit(Node(op, (acc, p)))
        elif negate is not None:
            acc = self.emit(Node(negate, (neg[0],)))
            neg = neg[1:]
        else:
            acc = self.const(1.0)
        if neg and op == "mul" and len(neg) > 1:
            den = neg[0]
            for p in neg[1:]:
                den = self.emit(Node("mul", (den, p)))
            neg = [den]
        for p in neg:
            acc = self.emit(Node(inv, (acc, p)))
        if acc < len(self.nodes) and self.nodes[acc].expr is None and \
                self.nodes[acc].op not in ("input", "const"):
            nd = self.nodes[acc]
            self.nodes[acc] = Node(nd.op, nd.args, expr=e)
        return acc


_WALKABLE = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Function)


def has_free_symbols(e: Any, memo: dict[Any, bool]) -> bool:
    """``bool(e.free_symbols)``, memoised in ``memo`` over the DAG: linear in its size
    (SymPy's ``free_symbols`` rebuilds the set at every node, quadratic on big sums).

    >>> x = sympy.Symbol("x")
    >>> has_free_symbols(sympy.sin(x) + 2, {}), has_free_symbols(sympy.pi + 1, {})
    (True, False)
    """
    def walk(n: Any) -> bool:
        return bool(n.args) and isinstance(n, _WALKABLE) and not isinstance(n, sympy.Piecewise)

    return fold_dag(e, lambda n: n.args if walk(n) else (),
                    lambda n, m: any(m[a] for a in n.args) if walk(n) else bool(n.free_symbols),
                    memo)


def _constant(e: Any) -> float:
    value = complex(sympy.N(e, 17))
    if value.imag != 0 or not np.isfinite(value.real):
        raise DomainError(f"constant {e} is not a finite real number")
    return value.real


def _negated(t: Any) -> Any | None:
    """``-t`` if ``t`` carries a negative numeric coefficient, else None."""
    if t.is_Mul and t.args[0].is_Number and t.args[0].is_negative:
        c = -t.args[0]
        rest = sympy.Mul._from_args(t.args[1:]) if len(t.args) > 2 else t.args[1]
        return rest if c == 1 else sympy.Mul._from_args((c, *t.args[1:]))
    return None


def _split_signs(terms: tuple) -> tuple[list, list]:
    pos, neg = [], []
    for t in terms:
        n = _negated(t)
        (neg if n is not None else pos).append(n if n is not None else t)
    return pos, neg


def _split_factors(factors: tuple) -> tuple[Any, list, list]:
    coeff, num, den = sympy.Integer(1), [], []
    for f in factors:
        if f.is_Number:
            coeff = coeff * f
        elif f.is_Pow and f.exp.is_Number and f.exp.is_negative:
            den.append(f.base if f.exp == -1 else sympy.Pow(f.base, -f.exp))
        else:
            num.append(f)
    if not num and coeff != 1 and coeff != -1:
        num, coeff = [coeff], sympy.Integer(1)
    return coeff, num, den


def _plan_pow(e: Any) -> tuple:
    base, exp = e.args
    if exp == sympy.Rational(1, 2):
        return ("sqrt", base)
    if exp == -1:
        return ("recip", base)
    if exp.is_Number:
        return ("pow", base, _constant(exp))
    if base == sympy.E:
        return ("apply", "exp", [exp])
    return ("powv", base, exp)


def _children(plan: tuple) -> list:
    kind = plan[0]
    if kind in ("input", "const"):
        return []
    if kind == "apply":
        return plan[2]
    if kind == "sum":
        return [*plan[1], *plan[2]]
    if kind == "product":
        return [*plan[2], *plan[3]]
    if kind in ("pow", "sqrt", "recip"):
        return [plan[1]]
    if kind == "powv":
        return [plan[1], plan[2]]
    raise AssertionError(kind)
