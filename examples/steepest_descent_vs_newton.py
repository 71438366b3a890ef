"""Steepest descent vs Newton's method (lecture notes: "minimize F(x)").

Steepest descent x_{k+1} = x_k - ζ∇F(x_k) converges linearly: each step multiplies the
error by about the same factor, here (1 - ζλ_min)² with λ_min the smallest Hessian
eigenvalue at the minimum. Newton x_{k+1} = x_k - H⁻¹∇F converges quadratically: the error
is squared, so the observed order q_k = log(e_{k+1}/e_k) / log(e_k/e_{k-1}) tends to 2.

The test function is Boyd & Vandenberghe's

    F(x, y) = exp(x + 3y - 0.1) + exp(x - 3y - 0.1) + exp(-x - 0.1),

minimised at (-ln(2)/2, 0) with F* = 2√2·exp(-0.1), where the Hessian is diag(F*, 9F*/2).
Its gradient and Hessian are checked by every engine first; steepest descent runs as
full-batch ``dc.optim.sgd`` with a constant step, Newton as ``dc.optim.minimize``.

Run: python examples/steepest_descent_vs_newton.py
"""

import math

import numpy as np

import diffcheck as dc

TEXT = "exp(x + 3*y - 0.1) + exp(x - 3*y - 0.1) + exp(-x - 0.1)"
F_STAR = 2 * math.sqrt(2) * math.exp(-0.1)
STEP = 0.05
X0 = [-1.0, 1.0]


def objective():
    import jax.numpy as jnp

    def F(v):
        x, y = v[0], v[1]
        return jnp.exp(x + 3 * y - 0.1) + jnp.exp(x - 3 * y - 0.1) + jnp.exp(-x - 0.1)

    return F


def steepest_descent(F, steps: int) -> np.ndarray:
    """F(x_k) - F* for k = 1..steps, with a constant step ζ = STEP."""
    import jax
    import jax.numpy as jnp

    opt = dc.optim.sgd(learning_rate=STEP)

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(jax.grad(F)(x), state, x)
        x = dc.optim.apply_updates(x, updates)
        return (x, state), F(x)

    x0 = jnp.array(X0)
    _, fs = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
    return np.asarray(fs) - F_STAR


def main() -> dict:
    report = dc.check_expression(TEXT, hessian=True, points=3)
    print(f"gradient and Hessian of F checked at 3 random points: {report.ok}")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    F = objective()
    gd = steepest_descent(F, 60)
    ratios = gd[1:] / gd[:-1]
    predicted = (1 - STEP * F_STAR) ** 2
    res = dc.optim.minimize(F, jnp.array(X0), method="newton", tol=1e-10, history=True)
    newton = np.asarray(res.history.f)[: int(res.nit) + 1] - F_STAR
    q_newton = dc.optim.observed_order(newton[newton > 1e-14])
    q_gd = dc.optim.observed_order(gd)

    print()
    print(f"{'k':>3}  {'steepest descent':>16}  {'e_k/e_(k-1)':>11}  {'Newton':>10}")
    for k in range(1, 13):
        nw = f"{newton[k]:10.3e}" if k < len(newton) else ""
        print(f"{k:>3}  {gd[k - 1]:16.3e}  {ratios[k - 2] if k > 1 else float('nan'):11.4f}"
              f"  {nw}".rstrip())
    print()
    print(f"steepest descent (ζ = {STEP}): e_60 = {gd[-1]:.2e}, error ratio -> "
          f"{ratios[-1]:.4f}; predicted (1 - ζλ_min)² = {predicted:.4f}; "
          f"observed order {q_gd[-1]:.2f} (linear)")
    print(f"Newton: {int(res.nit)} iterations to ‖∇F‖ <= 1e-10, observed orders "
          f"{np.round(q_newton, 2).tolist()} (quadratic)")
    print(f"x* = {np.asarray(res.x).round(10).tolist()}, -ln(2)/2 = {-math.log(2) / 2:.10f}")
    return {"checked": report.ok, "gd_errors": gd.tolist(), "gd_ratio": float(ratios[-1]),
            "predicted_ratio": predicted, "gd_order": float(q_gd[-1]),
            "newton_nit": int(res.nit), "newton_errors": newton.tolist(),
            "newton_orders": q_newton.tolist(), "x": np.asarray(res.x).tolist(),
            "newton_success": bool(res.success)}


if __name__ == "__main__":
    main()
