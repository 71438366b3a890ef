"""Text to SymPy, safely: a tokenizer and an operator-precedence parser, never ``eval``.

The grammar is Python-like arithmetic: numbers, names, ``+ - * / **`` (``^`` means ``**``),
unary signs, parentheses, calls of the functions in the rule table, and one optional
bracketed list at the top for a vector function. SymPy objects are constructed directly;
``sympify`` and ``parse_expr`` (which call ``eval``) are never given user text. The parser
is iterative (explicit stacks, linear time): long sums and deep nesting cannot exhaust
Python's recursion limit, and hard limits (text size, nesting depth, number size, exponent
size) turn resource attacks into a :class:`ParseError` that names the limit.

>>> parse("x**2*y + (x+y)**2")
x**2*y + (x + y)**2
>>> parse("[2*x1 + x2^2, -x1**2 + 3*x2]")
[2*x1 + x2**2, -x1**2 + 3*x2]
>>> variables_of(parse("x10 + x2 + a"))
['a', 'x2', 'x10']

Text pasted from notes works too: Greek letters are names (``θ``, ``λ``), ``π`` is pi,
``·`` ``×`` ``−`` ``÷`` are operators, superscripts are powers and ``√(`` is sqrt:

>>> parse("2·θ² − √(λ)·π")
2*θ**2 - pi*sqrt(λ)
>>> parse("e^x")  # e is Euler's number unless it is declared a variable
exp(x)
>>> parse("e^x", variables=["e"])
e**x
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sympy

from .canon import Canon, paused_gc
from .errors import ParseError
from .primitives import PARSE_FUNCTIONS

MAX_LENGTH = 2_000_000  #: characters of expression text
MAX_TOKENS = 300_000  #: numbers, names and operators in the text
MAX_DEPTH = 100  #: nesting of parentheses, calls and brackets
MAX_DIGITS = 300  #: digits of an integer literal; float literals must fit float64
MAX_RESULT_DIGITS = 10_000  #: digits of a number computed from literals (9**9**9)
MAX_EXPONENT = 10_000  #: magnitude of a numeric exponent on a symbolic base
MAX_SUPERSCRIPT = 20  #: characters of a superscript exponent (x²³)

#: names of constants; ``e`` is Euler's number too, unless the user declares it a variable
#: (names it in ``--at`` or ``--wrt``), as any of these names and the function names
CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "e": sympy.E}

# name -> (allowed argument counts, builder), from the rule table (cbrt is a power)
_BUILDERS: dict[str, tuple[Sequence[int], Callable]] = {
    name: (row.nargs or (row.arity,), row.build or row.sympy)
    for name, row in PARSE_FUNCTIONS.items() if row.build or row.sympy
}
_BUILDERS["cbrt"] = ((1,), lambda x: sympy.Pow(x, sympy.Rational(1, 3)))
FUNCTIONS = frozenset(_BUILDERS)

# letters of names: Latin and Greek (but not π, which is pi), and the micro sign (read as μ)
_LETTER = "A-Za-z_\u0391-\u03a9\u03b1-\u03bf\u03c1-\u03c9\u00b5"
NAME = re.compile(f"[{_LETTER}][{_LETTER}0-9]*")  #: a variable or function name

_TOKEN = re.compile(rf"""
    (?P<ws>\s+)
  | (?P<num>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>{NAME.pattern})
  | (?P<op>\*\*|[-+*/^(),\[\]])
  | (?P<uop>[·⋅×∗−–÷])
  | (?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)
  | (?P<root>[√∛])
  | (?P<pi>π)
