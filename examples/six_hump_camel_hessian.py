"""The six-hump camel function's Hessian (lecture notes: "Hessian").

f(x₁, x₂) = (4 - 2.1x₁² + x₁⁴/3)x₁² + x₁x₂ + (-4 + 4x₂²)x₂² has

    H = [[10x₁⁴ - 25.2x₁² + 8, 1], [1, 48x₂² - 8]],  so  H(0, 1) = [[8, 1], [1, 40]],

symmetric, as every Hessian of a twice continuously differentiable function.

Run: python examples/six_hump_camel_hessian.py
"""

import numpy as np

import diffcheck as dc

CAMEL = "(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2"


def main() -> dict:
    report = dc.check_expression(CAMEL, at="x1=0,x2=1", hessian=True)
    print(report)
    point = report.to_dict()["points"][0]
    H = point["engines"]["reverse"]["hessian"]
    print()
    print("H(0, 1) =", H, " symmetric:", bool(np.allclose(H, np.transpose(H))))
    return {"ok": report.ok, "hessian": H, "formulas": report.to_dict()["symbolic"]["hessian"]}


if __name__ == "__main__":
    main()
