"""One test per rule-table row: its partials against SymPy's derivatives, its NumPy and JAX
implementations against SymPy's values, and its printed partials against the numbers."""

import numpy as np
import pytest
import sympy

from diffcheck.parse import parse
from diffcheck.primitives import ROW_LIST, ROWS, jax_function
from diffcheck.sympy_ext import sigmoid, softplus

a, b = sympy.symbols("a b", real=True)

# Each row as a SymPy expression of a (and b): written here, independently of the table.
SYMPY_FORMS = {
    "add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "pow": a**b, "neg": -a,
    "exp": sympy.exp(a), "log": sympy.log(a), "sqrt": sympy.sqrt(a), "sin": sympy.sin(a),
    "cos": sympy.cos(a), "tan": sympy.tan(a), "asin": sympy.asin(a), "acos": sympy.acos(a),
    "atan": sympy.atan(a), "atan2": sympy.atan2(a, b), "sinh": sympy.sinh(a),
    "cosh": sympy.cosh(a), "tanh": sympy.tanh(a), "asinh": sympy.asinh(a),
    "acosh": sympy.acosh(a), "atanh": sympy.atanh(a), "erf": sympy.erf(a),
    "abs": sympy.Abs(a), "sign": sympy.sign(a), "dirac": sympy.DiracDelta(a),
    "sigmoid": 1 / (1 + sympy.exp(-a)),
    "softplus": sympy.log(1 + sympy.exp(a)), "log1p": sympy.log(1 + a),
    "expm1": sympy.exp(a) - 1, "maximum": sympy.Max(a, b), "minimum": sympy.Min(a, b),
    "sec": 1 / sympy.cos(a), "csc": 1 / sympy.sin(a), "cot": sympy.cos(a) / sympy.sin(a),
    "log10": sympy.log(a) / sympy.log(10), "log2": sympy.log(a) / sympy.log(2),
    "relu": sympy.Piecewise((a, a > 0), (0, True)),
    "heaviside": sympy.Piecewise((1, a > 0), (0, True)),
    "floor": sympy.floor(a), "ceil": sympy.ceiling(a),
    "gamma": sympy.gamma(a), "lgamma": sympy.log(sympy.Abs(sympy.gamma(a))),
    "factorial": sympy.factorial(a), "polygamma": sympy.polygamma(a, b),
}
# partials SymPy cannot take by itself: jumps (0 off them) and the order of polygamma
KNOWN_PARTIALS = {("floor", 0): 0, ("ceil", 0): 0, ("heaviside", 0): 0,
                  ("heaviside", 1): 0, ("polygamma", 0): 0}

# In-domain sample points per row (several, including negative values where allowed).
POINTS = {
    "log": [0.3, 2.5], "sqrt": [0.2, 3.0], "asin": [-0.7, 0.4], "acos": [-0.5, 0.8],
    "acosh": [1.2, 3.0], "atanh": [-0.6, 0.3], "log1p": [-0.5, 2.0],
    "pow": [(1.3, 2.5), (0.7, -1.5), (2.0, 3.0)], "div": [(1.5, -0.4), (-2.0, 3.0)],
    "atan2": [(0.5, -1.2), (-1.0, 0.3), (2.0, 2.0)], "maximum": [(0.5, -1.0), (-1.0, 2.0)],
    "minimum": [(0.5, -1.0), (-1.0, 2.0)],
    "log10": [0.3, 2.5], "log2": [0.3, 2.5], "relu": [-1.3, 0.4, 1.7],
    "heaviside": [(-1.3, 0.5), (0.4, 0.5)], "floor": [-1.3, 0.4, 2.7], "ceil": [-1.3, 0.4, 2.7],
    "gamma": [-2.5, -0.3, 0.4, 1.7, 5.5], "lgamma": [-2.5, -0.3, 0.4, 3.5, 9.2],
    "factorial": [-1.5, 0.4, 3.3], "sec": [-1.3, 0.4, 2.0], "csc": [-1.3, 0.4, 2.0],
    "cot": [-1.3, 0.4, 2.0],
    "polygamma": [(0.0, 2.5), (0.0, -1.3), (1.0, 0.4), (2.0, -0.2), (3.0, 7.5), (5.0, 1.2)],
}
DEFAULT_UNARY, DEFAULT_BINARY = [-1.3, -0.2, 0.4, 1.7], [(0.7, -1.1), (-1.6, 0.9)]

