"""Forward vs reverse mode: the chain rule is a product of Jacobians, and the order costs.

For ``f = f_k ∘ … ∘ f_1 : Rⁿ → Rᵐ`` the Jacobian is a product of the stages' Jacobians.
Forward mode multiplies starting from the input side: one tangent per input, ``n`` passes
(fused into one vector-mode pass that shares the primal values). Reverse mode multiplies
starting from the output side: one adjoint per output, ``m`` sweeps over one recorded tape.
So forward wins for few inputs, reverse for few outputs, and the crossover sits at
``n ≈ m``; a matrix chain ``A·B·C`` costs ``mnp + mpq`` as ``(AB)C`` and ``mnq + npq`` as
``A(BC)``, and the cheapest bracketing can be neither end-to-end order.

This module counts (deterministic, from the rule table's ``flops`` column), measures
(``time.perf_counter``, the minimum of several repeats, on diffcheck's engines and on JAX),
and sweeps (a family of functions with growing ``n`` and ``m``, plotted with matplotlib).

**The flop model of a Program** (units: the rule table's ``flops``; an add or a multiply
costs 1, ``sin``/``exp``/``log`` 10):

* ``function``: the sum of ``flops`` over the Program's operations.
* ``partials``: the local partial derivatives of each operation, computed once per node
  (forward mode: during its pass; reverse mode: while recording the tape). A row whose
  partials are constants or its own arguments (``add``: 1, 1; ``mul``: y, x) costs 0;
  any other row costs its ``flops`` once (``sin`` needs a ``cos``).
* ``tangent``: per input direction, ``y_dot = Σ ∂ᵢ·x_dot_i`` costs one multiply per
  dependent argument (none where the partial is the constant 1) plus one add per extra
  argument.
* ``adjoint``: per output direction, ``x_bar_i += ∂ᵢ·y_bar`` costs the same multiplies plus
  one add for every use of a node beyond its first (adjoints meet where values fan out).
* ``forward = function + partials + n·tangent`` and ``reverse = function + partials +
  m·adjoint``: both modes propagate dense directions through every node that depends on
  the inputs, as vector-mode forward, JAX's ``jacfwd``/``jacrev`` and the textbook model do.

The model implies the cheap-gradient principle: for ``m = 1``, ``reverse ≤ 5·function``
(worst case: 1-flop multiplies whose values are all reused, 1 + 2 multiplies + 2
accumulations each; ``≤ 6`` if ``maximum``/``minimum``, whose partials cost a comparison,
dominate; 2 to 3 for typical code), while ``forward`` grows like ``n·function``.

**Matrix chains** ``A1·A2·…·Ak``: shapes are written in data-flow order, input side
first: ``a×b`` is a stage taking ``a`` values to ``b`` values, so the product reads left
to right like the computation and ``x ∈ R^(rows of A1)``, ``y ∈ R^(cols of Ak)``.
A product of ``(a×b)(b×c)`` costs ``a·b·c`` *multiply-adds* (the seeds' ``mnp``; double it
for flops counting multiplies and adds separately). Forward mode = left to right
``((A1 A2) A3)…``, reverse mode = right to left ``…(A1 (A2 A3))``, optimal = dynamic
programming over all bracketings.

>>> counts = count_text("sin(x)*y + x*y")
>>> counts.function, counts.forward, counts.reverse, counts.recommended
(13, 39, 30, 'reverse')
>>> chain = chain_cost(["10x100", "100x100", "100x1"])
>>> chain.forward, chain.reverse, chain.optimal, chain.order
(101000, 11000, 11000, '(A1 (A2 A3))')
"""

from __future__ import annotations

import math
import re
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import UsageError
from .primitives import Primitive
from .program import Node, Program

# -- operation counts -----------------------------------------------------------------------
_TRIVIAL_PARTIAL = re.compile(r"-?(\d+|\{\d+\})")


