"""Custom JAX derivative rules people write, right and with a planted bug, in three dtypes.

Run: ``python benchmarks/jax_cases.py [--quick]``. Every case is checked by
``dc.check_grads`` and by ``jax.test_util.check_grads`` (default tolerances and step), and
one table row is printed per case: what each tool said, and whether that was right (a
planted bug must be flagged, a correct rule must pass, nothing may crash). ``--quick``
runs float32 only.

The families: stable log-sum-exp (custom_jvp, logits around 30 so |f| is about 650),
softplus (custom_vjp), safe norm (custom_jvp), a linear-solve VJP, an implicit fixed-point
rule (custom_vjp through the implicit function theorem), layer norm, attention softmax,
GELU (exact forward; the bug is the tanh approximation's derivative), batch norm (the bug:
N - 1 in the forward variance, N in the backward), and an MLP with dict parameters and a
custom swish. Each in float32, float16 and bfloat16 (the linear solves need float32: XLA's
CPU LU has no float16).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads as jax_check_grads

import diffcheck as dc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from jax_custom_rules import gelu as gelu_rule  # noqa: E402 - the example's rules
from jax_custom_rules import logits, logsumexp  # noqa: E402
from jax_custom_rules import softplus as softplus_rule  # noqa: E402


@dataclass
class Case:
    family: str
    dtype: str
    bug: str  # "" for the correct rule, else what the planted bug is
    f: Callable
    args: tuple
    modes: tuple[str, ...]
    order: int = 1


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- the families ----------------------------------------------------------------------------

def lse(dtype, bug):
    rule = logsumexp(bug)  # bug: softmax over the batch axis
    return lambda x: jnp.sum(rule(x)), (logits(dtype),), ("fwd", "rev"), \
        "softmax over the wrong axis" if bug else ""


def softplus(dtype, bug):
    rule = softplus_rule(bug)  # bug: sigmoid(-x) for sigmoid(x)
    x = np.linspace(-6, 6, 13).astype(dtype)
    return lambda x: rule(x) * 2.0, (x,), ("rev",), "sigmoid(-x) for sigmoid(x)" if bug else ""


def safe_norm(dtype, bug):
    @jax.custom_jvp
    def norm(x):
        return jnp.sqrt(jnp.sum(x * x, axis=-1))

    @norm.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        n = norm(x)
        safe = jnp.where(n > 0, n, 1.0)
        d = safe + 1e-3 if bug else safe  # bug: a "safe" epsilon that biases the derivative
        return n, jnp.sum(x * t, axis=-1) / d
    x = _rng(2).standard_normal((4, 3)).astype(dtype) * 2
    return lambda x: norm(x), (x,), ("fwd", "rev"), "norm + 1e-3 in the derivative" if bug \
        else ""


def linear_solve(dtype, bug):
    @jax.custom_vjp
    def solve(A, b):
        return jnp.linalg.solve(A, b)

    def fwd(A, b):
        x = solve(A, b)
        return x, (A, x)

    def bwd(res, g):
        A, x = res
        bbar = jnp.linalg.solve(A if bug else A.T, g)  # bug: A for A^T
        return -jnp.outer(bbar, x), bbar
    solve.defvjp(fwd, bwd)
    r = _rng(3)
    A = (np.eye(4) * 3 + r.standard_normal((4, 4))).astype(dtype)
    b = r.standard_normal(4).astype(dtype)
    return lambda A, b: solve(A, b), (A, b), ("rev",), "A for A^T" if bug else ""


def fixed_point(dtype, bug):
    @jax.custom_vjp
    def solve(W, x):
        z = jax.lax.fori_loop(0, 60, lambda i, z: jnp.tanh(W @ z + x), jnp.zeros_like(x))
        return z

    def fwd(W, x):
        z = solve(W, x)
        return z, (W, x, z)

    def bwd(res, g):
        W, x, z = res
        d = 1 - z * z  # z = tanh(W z + x): dz = d * (W dz + dW z + dx)
        if bug:  # bug: one step, no (I - d W)^-T
            w = g
        else:
            w = jnp.linalg.solve((jnp.eye(z.size, dtype=z.dtype) - d[:, None] * W).T, g)
        u = d * w
        return jnp.outer(u, z), u
    solve.defvjp(fwd, bwd)
    r = _rng(4)
    W = (0.3 * r.standard_normal((5, 5)) / np.sqrt(5)).astype(dtype)
    x = r.standard_normal(5).astype(dtype)
    return lambda W, x: solve(W, x), (W, x), ("rev",), "no implicit solve" if bug else ""


def layer_norm(dtype, bug):
    @jax.custom_vjp
    def ln(x, gamma, beta):
        mu = jnp.mean(x, -1, keepdims=True)
        s = jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5)
        return (x - mu) / s * gamma + beta

    def fwd(x, gamma, beta):
        mu = jnp.mean(x, -1, keepdims=True)
        s = jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5)
        xhat = (x - mu) / s
        return xhat * gamma + beta, (xhat, s, gamma)

    def bwd(res, g):
        xhat, s, gamma = res
        gx = g * gamma
        dx = gx - jnp.mean(gx, -1, keepdims=True)
        if not bug:  # bug: the xhat * mean(gx * xhat) term is dropped
            dx = dx - xhat * jnp.mean(gx * xhat, -1, keepdims=True)
        return dx / s, jnp.sum(g * xhat, 0), jnp.sum(g, 0)
    ln.defvjp(fwd, bwd)
    r = _rng(5)
    x = r.standard_normal((3, 8)).astype(dtype)
    gamma = (1 + 0.1 * r.standard_normal(8)).astype(dtype)
    beta = (0.1 * r.standard_normal(8)).astype(dtype)
    return lambda x, gm, bt: jnp.sum(jnp.sin(ln(x, gm, bt))), (x, gamma, beta), ("rev",), \
        "drops xhat * mean(g xhat)" if bug else ""


def attention(dtype, bug):
    @jax.custom_vjp
    def attend(q, k, v):
        p = jax.nn.softmax(q @ k.T / np.sqrt(q.shape[-1]), axis=-1)
        return p @ v

    def fwd(q, k, v):
        scale = 1 / np.sqrt(q.shape[-1])
        p = jax.nn.softmax(q @ k.T * scale, axis=-1)
        return p @ v, (q, k, v, p, scale)

    def bwd(res, g):
        q, k, v, p, scale = res
        dp = g @ v.T
        ds = p * (dp - jnp.sum(dp * p, -1, keepdims=True))
        dq_scale = 1.0 if bug else scale  # bug: the 1/sqrt(d) scale missing in dq
        return ds @ k * dq_scale, ds.T @ q * scale, p.T @ g
    attend.defvjp(fwd, bwd)
    r = _rng(6)
    q, k, v = (r.standard_normal((4, 8)).astype(dtype) for _ in range(3))
    return lambda q, k, v: attend(q, k, v), (q, k, v), ("rev",), "1/sqrt(d) missing in dq" \
        if bug else ""


def gelu(dtype, bug):
    rule = gelu_rule(bug)  # bug: the derivative of the tanh approximation
    x = np.linspace(-3, 3, 9).astype(dtype)
    return rule, (x,), ("fwd", "rev"), "tanh-approximation derivative" if bug else ""


def batch_norm(dtype, bug):
    @jax.custom_vjp
    def bn(x):
        mu = jnp.mean(x, 0)
        var = jnp.var(x, 0, ddof=1 if bug else 0)  # bug: N - 1 here, N in the backward
        return (x - mu) / jnp.sqrt(var + 1e-5)

    def fwd(x):
        mu = jnp.mean(x, 0)
        var = jnp.var(x, 0, ddof=1 if bug else 0)
        s = jnp.sqrt(var + 1e-5)
        return (x - mu) / s, ((x - mu) / s, s)

    def bwd(res, g):
        xhat, s = res
        dx = (g - jnp.mean(g, 0) - xhat * jnp.mean(g * xhat, 0)) / s  # the N formula
        return (dx,)
    bn.defvjp(fwd, bwd)
    x = _rng(7).standard_normal((64, 3)).astype(dtype)
    return lambda x: jnp.sum(jnp.tanh(bn(x)) * jnp.arange(1.0, 4.0, dtype=x.dtype)), (x,), \
        ("rev",), "N - 1 forward, N backward" if bug else ""


def mlp(dtype, bug):
    @jax.custom_vjp
    def swish(x):
        return x * jax.nn.sigmoid(x)

    def fwd(x):
        return swish(x), x

    def bwd(x, g):
        s = jax.nn.sigmoid(x)
        return (g * (s if bug else s + x * s * (1 - s)),)  # bug: the x s (1 - s) term missing
    swish.defvjp(fwd, bwd)

    def loss(params, X, y):
        h = swish(X @ params["W1"] + params["b1"])
        out = h @ params["W2"] + params["b2"]
        return jnp.mean((out[:, 0] - y) ** 2)
    r = _rng(8)
    params = {"W1": r.standard_normal((4, 6)) / 2, "b1": 0.1 * r.standard_normal(6),
              "W2": r.standard_normal((6, 1)) / 2, "b2": np.zeros(1)}
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = r.standard_normal((16, 4)).astype(dtype)
    y = r.standard_normal(16).astype(dtype)
    return lambda p: loss(p, X, y), (params,), ("rev",), "swish' missing x s (1 - s)" if bug \
        else ""


def softplus_naive(dtype, bug):
    """The naive rule exp(x) / (1 + exp(x)) is right in exact arithmetic, but exp(x)
    overflows float16 beyond x = 11: inf / inf = NaN there (a bug in float16 only)."""
    @jax.custom_vjp
    def sp(x):
        return jnp.logaddexp(x, 0.0)

    def bwd(x, g):
        e = jnp.exp(x)
        return (g * (e / (1 + e) if bug else jax.nn.sigmoid(x)),)
    sp.defvjp(lambda x: (sp(x), x), bwd)
    x = np.linspace(-14, 14, 15).astype(dtype)
    what = "exp(x)/(1+exp(x)) overflows" if bug and dtype == np.float16 else ""
    return lambda x: sp(x), (x,), ("rev",), what


def fixed_point_while(dtype, bug):
    """JAX's documentation's fixed point: a while loop to a tolerance, the VJP by a second
    fixed-point iteration (implicit function theorem)."""
    tol = 1e-6 if dtype == np.float32 else 1e-3

    def iterate(f, z0):
        def cond(c):  # to a tolerance, with an iteration cap (a stalled loop would hang)
            return (jnp.max(jnp.abs(c[0] - c[1])) > tol) & (c[2] < 500)

        def body(c):
            return c[1], f(c[1]), c[2] + 1
        return jax.lax.while_loop(cond, body, (z0, f(z0), 0))[1]

    @jax.custom_vjp
    def solve(W, x):
        return iterate(lambda z: jnp.tanh(W @ z + x), jnp.zeros_like(x))

    def fwd(W, x):
        z = solve(W, x)
        return z, (W, x, z)

    def bwd(res, g):
        W, x, z = res
        d = 1 - z * z
        M = (d[:, None] * W) if bug else (d[:, None] * W).T  # bug: J for J^T
        w = iterate(lambda w: g + M @ w, g)
        u = d * w
        return jnp.outer(u, z), u
    solve.defvjp(fwd, bwd)
    r = _rng(9)
    W = (0.5 * r.standard_normal((5, 5)) / np.sqrt(5)).astype(dtype)
    x = r.standard_normal(5).astype(dtype)
    return lambda W, x: solve(W, x), (W, x), ("rev",), "J for J^T in the adjoint loop" \
        if bug else ""


def mixed_dense(dtype, bug):
    """Mixed precision: the matmul runs in bfloat16 (explicit casts), so the rules cannot be
    replayed in float64; the check falls back to bfloat16's tolerance and says so."""
    @jax.custom_vjp
    def dense(W, x):
        return (x.astype(jnp.bfloat16) @ W.astype(jnp.bfloat16)).astype(x.dtype)

    def fwd(W, x):
        return dense(W, x), (W, x)

    def bwd(res, g):
        W, x = res
        gb = g.astype(jnp.bfloat16)
        dW = (x.astype(jnp.bfloat16).T @ gb).astype(W.dtype)
        dx = (gb @ (W if bug else W.T).astype(jnp.bfloat16)).astype(x.dtype)  # bug: W for W^T
        return dW, dx
    dense.defvjp(fwd, bwd)
    r = _rng(10)
    W = r.standard_normal((4, 4)).astype(dtype)
    x = r.standard_normal((3, 4)).astype(dtype)
    return lambda W, x: jnp.sum(jnp.tanh(dense(W, x))), (W, x), ("rev",), "W for W^T" \
        if bug else ""


