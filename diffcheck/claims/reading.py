"""Reading a claimed derivative: exact numbers, nested lists, F's shape and variables.

The claim is parsed by the same parser as EXPR (:mod:`diffcheck.parse`: the same limits and
the same error messages), with one difference: a decimal literal means the decimal it spells,
so ``6.3`` is the rational 63/10 and ``6.3*x**2`` is exactly d/dx of ``2.1*x**3``. EXPR is read
the same way for the comparison (its engines keep their float64 view). A claim may be a
bracketed list of bracketed lists (a Jacobian or a Hessian); each entry is parsed on its own,
after the whole text passed the tokenizer's limits.

>>> parse_exact("2.1*x**3 + 1e-9*x")
21*x**3/10 + x/1000000000
>>> [[c.text for c in row] for row in read_claim("[[2, 2*x2], [-2*x1, 3]]")]
[['2', '2*x2'], ['-2*x1', '3']]
>>> read_claim("[y*z, x*z, x*y]")[2].expr
x*y
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ..canon import paused_gc
from ..errors import DomainError, ParseError, UsageError
from ..parse import _Parser, natural_key, tokenize
from .highprec import Plan


class _ExactParser(_Parser):
    """The expression parser, with decimal literals read as exact rationals."""

    def number(self, tok):
        value = super().number(tok)  # the parser's own limits and messages
        if not value.is_Float:
            return value
        try:
            return sympy.Rational(tok.text)
        except (TypeError, ValueError):  # a literal SymPy does not read: its printed decimal
            return sympy.Rational(str(value))


def parse_exact(text: str, variables: Any = ()) -> Any:
    """Parse like :func:`diffcheck.parse.parse`, decimals as exact rationals.

    >>> parse_exact("[0.1*x, 2.5]")
    [x/10, 5/2]
    """
    return _parse_named(text, variables)[0]


def _parse_named(text: str, variables: Any = ()) -> tuple[Any, frozenset[str]]:
    """The exact expression and the names written in it (a name that cancels, ``y`` in
    ``y - y``, is still one)."""
    if not isinstance(text, str):
        raise ParseError(f"expression must be text, got {type(text).__name__}")
    with paused_gc():
        parser = _ExactParser(text, variables)
        expr = parser.run()
    return expr, frozenset(parser.symbols)


def exact_sympy(e: Any) -> Any:
    """A SymPy expression (or number) given directly: real symbols, floats as the decimals
    they print as."""
    e = sympy.sympify(e)
    reps: dict[Any, Any] = {s: sympy.Symbol(s.name, real=True) for s in e.free_symbols}
    reps.update({f: sympy.Rational(str(f)) for f in e.atoms(sympy.Float)})
    return e.xreplace(reps)


@dataclass
class Item:
    """One claimed entry: the text as written, and its exact SymPy expression."""

    text: str
    expr: Any
    names: frozenset[str] | None = None  # the names written, where they differ from expr's


# -- text -> nested items -------------------------------------------------------------------
def read_claim(value: Any, variables: Any = ()) -> Item | list:
    """An :class:`Item`, a list of them, or a list of lists, from text, SymPy or numbers.

    ``variables``: names that are variables in the text even where they would be a constant
    or a function (F's variables, as ``--at``/``--wrt`` declared them: ``e``, ``gamma``)."""
    if isinstance(value, str):
        return _read_text(value, variables)
    if isinstance(value, np.ndarray) or hasattr(value, "tolist") and \
            not isinstance(value, sympy.Basic):
        value = value.tolist()
    if isinstance(value, list | tuple):
        items = [read_claim(v, variables) for v in value]
        if any(isinstance(r, list) and any(isinstance(c, list) for c in r) for r in items):
            raise UsageError("a claim nests lists at most two levels deep (a Jacobian or a "
                             "Hessian is a list of rows)")
        return items
    if isinstance(value, sympy.Basic | int | float) and not isinstance(value, bool):
        return Item(str(value), exact_sympy(value))
    raise UsageError(f"a claim must be text like '2*x' or '[y, x]', SymPy expressions or "
                     f"numbers, or lists of them; got {type(value).__name__}")


def _read_text(text: str, variables: Any = ()) -> Item | list:
    toks = tokenize(text)  # the length, token and character limits of EXPR
    if toks[0].text != "[":
        return Item(text.strip(), *_parse_named(text, variables))
    items, k = _read_list(text, toks, 0, 1, variables)
    if toks[k].kind != "end":
        raise _error(text, f"unexpected '{toks[k].text}' after the list", toks[k].col)
    return items


def _read_list(text: str, toks: list, i: int, level: int, variables: Any = ()
               ) -> tuple[list, int]:
    """Items of the list opened by ``toks[i]`` and the index after its ']'."""
    opened = toks[i]
    i += 1
    items: list = []
    while True:
        if toks[i].text == "[":
            if level == 2:
                raise _error(text, "a claim nests lists at most two levels deep ([[a, b], "
                             "[c, d]])", toks[i].col)
            row, i = _read_list(text, toks, i, level + 1, variables)
            items.append(row)
        else:
            j = _item_end(text, toks, i, opened)
            items.append(_item(text, toks[i].col, toks[j].col, variables))
            i = j
        tok = toks[i]
        if tok.text == "]":
            return items, i + 1
        if tok.text != ",":
            what = f"'{tok.text}'" if tok.kind != "end" else "the end"
            raise _error(text, f"expected ',' or ']' but found {what}", tok.col)
        i += 1


def _item_end(text: str, toks: list, i: int, opened) -> int:
    """Index of the ',' or ']' that ends the entry starting at ``toks[i]``."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind == "end":
            raise _error(text, "'[' is never closed", opened.col)
        if t.kind != "op":
            continue
        if t.text == "[":
            raise _error(text, "a list [...] may only be a whole entry of the claim", t.col)
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth < 0:
                raise _error(text, "unmatched ')'", t.col)
        elif depth == 0 and t.text in ",]":
            if j == i:
                raise _error(text, "an entry is missing", t.col)
            return j
    raise AssertionError("the end token always ends the scan")


def _item(text: str, start: int, stop: int, variables: Any = ()) -> Item:
    piece = text[start:stop]
    try:
        return Item(piece.strip(), *_parse_named(piece, variables))
    except ParseError as err:
        if err.column is None:
            raise
        msg = re.sub(r" at column (\d+)$", lambda m: f" at column {int(m[1]) + start}",
                     err.message)
        raise ParseError(msg, text=text, column=err.column + start) from None


def _error(text: str, message: str, col: int) -> ParseError:
    return ParseError(f"{message} at column {col}", text=text, column=col)


# -- shapes ---------------------------------------------------------------------------------
@dataclass
class Entry:
    """A claimed entry placed in F's derivatives: ``row`` of F, variables ``cols``."""

    index: list[int]  # the JSON index: [i] or [i, j]
    row: int  # which output of F
    cols: tuple[int, ...]  # (j,) for a first derivative, (j, k) for a Hessian entry
    item: Item


@dataclass
class Spec:
    """One claim (``--claim`` or ``--claim-hessian``) laid out against F."""

    kind: str  # derivative | gradient | jacobian | hessian
    entries: list[Entry]


def _is_row(v: Any) -> bool:
    return isinstance(v, list)


def first_derivatives(claim: Item | list, m: int, wrt: list[str], vector: bool) -> Spec:
    """Place a ``--claim`` against F (``m`` outputs, variables ``wrt``); bad shapes are
    :class:`~diffcheck.errors.UsageError`."""
    n, names = len(wrt), ", ".join(wrt)
    if vector:
        if not (_is_row(claim) and claim and all(_is_row(r) for r in claim)):
            outputs = f"{m} output{'s' if m != 1 else ''}"
            raise UsageError(f"F is a vector function ({outputs}, variables {names}): give "
                             f"its Jacobian as {m} bracketed row{'s' if m > 1 else ''} of {n}, "
                             f"e.g. [[df1/d{wrt[0]}, ...], ...]; row i is the gradient of fi")
        _check_matrix(claim, m, n, "Jacobian", f"{m} x {n}: one row per output f1..f{m}, one "
                      f"column per variable {names}")
        return Spec("jacobian", [Entry([i, j], i, (j,), claim[i][j])
                                 for i in range(m) for j in range(n)])
    if isinstance(claim, Item):
        if n != 1:
            raise UsageError(f"F has {n} variables ({names}): give its gradient as a "
                             f"bracketed list of {n} entries in that order, e.g. "
                             f"[df/d{wrt[0]}, df/d{wrt[1]}] (or pick one variable with --wrt)")
        return Spec("derivative", [Entry([0], 0, (0,), claim)])
    if any(_is_row(r) for r in claim):
        raise UsageError("a list of lists is a Jacobian or a Hessian, but F is a scalar "
                         f"function: give its gradient as one list of {n} entries ({names}); "
                         "a claimed Hessian goes in --claim-hessian")
    if len(claim) != n:
        raise UsageError(f"the claimed gradient has {len(claim)} entr"
                         f"{'y' if len(claim) == 1 else 'ies'} but F has {n} variable"
                         f"{'s' if n != 1 else ''} ({names}, in this order; --wrt changes it)")
    return Spec("gradient", [Entry([j], 0, (j,), claim[j]) for j in range(n)])


def hessian(claim: Item | list, wrt: list[str], vector: bool) -> Spec:
    """Place a ``--claim-hessian`` against a scalar F with variables ``wrt``."""
    n, names = len(wrt), ", ".join(wrt)
    if vector:
        raise UsageError("--claim-hessian needs a scalar F; for a vector function check the "
                         "Hessian of each output on its own")
    if isinstance(claim, Item) and n == 1:
        claim = [[claim]]
    if not (_is_row(claim) and claim and all(_is_row(r) for r in claim)):
        raise UsageError(f"give the claimed Hessian as {n} bracketed rows of {n} entries "
                         f"(variables {names}), e.g. [[d2f/d{wrt[0]}d{wrt[0]}, ...], ...]")
    _check_matrix(claim, n, n, "Hessian", f"{n} x {n}, rows and columns in the variable "
                  f"order {names}")
    return Spec("hessian", [Entry([i, j], 0, (i, j), claim[i][j])
                            for i in range(n) for j in range(n)])


def _check_matrix(rows: list, m: int, n: int, what: str, layout: str) -> None:
    widths = [len(r) for r in rows]
    if len(rows) == m and all(w == n for w in widths):
        return
    shape = f"{len(rows)} row{'s' if len(rows) != 1 else ''} of " + (
        str(widths[0]) if len(set(widths)) == 1 else "/".join(map(str, widths)))
    hint = ""
    if len(rows) == n and all(w == m for w in widths) and m != n:
        hint = " It looks transposed: row i must hold the derivatives of output i."
    raise UsageError(f"the claimed {what} is {shape} entries, but F's {what} is {layout}.{hint}")


def check_variables(specs: list[Spec], variables: list[str]) -> None:
    """Every name the claim uses must be a variable of F (also one that cancels, as in
    ``2*x + z - z``)."""
    used = {s.name for sp in specs for e in sp.entries for s in e.item.expr.free_symbols}
    used |= {n for sp in specs for e in sp.entries for n in e.item.names or ()}
    extra = sorted(used - set(variables), key=natural_key)
    if extra:
        which = "is not a variable" if len(extra) == 1 else "are not variables"
        raise UsageError(f"the claim uses {', '.join(extra)}, which {which} of F (variables: "
                         f"{', '.join(variables) or 'none'}); a derivative of F can only "
                         "depend on F's variables")


def check_constants(specs: list[Spec]) -> None:
    """Every constant in the claim must be a finite real number, as in EXPR (``log(0)``,
    ``sqrt(-1)``, ``(-8)**(1/3)`` are not): such a claim is bad input, not a wrong answer.

    >>> check_constants([Spec("derivative", [Entry([0], 0, (0,), read_claim("2*x + pi"))])])
    >>> try:
    ...     check_constants([Spec("derivative", [Entry([0], 0, (0,), read_claim("log(0)"))])])
    ... except DomainError as err:
    ...     print(err)
    the claim's constant zoo (in 'log(0)') is not a finite real number
    """
    for sp in specs:
        for e in sp.entries:
            bad = _bad_constant(e.item.expr)
            if bad is not None:
                raise DomainError(f"the claim's constant {bad} (in '{e.item.text}') is not a "
                                  "finite real number")


def _bad_constant(expr: Any) -> Any | None:
    """The first largest constant subexpression that is not a finite real number, or None."""
    stack, seen = [expr], set()
    while stack:
        node = stack.pop()
        if node in seen or not isinstance(node, sympy.Basic):
            continue
        seen.add(node)
        if node.free_symbols:
            stack.extend(node.args)
        elif not (node.is_Rational or node.is_Float) and \
                Plan([node], []).evaluate([], 30)[0] is None:
            return node
    return None