def partial_flops(row: Primitive) -> int:
    """Flops to form a row's local partials (0 when they are constants or arguments).

    >>> from diffcheck.primitives import ROWS
    >>> partial_flops(ROWS["mul"]), partial_flops(ROWS["sin"]), partial_flops(ROWS["div"])
    (0, 10, 4)
    """
    explicit = getattr(row, "dflops", None)
    if explicit is not None:
        return int(explicit)
    if row.dtext and all(_TRIVIAL_PARTIAL.fullmatch(t.strip()) for t in row.dtext):
        return 0
    return row.flops


def edge_flops(row: Primitive, i: int) -> int:
    """Multiplies to scale one direction's tangent or adjoint by partial ``i`` (0 for 1).

    >>> from diffcheck.primitives import ROWS
    >>> edge_flops(ROWS["add"], 0), edge_flops(ROWS["sub"], 1), edge_flops(ROWS["mul"], 0)
    (0, 1, 1)
    """
    return 0 if i < len(row.dtext) and row.dtext[i].strip() == "1" else 1


@dataclass(frozen=True)
class Counts:
    """Operation counts of a Program in the flop model (see the module docstring)."""

    inputs: int
    outputs: int
    function: int
    partials: int
    tangent: int  # per input direction
    adjoint: int  # per output direction

    @property
    def forward(self) -> int:
        """The whole Jacobian by vector-mode forward: one tangent per input."""
        return self.function + self.partials + self.inputs * self.tangent

    @property
    def reverse(self) -> int:
        """The whole Jacobian by reverse mode: one adjoint sweep per output."""
        return self.function + self.partials + self.outputs * self.adjoint

    @property
    def recommended(self) -> str:
        """The cheaper mode; forward on a tie (it needs no tape)."""
        return "forward" if self.forward <= self.reverse else "reverse"

    def ratio(self, mode: str) -> float:
        """``forward``, ``reverse`` or ``function`` relative to the function's count."""
        return getattr(self, mode) / self.function if self.function else math.inf

    def to_dict(self) -> dict[str, int]:
        return {"function": self.function, "forward": self.forward, "reverse": self.reverse}


def count(program: Program) -> Counts:
    """Count the operations of f, of forward-mode and of reverse-mode Jacobians.

    >>> from diffcheck.check import Function
    >>> c = count(Function.from_text("[x*y, sin(x)]").program)
    >>> c.function, c.partials, c.tangent, c.adjoint, c.forward, c.reverse
    (11, 10, 4, 4, 29, 29)
    """
    nodes = program.nodes
    active = [False] * len(nodes)
    uses = [0] * len(nodes)
    function = partials = tangent = adjoint = 0
    for i, nd in enumerate(nodes):
        if nd.op in ("input", "const"):
            active[i] = nd.op == "input"
            continue
        row = nd.row
        function += row.flops
        live = [j for j, a in enumerate(nd.args) if active[a]]
        if not live:
            continue
        active[i] = True
        partials += partial_flops(row)
        muls = sum(edge_flops(row, j) for j in live)
        tangent += muls + len(live) - 1
        adjoint += muls
        for j in live:
            uses[nd.args[j]] += 1
    adjoint += sum(u - 1 for u in uses if u > 1)
    return Counts(len(program.inputs), len(program.outputs), function, partials, tangent,
                  adjoint)


def count_text(expr: str) -> Counts:
    """:func:`count` for expression text (a scalar or a bracketed list).

    >>> count_text("[exp(t), exp(2*t)]").recommended
    'forward'
    """
    return count(_function(expr).program)


def _function(expr: Any):
    import sympy

    from .check import Function
    from .parse import parse, variables_of

    parsed = parse(expr) if isinstance(expr, str) else expr
    exprs = [e if isinstance(e, sympy.Basic) else sympy.Float(e)
             for e in (parsed if isinstance(parsed, list) else [parsed])]
    if not variables_of(exprs):
        raise UsageError(f"{str(expr).strip()} has no variables, so there is no derivative to "
                         "cost; give an expression in at least one variable, like 'x**2*y'")
    return Function.from_text(expr)


# -- measured times -------------------------------------------------------------------------
def best_time(fn: Callable[[], Any], *, repeat: int = 5, min_time: float = 0.005) -> float:
    """Seconds per call of ``fn``: the minimum over ``repeat`` runs of enough calls each.

    >>> best_time(lambda: sum(range(10)), repeat=2) < 0.01
    True
    """
    return best_times({"f": fn}, repeat=repeat, min_time=min_time)["f"]