def leaky_relu(dtype, bug):
    """A kink: away from 0 the rule must match; the bug is a slope that differs from the
    forward's (0.1 there, 0.01 in the rule)."""
    @jax.custom_jvp
    def act(x):
        return jnp.where(x > 0, x, 0.1 * x)

    @act.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return act(x), jnp.where(x > 0, 1.0, 0.01 if bug else 0.1).astype(x.dtype) * t
    x = (_rng(11).standard_normal(12) + 0.05).astype(dtype)
    return lambda x: act(x), (x,), ("fwd", "rev"), "slope 0.01 for 0.1" if bug else ""


def two_outputs(dtype, bug):
    """A pytree output (mean, log-variance) with one custom rule for both."""
    @jax.custom_vjp
    def stats(x):
        m = jnp.mean(x)
        return m, jnp.log(jnp.mean((x - m) ** 2))

    def fwd(x):
        m, lv = stats(x)
        return (m, lv), (x, m, lv)

    def bwd(res, g):
        x, m, lv = res
        gm, glv = g
        n = x.size
        dlv = glv * 2 * (x - m) / (n * jnp.exp(lv)) * (0.5 if bug else 1.0)  # bug: half
        return (gm / n + dlv,)
    stats.defvjp(fwd, bwd)
    x = _rng(12).standard_normal(10).astype(dtype)
    return lambda x: stats(x), (x,), ("rev",), "log-variance cotangent halved" if bug else ""


