"""Forward mode: dual numbers in vector mode.

A :class:`Dual` carries a value and ``k`` tangents at once (``tan`` has a leading axis of
length ``k``), so one pass through a function gives ``k`` directional derivatives: with the
``n`` unit vectors as tangents, the whole gradient or Jacobian. Duals answer the rule table
through :func:`diffcheck.tracing.dispatch` and NumPy's ``__array_ufunc__``, so the same dual
runs through a parsed Program and through plain NumPy code. Duals of duals (tagged by level)
give Hessians, forward over forward.

>>> import numpy as np
>>> x = Dual(np.float64(3.0), np.array([1.0]), next_level())
>>> y = x * x + np.sin(x)
>>> bool(np.isclose(y.tan[0], 6 + np.cos(3.0)))
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..tracing import Traced, dispatch, next_level, top_level
from .numpy_ops import align, array_function, astype, getitem, shape_of, ufunc_method
from .numpy_ops.inplace import array_of_traced, conform, write

__all__ = ["Dual", "align", "broadcast_to", "next_level", "shape_of", "tangent_of",
           "unit_duals", "value_of"]


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """``np.broadcast_to`` that also accepts duals (used for nested tangents)."""
    if shape_of(x) == shape:
        return x
    if isinstance(x, Dual):
        k = shape_of(x.tan)[0]
        return Dual(broadcast_to(x.val, shape), broadcast_to(x.tan, (k, *shape)), x.level)
    return np.broadcast_to(x, shape)


class Dual(Traced):
    """A value with ``k`` tangents: ``tan.shape == (k,) + val.shape``."""

    __slots__ = ("val", "tan", "level")
    __array_priority__ = 1000

    def __init__(self, val: Any, tan: Any, level: int):
        self.val = val
        self.tan = tan
        self.level = level

    # -- the one place a rule-table row is applied to duals ---------------------------------
    @classmethod
    def apply(cls, prim: Any, args: tuple, params: dict, level: int) -> Dual:
        primal = [a.val if isinstance(a, Dual) and a.level == level else a for a in args]
        out = prim(*primal, **params)
        mine = [isinstance(a, Dual) and a.level == level for a in args]
        if prim.structural:
            tangents = [a.tan if m else None for a, m in zip(args, mine, strict=True)]
            return Dual(out, prim.jvp(primal, tangents, out, **params), level)
        out_shape = shape_of(out)
        tan = None
        for i, (a, m) in enumerate(zip(args, mine, strict=True)):
            if m:
                term = prim.partials[i](*primal, out) * align(a.tan, shape_of(a.val),
                                                             len(out_shape))
                tan = term if tan is None else tan + term
        k = shape_of(tan)[0] if shape_of(tan) else 1
        return Dual(out, broadcast_to(tan, (k, *out_shape)), level)

    # -- array-like surface ----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return shape_of(self.val)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> Any:
        return getattr(self.val, "dtype", np.dtype(float))

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, *shape: Any) -> Dual:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        val = np.reshape(self.val, shape) if not isinstance(self.val, Dual) else \
            self.val.reshape(shape)
        k = shape_of(self.tan)[0]
        return Dual(val, self.tan.reshape((k, *shape_of(val))), self.level)

    def __repr__(self) -> str:
        return f"Dual({self.val!r}, tan={self.tan!r})"

    # -- NumPy protocols ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return ufunc_method(dispatch, ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return array_function(func, args, kwargs, types)

    def __getitem__(self, index: Any) -> Any:
        return getitem(self, index)

    # -- writes: the object is rebound to the written value, so every name bound to it sees
    # the write (as with a NumPy array); views made by indexing do not write through
    def __setitem__(self, index: Any, value: Any) -> None:
        self._rebind(write(self, index, value))

    def _rebind(self, new: Any) -> None:
        """Stand for ``new`` from now on (a write, ``out=``, an in-place operator)."""
        new = conform(new, self.shape, self.dtype)
        if isinstance(new, Dual) and new.level == self.level:
            self.val, self.tan = new.val, new.tan
        elif top_level((new,))[0] < self.level:  # a constant for this pass
            k = shape_of(self.tan)[0]
            self.val = new
            self.tan = np.zeros((k, *shape_of(new)), dtype=np.result_type(self.tan))
        else:
            raise_outer_write(self)

    def __iadd__(self, o):
        self._rebind(np.add(self, o))
        return self

    def __isub__(self, o):
        self._rebind(np.subtract(self, o))
        return self

    def __imul__(self, o):
        self._rebind(np.multiply(self, o))
        return self

    def __itruediv__(self, o):
        self._rebind(np.divide(self, o))
        return self

    def __ipow__(self, o):
        self._rebind(np.power(self, o))
        return self

    def __imatmul__(self, o):
        self._rebind(np.matmul(self, o))
        return self

    def __getattr__(self, name: str) -> Any:
        """ndarray methods without a method of their own here, through NumPy's functions
        (``x.prod()`` is ``np.prod(x)``), and ``.real``/``.imag``."""
        fn = _METHODS.get(name)
        if fn is not None:
            return functools.partial(fn, self)
        if name in _PROPERTIES:
            return _PROPERTIES[name](self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- operators route through NumPy's ufuncs, hence through the rule table ---------------
    def __add__(self, o):
        return np.add(self, o)

    def __radd__(self, o):
        return np.add(o, self)

    def __sub__(self, o):
        return np.subtract(self, o)

    def __rsub__(self, o):
        return np.subtract(o, self)

    def __mul__(self, o):
        return np.multiply(self, o)

    def __rmul__(self, o):
        return np.multiply(o, self)

    def __truediv__(self, o):
        return np.divide(self, o)

    def __rtruediv__(self, o):
        return np.divide(o, self)

    def __pow__(self, o):
        return np.power(self, o)

    def __rpow__(self, o):
        return np.power(o, self)

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __matmul__(self, o):
        return np.matmul(self, o)

    def __rmatmul__(self, o):
        return np.matmul(o, self)

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return np.abs(self)

    def __lt__(self, o):
        return np.less(self, o)

    def __le__(self, o):
        return np.less_equal(self, o)

    def __gt__(self, o):
        return np.greater(self, o)

    def __ge__(self, o):
        return np.greater_equal(self, o)

    def __eq__(self, o):  # elementwise, as for arrays (the hash stays the identity's)
        return np.equal(self, o)

    def __ne__(self, o):
        return np.not_equal(self, o)

    __hash__ = object.__hash__

    def __float__(self):
        raise UnsupportedError(
            "float() of a dual number would drop its derivative; keep the value an array "
            "(use np.asarray or arithmetic) or take .val explicitly if that is intended.")

    @property
    def T(self) -> Any:  # noqa: N802
        return np.transpose(self)

    # -- ndarray methods that plain NumPy code calls (see engines.numpy_ops) ----------------
    def __array_namespace__(self, api_version: Any = None) -> Any:
        """NumPy answers for traced values (array-API code, such as SciPy's, asks)."""
        return np

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        # the values of an argument of an ndarray method (X.dot(w)), or an error
        return array_of_traced(self, dtype, copy)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return np.sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return np.mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return np.var(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return np.std(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return np.max(self, axis=axis, out=out, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return np.min(self, axis=axis, out=out, keepdims=keepdims)

    def cumsum(self, axis=None):
        return np.cumsum(self, axis=axis)

    def dot(self, other):
        return np.dot(self, other)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
        return np.transpose(self, axes or None)

    def swapaxes(self, axis1, axis2):
        return np.swapaxes(self, axis1, axis2)

    def squeeze(self, axis=None):
        return np.squeeze(self, axis=axis)

    def ravel(self, order="C"):
        return np.ravel(self, order=order)

    def flatten(self, order="C"):
        return np.ravel(self, order=order)

    def clip(self, min=None, max=None):  # noqa: A002
        return np.clip(self, min, max)

    def copy(self):
        return Dual(self.val, self.tan, self.level)

    def sort(self, axis=-1, kind=None, order=None):
        self._rebind(np.sort(self, axis=axis, kind=kind, order=order))

    def astype(self, dtype, *args, **kwargs):
        return astype(self, dtype)


#: ndarray methods answered by the NumPy function of the same name
_METHODS = {name: getattr(np, name) for name in (
    "prod", "cumprod", "repeat", "take", "trace", "diagonal", "round", "conj", "conjugate",
    "argmax", "argmin", "argsort", "nonzero", "any", "all", "ptp") if hasattr(np, name)}
_PROPERTIES = {"real": np.real, "imag": np.imag}


def raise_outer_write(target: Any) -> None:
    raise UnsupportedError(
        f"a value of an outer derivative pass was written into a {type(target).__name__} of an "
        "inner one; write into arrays created at the same nesting level")


def unit_duals(x: np.ndarray, level: int | None = None) -> list[Dual]:
    """One dual per entry of the 1-D array ``x``, seeded with the unit vectors."""
    level = next_level() if level is None else level
    eye = np.eye(len(x))
    return [Dual(x[i], eye[i], level) for i in range(len(x))]


def tangent_of(y: Any, level: int, k: int) -> Any:
    """The tangents of an output (zeros if it does not depend on the inputs)."""
    if isinstance(y, Dual) and y.level == level:
        return y.tan
    return np.zeros((k, *np.shape(value_of(y, level))))


def value_of(y: Any, level: int) -> Any:
    return y.val if isinstance(y, Dual) and y.level == level else y
