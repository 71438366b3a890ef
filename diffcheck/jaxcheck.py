"""Checks of JAX derivatives: custom_jvp / custom_vjp rules, hand-written primitives, pytrees.

:func:`check_grads` is a drop-in for ``jax.test_util.check_grads`` that returns a result.
JAX's JVPs along random tangents and VJPs along random cotangents (so the user's
``custom_jvp`` / ``custom_vjp`` rules) are compared with references that share nothing with
them: finite differences and the complex step of ``f``, evaluated in float64
(:mod:`diffcheck.engines.jaxfd`). The rules are also *replayed* on float64 inputs: a correct
float32, float16 or bfloat16 rule then agrees to float64 accuracy, so rounding is never
taken for an error, and a bug far below the working precision's rounding is still seen. A
failing check is localised to the entry (``args[0]['W1'][3, 2]``) and the mode (JVP, VJP).

>>> import jax, jax.numpy as jnp
>>> @jax.custom_jvp
... def softplus(x):
...     return jnp.logaddexp(x, 0.0)
>>> @softplus.defjvp
... def softplus_jvp(primals, tangents):
...     (x,), (t,) = primals, tangents
...     return softplus(x), jax.nn.sigmoid(x) * t
>>> bool(check_grads(softplus, (jnp.linspace(-3.0, 3.0, 5),), order=1))
True
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .engines.jaxfd import (
    _TRACE_ERRORS,
    EPS64,
    LARGE,
    Along,
    Analysis,
    Part,
    Program,
    Reference,
    chunk_for,
    eps_of,
    widen,
    x64,
)
from .errors import DerivativeError, DomainError, UsageError
from .pytree import Flat, flatten

A_SIZE = 32.0  #: tolerance: multiples of the working eps times the entry's magnitude
B_PROBE = 16.0  #: multiples of float64's eps per unit of rounding the low-precision run shows
C_NOISE = 8.0  #: multiples of the measured rounding noise (when the first comparison fails)
LOOP = 16.0  #: a loop that stops at tolerance t computes to about LOOP * t (absolute, on
#: the scale of the largest entry)
#: the float64 replay is trusted to this relative precision: special functions (erf, lgamma,
#: ...) are accurate to a few ulps, and their differences to their analytic derivatives to
#: about 1e-12, so a bug smaller than ~4e-9 relative (A_SIZE * this) is not claimed
REPLAY_EPS = 2.0 ** -33
DENSE = 128  #: inputs up to which every entry is checked
STEP = 2 ** 15  #: entries per block of the host passes over long vectors (no big temporaries)
DENSE_OUT = 64  #: outputs up to which a VJP is checked row by row
BLOCK = 16  #: localisation ends with a block this small, checked entry by entry
SHOW = 5  #: worst entries shown per mode
_NO_FWD = "forward-mode autodiff (jvp) to a custom_vjp"


# -- spaces: the floating leaves of a pytree as one flat vector ----------------------------

def _dtype(leaf: Any) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.dtype(np.result_type(leaf))


def _kind(dt: np.dtype) -> str:
    """NumPy's kind letter, with bfloat16 and other ml_dtypes floats as ``"f"``."""
    if jnp.issubdtype(dt, jnp.floating):
        return "f"
    return "c" if jnp.issubdtype(dt, jnp.complexfloating) else dt.kind


def _widest(dtypes: Sequence[Any]) -> np.dtype:
    """A float dtype holding every one of ``dtypes`` exactly (float16/bfloat16 -> float32)."""
    return np.dtype(np.float64) if any(eps_of(d) < eps_of(np.float32) for d in dtypes) \
        else np.dtype(np.float32)


def _least(dtypes: Sequence[Any]) -> np.dtype:
    return max((np.dtype(d) for d in dtypes), key=eps_of)


