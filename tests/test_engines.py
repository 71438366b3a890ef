"""Engine agreement on random expressions built from the rule table (Hypothesis).

Each engine is checked against independent ones: SymPy's own derivatives, JAX, finite
differences (within their own error estimate), and diffcheck's forward and reverse modes.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from diffcheck.check import Function, hessian_scale, random_points
from diffcheck.engines import ad, finite, symbolic
from diffcheck.errors import DiffcheckError, DomainError

UNARY = ["sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "atan", "asinh", "erf", "abs",
         "sigmoid", "softplus", "sinh", "cosh", "asin", "acos", "atanh", "acosh", "cbrt"]
LEAVES = ["x", "y", "z", "2", "0.5", "3", "pi"]


def texts():
    def extend(children):
        unary = st.builds(lambda f, a: f"{f}({a})", st.sampled_from(UNARY), children)
        binary = st.builds(lambda op, a, b: f"({a}) {op} ({b})",
                           st.sampled_from(["+", "-", "*", "/"]), children, children)
        power = st.builds(lambda a, p: f"({a})**{p}", children,
                          st.sampled_from(["2", "3", "0.5", "-1", "1.5", "y"]))
        atan2 = st.builds(lambda a, b: f"atan2({a}, {b})", children, children)
        return unary | binary | power | atan2

    return st.recursive(st.sampled_from(LEAVES), extend, max_leaves=8)


def _setup(text, seed, points=2):
    try:
        fn = Function.from_text(text)
    except DiffcheckError:  # e.g. a constant part undefined: log(tan(pi)), atanh(2)
        assume(False)
    assume(fn.variables)
    try:
        X = random_points(fn, points, seed)
    except DomainError:
        assume(False)
    return fn, X


def _scale(fn, X):
    return ad.jacobian_reverse(fn.program, X, absolute=True)


@given(texts(), st.integers(0, 2**16))
def test_forward_reverse_symbolic_agree(text, seed):
    fn, X = _setup(text, seed)
    J_sym, _ = symbolic.derive(fn.exprs, fn.variables).evaluate(X)
    scale = np.maximum(np.abs(J_sym), _scale(fn, X))
    assume(np.all(np.isfinite(J_sym)) and np.all(scale < 1e100))
    for J in (ad.jacobian_forward(fn.program, X), ad.jacobian_reverse(fn.program, X)):
        assert np.all(np.abs(J - J_sym) <= 1e-10 * scale), (text, X, J, J_sym)


@given(texts(), st.integers(0, 2**16))
@example(text="abs((atan2(atan2(x, 2), (2)**1.5)) - (((x) - (y)) - ((y)**2)))", seed=1382)
def test_finite_differences_stay_within_their_estimate(text, seed):
    fn, X = _setup(text, seed, points=1)
    J_ref = ad.jacobian_reverse(fn.program, X)[0]
    scale = _scale(fn, X)[0]
    assume(np.all(np.isfinite(J_ref)) and np.all(scale < 1e100))
    J, err = finite.jacobian(fn.batch, X[0], fscale=ad.rounding_scale(fn.program, X)[0])
    ok = np.abs(J - J_ref) <= err + 1e-10 * scale
    assert np.all(ok), (text, X, J, J_ref, err)


@settings(max_examples=30)
@given(texts(), st.integers(0, 2**16))
def test_hessians_agree_and_are_symmetric(text, seed):
    fn, X = _setup(text, seed)
    _, H_sym = symbolic.derive(fn.exprs, fn.variables, hessian=True).evaluate(X)
    assume(np.all(np.isfinite(H_sym)))
    H_f, H_r = ad.hessian_forward(fn.program, X), ad.hessian_reverse(fn.program, X)
    scale = hessian_scale(np.abs(H_sym), _scale(fn, X), ad.rounding_scale(fn.program, X))
    assume(np.all(scale < 1e100))
    for H in (H_f, H_r):
        assert np.all(np.abs(H - H_sym) <= 1e-9 * scale + 1e-300), (text, X)
        assert np.array_equal(H_f, np.swapaxes(H_f, -1, -2)) or \
            np.all(np.abs(H - np.swapaxes(H, -1, -2)) <= 1e-10 * scale)


@settings(max_examples=12)
@given(texts(), st.integers(0, 2**16))
def test_jax_agrees(text, seed):
    pytest.importorskip("jax")
    from diffcheck.engines import jaxref

    fn, X = _setup(text, seed)
    J_sym, _ = symbolic.derive(fn.exprs, fn.variables).evaluate(X)
    scale = np.maximum(np.abs(J_sym), _scale(fn, X))
    assume(np.all(np.isfinite(J_sym)) and np.all(scale < 1e100))
    J_jax, _ = jaxref.derivatives(fn.program, X)
    assert np.all(np.abs(J_jax - J_sym) <= 1e-10 * scale), (text, X, J_jax, J_sym)


def test_finite_differences_near_a_kink_trust_the_steps_clear_of_it():
    """|y + 1e-4| at 0: every step but the finest (6.1e-5) straddles the kink, and their central
    differences (1e-4 / h) extrapolate to a slope of 0.0037 with an estimated error of 0.0037;
    the finest step, clear of the kink, gives the slope 1, so the estimate must cover it."""
    f = lambda X: np.abs(X[:, :1] + 1e-4)  # noqa: E731
    J, err = finite.jacobian(f, np.array([0.0]))
    assert abs(J[0, 0] - 1.0) <= err[0, 0]


@pytest.mark.parametrize("x0", [1e6, -3e4, 0.3])
def test_finite_differences_resolve_unit_scale_functions_far_from_zero(x0):
    """Steps relative to |x| alone would start at 131072 for x = 1e6 and never get below 64:
    no use for sin. The ladder is extended to the same finest absolute step as near 0."""
    f = lambda X: np.stack([np.sin(X[:, 0]) * np.cos(X[:, 1])], axis=1)  # noqa: E731
    x = np.array([x0, 2.0])
    J, err = finite.jacobian(f, x)
    want = [np.cos(x0) * np.cos(2.0), -np.sin(x0) * np.sin(2.0)]
    assert np.all(np.abs(J[0] - want) <= err[0]) and np.all(err[0] < 1e-6)


def test_deep_programs_do_not_recurse():
    from diffcheck.program import Node, Program

    wide = Function.from_text("x" + "".join(f" + sin(x*{i % 7 + 1})" for i in range(3000)))
    # a chain 20 000 nodes deep: x -> sin -> *0.999 -> sin -> ... (built node by node; the
    # parser caps nesting at 100 levels and SymPy itself recurses on deep trees)
    nodes = [Node("input", name="x"), Node("const", value=0.999)]
    prev = 0
    for i in range(20_000):
        nodes.append(Node("sin", (prev,)) if i % 2 else Node("mul", (prev, 1)))
        prev = len(nodes) - 1
    deep = Program(["x"], nodes, [len(nodes) - 1])
    X = np.array([[0.3]])
    for prog in (wide.program, deep):
        J_f = ad.jacobian_forward(prog, X)
        J_r = ad.jacobian_reverse(prog, X)
        H_f, H_r = ad.hessian_forward(prog, X), ad.hessian_reverse(prog, X)
        np.testing.assert_allclose(J_f, J_r, rtol=1e-12)
        np.testing.assert_allclose(H_f, H_r, rtol=1e-9, atol=1e-300)
    # d/dx of the chain is the product of the local derivatives
    x, d = 0.3, 1.0
    for i in range(20_000):
        d *= np.cos(x) if i % 2 else 0.999
        x = np.sin(x) if i % 2 else x * 0.999
    assert J_f[0, 0, 0] == pytest.approx(d, rel=1e-9)


def test_perturbations_of_nested_duals_stay_apart():
    from diffcheck.engines.forward import Dual
    from diffcheck.tracing import next_level

    # d/dx [x * d/dy (x*y)] at y = 1 is 2x, not x (the classic confusion bug gives 2x + 1)
    lx, ly = next_level(), next_level()
    x = Dual(np.float64(3.0), np.array([1.0]), lx)
    y = Dual(np.float64(1.0), np.array([1.0]), ly)
    inner = x * y
    dy = inner.tan[0]  # the derivative along y, still a dual in x
    result = x * dy
    assert float(result.tan[0]) == 6.0


def test_tape_leaves_no_state_between_runs():
    fn = Function.from_text("x**2*y + y")
    X = np.array([[2.0, 3.0]])
    first = ad.jacobian_reverse(fn.program, X)
    second = ad.jacobian_reverse(fn.program, X)
    np.testing.assert_array_equal(first, second)
    assert first.tolist() == [[[12.0, 5.0]]]
