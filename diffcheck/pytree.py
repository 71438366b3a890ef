"""Pytrees (nested dict / list / tuple / namedtuple of arrays) as one flat vector.

Model parameters are kept as ``{"W1": ..., "b1": ...}`` or a list of ``(W, b)`` tuples; the
checks work on one flat vector and name each entry by its path, ``params['W1'][3, 2]``.
The order of leaves and the path strings are JAX's (``jax.tree_util``: dict keys sorted,
``['key']``, ``[i]``, ``.field``). When JAX is already imported its tree utilities are used
(so registered custom nodes work too); otherwise a small flattener of dict, list, tuple,
namedtuple and None does the same, and JAX is never imported for a plain-NumPy user.

>>> import numpy as np
>>> params = {"b": np.zeros(2), "W": np.ones((2, 3))}
>>> flat = Flat.of(params)
>>> flat.paths, flat.size
(("['W']", "['b']"), 8)
>>> flat.name(7, "params")
"params['b'][1]"
>>> flat.unravel(np.arange(8.0))["b"].tolist()
[6.0, 7.0]
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ShapeError, UsageError


def _jax_tree_util() -> Any:
    """``jax.tree_util`` when JAX is already imported; never imports it."""
    jax = sys.modules.get("jax")
    return getattr(jax, "tree_util", None) if jax is not None else None


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _array_like(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def is_tree(x: Any) -> bool:
    """True when ``x`` is a container of arrays rather than one array.

    A dict, a namedtuple, or a list/tuple that is not one rectangular array of numbers
    (ragged shapes, or dicts inside) is a tree; ``[1.0, 2.0]`` and a list of equal-shaped
    arrays stay arrays. With JAX imported, a registered pytree node is a tree too.

    >>> is_tree([1.0, 2.0]), is_tree([np.zeros((2, 2)), np.zeros(2)]), is_tree({"a": 1.0})
    (False, True, True)
    """
    if isinstance(x, Mapping) or _is_namedtuple(x):
        return True
    if isinstance(x, list | tuple):
        if not x:
            return False
        try:
            return np.asarray(x).dtype == object
        except (ValueError, TypeError):
            return True
    tu = _jax_tree_util()
    if tu is None or _array_like(x) or isinstance(x, int | float | complex):
        return False
    leaves = tu.tree_leaves(x)
    return not (len(leaves) == 1 and leaves[0] is x)


# -- JAX-free flattening ---------------------------------------------------------------------

def _dict_keys(node: Mapping) -> list:
    if type(node) is OrderedDict:  # JAX keeps an OrderedDict's order, sorts other dicts
        return list(node)
    try:
        return sorted(node)
    except TypeError:
        return list(node)


def _flatten(node: Any, path: str, paths: list[str], leaves: list) -> Callable[[Any], Any]:
    """Append ``node``'s leaves and paths; return a function rebuilding it from an iterator."""
    if node is None:
        return lambda it: None
    if isinstance(node, Mapping):
        keys = _dict_keys(node)
        subs = [_flatten(node[k], f"{path}[{k!r}]", paths, leaves) for k in keys]
        kind = type(node) if type(node) in (dict, OrderedDict) else dict
        return lambda it: kind((k, s(it)) for k, s in zip(keys, subs, strict=True))
    if _is_namedtuple(node):
        subs = [_flatten(v, f"{path}.{name}", paths, leaves)
                for name, v in zip(node._fields, node, strict=True)]
        cls = type(node)
        return lambda it: cls(*(s(it) for s in subs))
    if isinstance(node, list | tuple):
        subs = [_flatten(v, f"{path}[{i}]", paths, leaves) for i, v in enumerate(node)]
        cls = type(node)
        return lambda it: cls(s(it) for s in subs)
    paths.append(path)
    leaves.append(node)
    return lambda it: next(it)