def _round(flat: Flat, V: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """Rows of ``V`` rounded to each leaf's dtype (so both sides see the same numbers);
    ``copy=False`` rounds a float64 ``V`` in place."""
    out = np.array(V, dtype=np.float64, copy=copy or None)
    off = flat.offsets
    for i, dt in enumerate(flat.dtypes):
        if np.dtype(dt) != np.float64:
            for a in range(off[i], off[i + 1], STEP):  # small temporaries only
                seg = out[..., a:min(a + STEP, off[i + 1])]
                seg[...] = seg.astype(dt)
    return out


def _directions(flat: Flat, Z: np.ndarray, scale: np.ndarray, out: np.ndarray
                ) -> np.ndarray:
    """``_round(flat, Z * scale)`` into ``out``, block by block (one pass over memory).

    >>> from diffcheck.pytree import Flat
    >>> flat = Flat(("[0]",), ((2,),), (np.dtype(np.float32),), None)
    >>> T = _directions(flat, np.array([[0.1, 1.0]]), np.array([1.0, 3.0]), np.empty((1, 2)))
    >>> bool(T[0, 0] == np.float32(0.1)), float(T[0, 1])
    (True, 3.0)
    """
    off = flat.offsets
    for i, dt in enumerate(flat.dtypes):
        for a in range(off[i], off[i + 1], STEP):
            b = min(a + STEP, off[i + 1])
            blk = np.multiply(Z[:, a:b], scale[a:b], out=out[:, a:b])
            if np.dtype(dt) != np.float64:
                blk[...] = blk.astype(dt)
    return out


class Inputs:
    """The floating leaves of ``tree`` (the arguments) as one flat vector named from ``root``.

    Other leaves (integers, booleans) are held fixed, as JAX's derivatives hold them.
    ``numbers_vary=True`` differentiates integer leaves too (as float). ``reuse=True``
    (large inputs of :func:`check_grads`) keeps ``x`` and ``scale`` in host buffers that
    the next such check overwrites (see :func:`_scratch`).
    """

    def __init__(self, tree: Any, root: str, *, numbers_vary: bool = False,
                 reuse: bool = False):
        paths, leaves, self._rebuild = flatten(tree)
        self.leaves, self.root, self.vary = list(leaves), root, []
        shapes, dtypes = [], []
        for i, (p, leaf) in enumerate(zip(paths, leaves, strict=True)):
            try:
                dt = _dtype(leaf)
            except TypeError:  # a string, an object: not a number JAX could take
                raise UsageError(f"{root}{p} = {str(leaf)[:40]!r} (type {type(leaf).__name__})"
                                 " is not a number or an array of numbers") from None
            if _kind(dt) == "c":
                raise UsageError(f"{root}{p} is complex; diffcheck checks real functions")
            if _kind(dt) == "f" or (numbers_vary and dt.kind in "biu"):
                self.vary.append(i)
                shapes.append(tuple(np.shape(leaf)))
                dtypes.append(jax.dtypes.canonicalize_dtype(dt if _kind(dt) == "f" else float))
        if not self.vary:
            raise UsageError(f"{root} has no floating-point arrays to differentiate")
        self.flat = Flat(tuple(paths[i] for i in self.vary), tuple(shapes), tuple(dtypes),
                         self._merge)
        self.dtype = _widest(dtypes)
        n = self.flat.size
        self.reused = reuse and n > LARGE
        out = _scratch("x", (n,)) if self.reused else np.empty(n)
        self.x = _flat_on_host([leaves[i] for i in self.vary], dtypes, self.flat.offsets, out)
        self.scale, finite = _scale(self.x, _scratch("scale", (n,)) if self.reused else None)
        if not finite:
            i = int(np.argmax(~np.isfinite(self.x)))
            raise DomainError(f"{root} has {int(np.sum(~np.isfinite(self.x)))} non-finite "
                              f"entries, first {self.flat.name(i, root)}")

    @property
    def size(self) -> int:
        return self.x.size

    def _merge(self, varying: list) -> Any:
        leaves = list(self.leaves)
        for j, i in enumerate(self.vary):
            leaves[i] = varying[j]
        return self._rebuild(leaves)

    def tree(self, v: Any, *, wide: bool) -> Any:
        """The tree with the varying leaves taken from the flat vector ``v``."""
        leaves = list(self.leaves)
        off = self.flat.offsets
        for j, i in enumerate(self.vary):
            part = v[int(off[j]):int(off[j + 1])].reshape(self.flat.shapes[j])
            leaves[i] = part if wide else part.astype(self.flat.dtypes[j])
        return self._rebuild(leaves)

    def name(self, i: int) -> str:
        return self.flat.name(i, self.root)


_SCRATCH = threading.local()


def _scratch(tag: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 host buffer of ``shape``, the same one for every call with ``tag`` and
    shape (per thread; one shape per tag is kept). A warm check of a million-parameter
    model then touches no fresh memory: a fresh 8 MB array costs page faults, and freeing
    it interrupts the threads of the JAX programs just run, together more than the
    arithmetic on it. Only for arrays that live no longer than one check.

    Aligned to 64 bytes, so that ``jax.device_put`` on a CPU shares the buffer instead of
    copying it (the programs then read the check's own memory: it must not change while
    they run, and does not, as a check finishes them before it returns)."""
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    buf = bufs.get(tag)
    if buf is None or buf.shape != shape:
        size = int(np.prod(shape)) * 8
        raw = np.empty(size + 64, np.uint8)
        start = -raw.ctypes.data % 64
        buf = bufs[tag] = raw[start:start + size].view(np.float64).reshape(shape)
    return buf


def _flat_on_host(leaves: list, dtypes: list, off: np.ndarray, out: np.ndarray
                  ) -> np.ndarray:
    """The leaves, each rounded to its dtype, as one float64 vector ``out`` (one pass per
    leaf)."""
    x = out
    for j, leaf in enumerate(leaves):
        leaf = np.asarray(leaf)
        x[off[j]:off[j + 1]] = (leaf if leaf.dtype == dtypes[j] else
                                leaf.astype(dtypes[j])).ravel()
    return x


def _scale(x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Per-entry size of perturbations: |x|, zeros taking the typical size (or 1); and
    whether every entry of x is finite (few passes: x can hold a million entries)."""
    size = np.abs(x, out=out)
    if not size.size:
        return size, True
    squares = float(np.einsum("i,i->", size, size))  # no temporary, and no BLAS (whose
    if not np.isfinite(squares) and not np.isfinite(size).all():  # idle threads spin)
        return size, False
    if not np.min(size) > 0:
        size[size == 0] = max(float(np.sqrt(squares / size.size)), 1.0)
    return size, True


class Space:
    """Names of a flat vector of outputs (``out[1]``, ``out['loss']``) or of inputs."""

    def __init__(self, flat: Flat, root: str, keep: list[int] | None = None):
        self.flat, self.root, self.keep = flat, root, keep
        self.dtype = _widest(flat.dtypes)

    @classmethod
    def of_output(cls, shapes: Any, root: str = "out") -> Space:
        paths, leaves, _ = flatten(shapes)
        keep = [i for i, leaf in enumerate(leaves) if _kind(_dtype(leaf)) in "fc"]
        for i in keep:
            if _kind(_dtype(leaves[i])) == "c":
                raise UsageError(f"f returns complex values at {root}{paths[i]}; diffcheck "
                                 "checks real functions")
        if not keep:
            raise UsageError("f returns no floating-point values to differentiate")
        flat = Flat(tuple(paths[i] for i in keep), tuple(tuple(leaves[i].shape) for i in keep),
                    tuple(_dtype(leaves[i]) for i in keep), lambda leaves: None)
        return cls(flat, root, keep)

    @property
    def size(self) -> int:
        return self.flat.size

    def name(self, i: int) -> str:
        return self.flat.name(i, self.root)

    def ravel(self, tree: Any, dtype: Any = None) -> jax.Array:
        """The kept leaves of ``tree`` as one vector (cast to ``dtype``, or promoted)."""
        leaves = jax.tree_util.tree_leaves(tree)
        parts = [jnp.ravel(jnp.asarray(leaves[i])) for i in self.keep]
        if dtype is not None:
            parts = [p.astype(dtype) for p in parts]
        return jnp.concatenate(parts)


# -- the functions whose derivatives are checked, and their rules ----------------------------

@dataclass
class Fn:
    """A function of the flat inputs: ``low`` in the user's dtypes, ``wide`` in float64."""

    label: str
    low: Callable[[jax.Array], jax.Array]
    wide: Callable[[jax.Array], jax.Array]
    out: Space


def _root_fn(f: Callable, inputs: Inputs, call: Callable) -> Fn:
    v = jnp.asarray(inputs.x, inputs.dtype)
    try:
        shapes = jax.eval_shape(lambda v: call(f, inputs.tree(v, wide=False)), v)
    except _TRACE_ERRORS:  # Python control flow on values: one concrete evaluation
        shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a),
                                                                       _dtype(a)),
                                        call(f, inputs.tree(v, wide=False)))
    out = Space.of_output(shapes)
    return Fn("f", lambda v: out.ravel(call(f, inputs.tree(v, wide=False)), out.dtype),
              lambda v: out.ravel(call(f, inputs.tree(v, wide=True))), out)


def _apply(mode: str, g: Callable) -> Callable:
    """``jax.jvp`` (``"fwd"``: tangent rows) or ``jax.vjp`` (``"rev"``: cotangent rows) of g."""
    if mode == "fwd":
        return lambda t, x: jax.jvp(g, (x,), (t,))[1]
    return lambda u, x: jax.vjp(g, x)[1](u)[0]


@dataclass
class Rule:
    """One derivative rule under check: ``"fwd"`` maps tangents ``(k, n)`` to ``(k, m)``,
    ``"rev"`` cotangents ``(k, m)`` to ``(k, n)``. ``replay``: it also runs on float64
    inputs; ``analysis`` says what limits that replay (casts, loop tolerances)."""

    label: str
    mode: str
    dtype: np.dtype
    replay: bool = True
    analysis: Analysis | None = None
    skipped: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)
    loop_tol: float = 0.0  # the largest stopping tolerance of a loop in f or in the rule
    provider: Callable[[np.ndarray, bool], np.ndarray] | None = None

    @property
    def eps_w(self) -> float:
        """The working precision of the values the verdict compares."""
        if not self.replay:
            return eps_of(self.dtype)
        return max(REPLAY_EPS, (self.analysis or Analysis()).eps)

    @property
    def eps_noise(self) -> float:
        """The rounding unit of the arithmetic behind those values (perturbations of this
        relative size measure their rounding noise; a loop's tolerance is no rounding)."""
        if not self.replay:
            return eps_of(self.dtype)
        return max(EPS64, (self.analysis or Analysis()).eps)


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


# -- comparisons and the tolerance model -----------------------------------------------------

@dataclass
class Cmp:
    """Your values and the reference for a set of compared quantities.

    ``rows``/``ins``/``outs``: the random direction, input entry and output entry each
    quantity belongs to (-1: none). ``yours`` as computed, ``replay`` in float64;
    ``size`` the magnitude rounding scales with; ``noise_fn`` measures, on demand, the
    rounding noise of the values the verdict uses.
    """

    rows: np.ndarray
    ins: np.ndarray
    outs: np.ndarray
    yours: np.ndarray
    replay: np.ndarray | None
    ref: np.ndarray
    err: np.ndarray
    size: np.ndarray
    engines: dict[str, np.ndarray] = field(default_factory=dict)
    noise_fn: Callable[[], np.ndarray] | None = None
    kink: np.ndarray | None = None  # f is not differentiable there along the direction ...
    lo: np.ndarray | None = None  # ... and the one-sided derivatives bracket [lo, hi]
    hi: np.ndarray | None = None
    forgiven: np.ndarray | None = None  # at a kink, and a valid subgradient
    tol: np.ndarray | None = None
    bad: np.ndarray | None = None
    unresolved: np.ndarray | None = None
    diff: np.ndarray | None = None


