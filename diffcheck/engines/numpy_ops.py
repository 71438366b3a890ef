"""How traced values (duals, tape variables) answer NumPy's dispatch protocols.

``__array_ufunc__`` maps a ufunc to its rule-table row; ufuncs that have no derivative
(comparisons, ``isfinite``, ``floor``) run on the plain values. ``__array_function__``
looks the function up in :data:`ARRAY_FUNCTIONS`. Anything else raises an error that
names the NumPy function.

>>> import numpy as np
>>> from diffcheck.engines.forward import Dual
>>> from diffcheck.tracing import next_level
>>> x = Dual(np.float64(2.0), np.array([1.0]), next_level())
>>> bool(np.greater(x, 1.0))
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..primitives import UFUNC_ROWS
from ..tracing import Traced

#: ufuncs whose result does not depend differentiably on the inputs
NONDIFF_UFUNCS = {
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.signbit, np.floor, np.ceil, np.trunc, np.rint,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
}

#: NumPy function -> implementation on traced values (filled by the structural rows)
ARRAY_FUNCTIONS: dict[Callable, Callable] = {}


def strip(x: Any) -> Any:
    """The plain value under every level of tracing."""
    while isinstance(x, Traced):
        x = x.val
    return x


def ufunc_method(dispatch: Callable, ufunc: Any, method: str, inputs: tuple,
                 kwargs: dict) -> Any:
    """Answer ``__array_ufunc__`` for a traced value."""
    if kwargs.get("out") is not None:
        raise UnsupportedError(
            f"np.{ufunc.__name__}(..., out=...) writes into an array in place, which cannot "
            "carry derivatives; assign the result instead (y = np.{ufunc.__name__}(...)).")
    if ufunc in NONDIFF_UFUNCS and method == "__call__":
        return getattr(ufunc, method)(*[strip(a) for a in inputs], **kwargs)
    if method == "__call__" and ufunc in UFUNC_ROWS and not kwargs:
        return dispatch(UFUNC_ROWS[ufunc], inputs, {})
    handler = ARRAY_FUNCTIONS.get((ufunc, method))
    if handler is not None:
        return handler(*inputs, **kwargs)
    raise UnsupportedError(
        f"diffcheck cannot differentiate np.{ufunc.__name__}"
        f"{'' if method == '__call__' else '.' + method}"
        f"{'' if not kwargs else ' with ' + ', '.join(kwargs)}; "
        "rewrite that step with supported NumPy operations (see diffcheck.supported_numpy()).")


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Answer ``__array_function__`` for a traced value."""
    handler = ARRAY_FUNCTIONS.get(func)
    if handler is None:
        name = getattr(func, "__name__", repr(func))
        raise UnsupportedError(
            f"diffcheck cannot differentiate np.{name} yet; rewrite that step with "
            "supported NumPy operations (see diffcheck.supported_numpy()).")
    return handler(*args, **kwargs)


def getitem(x: Any, index: Any) -> Any:
    """Indexing of a traced value."""
    handler = ARRAY_FUNCTIONS.get("getitem")
    if handler is None:
        raise UnsupportedError("indexing a traced value is not supported yet")
    return handler(x, index)


def supported_numpy() -> list[str]:
    """Names of the NumPy functions and ufuncs that traced values support.

    >>> "sin" in supported_numpy()
    True
    """
    names = {u.__name__ for u in UFUNC_ROWS} | {u.__name__ for u in NONDIFF_UFUNCS}
    for key in ARRAY_FUNCTIONS:
        if isinstance(key, tuple):
            names.add(f"{key[0].__name__}.{key[1]}")
        elif isinstance(key, str):
            names.add(key)
        else:
            names.add(getattr(key, "__name__", str(key)))
    return sorted(names)