def best_times(fns: dict[str, Callable[[], Any]], *, repeat: int = 5,
               min_time: float = 0.005) -> dict[str, float]:
    """:func:`best_time` of several functions, interleaved round by round.

    Each round times every function once (enough calls to last ``min_time``), so a burst
    of load from other processes hits all of them alike; the minimum over the rounds is
    kept (``time.perf_counter``).

    >>> sorted(best_times({"a": lambda: 1, "b": lambda: 2}, repeat=2))
    ['a', 'b']
    """
    number = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        first = time.perf_counter() - start
        number[name] = max(1, min(1000, int(min_time / max(first, 1e-9))))
    best = dict.fromkeys(fns, math.inf)
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number[name])
    return best


def measure(program: Program, X: np.ndarray, *, repeat: int = 5,
            min_time: float = 0.005) -> dict[str, float]:
    """Seconds for f (``program.evaluate``) and the Jacobian by diffcheck's two engines.

    ``X`` holds the points, shape ``(P, n)``; every engine evaluates all of them at once.

    >>> from diffcheck.check import Function
    >>> t = measure(Function.from_text("x*y").program, np.ones((4, 2)), repeat=1)
    >>> sorted(t)
    ['forward', 'function', 'reverse']
    """
    from .engines import ad

    cols = [np.ascontiguousarray(X[:, i]) for i in range(X.shape[1])]
    with np.errstate(all="ignore"):
        return best_times({
            "function": lambda: program.evaluate(cols),
            "forward": lambda: ad.jacobian_forward(program, X),
            "reverse": lambda: ad.jacobian_reverse(program, X),
        }, repeat=repeat, min_time=min_time)


JAX_KEYS = ("function", "jvp", "vjp", "jacfwd", "jacrev")


def measure_jax(program: Program | Callable[..., Any], X: np.ndarray, *, repeat: int = 5,
                min_time: float = 0.005, outputs: int | None = None) -> dict[str, float]:
    """Seconds for f, one ``jvp``, one ``vjp``, ``jacfwd`` and ``jacrev`` under JAX.

    ``program`` is a Program (translated by ``Program.to_jax``) or a JAX function of a
    1-D array with ``outputs`` outputs. Each is ``jax.jit(jax.vmap(...))`` over the points
    in float64; compilation is excluded (its total is reported as ``"compile"``). JAX is
    imported here, never at module import.

    >>> from diffcheck.check import Function
    >>> t = measure_jax(Function.from_text("x*y").program, np.ones((4, 2)), repeat=1)
    >>> sorted(t)
    ['compile', 'function', 'jacfwd', 'jacrev', 'jvp', 'vjp']
    """
    import jax
    import jax.numpy as jnp

    out: dict[str, float] = {"compile": 0.0}
    with jax.enable_x64(True):
        if isinstance(program, Program):
            f, outputs = program.to_jax(), len(program.outputs)
        else:
            f = program
        xs = jnp.asarray(X, dtype=jnp.float64)
        v = jnp.ones_like(xs)
        u = jnp.ones((X.shape[0], outputs), dtype=jnp.float64)
        cases = {
            "function": (jax.vmap(f), (xs,)),
            "jvp": (jax.vmap(lambda x, t: jax.jvp(f, (x,), (t,))[1]), (xs, v)),
            "vjp": (jax.vmap(lambda x, c: jax.vjp(f, x)[1](c)[0]), (xs, u)),
            "jacfwd": (jax.vmap(jax.jacfwd(f)), (xs,)),
            "jacrev": (jax.vmap(jax.jacrev(f)), (xs,)),
        }
        runs = {}
        for name, (g, args) in cases.items():
            compiled = jax.jit(g)
            start = time.perf_counter()
            compiled(*args).block_until_ready()
            out["compile"] += time.perf_counter() - start
            runs[name] = lambda c=compiled, a=args: c(*a).block_until_ready()
        out.update(best_times(runs, repeat=repeat, min_time=min_time))
    return out


