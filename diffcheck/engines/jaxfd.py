"""Float64 references for JAX functions: finite differences and the complex step.

A JAX function under check runs in the user's precision (float32, bfloat16, ...) with the
user's derivative rules. The references here evaluate it, never differentiate it: central
differences along directions, Richardson-extrapolated with an error estimate
(:func:`diffcheck.engines.finite.richardson`), and the complex step where the function's
jaxpr is analytic, all in float64 (``jax.enable_x64`` for the evaluation only; the user's
global configuration is left as it was, also on error).

:func:`analyse` reads a jaxpr for what limits a float64 evaluation: explicit casts to a lower
precision, loops that stop at a tolerance, and operations that stop the complex step.

>>> import jax.numpy as jnp
>>> along = derivatives(lambda v: jnp.sin(v) * v[::-1], np.array([0.5, 2.0]),
...                     np.array([[1.0, 0.0]]))
>>> d = along.value[0]
>>> bool(abs(d[0] - (np.cos(0.5) * 2.0)) <= along.error[0, 0] < 1e-9), along.how
(True, 'complex step')
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import finite

EPS64 = float(np.finfo(np.float64).eps)
MEMORY = 2 ** 26  #: bytes of perturbed points evaluated per batch
MAX_CHUNK = 64  #: points per batch (one compile per batch size)
CS_STEP = 1e-20  #: complex step
#: XLA options for the small programs of a check: compile time dominates, so no LLVM
#: optimisation (2-3x faster to compile; large inputs use the default)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
H0 = 2.0 ** -4  #: first step, relative to the (|x|-scaled) direction
LEVELS = 8  #: steps in the ladder (4 for very large inputs)
LARGE = 10 ** 5  #: inputs above which the ladder is shorter

_TRACE_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                 jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError)


def x64() -> contextlib.AbstractContextManager:
    """Float64 on for the ``with`` block only (restored on exit, also on error)."""
    return jax.enable_x64(True)


def eps_of(dtype: Any) -> float:
    """Machine epsilon of a floating dtype (bfloat16 included)."""
    return float(jnp.finfo(dtype).eps)


# -- what limits a float64 evaluation --------------------------------------------------------

# Operations that extend analytically to complex arguments (the complex step is exact for
# code made only of these); containers are walked into.
ANALYTIC = frozenset("""
add sub mul div neg exp exp2 log log1p expm1 sin cos tan tanh sinh cosh asinh atanh asin acos
atan sqrt rsqrt integer_pow square logistic dot_general reduce_sum broadcast_in_dim reshape
transpose squeeze expand_dims concatenate slice dynamic_slice dynamic_update_slice gather pad
copy copy_p rev cumsum select_n iota stop_gradient pjit jit closed_call core_call
custom_jvp_call custom_vjp_call custom_vjp_call_jaxpr remat checkpoint name
""".split())


@dataclass
class Analysis:
    """What a jaxpr says about evaluating it in float64."""

    casts: set[str] = field(default_factory=set)  # lower precisions cast to from float64
    eps: float = EPS64  # the coarsest precision the float64 evaluation computes in
    tol: float = 0.0  # the largest stopping tolerance of a while loop (0: none found)
    loops: int = 0  # while loops
    blockers: set[str] = field(default_factory=set)  # operations that stop the complex step

    @property
    def analytic(self) -> bool:
        return not self.blockers

    @property
    def clean(self) -> bool:
        """Float64 throughout, and no loop that stops at a tolerance."""
        return not self.casts and self.tol == 0.0

    def describe(self) -> str:
        parts = []
        if self.casts:
            parts.append(f"explicit casts to {', '.join(sorted(self.casts))}")
        if self.tol:
            parts.append(f"a loop that stops at a tolerance of {self.tol:g}")
        return " and ".join(parts)


def _float(dtype: Any) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def _lower(src: Any, dst: Any) -> bool:
    return _float(src) and _float(dst) and eps_of(dst) > eps_of(src)


def _cast(eqn: Any, a: Analysis) -> None:
    name = eqn.primitive.name
    if name == "convert_element_type":
        src, dst = eqn.invars[0].aval.dtype, eqn.params["new_dtype"]
        if _lower(src, dst):
            a.casts.add(str(np.dtype(dst)))
            a.eps = max(a.eps, eps_of(dst))
        if _float(src) and not jnp.issubdtype(dst, jnp.complexfloating):
            a.blockers.add("convert_element_type")
    elif name == "reduce_precision":
        bits = int(eqn.params["mantissa_bits"])
        a.casts.add(f"{bits}-bit mantissa")
        a.eps = max(a.eps, 2.0 ** -bits)
    pref = eqn.params.get("preferred_element_type") if name != "convert_element_type" else None
    if pref is not None and eqn.invars and _lower(eqn.invars[0].aval.dtype, pref):
        a.casts.add(str(np.dtype(pref)))
        a.eps = max(a.eps, eps_of(pref))


def _loop_tolerance(cond: Any) -> float:
    """The largest small float constant a while loop's condition compares with."""
    closed = getattr(cond, "consts", [])
    values = [getattr(v, "val", None) for e in cond.jaxpr.eqns for v in e.invars]
    values += [c for c in closed if np.ndim(c) == 0]
    tol = 0.0
    for v in values:
        if v is None or not _float(np.result_type(v)):
            continue
        v = abs(float(v))
        if 0.0 < v < 0.5:
            tol = max(tol, v)
    return tol