def clip_ste(dtype, bug):
    """A straight-through estimator (gradient 1 through a clip) is untrue where the clip is
    active: reported as the mismatch it is. The correct version masks the gradient."""
    @jax.custom_vjp
    def clip(x):
        return jnp.clip(x, -1.0, 1.0)

    def bwd(x, g):
        return (g if bug else g * (jnp.abs(x) < 1).astype(g.dtype),)
    clip.defvjp(lambda x: (clip(x), x), bwd)
    x = np.array([-2.5, -1.5, -0.5, 0.25, 0.75, 1.5, 3.0]).astype(dtype)
    return lambda x: clip(x) * 3.0, (x,), ("rev",), "straight-through gradient" if bug else ""


def tanh_mlp_order2(dtype, bug):
    """Second order: a custom_jvp tanh whose JVP rule is itself differentiated."""
    @jax.custom_jvp
    def th(x):
        return jnp.tanh(x)

    @th.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        y = th(x)
        d = 1 - y * y
        return y, (d * (1 + 1e-3 * x) if bug else d) * t  # bug: off by 1e-3 x
    r = _rng(13)
    W = (r.standard_normal((3, 4)) / 2).astype(dtype)
    x = r.standard_normal(3).astype(dtype)
    return lambda W, x: jnp.sum(th(x @ W) ** 2), (W, x), ("fwd", "rev"), \
        "derivative off by 1e-3 x" if bug else ""


