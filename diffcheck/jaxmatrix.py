"""check_gradient / check_jacobian / check_hessian of a function written with JAX.

:func:`diffcheck.check_gradient` routes here when ``f`` returns JAX arrays
(:mod:`diffcheck.treecheck`). Your derivative is a matrix (a gradient, a Jacobian, a
Hessian, in the array's or the pytree's layout); it is compared entry by entry (up to 128
inputs) or along random directions bisected to the entry with the float64 references of
:mod:`diffcheck.jaxcheck`, and called once more on float64 inputs to separate its rounding
from its error. The result is the NumPy checks' :class:`~diffcheck.numpy_check.CheckResult`.

>>> import jax, jax.numpy as jnp
>>> loss = lambda p: jnp.sum(jnp.tanh(p["w"]) * p["b"])
>>> p = {"w": jnp.array([0.5, -1.0], jnp.float32), "b": jnp.float32(2.0)}
>>> wrong = lambda p: {**jax.grad(loss)(p), "b": jnp.float32(0.0)}
>>> r = check_derivative("gradient", loss, wrong, p, tree=True, root="p")
>>> r.ok, r.worst_index
(False, "p['b']")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .engines.jaxfd import Analysis, x64
from .errors import ShapeError, UnsupportedError, UsageError
from .jaxcheck import (
    DENSE,
    SHOW,
    Cmp,
    Ctx,
    Fn,
    Inputs,
    ModeReport,
    Rule,
    Space,
    _call_root,
    _directional,
    _dtype,
    _excess,
    _fwd_block,
    _judge,
    _kind,
    _least,
    _localise,
    _relative,
    _short,
    _summarise,
    check_grads,
)
from .pytree import KINDS, Layout, flatten
from .treecheck import tree_result


def _user_matrix(lay: Layout, user: Callable, x: Any, name: str
                 ) -> tuple[np.ndarray, np.dtype]:
    """Your derivative at ``x`` as a ``(m, n)`` float64 matrix, and the dtype it came in."""
    value = user(x)
    _, leaves, _ = flatten(value)
    dtypes = [_dtype(v) for v in leaves]
    if not leaves or any(_kind(d) not in "biuf" for d in dtypes):
        raise UsageError(f"{name}(x) must return real floating-point arrays, got "
                         f"{', '.join(sorted({d.name for d in dtypes})) or 'nothing'}")
    return lay.matrix(value).astype(np.float64), _least([d if _kind(d) == "f" else
                                                         np.dtype(np.float64) for d in dtypes])


def _replay_matrix(lay: Layout, user: Callable, inputs: Inputs, tree: bool, rule: Rule
                   ) -> np.ndarray | None:
    """Your derivative called on float64 inputs (under ``jax.enable_x64``), if it stays so."""
    try:
        with x64():
            x64_ = inputs.tree(inputs.x, wide=True) if tree else inputs.x.reshape(lay.x_shape)
            value = user(x64_)
            _, leaves, _ = flatten(value)
            if any(_dtype(v) != np.float64 for v in leaves):
                rule.notes.append("your derivative returns lower precision on float64 inputs "
                                  "(explicit casts), so it could not be replayed in float64; "
                                  f"compared as computed in {rule.dtype.name}")
                return None
            return lay.matrix(value).astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - the replay is optional
        rule.notes.append(f"your derivative could not be replayed in float64 "
                          f"({type(exc).__name__}: {_short(exc)}); compared as computed")
        return None


class _Jitted:
    """The user's derivative function, compiled once per precision when JAX can trace it
    (eagerly, ``jax.grad`` of a model compiles every operation on its own), called as is
    when it cannot (NumPy code)."""

    def __init__(self, fn: Callable):
        self.fn, self.jit, self.traceable = fn, jax.jit(fn), True

    def __call__(self, x: Any) -> Any:
        if self.traceable:
            try:
                return self.jit(x)
            except Exception:  # noqa: BLE001 - not traceable: run it as it is
                self.traceable = False
        return self.fn(x)


def _matrix_rule(kind: str, lay: Layout, user: Callable, x: Any, inputs: Inputs, tree: bool
                 ) -> Rule:
    name = KINDS[kind][0]
    user = _Jitted(user)
    J, dtype = _user_matrix(lay, user, x, name)
    rule = Rule(kind, "fwd", dtype)
    J64 = _replay_matrix(lay, user, inputs, tree, rule)
    rule.replay = J64 is not None
    rule.analysis = Analysis()

    def at(v: np.ndarray, wide: bool) -> np.ndarray:
        if wide:
            with x64():
                arg = inputs.tree(v, wide=True) if tree else v.reshape(lay.x_shape)
                return lay.matrix(user(arg)).astype(np.float64)
        arg = inputs.tree(v, wide=False) if tree else v.reshape(lay.x_shape).astype(
            inputs.flat.dtypes[0])
        return lay.matrix(user(arg)).astype(np.float64)

    def provider(P: np.ndarray, v: np.ndarray | None, wide: bool) -> np.ndarray:
        M = (J64 if wide else J) if v is None else at(v, wide)
        return P @ M.T
    rule.provider = provider
    return rule


def _gradient_fn(f: Callable, inputs: Inputs, tree: bool, shape: tuple[int, ...]) -> Fn:
    """JAX's gradient of scalar f as the function whose Jacobian is the Hessian."""
    def grad(v: jax.Array, wide: bool) -> jax.Array:
        g = jax.grad(lambda t: jnp.reshape(f(t), ()))(
            inputs.tree(v, wide=wide) if tree else (v if wide else v.astype(inputs.dtype))
            .reshape(shape))
        return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(g)])
    return Fn("grad", lambda v: grad(v, False), lambda v: grad(v, True),
              Space(inputs.flat, inputs.root))