def _user_tol(tol: Any, dtype: np.dtype) -> float:
    """A jax-style tolerance (number, or dict keyed by dtype) for ``dtype``; 0 when absent."""
    if tol is None:
        return 0.0
    if isinstance(tol, dict):
        values = {np.dtype(key): _tol_value(value) for key, value in tol.items()}
        return values.get(np.dtype(dtype), 0.0)
    return _tol_value(tol)


def _tol_value(value: Any) -> float:
    """A tolerance as a float; NaN, infinite, negative or non-numbers are a UsageError (a NaN
    tolerance failed every comparison)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise UsageError(f"rtol and atol must be finite numbers >= 0 (or dicts of them keyed "
                         f"by dtype), got {value!r}")
    return v


def _judge(c: Cmp, rule: Rule, rtol: Any, atol: Any) -> Cmp:
    """Tolerance and verdict per quantity (bad / unresolved); the measured rounding noise
    widens the tolerance only where the first comparison fails."""
    use_replay = rule.replay and c.replay is not None
    values = c.replay if use_replay else c.yours
    eps_w = rule.eps_w
    probe = np.zeros_like(c.ref)
    if use_replay and eps_of(rule.dtype) > EPS64:
        with np.errstate(all="ignore"):
            probe = np.nan_to_num(np.abs(c.yours - c.replay) / eps_of(rule.dtype), nan=0.0,
                                  posinf=0.0)
    size = np.where(np.isfinite(c.size), c.size, 0.0)
    floor = max(eps_w, LOOP * rule.loop_tol) * float(np.max(size, initial=0.0))
    user = _user_tol(rtol, rule.dtype) * size + _user_tol(atol, rule.dtype)
    kink = np.zeros(c.ref.shape, bool) if c.kink is None else c.kink
    with np.errstate(all="ignore"):
        base = eps_w * (A_SIZE * size + B_PROBE * probe) + user + floor
        c.tol = np.where(kink, base, c.err + base)
        c.diff = np.where(kink, np.maximum(np.maximum(c.lo - values, values - c.hi), 0.0)
                          if c.lo is not None else np.inf, np.abs(values - c.ref))
        c.unresolved = (~np.isfinite(c.ref) | ~np.isfinite(c.err)) & ~kink
        c.bad = ~(c.diff <= c.tol) & ~c.unresolved
        if c.bad.any() and c.noise_fn is not None:
            c.tol = c.tol + C_NOISE * np.nan_to_num(c.noise_fn(), nan=0.0, posinf=0.0)
            c.bad = ~(c.diff <= c.tol) & ~c.unresolved
        c.bad |= ~np.isfinite(c.yours) & np.isfinite(c.ref)
    c.forgiven = kink & ~c.bad
    return c


def _excess(c: Cmp) -> np.ndarray:
    """|diff| / tol per quantity: 0 where unresolved, inf where yours is not finite."""
    with np.errstate(all="ignore"):
        ex = np.where(c.unresolved, 0.0, c.diff / np.maximum(c.tol, np.finfo(float).tiny))
        return np.where(np.isfinite(c.yours) | c.unresolved, np.nan_to_num(ex, nan=np.inf),
                        np.inf)


# -- the shared evaluation of one function's reference and rules -----------------------------

@dataclass
class Compiled:
    """A checked function's analyses and compiled programs, kept for its next check (like
    ``jax.jit``'s cache: keyed by the function object and the arguments' structure, shapes,
    dtypes and non-differentiated leaves)."""

    fn: Fn
    F: Callable
    analysis: Analysis
    widened: str
    replays: dict
    wide: Program
    low: Program


_COMPILED: OrderedDict = OrderedDict()
CACHE_SIZE = 8


def _fixed_signature(leaf: Any) -> Any:
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        arr = np.asarray(leaf)
        return (arr.shape, str(arr.dtype), hash(arr.tobytes()))
    return (type(leaf).__name__, repr(leaf))


def _cache_key(f: Callable, inputs: Inputs, modes: tuple[str, ...], eps: Any) -> Any:
    """The key of a check of ``f`` at arguments like ``inputs`` (None: not cacheable)."""
    fixed = tuple(_fixed_signature(leaf) for i, leaf in enumerate(inputs.leaves)
                  if i not in set(inputs.vary))
    key = (f, inputs.flat.paths, inputs.flat.shapes, tuple(map(str, inputs.flat.dtypes)),
           fixed, modes, eps, bool(jax.config.jax_enable_x64))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _remember(key: Any, compiled: Compiled) -> None:
    _COMPILED[key] = compiled
    _COMPILED.move_to_end(key)
    while len(_COMPILED) > CACHE_SIZE:
        _COMPILED.popitem(last=False)


class Ctx:
    """One function under check: its float64 reference, the programs evaluating the rules
    (as computed and replayed), the random directions, and the dense reference columns."""

    def __init__(self, fn: Fn, inputs: Inputs, modes: Sequence[str], *, k: int, seed: int,
                 h0: float | None, rtol: Any, atol: Any, operators: bool = True,
                 compiled: Compiled | None = None):
        self.fn, self.inputs, self.seed = fn, inputs, seed
        self.rtol, self.atol = rtol, atol
        n, m = inputs.size, fn.out.size
        if compiled is not None:  # the same function again: analyses and programs reused
            self.F, self.analysis, self.widened = compiled.F, compiled.analysis, compiled.widened
            self.replays, self.wide, self.low = compiled.replays, compiled.wide, compiled.low
        else:
            with x64():
                self.F, self.analysis, self.widened = widen(fn.wide, jnp.asarray(inputs.x))
                self.replays = {mode: self._replay(mode)
                                for mode in (modes if operators else ())}
            self.wide, self.low = self._programs(modes if operators else (), h0)
        # the point, sent to the device once (in float64) for both programs
        with x64():
            self.wide.x = self.low.x = jax.device_put(inputs.x) if n > DENSE else inputs.x
        cplx = "F" in self.wide.parts and self.wide.parts["F"].tag == "complex"
        self.ref = Reference(inputs.x, eps=self.analysis.eps, h0=h0, complex_step=cplx)
        Z, W = _draws(seed, k, n, m)
        T = _scratch(f"T of {fn.label}", Z.shape) if inputs.reused else np.empty(Z.shape)
        self.T = _directions(inputs.flat, Z, inputs.scale, T)
        self.U = _round(fn.out.flat, W)
        self._columns: dict[tuple[int, int], tuple[Along, dict]] = {}
        self.along, self.first = self.run(self.T, fwd=self.T, rev=self.U)
        self.rules = [self._rule(mode) for mode in modes] if operators else []
        _finite_value(self.along.f0[0] if len(self.T) else np.zeros(0), fn.out)

    def compiled(self) -> Compiled:
        """What a later check of the same function at another point can reuse."""
        return Compiled(self.fn, self.F, self.analysis, self.widened, self.replays, self.wide,
                        self.low)

    def _replay(self, mode: str) -> tuple[Callable, Analysis | None, str, BaseException | None]:
        """The rule in float64 (casts removed where possible), its analysis, a note."""
        width = self.n if mode == "fwd" else self.m
        try:
            g, a, note = widen(_apply(mode, self.fn.wide), jnp.zeros(width),
                               jnp.asarray(self.inputs.x))
            return g, a, note, None
        except Exception as exc:  # noqa: BLE001 - judged when the rule is evaluated
            return _apply(mode, self.fn.wide), None, "", exc

    @property
    def n(self) -> int:
        return self.inputs.size

    @property
    def m(self) -> int:
        return self.fn.out.size

    def _programs(self, modes: Sequence[str], h0: float | None
                  ) -> tuple[Program, Program]:
        n, m = self.inputs.size, self.fn.out.size
        big = n > 10 ** 5
        plain = Reference(self.inputs.x, h0=h0)
        with x64():
            real = Part(plain.ladder(self.F, complex_step=False, sequential=big), jnp.float64,
                        chunk_for(n * plain.points), tag="real")
            cplx = Part(plain.ladder(self.F, complex_step=True, sequential=big), jnp.float64,
                        chunk_for(2 * n * (plain.points + 1)), fallback=real, tag="complex")
        wide = {"F": cplx if self.analysis.analytic and not big else real}
        low, widths = {}, {"F": n}
        for mode in modes:
            widths[mode] = n if mode == "fwd" else m
            rows = self.inputs.dtype if mode == "fwd" else self.fn.out.dtype
            chunk = 1 if big else chunk_for(max(n, m), 8)
            wide[mode] = Part(self.replays[mode][0], jnp.float64, chunk)
            low[mode] = Part(_apply(mode, self.fn.low), rows, chunk)
        return (Program(wide, self.inputs.x, wide=True, x_dtype=jnp.float64, widths=widths,
                        fast_compile=not big),
                Program(low, self.inputs.x, wide=False, x_dtype=self.inputs.dtype,
                        widths=widths, fast_compile=not big))

    def _rule(self, mode: str) -> Rule:
        label = ("JVP" if mode == "fwd" else "VJP") + ("" if self.fn.label == "f" else
                                                       f" of {self.fn.label}")
        dtype = _least(list(self.inputs.flat.dtypes) + list(self.fn.out.flat.dtypes))
        rule = Rule(label, mode, dtype)
        if mode not in self.low.parts:
            exc = self.low.dropped.get(mode)
            if exc is not None and _NO_FWD in str(exc):
                rule.skipped = ("f uses jax.custom_vjp, which has no forward mode (jax.jvp "
                                "raises); not checked")
            else:
                rule.error = f"JAX raised evaluating {label}: {type(exc).__name__}: {_short(exc)}"
            return rule
        if mode not in self.wide.parts:
            exc = self.wide.dropped.get(mode)
            rule.replay = False
            rule.notes.append(f"your rule could not be replayed in float64 ({type(exc).__name__}"
                              f": {_short(exc)}); compared as computed in {dtype.name}")
            return rule
        rule.analysis, note = self.replays[mode][1], self.replays[mode][2]
        rule.loop_tol = max(self.analysis.tol, rule.analysis.tol if rule.analysis else 0.0)
        if note:
            rule.notes.append(f"your rule has {note}: its float64 replay evaluates it with "
                              "them removed")
        if rule.analysis is not None and rule.analysis.casts:
            rule.notes.append(f"the float64 replay of your rule has {rule.analysis.describe()}"
                              f": the verdict allows for a precision of {rule.eps_w:.1e}")
        if rule.loop_tol:
            rule.notes.append(f"a loop stops at a tolerance of {rule.loop_tol:g}: differences "
                              f"up to {LOOP * rule.loop_tol:.1e} x the largest entry are allowed")
        return rule

    def run(self, T: np.ndarray | None, *, at: np.ndarray | None = None, wide: bool = True,
            low: bool = True, **rows: np.ndarray | None) -> tuple[Along | None, dict]:
        """The reference along ``T`` and the rules on ``rows`` (``fwd=``, ``rev=``), in one
        call of each program: ``{mode: (as computed, replayed or None)}``."""
        want = {k: v for k, v in rows.items() if v is not None and k in self.low.parts}
        wide_rows = {k: v for k, v in want.items() if wide and k in self.wide.parts}
        out_w = self.wide(at=at, F=T, **wide_rows)
        out_l = self.low(at=at, **want) if low and want else {}
        along = None if T is None else self.ref.finish(T, out_w["F"])
        res = {k: (_f64(out_l.get(k)), _f64(out_w.get(k))) for k in want
               if k in self.low.parts}  # a rule JAX could not evaluate is left out
        return along, res

    def columns(self, lo: int, hi: int, **rows: Any) -> tuple[np.ndarray, Along, dict]:
        """Reference columns ``lo..hi-1`` of the Jacobian (along the scaled basis ``C``),
        with the rules evaluated on the rows given (``fwd=True`` means ``C``): one call for
        what is not known yet, then kept."""
        b = hi - lo
        C = np.zeros((b, self.n))
        C[np.arange(b), np.arange(lo, hi)] = self.inputs.scale[lo:hi]
        C = _round(self.inputs.flat, C)
        along, res = self._columns.get((lo, hi), (None, {}))
        need = {k: (C if v is True else v) for k, v in rows.items()
                if v is not None and k not in res}
        if along is None or need:
            new_along, new = self.run(C if along is None else None, **need)
            along = along if along is not None else new_along
            res = {**res, **new}
            self._columns[(lo, hi)] = (along, res)
        return C, along, res

    def dense(self) -> None:
        """Every entry's reference and every rule's columns (rows) in one call, before the
        rules are judged (so the compiled program of the first call serves)."""
        rows: dict[str, Any] = {}
        for rule in self.rules:
            if not (rule.skipped or rule.error):
                rows[rule.mode] = True if rule.mode == "fwd" else (
                    _round(self.fn.out.flat, np.eye(self.m)) if self.m <= DENSE_OUT else None)
        self.columns(0, self.n, **rows)


@functools.lru_cache(maxsize=4)
def _draws(seed: int, k: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The random directions' standard normal draws, ``(k, n)`` then ``(k, m)``: the same
    for every check with this seed and these sizes, so kept (drawing a million normals
    costs more than a jitted gradient of a million-parameter model). Read-only."""
    rng = np.random.default_rng(seed)
    Z, W = rng.standard_normal((k, n)), rng.standard_normal((k, m))
    Z.flags.writeable = W.flags.writeable = False
    return Z, W