FAMILIES = {"log-sum-exp": lse, "softplus": softplus, "safe norm": safe_norm,
            "linear solve": linear_solve, "fixed point": fixed_point, "layer norm": layer_norm,
            "attention": attention, "GELU": gelu, "batch norm": batch_norm, "MLP dict": mlp,
            "softplus naive": softplus_naive, "fixed pt while": fixed_point_while,
            "mixed bf16": mixed_dense, "leaky relu": leaky_relu, "two outputs": two_outputs,
            "clip STE": clip_ste, "tanh order 2": tanh_mlp_order2}
ORDER2 = {"tanh order 2"}
FLOAT32_ONLY = {"linear solve", "fixed point", "mixed bf16"}
DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": jnp.bfloat16}


def cases(dtypes: list[str]) -> list[Case]:
    out = []
    for family, make in FAMILIES.items():
        for dname in dtypes:
            if family in FLOAT32_ONLY and dname != "float32":
                continue
            for bug in (False, True):
                f, args, modes, what = make(DTYPES[dname], bug)
                args = tuple(jax.tree_util.tree_map(jnp.asarray, a) for a in args)
                out.append(Case(family, dname, what, f, args, modes,
                                2 if family in ORDER2 else 1))
    return out


# -- running both tools ------------------------------------------------------------------------