def _walk(jaxpr: Any, a: Analysis) -> None:
    from jax.extend.core import jaxprs_in_params

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        _cast(eqn, a)
        if name == "while":
            a.loops += 1
            a.tol = max(a.tol, _loop_tolerance(eqn.params["cond_jaxpr"]))
        if name not in ANALYTIC:
            a.blockers.add(name)
        for sub in jaxprs_in_params(eqn.params):
            _walk(sub, a)


def analyse(fn: Callable, *args: Any) -> Analysis:
    """Trace ``fn(*args)`` (no compile) and read its jaxpr, sub-jaxprs included."""
    a = Analysis()
    _walk(jax.make_jaxpr(fn)(*args).jaxpr, a)
    return a


def widen(fn: Callable, *args: Any) -> tuple[Callable, Analysis, str]:
    """``fn`` for a float64 evaluation, its :class:`Analysis`, and a note: where ``fn`` casts
    to a lower precision, :func:`upcast` removes the casts (when its interpretation of the
    jaxpr succeeds). Call under ``jax.enable_x64``."""
    try:
        a = analyse(fn, *args)
    except _TRACE_ERRORS:  # Python control flow on values: evaluated as it is
        return fn, Analysis(blockers={"Python control flow"}), ""
    if not a.casts:
        return fn, a, ""
    try:
        up = upcast(fn)
        b = analyse(up, *args)
    except Exception:  # noqa: BLE001 - an operation the interpreter cannot widen
        return fn, a, ""
    if b.casts:
        return fn, a, ""
    return up, b, f"explicit casts to {', '.join(sorted(a.casts))}"


# -- float64 evaluation with the casts to lower precision removed ------------------------------

_CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr", "remat", "checkpoint")


def upcast(fn: Callable) -> Callable:
    """``fn`` evaluated in float64 throughout: its jaxpr is interpreted with every cast to a
    lower-precision float (``astype(bfloat16)``, ``reduce_precision``, a lower
    ``preferred_element_type``) made a no-op, so mixed-precision code gets a float64
    reference and a float64 replay of its rules. Call under ``jax.enable_x64``.

    >>> import jax.numpy as jnp
    >>> f = lambda x: (x.astype(jnp.bfloat16) * 3).astype(x.dtype)
    >>> with x64():
    ...     float(f(jnp.float64(0.1))), float(upcast(f)(jnp.float64(0.1)))
    (0.30078125, 0.30000000000000004)
    """
    def run(*args: Any) -> Any:
        with warnings.catch_warnings():  # complex values through the casts being removed
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        out = _eval(closed.jaxpr, closed.consts, jax.tree_util.tree_leaves(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), out)
    return run


