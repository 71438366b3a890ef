"""SGD with a constant step vs a 1/k step, against the lecture notes' bound.

For convex F(w) = E[f(w, d)] with ‖w₀ - w*‖ <= R and E‖ĝ‖² <= G², SGD
w_{i+1} = w_i - α_i ĝ_i satisfies, for the α-weighted average w̄_k of w_0..w_k,

    E[F(w̄_k)] - F* <= (R² + G² Σ α_i²) / (2 Σ α_i),

which for a constant step α_i = h is R²/(2h(k+1)) + G²h/2: it stalls at G²h/2. With
α_i = h/(i+1) (Σα = ∞, Σα² < ∞) the bound goes to 0.

Here f(w, d) = log cosh(w - d) over 200 fixed data points d (uniform sampling, one
sample per step), so |∂f/∂w| = |tanh(w - d)| <= 1 = G. F* comes from Newton's method; the
expectation is estimated over 32 independent runs (``jax.vmap``).

Run: python examples/sgd_step_sizes.py
"""

import numpy as np

import diffcheck as dc

H = 0.5
STEPS = 1000
RUNS = 32
W0 = 4.0
CHECKPOINTS = (10, 100, 1000)


def main() -> dict:
    report = dc.check_expression("log(cosh(w - d))", wrt="w", points=3)
    print(f"∂f/∂w = tanh(w - d) checked: {report.ok}")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    data = jnp.asarray(np.random.default_rng(0).normal(1.0, 2.0, size=200))
    F = lambda w: jnp.mean(jnp.log(jnp.cosh(w - data)))  # noqa: E731
    star = dc.optim.minimize(F, jnp.array(0.0), method="newton", tol=1e-12)
    w_star, f_star = float(star.x), float(star.fun)
    R, G = abs(W0 - w_star), 1.0

    def run(key, schedule):
        opt = dc.optim.sgd(learning_rate=schedule)
        grad = jax.grad(lambda w, d: jnp.log(jnp.cosh(w - d)))

        def step(carry, k):
            w, state, num, den, key = carry
            key, sub = jax.random.split(key)
            d = data[jax.random.randint(sub, (), 0, data.shape[0])]
            a = schedule(k)
            num, den = num + a * w, den + a
            updates, state = opt.update(grad(w, d), state, w)
            return (dc.optim.apply_updates(w, updates), state, num, den, key), num / den

        w0 = jnp.array(W0)
        carry = (w0, opt.init(w0), jnp.array(0.0), jnp.array(0.0), key)
        _, averages = jax.lax.scan(step, carry, jnp.arange(STEPS))
        return averages

    keys = jax.random.split(jax.random.PRNGKey(0), RUNS)
    schedules = {"constant h": dc.optim.constant_schedule(H),
                 "h/(k+1)": dc.optim.robbins_monro(H)}
    out = {"w_star": w_star, "f_star": f_star, "R": R}
    print(f"w* = {w_star:.6f}, F* = {f_star:.6f}, R = |w0 - w*| = {R:.4f}, G = 1, h = {H}")
    for name, sched in schedules.items():
        averages = jax.jit(jax.vmap(lambda k, s=sched: run(k, s)))(keys)  # (RUNS, STEPS)
        gap = np.asarray(jax.vmap(jax.vmap(F))(averages)).mean(axis=0) - f_star
        alphas = np.asarray(jax.vmap(sched)(jnp.arange(STEPS)), dtype=float)
        bound = (R**2 + G**2 * np.cumsum(alphas**2)) / (2 * np.cumsum(alphas))
        print()
        print(f"{name}:   k   E[F(w̄_k)] - F*     bound")
        for k in CHECKPOINTS:
            print(f"      {k:>6}   {gap[k - 1]:14.3e}  {bound[k - 1]:9.3e}")
        out[name] = {"gap": gap[[k - 1 for k in CHECKPOINTS]].tolist(),
                     "bound": bound[[k - 1 for k in CHECKPOINTS]].tolist()}
    limit = G**2 * H / 2
    print()
    print(f"constant-step bound R²/(2h(k+1)) + G²h/2 -> G²h/2 = {limit}; the 1/k bound -> 0")
    out["limit"] = limit
    return out


if __name__ == "__main__":
    main()