def run_dc(case: Case) -> tuple[str, bool | None, str]:
    try:
        r = dc.check_grads(case.f, case.args, order=case.order, modes=case.modes)
    except Exception as exc:  # noqa: BLE001 - a crash is a result here
        return f"CRASH {type(exc).__name__}", None, ""
    verdict = "OK" if r.ok else "FAILED"
    detail = f"rel {r.max_rel_error:.1e}" + (f" at {r.worst}" if not r.ok else "")
    return verdict, r.ok, detail


def run_jax(case: Case) -> tuple[str, bool | None]:
    try:
        jax_check_grads(case.f, case.args, order=case.order, modes=case.modes)
        return "OK", True
    except AssertionError:
        return "FAILED", False
    except Exception as exc:  # noqa: BLE001
        return f"CRASH {type(exc).__name__}", None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="float32 only")
    ap.add_argument("--family", help="only this family")
    opts = ap.parse_args()
    todo = cases(["float32"] if opts.quick else list(DTYPES))
    if opts.family:
        todo = [c for c in todo if c.family == opts.family]
    print(f"{'family':<13} {'dtype':<9} {'version':<31} {'dc.check_grads':<16} "
          f"{'right?':<7} {'jax.test_util':<15} {'right?':<7} {'s':>5}  detail")
    score = {"dc": 0, "jax": 0}
    for c in todo:
        t = time.perf_counter()
        v, ok, detail = run_dc(c)
        dt = time.perf_counter() - t
        jv, jok = run_jax(c)
        expect = not c.bug
        right = ok is not None and ok == expect
        jright = jok is not None and jok == expect
        score["dc"] += right
        score["jax"] += jright
        print(f"{c.family:<13} {c.dtype:<9} {(('BUG: ' + c.bug) if c.bug else 'correct'):<31} "
              f"{v:<16} {'yes' if right else 'NO':<7} {jv:<15} {'yes' if jright else 'NO':<7} "
              f"{dt:5.1f}  {detail}")
    n = len(todo)
    print(f"\nright verdicts: dc.check_grads {score['dc']}/{n}, jax.test_util.check_grads "
          f"{score['jax']}/{n} (a bug flagged, a correct rule passed, no crash)")


if __name__ == "__main__":
    main()
