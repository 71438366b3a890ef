"""The lecture notes' backpropagation examples as evaluation traces.

1. f(x) = sqrt(x² + exp(x²)) + cos(x² + exp(x²)) (notes: "Automatic Differentiation"):
   a = x², b = exp(a), c = a + b, d = sqrt(c), e = cos(c), f = d + e, and in reverse
   ∂f/∂c = ∂d/∂c + ∂e/∂c, ∂f/∂a = ∂f/∂c (∂b/∂a + 1), ∂f/∂x = ∂f/∂a · 2x.
2. f = (x₁ + w₁)²(x₁w₁ + x₂w₂) (notes: "Back-propagation"): with d = a², e = b + c,
   ∂f/∂w₁ = 2ae + d·x₁ and ∂f/∂w₂ = d·x₂. At x₁=1, w₁=2, x₂=3, w₂=4: 93 and 27.
3. f(x, y) = x²y + (x + y)² (notes: "Computational graph"): ∂f/∂x = 2xy + 2(x + y),
   ∂f/∂y = x² + 2(x + y). At (1, 2): 10 and 7.

Each trace row is one intermediate with its value, local partials from the rule table,
forward tangent and reverse adjoint; every local partial is checked against SymPy.

Run: python examples/backprop_trace.py
"""

import math

from diffcheck.trace import evaluation_trace

AUTODIFF = "sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))"
BACKPROP = "(x1 + w1)**2*(x1*w1 + x2*w2)"
GRAPH = "x**2*y + (x + y)**2"


def adjoints(trace) -> dict:
    return {r.node: r.adjoint[0] for r in trace.rows}


def main() -> dict:
    t1 = evaluation_trace(AUTODIFF, "x=1")
    t2 = evaluation_trace(BACKPROP, "x1=1,w1=2,x2=3,w2=4", wrt="w1,w2")
    t3 = evaluation_trace(GRAPH, "x=1,y=2")
    for t in (t1, t2, t3):
        print(t)
        print()
    # the notes' hand derivation of example 1, node by node
    c = 1 + math.e
    df_dc = 1 / (2 * math.sqrt(c)) - math.sin(c)
    hand = {"c": df_dc, "a": df_dc * (math.e + 1), "x": df_dc * (math.e + 1) * 2}
    print(f"example 1 by hand: ∂f/∂c = {hand['c']:.12g}, ∂f/∂a = {hand['a']:.12g}, "
          f"∂f/∂x = {hand['x']:.12g}")
    return {"traces": [t1, t2, t3], "ok": all(t.ok for t in (t1, t2, t3)),
            "definitions": [[r.definition for r in t.rows] for t in (t1, t2, t3)],
            "adjoints": [adjoints(t) for t in (t1, t2, t3)], "hand": hand}


if __name__ == "__main__":
    main()