def _wide(v: Any) -> Any:
    dtype = v.dtype if hasattr(v, "dtype") else np.result_type(v)
    if _float(dtype) and dtype != jnp.float64:
        return jax.lax.convert_element_type(v, jnp.float64)
    return v


def _eval(jaxpr: Any, consts: list, args: list) -> list:
    from jax.extend.core import Literal

    env: dict = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]
    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        outs = _apply(eqn, [read(v) for v in eqn.invars])
        if not eqn.primitive.multiple_results:
            outs = [outs]
        for v, o in zip(eqn.outvars, outs, strict=True):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _sub(j: Any) -> tuple[Any, list]:
    return (j.jaxpr, list(j.consts)) if hasattr(j, "consts") else (j, [])


def _apply(eqn: Any, ins: list) -> Any:
    name, p = eqn.primitive.name, dict(eqn.params)
    if name == "convert_element_type" and _float(p["new_dtype"]):
        dtype = getattr(ins[0], "dtype", np.float64)
        if jnp.issubdtype(dtype, jnp.complexfloating):  # the complex step's values stay
            return jax.lax.convert_element_type(ins[0], jnp.complex128)
        return _wide(ins[0]) if _float(dtype) else \
            jax.lax.convert_element_type(ins[0], jnp.float64)
    if name == "reduce_precision":
        return ins[0]
    if name in _CALLS:
        sub = p.get("jaxpr") or p.get("call_jaxpr") or p.get("fun_jaxpr")
        return _eval(*_sub(sub), ins)
    if name in _CONTROL:
        return _CONTROL[name](p, [_wide(v) for v in ins])
    ins = [_wide(v) for v in ins]
    if "preferred_element_type" in p and p["preferred_element_type"] is not None and \
            _float(p["preferred_element_type"]):
        p["preferred_element_type"] = jnp.float64
    return eqn.primitive.bind(*ins, **p)


def _like(outs: list, carry: list) -> tuple:
    return tuple(jax.lax.convert_element_type(o, c.dtype) for o, c in zip(outs, carry,
                                                                             strict=True))


def _while(p: dict, ins: list) -> list:
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, init = ins[:nc], ins[nc:nc + nb], ins[nc + nb:]
    cj, bj = _sub(p["cond_jaxpr"]), _sub(p["body_jaxpr"])
    out = jax.lax.while_loop(lambda c: _eval(*cj, cconsts + list(c))[0],
                             lambda c: _like(_eval(*bj, bconsts + list(c)), init), tuple(init))
    return list(out)


def _scan(p: dict, ins: list) -> list:
    nc, nk = p["num_consts"], p["num_carry"]
    consts, init, xs = ins[:nc], ins[nc:nc + nk], ins[nc + nk:]
    j = _sub(p["jaxpr"])

    def step(c: tuple, x: tuple) -> tuple:
        out = _eval(*j, consts + list(c) + list(x))
        return _like(out[:nk], init), tuple(_wide(o) for o in out[nk:])
    c, ys = jax.lax.scan(step, tuple(init), tuple(xs), length=p["length"], reverse=p["reverse"])
    return list(c) + list(ys)


def _cond(p: dict, ins: list) -> list:
    index, ops = ins[0], ins[1:]
    branches = [_branch(_sub(b)) for b in p["branches"]]
    return list(jax.lax.switch(jax.lax.convert_element_type(index, jnp.int32), branches, *ops))


def _branch(jaxpr: tuple[Any, list]) -> Callable:
    return lambda *o: [_wide(v) for v in _eval(*jaxpr, list(o))]


