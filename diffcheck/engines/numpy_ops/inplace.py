"""Writes into arrays while tracing: ``a[i] = v``, ``a[idx] += v``, ``np.add(a, b, out=a)``.

NumPy code fills arrays in place (``out = np.zeros(n); for i in range(n): out[i] = X[i] @ w``)
and builds them from lists (``np.array([x[0] ** 2, x[1]])``). Two mechanisms trace that:

* **Traced values are writable.** ``Dual.__setitem__`` and ``Var.__setitem__`` compute the
  written value with the :data:`setitem_p` row (a scatter on the tape, a tangent update for
  duals, nested duals too) and rebind the object to it, so every name bound to the object
  sees the write, as with NumPy arrays. In-place operators (``x += y``) and ``out=`` rebind
  the same way.
* **Arrays made while tracing stand in for traced values.** While :func:`tracing_scope` is
  active (the checks enter it around each traced call of ``f``), NumPy's array constructors
  called from the user's code (``np.zeros``, ``np.ones``, ``np.empty``, ``np.full``, their
  ``_like`` twins, ``np.eye``, ``np.identity``, ``np.array``, ``np.asarray``, ``np.copy``)
  return a :class:`TracedArray`: a plain ndarray until a traced value is written into it,
  then a :class:`BoundArray` that stands for the traced result (ufuncs, array functions,
  indexing, methods and the return value of ``f`` use the traced value). ``np.array`` /
  ``np.asarray`` / ``np.stack`` of lists holding traced values stack them, and
  ``np.asarray(traced)`` passes the traced value through.

What cannot work (NumPy offers no hook): arrays made before ``f`` is called, or by names
bound before the call (``from numpy import zeros``), or by NumPy functions not listed above,
are plain arrays, and a traced write into them raises an error naming the fix; a traced
value written into a view made by ``reshape``/``ravel``/``.T``/``transpose`` raises (write
into the array itself); views made by those functions *before* a traced write into their
array do not see it. Views made by indexing (``row = a[i]; row[j] = v``, ``a[i][j] = v``,
``a[i] += v``) work. The scope patches module attributes, so it is process-wide while it
lasts: not for threads that call NumPy concurrently.

>>> import numpy as np
>>> import diffcheck as dc
>>> def f(w):
...     out = np.zeros(2)
...     for i in range(2):
...         out[i] = w[i] ** 2
...     return np.array([out[0] * out[1], w[0]])
>>> dc.jacobian(f, np.array([1.0, 2.0]), mode="reverse").tolist()
[[8.0, 4.0], [1.0, 0.0]]
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from ...tracing import is_traced
from .core import _k, _row, getitem, shape_of, strip, unbroadcast, unwrap
from .methods import (
    METHODS,
    NeedsCallSite,
    call_sites,
    cannot_answer,
    method_in_flight,
    method_result,
    recording,
)
from .shapes import _index, _is_basic, astype

# -- the row: a[index] = v, as a new value ----------------------------------------------------


def _selection_shape(shape: tuple[int, ...], index: tuple) -> tuple[int, ...]:
    return np.broadcast_to(np.empty((), dtype=bool), shape)[index].shape


def _fit(v: Any, ndim: int) -> Any:
    """Drop the leading length-1 axes an assignment ignores (``a[0] = v`` with v (1, n))."""
    s = shape_of(v)
    extra = len(s) - ndim
    return np.reshape(v, s[extra:]) if extra > 0 else v


def _setitem(a: Any, v: Any, *, index: tuple) -> np.ndarray:
    out = np.array(a, copy=True, subok=False)
    out[index] = v
    return out


def _setitem_jvp(primals, tangents, out, *, index):
    a, _ = primals
    ta, tv = tangents
    k = _k(ta if ta is not None else tv)
    base = np.moveaxis(ta, 0, -1) if ta is not None else \
        np.zeros(shape_of(a) + (k,), dtype=np.result_type(strip(out), np.float16))
    if tv is None:
        vt = 0.0
    else:
        sel = _selection_shape(shape_of(a), index)
        t = np.reshape(tv, (k, *shape_of(_fit(strip(primals[1]), len(sel)))))
        vt = np.moveaxis(t, 0, -1)
    return np.moveaxis(setitem_p(base, vt, index=index), -1, 0)


def _winners(shape: tuple[int, ...], index: tuple, sel: tuple[int, ...]) -> np.ndarray:
    """Where an advanced index names an entry twice, the write NumPy kept (1) and the
    overwritten ones (0), in the selection's shape."""
    ids = np.arange(int(np.prod(sel))).reshape(sel)
    last = np.full(shape, -1)
    last[index] = ids
    return (last[index] == ids).astype(np.float16)


