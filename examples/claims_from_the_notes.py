"""The lecture notes' hand-derived derivatives, checked as claims (``--claim``).

Each result the notes derive by hand is given to diffcheck as a claim about F's derivative:

* the Jacobian of f: R² -> R³, f(x) = (2x₁ + x₂², -x₁² + 3x₂, 4x₁x₂)ᵀ:
  J = [[2, 2x₂], [-2x₁, 3], [4x₂, 4x₁]], J(2, 1) = [[2, 2], [-4, 3], [4, 8]];
* the six-hump camel Hessian H = [[10x₁⁴ - 25.2x₁² + 8, 1], [1, 48x₂² - 8]] (25.2 is exact:
  decimals mean the decimals they spell);
* the computational-graph gradient of f = x²y + (x+y)²: (2xy + 2(x+y), x² + 2(x+y));
* the backpropagation example f = (x₁ + w₁)²(x₁w₁ + x₂w₂), gradient in (w₁, w₂);
* the multivariate chain rule example f(g, h) = g²h + h, g = 3x, h = x²:
  df/dx = 2xg² + 6gh + 2x;
* the automatic-differentiation illustration f = sqrt(x² + exp(x²)) + cos(x² + exp(x²)):
  df/dx = (1/(2 sqrt(c)) - sin(c)) (exp(a) + 1) 2x, with a = x², c = a + exp(a).

Then two slips a student makes with the same examples: the chain-rule factor ∂a/∂x = 2x
forgotten in the last one, and the Jacobian written transposed.

Run: python examples/claims_from_the_notes.py
"""

import diffcheck as dc
from diffcheck.claims.text import claim_lines, summary_line

A, C = "x**2", "x**2 + exp(x**2)"
NOTES = {
    "Jacobian R2 -> R3": dict(expr="[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]",
                              claim="[[2, 2*x2], [-2*x1, 3], [4*x2, 4*x1]]", at="x1=2,x2=1"),
    "six-hump camel Hessian": dict(
        expr="(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2",
        claim_hessian="[[10*x1**4 - 25.2*x1**2 + 8, 1], [1, 48*x2**2 - 8]]", at="x1=0,x2=1"),
    "computational graph": dict(expr="x**2*y + (x+y)**2",
                                claim="[2*x*y + 2*(x+y), x**2 + 2*(x+y)]", at="x=1,y=2"),
    "backpropagation": dict(expr="(x1 + w1)**2*(x1*w1 + x2*w2)", wrt="w1,w2",
                            claim="[2*(x1 + w1)*(x1*w1 + x2*w2) + (x1 + w1)**2*x1, "
                                  "(x1 + w1)**2*x2]", at="x1=1,w1=2,x2=3,w2=4"),
    "multivariate chain rule": dict(expr="(3*x)**2*x**2 + x**2",
                                    claim="2*x*(3*x)**2 + 6*(3*x)*x**2 + 2*x"),
    "AD illustration": dict(expr=f"sqrt({C}) + cos({C})",
                            claim=f"(1/(2*sqrt({C})) - sin({C}))*(exp({A}) + 1)*2*x"),
}
SLIPS = {
    "AD illustration, da/dx forgotten": dict(
        expr=f"sqrt({C}) + cos({C})", claim=f"(1/(2*sqrt({C})) - sin({C}))*(exp({A}) + 1)"),
    "Jacobian written transposed": dict(expr="[2*x1 + x2**2, -x1**2 + 3*x2]",
                                        claim="[[2, -2*x1], [2*x2, 3]]"),
}


def verdicts(report) -> list[str]:
    return [e.verdict for c in report.claims for e in c.entries]


def main() -> dict:
    out: dict = {}
    for name, kwargs in {**NOTES, **SLIPS}.items():
        report = dc.check_expression(**kwargs)
        print(f"== {name}: {kwargs['expr']}")
        print("\n".join(claim_lines(report)) + summary_line(report) + "\n")
        wrong = [e for c in report.claims for e in c.entries if not e.ok]
        out[name] = {"ok": report.ok, "verdicts": verdicts(report),
                     "diagnoses": [e.diagnosis.kind if e.diagnosis else None for e in wrong],
                     "counterexamples": [e.counterexample for e in wrong]}
    jac = dc.check_expression(**NOTES["Jacobian R2 -> R3"]).to_dict()["points"][0]
    out["J(2, 1)"] = jac["engines"]["forward"]["jacobian"]
    camel = dc.check_expression(**NOTES["six-hump camel Hessian"]).to_dict()["points"][0]
    out["H(0, 1)"] = camel["engines"]["reverse"]["hessian"]
    print("J(2, 1) =", out["J(2, 1)"], "  H(0, 1) =", out["H(0, 1)"])
    return out


if __name__ == "__main__":
    main()
