"""Evaluation traces and computational graphs, drawn the way the lecture notes draw them.

An evaluation trace lists the Program one intermediate per row (``a = x**2``,
``b = exp(a)``, ``c = a + b``, ...) with its value, its local partial derivatives from the
rule table (text and number), its forward-mode tangent along one input direction and its
reverse-mode adjoint ``∂f/∂node``. The tangents come from one :class:`Dual` pass and the
adjoints from one :class:`Tape` sweep: nothing here re-implements evaluation.

Every local partial is also checked against SymPy's ``diff`` of the node's head at that
point, and the tangents and adjoints against the chain rule run over SymPy's partials, so
a wrong row in the rule table is pinpointed: the trace marks the first node where they
differ.

>>> t = evaluation_trace("sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))", "x=1")
>>> [row.definition for row in t.rows[1:]]
['a = x**2', 'b = exp(a)', 'c = a + b', 'd = sqrt(c)', 'e = cos(c)', 'f = d + e']
>>> t.ok, round(t.rows[0].adjoint[0], 6)
(True, 5.983083)
"""

from __future__ import annotations

import math
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from .check import Function, _parse_assignments, user_points
from .engines.forward import Dual, tangent_of, value_of
from .engines.reverse import Tape, Var, backward
from .errors import DiffcheckError, ParseError, UsageError
from .parse import NAME, parse
from .primitives import Primitive, partial_text
from .program import Node, Program
from .tracing import next_level

RTOL = 1e-8  #: relative tolerance of the symbolic cross-check (rounding is far below it)
GRAPH_FORMATS = ("svg", "png", "pdf")  #: rendered by Graphviz's ``dot`` when it is installed


@dataclass
class Partial:
    """One local partial derivative ``∂node/∂arg`` of a trace row."""

    wrt: str  #: the argument's node name
    formula: str  #: the rule table's ``dtext`` rendered over node names
    value: float  #: the rule table's numeric partial at the point
    symbolic: float | None  #: SymPy's ``diff`` of the node's head at the point
    ok: bool
    symbolic_formula: str = ""  #: SymPy's ``diff`` over node names

    def to_dict(self) -> dict[str, Any]:
        return {"wrt": self.wrt, "formula": self.formula, "value": _json(self.value),
                "symbolic_formula": self.symbolic_formula, "symbolic": _json(self.symbolic),
                "ok": self.ok}


@dataclass
class Row:
    """One node of the trace: an input or an intermediate."""

    node: str
    definition: str
    op: str
    args: list[str]
    value: float
    partials: list[Partial]
    tangent: float  #: forward mode, along the trace's direction
    adjoint: list[float]  #: reverse mode, ``∂f_k/∂node`` for each output k
    symbolic_tangent: float
    symbolic_adjoint: list[float]
    problems: list[str] = field(default_factory=list)  #: "partial", "tangent", "adjoint"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self, vector: bool) -> dict[str, Any]:
        def out(v: list[float]) -> Any:
            return [_json(x) for x in v] if vector else _json(v[0])

        return {"node": self.node, "definition": self.definition, "op": self.op,
                "args": list(self.args), "value": _json(self.value),
                "partials": [p.to_dict() for p in self.partials],
                "tangent": _json(self.tangent), "adjoint": out(self.adjoint),
                "symbolic_tangent": _json(self.symbolic_tangent),
                "symbolic_adjoint": out(self.symbolic_adjoint),
                "ok": self.ok, "problems": list(self.problems)}