def _setitem_vjp(primals, out, g, *, index):
    a, v = primals
    zero = np.zeros((), dtype=np.result_type(strip(g), np.float16))
    ga = setitem_p(g, zero, index=index)
    sel = _selection_shape(shape_of(a), index)
    gv = getitem(g, index)
    if not _is_basic(index):
        gv = gv * _winners(shape_of(a), index, sel)
    fitted = shape_of(_fit(np.broadcast_to(np.empty((), bool), shape_of(v)), len(sel)))
    return ga, np.reshape(unbroadcast(gv, fitted), shape_of(v))


#: ``a[index] = v`` as a new array (``a`` unchanged): the write on the tape and for duals;
#: its pullback reads shapes only, so the tape keeps no copy of the array per write
setitem_p = _row("setitem", _setitem, _setitem_jvp, _setitem_vjp, shapes_only=True)


def write(target: Any, index: Any, value: Any) -> Any:
    """``target`` with ``target[index] = value``, as a new (traced) value.

    >>> from diffcheck.engines.forward import Dual
    >>> x = Dual(np.zeros(3), np.eye(3), 1)
    >>> write(x, 1, x[0] + 2.0).tan.tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    value = build(value)
    dtype = np.result_type(strip(target))
    if dtype.kind not in "fc" and is_traced(value):
        raise UnsupportedError(
            f"a traced value written into an array of dtype {dtype} would be truncated "
            "(no derivative); create the array with a floating dtype (np.zeros(n), "
            "np.zeros(n, dtype=float)).")
    return setitem_p(target, value, index=_index(index, len(shape_of(target))))


def conform(value: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``value`` as NumPy would store it into an array of ``shape`` and ``dtype`` (``out=``):
    broadcast to the shape, cast to a floating dtype."""
    if shape_of(value) != tuple(shape):
        value = np.broadcast_to(value, shape)
    vdtype = np.result_type(strip(value))
    if vdtype != dtype and dtype.kind in "fc" and vdtype.kind in "fc":
        value = astype(value, dtype) if is_traced(value) else np.asarray(value, dtype)
    return value


def build(obj: Any) -> Any:
    """A list or tuple holding traced values as one stacked traced value (``np.array`` of
    it); anything else as it is (an array standing in for a traced value as that value)."""
    if isinstance(obj, list | tuple):
        parts = [build(o) for o in obj]
        if any(is_traced(p) for p in parts):
            return np.stack(parts)
        return obj
    return unwrap(obj)


# -- arrays made while tracing ---------------------------------------------------------------

_VIEW_WRITE = (
    "a traced value was written into a view of an array made by reshape, ravel, transpose, "
    ".T or a similar function; NumPy would write through to the array, which diffcheck cannot "
    "follow. Write into the array itself (a[i, j] = v) or index it (a[i] = v, a[i][j] = v).")


