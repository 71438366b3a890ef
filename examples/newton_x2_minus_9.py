"""Newton's method on f(x) = x² - 9 and its convergence table (lecture notes: "Newton's Method").

x_{k+1} = x_k - f(x_k)/f'(x_k) = x_k - (x_k² - 9)/(2x_k), and the notes derive

    x_{k+1} - 3 = (x_k - 3)² / (2x_k),

quadratic convergence: the number of correct digits doubles each step. The derivative is
checked first, then taken by forward mode through the compiled Program (a dual number
flows through the same interpreter that evaluates f); diffcheck's JAX Newton solver
(``dc.optim.root``) must land on the same root in the same number of steps.

Run: python examples/newton_x2_minus_9.py
"""

import numpy as np

import diffcheck as dc
from diffcheck.check import Function
from diffcheck.engines.forward import Dual
from diffcheck.tracing import next_level

EXPR = "x**2 - 9"


def value_and_derivative(program, x: float) -> tuple[float, float]:
    """f(x) and f'(x) from one forward-mode pass."""
    level = next_level()
    (y,) = program.evaluate([Dual(np.float64(x), np.array([1.0]), level)])
    return float(y.val), float(y.tan[0])


def newton(x0: float, steps: int = 6) -> list[float]:
    program = Function.from_text(EXPR).program
    xs = [x0]
    for _ in range(steps):
        f, df = value_and_derivative(program, xs[-1])
        xs.append(xs[-1] - f / df)
    return xs


def main() -> dict:
    report = dc.check_expression(EXPR, points=3)
    print(f"derivative of {EXPR} checked at 3 random points: {'OK' if report.ok else 'WRONG'}")
    xs = newton(1.0)
    print()
    print(f"{'k':>2}  {'x_k':>22}  {'x_k - 3':>12}  {'(x_(k-1) - 3)^2/(2x_(k-1))':>26}")
    predicted = []  # the notes' (x_k - 3)**2 / (2 x_k), a prediction of x_(k+1) - 3
    for k, x in enumerate(xs):
        pred = None if k == 0 else (xs[k - 1] - 3) ** 2 / (2 * xs[k - 1])
        if pred is not None:
            predicted.append(pred)
        row = f"{k:>2}  {x!r:>22}  {x - 3:>12.3e}  {'' if pred is None else f'{pred:.3e}':>26}"
        print(row.rstrip())
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sol = dc.optim.root(lambda x: x**2 - 9, jnp.array([1.0]))
    print()
    print(f"dc.optim.root(x**2 - 9, x0=1): x = {float(sol.x[0]):.17g} after {int(sol.nit)} "
          f"Newton steps ({sol.message})")
    return {"derivative_ok": report.ok, "iterates": xs, "errors": [x - 3 for x in xs],
            "predicted": predicted, "root": float(sol.x[0]), "root_nit": int(sol.nit)}


if __name__ == "__main__":
    main()
