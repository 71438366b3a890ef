"""Reverse mode: an explicit tape walked backwards in a loop.

Each operation on a :class:`Var` appends one entry to its :class:`Tape`: the indices of
its traced arguments and, per argument, either the local partial (elementwise rows) or a
pullback (structural rows). :func:`backward` walks the tape from the output to the inputs
in a plain loop (no recursion, so depth is no problem) and keeps the adjoints in a local
list: nothing is left on the values between runs.

>>> import numpy as np
>>> tape = Tape()
>>> x, y = tape.var(2.0), tape.var(5.0)
>>> f = x * y + np.sin(x)
>>> bars = backward(f)
>>> bool(np.isclose(bars[x.index], 5 + np.cos(2.0))), float(bars[y.index])
(True, 2.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..tracing import Traced, next_level, top_level
from .forward import Dual, raise_outer_write
from .numpy_ops.core import shape_of, strip, unbroadcast
from .numpy_ops.inplace import conform

__all__ = ["Tape", "Var", "backward", "unbroadcast"]


class Tape:
    """The record of one reverse-mode pass."""

    __slots__ = ("level", "entries")

    def __init__(self) -> None:
        self.level = next_level()
        # entry: tuple of (parent index, kind, payload, parent shape); kind "p" or "vjp"
        self.entries: list[tuple] = []

    def var(self, value: Any) -> Var:
        """A new input (leaf) on this tape."""
        self.entries.append(())
        return Var(self, len(self.entries) - 1, value)

    def __len__(self) -> int:
        return len(self.entries)


class Var(Traced):
    """A value recorded on a tape."""

    __slots__ = ("tape", "index", "val")
    __array_priority__ = 1001

    def __init__(self, tape: Tape, index: int, val: Any):
        self.tape = tape
        self.index = index
        self.val = val

    @property
    def level(self) -> int:
        return self.tape.level

    @classmethod
    def apply(cls, prim: Any, args: tuple, params: dict, level: int) -> Var:
        mine = [isinstance(a, Var) and a.level == level for a in args]
        primal = [a.val if m else a for a, m in zip(args, mine, strict=True)]
        tape = next(a.tape for a, m in zip(args, mine, strict=True) if m)
        out = prim(*primal, **params)
        links = []
        for i, (a, m) in enumerate(zip(args, mine, strict=True)):
            if not m:
                continue
            if prim.structural:
                links.append((a.index, "vjp", _pullback(prim, primal, out, params, i),
                              shape_of(a.val)))
            else:
                links.append((a.index, "p", prim.partials[i](*primal, out), shape_of(a.val)))
        tape.entries.append(tuple(links))
        return Var(tape, len(tape.entries) - 1, out)

    # array-like surface and operators, shared with Dual
    shape = Dual.shape
    ndim = Dual.ndim
    size = Dual.size
    dtype = Dual.dtype
    __len__ = Dual.__len__
    __array_ufunc__ = Dual.__array_ufunc__
    __array_function__ = Dual.__array_function__
    __getitem__ = Dual.__getitem__
    __add__, __radd__, __sub__, __rsub__ = Dual.__add__, Dual.__radd__, Dual.__sub__, \
        Dual.__rsub__
    __mul__, __rmul__, __truediv__, __rtruediv__ = Dual.__mul__, Dual.__rmul__, \
        Dual.__truediv__, Dual.__rtruediv__
    __pow__, __rpow__, __matmul__, __rmatmul__ = Dual.__pow__, Dual.__rpow__, \
        Dual.__matmul__, Dual.__rmatmul__
    __neg__, __pos__, __abs__ = Dual.__neg__, Dual.__pos__, Dual.__abs__
    __mod__, __rmod__ = Dual.__mod__, Dual.__rmod__
    __lt__, __le__, __gt__, __ge__ = Dual.__lt__, Dual.__le__, Dual.__gt__, Dual.__ge__
    __eq__, __ne__, __hash__ = Dual.__eq__, Dual.__ne__, Dual.__hash__
    T = Dual.T
    __array__, astype, clip, sort = Dual.__array__, Dual.astype, Dual.clip, Dual.sort
    __setitem__, __getattr__ = Dual.__setitem__, Dual.__getattr__
    __array_namespace__ = Dual.__array_namespace__
    __iadd__, __isub__, __imul__, __itruediv__ = Dual.__iadd__, Dual.__isub__, \
        Dual.__imul__, Dual.__itruediv__
    __ipow__, __imatmul__ = Dual.__ipow__, Dual.__imatmul__
    sum, mean, var, std, max, min = Dual.sum, Dual.mean, Dual.var, Dual.std, Dual.max, Dual.min
    cumsum, dot, transpose, swapaxes = Dual.cumsum, Dual.dot, Dual.transpose, Dual.swapaxes
    squeeze, ravel, flatten = Dual.squeeze, Dual.ravel, Dual.flatten

    def reshape(self, *shape: Any) -> Any:
        return np.reshape(self, shape[0] if len(shape) == 1 else shape)

    def copy(self) -> Var:
        return Var(self.tape, self.index, self.val)

    def _rebind(self, new: Any) -> None:
        """Stand for ``new`` from now on (a write, ``out=``, an in-place operator)."""
        new = conform(new, self.shape, self.dtype)
        if isinstance(new, Var) and new.tape is self.tape:
            self.index, self.val = new.index, new.val
        elif top_level((new,))[0] < self.level:  # a constant for this pass: a new leaf
            self.tape.entries.append(())
            self.index, self.val = len(self.tape.entries) - 1, new
        else:
            raise_outer_write(self)

    def __float__(self):
        raise UnsupportedError(
            "float() of a reverse-mode value would drop its derivative; keep it an array "
            "or take .val explicitly if that is intended.")

    def __repr__(self) -> str:
        return f"Var(#{self.index}, {self.val!r})"


def _pullback(prim: Any, primal: list, out: Any, params: dict, i: int):
    if getattr(prim.vjp, "shapes_only", False):  # keep no values alive on the tape
        primal, out = [_placeholder(p) for p in primal], _placeholder(out)
    return lambda g: prim.vjp(primal, out, g, **params)[i]


def _placeholder(v: Any) -> Any:
    """An array of ``v``'s shape and dtype that holds no memory (big arrays only)."""
    if isinstance(v, np.ndarray) and type(v) is np.ndarray and v.size < REUSE_MIN:
        return v
    return np.broadcast_to(np.zeros((), dtype=np.result_type(strip(v))), shape_of(v))


