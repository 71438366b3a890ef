"""The Jacobian of a vector function f: R² -> R³ (lecture notes: "Jacobian").

f(x) = (2x₁ + x₂², -x₁² + 3x₂, 4x₁x₂)ᵀ has

    J = [[2, 2x₂], [-2x₁, 3], [4x₂, 4x₁]],  so  J(2, 1) = [[2, 2], [-4, 3], [4, 8]].

A bracketed list is checked as a Jacobian; row j is the gradient of f_j.

Run: python examples/jacobian_at_2_1.py
"""

import diffcheck as dc


def main() -> dict:
    report = dc.check_expression("[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]", at="x1=2,x2=1")
    print(report)
    point = report.to_dict()["points"][0]
    J = point["engines"]["forward"]["jacobian"]
    print()
    print("J(2, 1) =", J)
    return {"ok": report.ok, "jacobian": J, "value": point["value"],
            "formulas": report.to_dict()["symbolic"]["jacobian"]}


if __name__ == "__main__":
    main()
