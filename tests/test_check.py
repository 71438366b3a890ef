"""check_expression: options, points, JSON contract, and verdicts that blame the right engine."""

import dataclasses
import json

import numpy as np
import pytest

import diffcheck as dc
from diffcheck import compare, primitives
from diffcheck.engines import symbolic
from diffcheck.errors import DiffcheckError, DomainError, ParseError, UsageError


def test_random_points_are_reproducible_and_in_domain():
    a = dc.check_expression("log(x) + sqrt(1 - y**2)", points=4, seed=7).to_dict()
    b = dc.check_expression("log(x) + sqrt(1 - y**2)", points=4, seed=7).to_dict()
    assert a == b and a["ok"]
    for p in a["points"]:
        assert p["at"]["x"] > 0 and abs(p["at"]["y"]) < 1
    c = dc.check_expression("log(x) + sqrt(1 - y**2)", points=4, seed=8).to_dict()
    assert [p["at"] for p in c["points"]] != [p["at"] for p in a["points"]]


def test_json_contract_scalar_with_hessian():
    doc = dc.check_expression("x**2*y + (x+y)**2", at="x=1,y=2", hessian=True,
                              engines="all").to_dict()
    assert set(doc) >= {"expression", "variables", "outputs", "ok", "symbolic", "points"}
    assert doc["variables"] == ["x", "y"] and doc["outputs"] == 1
    assert set(doc["symbolic"]) == {"gradient", "hessian"}
    p = doc["points"][0]
    assert p["at"] == {"x": 1.0, "y": 2.0} and p["value"] == 11.0 and p["ok"]
    assert set(p["engines"]) == {"symbolic", "forward", "reverse", "finite", "jax"}
    for res in p["engines"].values():
        assert np.shape(res["gradient"]) == (2,) and np.shape(res["hessian"]) == (2, 2)
    fin = p["engines"]["finite"]
    assert np.shape(fin["gradient_error"]) == (2,) and np.shape(fin["hessian_error"]) == (2, 2)
    assert set(p["errors"]) == set(p["engines"])
    json.dumps(doc, allow_nan=False)


def test_json_contract_vector_with_hessian():
    doc = dc.check_expression("[x*y, sin(x), y**3]", at=[1.0, 2.0], hessian=True).to_dict()
    assert doc["outputs"] == 3 and "jacobian" in doc["symbolic"]
    p = doc["points"][0]
    assert p["value"] == pytest.approx([2.0, np.sin(1.0), 8.0])
    for res in p["engines"].values():
        assert np.shape(res["jacobian"]) == (3, 2) and np.shape(res["hessian"]) == (3, 2, 2)
    assert np.shape(p["engines"]["finite"]["jacobian_error"]) == (3, 2)


def test_wrt_orders_and_restricts_the_variables():
    doc = dc.check_expression("x**2*y", at="x=3,y=2", wrt="y,x").to_dict()
    assert doc["variables"] == ["y", "x"]
    assert doc["points"][0]["engines"]["reverse"]["gradient"] == [9.0, 12.0]
    doc = dc.check_expression("x**2*y + z", at="x=3,y=2,z=1", wrt="x").to_dict()
    assert doc["points"][0]["engines"]["forward"]["gradient"] == [12.0]
    assert doc["points"][0]["at"] == {"x": 3.0, "y": 2.0, "z": 1.0}