@dataclass
class Trace:
    """The evaluation trace of an expression at one point.

    ``str(trace)`` is the notes' table, :meth:`to_dict` its JSON form and :meth:`to_dot`
    the computational graph in Graphviz's DOT language.
    """

    expression: str
    at: dict[str, float]
    direction: dict[str, float]
    outputs: list[str]
    vector: bool
    rows: list[Row]
    first_mismatch: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        """True when no row disagrees with the symbolic cross-check."""
        return self.first_mismatch is None

    def row(self, node: str) -> Row:
        """The row of the named node.

        >>> evaluation_trace("x*y", "x=2,y=3").row("f").value
        6.0
        """
        for r in self.rows:
            if r.node == node:
                return r
        raise KeyError(f"no node named {node!r}; nodes: {', '.join(r.node for r in self.rows)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the ``"trace"`` entries of ``diffcheck expr --trace --json``).

        >>> evaluation_trace("x*y", "x=2,y=3").to_dict()["rows"][2]["partials"][0]["formula"]
        'y'
        """
        return {"expression": self.expression, "at": dict(self.at),
                "direction": dict(self.direction), "outputs": list(self.outputs),
                "ok": self.ok, "first_mismatch": self.first_mismatch,
                "rows": [r.to_dict(self.vector) for r in self.rows]}

    def __str__(self) -> str:
        return render_text(self)

    def to_dot(self) -> str:
        """The computational graph in DOT: nodes show op, value and adjoint.

        >>> print(evaluation_trace("x*y", "x=2,y=3").to_dot().splitlines()[0])
        digraph diffcheck {
        """
        return render_dot(self)


# -- building the trace ------------------------------------------------------------------------
def evaluation_trace(expr: Any, at: Any, *, wrt: Any = None, direction: Any = None) -> Trace:
    """The evaluation trace of ``expr`` at one point.

    Args:
        expr: expression text (``"(x1 + w1)**2*(x1*w1 + x2*w2)"``), a bracketed list for a
            vector function, or SymPy expression(s), as for :func:`diffcheck.check_expression`.
        at: the point: ``"x=1,y=2"``, a mapping, or values in variable order.
        wrt: variable order (default: sorted by name, digits compared as numbers).
        direction: the tangent direction: a variable name (``"w1"``), weights
            (``"x=1,y=-1"`` or a mapping); default the first ``wrt`` variable.

    Returns:
        A :class:`Trace`: rows in the notes' order and naming, ``trace.ok`` when every local
        partial, tangent and adjoint agrees with SymPy.

    >>> t = evaluation_trace("(x1 + w1)**2*(x1*w1 + x2*w2)", "x1=1,w1=2,x2=3,w2=4",
    ...                      wrt="w1,w2")
    >>> [(r.node, r.adjoint[0]) for r in t.rows[:2]]
    [('w1', 93.0), ('w2', 27.0)]
    """
    fn = Function.from_text(expr, wrt, at)
    X = user_points(fn, at)
    if X.shape[0] != 1:
        raise UsageError(f"a trace is taken at one point; got {X.shape[0]}")
    return trace_function(fn, X[0], direction)


def trace_function(fn: Function, x: np.ndarray, direction: Any = None) -> Trace:
    """The trace of a parsed :class:`~diffcheck.check.Function` at the point ``x``.

    >>> fn = Function.from_text("x**2*y + y")
    >>> trace_function(fn, np.array([2.0, 3.0]), "y").row("f").tangent
    5.0
    """
    prog = fn.program
    weights = _direction(direction, fn)
    seed = np.array([weights.get(v, 0.0) for v in fn.variables])
    values, tangents = _forward(prog, x, seed)
    adjoints = _reverse(prog, x)
    order = display_order(prog)
    names = node_names(prog, order)
    sym = [_symbolic_partials(prog, nd, values) for nd in prog.nodes]
    sym_tan = _chain_forward(prog, sym, seed)
    sym_adj = _chain_reverse(prog, sym)
    rows = [_row(prog, i, names, values, tangents, adjoints, sym, sym_tan, sym_adj)
            for i in order]
    rows += _alias_rows(prog, names, values, tangents, adjoints, sym_tan, sym_adj)
    at = dict(zip(fn.variables, map(float, x), strict=True))
    outs = [names[o] if prog.nodes[o].op not in ("input", "const") else _out_name(fn, k)
            for k, o in enumerate(prog.outputs)]
    t = Trace(fn.text, at, weights, outs, fn.vector, rows)
    t.first_mismatch = _first_mismatch(t)
    return t


def _direction(direction: Any, fn: Function) -> dict[str, float]:
    if direction is None:
        return {fn.wrt[0]: 1.0} if fn.wrt else {}
    if isinstance(direction, str) and "=" not in direction:
        weights = {direction.strip(): 1.0}
    elif isinstance(direction, str):
        weights = _parse_assignments(direction)
    else:
        weights = {str(k): float(v) for k, v in dict(direction).items()}
    unknown = [k for k in weights if k not in fn.variables]
    if unknown:
        raise UsageError(f"--direction names {', '.join(unknown)}, which is not a variable of "
                         f"the expression (variables: {', '.join(fn.variables)})")
    return weights


def _forward(prog: Program, x: np.ndarray, seed: np.ndarray) -> tuple[list, list]:
    """Every node's value and tangent from one forward-mode pass (one direction)."""
    level = next_level()
    duals = [Dual(np.float64(v), np.array([s]), level) for v, s in zip(x, seed, strict=True)]
    with np.errstate(all="ignore"):
        vals = prog.evaluate(duals, keep=True)
    values = [float(value_of(v, level)) for v in vals]
    tangents = [float(tangent_of(v, level, 1)[0]) for v in vals]
    return values, tangents


def _reverse(prog: Program, x: np.ndarray) -> list[list[float]]:
    """For every node, its adjoint for each output, from reverse sweeps over one tape."""
    tape = Tape()
    with np.errstate(all="ignore"):
        vals = prog.evaluate([tape.var(np.float64(v)) for v in x], keep=True)
    adj = [[0.0] * len(prog.outputs) for _ in prog.nodes]
    for k, o in enumerate(prog.outputs):
        if not isinstance(vals[o], Var):
            continue
        with np.errstate(all="ignore"):
            bars = backward(vals[o])
        for i, v in enumerate(vals):
            if isinstance(v, Var) and v.index < len(bars) and bars[v.index] is not None:
                adj[i][k] = float(bars[v.index])
    return adj


# -- order and names ---------------------------------------------------------------------------
def display_order(prog: Program) -> list[int]:
    """Inputs, then intermediates by depth, ties in left-to-right post-order: the notes' order.

    >>> from diffcheck.check import Function
    >>> prog = Function.from_text("(x1 + w1)**2*(x1*w1 + x2*w2)").program
    >>> [prog.nodes[i].op for i in display_order(prog)][4:]
    ['add', 'mul', 'mul', 'pow', 'add', 'mul']
    """
    depth = [0] * len(prog.nodes)
    for i, nd in enumerate(prog.nodes):
        if nd.op not in ("input", "const"):
            depth[i] = 1 + max((depth[a] for a in nd.args), default=0)
    post = _postorder(prog)
    inputs = [i for i, nd in enumerate(prog.nodes) if nd.op == "input"]
    inner = [i for i in post if prog.nodes[i].op not in ("input", "const")]
    return inputs + sorted(inner, key=lambda i: (depth[i], post.index(i)))


def _postorder(prog: Program) -> list[int]:
    seen: set[int] = set()
    order: list[int] = []
    for root in prog.outputs:
        stack = [(root, False)]
        while stack:
            i, done = stack.pop()
            if done:
                order.append(i)
                continue
            if i in seen:
                continue
            seen.add(i)
            stack.append((i, True))
            stack.extend((a, False) for a in reversed(prog.nodes[i].args) if a not in seen)
    return order


def node_names(prog: Program, order: list[int]) -> dict[int, str]:
    """Inputs keep their names, outputs are f (f1, f2, ... for a vector), the rest a, b, c, ...

    >>> from diffcheck.check import Function
    >>> prog = Function.from_text("sin(a)*cos(a)").program
    >>> sorted(node_names(prog, display_order(prog)).values())
    ['a', 'b', 'c', 'f']
    """
    names = {i: nd.name for i, nd in enumerate(prog.nodes) if nd.op == "input"}
    taken = set(names.values())
    vector = len(prog.outputs) > 1
    for k, o in enumerate(prog.outputs):
        if o not in names and prog.nodes[o].op != "const":
            names.setdefault(o, f"f{k + 1}" if vector else "f")
    taken |= set(names.values()) | {"f"}
    pool = (c for c in [*string.ascii_lowercase, *(f"t{k}" for k in range(1, 10**6))]
            if c not in taken)
    for i in order:
        if i not in names:
            names[i] = next(pool)
    return names


def _out_name(fn: Function, k: int) -> str:
    return f"f{k + 1}" if fn.vector else "f"


# -- text of definitions and partials ------------------------------------------------------
def _num(v: float) -> str:
    text = f"{v:.12g}"
    return f"({text})" if v < 0 else text


def _arg_texts(prog: Program, nd: Node, names: dict[int, str]) -> list[str]:
    return [_num(prog.nodes[a].value) if prog.nodes[a].op == "const" else names[a]
            for a in nd.args]


def definition_text(row: Primitive, args: list[str]) -> str:
    """The right-hand side of ``c = a + b`` for a rule-table row over argument texts.

    >>> from diffcheck.primitives import ROWS
    >>> definition_text(ROWS["add"], ["a", "b"]), definition_text(ROWS["exp"], ["a"])
    ('a + b', 'exp(a)')
    """
    if row.infix:
        sep = f" {row.infix} " if row.infix in "+-" else row.infix
        return sep.join(args)
    if row.name == "neg":
        return f"-{args[0]}"
    return f"{row.parse[0] if row.parse else row.name}({', '.join(args)})"


def _tidy(text: str) -> str:
    """Let SymPy fold constants in a rendered partial (``2*x**(2 - 1)`` -> ``2*x``); the
    names in it are node names (a node may be called ``e``)."""
    try:
        return str(parse(text, variables=NAME.findall(text)))
    except (ParseError, DiffcheckError):
        return text


# -- the symbolic cross-check --------------------------------------------------------------
_HEADS: dict[str, tuple[list[Any], list[Any]] | None] = {}


def _symbolic_head(row: Primitive) -> tuple[list[Any], list[Any]] | None:
    """(dummy symbols, SymPy's diff of the head by each), independent of the row's partials."""
    if row.name not in _HEADS:
        dummies = [sympy.Symbol(f"u{i}", real=True) for i in range(row.arity)]
        head = _head_expr(row, dummies)
        _HEADS[row.name] = None if head is None else \
            (dummies, [sympy.diff(head, u) for u in dummies])
    return _HEADS[row.name]


def _head_expr(row: Primitive, dummies: list[Any]) -> Any:
    if row.sympy is not None:
        return row.sympy(*dummies)
    try:
        text = definition_text(row, [d.name for d in dummies])
        expr = parse(text)
    except DiffcheckError:
        return None
    return expr.subs({sympy.Symbol(d.name, real=True): d for d in dummies}) \
        .subs({sympy.Symbol(d.name): d for d in dummies})


def _symbolic_partials(prog: Program, nd: Node, values: list[float]) -> list[float | None]:
    """SymPy's local partials of one node at the point (None for constant arguments)."""
    if nd.op in ("input", "const"):
        return []
    head = _symbolic_head(nd.row)
    out: list[float | None] = []
    for j, a in enumerate(nd.args):
        if prog.nodes[a].op == "const" or head is None:
            out.append(None)
            continue
        dummies, diffs = head
        subs = {u: sympy.Float(values[b], 17) for u, b in zip(dummies, nd.args, strict=True)}
        out.append(_real(diffs[j].evalf(17, subs=subs)))
    return out


def _symbolic_formula(row: Primitive, j: int, texts: list[str]) -> str:
    head = _symbolic_head(row)
    if head is None:
        return ""
    dummies, diffs = head
    names = {u: _sympy_arg(t) for u, t in zip(dummies, texts, strict=True)}
    return str(diffs[j].subs(names))


def _sympy_arg(text: str) -> Any:
    """A node name as a symbol, a constant's text (``2``, ``(-0.5)``) as a number."""
    try:
        v = float(text.strip("()"))
    except ValueError:
        return sympy.Symbol(text)
    return sympy.Integer(int(v)) if v.is_integer() else sympy.Float(v)


def _real(v: Any) -> float:
    try:
        c = complex(v)
    except (TypeError, ValueError):
        return math.nan
    return c.real if c.imag == 0 else math.nan


def _chain_forward(prog: Program, sym: list, seed: np.ndarray) -> list[float]:
    """Tangents by the chain rule over SymPy's local partials."""
    tan = [0.0] * len(prog.nodes)
    varies = prog.varies()  # constant subexpressions (log(10)) carry no tangent
    for i, nd in enumerate(prog.nodes):
        if nd.op == "input":
            tan[i] = float(seed[prog.inputs.index(nd.name)])
        elif varies[i]:
            tan[i] = sum((p if p is not None else math.nan) * tan[a]
                         for a, p in zip(nd.args, sym[i], strict=True) if varies[a])
    return tan


def _chain_reverse(prog: Program, sym: list) -> list[list[float]]:
    """Adjoints by the chain rule over SymPy's local partials, for each output."""
    adj = [[0.0] * len(prog.outputs) for _ in prog.nodes]
    varies = prog.varies()
    for k, o in enumerate(prog.outputs):
        bar = [0.0] * len(prog.nodes)
        bar[o] = 1.0
        for i in range(len(prog.nodes) - 1, -1, -1):
            nd = prog.nodes[i]
            if nd.op in ("input", "const") or bar[i] == 0.0:
                continue
            for a, p in zip(nd.args, sym[i], strict=True):
                if varies[a]:  # constant subexpressions (log(10)) get no adjoint
                    bar[a] += (p if p is not None else math.nan) * bar[i]
        for i in range(len(prog.nodes)):
            adj[i][k] = bar[i]
    return adj


def _close(a: float, b: float | None, scale: float = 0.0) -> bool:
    if b is None:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= RTOL * max(abs(a), abs(b), scale) + 1e-300


def _row(prog: Program, i: int, names: dict[int, str], values: list, tangents: list,
         adjoints: list, sym: list, sym_tan: list, sym_adj: list) -> Row:
    nd = prog.nodes[i]
    name = names[i]
    if nd.op == "input":
        definition, args, partials = "input", [], []
    else:
        texts = _arg_texts(prog, nd, names)
        definition = f"{name} = {definition_text(nd.row, texts)}"
        args = texts
        partials = _partials(prog, i, name, texts, values, sym[i])
    tan_scale = max((abs(tangents[a]) for a in nd.args), default=0.0)
    problems = []
    if not all(p.ok for p in partials):
        problems.append("partial")
    if not _close(tangents[i], sym_tan[i], tan_scale):
        problems.append("tangent")
    if not all(_close(a, s) for a, s in zip(adjoints[i], sym_adj[i], strict=True)):
        problems.append("adjoint")
    return Row(name, definition, nd.op, args, values[i], partials, tangents[i],
               list(adjoints[i]), sym_tan[i], list(sym_adj[i]), problems)


def _partials(prog: Program, i: int, name: str, texts: list[str], values: list,
              sym: list) -> list[Partial]:
    nd = prog.nodes[i]
    row = nd.row
    formulas = partial_text(row, texts, name) if row.dtext else ["?"] * row.arity
    args = [values[a] for a in nd.args]
    out = []
    for j, a in enumerate(nd.args):
        if prog.nodes[a].op == "const":
            continue
        with np.errstate(all="ignore"):
            v = float(np.asarray(row.partials[j](*args, values[i]), dtype=float))
        out.append(Partial(texts[j], _tidy(formulas[j]), v, sym[j], _close(v, sym[j]),
                           _symbolic_formula(row, j, texts)))
    return out


def _alias_rows(prog: Program, names: dict[int, str], values: list, tangents: list,
                adjoints: list, sym_tan: list, sym_adj: list) -> list[Row]:
    """Rows for outputs that are an input or a constant themselves (``[x, 2]``)."""
    rows = []
    vector = len(prog.outputs) > 1
    for k, o in enumerate(prog.outputs):
        nd = prog.nodes[o]
        if nd.op not in ("input", "const"):
            continue
        out = f"f{k + 1}" if vector else "f"
        src = nd.name if nd.op == "input" else _num(nd.value)
        adj = [1.0 if kk == k else a for kk, a in enumerate(adjoints[o])]
        rows.append(Row(out, f"{out} = {src}", "output", [src], values[o], [], tangents[o],
                        adj, sym_tan[o], adj, []))
    return rows


def _first_mismatch(t: Trace) -> dict[str, str] | None:
    """The node where the symbolic cross-check first fails, and what differs there."""
    for kind in ("partial", "tangent"):
        for r in t.rows:
            if kind in r.problems:
                return {"node": r.node, "kind": kind, "message": _mismatch_text(t, r, kind)}
    for r in reversed(t.rows):
        if "adjoint" in r.problems:
            return {"node": r.node, "kind": "adjoint", "message": _mismatch_text(t, r, "adjoint")}
    return None


def _mismatch_text(t: Trace, r: Row, kind: str) -> str:
    if kind == "partial":
        p = next(p for p in r.partials if not p.ok)
        return (f"{r.definition}: the rule table's '{r.op}' row computes ∂{r.node}/∂{p.wrt} = "
                f"{_fmt(p.value)} (its text says {p.formula}), but SymPy's diff of the same "
                f"operation gives {p.symbolic_formula} = {_fmt(p.symbolic)}; the '{r.op}' row's "
                f"partial for argument {r.args.index(p.wrt) + 1} is wrong")
    if kind == "tangent":
        return (f"{r.definition}: forward mode gives tangent {_fmt(r.tangent)}, the chain rule "
                f"over SymPy's local partials gives {_fmt(r.symbolic_tangent)}")
    k = next(k for k, (a, s) in enumerate(zip(r.adjoint, r.symbolic_adjoint, strict=True))
             if not _close(a, s))
    return (f"{r.definition}: reverse mode gives ∂{t.outputs[k]}/∂{r.node} = "
            f"{_fmt(r.adjoint[k])}, the chain rule over SymPy's local partials gives "
            f"{_fmt(r.symbolic_adjoint[k])}")


# -- text --------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    if v is None:
        return "None"
    return f"{v:.12g}"


def _partial_cell(r: Row, p: Partial) -> str:
    value = _fmt(p.value)
    same = p.formula == value or _tidy(p.formula) == value
    return f"∂{r.node}/∂{p.wrt} = {p.formula}" + ("" if same else f" = {value}")


def _direction_text(t: Trace) -> str:
    if len(t.direction) == 1 and next(iter(t.direction.values())) == 1.0:
        return next(iter(t.direction))
    return "(" + ", ".join(f"{k}={_fmt(v)}" for k, v in t.direction.items()) + ")"


def render_text(t: Trace) -> str:
    """The trace as the notes' table (one row per node, extra lines for more partials).

    >>> print(render_text(evaluation_trace("x*y", "x=2,y=3")).splitlines()[3])
    node  definition  value  local partials (rule table)  ∂·/∂x  ∂f/∂·
    """
    at = ", ".join(f"{k}={_fmt(v)}" for k, v in t.at.items())
    d = _direction_text(t)
    tan_head = f"∂·/∂{d}" if d in t.at else "tangent"
    adj_heads = [f"∂{o}/∂·" for o in t.outputs]
    lines = [f"evaluation trace of {t.expression} at {at}",
             f"tangent {tan_head}: forward mode along {d}; adjoint "
             f"{', '.join(adj_heads)}: reverse mode", ""]
    table = [["node", "definition", "value", "local partials (rule table)", tan_head,
              *adj_heads, ""]]
    for r in t.rows:
        cells = [_partial_cell(r, p) for p in r.partials] or [""]
        mark = ""
        if r.problems:
            mark = "✗ " + ", ".join(r.problems)
            if t.first_mismatch and t.first_mismatch["node"] == r.node:
                mark += "  <- first mismatch"
        table.append([r.node, r.definition, _fmt(r.value), cells[0], _fmt(r.tangent),
                      *[_fmt(a) for a in r.adjoint], mark])
        table += [["", "", "", c, "", *[""] * len(r.adjoint), ""] for c in cells[1:]]
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    for row in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    lines.append(_summary(t))
    return "\n".join(lines)


def _summary(t: Trace) -> str:
    if t.first_mismatch is not None:
        return f"MISMATCH at node {t.first_mismatch['node']}: {t.first_mismatch['message']}."
    n = sum(len(r.partials) for r in t.rows)
    return (f"symbolic check OK: {n} local partials match SymPy's diff; tangents and adjoints "
            "match the chain rule.")


# -- the computational graph ---------------------------------------------------------------
def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(t: Trace) -> str:
    """The computational graph in Graphviz's DOT language.

    Each node is labelled with its definition (op), value and adjoint; each edge with the
    local partial it carries. The first mismatch, if any, is drawn in red.

    >>> dot = render_dot(evaluation_trace("x*y", "x=2,y=3"))
    >>> '"x" -> "f" [label="∂f/∂x = 3"];' in dot
    True
    """
    at = ", ".join(f"{k}={_fmt(v)}" for k, v in t.at.items())
    lines = ["digraph diffcheck {", "  rankdir=LR;", '  node [fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];',
             f"  label={_q(f'{t.expression} at {at}')};"]
    bad = t.first_mismatch["node"] if t.first_mismatch else None
    for r in t.rows:
        adj = ", ".join(f"∂{o}/∂{r.node} = {_fmt(a)}" for o, a in zip(t.outputs, r.adjoint,
                                                                     strict=True))
        head = r.node if r.op == "input" else r.definition
        label = f"{head}\\n{r.op}\\nvalue {_fmt(r.value)}\\n{adj}"
        attrs = ["shape=ellipse" if r.op == "input" else "shape=box"]
        if r.node in t.outputs:
            attrs.append("peripheries=2")
        if r.node == bad:
            attrs += ["color=red", "style=filled", 'fillcolor="#ffdddd"']
        lines.append(f"  {_q(r.node)} [label=\"{_escape_label(label)}\", {', '.join(attrs)}];")
    for r in t.rows:
        for p in r.partials:
            color = "" if p.ok else ", color=red, fontcolor=red"
            lines.append(f"  {_q(p.wrt)} -> {_q(r.node)} "
                         f"[label={_q(f'∂{r.node}/∂{p.wrt} = {_fmt(p.value)}')}{color}];")
        if r.op == "output":
            lines.append(f"  {_q(r.args[0])} -> {_q(r.node)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape_label(label: str) -> str:
    return label.replace('"', '\\"')


def write_graph(t: Trace, path: str | Path) -> str:
    """Write the graph: DOT text for ``.dot``/``.gv``; ``.svg``/``.png``/``.pdf`` by Graphviz.

    Returns a one-line message saying what was written. Without Graphviz's ``dot`` on the
    PATH, a rendered format falls back to writing the DOT text next to it (``out.dot``)
    and the message says how to render it.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "g.dot")
    >>> write_graph(evaluation_trace("x*y", "x=2,y=3"), path).startswith("wrote")
    True
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    dot = render_dot(t)
    if fmt in ("dot", "gv"):
        path.write_text(dot, encoding="utf-8")
        return f"wrote the computational graph (DOT) to {path}"
    if fmt not in GRAPH_FORMATS:
        raise UsageError(f"--graph {path}: unknown format '.{fmt}'; use .dot or .gv for DOT "
                         f"text, or {', '.join('.' + f for f in GRAPH_FORMATS)} (Graphviz)")
    exe = shutil.which("dot")
    if exe is None:
        fallback = path.with_suffix(".dot")
        fallback.write_text(dot, encoding="utf-8")
        return (f"Graphviz's 'dot' program is not installed, so {path} was not rendered; "
                f"wrote the DOT text to {fallback} instead. Install Graphviz "
                f"(e.g. 'apt install graphviz' or 'brew install graphviz') and run "
                f"'dot -T{fmt} {fallback} -o {path}'.")
    done = subprocess.run([exe, f"-T{fmt}", "-o", str(path)], input=dot.encode("utf-8"),
                          capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise UsageError(f"Graphviz's dot failed to write {path}: "
                         f"{done.stderr.decode(errors='replace').strip()}")
    return f"wrote the computational graph ({fmt.upper()}) to {path}"


# -- the CLI hook ------------------------------------------------------------------------------
def for_cli(args: Any, report: Any) -> dict[str, Any]:
    """``diffcheck expr --trace / --graph FILE``: traces at the report's points.

    Returns ``{"trace_text": str, "trace": [dict per point]}`` for ``--trace`` and writes
    the graph of the first point for ``--graph`` (its message goes to stderr). The tangent
    direction is ``args.direction`` when the CLI has that option, else the first ``--wrt``
    variable.
    """
    fn = Function.from_text(args.expression, args.wrt, args.at)
    direction = getattr(args, "direction", None)
    traces = [trace_function(fn, np.array([p.at[v] for v in fn.variables]), direction)
              for p in report.points]
    out: dict[str, Any] = {}
    if getattr(args, "graph", None):
        print(write_graph(traces[0], args.graph), file=sys.stderr)
    if getattr(args, "trace", False):
        out["trace_text"] = "\n\n".join(str(t) for t in traces)
        out["trace"] = [t.to_dict() for t in traces]
    return out


def _json(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
