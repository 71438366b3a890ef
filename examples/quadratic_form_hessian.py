"""Quadratic form and its Hessian (lecture notes: Taylor expansion, Hessian H_ij).

F(x, y) = 3x² + 2xy + 3y² = [x y] A [x y]ᵀ with A = [[3, 1], [1, 3]], so
f_x = 6x + 2y, f_xx = 6 and the Hessian is the constant matrix H = 2A = [[6, 2], [2, 6]].
Every engine (symbolic, forward, reverse, finite differences) must agree.

Run: python examples/quadratic_form_hessian.py
"""

import numpy as np

import diffcheck as dc


def main() -> dict:
    report = dc.check_expression("3*x**2 + 2*x*y + 3*y**2", at="x=1,y=2", hessian=True)
    point = report.to_dict()["points"][0]
    gradient = point["engines"]["reverse"]["gradient"]
    hessian = point["engines"]["forward"]["hessian"]
    A = np.array([[3.0, 1.0], [1.0, 3.0]])
    print(report)
    print()
    print("f_x = 6x + 2y at (1, 2):", 6 * 1 + 2 * 2, "  diffcheck:", gradient[0])
    print("H =", hessian, "  2A =", (2 * A).tolist())
    return {"ok": report.ok, "gradient": gradient, "hessian": hessian,
            "hessian_is_2A": bool(np.allclose(hessian, 2 * A))}


if __name__ == "__main__":
    main()