""", re.VERBOSE)
_UNICODE_OPS = {"·": "*", "⋅": "*", "×": "*", "∗": "*", "−": "-", "–": "-", "÷": "/"}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_ROOTS = {"√": "sqrt", "∛": "cbrt"}

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "u+": 3, "u-": 3, "**": 4}


@dataclass(frozen=True)
class Token:
    kind: str  # num, name, op, end
    text: str
    col: int
    src: str = ""  # the characters typed, where they differ from text ('²' for '**', '2')

    @property
    def shown(self) -> str:
        return self.src or self.text


def tokenize(text: str) -> list[Token]:
    """Split text into tokens; any other character is a ParseError with a caret.

    Math notation is read as the operators it stands for, and every token keeps the column
    of the character typed: ``x²`` is ``x ** 2``, ``2·θ`` is ``2 * θ``, ``√(x)`` is
    ``sqrt(x)`` and ``√x`` is ``sqrt(x)``, ``π`` is ``pi``.

    >>> [t.text for t in tokenize("√x·y⁻¹")]
    ['sqrt', '(', 'x', ')', '*', 'y', '**', '-', '1', '']
    """
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression is {len(text):,} characters long; the limit is "
                         f"{MAX_LENGTH:,}")
    tokens: list[Token] = []
    pos, root = 0, None
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            shown = repr(ch) if ch.isprintable() else f"{ord(ch):#04x}"
            hint = " (attribute access is not allowed)" if ch == "." else ""
            raise ParseError(f"unexpected character {shown} at column {pos}{hint}",
                             text=text, column=pos)
        if m.lastgroup != "ws":
            if root is not None:  # the operand of √ without parentheses
                _root_operand(text, m, root, tokens)
                root = None
            else:
                root = _add_tokens(text, m, tokens)
            if len(tokens) > MAX_TOKENS:
                raise ParseError(f"expression has more than {MAX_TOKENS:,} tokens (numbers, "
                                 "names, operators); split it into smaller expressions",
                                 text=text, column=pos)
        pos = m.end()
    if root is not None:
        raise _root_error(text, root)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _add_tokens(text: str, m: re.Match, tokens: list[Token]) -> Token | None:
    """Append the tokens of one match; returns the sqrt token of a √ not followed by '('."""
    kind, raw, col = m.lastgroup, m.group(), m.start()
    if kind == "uop":
        tokens.append(Token("op", _UNICODE_OPS[raw], col, raw))
    elif kind == "sup":
        if len(raw) > MAX_SUPERSCRIPT:
            raise ParseError(f"superscript exponent of {len(raw):,} characters (the limit is "
                             f"{MAX_SUPERSCRIPT}) at column {col}", text=text, column=col)
        tokens.append(Token("op", "**", col, raw))
        for part in re.findall(r"[0-9]+|[-+]", raw.translate(_SUPERSCRIPTS)):
            tokens.append(Token("num" if part[0].isdigit() else "op", part, col, raw))
    elif kind == "pi":
        tokens.append(Token("name", "pi", col, raw))
    elif kind == "root":
        tokens.append(Token("name", _ROOTS[raw], col, raw))
        if not text.startswith("(", _skip_space(text, m.end())):
            return tokens[-1]
    elif kind == "name" and "µ" in raw:
        tokens.append(Token("name", canonical_name(raw), col, raw))
    else:
        tokens.append(Token(kind, raw, col))
    return None


def _root_operand(text: str, m: re.Match, root: Token, tokens: list[Token]) -> None:
    """``√x`` and ``√2``: the root applies to the one name or number that follows."""
    after = _skip_space(text, m.end())
    if m.lastgroup not in ("num", "name", "pi") or text.startswith(("(", "**", "^"), after) \
            or (after < len(text) and text[after] in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺"):
        raise _root_error(text, root)
    tokens.append(Token("op", "(", root.col, root.src))
    _add_tokens(text, m, tokens)
    tokens.append(Token("op", ")", root.col, root.src))


def _root_error(text: str, root: Token) -> ParseError:
    return ParseError(f"write the argument of {root.src} in parentheses, as in {root.src}(x) or "
                      f"{root.src}(x**2), at column {root.col}", text=text, column=root.col)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


class _Terms(list):
    """A sum being collected (built once at the end: linear time for long sums)."""


class _Factors(list):
    """A product being collected."""


class _Parser:
    def __init__(self, text: str, variables: Collection[str] = ()):
        self.text = text
        self.declared = frozenset(variables)  # names that are variables whatever else they are
        self.tokens = tokenize(text)
        self.values: list = []
        self.ops: list = []  # entries: (kind, text, col, extra)
        self.depth = 0
        self.items: list | None = None  # collected elements of a top-level [...]
        self.symbols: dict[str, sympy.Symbol] = {}
        self.canon = Canon()  # builds repeated shapes (a_i*sin(x_i) + ...) from templates

    def done(self, v):
        """The SymPy expression of a value (a collected sum or product is built once)."""
        if isinstance(v, _Terms):
            return self.canon.make("add", sympy.Add, v)
        if isinstance(v, _Factors):
            return self.canon.make("mul", sympy.Mul, v)
        return v

    def negate(self, v):
        return self.canon.make("neg", operator.neg, [v])

    def error(self, msg: str, col: int) -> ParseError:
        return ParseError(f"{msg} at column {col}", text=self.text, column=col)

    # -- reductions -----------------------------------------------------------------------
    def reduce_top(self) -> None:
        kind, op, col, _ = self.ops.pop()
        if kind == "unary":
            v = self.done(self.values.pop())
            self.values.append(self.negate(v) if op == "u-" else v)
            return
        right, left = self.values.pop(), self.values.pop()
        self.values.append(self.binary(op, left, right, col))

    def binary(self, op: str, left, right, col: int):
        if op in "+-":
            right = self.done(right)
            terms = left if isinstance(left, _Terms) else _Terms([self.done(left)])
            terms.append(right if op == "+" else self.negate(right))
            return terms
        if op in "*/":
            right = self.done(right)
            factors = left if isinstance(left, _Factors) else _Factors([self.done(left)])
            if op == "/" and right == 0:
                raise self.error("division by zero", col)
            factors.append(right if op == "*" else
                           self.canon.make("pow", sympy.Pow, [right, sympy.S.NegativeOne]))
            return factors
        return self.power(self.done(left), self.done(right), col)

    def power(self, base, exp, col: int):
        if exp.is_Number:
            if abs(exp) > MAX_EXPONENT and not (base.is_Number and abs(base) in (0, 1)):
                raise self.error(f"exponent {_short(exp)} is too large (the limit on a "
                                 f"numeric exponent is {MAX_EXPONENT:,})", col)
            if base.is_Number and base != 0 and abs(base) != 1:
                digits = float(abs(exp)) * abs(math.log10(abs(float(base))))
                if digits > MAX_RESULT_DIGITS:
                    raise self.error(f"number {_short(base)}**{_short(exp)} would have about "
                                     f"{digits:.3g} digits (the limit is "
                                     f"{MAX_RESULT_DIGITS:,})", col)
            if base == 0 and exp.is_negative:
                raise self.error("division by zero (0 to a negative power)", col)
        return self.canon.make("pow", sympy.Pow, [base, exp])

    def pop_until_open(self) -> None:
        while self.ops and self.ops[-1][0] in ("unary", "binary"):
            self.reduce_top()

    # -- the main loop --------------------------------------------------------------------
    def run(self):
        expect_operand = True
        i = 0
        toks = self.tokens
        while True:
            tok = toks[i]
            if expect_operand:
                i, expect_operand = self.operand(tok, toks, i)
            else:
                if tok.kind == "end":
                    break
                i, expect_operand = self.operator(tok, i)
            i += 1
        self.pop_until_open()
        if self.ops:
            kind, text, col, _ = self.ops[-1]
            raise self.error(f"'{text}' is never closed", col)
        result = self.done(self.values.pop())
        if self.items is not None:
            raise self.error("a list [...] may only be the whole expression", 0)
        return result

    def operand(self, tok: Token, toks: list[Token], i: int) -> tuple[int, bool]:
        if tok.kind == "num":
            self.values.append(self.number(tok))
            return i, False
        if tok.kind == "name":
            if toks[i + 1].text == "(":
                self.open_call(tok)
                return i + 1, True
            self.values.append(self.name(tok))
            return i, False
        if tok.text == "(":
            self.push_open("paren", "(", tok.col)
            return i, True
        if tok.text in ("+", "-"):
            self.ops.append(("unary", "u" + tok.text, tok.col, None))
            return i, True
        if tok.text == "[":
            if i != 0:
                raise self.error("a list [...] may only be the whole expression", tok.col)
            self.items = []
            self.push_open("list", "[", tok.col)
            return i, True
        if tok.kind == "end":
            what = "expression is empty" if i == 0 else "expression ends too early"
            raise self.error(f"{what}: a number, name or '(' is missing", tok.col)
        raise self.error(f"expected a number, a name or '(' but found '{tok.shown}'", tok.col)

    def operator(self, tok: Token, i: int) -> tuple[int, bool]:
        t = tok.text
        if type(self.values[-1]) is list:
            raise self.error("a list [...] may only be the whole expression", tok.col)
        if t == "^":
            t = "**"
        if t in _PREC and tok.kind == "op":
            self.push_binary(t, tok.col)
            return i, True
        if t == ")":
            self.close(")", tok.col)
            return i, False
        if t == ",":
            self.comma(tok.col)
            return i, True
        if t == "]":
            self.close("]", tok.col)
            return i, False
        raise self.error(f"expected an operator but found '{tok.shown}' (write products "
                         "with '*', e.g. 2*x)", tok.col)

    def push_binary(self, op: str, col: int) -> None:
        prec, right_assoc = _PREC[op], op == "**"
        while self.ops and self.ops[-1][0] in ("unary", "binary"):
            top = _PREC[self.ops[-1][1]]
            if top > prec or (top == prec and not right_assoc):
                self.reduce_top()
            else:
                break
        self.ops.append(("binary", op, col, None))

    def push_open(self, kind: str, text: str, col: int, extra=None) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting is deeper than {MAX_DEPTH} levels", col)
        self.ops.append((kind, text, col, extra))

    def open_call(self, tok: Token) -> None:
        if tok.text not in FUNCTIONS:
            raise self.error(
                f"unknown function '{tok.text}'; supported functions: "
                f"{', '.join(sorted(FUNCTIONS))}", tok.col)
        self.push_open("call", tok.text, tok.col, [len(self.values)])

    def comma(self, col: int) -> None:
        self.pop_until_open()
        if not self.ops:
            raise self.error("',' outside a function call or list", col)
        kind = self.ops[-1][0]
        if kind == "list":
            self.items.append(self.done(self.values.pop()))
        elif kind != "call":
            raise self.error("',' inside parentheses that are not a function call", col)

    def close(self, closer: str, col: int) -> None:
        self.pop_until_open()
        if not self.ops:
            raise self.error(f"unmatched '{closer}'", col)
        kind, text, open_col, extra = self.ops.pop()
        self.depth -= 1
        want = "]" if kind == "list" else ")"
        if closer != want:
            raise self.error(f"'{closer}' closes the '{text}' opened at column {open_col}",
                             col)
        if kind == "call":
            self.finish_call(text, open_col, extra[0], col)
        elif kind == "list":
            self.items.append(self.done(self.values.pop()))
            self.values.append(list(self.items))
            self.items = None

    def finish_call(self, name: str, col: int, start: int, close_col: int) -> None:
        args = [self.done(v) for v in self.values[start:]]
        del self.values[start:]
        counts, build = _BUILDERS[name]
        if len(args) not in counts:
            want = f"{counts[0]} to {counts[-1]}" if len(counts) > 2 else \
                " or ".join(str(c) for c in counts)
            raise self.error(f"{name}() takes {want} argument{'s' if want != '1' else ''}, "
                             f"got {len(args)}", col)
        try:
            self.values.append(self.canon.make(name, build, args))
        except ParseError as err:  # a builder refused an argument (log(x, 1), gamma(10**8))
            if err.column is not None:
                raise
            raise self.error(err.message, col) from None

    def number(self, tok: Token):
        text = tok.text
        if re.fullmatch(r"\d+", text):
            if len(text) > MAX_DIGITS:
                raise self.error(f"integer literal has {len(text)} digits (the limit is "
                                 f"{MAX_DIGITS})", tok.col)
            return sympy.Integer(int(text))
        value = float(text)
        if math.isinf(value):
            raise self.error(f"number {text} overflows float64 (largest is about 1.8e308)",
                             tok.col)
        return sympy.Float(text, 15)

    def name(self, tok: Token):
        n = tok.text
        if n in self.declared:
            pass
        elif n in FUNCTIONS:
            raise self.error(f"'{n}' is a function: call it, as in {n}(x) (to use {n} as a "
                             "variable, name it in --at or --wrt)", tok.col)
        elif n in CONSTANTS:
            return CONSTANTS[n]
        if n.startswith("__"):
            raise self.error(f"names starting with '__' are not allowed ('{n}')", tok.col)
        if n not in self.symbols:
            self.symbols[n] = sympy.Symbol(n, real=True)
        return self.symbols[n]


def _short(x) -> str:
    s = str(x)
    return s if len(s) <= 20 else s[:8] + "..." + s[-4:]


class Parsed(NamedTuple):
    """A parsed expression and the variables as written (in natural order): a variable that
    cancels (``x`` in ``x - x + y``) is still a variable of what the user typed."""

    expr: sympy.Expr | list[sympy.Expr]
    names: list[str]


def parse_expression(text: str, *, variables: Collection[str] = ()) -> Parsed:
    """Parse text, and report the variable names it uses.

    ``variables``: names that are variables even where they would be a constant (``e``,
    ``pi``) or a function name (``gamma``), as the CLI's ``--at`` and ``--wrt`` declare them.

    >>> p = parse_expression("x - x + y")
    >>> p.expr, p.names
    (y, ['x', 'y'])
    """
    if not isinstance(text, str):
        raise ParseError(f"expression must be text, got {type(text).__name__}")
    with paused_gc():
        parser = _Parser(text, variables)
        expr = parser.run()
    return Parsed(expr, sorted(parser.symbols, key=natural_key))


def parse(text: str, *, variables: Collection[str] = ()) -> sympy.Expr | list[sympy.Expr]:
    """Parse expression text into a SymPy expression (or a list, for ``[f1, f2, ...]``).

    ``e`` is Euler's number, as ``E`` is, unless ``variables`` names it (see
    :func:`parse_expression`).

    Raises:
        ParseError: the text is malformed or breaks a limit; the message shows the column.

    >>> parse("log(sqrt(x))")
    log(sqrt(x))
    >>> try:
    ...     parse("2 x")
    ... except ParseError as err:
    ...     print(err)
    expected an operator but found 'x' (write products with '*', e.g. 2*x) at column 2
      2 x
        ^
    """
    return parse_expression(text, variables=variables).expr


def function_names() -> list[str]:
    """Every function name the parser accepts (from the rule table), sorted: the CLI help
    and docs/cli.md list these.

    >>> function_names()[:4]
    ['Abs', 'abs', 'acos', 'acosh']
    """
    return sorted(FUNCTIONS, key=lambda n: (n.lower(), n))


def canonical_name(name: str) -> str:
    """A name as the parser spells it (the micro sign µ is the Greek letter μ)."""
    return name.replace("µ", "μ")


def natural_key(name: str) -> list:
    """Sort key that orders digits as numbers: x2 before x10."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p)
            for p in re.split(r"(\d+)", name) if p]


def variables_of(expr) -> list[str]:
    """Free variable names of an expression (or list of them), in natural order."""
    exprs = expr if isinstance(expr, list) else [expr]
    names = {s.name for e in exprs for s in e.free_symbols}
    return sorted(names, key=natural_key)
