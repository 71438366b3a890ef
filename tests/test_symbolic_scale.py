"""The symbolic engine at scale: template construction, DAG accumulation, sparse Hessians.

Each structure-exploiting path is checked against an independent peer: SymPy's own
``diff`` and construction, SymEngine (when installed) and JAX.
"""

from __future__ import annotations

import importlib
import random
import time

import numpy as np
import pytest
import sympy

import diffcheck as dc
from diffcheck.canon import Canon
from diffcheck.engines.symbolic import Accumulator, derive
from diffcheck.parse import parse, variables_of
from diffcheck.program import Program


def gradient_text(n: int) -> str:
    terms = " + ".join(f"sin(x{i})*exp(x{i}/3)" for i in range(n))
    return f"{terms} + ({' + '.join(f'x{i}**2' for i in range(n))})**2"


def rosenbrock_text(n: int) -> str:
    return " + ".join(f"100*(x{2 * i + 1} - x{2 * i}**2)**2 + (1 - x{2 * i})**2"
                      for i in range(n // 2))


parse_module = importlib.import_module("diffcheck.parse")  # (dc.parse is the function)


def real_symbols(names):
    return {n: sympy.Symbol(n, real=True) for n in names}


def reference_parse(text: str):
    """The same parser building every node by SymPy directly (no templates)."""
    original = parse_module.Canon
    parse_module.Canon = lambda: Canon(templates=False)
    try:
        return parse(text)
    finally:
        parse_module.Canon = original


def random_text(rng: random.Random, depth: int = 3) -> str:
    names = ["x1", "x2", "x9", "x10", "y"]
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(names + ["2", "3", "1"])
    kind = rng.randrange(6)
    a, b = random_text(rng, depth - 1), random_text(rng, depth - 1)
    if kind == 0:
        return f"({a} + {b})"
    if kind == 1:
        return f"({a} - {b})"
    if kind == 2:
        return f"{a}*{b}"
    if kind == 3:
        return f"({a})/(1 + {b}**2)"
    if kind == 4:
        return f"({a})**{rng.choice([2, 3, -1])}"
    return f"{rng.choice(['sin', 'cos', 'exp', 'tanh', 'atan'])}({a})"


# -- parsing: linear, and the very objects SymPy builds ----------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_parse_matches_sympy_construction(seed):
    rng = random.Random(seed)
    for _ in range(25):
        text = " + ".join(random_text(rng) for _ in range(rng.randrange(1, 6)))
        try:
            want = reference_parse(text)
        except dc.DiffcheckError:  # e.g. division by zero in a random constant
            continue
        got = parse(text)
        assert got == want, text
        assert sympy.srepr(got) == sympy.srepr(want), text
        again = str(got)  # printing and parsing again: still SymPy's own construction
        assert parse(again) == reference_parse(again), again


@pytest.mark.parametrize("text", [
    "exp(x)*exp(y) + exp(x10)*exp(x9)",  # exponentials combine
    "x*x + x10*x10 + sin(-x) + sin(-y)",  # powers collect, odd functions pull the sign
    "x9 - x10 + x10 - x9 + 2*(a + b) + 2*(c + d)",  # cancellation, distribution
    "x2/x10 + x10/x2 + (x2 - x10)**2 + (x10 - x2)**2",  # name order decides the sign
    "sqrt(x**2) + sqrt(y**2) + log(exp(x)) + log(exp(y))",  # real-symbol simplifications
])
def test_templates_keep_canonical_form(text):
    assert parse(text) == reference_parse(text)


def test_reference_is_plain_sympy():
    x, y = sympy.symbols("x y", real=True)
    assert reference_parse("sin(x)*exp(y/3) + 2*(x + y)") == \
        sympy.Mul(sympy.sin(x), sympy.exp(y / 3)) + 2 * x + 2 * y


def test_canon_respects_assumptions_and_name_order():
    canon = Canon()
    p, q = sympy.symbols("p q", positive=True)
    r, s = sympy.symbols("r s", real=True)
    for a, b in [(p, q), (r, s), (s, r), (q, p)]:
        two = sympy.Integer(2)
        got = canon.make("sqrt", sympy.sqrt, [canon.make("pow", sympy.Pow, [a - b, two])])
        assert got == sympy.sqrt((a - b) ** 2)
    x10, x9 = sympy.symbols("x10 x9", real=True)
    assert canon.make("add", sympy.Add, [x10, -x9]) == x10 - x9
    assert canon.make("add", sympy.Add, [x9, -x10]) == x9 - x10


def test_parse_is_linear():
    sizes, times = (1000, 4000), []
    for n in sizes:
        text = gradient_text(n)
        t0 = time.perf_counter()
        e = parse(text)
        times.append(time.perf_counter() - t0)
        assert len(e.args) == n + 1
    assert times[1] < 12 * times[0] + 0.5  # 4x the text: far from the 16x of quadratic work


# -- derivatives over the DAG ------------------------------------------------------------------
def test_derive_is_linear_when_entries_share_a_subexpression():
    """Every gradient entry of (x0**2 + ... )**2 contains the whole sum: anything that walks
    the entries one by one (``Expr.has`` per entry) is quadratic."""
    sizes, times = (1000, 4000), []
    for n in sizes:
        e = parse(gradient_text(n))
        t0 = time.perf_counter()
        derive([e], variables_of(e))
        times.append(time.perf_counter() - t0)
    assert times[1] < 12 * times[0] + 0.5  # 4x the terms: far from the 16x of quadratic work


@pytest.mark.parametrize("method", ["auto", "dag", "diff"])
def test_formulas_stay_readable(method):
    d = derive([parse("x**2*y + (x+y)**2")], ["x", "y"], hessian=True, method=method)
    assert [str(e) for e in d.jacobian[0]] == ["2*x*y + 2*x + 2*y", "x**2 + 2*x + 2*y"]
    assert [[str(e) for e in row] for row in d.hessian[0]] == [["2*y + 2", "2*x + 2"],
                                                               ["2*x + 2", "2"]]
    d = derive([parse("(x0**2 + x1**2 + x2**2)**2")], ["x0", "x1", "x2"], method=method)
    assert str(d.jacobian[0][0]) == "4*x0*(x0**2 + x1**2 + x2**2)"


@pytest.mark.parametrize("seed", range(4))
def test_gradient_equals_sympy_diff(seed):
    rng = random.Random(100 + seed)
    for _ in range(10):
        e = parse(" + ".join(random_text(rng) for _ in range(3)))
        names = variables_of(e)
        d = derive([e], names, method="dag")
        syms = real_symbols(names)
        for name, got in zip(names, d.jacobian[0], strict=True):
            want = sympy.diff(e, syms[name])
            X = np.random.default_rng(seed).uniform(0.2, 1.5, (3, len(names)))
            a = Program.from_sympy([got], names).evaluate(list(X.T))[0]
            b = Program.from_sympy([want], names).evaluate(list(X.T))[0]
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{e} / {name}")


def test_shared_subexpressions_stay_shared():
    n = 200
    e = parse(gradient_text(n))
    names = variables_of(e)
    d = derive([e], names)
    inner = [a for a in e.args if a.is_Pow][0].base  # sum(x_i**2)
    def holds_it(g):
        return any(a is inner for t in g.args for a in sympy.Mul.make_args(t))

    assert all(holds_it(g) for g in d.jacobian[0])  # the very same object in every entry
    # one Program computes the sum once: linear size, not n x n
    assert len(d.program.nodes) < 20 * n


def test_huge_sums_are_never_distributed():
    e = parse(gradient_text(50))
    d = derive([e], variables_of(e), method="dag")
    g = d.jacobian[0][7]
    big = [t for t in g.args if t.is_Mul and any(f.is_Add for f in t.args)]
    assert big and len(big[0].args) <= 4  # 4*x7*(x0**2 + ... + x49**2)


def test_auto_picks_the_dag_for_large_expressions():
    e = parse(gradient_text(30))
    auto, dag = derive([e], variables_of(e)), derive([e], variables_of(e), method="dag")
    assert auto.jacobian == dag.jacobian
    with pytest.raises(ValueError, match="method"):
        derive([e], ["x0"], method="fast")


def test_work_is_linear_in_the_expression():
    acc = Accumulator()
    e = parse(gradient_text(300))
    order = acc.topological(e)
    assert len(order) < 10 * 300  # each shared node visited once
    assert len(acc.gradient(e)) == 300


def test_sparse_hessian_rosenbrock_matches_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    n = 40
    e = parse(rosenbrock_text(n))
    names = variables_of(e)
    d = derive([e], names, hessian=True, method="dag")
    H = d.hessian[0]
    # only pairs that occur together in a term have entries
    nonzero = {(i, j) for i in range(n) for j in range(n) if H[i][j] != 0}
    assert nonzero == {(i, j) for i in range(n) for j in range(n) if i // 2 == j // 2}

    def f(x):
        return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)

    x = np.random.default_rng(3).uniform(-1.5, 1.5, n)
    J, Hv = d.evaluate(x[None, :])
    np.testing.assert_allclose(J[0, 0], jax.grad(f)(x), rtol=1e-10)
    np.testing.assert_allclose(Hv[0, 0], jax.hessian(f)(x), rtol=1e-10, atol=1e-12)


def test_agrees_with_symengine():
    se = pytest.importorskip("symengine")
    n = 60
    text = gradient_text(n)
    e = parse(text)
    names = variables_of(e)
    x = np.random.default_rng(5).uniform(-1, 1, n)
    J, _ = derive([e], names, method="dag").evaluate(x[None, :])
    f = se.sympify(text)
    xs = [se.Symbol(v) for v in names]
    want = np.array(se.Lambdify(xs, [f.diff(s) for s in xs], cse=True)(x), dtype=float)
    np.testing.assert_allclose(J[0, 0], want.ravel(), rtol=1e-10)


def test_vector_functions_and_non_walkable_heads():
    x, y = sympy.symbols("x y", real=True)
    exprs = [sympy.Max(x, y) * x, sympy.Piecewise((x**2, x > 0), (y, True)) + y]
    d = derive(exprs, ["x", "y"], method="dag")
    assert sympy.simplify(d.jacobian[0][0] - sympy.diff(exprs[0], x)) == 0
    assert d.jacobian[1][1] == sympy.diff(exprs[1], y)


# -- reports stay proportional ------------------------------------------------------------------
def test_huge_formulas_are_summarised_cheaply():
    n = 400
    e = parse(gradient_text(n))
    d = derive([e], variables_of(e))
    t0 = time.perf_counter()
    texts = [d.text(g) for g in d.jacobian[0]]
    assert time.perf_counter() - t0 < 10
    assert all(len(t) < 700 for t in texts)
    assert "[formula of" in texts[0] and "..." in texts[0]


def test_check_expression_json_is_proportional():
    n = 150
    report = dc.check_expression(gradient_text(n), points=1, engines="symbolic,reverse")
    assert report.ok
    doc = report.to_json()
    assert len(doc) < 3000 * n
    small = dc.check_expression("x**2*y + (x+y)**2", at="x=1,y=2").to_dict()
    assert small["symbolic"]["gradient"] == ["2*x*y + 2*x + 2*y", "x**2 + 2*x + 2*y"]


def test_ten_thousand_terms():
    n = 10_000  # (its time is measured in benchmarks/bench_symbolic.py, not here)
    e = parse(gradient_text(n))
    d = derive([e], variables_of(e))
    x = np.random.default_rng(0).uniform(-1, 1, n)
    J, _ = d.evaluate(x[None, :])
    want = np.cos(x) * np.exp(x / 3) + np.sin(x) * np.exp(x / 3) / 3 + 4 * x * np.sum(x**2)
    np.testing.assert_allclose(J[0, 0], want, rtol=1e-10)