def _magnitude(v: Any) -> Any:
    """|v|, keeping a Python float a Python float (so |-1.0| is the literal 1.0 again)."""
    return abs(v) if type(v) is float else np.abs(v)


#: arrays with fewer entries are not reused in place (the bookkeeping would cost more)
REUSE_MIN = 4096


def _owned(c: Any, fresh: bool) -> bool:
    """True if ``c`` is an array the walk may write into: new, and big enough to matter."""
    return fresh and type(c) is np.ndarray and c.size >= REUSE_MIN


def _deposit(bars: list, mine: list, parent: int, c: Any, fresh: bool) -> None:
    """Add the contribution ``c`` to ``bars[parent]``; ``fresh``: ``c`` is a new array no
    one else holds (the walk may write into it later)."""
    if bars[parent] is None:
        bars[parent] = c
        mine[parent] = _owned(c, fresh)
    else:
        _accumulate(bars, mine, parent, c)


def _accumulate(bars: list, mine: list, parent: int, c: Any) -> None:
    """``bars[parent] += c`` (a second contribution), in place when the walk owns it.

    ``mine[parent]`` says the array in ``bars[parent]`` was created by this walk and is
    referenced by no other slot (nor by the caller, the tape or a user's array): then
    ``np.add(..., out=...)`` gives the very numbers ``bars[parent] + c`` gives, without a
    new array. A slot is final once walked (its parents come earlier on the tape), so an
    array handed on as a parent's ``g`` is never written again.
    """
    acc = bars[parent]
    if mine[parent] and type(c) is np.ndarray and acc.shape == c.shape and \
            c.dtype == acc.dtype:
        np.add(acc, c, out=acc)
    else:
        bars[parent] = acc = acc + c
        mine[parent] = _owned(acc, True)