def _finite_value(f0: np.ndarray, out: Space) -> None:
    bad = ~np.isfinite(f0)
    if bad.any():
        first = out.name(int(np.argmax(bad)))
        raise DomainError(f"f is not finite at the given arguments ({int(bad.sum())} of "
                          f"{bad.size} output entries, first {first}); check they lie in f's "
                          "domain")


def _f64(a: Any) -> np.ndarray | None:
    """Values for NumPy arithmetic in float64: float32 as it is (NumPy widens it exactly
    wherever it meets float64; a million-entry copy costs more than that), float16 and
    bfloat16 widened."""
    if a is None:
        return None
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _spread(values: Callable[[np.ndarray], np.ndarray], inputs: Inputs, eps: float,
            seed: int) -> np.ndarray:
    """Rounding noise of ``values(x)``: its change when x moves by ``eps`` relative."""
    rng = np.random.default_rng(seed + 7)
    v0 = values(inputs.x)
    worst = np.zeros_like(v0)
    for _ in range(2):
        xp = inputs.x * (1 + 2 * eps * rng.choice([-1.0, 1.0], inputs.size))
        xp = _round(inputs.flat, xp) if eps > EPS64 else xp
        with np.errstate(all="ignore"):
            worst = np.maximum(worst, np.abs(values(xp) - v0))
    return worst