def check_derivative(kind: str, f: Callable, user: Callable, x: Any, *, seed: int = 0,
                     directions: int | None = None, rtol: float | None = None,
                     atol: float | None = None, root: str = "x", tree: bool = False,
                     eps: float | None = None) -> Any:
    """:func:`diffcheck.check_gradient` (and the Jacobian and Hessian twins) for a ``f``
    written with ``jax.numpy``: the references are finite differences and the complex step
    of f in float64, independent of any rule inside f (a Hessian's reference differentiates
    JAX's gradient of f, once that gradient passed :func:`check_grads`).

    >>> import jax.numpy as jnp
    >>> r = check_derivative("gradient", lambda w: jnp.sum(w ** 3), lambda w: 3 * w ** 2,
    ...                      jnp.array([1.0, 2.0], jnp.float32))
    >>> r.ok, r.dtype
    (True, 'float32')
    """
    inputs = Inputs(x if tree else np.asarray(x), root, numbers_vary=True)
    x_shape = () if tree else tuple(np.shape(x))
    note = []
    if kind == "hessian":
        fn = _hessian_fn(f, x, inputs, tree, x_shape, note)
    else:
        fn = _call_root(f, inputs, lambda g, t: g(t if tree else t.reshape(x_shape)))
    f_shape = _output_shape(f, x) if kind == "jacobian" else ()
    if kind == "gradient" and fn.out.size != 1:
        raise ShapeError(f"f(x) has {fn.out.size} entries; a gradient needs a scalar output. "
                         "Use check_jacobian for vector outputs.")
    lay = Layout(kind, inputs.flat if tree else None, x_shape=x_shape, f_shape=f_shape,
                 root=root)
    rule = _matrix_rule(kind, lay, user, x, inputs, tree)
    # the precision the model computes in: x's, f's and your derivative's, the least of them
    rule.dtype = _least([rule.dtype, *inputs.flat.dtypes, *fn.out.flat.dtypes])
    k = int(directions) if directions else (3 if inputs.size <= 10 ** 5 else 1)
    ctx = Ctx(fn, inputs, (), k=k, seed=seed, h0=eps, rtol=rtol, atol=atol, operators=False)
    d, _, _ = _directional(ctx, rule)
    cmps = [_judge(d, rule, rtol, atol)]
    if ctx.n <= DENSE:
        cmps.append(_judge(_fwd_block(ctx, rule, 0, ctx.n), rule, rtol, atol))
    elif d.bad.any():
        j = int(d.rows[int(np.argmax(np.where(d.bad, _excess(d), -1.0)))])
        cmps.append(_judge(_localise(ctx, rule, j, None, None), rule, rtol, atol))
    rep = _summarise(ctx, rule, cmps)
    return _check_result(kind, lay, ctx, rule, rep, cmps, note)


def _output_shape(f: Callable, x: Any) -> tuple[int, ...]:
    return tuple(np.shape(jax.eval_shape(f, x)))


def _hessian_fn(f: Callable, x: Any, inputs: Inputs, tree: bool, shape: tuple[int, ...],
                notes: list[str]) -> Fn:
    """JAX's gradient of f, checked first: the function whose Jacobian is the Hessian."""
    g = check_grads(lambda t: f(t if tree else t.reshape(shape)),
                    (x if tree else np.asarray(x, dtype=float).reshape(-1),), modes=("rev",))
    if not g.ok:
        raise UnsupportedError(
            "check_hessian differentiates JAX's gradient of f for its reference, but that "
            f"gradient is wrong (a custom rule inside f; worst entry {g.worst}); fix it first "
            f"(dc.check_grads(f, (x,)) shows it):\n{g}")
    notes.append("the reference differentiates JAX's gradient of f, which agreed with finite "
                 "differences of f first")
    return _gradient_fn(f, inputs, tree, shape)