def test_several_points_and_sequences():
    r = dc.check_expression("x*y", at=["x=1,y=2", {"x": 3, "y": 4}])
    assert [p.at for p in r.points] == [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


def test_constant_expression_has_an_empty_gradient():
    r = dc.check_expression("3 + pi")
    assert r.ok and r.to_dict()["points"][0]["engines"]["forward"]["gradient"] == []


@pytest.mark.parametrize("kwargs, error", [
    ({"engines": "forward,bogus"}, UsageError),
    ({"engines": "finite"}, UsageError),
    ({"points": 0}, UsageError),
    ({"points": 2.5}, UsageError),
    ({"seed": -1}, UsageError),
    ({"rtol": -1e-3}, UsageError),
    ({"atol": float("nan")}, UsageError),
    ({"at": "x=abc"}, UsageError),
    ({"at": "x=nan"}, UsageError),
    ({"at": "x=inf"}, UsageError),
    ({"at": "x=1"}, UsageError),
    ({"at": "x=1,y=2,q=3"}, UsageError),
    ({"at": "x1,y=2"}, UsageError),
    ({"at": "x=1,y=0"}, DomainError),
    ({"wrt": "x,,"}, None),
    ({"wrt": "1x"}, UsageError),
])
def test_bad_options_raise_diffcheck_errors(kwargs, error):
    if error is None:
        assert dc.check_expression("x/y + log(y)", at="x=1,y=2", **kwargs).ok
        return
    with pytest.raises(error):
        dc.check_expression("x/y + log(y)", **kwargs)
    assert issubclass(error, DiffcheckError)


@pytest.mark.parametrize("text, at, what", [
    ("log(x)", "x=-1", "log(x)"), ("sqrt(x)", "x=-4", "sqrt(x)"), ("1/x", "x=0", "1/x"),
    ("asin(x) + y", "x=2,y=1", "asin(x)"), ("abs(x)", "x=0", "Abs(x)"),
    ("x**y", "x=-2,y=2", "x**y"),  # a varying exponent: d/dy = x**y*log(x) needs x > 0
])
def test_domain_errors_name_the_subexpression_and_point(text, at, what):
    with pytest.raises(DomainError) as info:
        dc.check_expression(text, at=at)
    msg = str(info.value)
    assert msg.startswith(what) and at.split(",")[0] in msg


def test_negative_base_is_fine_with_a_constant_exponent_only():
    assert dc.check_expression("x**2*y + x**3", at="x=-2,y=2").ok
    with pytest.raises(DomainError, match="exponent varies"):
        dc.check_expression("x**(y + 1)", at="x=-2,y=1")


def test_parse_errors_surface_as_parse_error():
    with pytest.raises(ParseError):
        dc.check_expression("x +* y")


def _broken_row(monkeypatch, name, partials):
    bad = dataclasses.replace(primitives.ROWS[name], partials=partials)
    monkeypatch.setitem(primitives.ROWS, name, bad)
    if bad.ufunc is not None:
        monkeypatch.setitem(primitives.UFUNC_ROWS, bad.ufunc, bad)


def test_a_wrong_rule_row_is_blamed_on_forward_and_reverse(monkeypatch):
    _broken_row(monkeypatch, "sin", (lambda x, out: -np.cos(x),))
    r = dc.check_expression("sin(x)*y + x", points=2)
    assert not r.ok
    for p in r.points:
        assert p.verdict.reference == "symbolic"
        assert p.verdict.disagreeing == ["forward", "reverse"]
    assert "DISAGREE: forward, reverse differ from symbolic" in str(r)


def test_a_wrong_symbolic_derivative_is_blamed_on_symbolic(monkeypatch):
    real = symbolic.derive

    def wrong(exprs, variables, **kw):
        d = real(exprs, variables, **kw)
        d.jacobian[0][0] = d.jacobian[0][0] * 1.001
        return d

    monkeypatch.setattr(symbolic, "derive", wrong)
    r = dc.check_expression("x**3 + y", at="x=2,y=1")
    assert not r.ok
    v = r.points[0].verdict
    assert v.reference == "forward" and v.disagreeing == ["symbolic"]


def test_tolerance_overrides_accept_small_errors(monkeypatch):
    _broken_row(monkeypatch, "exp", (lambda x, out: out * (1 + 1e-7),))
    assert not dc.check_expression("exp(x)", at="x=0.5").ok
    assert dc.check_expression("exp(x)", at="x=0.5", rtol=1e-6).ok


def test_finite_difference_estimates_are_reported_and_honest():
    doc = dc.check_expression("sqrt(x**2+exp(x**2))+cos(x**2+exp(x**2))", at="x=1.3",
                              hessian=True).to_dict()
    eng = doc["points"][0]["engines"]
    for kind in ("gradient", "hessian"):
        truth = np.array(eng["symbolic"][kind])
        est = np.array(eng["finite"][f"{kind}_error"])
        assert np.all(np.abs(np.array(eng["finite"][kind]) - truth) <= est)


def test_relative_error_is_zero_for_exact_agreement():
    assert compare.relative_error(np.array([1.0]), np.array([1.0]), np.array([1.0])) == 0.0


def test_report_text_mentions_every_engine_and_the_verdict():
    text = str(dc.check_expression("x**2*y + y", at="x=2,y=3", engines="all"))
    for word in ("symbolic", "forward", "reverse", "finite", "jax", "df/dx", "OK:"):
        assert word in text


def test_hessian_through_sign_of_a_possibly_complex_argument():
    # sympy.diff leaves Derivative(sign(log(x)), x) unevaluated (log(x) might be complex);
    # diffcheck's functions are real where defined, so the symbolic engine differentiates
    # through sign and gives the DiracDelta term, zero away from the kink
    r = dc.check_expression("abs(log(x))", hessian=True, engines="all", points=3)
    assert r.ok
    assert "Derivative" not in r.formulas["hessian"][0][0][0]
    assert "DiracDelta" in r.formulas["hessian"][0][0][0]


@pytest.mark.parametrize("text", ["abs(asin(x))", "abs(acos(x)) + abs(atanh(x))"])
def test_gradient_through_abs_of_a_possibly_complex_argument(text):
    # sympy.diff writes d|asin(x)|/dx with re(asin(x)) and im(asin(x)), which have no rule-table
    # row; the symbolic engine differentiates over the DAG at real dummies instead
    for hessian in (False, True):
        r = dc.check_expression(text, hessian=hessian, engines="all", points=3)
        assert r.ok, str(r)
        assert "im(" not in r.formulas["jacobian"][0][0]


def test_dirac_is_a_rule_row_with_the_kink_as_its_domain():
    row = primitives.ROWS["dirac"]
    assert float(row(1.5)) == 0.0 and not row.domain(0.0) and row.domain(-2.0)
    assert dc.check_expression("sign(x)*x**2", hessian=True, at="x=0.5").ok