def _values_at(ctx: Ctx, rule: Rule, P: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The verdict values of ``rule`` on rows ``P`` as a function of the point."""
    if rule.provider is not None:
        return lambda x: rule.provider(P, x, rule.replay)

    def at(x: np.ndarray) -> np.ndarray:
        _, res = ctx.run(None, at=x, wide=rule.replay, low=not rule.replay,
                         **{rule.mode: P})
        yours, replay = res[rule.mode]
        return replay if rule.replay else yours
    return at


def _noise(ctx: Ctx, rule: Rule, P: np.ndarray, post: Callable[[np.ndarray], np.ndarray]
           ) -> Callable[[], np.ndarray]:
    values = _values_at(ctx, rule, P)
    return lambda: _spread(lambda x: post(values(x)), ctx.inputs, rule.eps_noise, ctx.seed)


def _rule_values(ctx: Ctx, rule: Rule, P: np.ndarray, res: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Your rule on rows ``P`` at x: as computed and replayed (from ``res`` if given)."""
    if rule.provider is not None:
        return rule.provider(P, None, False), (rule.provider(P, None, True)
                                               if rule.replay else None)
    if res is None or rule.mode not in res:
        _, res = ctx.run(None, **{rule.mode: P})
    yours, replay = res[rule.mode]
    return yours, (replay if rule.replay else None)


# -- the comparisons -------------------------------------------------------------------------

def _directional(ctx: Ctx, rule: Rule) -> tuple[Cmp, np.ndarray, np.ndarray | None]:
    """Random tangents (JVP) or cotangents (VJP) against the reference along ``ctx.T``."""
    a, T, U = ctx.along, ctx.T, ctx.U
    k = len(T)
    if rule.mode == "fwd":
        Y, Y64 = _rule_values(ctx, rule, T, ctx.first)
        rows, outs = np.divmod(np.arange(k * ctx.m), ctx.m)
        c = Cmp(rows, np.full(k * ctx.m, -1), outs, Y.ravel(), _ravel(Y64), a.value.ravel(),
                a.error.ravel(), np.abs(a.value).ravel(), _engines(a))
        c.noise_fn = _noise(ctx, rule, T, np.ravel)
        return _kinks(c, a), Y, Y64
    X, X64 = _rule_values(ctx, rule, U, ctx.first)
    s, s64, size = _dots(X, X64, T)
    ref = np.sum(U * a.value, axis=1)
    err = np.sum(np.abs(U) * a.error, axis=1)
    size = np.maximum(size, np.abs(ref))
    c = Cmp(np.arange(k), np.full(k, -1), np.full(k, -1), s, s64, ref, err, size)
    c.noise_fn = _noise(ctx, rule, U, lambda V: np.sum(V * T, axis=1))
    if a.kink is not None and a.kink.any():  # row j: u_j . [lo_j, hi_j]
        lo, hi = a.bracket
        c.lo = np.sum(np.minimum(U * lo, U * hi), axis=1)
        c.hi = np.sum(np.maximum(U * lo, U * hi), axis=1)
        c.kink = np.any(a.kink & (U != 0), axis=1)
    return c, X, X64


def _dots(X: np.ndarray, X64: np.ndarray | None, T: np.ndarray, block: int = STEP
          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Per row: ``X . T``, ``X64 . T``, and ``|V| . |T|`` for the verdict's values ``V``.

    Block by block through one small buffer: these rows can hold a million entries, and a
    fresh temporary that size costs more than the arithmetic (page faults, and unmapping
    it interrupts the threads of the JAX programs just run). Each block is summed pairwise.

    >>> X = np.array([[1.0, -2.0, 3.0]])
    >>> _dots(X, X, np.ones((1, 3)), block=2)
    (array([2.]), array([2.]), array([6.]))
    """
    k, n = T.shape
    s, size = np.zeros(k), np.zeros(k)
    s64 = None if X64 is None else np.zeros(k)
    buf = np.empty((k, min(block, n)))
    for a in range(0, n, block):
        b = min(a + block, n)
        P = buf[:, :b - a]
        s += np.sum(np.multiply(X[:, a:b], T[:, a:b], out=P), axis=1)
        if s64 is not None:
            s64 += np.sum(np.multiply(X64[:, a:b], T[:, a:b], out=P), axis=1)
        size += np.sum(np.abs(P, out=P), axis=1)
    return s, s64, size


def _kinks(c: Cmp, a: Along, U: np.ndarray | None = None, s: np.ndarray | None = None,
           transpose: bool = False) -> Cmp:
    """Attach the one-sided brackets of ``a`` (combined by cotangent rows ``U``, scaled by
    ``1/s`` per direction) to the comparison where f has a kink."""
    if a.kink is None or not a.kink.any():
        return c
    lo, hi = a.bracket
    lo, hi, kink = np.nan_to_num(lo), np.nan_to_num(hi), a.kink
    if s is not None:
        lo, hi = lo / s[:, None], hi / s[:, None]
    if U is not None:  # interval sums u . [lo, hi] over the outputs: (rows of U, columns)
        a_lo, a_hi = U[:, None] * lo, U[:, None] * hi
        lo, hi = np.minimum(a_lo, a_hi).sum(-1), np.maximum(a_lo, a_hi).sum(-1)
        kink = ((U[:, None] != 0) & kink).any(-1)
    elif transpose:
        lo, hi, kink = lo.T, hi.T, kink.T
    c.lo, c.hi, c.kink = lo.ravel(), hi.ravel(), kink.ravel()
    return c


def _ravel(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.ravel()


def _engines(a: Along) -> dict[str, np.ndarray]:
    out = {"finite": a.fd.ravel()}
    if a.cs is not None:
        out["complex"] = a.cs.ravel()
    return out


def _dense(ctx: Ctx, rule: Rule, X: np.ndarray, X64: np.ndarray | None) -> Cmp:
    """Every entry: the reference's columns against your JVP columns or VJP rows."""
    if rule.mode == "fwd":
        return _fwd_block(ctx, rule, 0, ctx.n)
    if ctx.m > DENSE_OUT:
        C, a, _ = ctx.columns(0, ctx.n)
        return _rev_block(ctx, rule, X, X64, a, C, np.arange(ctx.n), np.arange(len(ctx.U)))
    I = _round(ctx.fn.out.flat, np.eye(ctx.m))  # noqa: E741
    C, a, res = ctx.columns(0, ctx.n, rev=I)  # known already from ctx.dense()
    X, X64 = _rule_values(ctx, rule, I, res)
    s = np.sum(C, axis=1)
    J, E = a.value.T / s, a.error.T / s  # (m, n)
    outs, ins = np.divmod(np.arange(ctx.m * ctx.n), ctx.n)
    c = Cmp(np.full(outs.size, -1), ins, outs, X.ravel(), _ravel(X64), J.ravel(), E.ravel(),
            np.abs(J).ravel(), _scaled(a, s, transpose=True))
    c.noise_fn = _noise(ctx, rule, I, np.ravel)
    return _kinks(c, a, s=s, transpose=True)


def _scaled(a: Along, s: np.ndarray, transpose: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for name, v in (("finite", a.fd), ("complex", a.cs)):
        if v is not None:
            J = v / s[:, None]
            out[name] = (J.T if transpose else J).ravel()
    return out


def _fwd_block(ctx: Ctx, rule: Rule, lo: int, hi: int) -> Cmp:
    """Columns ``lo..hi-1``: your JVP along each (scaled) basis direction."""
    C, a, res = ctx.columns(lo, hi, fwd=True if rule.provider is None else None)
    Y, Y64 = _rule_values(ctx, rule, C, res)
    s = np.sum(C, axis=1)[:, None]
    J, E = a.value / s, a.error / s  # (b, m)
    ins, outs = np.divmod(np.arange(J.size), ctx.m)
    c = Cmp(np.full(J.size, -1), np.arange(lo, hi)[ins], outs, (Y / s).ravel(),
            None if Y64 is None else (Y64 / s).ravel(), J.ravel(), E.ravel(),
            np.abs(J).ravel(), _scaled(a, s[:, 0]))
    c.noise_fn = _noise(ctx, rule, C, lambda V: (V / s).ravel())
    return _kinks(c, a, s=s[:, 0])


def _rev_block(ctx: Ctx, rule: Rule, X: np.ndarray, X64: np.ndarray | None, a: Along,
               C: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> Cmp:
    """VJP entries ``cols`` for the cotangents ``rows``: yours against ``u . J[:, i]``."""
    U = ctx.U[rows]
    s = np.sum(C, axis=1)
    ref = (U @ a.value.T) / s  # (r, b)
    err = (np.abs(U) @ a.error.T) / s
    r, b = ref.shape
    rr, ii = np.divmod(np.arange(r * b), b)
    pick = lambda M: None if M is None else M[rows][:, cols].ravel()  # noqa: E731
    engines = {name: ((U @ v.T) / s).ravel() for name, v in (("finite", a.fd),
                                                               ("complex", a.cs))
               if v is not None}
    c = Cmp(rows[rr], cols[ii], np.full(r * b, -1), pick(X), pick(X64), ref.ravel(),
            err.ravel(), np.abs(ref).ravel(), engines)
    c.noise_fn = _noise(ctx, rule, ctx.U, lambda V: V[rows][:, cols].ravel())
    return _kinks(c, a, U=U, s=s)


# -- localisation by bisection ---------------------------------------------------------------

def _blocks(ctx: Ctx) -> list[tuple[int, int]]:
    off = ctx.inputs.flat.offsets
    if 1 < len(off) - 1 <= 64:
        return [(int(off[i]), int(off[i + 1])) for i in range(len(off) - 1)
                if off[i + 1] > off[i]]
    return _halves(0, ctx.n)


def _halves(lo: int, hi: int) -> list[tuple[int, int]]:
    mid = (lo + hi) // 2
    return [(lo, mid), (mid, hi)]


def _cut(t: np.ndarray, lo: int, hi: int) -> np.ndarray:
    out = np.zeros_like(t)
    out[lo:hi] = t[lo:hi]
    return out


def _block_excess(ctx: Ctx, rule: Rule, j: int, X: np.ndarray, X64: np.ndarray | None,
                  blocks: list[tuple[int, int]]) -> np.ndarray:
    """How far outside its tolerance your derivative is along direction j cut to each block."""
    Ts = np.stack([_cut(ctx.T[j], lo, hi) for lo, hi in blocks])
    fwd = rule.mode == "fwd" and rule.provider is None
    a, res = ctx.run(Ts, low=not rule.replay, **({"fwd": Ts} if fwd else {}))
    if rule.mode == "fwd":
        Y, Y64 = _rule_values(ctx, rule, Ts, res)
        Y = Y64 if Y is None else Y  # only the verdict's values were evaluated
        c = Cmp(*([np.zeros(Y.size, int)] * 3), Y.ravel(), _ravel(Y64), a.value.ravel(),
                a.error.ravel(), np.abs(a.value).ravel())
    else:
        u = ctx.U[j]
        V = X[j] if X64 is None else X64[j]
        ref, err = a.value @ u, a.error @ np.abs(u)
        c = Cmp(*([np.zeros(len(Ts), int)] * 3), Ts @ X[j], None if X64 is None else Ts @ V,
                ref, err, np.maximum(np.abs(Ts) @ np.abs(V), np.abs(ref)))
    _judge(c, rule, ctx.rtol, ctx.atol)
    return np.max(_excess(c).reshape(len(blocks), -1), axis=1)


def _localise(ctx: Ctx, rule: Rule, j: int, X: np.ndarray, X64: np.ndarray | None) -> Cmp:
    """Bisect direction j down to a block of entries, then check each entry of it."""
    blocks = _blocks(ctx)
    while True:
        lo, hi = blocks[int(np.argmax(_block_excess(ctx, rule, j, X, X64, blocks)))]
        if hi - lo <= BLOCK:
            break
        blocks = _halves(lo, hi)
    if rule.mode == "fwd":
        return _fwd_block(ctx, rule, lo, hi)
    C, a, _ = ctx.columns(lo, hi)
    return _rev_block(ctx, rule, X, X64, a, C, np.arange(lo, hi), np.array([j]))


# -- one rule, end to end --------------------------------------------------------------------

@dataclass
class Entry:
    """One compared quantity: its name, your value (and its float64 replay), the reference."""

    name: str
    yours: float
    replay: float | None
    reference: float
    tol: float
    engines: dict[str, float] = field(default_factory=dict)
    input: str | None = None

    @property
    def diff(self) -> float:
        return abs((self.replay if self.replay is not None else self.yours) - self.reference)


@dataclass
class ModeReport:
    """The verdict on one rule (JVP, VJP, JVP of VJP, ...)."""

    label: str
    ok: bool
    checked: int = 0
    n_bad: int = 0
    unresolved: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    replay_rel_error: float | None = None
    worst: list[Entry] = field(default_factory=list)
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    dtype: str = ""
    localised: bool = False
    error: str = ""  # JAX could not evaluate the rule


def _check_rule(ctx: Ctx, rule: Rule) -> ModeReport:
    if rule.skipped:
        return ModeReport(rule.label, True, skipped=rule.skipped)
    if rule.error:
        return ModeReport(rule.label, False, error=rule.error)
    d, X, X64 = _directional(ctx, rule)
    cmps = [_judge(d, rule, ctx.rtol, ctx.atol)]
    localised = False
    if ctx.n <= DENSE:
        cmps.append(_judge(_dense(ctx, rule, X, X64), rule, ctx.rtol, ctx.atol))
    elif d.bad.any():
        with np.errstate(all="ignore"):
            ex = np.where(d.bad, d.diff / np.maximum(d.tol, np.finfo(float).tiny), -1.0)
        j = int(d.rows[int(np.argmax(ex))])
        cmps.append(_judge(_localise(ctx, rule, j, X, X64), rule, ctx.rtol, ctx.atol))
        localised = True
    rep = _summarise(ctx, rule, cmps)
    rep.localised = localised
    return rep


def _summarise(ctx: Ctx, rule: Rule, cmps: list[Cmp]) -> ModeReport:
    rep = ModeReport(rule.label, True, dtype=np.dtype(rule.dtype).name, notes=list(rule.notes))
    bad: list[tuple[float, Entry]] = []
    good: list[tuple[float, Entry]] = []
    replay_rel = []
    for c in cmps:
        ok = ~c.unresolved
        with np.errstate(all="ignore"):
            diff = _distance(c, c.yours)
            rel = _relative(diff, c.size)
            if c.replay is not None:
                replay_rel.append(np.max(np.where(ok, _relative(_distance(c, c.replay),
                                                                c.size), 0.0), initial=0.0))
            excess = np.nan_to_num(c.diff / np.maximum(c.tol, np.finfo(float).tiny), nan=np.inf)
        rep.checked += int(ok.sum())
        rep.n_bad += int(c.bad.sum())
        rep.unresolved += int(c.unresolved.sum())
        rep.max_abs_error = max(rep.max_abs_error, float(np.nanmax(diff[ok], initial=0.0)))
        rep.max_rel_error = max(rep.max_rel_error, float(np.nanmax(rel[ok], initial=0.0)))
        for i in _top(np.where(c.bad, excess, -1.0)):
            bad.append((float(excess[i]), _entry(ctx, c, int(i))))
        for i in _top(np.where(ok & ~c.bad & (c.ins >= 0), np.nan_to_num(rel), -1.0)):
            good.append((float(rel[i]), _entry(ctx, c, int(i))))
    if replay_rel and rule.replay:
        rep.replay_rel_error = float(max(replay_rel))
    forgiven = sum(int(np.sum(c.forgiven)) for c in cmps if c.forgiven is not None)
    if forgiven:
        rep.notes.append(f"f has a kink at x along {forgiven} of the compared quantities: "
                         "your values lie between the one-sided derivatives there (a valid "
                         "subgradient), so they are not counted as errors")
    rep.ok = rep.n_bad == 0 and rep.checked > 0
    if rep.checked == 0:
        rep.notes.append("the reference could not be resolved anywhere: nothing was compared")
    elif rep.unresolved:
        rep.notes.append(f"{rep.unresolved} quantities could not be resolved by the reference "
                         "(steps leave the domain, or a kink); they are not counted")
    located = [b for b in bad if b[1].input is not None]
    shown = located or bad or good  # entries by name first; random directions otherwise
    shown.sort(key=lambda p: -p[0])
    rep.worst = [e for _, e in shown[:SHOW]]
    return rep


def _distance(c: Cmp, values: np.ndarray) -> np.ndarray:
    """|values - reference|; at a kink, the distance from the one-sided derivatives' bracket."""
    with np.errstate(all="ignore"):
        d = np.abs(values - c.ref)
        if c.kink is not None and c.lo is not None:
            d = np.where(c.kink, np.maximum(np.maximum(c.lo - values, values - c.hi), 0.0), d)
    return d


def _relative(diff: np.ndarray, size: np.ndarray) -> np.ndarray:
    """|diff| / size: 0 where equal, inf where the size is 0 and the values differ."""
    with np.errstate(all="ignore"):
        return np.where(diff == 0, 0.0, np.where(size > 0, diff / size, np.inf))


def _top(score: np.ndarray) -> np.ndarray:
    """Indices of the SHOW largest non-negative scores."""
    idx = np.argsort(-score, kind="stable")[:SHOW]
    return idx[score[idx] >= 0]


def _entry(ctx: Ctx, c: Cmp, i: int) -> Entry:
    parts = []
    if c.rows[i] >= 0:
        parts.append(f"direction {int(c.rows[i])}")
    if c.outs[i] >= 0 and ctx.m > 1:
        parts.append(ctx.fn.out.name(int(c.outs[i])))
    inp = ctx.inputs.name(int(c.ins[i])) if c.ins[i] >= 0 else None
    name = " wrt ".join(p for p in (", ".join(parts), inp) if p) or "value"
    replay = None if c.replay is None else float(c.replay[i])
    engines = {k: float(v[i]) for k, v in c.engines.items()}
    return Entry(name, float(c.yours[i]), replay, float(c.ref[i]), float(c.tol[i]), engines,
                 inp)


# -- check_grads -----------------------------------------------------------------------------

@dataclass
class GradsResult:
    """The verdict of :func:`check_grads`: truthy when every checked rule is right.

    ``modes`` has one :class:`ModeReport` per rule checked (``JVP``, ``VJP``, and for
    ``order=2`` ``JVP of JVP``, ``VJP of JVP``, ...); ``worst`` names the worst entry
    (``args[0]['W1'][3, 2]``); ``max_abs_error`` / ``max_rel_error`` are those of your
    derivatives as computed (in their own dtype) against the float64 reference.
    """

    ok: bool
    modes: list[ModeReport]
    max_abs_error: float
    max_rel_error: float
    worst: str | None
    order: int
    dtype: str
    seed: int
    layout: str
    reference: str
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return render(self)

    def mode(self, label: str) -> ModeReport:
        """The report of one rule, by label (``"JVP"``, ``"VJP of JVP"``, ...)."""
        for m in self.modes:
            if m.label == label:
                return m
        raise KeyError(f"no mode {label!r}; checked: {', '.join(m.label for m in self.modes)}")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v: .6e}"


def _mode_line(m: ModeReport) -> str:
    if m.skipped:
        return f"  {m.label:<12} skipped: {m.skipped}"
    if m.error:
        return f"  {m.label:<12} FAILED: {m.error}"
    if not m.checked:
        return f"  {m.label:<12} FAILED: nothing could be compared (see the notes)"
    verdict = "OK" if m.ok else f"FAILED ({m.n_bad} of {m.checked} outside tolerance)"
    line = (f"  {m.label:<12} {verdict}: {m.checked} quantities, max rel error "
            f"{m.max_rel_error:.1e} as computed in {m.dtype}")
    if m.replay_rel_error is not None:
        line += f", {m.replay_rel_error:.1e} replayed in float64"
    return line + (" (localised by bisection)" if m.localised else "")


def _table(m: ModeReport) -> list[str]:
    names = sorted({k for e in m.worst for k in e.engines})
    w = max([14] + [len(e.name) + 2 for e in m.worst])
    cols = ["entry".ljust(w), "yours".ljust(15), "replayed f64".ljust(15),
            "reference".ljust(15)] + [n.ljust(15) for n in names] + ["|diff|".ljust(10), "tol"]
    lines = [f"  worst entries ({m.label}):", "    " + "".join(cols)]
    for e in m.worst:
        row = [e.name.ljust(w), _fmt(e.yours).ljust(15), _fmt(e.replay).ljust(15),
               _fmt(e.reference).ljust(15)] + [_fmt(e.engines.get(n)).ljust(15) for n in names]
        row += [f"{e.diff:.2e}".ljust(10), f"{e.tol:.2e}"]
        lines.append("    " + "".join(row))
    return lines


def render(res: GradsResult) -> str:
    """The readable text of a :class:`GradsResult`."""
    failed = [m for m in res.modes if not m.ok and not m.skipped]
    head = "OK" if res.ok else "FAILED: " + ", ".join(m.label for m in failed) + \
        (" wrong" if len(failed) != 1 else " is wrong")
    if not res.ok and res.worst:
        head += f" (worst entry {res.worst})"
    lines = [f"check_grads: {head}",
             f"  {res.layout}; computed in {res.dtype}; order {res.order}; seed {res.seed}",
             f"  reference: {res.reference}"]
    lines += [_mode_line(m) for m in res.modes]
    for m in res.modes:
        if m.worst and (not m.ok or res.ok):
            lines += _table(m)
            if res.ok:
                break
    notes = list(res.notes) + [f"{m.label}: {n}" for m in res.modes for n in m.notes]
    lines += [f"  note: {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)


def _as_args(args: Any) -> tuple:
    if isinstance(args, list | tuple) and not hasattr(type(args), "_fields"):
        return tuple(args)
    raise UsageError("args must be a tuple of arguments, f(*args), as for "
                     f"jax.test_util.check_grads; got {type(args).__name__} (wrap one "
                     "argument as (x,))")


def _modes(modes: Any) -> tuple[str, ...]:
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    bad = [m for m in modes if m not in ("fwd", "rev")]
    if bad or not modes:
        raise UsageError(f"modes must be a non-empty subset of ('fwd', 'rev'); got {modes!r}")
    return modes


@dataclass
class _Opts:
    k: int
    seed: int
    h0: float | None
    rtol: Any
    atol: Any


def _derived(fn: Fn, ctx: Ctx, inputs: Inputs, mode: str, label: str) -> Fn:
    """The rule ``label`` as a function of the inputs, for derivatives of derivatives."""
    if mode == "fwd":
        t = ctx.T[0]
        return Fn(label, lambda v: jax.jvp(fn.low, (v,), (jnp.asarray(t, v.dtype),))[1],
                  lambda v: jax.jvp(fn.wide, (v,), (jnp.asarray(t, v.dtype),))[1], fn.out)
    u = ctx.U[0]
    out = Space(inputs.flat, inputs.root)
    return Fn(label,
              lambda v: jax.vjp(fn.low, v)[1](jnp.asarray(u, fn.out.dtype))[0],
              lambda v: jax.vjp(fn.wide, v)[1](jnp.asarray(u, jnp.float64))[0], out)


def _check_fn(fn: Fn, inputs: Inputs, order: int, modes: tuple[str, ...], o: _Opts,
              reports: list[ModeReport], ctxs: list[Ctx], compiled: Compiled | None = None
              ) -> None:
    ctx = Ctx(fn, inputs, modes, k=o.k, seed=o.seed, h0=o.h0, rtol=o.rtol, atol=o.atol,
              compiled=compiled)
    ctxs.append(ctx)
    if ctx.n <= DENSE:
        ctx.dense()
    for rule in ctx.rules:
        rep = _check_rule(ctx, rule)
        reports.append(rep)
        if order > 1 and not rep.skipped and not rule.error:
            _check_fn(_derived(fn, ctx, inputs, rule.mode, rule.label), inputs, order - 1,
                      modes, o, reports, ctxs)


def _reference_text(ctx: Ctx, k: int) -> str:
    a = ctx.analysis
    how = "finite differences (Richardson)"
    if ctx.ref.complex:
        how = "complex step, checked by finite differences (Richardson)"
    text = (f"{how} of f in float64 (jax.enable_x64 for the reference only), along {k} "
            f"random direction{'s' if k > 1 else ''}")
    text += " and per entry" if ctx.n <= DENSE else ", bisected to the entry on failure"
    if not ctx.ref.complex and a.blockers:
        text += f"; no complex step ({', '.join(sorted(a.blockers)[:4])})"
    return text


def _reference_notes(ctx: Ctx, reports: list[ModeReport]) -> list[str]:
    a, notes = ctx.analysis, []
    if ctx.widened:
        notes.append(f"f has {ctx.widened}: the reference evaluates it with them removed "
                     "(float64 throughout), so its rounding does not blur the reference")
    if a.casts and not ctx.widened:
        notes.append(f"f has {a.describe()}: its float64 evaluation is only that accurate; "
                     "the reference's error bounds and the tolerance allow for it")
    if ctx.along.cs_disagrees:
        notes.append("the complex step disagreed with finite differences (f is not analytic "
                     "here); finite differences are the reference")
    replayed = [m for m in reports if m.replay_rel_error is not None]
    if replayed and len(replayed) == len([m for m in reports if not m.skipped]):
        notes.append("your rules were replayed on float64 inputs: rounding is separated from "
                     "error, so the verdict holds down to float64's accuracy")
    return notes


def _worst(reports: list[ModeReport]) -> str | None:
    failing = [m for m in reports if not m.ok and not m.skipped]
    for m in failing or [m for m in reports if not m.skipped]:
        for e in m.worst:
            if e.input is not None:
                return e.input
    return None


def check_grads(f: Callable, args: Sequence[Any], order: int = 1,
                modes: Sequence[str] = ("fwd", "rev"), *, rtol: Any = None, atol: Any = None,
                eps: float | None = None, seed: int = 0, directions: int | None = None
                ) -> GradsResult:
    """Check JAX's derivatives of ``f`` at ``args`` (so its custom rules) against float64
    references; a drop-in for ``jax.test_util.check_grads`` that returns a result.

    ``"fwd"`` compares ``jax.jvp`` along random tangents, ``"rev"`` ``jax.vjp`` along random
    cotangents, with finite differences (and the complex step where ``f`` is analytic) of
    ``f`` evaluated in float64; with up to 128 inputs every entry is also checked, above
    that a failing direction is bisected down to the entry. The rules are replayed on
    float64 inputs, so correct float32 / float16 / bfloat16 rules are not flagged and bugs
    below those dtypes' rounding are still caught. ``order=2`` also checks derivatives of the
    derivatives (``JVP of JVP``, ``VJP of VJP``, ...). A ``custom_vjp`` function has no
    forward mode: ``"fwd"`` is then skipped with a note.

    Args:
        f: a JAX function; ``f(*args)`` returns an array or a pytree of arrays.
        args: tuple of arguments, each an array or a pytree of arrays (integer leaves
            are held fixed).
        order: derivatives up to this order are checked.
        modes: ``"fwd"`` and/or ``"rev"``.
        rtol, atol: added to the derived tolerance; a number, or a dict keyed by dtype as
            ``jax.test_util`` takes (``{np.float32: 1e-3}``), applied for the dtype ``f``
            computes in.
        eps: the largest finite-difference step (relative to the scaled direction);
            default 1/16, halved 7 times with Richardson extrapolation.
        seed: random directions.
        directions: how many random directions (default 3; 1 above 1e5 inputs).

    Returns:
        :class:`GradsResult` (``.ok``, ``.max_abs_error``, ``.max_rel_error``, ``.worst``,
        ``.modes``, ``str()``).

    Example:
        >>> import jax.numpy as jnp
        >>> r = check_grads(lambda W, x: jnp.tanh(W @ x), (jnp.ones((2, 3)), jnp.ones(3)),
        ...                 order=2)
        >>> r.ok, [m.label for m in r.modes][:3]
        (True, ['JVP', 'JVP of JVP', 'VJP of JVP'])
    """
    args = _as_args(args)
    modes = _modes(modes)
    if int(order) < 1:
        raise UsageError(f"order must be >= 1, got {order}")
    inputs = Inputs(args, "args", reuse=True)
    key = _cache_key(f, inputs, modes, eps) if int(order) == 1 else None
    compiled = _COMPILED.get(key) if key is not None else None
    fn = compiled.fn if compiled is not None else _call_root(f, inputs, lambda g, t: g(*t))
    k = int(directions) if directions else (3 if inputs.size <= 10 ** 5 else 1)
    o = _Opts(k, int(seed), eps, rtol, atol)
    reports: list[ModeReport] = []
    ctxs: list[Ctx] = []
    _check_fn(fn, inputs, int(order), modes, o, reports, ctxs, compiled)
    if key is not None:
        _remember(key, ctxs[0].compiled())
    return _grads_result(reports, ctxs, inputs, fn, int(order), o)


def _call_root(f: Callable, inputs: Inputs, call: Callable) -> Fn:
    try:
        return _root_fn(f, inputs, call)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - f itself fails at the point: bad input
        raise UsageError(f"f could not be evaluated at the given arguments: "
                         f"{type(exc).__name__}: {_short(exc, 300)}") from exc


def _grads_result(reports: list[ModeReport], ctxs: list[Ctx], inputs: Inputs, fn: Fn,
                  order: int, o: _Opts) -> GradsResult:
    active = [m for m in reports if not m.skipped]
    notes = _reference_notes(ctxs[0], reports)
    if not active:
        notes.append("every requested mode was skipped: nothing was checked")
    dtype = _least(list(inputs.flat.dtypes) + list(fn.out.flat.dtypes)).name
    layout = (f"args: {inputs.flat.describe().replace('pytree ', '')} -> out: "
              f"{fn.out.size} entr{'y' if fn.out.size == 1 else 'ies'}")
    return GradsResult(
        ok=all(m.ok for m in active), modes=reports,
        max_abs_error=max((m.max_abs_error for m in active), default=0.0),
        max_rel_error=max((m.max_rel_error for m in active), default=0.0),
        worst=_worst(reports), order=order, dtype=dtype, seed=o.seed, layout=layout,
        reference=_reference_text(ctxs[0], o.k), notes=notes)


def assert_grads(f: Callable, args: Sequence[Any], order: int = 1,
                 modes: Sequence[str] = ("fwd", "rev"), **opts: Any) -> GradsResult:
    """:func:`check_grads`, raising ``AssertionError`` with the report when it fails.

    >>> import jax.numpy as jnp
    >>> assert_grads(jnp.sin, (jnp.arange(3.0),)).ok
    True
    """
    res = check_grads(f, args, order, modes, **opts)
    if not res.ok:
        raise AssertionError(str(res))
    return res


# -- the optimizers' pre-solve check ---------------------------------------------------------

class _Bound:
    """``fun(x, *args)`` as a function of x, equal to another when ``fun`` and the ``args``
    objects are the same (so a repeated pre-solve check reuses its compiled programs)."""

    def __init__(self, fun: Callable, args: tuple):
        self.fun, self.args = fun, args

    def __call__(self, x: Any) -> Any:
        return self.fun(x, *self.args)

    def _key(self) -> tuple:
        return (self.fun, tuple(id(a) for a in jax.tree_util.tree_leaves(self.args)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bound) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _is_traced(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def verify(fun: Callable, x0: Any, args: tuple = (), *, mode: str = "rev", what: str = "fun",
           caller: str = "minimize") -> GradsResult:
    """Check ``fun(x, *args)``'s derivative at ``x0`` before a solve; raise
    :class:`~diffcheck.errors.DerivativeError` naming the worst entry when it is wrong.

    ``mode="rev"`` (the gradient, so ``custom_vjp`` objectives work) or ``"fwd"`` (the
    Jacobian a Newton root solve forms with ``jax.jacfwd``).

    >>> import jax.numpy as jnp
    >>> verify(lambda x: jnp.sum(x ** 2), jnp.ones(3)).ok
    True
    """
    if _is_traced((x0, args)):
        raise UsageError(f"{caller}(..., check=True) needs concrete values, but it is called "
                         "inside jax.jit / jax.vmap (x0 is a tracer). Check once outside the "
                         "transformation (or call dc.check_grads on the objective) and pass "
                         "check=False inside it.")
    res = check_grads(_Bound(fun, tuple(args)), (x0,), order=1, modes=(mode,))
    if not res.ok:
        worst = res.worst.replace("args[0]", "x", 1) if res.worst else "(not localised)"
        raise DerivativeError(
            f"{caller}(check=True): the {'gradient' if mode == 'rev' else 'Jacobian'} of "
            f"{what} at x0 is wrong; worst entry {worst} (max rel error "
            f"{res.max_rel_error:.2e}). The solve was not started.\n{res}", result=res)
    return res
