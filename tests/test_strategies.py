"""The Hypothesis strategies, used the way a user would: property tests of derivatives."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

import diffcheck as dc
from diffcheck import strategies as dst


@settings(max_examples=25, deadline=None)
@given(dst.expressions_with_points(("x", "y"), max_depth=3))
def test_reverse_forward_and_complex_agree_on_random_expressions(case):
    expr, x = case
    rev = dc.gradient(expr, x, mode="reverse")
    np.testing.assert_allclose(dc.gradient(expr, x, mode="forward"), rev, rtol=1e-10,
                               atol=1e-12)
    try:
        cs = dc.gradient(expr, x, mode="complex")
    except dc.UnsupportedError:  # sigmoid/softplus are implemented with real-only code
        assert "sigmoid" in expr.text or "softplus" in expr.text
        return
    np.testing.assert_allclose(cs, rev, rtol=1e-9, atol=1e-11)


@settings(max_examples=15, deadline=None)
@given(dst.expressions_with_points(("x", "y"), max_depth=2))
def test_check_gradient_accepts_the_exact_gradient_and_catches_a_perturbed_one(case):
    expr, x = case
    g = dc.gradient(expr, x, mode="forward")
    assert dc.check_gradient(expr, lambda _: g, x).ok
    i = int(np.argmax(np.abs(g)))
    if abs(g[i]) > 1e-3:
        bad = g.copy()
        bad[i] *= 1.001
        assert not dc.check_gradient(expr, lambda _: bad, x).ok


@settings(max_examples=20, deadline=None)
@given(dst.points((3, 2), low=0.1, high=3.0, where=lambda x: np.log(x)))
def test_points_respect_the_box_and_the_domain(x):
    assert x.shape == (3, 2)
    assert np.all((x >= 0.1) & (x <= 3.0))


@settings(max_examples=10, deadline=None)
@given(dst.expressions(("a", "b", "c"), max_depth=2))
def test_expressions_parse_and_use_every_variable(expr):
    report = dc.check_expression(expr.text, at="a=0.3,b=-0.7,c=1.1", wrt="a,b,c")
    assert report.ok
    assert report.to_dict()["variables"] == ["a", "b", "c"]


def test_user_style_property_test_finds_a_wrong_gradient():
    """The pattern documented in docs/numpy.md, with a bug in the gradient."""
    def loss(w):
        return np.sum(np.log1p(np.exp(w)) - 0.5 * w)

    def wrong_grad(w):
        return 1 / (1 + np.exp(-w)) - 0.5 + 1e-3 * (w > 1)

    failures = []

    @settings(max_examples=30, deadline=None, database=None)
    @given(dst.points((4,), low=-3, high=3))
    def prop(w):
        dc.assert_gradient(loss, wrong_grad, w)

    try:
        prop()
    except AssertionError as exc:
        failures.append(str(exc))
    assert failures and "gradient check: FAILED" in failures[0]
