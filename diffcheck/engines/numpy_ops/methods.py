"""ndarray methods of plain arrays given a traced argument: ``X.dot(w)``.

NumPy dispatches ``X @ w`` and ``np.dot(X, w)`` to the traced ``w`` (``__array_ufunc__``,
``__array_function__``), but the method ``X.dot(w)`` of a plain ndarray ``X`` only asks ``w``
for its values (``w.__array__()``): no protocol lets ``w`` answer. The derivative comes
from knowing which method is running. A first traced pass that meets ``__array__`` stops
(:class:`NeedsCallSite`); :func:`~.inplace.trace_call` then runs ``f`` again under a profile
hook (:func:`call_sites`) that records the C calls in flight. When ``w.__array__()`` is called
from ``X.dot``, ``w`` computes ``np.dot(X, w)`` itself and returns its values wrapped in a
:class:`_Carrier`, an ndarray subclass that NumPy gives the method's output the type of
(priority), so the output becomes a :class:`~.inplace.BoundArray` standing for the traced
product. Only ``f``'s second pass pays for the hook, and only code that calls such a method.

What cannot work: a 1-D ``x.dot(w)`` returns a NumPy scalar, which cannot stand for a traced
value (an error says to write ``x @ w``); other methods of plain arrays given traced values
(``X.put``, ``X.choose``, ``X[i] = w`` on an array made before ``f`` was called) raise an
error naming the method or the fix.

>>> import numpy as np
>>> import diffcheck as dc
>>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
>>> dc.jacobian(lambda w: X.dot(w), np.array([0.5, -1.0]), mode="reverse").tolist()
[[1.0, 2.0], [3.0, 4.0]]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...errors import UnsupportedError

#: methods of plain arrays that a traced argument answers for: name -> the NumPy function
METHODS: dict[str, Callable[..., Any]] = {"dot": np.dot}


class NeedsCallSite(UnsupportedError):
    """A traced value was asked for its plain values by code diffcheck cannot see; the
    traced pass is run again with the C calls in flight recorded."""


class _CallSites:
    """A profile hook: the builtin functions and methods being called, innermost last."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.results: dict[tuple[int, int], Any] = {}

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            self.stack.append(arg)
        elif event in ("c_return", "c_exception") and self.stack:
            self.stack.pop()


_sites: list[_CallSites] = []


@contextlib.contextmanager
def call_sites() -> Iterator[None]:
    """Record the C calls in flight (``sys.setprofile``; the previous hook is restored)."""
    previous = sys.getprofile()
    sites = _CallSites()
    _sites.append(sites)
    sys.setprofile(sites)
    try:
        yield
    finally:
        sys.setprofile(previous)
        _sites.remove(sites)


def method_in_flight() -> tuple[np.ndarray, str] | None:
    """``(X, name)`` when the innermost C call is the method ``name`` of an ndarray ``X``."""
    if not _sites or not _sites[-1].stack:
        return None
    call = _sites[-1].stack[-1]
    owner = getattr(call, "__self__", None)
    return (owner, call.__name__) if isinstance(owner, np.ndarray) else None


def method_result(owner: np.ndarray, name: str, x: Any) -> Any:
    """``owner.<name>(x)`` for a traced ``x``, computed once per call in flight."""
    call = _sites[-1].stack[-1]
    key = (id(call), id(x))
    results = _sites[-1].results
    if key not in results:  # the call and x are kept alive, so their ids stay unique
        results[key] = (METHODS[name](owner, x), x, call)
    return results[key][0]


def cannot_answer(name: str) -> UnsupportedError:
    return UnsupportedError(
        f"ndarray.{name} of a plain array was given a traced value; NumPy does not let the "
        f"traced value answer that method. Use the NumPy function (np.{name}(a, ...)) or "
        "create the array inside f.")


def recording() -> bool:
    """True while :func:`call_sites` records."""
    return bool(_sites)