class TracedArray(np.ndarray):
    """An array made by user code while ``f`` is traced: plain until a traced value is
    written into it; then it becomes a :class:`BoundArray`.

    >>> with tracing_scope():
    ...     out = np.zeros(2)
    >>> type(out).__name__
    'TracedArray'
    """

    _traced: Any = None  #: the traced value the array stands for (when bound)
    _owner = False  #: made by a wrapped constructor (owns its values; ``.base`` is set)
    _link: Any = None  #: ``(parent, index)`` of a view made by indexing
    _views: Any = None  #: views made by indexing this array (weak)
    _synced: Any = None  #: ``(parent, parent._traced)`` after a view wrote itself through

    def __getitem__(self, index: Any) -> Any:
        item = np.ndarray.__getitem__(self, index)
        if isinstance(item, TracedArray):
            if _shares(item, self):
                self._adopt(item, index)
            else:  # a copy (fancy indexing; its .base is NumPy's buffer): writes stay in it
                item._owner = True
        return item

    def _adopt(self, view: TracedArray, index: Any) -> None:
        view._link = (self, index)
        refs = self._views
        if refs is None:
            refs = self._views = []
        elif len(refs) >= 64 and (len(refs) & (len(refs) - 1)) == 0:  # prune now and then
            refs[:] = [r for r in refs if r() is not None]
        refs.append(weakref.ref(view))

    def _live_views(self) -> list[TracedArray]:
        return [v for v in (r() for r in self._views or ()) if v is not None]

    def __setitem__(self, index: Any, value: Any) -> None:
        if self._traced is None and not _holds_traced(value):
            np.ndarray.__setitem__(self, index, value)
            return
        if isinstance(value, TracedArray) and value._synced is not None and \
                value._synced[0] is self and value._synced[1] is self._traced and \
                value._link[1] is index:
            return  # `a[i] += v`: the view a[i] already wrote itself through
        current = self._traced if self._traced is not None else self.view(np.ndarray)
        if self._link is None and not self._owner and self.base is not None:
            raise UnsupportedError(_VIEW_WRITE)
        new = write(current, index, value)
        np.copyto(self.view(np.ndarray), strip(new), casting="unsafe")
        self._bind(new)

    def _rebind(self, value: Any) -> None:
        """Stand for ``value`` from now on (``out=``, in-place operators)."""
        self[...] = value

    def _bind(self, new: Any) -> None:
        self._traced = new
        self.__class__ = BoundArray
        for view in self._live_views():
            view._refresh()
        if self._link is not None:
            parent, index = self._link
            parent[index] = new
            self._synced = (parent, parent._traced)

    def _refresh(self) -> None:
        """A view of an array that was just written: stand for the same entries of it."""
        parent, index = self._link
        self._traced = getitem(parent._traced, index)
        self.__class__ = BoundArray
        for view in self._live_views():
            view._refresh()


def _shares(a: np.ndarray, b: np.ndarray) -> bool:
    plain = np.ndarray.view
    return np.may_share_memory(plain(a, np.ndarray), plain(b, np.ndarray))


def _holds_traced(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_holds_traced(v) for v in value)
    return is_traced(value) or isinstance(value, BoundArray)


#: ndarray attributes that read values: on a bound array, they use the traced value
_DELEGATED = frozenset({
    "T", "astype", "clip", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot",
    "flatten", "imag", "item", "max", "mean", "min", "prod", "ravel", "real", "repeat",
    "reshape", "round", "squeeze", "std", "sum", "swapaxes", "take", "tolist", "trace",
    "transpose", "var", "__float__", "__int__", "__complex__",
})


