"""Checking custom JAX derivative rules: softplus (custom_vjp), GELU and log-sum-exp
(custom_jvp).

The rules are checked in float32 with ``dc.check_grads``, right and with a bug, beside
``jax.test_util.check_grads``:

* the softplus backward written as ``sigmoid(-x)`` instead of ``sigmoid(x)`` is flagged by
  both, and diffcheck names the entry and the mode (VJP);
* the exact GELU with the tanh approximation's derivative (off by up to 1e-3 relative) is
  missed by ``jax.test_util`` (its float32 tolerance is 2e-3) and flagged by diffcheck, whose
  float64 replay of the rule separates rounding from error;
* the correct log-sum-exp of logits around 30 (|f| about 650) is rejected by
  ``jax.test_util`` (float32 rounding of f over its step 1e-4 exceeds its tolerance) and
  passed by diffcheck; the one with the softmax over the wrong axis is flagged by both;
* then ``minimize(check=True)`` refuses to optimise with the wrong rule.

The rule builders are shared with ``tests/test_jax_check.py`` and ``benchmarks/jax_cases.py``.

Run: ``python examples/jax_custom_rules.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf
from jax.test_util import check_grads as jax_check_grads

import diffcheck as dc
from diffcheck.optim import minimize


def softplus(bug: bool = False):
    @jax.custom_vjp
    def sp(x):
        return jnp.logaddexp(x, 0.0)

    def fwd(x):
        return sp(x), x

    def bwd(x, g):
        return (g * jax.nn.sigmoid(-x if bug else x),)
    sp.defvjp(fwd, bwd)
    return sp


def gelu(tanh_derivative: bool = False):
    @jax.custom_jvp
    def g(x):
        return 0.5 * x * (1 + erf(x / np.sqrt(2)))

    @g.defjvp
    def g_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        if tanh_derivative:
            c = np.sqrt(2 / np.pi)
            th = jnp.tanh(c * (x + 0.044715 * x ** 3))
            d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)
        else:
            d = 0.5 * (1 + erf(x / np.sqrt(2))) + x * jnp.exp(-x * x / 2) / np.sqrt(2 * np.pi)
        return g(x), d * t
    return g


def logsumexp(bug: bool = False):
    """Row-wise log-sum-exp (max-shifted) with a custom_jvp; the bug: softmax over axis 0."""
    @jax.custom_jvp
    def lse(x):
        m = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
        return (m + jnp.log(jnp.sum(jnp.exp(x - m), axis=-1, keepdims=True)))[..., 0]

    @lse.defjvp
    def lse_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return lse(x), jnp.sum(jax.nn.softmax(x, axis=0 if bug else -1) * t, axis=-1)
    return lse


def logits(dtype=np.float32) -> jax.Array:
    """20 x 10 logits around 30: sum of the row log-sum-exps is about 650."""
    return jnp.asarray((30 + 3 * np.random.default_rng(1).standard_normal((20, 10))).astype(dtype))


def jax_verdict(f, args, modes) -> str:
    try:
        jax_check_grads(f, args, order=1, modes=modes)
        return "passes"
    except AssertionError:
        return "fails"


def main() -> dict:
    with jax.enable_x64(False):  # JAX's default configuration: float32
        return run()


def run() -> dict:
    x = jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float32)
    out = {}
    cases = (("softplus", softplus, ("rev",), x), ("gelu", gelu, ("fwd", "rev"), x),
             ("logsumexp", lambda bug: _sum(logsumexp(bug)), ("fwd", "rev"), logits()))
    for name, make, modes, x in cases:
        for bug in (False, True):
            f = make(bug)
            r = dc.check_grads(f, (x,), order=1, modes=modes)
            key = f"{name}{'_bug' if bug else ''}"
            out[key] = {"ok": r.ok, "worst": r.worst, "jax": jax_verdict(f, (x,), modes),
                        "failed_modes": [m.label for m in r.modes if not m.ok]}
            where = "" if r.ok else f" ({', '.join(out[key]['failed_modes'])} at {r.worst})"
            print(f"{key:<13} dc.check_grads: {'OK' if r.ok else 'FAILED'}{where}; "
                  f"jax.test_util.check_grads {out[key]['jax']}")
    print()
    print(dc.check_grads(gelu(True), (jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float32),),
                         modes=("rev",)))

    def objective(w):
        return jnp.sum(softplus(True)(w) + w ** 2)
    try:
        minimize(objective, jnp.array([0.5, -1.0]), check=True)
        out["minimize_refused"] = False
    except dc.DerivativeError as err:
        out["minimize_refused"] = True
        print("\n" + str(err).splitlines()[0])
    return out


def _sum(g):
    return lambda x: jnp.sum(g(x))


if __name__ == "__main__":
    main()
