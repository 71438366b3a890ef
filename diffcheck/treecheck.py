"""The NumPy checks' entry: pytrees of parameters, and functions written with JAX.

:func:`check` is what :func:`diffcheck.check_gradient` (and the Jacobian and Hessian twins)
call. A pytree ``x`` (``{"W1": ..., "b1": ...}``, a list of ``(W, b)`` tuples) is flattened
to one vector for the checks, and the report names entries by path (``params['W1'][3, 2]``,
the root being ``f``'s first parameter name). A ``f`` that returns a JAX array is checked
by :mod:`diffcheck.jaxcheck` (references in float64, independent of any rule inside f).
Nothing here imports JAX: a plain-NumPy user never loads it.

>>> import numpy as np
>>> def loss(params):
...     return np.sum(params["w"] ** 2) + params["b"] ** 3
>>> grad = lambda p: {"w": 2 * p["w"], "b": 3 * p["b"] ** 2 + (p["b"] > 0)}
>>> r = check("gradient", loss, grad, {"w": np.ones(2), "b": 1.5}, None)
>>> r.ok, r.worst_index
(False, "params['b']")
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .numpy_check import CheckResult, render
from .pytree import Flat, Layout, is_tree, root_name

Fn = Callable[[Any], Any]


def is_jax_function(f: Fn, x: Any) -> bool:
    """True when ``f(x)`` returns JAX arrays (only asked when JAX is already imported)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = f(x)
    except Exception:  # noqa: BLE001 - the check itself reports f's errors
        return False
    return any(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(y))


def check(kind: str, f: Fn, user: Fn, x: Any, check_fn: Callable | None, **opts: Any) -> Any:
    """Check ``user`` (a gradient, Jacobian or Hessian of ``f``) at ``x``, any of an array or
    a pytree, ``f`` plain NumPy or JAX; ``check_fn`` is the NumPy check of flat arrays."""
    if check_fn is None:
        from .numpy_check import _check as check_fn
    tree = is_tree(x)
    if is_jax_function(f, x):
        from .jaxmatrix import check_derivative

        return check_derivative(kind, f, user, x, tree=tree, root=root_name(f), **opts)
    if not tree:
        return check_fn(kind, f, user, x, **opts)
    flat, lay, x_flat = _layout(kind, f, x)
    shape = {"gradient": (lay.n,), "jacobian": lay.f_shape + (lay.n,),
             "hessian": (lay.n, lay.n)}
    res = check_fn(kind, lambda v: f(flat.unravel(v)),
                   lambda _v: lay.matrix(user(x)).reshape(shape[kind]), x_flat, **opts)
    return named(res, lay)


def _float(dtypes: tuple) -> np.dtype:
    kinds = {np.dtype(d) for d in dtypes}
    if len(kinds) == 1 and next(iter(kinds)).kind == "f":
        return next(iter(kinds))
    return np.dtype(np.float64)


def _entry(lay: Layout, idx: tuple[int, ...]) -> tuple[int, int]:
    """Row and column of a flat result's index (gradient (i,), jacobian (o.., i), (o, i))."""
    if lay.kind == "gradient":
        return 0, int(idx[0])
    if lay.kind == "hessian":
        return int(idx[0]), int(idx[1])
    o = int(np.ravel_multi_index(idx[:-1], lay.f_shape)) if lay.f_shape else 0
    return o, int(idx[-1])


def named(res: Any, lay: Layout) -> Any:
    """A flat check result in the pytree's terms: derivatives in x's layout, entries named
    by path (a :func:`tree_result`)."""
    if res.worst_index is not None:
        res.worst_index = lay.name(*_entry(lay, res.worst_index))
    for e in res.worst:
        e.index = lay.name(*_entry(lay, e.index))
    return tree_result(res, lay)


@dataclass
class TreeCheckResult(CheckResult):
    """A check whose x is a pytree: ``yours``, ``reference``, ``tolerance`` in x's layout
    (``jax.grad``'s, ``jax.jacrev``'s, ``jax.hessian``'s), entries named by path; it renders
    as the flat check does, with x's structure in the header."""

    layout: str = ""
    flat: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        text = render(self.flat).replace(f"shape {np.shape(self.flat.yours)}", self.layout, 1)
        width = max([16] + [len(str(e.index)) + 2 for e in self.flat.worst])
        text = text.replace("    " + "index".ljust(16), "    " + "index".ljust(width), 1)
        for e in self.flat.worst:
            name = str(e.index)
            text = text.replace("\n    " + name.ljust(16), "\n    " + name.ljust(width), 1)
        return text


def tree_result(flat: Any, lay: Layout) -> TreeCheckResult:
    """The check result ``flat`` (derivatives as flat arrays, entries already named by path)
    with its derivatives in x's pytree layout."""
    values = {f.name: getattr(flat, f.name) for f in fields(flat)}
    for attr in ("yours", "reference", "tolerance"):
        values[attr] = lay.layout(np.asarray(getattr(flat, attr)))
    return TreeCheckResult(**values, layout=lay.describe(), flat=flat)


def _layout(kind: str, f: Fn, x: Any) -> tuple[Flat, Layout, np.ndarray]:
    flat = Flat.of(x)
    f_shape = tuple(np.shape(f(x))) if kind == "jacobian" else ()
    lay = Layout(kind, flat, f_shape=f_shape, root=root_name(f))
    return flat, lay, flat.ravel(x, name="x", expected="itself", dtype=_float(flat.dtypes))


def on_tree(kind: str, compute: Callable, f: Fn, x: Any, **opts: Any) -> Any:
    """``dc.gradient`` / ``jacobian`` / ``hessian`` at a pytree ``x``, in its layout
    (``jax.grad``'s, ``jax.jacrev``'s, ``jax.hessian``'s).

    >>> from diffcheck.numpy_check import gradient
    >>> g = on_tree("gradient", gradient, lambda p: np.sum(p["w"] ** 2) * p["s"],
    ...             {"w": np.array([1.0, 2.0]), "s": 3.0})
    >>> g["w"].tolist(), float(g["s"])
    ([6.0, 12.0], 5.0)
    """
    flat, lay, x_flat = _layout(kind, f, x)
    return lay.layout(compute(lambda v: f(flat.unravel(v)), x_flat, **opts))


def on_tree_taylor(taylor: Callable, f: Fn, grad: Fn, x: Any, hess: Fn | None, **opts: Any
                   ) -> Any:
    """``dc.taylor_test`` at a pytree ``x``: ``grad(x)`` and ``hess(x)`` in its layouts."""
    flat, lay, x_flat = _layout("gradient", f, x)
    hlay = Layout("hessian", flat, root=lay.root)
    h = None if hess is None else (lambda _v: hlay.matrix(hess(x)))
    return taylor(lambda v: f(flat.unravel(v)), lambda _v: lay.matrix(grad(x)).ravel(),
                  x_flat, h, **opts)
