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
from ..tracing import Traced, next_level
from .forward import Dual, shape_of


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
    __lt__, __le__, __gt__, __ge__ = Dual.__lt__, Dual.__le__, Dual.__gt__, Dual.__ge__
    T = Dual.T
    __array__, astype, copy, clip = Dual.__array__, Dual.astype, Dual.copy, Dual.clip
    sum, mean, var, std, max, min = Dual.sum, Dual.mean, Dual.var, Dual.std, Dual.max, Dual.min
    cumsum, dot, transpose, swapaxes = Dual.cumsum, Dual.dot, Dual.transpose, Dual.swapaxes
    squeeze, ravel, flatten = Dual.squeeze, Dual.ravel, Dual.flatten

    def reshape(self, *shape: Any) -> Any:
        return np.reshape(self, shape[0] if len(shape) == 1 else shape)

    def __float__(self):
        raise UnsupportedError(
            "float() of a reverse-mode value would drop its derivative; keep it an array "
            "or take .val explicitly if that is intended.")

    def __repr__(self) -> str:
        return f"Var(#{self.index}, {self.val!r})"


def _pullback(prim: Any, primal: list, out: Any, params: dict, i: int):
    return lambda g: prim.vjp(primal, out, g, **params)[i]


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape`` (undo NumPy broadcasting)."""
    gshape = shape_of(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    g = np.sum(g, axis=axes) if axes else g
    return np.reshape(g, shape) if shape_of(g) != shape else g


def _is_one(v: Any) -> bool:
    """True for the literal partial 1.0 (add, sub): the product with it can be skipped."""
    return type(v) is float and v == 1.0


def backward(out: Var, seed: Any = 1.0, *, absolute: bool = False,
             keep: Any = None, consume: bool = False) -> list:
    """Adjoints of every tape entry for the output ``out`` (None where it does not depend).

    With ``absolute=True`` partials and seed enter by magnitude: the result bounds the
    sum over paths of |products of partials|, the scale of rounding in the gradient.
    With ``keep`` (a set of tape indices, e.g. the inputs') only those adjoints are
    returned; the others are freed as soon as they are used (less memory, faster).
    With ``consume=True`` each tape entry is dropped once walked: a one-shot gradient
    frees its partials early (much faster for large arrays); the tape is spent after.
    """
    entries = out.tape.entries
    bars: list[Any] = [None] * (out.index + 1)
    bars[out.index] = np.abs(seed) if absolute else seed
    for i in range(out.index, -1, -1):
        g = bars[i]
        if g is None:
            continue
        for parent, kind, payload, shape in entries[i]:
            if kind == "p":
                local = np.abs(payload) if absolute else payload
                c = unbroadcast(g if _is_one(local) else local * g, shape)
            else:
                c = payload(g)
                c = np.abs(c) if absolute else c
            bars[parent] = c if bars[parent] is None else bars[parent] + c
        if keep is not None and i not in keep:
            bars[i] = None
        if consume:
            entries[i] = ()
    return bars