def flatten(tree: Any) -> tuple[list[str], list, Callable[[list], Any]]:
    """``(paths, leaves, rebuild)``: JAX's order and key strings; ``rebuild(leaves)``.

    >>> paths, leaves, rebuild = flatten([(1.0, 2.0), {"b": 3.0, "a": None}])
    >>> paths, rebuild([10, 20, 30])
    (['[0][0]', '[0][1]', "[1]['b']"], [(10, 20), {'a': None, 'b': 30}])
    """
    tu = _jax_tree_util()
    if tu is not None:
        pairs, treedef = tu.tree_flatten_with_path(tree)
        return ([tu.keystr(p) for p, _ in pairs], [leaf for _, leaf in pairs],
                lambda leaves: tu.tree_unflatten(treedef, list(leaves)))
    paths: list[str] = []
    leaves: list = []
    build = _flatten(tree, "", paths, leaves)
    return paths, leaves, lambda new: build(iter(list(new)))


# -- a flattened pytree ----------------------------------------------------------------------

def index_text(idx: tuple[int, ...]) -> str:
    """``(3, 2)`` -> ``'[3, 2]'``; ``()`` -> ``''``."""
    return f"[{', '.join(str(int(i)) for i in idx)}]" if len(idx) else ""


@dataclass(frozen=True)
class Flat:
    """A pytree's structure: leaf paths, shapes and dtypes, and how to rebuild it.

    ``ravel`` turns a tree of this structure (a gradient, or a Jacobian leaf-stack with
    ``lead`` leading axes) into one array; ``unravel`` turns a flat vector (NumPy, JAX, or
    diffcheck's traced values) back into the tree.
    """

    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    rebuild: Callable[[list], Any]

    @classmethod
    def of(cls, tree: Any) -> Flat:
        paths, leaves, rebuild = flatten(tree)
        if not leaves:
            raise UsageError("x is an empty pytree: it has no arrays to differentiate")
        shapes, dtypes = [], []
        for p, leaf in zip(paths, leaves, strict=True):
            arr = leaf if _array_like(leaf) else np.asarray(leaf)
            if np.dtype(arr.dtype).kind not in "biuf" and "float" not in np.dtype(arr.dtype).name:
                raise UsageError(f"x{p} must be an array of real numbers, got dtype {arr.dtype}")
            shapes.append(tuple(int(s) for s in arr.shape))
            dtypes.append(np.dtype(arr.dtype))
        return cls(tuple(paths), tuple(shapes), tuple(dtypes), rebuild)

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    @property
    def size(self) -> int:
        return int(sum(self.sizes))

    def describe(self) -> str:
        """``"{'W': (2, 3), 'b': (2,)}, 8 entries"``-like summary of the structure."""
        parts = [f"{p or 'x'}: {s}" for p, s in zip(self.paths, self.shapes, strict=True)]
        head = ", ".join(parts[:6]) + (f", ... ({len(parts)} leaves)" if len(parts) > 6 else "")
        return f"pytree {{{head}}}, {self.size} entries"

    def leaves(self, tree: Any, name: str, expected: str) -> list:
        """The leaves of ``tree``, which must have this structure (list and tuple alike)."""
        paths, leaves, _ = flatten(tree)
        if list(paths) != list(self.paths):
            missing = [p for p in self.paths if p not in paths][:3]
            extra = [p for p in paths if p not in self.paths][:3]
            raise ShapeError(f"{name} returned a pytree of {len(paths)} arrays; expected "
                             f"{expected} ({len(self.paths)} arrays). "
                             + (f"Missing: {', '.join(missing)}. " if missing else "")
                             + (f"Unexpected: {', '.join(extra)}." if extra else ""))
        return leaves

    def ravel(self, tree: Any, *, lead: tuple[int, ...] = (), name: str = "grad",
              expected: str = "x's structure", dtype: Any = None) -> np.ndarray:
        """One array of shape ``lead + (size,)`` from a tree whose leaves are ``lead + shape``."""
        parts = []
        for p, leaf, shape in zip(self.paths, self.leaves(tree, name, expected), self.shapes,
                                  strict=True):
            arr = np.asarray(leaf)
            if arr.shape != lead + shape:
                raise ShapeError(f"{name}(x){p} has shape {arr.shape}; expected "
                                 f"{lead + shape} ({expected})")
            parts.append(arr.reshape(lead + (-1,)))
        out = np.concatenate(parts, axis=-1)
        return out if dtype is None else out.astype(dtype)

    def unravel(self, v: Any, lead: tuple[int, ...] = ()) -> Any:
        """The tree whose leaves are slices of ``v`` (shape ``lead + (size,)``) reshaped."""
        off = self.offsets
        leaves = []
        for i, shape in enumerate(self.shapes):
            part = v[(slice(None),) * len(lead) + (slice(int(off[i]), int(off[i + 1])),)]
            leaves.append(part.reshape(lead + shape))
        return self.rebuild(leaves)

    def ravel_hessian(self, tree: Any, name: str = "hess") -> np.ndarray:
        """The ``(size, size)`` matrix of a tree in ``jax.hessian``'s layout (x's structure
        of x's structure, leaf ``(i, j)`` shaped ``shape_i + shape_j``)."""
        paths, leaves, _ = flatten(tree)
        expected = [a + b for a in self.paths for b in self.paths]
        if list(paths) != expected:
            example = expected[min(1, len(expected) - 1)]
            raise ShapeError(f"{name}(x) returned a pytree of {len(paths)} arrays; expected "
                             f"jax.hessian's layout, x's structure of x's structure "
                             f"({len(expected)} arrays, e.g. {example})")
        rows, L = [], len(self.paths)
        for i, (si, shi) in enumerate(zip(self.sizes, self.shapes, strict=True)):
            row = []
            for j, (sj, shj) in enumerate(zip(self.sizes, self.shapes, strict=True)):
                arr = np.asarray(leaves[i * L + j])
                if arr.shape != shi + shj:
                    raise ShapeError(f"{name}(x){paths[i * L + j]} has shape {arr.shape}; "
                                     f"expected {shi + shj} (jax.hessian's layout)")
                row.append(arr.reshape(si, sj))
            rows.append(np.concatenate(row, axis=1))
        return np.concatenate(rows, axis=0)

    def unravel_hessian(self, M: np.ndarray) -> Any:
        """The tree in ``jax.hessian``'s layout from a ``(size, size)`` matrix."""
        off = self.offsets
        outer = []
        for i, shi in enumerate(self.shapes):
            inner = [np.asarray(M[off[i]:off[i + 1], off[j]:off[j + 1]]).reshape(shi + shj)
                     for j, shj in enumerate(self.shapes)]
            outer.append(self.rebuild(inner))
        return self.rebuild(outer)

    def locate(self, i: int) -> tuple[int, tuple[int, ...]]:
        """Leaf number and index inside the leaf of flat entry ``i``."""
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        local = int(i) - int(self.offsets[k])
        return k, tuple(int(j) for j in np.unravel_index(local, self.shapes[k]))

    def name(self, i: int, root: str = "x") -> str:
        """``root`` + path + index of flat entry ``i``: ``params['W1'][3, 2]``."""
        k, idx = self.locate(i)
        return f"{root}{self.paths[k]}{index_text(idx)}"

    def span(self, lo: int, hi: int, root: str = "x") -> str:
        """A name for the flat entries ``lo..hi-1`` (one leaf, part of one, or several)."""
        if hi - lo == 1:
            return self.name(lo, root)
        k0, _ = self.locate(lo)
        k1, _ = self.locate(hi - 1)
        if k0 == k1:
            whole = lo == self.offsets[k0] and hi == self.offsets[k0 + 1]
            return f"{root}{self.paths[k0]}" + ("" if whole else
                                                f" (flat entries {lo - self.offsets[k0]}.."
                                                f"{hi - 1 - self.offsets[k0]})")
        return f"{root}{self.paths[k0]} .. {root}{self.paths[k1]}"