# -- one expression -------------------------------------------------------------------------
@dataclass
class CostReport:
    """Counts and timings of one function; ``str()`` is a table, ``to_dict()`` the JSON."""

    text: str
    counts: Counts
    seconds: dict[str, float]
    points: int
    jax: dict[str, float] | None = None

    @property
    def recommended(self) -> str:
        return self.counts.recommended

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        doc: dict[str, Any] = {
            "inputs": c.inputs, "outputs": c.outputs, "ops": c.to_dict(),
            "seconds": dict(self.seconds), "recommended": c.recommended,
            "expression": self.text, "points": self.points,
            "model": {"partials": c.partials, "tangent_per_input": c.tangent,
                      "adjoint_per_output": c.adjoint},
        }
        if self.jax is not None:
            doc["jax"] = dict(self.jax)
        return doc

    def __str__(self) -> str:
        c = self.counts
        lines = [f"f: R^{c.inputs} -> R^{c.outputs}   ({_plural(c.inputs, 'input')}, "
                 f"{_plural(c.outputs, 'output')})", ""]
        rows = [(k, getattr(c, k), self.seconds[k]) for k in ("function", "forward", "reverse")]
        lines += _table(["", "ops", "ops/f", "seconds", "time/f"], [
            [name, f"{ops:,}", _ratio(ops, c.function), f"{sec:.3g}",
             _ratio(sec, self.seconds["function"])] for name, ops, sec in rows])
        if self.jax is not None:
            lines += ["", "JAX (jit + vmap, compile excluded):"]
            lines += _table(["", "seconds", "time/f"], [
                [k, f"{self.jax[k]:.3g}", _ratio(self.jax[k], self.jax["function"])]
                for k in JAX_KEYS])
        lines += ["", *textwrap.wrap(f"recommended: {c.recommended} ({_why(c)})", 96,
                                     subsequent_indent="  "),
                  f"ops: diffcheck's flop model (docs/cost.md); seconds: one call at "
                  f"{_plural(self.points, 'point')}, min of repeats"]
        return "\n".join(lines)


def _why(c: Counts) -> str:
    if c.recommended == "reverse":
        return (f"{_plural(c.outputs, 'output')} < {_plural(c.inputs, 'input')}: one reverse "
                "sweep per output beats one forward pass per input")
    if c.inputs < c.outputs:
        return (f"{_plural(c.inputs, 'input')} < {_plural(c.outputs, 'output')}: one forward "
                "pass per input beats one reverse sweep per output")
    return "as cheap as reverse here, and forward mode needs no tape"