elementwise = [r for r in ROW_LIST if not r.structural]


def _points(row):
    pts = POINTS.get(row.name, DEFAULT_UNARY if row.arity == 1 else DEFAULT_BINARY)
    return [p if isinstance(p, tuple) else (p,) for p in pts]


def _sub(expr, args):
    return float(expr.subs(dict(zip((a, b), args, strict=False))).evalf(30))


def test_every_row_has_an_independent_sympy_form():
    assert {r.name for r in elementwise} == set(SYMPY_FORMS)


@pytest.mark.parametrize("row", elementwise, ids=lambda r: r.name)
def test_row_partials_match_sympy(row):
    form = SYMPY_FORMS[row.name]
    for args in _points(row):
        assert np.all(row.domain(*args)) if row.domain else True, (row.name, args)
        out = row(*args)
        assert float(out) == pytest.approx(_sub(form, args), rel=1e-13, abs=1e-15)
        for i, partial in enumerate(row.partials):
            known = KNOWN_PARTIALS.get((row.name, i))
            want = known if known is not None else _sub(sympy.diff(form, (a, b)[i]), args)
            got = float(partial(*args, out))
            assert got == pytest.approx(want, rel=1e-12, abs=1e-14), (row.name, i, args)


@pytest.mark.parametrize("row", elementwise, ids=lambda r: r.name)
def test_row_works_on_arrays(row):
    pts = _points(row)
    cols = [np.array(c) for c in zip(*pts, strict=True)]
    out = row(*cols)
    assert out.shape == (len(pts),)
    for k, args in enumerate(pts):
        assert out[k] == pytest.approx(float(row(*args)), rel=1e-15)


@pytest.mark.parametrize("row", [r for r in elementwise if r.smooth], ids=lambda r: r.name)
def test_row_partial_text_matches_its_numbers(row):
    names = ["a", "b"][: row.arity]
    for i, text in enumerate(row.dtext):
        expr = parse(text.format(*names, out="out"))
        for args in _points(row):
            got = float(expr.subs(dict(zip((a, b), args, strict=False))).evalf(30))
            want = float(row.partials[i](*args, row(*args)))
            assert got == pytest.approx(want, rel=1e-12, abs=1e-14), (row.name, text)


@pytest.mark.parametrize("row", elementwise, ids=lambda r: r.name)
def test_row_jax_function_matches_numpy(row):
    jax = pytest.importorskip("jax")
    fn = jax_function(row)
    with jax.enable_x64(True):
        for args in _points(row):
            got = float(fn(*[jax.numpy.float64(v) for v in args]))
            assert got == pytest.approx(float(row(*args)), rel=1e-13, abs=1e-15)


def test_domains_reject_the_bad_points():
    assert not ROWS["log"].domain(0.0) and not ROWS["log"].domain(-1.0)
    assert not ROWS["sqrt"].domain(0.0)
    assert not ROWS["div"].domain(1.0, 0.0)
    assert not ROWS["asin"].domain(1.0)
    assert not ROWS["abs"].domain(0.0)
    assert not ROWS["pow"].domain(-2.0, 0.5) and ROWS["pow"].domain(-2.0, 3.0)
    assert not ROWS["pow"].domain(0.0, -1.0)
    assert not ROWS["atan2"].domain(0.0, -1.0)


def test_sympy_extension_functions_differentiate_by_themselves():
    x = sympy.Symbol("x", real=True)
    assert sympy.diff(sigmoid(x), x) == sigmoid(x) * (1 - sigmoid(x))
    assert sympy.diff(softplus(x), x) == sigmoid(x)
    assert float(sigmoid(sympy.Float(0.3)).evalf()) == pytest.approx(1 / (1 + np.exp(-0.3)))
