"""Canonical SymPy construction at template speed, for expressions with thousands of terms.

SymPy canonicalises every expression it builds (``sin(-x)`` becomes ``-sin(x)``, terms are
sorted, powers collected), and that costs 50-400 microseconds an operation. In a sum of
thousands of similar terms the work repeats: building ``sin(x7)*exp(x7/3)`` decides exactly
what building ``sin(x8)*exp(x8/3)`` decides. :class:`Canon` therefore builds each operation
once per *shape* over placeholder symbols (the template) and instantiates the template for the
actual symbols by a substitution that does not evaluate again.

Why the result is the very object SymPy would build: SymPy's construction looks at a symbol
only through its assumptions and through the order of its name among the other symbols
(sorting). A shape records the operation, the shapes of the arguments and, for each distinct
symbol, its assumptions and the rank of its name; placeholders are symbols with the same
assumptions whose names sort in the same order, so construction over placeholders and over
the actual symbols takes the same decisions. Shapes are kept only for subexpressions with at
most :data:`MAX_SYMBOLS` distinct symbols; anything larger is built by SymPy directly.

>>> import sympy
>>> canon = Canon()
>>> x, y = sympy.symbols("x8 x9", real=True)
>>> t1 = canon.make("mul", sympy.Mul, [sympy.sin(x), sympy.exp(x / 3)])
>>> t2 = canon.make("mul", sympy.Mul, [sympy.sin(y), sympy.exp(y / 3)])  # from the template
>>> t2, t2 == sympy.sin(y) * sympy.exp(y / 3)
(exp(x9/3)*sin(x9), True)
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sympy
from sympy.core.basic import Basic
from sympy.core.function import DefinedFunction, Function
from sympy.functions.elementary.miscellaneous import MinMaxBase

MAX_SYMBOLS = 8  #: distinct symbols a templated subexpression may contain
MAX_TEMPLATES = 500_000  #: templates kept before a fresh store is started

Info = tuple[int, tuple[Any, ...]]  # (shape id, the distinct symbols, in first-seen order)
_IDENTITY = [tuple(range(k)) for k in range(MAX_SYMBOLS + 1)]


class _Entry:
    """A template: its expression over placeholders, the template arguments it was built
    from (None for leaves and for shapes read off an existing node) and its placeholders."""

    __slots__ = ("expr", "args", "holders", "ranks")

    def __init__(self, expr: Any, args: tuple | None, holders: tuple, ranks: tuple):
        self.expr, self.args, self.holders, self.ranks = expr, args, holders, ranks


class _Store:
    def __init__(self) -> None:
        self.ids: dict[Hashable, int] = {}
        self.entries: list[_Entry] = []

    def add(self, key: Hashable, entry: _Entry) -> int:
        self.entries.append(entry)
        self.ids[key] = len(self.entries) - 1
        return self.ids[key]


_STORE = _Store()


def _current_store() -> _Store:
    global _STORE
    if len(_STORE.entries) > MAX_TEMPLATES:
        _STORE = _Store()
    return _STORE


class Canon:
    """Builds canonical SymPy expressions through templates (see the module docstring).

    One instance serves one task (a parse, a derivation): it remembers, by object identity,
    the shape of every expression it has seen and keeps those objects alive. With
    ``templates=False`` it builds every expression by SymPy directly (the reference).
    """

    def __init__(self, *, templates: bool = True) -> None:
        self.templates = templates  # False: plain SymPy construction (the reference)
        self.store = _current_store()
        self._info: dict[int, Info | None] = {}
        self._keep: list[Any] = []

    # -- shapes ------------------------------------------------------------------------------
    def info(self, e: Any) -> Info | None:
        """The shape of ``e`` (computed over its DAG once), or None if it has none."""
        key = id(e)
        if key in self._info:
            return self._info[key]
        stack = [e]
        while stack:
            node = stack[-1]
            if id(node) in self._info:
                stack.pop()
                continue
            todo = [a for a in node.args if id(a) not in self._info]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            self._remember(node, self._node_info(node))
        return self._info[key]

    def _remember(self, e: Any, info: Info | None) -> None:
        self._info[id(e)] = info
        self._keep.append(e)

    def _node_info(self, e: Any) -> Info | None:
        if not e.args:
            return self._leaf_info(e)
        merged = self._merge([self._info[id(a)] for a in e.args])
        if merged is None:
            return None
        key, syms = ("node", type(e), *merged[0]), merged[1]
        sid = self.store.ids.get(key)
        if sid is None:
            holders = self._holders(syms, merged[0][-1])
            targs = self._template_args([self._info[id(a)] for a in e.args], holders, merged)
            sid = self.store.add(key, _Entry(_raw(e, targs), None, holders, merged[0][-1]))
        return sid, syms

    def _leaf_info(self, e: Any) -> Info | None:
        if type(e) is sympy.Symbol:
            assumptions = e._hashable_content()[1:]
            key = ("symbol", assumptions)
            sid = self.store.ids.get(key)
            if sid is None:
                holder = _holder(0, assumptions)
                if holder is None:
                    return None
                sid = self.store.add(key, _Entry(holder, None, (holder,), (0,)))
            return sid, (e,)
        if e.free_symbols:
            return None
        key = ("const", type(e), e._hashable_content())
        sid = self.store.ids.get(key)
        if sid is None:
            sid = self.store.add(key, _Entry(e, None, (), ()))
        return sid, ()

    def _merge(self, infos: list[Info | None]):
        """Combined key parts and symbols of arguments, or None when too many/unshaped."""
        if len(infos) == 1:  # one argument: its symbols, in its order
            info = infos[0]
            if info is None:
                return None
            sid, own = info
            return (((sid, _IDENTITY[len(own)]),), self.store.entries[sid].ranks), own
        syms: list[Any] = []
        parts = []
        for info in infos:
            if info is None:
                return None
            sid, own = info
            remap = []
            for s in own:
                j = next((k for k, t in enumerate(syms) if t is s), None)
                if j is None:
                    if len(syms) == MAX_SYMBOLS:
                        return None
                    syms.append(s)
                    j = len(syms) - 1
                remap.append(j)
            parts.append((sid, tuple(remap)))
        ranks = _ranks(syms)
        return None if ranks is None else ((tuple(parts), ranks), tuple(syms))

    def _holders(self, syms: tuple, ranks: tuple) -> tuple:
        return tuple(_holder(r, s._hashable_content()[1:])
                     for r, s in zip(ranks, syms, strict=True))

    def _template_args(self, infos: list[Info], holders: tuple, merged) -> list[Any]:
        out = []
        for (sid, _), (_, remap) in zip(infos, merged[0][0], strict=True):
            entry = self.store.entries[sid]
            mapping = {h: holders[j] for h, j in zip(entry.holders, remap, strict=True)}
            out.append(substitute(entry.expr, mapping))
        return out

    # -- construction ------------------------------------------------------------------------
    def make(self, op: Hashable, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """``fn(*args)``, built from the template of its shape when there is one.

        ``fn`` must build canonically from its arguments alone (``sympy.Add``, ``sympy.sin``,
        a fixed derivative rule); ``op`` names it in the shape key.
        """
        if not self.templates:
            return fn(*args)
        infos = [self.info(a) for a in args]
        merged = self._merge(infos)
        if merged is None:
            return fn(*args)
        key, syms = (op, *merged[0]), merged[1]
        sid = self.store.ids.get(key)
        if sid is None:
            holders = self._holders(syms, merged[0][-1])
            targs = tuple(self._template_args(infos, holders, merged))
            sid = self.store.add(key, _Entry(fn(*targs), targs, holders, merged[0][-1]))
        entry = self.store.entries[sid]
        mapping = dict(zip(entry.args, args, strict=True))
        mapping.update(zip(entry.holders, syms, strict=True))
        result = substitute(entry.expr, mapping)
        if id(result) not in self._info:
            self._remember(result, (sid, syms))
        return result


def _ranks(syms: Sequence[Any]) -> tuple[int, ...] | None:
    """Rank of each symbol's name among the names (None if two names are equal)."""
    if len(syms) < 2:
        return (0,) * len(syms)
    names = [s.name for s in syms]
    order = sorted(range(len(syms)), key=names.__getitem__)
    ranks = [0] * len(syms)
    for r, j in enumerate(order):
        ranks[j] = r
    if any(names[a] == names[b] for a, b in zip(order, order[1:], strict=False)):
        return None
    return tuple(ranks)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building large SymPy DAGs.

    Building hundreds of thousands of (acyclic) SymPy objects triggers collections that
    traverse every live object again and again; reference counting still frees memory.

    >>> with paused_gc():
    ...     gc.isenabled()
    False
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _holder(rank: int, assumptions: tuple) -> Any:
    holder = sympy.Symbol(f"_{rank}", **dict(assumptions))
    return holder if holder._hashable_content()[1:] == assumptions else None