def _plural(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    right = [all(re.fullmatch(r"[-+0-9.,e]+", r[i]) for r in rows) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = [s.rjust(w) if r else s.ljust(w)
                 for s, w, r in zip(row, widths, right, strict=True)]
        return "  ".join(cells).rstrip()

    return [fmt(header), *(fmt(r) for r in rows)]


def cost(expr: Any, *, points: int = 64, repeat: int = 5, seed: int = 0,
         jax: bool = False) -> CostReport:
    """Count and time f, its forward-mode and its reverse-mode Jacobian.

    Args:
        expr: expression text (``"x**2*y"``), a bracketed list for a vector function, or
            SymPy expression(s).
        points: how many points each engine call evaluates at once (random, in f's domain).
        repeat: timing repeats (the minimum is reported).
        seed: seed of the random points.
        jax: also time JAX's jvp, vjp, jacfwd and jacrev.

    >>> r = cost("sin(x)*y + x*y", points=2, repeat=1)
    >>> r.to_dict()["ops"], r.recommended
    ({'function': 13, 'forward': 39, 'reverse': 30}, 'reverse')
    """
    from .check import random_points

    if not isinstance(points, int) or not 1 <= points <= 100_000:
        raise UsageError(f"points must be a whole number from 1 to 100000, got {points!r}")
    if not isinstance(repeat, int) or not 1 <= repeat <= 1000:
        raise UsageError(f"repeat must be a whole number from 1 to 1000, got {repeat!r}")
    fn = _function(expr)
    X = random_points(fn, points, seed)
    report = CostReport(fn.text, count(fn.program), measure(fn.program, X, repeat=repeat),
                        points)
    if jax:
        report.jax = measure_jax(fn.program, X, repeat=repeat)
    return report


# -- matrix chains --------------------------------------------------------------------------
MAX_CHAIN = 200  #: matrices in one chain (the dynamic programme is cubic)
_SHAPE = re.compile(r"\s*(\d+)\s*[xX×*]\s*(\d+)\s*")


def parse_shapes(texts: Iterable[str]) -> list[tuple[int, int]]:
    """``["10x100", "100x1"]`` -> ``[(10, 100), (100, 1)]``, checking the chain fits.

    >>> parse_shapes(["10x100", "100 x 1"])
    [(10, 100), (100, 1)]
    """
    shapes = []
    for k, text in enumerate(texts, start=1):
        m = _SHAPE.fullmatch(str(text))
        if m is None:
            raise UsageError(f"cannot read the shape '{text}' of A{k}: write ROWSxCOLS with "
                             "positive whole numbers, e.g. 10x100")
        a, b = int(m.group(1)), int(m.group(2))
        if a == 0 or b == 0:
            raise UsageError(f"A{k} is {a}x{b}: dimensions must be positive whole numbers")
        shapes.append((a, b))
    if len(shapes) < 2:
        raise UsageError(f"a chain needs at least two matrices, got {len(shapes)}; "
                         "e.g. diffcheck chain 10x100 100x100 100x1")
    if len(shapes) > MAX_CHAIN:
        raise UsageError(f"the chain has {len(shapes)} matrices; the limit is {MAX_CHAIN}")
    for k in range(1, len(shapes)):
        (a, b), (c, d) = shapes[k - 1], shapes[k]
        if b != c:
            raise UsageError(
                f"A{k} is {a}x{b} but A{k + 1} is {c}x{d}: inner dimensions {b} and {c} don't "
                f"match (the columns of A{k} must equal the rows of A{k + 1})")
    return shapes


def _dims(shapes: Sequence[tuple[int, int]]) -> list[int]:
    return [shapes[0][0], *(b for _, b in shapes)]


def left_to_right(shapes: Sequence[tuple[int, int]]) -> int:
    """Multiply-adds of ``((A1 A2) A3)…``: forward mode, from the input side.

    >>> left_to_right([(10, 100), (100, 100), (100, 1)])
    101000
    """
    d = _dims(shapes)
    return sum(d[0] * d[k] * d[k + 1] for k in range(1, len(shapes)))


def right_to_left(shapes: Sequence[tuple[int, int]]) -> int:
    """Multiply-adds of ``…(A1 (A2 A3))``: reverse mode, from the output side.

    >>> right_to_left([(10, 100), (100, 100), (100, 1)])
    11000
    """
    d = _dims(shapes)
    return sum(d[k] * d[k + 1] * d[-1] for k in range(len(shapes) - 1))


def optimal_order(shapes: Sequence[tuple[int, int]]) -> tuple[int, str]:
    """The cheapest bracketing by dynamic programming: ``(multiply-adds, order)``.

    >>> optimal_order([(10, 100), (100, 5), (5, 50)])
    (7500, '((A1 A2) A3)')
    """
    d, k = _dims(shapes), len(shapes)
    best = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            best[i][j] = math.inf
            for s in range(i, j):
                c = best[i][s] + best[s + 1][j] + d[i] * d[s + 1] * d[j + 1]
                if c < best[i][j]:
                    best[i][j], split[i][j] = c, s
    return int(best[0][k - 1]), _order_text(split, k)


def _order_text(split: list[list[int]], k: int) -> str:
    """Render the split table as ``(A1 (A2 A3))`` without recursion."""
    out: list[str] = []
    stack: list[Any] = [(0, k - 1)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        i, j = item
        if i == j:
            out.append(f"A{i + 1}")
            continue
        s = split[i][j]
        stack.extend([")", (s + 1, j), " ", (i, s), "("])
    return "".join(out)


def order_cost(shapes: Sequence[tuple[int, int]], order: str) -> int:
    """Multiply-adds of the bracketing written in ``order`` (checks the text, too).

    >>> order_cost([(10, 100), (100, 100), (100, 1)], "((A1 A2) A3)")
    101000
    """
    total, stack = 0, []
    for tok in re.findall(r"A\d+|[()]", order):
        if tok == "(":
            stack.append(tok)
        elif tok == ")":
            right, left, opener = stack.pop(), stack.pop(), stack.pop()
            if opener != "(" or left[1] != right[0]:
                raise UsageError(f"'{order}' is not a valid bracketing")
            total += left[0] * left[1] * right[1]
            stack.append((left[0], right[1]))
        else:
            stack.append(shapes[int(tok[1:]) - 1])
    return total


@dataclass(frozen=True)
class ChainCost:
    """Multiply-adds of a matrix chain in each order; ``str()`` is a table."""

    shapes: tuple[tuple[int, int], ...]
    forward: int
    reverse: int
    optimal: int
    order: str
    forward_order: str = field(default="")
    reverse_order: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return {"forward": self.forward, "reverse": self.reverse, "optimal": self.optimal,
                "order": self.order, "forward_order": self.forward_order,
                "reverse_order": self.reverse_order, "inputs": self.shapes[0][0],
                "outputs": self.shapes[-1][1], "units": "multiply-adds"}

    def __str__(self) -> str:
        k = len(self.shapes)
        names = ", ".join(f"A{i + 1} {a}x{b}" for i, (a, b) in enumerate(self.shapes))
        lines = [f"J = A1·…·A{k} with {names}",
                 f"input side: A1 (x in R^{self.shapes[0][0]}); output side: A{k} "
                 f"(y in R^{self.shapes[-1][1]})", ""]
        rows = [["forward (left to right)", self.forward_order, f"{self.forward:,}"],
                ["reverse (right to left)", self.reverse_order, f"{self.reverse:,}"],
                ["optimal (dynamic programming)", self.order, f"{self.optimal:,}"]]
        lines += _table(["", "order", "multiply-adds"], rows)
        return "\n".join(lines)


def chain_cost(shapes: Iterable[str] | Iterable[tuple[int, int]]) -> ChainCost:
    """Cost of ``A1·…·Ak`` left to right (forward), right to left (reverse) and optimally.

    Shapes are ``"ROWSxCOLS"`` texts or ``(rows, cols)`` pairs, input side first.

    >>> str(chain_cost([(2, 3), (3, 4)]).order)
    '(A1 A2)'
    """
    items = list(shapes)
    texts = [s if isinstance(s, str) else f"{s[0]}x{s[1]}" for s in items]
    parsed = parse_shapes(texts)
    optimal, order = optimal_order(parsed)
    k = len(parsed)
    fwd, rev = "A1", f"A{k}"
    for i in range(2, k + 1):
        fwd, rev = f"({fwd} A{i})", f"(A{k + 1 - i} {rev})"
    return ChainCost(tuple(parsed), left_to_right(parsed), right_to_left(parsed), optimal,
                     order, fwd, rev)


# -- sweeps: a family with growing n and m --------------------------------------------------
def network_weights(n: int, m: int, *, width: int = 4, depth: int = 16,
                    seed: int = 0) -> list[np.ndarray]:
    """The weight matrices of :func:`network`: ``W_in (width×n)``, ``depth`` hidden
    ``(width×width)``, ``W_out (m×width)``; entries in [0.2, 1], three decimals.

    >>> [w.shape for w in network_weights(3, 2, depth=1)]
    [(4, 3), (4, 4), (2, 4)]
    """
    rng = np.random.default_rng(seed)
    shapes = [(width, n)] + [(width, width)] * depth + [(m, width)]
    return [np.round(rng.uniform(0.2, 1.0, size=s), 3) for s in shapes]


def network(n: int, m: int, *, width: int = 4, depth: int = 16, seed: int = 0) -> Program:
    """A narrow deep network ``Rⁿ → Rᵐ``: ``y = W_out·sin(W_depth ⋯ sin(W_1·(W_in·x)))``.

    Every hidden node depends on every input and feeds every output, so the Jacobian is
    dense and its cost is dominated by a shared core whose size does not depend on
    ``n`` or ``m``: forward costs ``≈ n·f``, reverse ``≈ m·f``, crossing at ``n = m``.

    >>> prog = network(3, 2)
    >>> len(prog.inputs), len(prog.outputs)
    (3, 2)
    >>> count(network(8, 1)).recommended, count(network(1, 8)).recommended
    ('reverse', 'forward')
    """
    weights = network_weights(n, m, width=width, depth=depth, seed=seed)
    nodes = [Node("input", name=f"x{i}") for i in range(n)]
    consts: dict[float, int] = {}

    def emit(node: Node) -> int:
        nodes.append(node)
        return len(nodes) - 1

    def const(v: float) -> int:
        if v not in consts:
            consts[v] = emit(Node("const", value=v))
        return consts[v]

    def layer(prev: list[int], W: np.ndarray, act: str | None) -> list[int]:
        out = []
        for row in W:
            terms = [emit(Node("mul", (const(float(w)), p))) for w, p in zip(row, prev,
                                                                              strict=True)]
            acc = terms[0]
            for t in terms[1:]:
                acc = emit(Node("add", (acc, t)))
            out.append(emit(Node(act, (acc,))) if act else acc)
        return out

    h = layer(list(range(n)), weights[0], None)
    for W in weights[1:-1]:
        h = layer(h, W, "sin")
    return Program([f"x{i}" for i in range(n)], nodes, layer(h, weights[-1], None))


def network_jax(n: int, m: int, **kw: Any) -> Callable[..., Any]:
    """:func:`network` as a JAX function in matrix form (the same weights).

    The Program's scalar-unrolled translation (``Program.to_jax``) of this densely reused
    DAG makes XLA's compile time explode with depth (fusion duplicates shared work), so
    the sweep times JAX on this form, which is how a JAX user would write the network.

    >>> import jax.numpy as jnp
    >>> f, prog = network_jax(3, 2, depth=2), network(3, 2, depth=2)
    >>> x = np.array([0.1, 0.2, 0.3])
    >>> bool(np.allclose(f(jnp.asarray(x)), [float(v) for v in prog.evaluate(list(x))]))
    True
    """
    import jax.numpy as jnp

    weights = network_weights(n, m, **kw)

    def f(x):
        h = weights[0] @ x
        for W in weights[1:-1]:
            h = jnp.sin(W @ h)
        return weights[-1] @ h

    return f


SIZES = (1, 2, 4, 8, 16, 32, 64)


def sweep(*, fixed: int = 16, sizes: Sequence[int] = SIZES, points: int = 1024,
          repeat: int = 7, min_time: float = 0.02, jax: bool = True, seed: int = 0,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Counts and timings of :func:`network` for growing n (m fixed) and growing m (n fixed).

    Returns ``{"fixed", "points", "vary_n": [rows], "vary_m": [rows], "slopes": {...}}``;
    each row has ``n``, ``m``, ``ops`` (counted on the Program), ``seconds`` (diffcheck's
    engines on the Program) and ``jax`` (:func:`network_jax`, the same function in matrix
    form). ``slopes`` are the log-log slopes of cost/f against the growing size.

    >>> s = sweep(sizes=(1, 2), fixed=2, points=2, repeat=1, min_time=0.0, jax=False)
    >>> [(r["n"], r["m"], r["ops"]["forward"] > r["ops"]["function"]) for r in s["vary_n"]]
    [(1, 2, True), (2, 2, True)]
    """
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 1 or fixed < 1:
        raise UsageError("sweep sizes must be positive whole numbers")
    result: dict[str, Any] = {"fixed": fixed, "points": points, "family": "network",
                              "vary_n": [], "vary_m": []}
    rng = np.random.default_rng(seed)
    for key, shape in (("vary_n", lambda s: (s, fixed)), ("vary_m", lambda s: (fixed, s))):
        for s in sizes:
            n, m = shape(s)
            prog = network(n, m, seed=seed)
            X = rng.uniform(-1.0, 1.0, size=(points, n))
            row: dict[str, Any] = {"n": n, "m": m, "ops": count(prog).to_dict(),
                                   "seconds": measure(prog, X, repeat=repeat, min_time=min_time)}
            if jax:
                row["jax"] = measure_jax(network_jax(n, m, seed=seed), X, repeat=repeat,
                                         min_time=min_time, outputs=m)
            result[key].append(row)
            if progress is not None:
                progress(f"{key}: n={n} m={m} done")
    result["slopes"] = slopes(result)
    return result


def fit_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``.

    >>> round(fit_slope([1, 2, 4, 8], [3, 6, 12, 24]), 6)
    1.0
    """
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(lx, ly, 1)[0])


def _series(rows: list[dict], block: str, key: str) -> list[float]:
    base = "function"
    return [r[block][key] / r[block][base] for r in rows]


def slopes(result: dict[str, Any], *, tail: int = 4) -> dict[str, dict[str, float]]:
    """Log-log slopes of cost/f against the growing size, over the ``tail`` largest sizes.

    Keys ``"vary_n"``/``"vary_m"`` -> ``{"ops forward": s, "time forward": s, ...}``:
    counted (``ops``), measured on diffcheck's engines (``time``) and on JAX (``jax``).
    """
    out: dict[str, dict[str, float]] = {}
    for key, size in (("vary_n", "n"), ("vary_m", "m")):
        rows = result[key][-tail:]
        if len(rows) < 2:
            continue
        xs = [r[size] for r in rows]
        fits = {f"ops {mode}": fit_slope(xs, _series(rows, "ops", mode))
                for mode in ("forward", "reverse")}
        fits.update({f"time {mode}": fit_slope(xs, _series(rows, "seconds", mode))
                     for mode in ("forward", "reverse")})
        if "jax" in rows[0]:
            fits.update({f"jax {mode}": fit_slope(xs, _series(rows, "jax", mode))
                         for mode in ("jacfwd", "jacrev")})
        out[key] = fits
    return out


def plot_sweep(result: dict[str, Any], path: str) -> str:
    """Plot a :func:`sweep`: cost/f against n (m fixed) and against m (n fixed).

    Lines are the counts, filled markers diffcheck's engines, hollow markers JAX. Needs
    matplotlib (the ``plot`` extra), imported here only.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("the sweep plot needs matplotlib, which is not installed: "
                         "pip install 'diffcheck[plot]' (or pip install matplotlib); "
                         "--no-plot prints the numbers without a plot") from None
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    fixed = result["fixed"]
    for ax, key, size, other in ((axes[0], "vary_n", "n", "m"), (axes[1], "vary_m", "m", "n")):
        _plot_panel(ax, result[key], size, other, fixed, result.get("slopes", {}).get(key, {}))
    axes[0].set_ylabel("cost of the whole Jacobian / cost of f")
    fig.suptitle(f"Forward vs reverse mode on network(n, m) (width 4, depth 16), "
                 f"{result['points']} points per call")
    fig.savefig(path, dpi=110)
    return path


def _plot_panel(ax: Any, rows: list[dict], size: str, other: str, fixed: int,
                fits: dict[str, float]) -> None:
    xs = [r[size] for r in rows]
    colors = {"forward": "tab:blue", "reverse": "tab:red"}
    for mode, color in colors.items():
        for what, block, style in (("ops", "ops", "-"), ("time", "seconds", "o")):
            slope = fits.get(f"{what} {mode}", math.nan)
            ax.plot(xs, _series(rows, block, mode), style, color=color,
                    label=f"{mode}, {'counted' if what == 'ops' else 'measured'} "
                          f"(slope {slope:.2f})")
    if "jax" in rows[0]:
        for mode, jmode in (("forward", "jacfwd"), ("reverse", "jacrev")):
            ax.plot(xs, _series(rows, "jax", jmode), "s", mfc="none", color=colors[mode],
                    label=f"JAX {jmode}, measured (slope {fits.get('jax ' + jmode, math.nan):.2f})")
    ax.axvline(fixed, color="gray", ls="--", lw=1)
    ax.text(fixed, 0.02, f" {size} = {other} = {fixed}", color="gray", va="bottom",
            transform=ax.get_xaxis_transform())
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(f"{size} ({'inputs' if size == 'n' else 'outputs'}), {other} = {fixed}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