class BoundArray(TracedArray):
    """An array made while tracing that a traced value was written into: it stands for
    that value (its own entries hold the value's numbers)."""

    __array_priority__ = 1e9  # outputs of ndarray methods given it are made of this type

    def __array_finalize__(self, obj: Any) -> None:
        """A new array NumPy made from this one in C: the output of a method of a plain
        array given it (``X.dot(h)``; bound here when the call is recorded, see
        :mod:`.methods`), or a value diffcheck cannot follow (an :class:`_Orphan`). Views made
        by :meth:`__getitem__` get their value right after."""
        traced = getattr(obj, "_traced", None)
        if traced is None:
            return
        site = method_in_flight()
        if site is not None and site[1] in METHODS and site[0] is not obj:
            result = method_result(*site, traced)
            if self.shape == shape_of(result):
                if self.ndim == 0:
                    raise UnsupportedError(_SCALAR)
                self._traced, self._owner = result, True
                return
        self.__class__ = _Orphan

    def __getattribute__(self, name: str) -> Any:
        if name in _DELEGATED:
            return getattr(object.__getattribute__(self, "_traced"), name)
        return object.__getattribute__(self, name)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(map(unwrap, inputs))
        out = kwargs.pop("out", None)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is None:
            return result
        from .core import write_out

        return write_out(ufunc, out, result)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        from .core import _unwrap_deep

        return func(*_unwrap_deep(args), **{k: _unwrap_deep(v) for k, v in kwargs.items()})

    def __getitem__(self, index: Any) -> Any:
        item = getitem(self._traced, index)
        view = np.ndarray.__getitem__(self, index)
        if isinstance(view, TracedArray) and _shares(view, self):
            view.__class__, view._traced = BoundArray, item
            self._adopt(view, index)
            return view
        return item

    def __len__(self) -> int:
        return len(self._traced)

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"BoundArray({self._traced!r})"

    def fill(self, value: Any) -> None:
        self[...] = value


class _Orphan(TracedArray):
    """An array NumPy computed in C from an array standing for a traced value, by a method
    diffcheck cannot follow: any use of it is an error (or, in a first traced pass, a
    request to record the call sites and run again)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        error = NeedsCallSite if _depth and not recording() else UnsupportedError
        raise error(
            "a method of a plain array was given an array holding a traced value, and NumPy "
            "computed the result without asking it (only X.dot(h) is followed); use the NumPy "
            "function instead (np.dot(X, h), X @ h, np.sum(h), ...)")

    __array_ufunc__ = __array_function__ = __getitem__ = __setitem__ = _refuse
    __float__ = __int__ = __len__ = __iter__ = _refuse


# -- ndarray methods of plain arrays given traced values (see .methods) ----------------------

class _Carrier(np.ndarray):
    """The values of a traced argument, handed to an ndarray method; the method's output
    (which NumPy makes of this type) stands for ``_result``."""

    __array_priority__ = 1e9
    _result: Any = None

    def __array_finalize__(self, obj: Any) -> None:
        result = getattr(obj, "_result", None)
        if result is None or self.shape != shape_of(result):
            return
        if self.ndim == 0:
            raise UnsupportedError(_SCALAR)
        self.__class__ = BoundArray
        self._traced, self._owner = result, True


_SCALAR = ("x.dot(w) of a plain 1-D x and a traced w returns a NumPy scalar, which cannot "
           "carry the derivative; write x @ w or np.dot(x, w)")


def array_of_traced(x: Any, dtype: Any = None, copy: Any = None) -> Any:
    """``x.__array__()`` of a traced ``x``: the carrier of a method's result when an ndarray
    method is in flight; otherwise an error (which a traced pass answers by recording the
    call sites, see :class:`NeedsCallSite`)."""
    site = method_in_flight()
    if site is not None and site[1] in METHODS:
        carrier = np.asarray(strip(x), dtype=dtype).view(_Carrier)
        carrier._result = method_result(*site, x)
        return carrier
    if site is not None:
        raise cannot_answer(site[1])
    error = NeedsCallSite if _depth and not recording() else UnsupportedError
    raise error(
        "a traced value was converted to a plain array, which drops its derivative: "
        "np.asarray/np.array of it in library code, a write of it into an array made before "
        "f was called (create that array inside f with np.zeros, np.empty, np.array or "
        "np.copy), or a method of a plain array given it (X.dot(w): write X @ w).")


# -- the scope: NumPy's constructors make TracedArrays ---------------------------------------

#: package folders whose code gets NumPy's own constructors (library internals)
_LIBRARY_DIRS = (os.path.dirname(np.__file__) + os.sep, os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))) + os.sep)


def _caller_is_library(depth: int = 2) -> str | None:
    """``"numpy"``, ``"diffcheck"`` or ``"scipy"`` when the calling code is in one of those
    packages (by file, so doctests and user code count as users), else None."""
    filename = sys._getframe(depth).f_code.co_filename
    if filename.startswith(_LIBRARY_DIRS[0]):
        return "numpy"
    if filename.startswith(_LIBRARY_DIRS[1]):
        return "diffcheck"
    scipy = sys.modules.get("scipy")
    if scipy is not None and filename.startswith(os.path.dirname(scipy.__file__)):
        return "scipy"
    return None


def _fresh(result: Any) -> Any:
    """A new plain array as a :class:`TracedArray` (a view owning the values)."""
    if type(result) is not np.ndarray:
        return result
    t = result.view(TracedArray)
    t._owner = True
    return t


def _constructor(orig: Callable) -> Callable:
    @functools.wraps(orig)
    def make(*args: Any, **kwargs: Any) -> Any:
        result = orig(*args, **kwargs)
        return result if _caller_is_library() else _fresh(result)
    return make


def _traced_array(t: Any, dtype: Any, copy: bool, ndmin: int = 0) -> Any:
    """``np.array(t, dtype, copy, ndmin)`` of a traced value ``t``."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":  # a cast to integers or booleans: piecewise constant
            return _fresh(np.array(strip(t), dtype=dtype, ndmin=ndmin))
        if dtype != np.result_type(strip(t)):
            t, copy = astype(t, dtype), False
    if copy:
        t = t.copy()
    nd = len(shape_of(t))
    return np.reshape(t, (1,) * (ndmin - nd) + shape_of(t)) if ndmin > nd else t