_CONTROL = {"while": _while, "scan": _scan, "cond": _cond}


# -- batched evaluation: several functions, one compiled program -----------------------------

@dataclass
class Part:
    """One batched function ``fn(row, x)`` of a :class:`Program`: rows cast to ``dtype``,
    ``chunk`` rows per call; ``fallback`` replaces it when it cannot be traced; ``tag``
    tells the variants apart."""

    fn: Callable
    dtype: Any
    chunk: int
    fallback: Part | None = None
    tag: str = ""


class Program:
    """Batched JAX functions of one point ``x`` (passed to each, not batched).

    Each part maps rows (directions, tangents, cotangents) to outputs. The parts requested
    together are evaluated by one ``jit`` (one compile per set of parts requested: the
    usual set once, the others only on the paths that need them), a chunk of each per call.
    Parts that cannot be traced are dropped (``dropped`` says why) or replaced by their
    fallback; a function with Python control flow on values runs row by row.
    ``wide=True`` evaluates under float64.
    """

    def __init__(self, parts: dict[str, Part], x: np.ndarray, *, wide: bool, x_dtype: Any,
                 widths: dict[str, int], fast_compile: bool = True):
        self.parts, self.wide, self.x_dtype = dict(parts), wide, x_dtype
        self.options = FAST_COMPILE if fast_compile else None
        self.widths = dict(widths)
        self.x = x if isinstance(x, jax.Array) else np.asarray(x)
        self.dropped: dict[str, BaseException] = {}
        self.eager = False
        self._validate()
        self._jits: dict[tuple[str, ...], Callable] = {}

    def _context(self) -> contextlib.AbstractContextManager:
        return x64() if self.wide else contextlib.nullcontext()

    def _validate(self) -> None:
        """Trace each part once (no compile): drop or replace those JAX refuses."""
        with self._context():
            x = jnp.asarray(self.x, self.x_dtype)
            for name in list(self.parts):
                part = self.parts[name]
                while part is not None:
                    try:
                        rows = jax.ShapeDtypeStruct((2, self.widths[name]), part.dtype)
                        jax.eval_shape(jax.vmap(part.fn, in_axes=(0, None)), rows, x)
                        break
                    except _TRACE_ERRORS:
                        self.eager = True
                        break
                    except Exception as exc:  # noqa: BLE001 - JAX refuses this part
                        self.dropped[name] = exc
                        part = part.fallback
                if part is None:
                    del self.parts[name]
                else:
                    self.parts[name] = part
                    self.dropped.pop(name, None)

    def _compiled(self, names: tuple[str, ...]) -> Callable:
        if names not in self._jits:
            fns = [self.parts[nm].fn for nm in names]
            ones = [self.parts[nm].chunk == 1 for nm in names]

            def run(rows: tuple, x: Any) -> tuple:
                # a batch of one: no vmap, and no batch axis added inside the program (for a
                # large output that costs XLA a slower layout); the caller adds it
                return tuple(fn(r[0], x) if one else jax.vmap(fn, in_axes=(0, None))(r, x)
                             for fn, r, one in zip(fns, rows, ones, strict=True))
            self._jits[names] = jax.jit(run, compiler_options=self.options)
        return self._jits[names]

    def __call__(self, at: np.ndarray | None = None, **rows: np.ndarray | None
                 ) -> dict[str, np.ndarray]:
        """Evaluate the requested parts on their rows at ``x`` (or at ``at``)."""
        want = {k: v if isinstance(v, jax.Array) else np.asarray(v) for k, v in rows.items()
                if v is not None and len(v)}
        missing = [k for k in want if k not in self.parts]
        if missing:
            raise KeyError(f"parts {missing} are not available")
        if not want:
            return {}
        try:
            return self._run(want, at)
        except Exception:
            if len(want) == 1:
                raise
        out = {}  # one part fails (a rule JAX cannot evaluate): the others still run
        for k in want:
            try:
                out.update(self._run({k: want[k]}, at))
            except Exception as exc:  # noqa: BLE001 - recorded; the caller reports it
                if k == "F":
                    raise
                self.dropped[k] = exc
                del self.parts[k]
        return out

    def _run(self, want: dict[str, np.ndarray], at: np.ndarray | None) -> dict[str, np.ndarray]:
        out: dict[str, list] = {k: [] for k in want}
        names = tuple(nm for nm in self.parts if nm in want)
        with self._context():
            x = to_device(self.x if at is None else at, self.x_dtype)
            if self.eager:
                return self._eager(want, x)
            calls = max(-(-len(v) // self.parts[k].chunk) for k, v in want.items())
            for c in range(calls):
                blocks = [self._block(nm, want[nm], c) for nm in names]
                res = self._compiled(names)(tuple(b for b, _ in blocks), x)
                for nm, (_, used), r in zip(names, blocks, res, strict=True):
                    if used:
                        r = np.asarray(r)
                        out[nm].append(r[None] if self.parts[nm].chunk == 1 else r[:used])
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in out.items()}

    def _block(self, name: str, P: np.ndarray, c: int) -> tuple[jax.Array, int]:
        part = self.parts[name]
        ch = part.chunk
        if isinstance(P, jax.Array):  # rows already on the device: used as they are
            if c == 0 and len(P) == ch:
                return to_device(P, part.dtype), ch
            P = np.asarray(P)
        block = P[c * ch:(c + 1) * ch]
        used = len(block)
        if used < ch:  # zero rows: directions and cotangents that cost nothing odd
            block = np.concatenate([block, np.zeros((ch - used,) + P.shape[1:], P.dtype)])
        return to_device(block, part.dtype), used

    def _eager(self, want: dict[str, np.ndarray], x: jax.Array) -> dict[str, np.ndarray]:
        out = {}
        for k, P in want.items():
            part = self.parts[k]
            out[k] = np.stack([np.asarray(part.fn(jnp.asarray(r, part.dtype), x)) for r in P])
        return out


def to_device(a: Any, dtype: Any) -> jax.Array:
    """``jnp.asarray(a, dtype)``, with host arrays sent by ``jax.device_put`` and converted
    on the device (``jnp.asarray`` of a million-entry NumPy array costs several times a
    plain transfer). The values sent here are already representable in ``dtype``.

    >>> with x64():
    ...     to_device(np.arange(3.0), jnp.float32).dtype
    dtype('float32')
    """
    if not isinstance(a, jax.Array):
        a = np.asarray(a)
        if a.dtype == object or not (a.dtype.kind in "biuf" or _float(a.dtype)):
            return jnp.asarray(a, dtype)
        a = jax.device_put(a)
    return a if a.dtype == dtype else a.astype(dtype)


def chunk_for(width: int, cap: int = MAX_CHUNK) -> int:
    """Rows per call for rows of ``width`` numbers, within the memory budget."""
    return int(max(1, min(cap, MEMORY // (8 * max(width, 1)))))


# -- references along directions -------------------------------------------------------------

@dataclass
class Along:
    """Directional derivatives ``(k, m)``, their estimated errors, and how they were found.

    ``fd`` holds the finite differences, ``cs`` the complex step (None where not used).
    """

    value: np.ndarray
    error: np.ndarray
    how: str
    fd: np.ndarray
    cs: np.ndarray | None = None
    cs_disagrees: bool = False
    f0: np.ndarray | None = None  # F(x) (k, m)
    left: np.ndarray | None = None  # one-sided derivatives, extrapolated
    right: np.ndarray | None = None
    kink: np.ndarray | None = None  # they stay apart as the step shrinks: not differentiable

    @property
    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        """The interval between the one-sided derivatives (where a subgradient lies)."""
        return np.minimum(self.left, self.right), np.maximum(self.left, self.right)


class Reference:
    """Derivatives of a float64 function ``F`` at ``x`` from its values only.

    :meth:`points` lists where ``F`` must be evaluated for directions ``T`` (central
    differences at a ladder of steps, and the complex step when ``complex_step``);
    :meth:`finish` turns those values into :class:`Along`: Richardson extrapolation with an
    honest error estimate from the table and the rounding of ``F`` (``eps``: float64, or
    coarser when :func:`analyse` found casts or loop tolerances), and the complex step where
    it agrees with the differences.
    """

    def __init__(self, x: np.ndarray, *, eps: float = EPS64, h0: float | None = None,
                 levels: int | None = None, complex_step: bool = False):
        self.x = np.asarray(x, dtype=np.float64)
        n = self.x.size
        self.levels = levels or (LEVELS if n <= LARGE else 4)
        self.h0 = h0 or (H0 if n <= LARGE else 2.0 ** -6)
        self.eps = eps
        self.complex = complex_step

    def _steps(self) -> np.ndarray:
        return self.h0 / 2.0 ** np.arange(self.levels)

    @property
    def points(self) -> int:
        """Evaluations of F per direction."""
        return 2 * self.levels + 1 + (1 if self.complex else 0)

    def ladder(self, F: Callable, *, complex_step: bool, sequential: bool = False
               ) -> Callable:
        """The batched part ``(t, x) ->`` F at every point the direction ``t`` needs, flat:
        ``x``, ``x + h t`` and ``x - h t`` for each step ``h``, then ``x + i h_c t`` (complex
        step). ``sequential=False`` evaluates the points as one batch (``vmap``: all in
        complex arithmetic when ``complex_step``, the real ones with a zero imaginary part);
        ``sequential=True`` one after another (``lax.map``: for large inputs, where one
        evaluation already fills the machine and a batch of them only adds memory traffic),
        the real points in real arithmetic. Call under ``jax.enable_x64``."""
        hs = self._steps()
        dtype = jnp.complex128 if complex_step else jnp.float64

        def run(t: jax.Array, x: jax.Array) -> jax.Array:
            h = jnp.asarray(hs)[:, None]
            pts = jnp.concatenate([x[None], x + h * t, x - h * t])
            if complex_step:
                pts = jnp.concatenate([pts.astype(dtype), (x + 1j * CS_STEP * t)[None]])
            return jnp.ravel(_each(lambda p: jnp.ravel(F(p)).astype(dtype), pts))

        def run_seq(t: jax.Array, x: jax.Array) -> jax.Array:
            g = lambda p: jnp.ravel(F(p)).astype(dtype)  # noqa: E731
            side = _each_step(lambda h: g(x + h * t), np.concatenate([hs, -hs]))
            vals = [g(x)[None], side]
            if complex_step:
                vals.append(g(x + 1j * CS_STEP * t)[None])
            return jnp.ravel(jnp.concatenate(vals))
        return run_seq if sequential else run

    def finish(self, T: np.ndarray, vals: np.ndarray) -> Along:
        """The directional derivatives from the :meth:`ladder`'s values ``(k, points * m)``."""
        k, L = len(T), self.levels
        vals = np.asarray(vals).reshape(k, self.points, -1)
        real = vals[:, :2 * L + 1]
        if np.iscomplexobj(real):  # a real point with a non-real value lies outside f's
            real = np.where(np.imag(real) == 0, np.real(real), np.nan)  # real domain
        f0 = real[:, 0]
        fd_vals = np.moveaxis(real[:, 1:].reshape(k, 2, L, -1), 0, 2)
        D, E, noise = self._differences(fd_vals, f0)
        out = Along(D, E, "finite differences (Richardson)", D, f0=f0)
        self._one_sided(fd_vals, f0, noise, out)
        if self.complex:
            self._complex_step(np.imag(vals[:, 2 * L + 1]) / CS_STEP, out)
        return out

    def _one_sided(self, vals: np.ndarray, f0: np.ndarray, noise: np.ndarray, out: Along
                   ) -> None:
        """One-sided derivatives and kinks (the NumPy checks' rule): where the left and
        right limits stay apart as the step shrinks, the central value means nothing (its
        error becomes infinite) and a value between them is a valid subgradient."""
        hs = self._steps()[:, None, None]
        with np.errstate(all="ignore"):
            right, left = (vals[0] - f0) / hs, (f0 - vals[1]) / hs
            jump = np.abs(right - left)
            settled = jump[-1] > 0.7 * jump[-2]
            big = jump[-1] > 1e3 * noise / hs[-1] + 1e-6 * (np.abs(right[-1]) + np.abs(left[-1]))
        out.kink = settled & big & np.isfinite(jump[-1])
        out.left, out.right = 2 * left[-1] - left[-2], 2 * right[-1] - right[-2]
        out.error = np.where(out.kink, np.inf, out.error)

    def _differences(self, vals: np.ndarray, f0: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hs = self._steps()
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN where f is undefined
            D = (vals[0] - vals[1]) / (2 * hs[:, None, None])
            seen = np.nanmax(np.abs(np.where(np.isfinite(vals), vals, np.nan)), axis=(0, 1))
        seen = np.maximum(np.nan_to_num(seen, nan=0.0), np.nan_to_num(np.abs(f0)))
        noise = 4.0 * self.eps * np.maximum(seen, np.finfo(float).tiny)
        best, err = finite.richardson(D, hs[:, None, None], noise)
        return best, np.where(np.isfinite(best), err, np.inf), noise

    def _complex_step(self, cs: np.ndarray, out: Along) -> None:
        with np.errstate(invalid="ignore"):
            agree = np.abs(cs - out.fd) <= out.error + 1e-12 * np.abs(cs)
        out.cs = cs
        if not np.all(agree | ~np.isfinite(out.fd) | out.kink):
            out.cs_disagrees = True  # not analytic after all: finite differences stay
            return
        with np.errstate(invalid="ignore"):
            own = 64 * EPS64 * np.abs(cs) + np.finfo(float).tiny
            err = np.where(np.isfinite(out.fd), np.minimum(out.error, np.abs(cs - out.fd) + own),
                           own)
        ok = np.isfinite(cs) & ~out.kink
        out.value = np.where(ok, cs, out.value)
        out.error = np.where(ok, err, out.error)
        out.how = "complex step"


def _each(g: Callable, pts: jax.Array) -> jax.Array:
    """``g`` on each row of ``pts``: vectorised, or one by one where g has Python control
    flow on values (the caller then runs eagerly too)."""
    try:
        return jax.vmap(g)(pts)
    except _TRACE_ERRORS:
        return jnp.stack([g(p) for p in pts])


def _each_step(g: Callable, hs: np.ndarray) -> jax.Array:
    """``g`` at each step of ``hs``, one after another (``lax.map``), or in a Python loop
    where g has Python control flow on values."""
    try:
        return jax.lax.map(g, jnp.asarray(hs))
    except _TRACE_ERRORS:
        return jnp.stack([g(h) for h in hs])


def derivatives(F: Callable, x: np.ndarray, T: np.ndarray, **opts: Any) -> Along:
    """Derivatives of the JAX function ``F`` (flat vector -> flat vector) at ``x`` along the
    rows of ``T``, evaluated in float64: a one-call convenience over :class:`Reference`."""
    x = np.asarray(x, dtype=np.float64)
    with x64():
        a = analyse(F, jnp.asarray(x))
        ref = Reference(x, eps=a.eps, complex_step=a.analytic, **opts)
        part = Part(ref.ladder(F, complex_step=ref.complex), jnp.float64,
                    chunk_for(x.size * ref.points))
    prog = Program({"F": part}, x, wide=True, x_dtype=jnp.float64, widths={"F": x.size})
    return ref.finish(T, prog(F=np.asarray(T, dtype=np.float64))["F"])