def _shown_tol(c: Cmp) -> np.ndarray:
    """The tolerance for your value as computed: the verdict's tolerance plus the rounding
    the float64 replay measured in it (so ``|yours - reference| <= tol`` where right)."""
    if c.replay is None:
        return c.tol
    with np.errstate(invalid="ignore"):
        return c.tol + np.nan_to_num(np.abs(c.yours - c.replay), nan=0.0)


def _full(lay: Layout, cmps: list[Cmp], field_of: Callable[[Cmp], np.ndarray]) -> np.ndarray:
    """A ``(m, n)`` matrix of one field of the per-entry comparisons (NaN where unknown)."""
    M = np.full((lay.m, lay.n), np.nan)
    for c in cmps:
        per = c.ins >= 0
        if per.any():
            M[c.outs[per], c.ins[per]] = field_of(c)[per]
    return M


def _check_result(kind: str, lay: Layout, ctx: Ctx, rule: Rule, rep: ModeReport,
                  cmps: list[Cmp], notes: list[str]) -> Any:
    from .numpy_check import CheckResult

    J = rule.provider(np.eye(lay.n), None, False).T
    ref, tol = _full(lay, cmps, lambda c: c.ref), _full(lay, cmps, _shown_tol)
    entries = _matrix_entries(lay, cmps)
    dense = ctx.n <= DENSE
    wit = ("complex step" if ctx.ref.complex and not ctx.along.cs_disagrees else
           "finite differences (Richardson)") + \
        f" along {len(ctx.T)} random direction{'s' if len(ctx.T) > 1 else ''}: your " + \
        ("derivative agrees" if not cmps[0].bad.any() else "derivative DISAGREES")
    flat = lay.flat is not None  # a pytree: flat arrays here, its layout at the end
    shape = (lay.m * lay.n,) if flat else lay.shape
    res = CheckResult(
        kind=kind, ok=rep.ok, yours=J.reshape(shape), reference=ref.reshape(shape),
        tolerance=tol.reshape(shape), method=_matrix_method(ctx, dense), witness=wit,
        seed=ctx.seed, dtype=rule.dtype.name, max_abs_error=rep.max_abs_error,
        max_rel_error=rep.max_rel_error, worst_index=None, n_bad=rep.n_bad,
        worst=entries[:SHOW], notes=list(rep.notes) + notes, directions=len(ctx.T))
    res.worst_index = entries[0].index if entries else None
    res.n_bad = sum(int(np.sum(c.bad & (c.ins >= 0))) for c in cmps)
    if not rep.ok and res.n_bad == 0:
        res.n_bad = int(np.sum(cmps[0].bad))
        res.notes.append(f"no single entry is outside its tolerance, but your derivative "
                         f"disagrees along {res.n_bad} random direction(s): the error is spread "
                         "over many entries")
    if rule.replay and rule.dtype != np.float64:
        res.notes.append(f"your derivative was replayed on float64 inputs (max rel error "
                         f"{rep.replay_rel_error or 0.0:.1e} there): rounding is separated from "
                         "error")
    if not dense and not rep.ok:
        res.notes.append("f has too many inputs to check every entry: random directions, "
                         "bisected down to the worst entries")
    return tree_result(res, lay) if flat else res


def _matrix_method(ctx: Ctx, dense: bool) -> str:
    how = "complex step and finite differences (Richardson)" if ctx.ref.complex else \
        "finite differences (Richardson)"
    where = "per entry" if dense else "along random directions"
    return f"{how} of f in float64 (jax.enable_x64 for the reference only), {where}"


def _matrix_entries(lay: Layout, cmps: list[Cmp]) -> list[Any]:
    from .numpy_check import Entry as NEntry

    rows = []
    for c in cmps:
        per = np.flatnonzero(c.ins >= 0)
        if not per.size:
            continue
        ex = _excess(c)[per]
        rel = _relative(c.diff[per], c.size[per])
        for p, e, r in zip(per, ex, rel, strict=True):
            rows.append((bool(c.bad[p]), float(e) if c.bad[p] else float(r), c, int(p)))
    rows.sort(key=lambda t: (not t[0], -t[1]))
    out = []
    for _, _, c, p in rows[:SHOW]:
        eng = {k: float(v[p]) for k, v in c.engines.items()}
        if c.replay is not None:
            eng["replayed f64"] = float(c.replay[p])
        out.append(NEntry(index=lay.name(int(c.outs[p]), int(c.ins[p])),
                          yours=float(c.yours[p]), reference=float(c.ref[p]),
                          tol=float(_shown_tol(c)[p]), engines=eng))
    return out