def _product(payload: Any, g: Any, spare: Any) -> Any:
    """``payload * g`` (a new array), written into ``spare`` (an array the walk owns and
    needs no more: ``g`` itself, or a fresh ``|payload|``) when it fits."""
    if spare is not None and type(g) is np.ndarray and g.shape == spare.shape and \
            g.dtype == spare.dtype and (
                type(payload) is float or type(payload) is np.ndarray and
                payload.dtype == spare.dtype and payload.shape in (spare.shape, ())):
        return np.multiply(payload, g, out=spare)
    return payload * g


def backward(out: Var, seed: Any = 1.0, *, absolute: bool = False,
             keep: Any = None, consume: bool = False, both: bool = False) -> Any:
    """Adjoints of every tape entry for the output ``out`` (None where it does not depend).

    With ``absolute=True`` partials and seed enter by magnitude: the result bounds the
    sum over paths of |products of partials|, the scale of rounding in the gradient.
    With ``both=True`` one walk carries the signed and the absolute-value adjoints side by
    side and returns the pair ``(bars, abs_bars)``: the same numbers as two walks (one
    with ``absolute=True``), each partial read once.
    With ``keep`` (a set of tape indices, e.g. the inputs') only those adjoints are
    returned; the others are freed as soon as they are used (less memory, faster), and
    an adjoint the walk owns is overwritten by its last product instead of allocating.
    With ``consume=True`` each tape entry is dropped once walked: a one-shot gradient
    frees its partials early (much faster for large arrays); the tape is spent after.
    """
    if both and absolute:
        raise ValueError("backward: pass either absolute=True or both=True")
    entries = out.tape.entries
    size = out.index + 1
    bars: list[Any] = [None] * size
    mine = [False] * size
    abars: list[Any] = [None] * size if both else bars
    amine = [False] * size if both else mine
    if both:
        bars[out.index], abars[out.index] = seed, np.abs(seed)
    else:
        bars[out.index] = np.abs(seed) if absolute else seed
    signed = not absolute
    for i in range(out.index, -1, -1):
        g = bars[i] if signed else None
        ag = abars[i] if both or absolute else None
        if g is None and ag is None:
            continue
        links = entries[i]
        # g may be overwritten by the last link when the walk owns it, does not return it,
        # and no earlier link of this entry passed it on unchanged
        free = keep is not None and i not in keep
        g_free = free and mine[i]
        ag_free = free and amine[i]
        last = len(links) - 1
        for j, (parent, kind, payload, shape) in enumerate(links):
            if kind == "p":
                if g is not None:
                    if type(payload) is float and payload == 1.0:
                        c, fresh = g, False
                        g_free = False
                    else:
                        c = _product(payload, g, g if g_free and j == last else None)
                        fresh = True
                    if shape_of(c) != shape:
                        c = unbroadcast(c, shape)
                    _deposit(bars, mine, parent, c, fresh)
                if ag is not None:
                    local = _magnitude(payload)
                    if type(local) is float and local == 1.0:
                        c, fresh = ag, False
                        ag_free = False
                    else:
                        spare = local if _owned(local, local is not payload) else \
                            ag if ag_free and j == last else None
                        c = _product(local, ag, spare)
                        fresh = True
                    if shape_of(c) != shape:
                        c = unbroadcast(c, shape)
                    _deposit(abars, amine, parent, c, fresh)
            else:
                if g is not None:
                    g_free = False
                    _deposit(bars, mine, parent, payload(g), False)
                if ag is not None:
                    ag_free = False
                    _deposit(abars, amine, parent, np.abs(payload(ag)), True)
        if free:
            bars[i] = abars[i] = None
        if consume:
            entries[i] = ()
    return (bars, abars) if both else bars