def root_name(f: Any, default: str = "x") -> str:
    """The name of ``f``'s first parameter (``params`` for ``def loss(params)``), if any."""
    import inspect

    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return default
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        return params[0].name
    return default


KINDS = {"gradient": ("grad", "x's structure"),
         "jacobian": ("jac", "jax.jacrev's layout: x's structure, each leaf f(x).shape + "
                             "leaf.shape"),
         "hessian": ("hess", "jax.hessian's layout: x's structure of x's structure")}


SHAPES = {"gradient": "x's shape", "jacobian": "f(x).shape + x.shape",
          "hessian": "x.shape + x.shape"}


class Layout:
    """Where each entry of a derivative of ``kind`` lives, for ``x`` an array or a pytree.

    The checks work on a matrix ``(m, n)`` (rows: outputs of f, or of its gradient for a
    Hessian; columns: the flat entries of x); ``matrix`` reads a user's derivative into it
    (checking its shape or structure), ``layout`` turns a matrix back into the user's layout
    and ``name`` names an entry: ``(0,)``-style index tuples for arrays, paths for pytrees.

    >>> lay = Layout("gradient", Flat.of({"w": np.zeros(2), "b": 0.0}), f_shape=(), root="p")
    >>> lay.matrix({"w": np.array([1.0, 2.0]), "b": 3.0}).tolist(), lay.name(0, 1)
    ([[3.0, 1.0, 2.0]], "p['w'][0]")
    """

    def __init__(self, kind: str, flat: Flat | None, *, x_shape: tuple[int, ...] = (),
                 f_shape: tuple[int, ...] = (), root: str = "x"):
        self.kind, self.flat, self.root = kind, flat, root
        self.x_shape, self.f_shape = tuple(x_shape), tuple(f_shape)
        self.n = flat.size if flat is not None else math.prod(self.x_shape)
        self.m = {"gradient": 1, "jacobian": math.prod(self.f_shape), "hessian": self.n}[kind]

    @property
    def shape(self) -> tuple[int, ...]:
        """The user's array shape (arrays only)."""
        return {"gradient": self.x_shape, "jacobian": self.f_shape + self.x_shape,
                "hessian": self.x_shape + self.x_shape}[self.kind]

    def matrix(self, value: Any) -> np.ndarray:
        name, expected = KINDS[self.kind]
        if self.flat is None:
            arr = np.asarray(value)
            if arr.shape != self.shape:
                raise ShapeError(f"{name}(x) has shape {arr.shape}; expected {self.shape} "
                                 f"({SHAPES[self.kind]})")
            return arr.reshape(self.m, self.n)
        if self.kind == "hessian":
            return self.flat.ravel_hessian(value, name)
        lead = self.f_shape if self.kind == "jacobian" else ()
        return self.flat.ravel(value, lead=lead, name=name, expected=expected).reshape(
            self.m, self.n)

    def layout(self, M: np.ndarray) -> Any:
        M = np.asarray(M).reshape(self.m, self.n)
        if self.flat is None:
            return M.reshape(self.shape)
        if self.kind == "hessian":
            return self.flat.unravel_hessian(M)
        lead = self.f_shape if self.kind == "jacobian" else ()
        return self.flat.unravel(M.reshape(lead + (self.n,)), lead)

    def name(self, o: int, i: int) -> tuple[int, ...] | str:
        """The entry at row ``o``, column ``i``: an index tuple (arrays) or a path."""
        if self.flat is None:
            rows = () if self.kind == "gradient" else np.unravel_index(
                o, self.f_shape if self.kind == "jacobian" else self.x_shape)
            return tuple(int(j) for j in rows) + tuple(
                int(j) for j in np.unravel_index(i, self.x_shape))
        col = self.flat.name(i, self.root)
        if self.kind == "gradient":
            return col
        if self.kind == "hessian":
            return f"{self.flat.name(o, self.root)}, {col}"
        out = index_text(tuple(int(j) for j in np.unravel_index(o, self.f_shape)))
        return f"f{out} wrt {col}"

    def describe(self) -> str:
        if self.flat is None:
            return f"shape {self.shape}"
        return self.flat.describe()
