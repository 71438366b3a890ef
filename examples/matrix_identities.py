"""Matrix-calculus identities, checked numerically (lecture notes: "Useful Formula").

For a non-symmetric A:

    ∇ₓ xᵀAx   = (A + Aᵀ)x      (= 2Ax only when A is symmetric)
    ∇ₓ bᵀAx   = Aᵀb
    ∇ₓ xᵀAᵀAx = 2AᵀAx

Two routes: (1) the identities written out as expressions and checked by every engine
(symbolic, forward, reverse, finite differences); (2) the same functions as plain NumPy
code (``x @ A @ x``) differentiated by diffcheck's forward-mode duals and reverse-mode
tape through NumPy's dispatch protocols.

Run: python examples/matrix_identities.py
"""

import numpy as np

import diffcheck as dc
from diffcheck.engines.forward import Dual
from diffcheck.engines.reverse import Tape, backward
from diffcheck.tracing import next_level

A = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 4.0], [0.0, 5.0, 2.0]])
B = np.array([2.0, -1.0, 3.0])
X = np.array([1.0, -2.0, 0.5])
NAMES = ["x1", "x2", "x3"]


def linear(row: np.ndarray) -> str:
    """The text of row · x, e.g. '(1*x1 + 2*x2 + 0*x3)'."""
    return "(" + " + ".join(f"{a:g}*{n}" for a, n in zip(row, NAMES, strict=True)) + ")"


IDENTITIES = {
    # name: (expression text, NumPy function, closed form of the gradient)
    "x^T A x": (" + ".join(f"{n}*{linear(A[i])}" for i, n in enumerate(NAMES)),
                lambda x: x @ (A @ x), (A + A.T) @ X),
    "b^T A x": (" + ".join(f"{b:g}*{linear(A[i])}" for i, b in enumerate(B)),
                lambda x: B @ (A @ x), A.T @ B),
    "x^T A^T A x": (" + ".join(f"{linear(A[i])}**2" for i in range(3)),
                    lambda x: (A @ x) @ (A @ x), 2 * A.T @ A @ X),
}


def forward_gradient(f, x: np.ndarray) -> np.ndarray:
    level = next_level()
    return f(Dual(x, np.eye(len(x)), level)).tan


def reverse_gradient(f, x: np.ndarray) -> np.ndarray:
    tape = Tape()
    v = tape.var(x)
    return backward(f(v))[v.index]


def main() -> dict:
    at = dict(zip(NAMES, X, strict=True))
    results = {}
    for name, (text, f, closed) in IDENTITIES.items():
        report = dc.check_expression(text, at=at)
        engines = report.to_dict()["points"][0]["engines"]
        grads = {e: np.array(v["gradient"]) for e, v in engines.items()}
        grads["numpy forward"] = forward_gradient(f, X)
        grads["numpy reverse"] = reverse_gradient(f, X)
        worst = max(float(np.max(np.abs(g - closed))) for g in grads.values())
        results[name] = {"ok": report.ok, "closed_form": closed.tolist(),
                         "max_abs_error": worst}
        print(f"∇ {name:<12} = {closed.tolist()}   engines agree: {report.ok}   "
              f"max |engine - closed form| = {worst:.1e}")
    sym = bool(np.allclose((A + A.T) @ X, 2 * A @ X))
    print(f"2Ax equals (A + Aᵀ)x for this non-symmetric A: {sym}")
    results["2Ax_is_right"] = sym
    return results


if __name__ == "__main__":
    main()