def _array_constructor(orig: Callable, copies: bool) -> Callable:
    """``np.array`` (``copies``) or ``np.asarray``/``np.asanyarray``: traced values and lists
    of them pass through (stacked); new plain arrays are TracedArrays."""
    @functools.wraps(orig)
    def make(obj: Any, *args: Any, **kwargs: Any) -> Any:
        library = _caller_is_library()
        if library is None or library == "scipy":
            t = build(obj)
            if is_traced(t):
                dtype = args[0] if args else kwargs.get("dtype")
                copy = kwargs.get("copy", copies)
                copy = copy is True or copy is np._CopyMode.ALWAYS  # IF_NEEDED: no copy
                return _traced_array(t, dtype, copy, kwargs.get("ndmin", 0))
        result = orig(obj, *args, **kwargs)
        return result if library or result is obj else _fresh(result)
    return make


def _sequence_function(orig: Callable) -> Callable:
    """``np.stack`` and friends: lists holding traced values are stacked first."""
    @functools.wraps(orig)
    def run(arrays: Any, *args: Any, **kwargs: Any) -> Any:
        library = _caller_is_library()
        if library is None and isinstance(arrays, list | tuple):
            arrays = [build(a) for a in arrays]
        result = orig(arrays, *args, **kwargs)
        return result if library else _fresh(result)
    return run


_CONSTRUCTORS = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like",
                 "full_like", "eye", "identity", "copy")
_SEQUENCES = ("stack", "vstack", "hstack", "column_stack", "concatenate")


def _wrappers() -> dict[str, Callable]:
    wrapped = {name: _constructor(getattr(np, name)) for name in _CONSTRUCTORS}
    wrapped["array"] = _array_constructor(np.array, copies=True)
    wrapped["asarray"] = _array_constructor(np.asarray, copies=False)
    wrapped["asanyarray"] = _array_constructor(np.asanyarray, copies=False)
    wrapped.update({name: _sequence_function(getattr(np, name)) for name in _SEQUENCES})
    return wrapped


_WRAPPERS = _wrappers()
_ORIGINALS = {name: getattr(np, name) for name in _WRAPPERS}
_NUMPY = vars(np)
_depth = 0