def fold_dag(root: Any, children: Callable[[Any], Sequence[Any]],
             combine: Callable[[Any, dict[Any, Any]], Any],
             memo: dict[Any, Any] | None = None) -> Any:
    """Bottom-up over a SymPy DAG without recursion: each node is visited once, after
    ``children(node)``, and ``memo[node] = combine(node, memo)``.

    >>> x = sympy.Symbol("x")
    >>> fold_dag(sympy.sin(x) + x, lambda n: n.args, lambda n, m: 1 + sum(m[a] for a in n.args))
    4
    """
    memo = {} if memo is None else memo
    stack = [root]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        todo = [a for a in children(node) if a not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[node] = combine(node, memo)
    return memo[root]


def substitute(e: Any, mapping: dict[Any, Any]) -> Any:
    """Replace subexpressions by ``mapping`` without evaluating (iterative, DAG-memoised).

    Only for substitutions that keep the expression canonical (renaming symbols
    order-preservingly, or a template by its instance).

    >>> x, y = sympy.symbols("x y")
    >>> substitute(sympy.sin(x) + x**2, {x: y})
    y**2 + sin(y)
    """
    hit = mapping.get(e)
    if hit is not None:
        return hit
    args = e.args
    if not args:
        return e
    new = []
    for a in args:  # fast path: the arguments themselves are replaced (or kept)
        hit = mapping.get(a)
        if hit is None:
            if a.args:
                break
            hit = a
        new.append(hit)
    else:
        return _raw(e, tuple(new))

    def rebuild(node: Any, done: dict[Any, Any]) -> Any:
        new = tuple(mapping[a] if a in mapping else done.get(a, a) for a in node.args)
        same = all(n is a for n, a in zip(new, node.args, strict=True))
        return node if same else _raw(node, new)

    return fold_dag(e, lambda n: [a for a in n.args if a.args and a not in mapping], rebuild)


_PLAIN: dict[type, bool] = {}


def _plain_function(cls: type) -> bool:
    """True for function classes built by SymPy's standard ``Function._new_``."""
    if cls not in _PLAIN:
        new_owner = next(k for k in cls.__mro__ if "__new__" in k.__dict__)
        raw_owner = next((k for k in cls.__mro__ if "_new_" in k.__dict__), None)
        _PLAIN[cls] = (issubclass(cls, Function) and raw_owner is Function
                       and new_owner in (Function, DefinedFunction))
    return _PLAIN[cls]


def _raw(node: Any, args: tuple) -> Any:
    """``node`` with new arguments, without evaluation (as ``evaluate=False`` builds it)."""
    cls = type(node)
    if cls is sympy.Add or cls is sympy.Mul:
        return cls._from_args(args, node.is_commutative)
    if cls is sympy.Pow:
        return sympy.Pow(*args, evaluate=False)
    if _plain_function(cls):
        obj = Basic.__new__(cls, *args)
        obj.nargs = node.nargs
        return obj
    if issubclass(cls, MinMaxBase):  # SymPy's evaluation of Max/Min compares every pair
        return cls(*args, evaluate=False)
    return cls(*args)  # evaluates; still canonical, only slower