@contextlib.contextmanager
def tracing_scope() -> Iterator[None]:
    """Inside the block, NumPy's array constructors called from user code make
    :class:`TracedArray` objects (re-entrant; NumPy is restored on exit).

    >>> with tracing_scope():
    ...     a = np.zeros(3)
    >>> type(a).__name__, type(np.zeros(3)).__name__
    ('TracedArray', 'ndarray')
    """
    _enter()
    try:
        yield
    finally:
        _exit()


def _enter() -> None:
    global _depth
    if _depth == 0:
        _NUMPY.update(_WRAPPERS)  # one dict update: ~3x cheaper than setattr per name
    _depth += 1


def _exit() -> None:
    global _depth
    _depth -= 1
    if _depth == 0:
        _NUMPY.update(_ORIGINALS)


def plain_output(y: Any) -> Any:
    """``f``'s return value with arrays made while tracing replaced by what they stand
    for (a traced value, or a plain ndarray)."""
    if isinstance(y, list | tuple):
        return type(y)(plain_output(v) for v in y)
    if isinstance(y, _Orphan):
        y._refuse()
    if isinstance(y, TracedArray):
        return y._traced if y._traced is not None else y.view(np.ndarray)
    return y


def trace_call(f: Callable[[Any], Any], x: Any) -> Any:
    """``f(x)`` for a traced ``x``: inside :func:`tracing_scope`, on a copy of ``x``'s
    handle (so writes into ``x`` inside ``f`` leave the caller's handle alone), with the
    output made plain (:func:`plain_output`).

    >>> from diffcheck.engines.reverse import Tape
    >>> def f(x):
    ...     x[0] = 5.0          # a write into the input
    ...     out = np.zeros(2)
    ...     out[1] = x[1] * x[0]
    ...     return out
    >>> x = Tape().var(np.array([1.0, 2.0]))
    >>> y = trace_call(f, x)
    >>> type(y).__name__, y.val.tolist(), x.val.tolist()
    ('Var', [0.0, 10.0], [1.0, 2.0])
    """
    _enter()
    try:
        y = _call(f, x)
    except NeedsCallSite:  # NumPy asked x for plain values: run f again, recording the C
        with call_sites(), list_arguments():  # calls in flight (see .methods) and stacking
            y = _call(f, x)  # lists of traced values given to NumPy functions
    finally:
        _exit()
    return plain_output(y)


#: registered NumPy functions whose first argument is a sequence of arrays, not one array
_TAKES_SEQUENCES = frozenset({"block", "broadcast_arrays", "column_stack", "concatenate",
                              "dstack", "einsum", "hstack", "meshgrid", "stack", "vstack"})


def _list_argument(orig: Callable) -> Callable:
    @functools.wraps(orig)
    def run(a: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(a, list | tuple) and _caller_is_library() is None:
            a = build(a)
        return orig(a, *args, **kwargs)
    return run


@contextlib.contextmanager
def list_arguments() -> Iterator[None]:
    """NumPy functions with a traced row called from user code on a list holding traced
    values (``np.mean([x, x + 2])``) stack the list first (NumPy's dispatch looks at the list,
    not into it)."""
    from .core import ARRAY_FUNCTIONS

    saved = {}
    for name in dir(np):
        fn = getattr(np, name)
        if name in _WRAPPERS or name in _TAKES_SEQUENCES or not callable(fn):
            continue
        try:
            registered = fn in ARRAY_FUNCTIONS
        except TypeError:  # unhashable
            continue
        if registered:
            saved[name] = fn
            setattr(np, name, _list_argument(fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(np, name, fn)


def _call(f: Callable[[Any], Any], x: Any) -> Any:
    try:
        return f(x.copy() if is_traced(x) else x)
    except ValueError as exc:  # NumPy's words for a traced value written into a plain array
        if isinstance(exc.__cause__ or exc.__context__, UnsupportedError) and \
                "sequence" in str(exc):
            raise UnsupportedError(
                "a traced value was written into an array made before f was called (or by "
                "a function diffcheck does not wrap, such as X.copy() of a plain X), which "
                "cannot carry its derivative; create the array inside f with np.zeros, "
                "np.empty, np.array or np.copy.") from exc
        raise
