"""Verdicts at hard points: domain edges, poles, kinks, oscillation, cancellation, overflow.

Each example of issue 13 (and the overflow of issue 17) runs through the CLI; a property
draws random expressions whose domain edge, pole or kink sits a random (small) distance
from the point, at scales from 1e-200 to 1e200, and checks that every finite-difference bar
covers a 50-digit reference and that the verdict never says DISAGREE.
"""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffcheck as dc
from diffcheck import strategies as dst
from diffcheck.check import Function
from diffcheck.cli import main
from diffcheck.engines import finite, symbolic


def cli(capsys, *argv):
    code = main(["expr", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys, expr, at, *extra):
    code, out, err = cli(capsys, expr, "--at", at, "--json", *extra)
    assert err == ""
    return code, json.loads(out)["points"][0]


def exact(expr: str, at: dict, hessian: bool = False, wrt: str | None = None) -> np.ndarray:
    """The derivatives at 50 digits, as float64 (an independent high-precision reference)."""
    fn = Function.from_text(expr, wrt)
    d = symbolic.derive(fn.exprs, fn.variables, hessian=hessian)
    flat = [e for row in d.jacobian for e in row]
    if hessian:
        flat += [e for h in d.hessian for row in h for e in row]
    X = np.array([[at[v] for v in fn.variables]])
    return np.array([float(v) for v in symbolic.precise_values(flat, fn.variables, X)[0]])


# -- issue 13: the finite engine at domain edges, poles and kinks -------------------------------
EDGES = [("sqrt(x)", 1e-4), ("log(x)", 1e-6), ("asin(x)", 0.9999), ("tan(x)", 1.5707),
         ("abs(x)", 1e-12), ("acos(x)", -0.99999999), ("acosh(x)", 1 + 1e-9),
         ("atanh(x)", 0.999999), ("x**2.5", 1e-9), ("sqrt(x)", 1e-300)]


@pytest.mark.parametrize("expr, x", EDGES)
def test_finite_differences_stay_inside_the_domain(capsys, expr, x):
    """Steps used to leave the domain (sqrt at 1e-4 printed 'nan ±inf' and DISAGREE); now the
    ladder restarts below the edge, and the bar covers the 50-digit value."""
    code, point = run_json(capsys, expr, f"x={x!r}")
    fd = point["engines"]["finite"]
    want = exact(expr, {"x": x})[0]
    assert code == 0 and point["ok"]
    assert fd["gradient"][0] is not None, "resolved"
    assert abs(fd["gradient"][0] - want) <= fd["gradient_error"][0] <= 1e-6 * abs(want)


@pytest.mark.parametrize("omega", [3e4, 1e6])
def test_oscillation_is_resolved_by_extending_the_ladder(capsys, omega):
    """sin(3e4*x) at 0.3 printed -30.3 ±2.8e3 for a true -23645 (the bar did not cover)."""
    expr = f"sin({omega:g}*x)"
    code, point = run_json(capsys, expr, "x=0.3", "--hessian")
    fd = point["engines"]["finite"]
    J, H = exact(expr, {"x": 0.3}, hessian=True)
    assert code == 0
    assert abs(fd["gradient"][0] - J) <= fd["gradient_error"][0] <= 1e-5 * abs(J)
    assert abs(fd["hessian"][0][0] - H) <= fd["hessian_error"][0][0] <= 0.1 * abs(H)


@pytest.mark.parametrize("expr, x", [("tan(x)", "1.5707963267948966"), ("sin(x)", "1e300")])
def test_what_no_step_can_resolve_is_not_resolved_and_not_blamed(capsys, expr, x):
    """The pole of tan is 6e-17 from the float nearest pi/2, sin varies on a unit scale where
    floats are 1e284 apart: no step resolves them; the finite entry says so and is not
    compared, so the correct exact engines pass."""
    code, out, err = cli(capsys, expr, "--at", f"x={x}")
    assert code == 0 and "DISAGREE" not in out and err == ""
    assert "not resolved" in out and "finite differences could not resolve 1 entry" in out
    code, point = run_json(capsys, expr, f"x={x}")
    assert point["engines"]["finite"]["gradient"] == [None]
    assert point["unresolved"] == ["df/dx"] and point["ok"]


# -- issue 13: cancellation --------------------------------------------------------------------
def test_cancellation_is_flagged_and_the_symbolic_column_shows_the_true_value(capsys):
    """(exp(x) - 1 - x)/x**2 at 1e-5: symbolic and forward printed 0.3607, finite 0.1667 (the
    true 0.1666675), and 'OK: all 4 engines agree ... 9.7e-12'."""
    expr = "(exp(x) - 1 - x)/x**2"
    code, out, _ = cli(capsys, expr, "--at", "x=1e-5")
    assert code == 0
    assert "0.166667500002" in out.split("df/dx")[-1].split()[0] or \
        "df/dx  0.166667500002" in out
    assert "ill-conditioned: float64 loses all of its 16 digits here" in out
    assert "forward, reverse agree with symbolic only within that rounding" in out
    assert "0.360704214967 ±" in out  # the float64 value, with its honest bar
    last = out.strip().splitlines()[-1]
    assert last.startswith("OK: all 4 engines agree at 1 point; forward, reverse only within")
    code, point = run_json(capsys, expr, "x=1e-5")
    assert point["ill_conditioned"] is True and point["digits_lost"] >= 10
    want = exact(expr, {"x": 1e-5})[0]
    assert point["engines"]["symbolic"]["gradient"][0] == pytest.approx(want, rel=1e-15)
    fwd = point["engines"]["forward"]
    assert abs(fwd["gradient"][0] - want) <= fwd["gradient_error"][0]
    assert point["errors"]["forward"] > 1  # relative to the value: the lost digits show


def test_cancellation_never_blames_the_engine_that_is_right(capsys):
    """(1-cos(x))/x**2 at 1e-4: the verdict blamed finite differences, the only right one."""
    code, out, _ = cli(capsys, "(1-cos(x))/x**2", "--at", "x=1e-4")
    assert code == 0 and "DISAGREE" not in out and "ill-conditioned" in out
    code, point = run_json(capsys, "(1-cos(x))/x**2", "x=1e-4")
    want = exact("(1-cos(x))/x**2", {"x": 1e-4})[0]
    fd = point["engines"]["finite"]
    assert abs(fd["gradient"][0] - want) <= fd["gradient_error"][0]
    assert point["engines"]["symbolic"]["gradient"][0] == pytest.approx(want, rel=1e-15)


def test_well_conditioned_points_keep_their_documents():
    """No new keys, no bars on exact engines where float64 is fine."""
    doc = dc.check_expression("x**2*y + y", at="x=2,y=3").to_dict()["points"][0]
    assert "ill_conditioned" not in doc and "unresolved" not in doc
    assert "gradient_error" not in doc["engines"]["forward"]


def test_a_wrong_rule_is_still_caught_at_an_ill_conditioned_point(monkeypatch):
    import dataclasses

    from diffcheck import primitives

    bad = dataclasses.replace(primitives.ROWS["exp"], partials=(lambda x, out: 1.001 * out,))
    monkeypatch.setitem(primitives.ROWS, "exp", bad)
    monkeypatch.setitem(primitives.UFUNC_ROWS, bad.ufunc, bad)
    r = dc.check_expression("(exp(x) - 1 - x)/x**2", at="x=1e-5")
    assert not r.ok and r.points[0].ill_conditioned
    assert r.points[0].verdict.disagreeing == ["forward", "reverse"]


# -- issue 17: overflow at a point ---------------------------------------------------------------
@pytest.mark.parametrize("expr, x, entry, size", [
    ("1/x", "1e-300", "df/dx", "-1.0e+600"), ("x**-0.5", "1e-300", "df/dx", "-5.0e+449"),
    ("exp(x)", "709", "", "")])
def test_derivative_overflow_is_bad_input(capsys, expr, x, entry, size):
    code, out, err = cli(capsys, expr, "--at", f"x={x}", "--hessian")
    if not entry:  # exp(709) = 8.2e307 and its derivatives fit: checked as usual
        assert code == 0 and err == ""
        return
    assert code == 2 and out == ""
    assert f"{entry} = {size} overflows float64 at x={x}" in err
    assert "Warning" not in err and "Traceback" not in err


def test_derivative_overflow_from_python_raises_a_domain_error():
    with pytest.raises(dc.DomainError, match=r"d2f/dxdx = 2\.0e\+360 overflows"):
        dc.check_expression("1/x", at="x=1e-120", hessian=True)  # df/dx = -1e240 fits


# -- the finite engine on its own ------------------------------------------------------------------
def test_a_domain_callback_keeps_steps_inside_where_f_does_not_say_nan():
    """A function that returns finite numbers outside its domain (here a clipped sqrt) still
    gets steps that stay inside, when ``domain`` says where it is defined."""
    f = lambda X: np.sqrt(np.abs(X))  # noqa: E731  (defined for x > 0 only, by fiat)
    x = np.array([1e-8])
    J, E = finite.jacobian(f, x, domain=lambda X: X[:, 0] > 0)
    assert abs(J[0, 0] - 0.5e4) <= E[0, 0] <= 1e-6 * 0.5e4
    J, E = finite.jacobian(f, x)  # without it, |x| makes a kink at 0 that steps straddle
    assert not (np.isfinite(E[0, 0]) and abs(J[0, 0] - 0.5e4) > E[0, 0])


def test_central_only_by_default_keeps_the_kink_average():
    """numpy_check relies on central differences at an exact kink (the average of the sides)."""
    f = lambda X: np.stack([np.maximum(X[:, 0], 0.0) * 3], axis=1)  # noqa: E731
    J, E = finite.jacobian(f, np.array([0.0]))
    assert J[0, 0] == pytest.approx(1.5) and E[0, 0] < 1e-9
    J, E = finite.jacobian(f, np.array([0.0]), one_sided=True)  # both sides: the bar covers
    assert J[0, 0] - E[0, 0] <= 0.0 and J[0, 0] + E[0, 0] >= 3.0


def test_richardson_keeps_its_signature():
    h = 0.1 / 2.0 ** np.arange(8)
    D = (np.sin(1 + h) - np.sin(1 - h)) / (2 * h)
    best, err, step = finite.richardson(D, h, np.array(4e-16), with_step=True)
    assert abs(best - math.cos(1)) <= err < 1e-12 and step in h


# -- the property ---------------------------------------------------------------------------------
#: (template, side): an edge of a rule-table row's domain, a pole or a kink at u = 0; side
#: +1 when the point must have u > 0
TEMPLATES = [("sqrt({u})", 1), ("log({u})", 1), ("asin(1 - {u})", 1), ("acos({u} - 1)", 1),
             ("acosh(1 + {u})", 1), ("atanh({u} - 1)", 1), ("({u})**2.5", 1),
             ("log({u})**2", 1), ("abs({u})", 0), ("1/({u})", 0), ("atan2({u}, 1)", 0),
             ("tan(1.5707963267948966 - {u})", 0), ("sign({u})*({u})**2", 0)]


#: functions of x - c that vary on a unit scale: at |x| = 3e50 (floats 4e34 apart) nothing
#: resolves them, and SymPy folds c into the other constants there
UNIT_SCALE = ("asin", "acos", "acosh", "atanh", "atan2", "tan")


@st.composite
def near_edges(draw):
    template, side = draw(st.sampled_from(TEMPLATES))
    d = 10.0 ** draw(st.floats(-13, -1))
    if side == 0:
        d *= draw(st.sampled_from([1, -1]))
    big = not template.startswith(UNIT_SCALE)
    x0 = draw(st.sampled_from([0.3, -2.0, 7.5, 1.0, 0.0, 1e-200] + ([3e50, -4e120] if big
                                                                   else [])))
    inner = draw(dst.expressions(("y",), max_depth=2))
    how = draw(st.sampled_from(["*", "+"]))
    scale = draw(st.sampled_from(["", "1e-150*", "1e150*", "3e4*"]))
    text = f"{scale}({template.format(u=f'(x - ({x0 - d!r}))')}) {how} ({inner.text})"
    # (away from y = 0, where a factor of y can make f vanish on the whole x-axis through
    # the point, so no sample shows the pole beside it to a mixed second difference)
    y0 = draw(st.floats(0.05, 1.5)) * draw(st.sampled_from([1, -1]))
    return text, {"x": x0, "y": y0}


@settings(max_examples=40, deadline=None)
@given(near_edges())
def test_bars_cover_50_digit_references_and_the_verdict_never_disagrees(case):
    text, at = case
    try:
        report = dc.check_expression(text, at=at, wrt="x,y", hessian=True)
    except dc.DomainError:  # the point left the domain (d below the spacing of x0), overflow
        assume(False)
    assert report.ok, str(report)
    doc = report.to_dict()["points"][0]
    fd = doc["engines"]["finite"]
    want = exact(text, at, hessian=True, wrt="x,y")
    got = np.array(fd["gradient"] + [v for row in fd["hessian"] for v in row], dtype=float)
    bar = np.array(fd["gradient_error"] + [v for row in fd["hessian_error"] for v in row],
                   dtype=float)
    resolved = np.isfinite(got) & np.isfinite(bar)
    assert np.all(np.abs(got - want)[resolved] <= bar[resolved]), (text, at, got, bar, want)


def test_precise_values_keep_exact_constants():
    x = symbolic.sympy.Symbol("x", real=True)
    v = symbolic.precise_values([x - symbolic.sympy.Rational(1, 3)], ["x"],
                                np.array([[0.3333333333333333]]))
    with mpmath.workdps(60):  # the float nearest 1/3 minus 1/3 itself: -1.85e-17
        want = mpmath.mpf(0.3333333333333333) - mpmath.mpf(1) / 3
        assert abs(v[0, 0] - want) <= 1e-30 * abs(want)  # (50 digits of the operands)


# -- float64 engines that over- or underflow on the way ---------------------------------------
@pytest.mark.parametrize("expr, at", [("atan2(y, x)", "x=1e-300,y=1e-300"),
                                      ("atan2(y, x)*exp(x*1e299)", "x=-3e-300,y=1e-300")])
def test_an_intermediate_underflow_is_not_resolved_not_blamed(capsys, expr, at):
    """x**2 + y**2 underflows to 0 in float64 at 1e-300, so forward and reverse mode give
    ±inf or nan while the 50-digit symbolic value is finite: the point is ill-conditioned,
    and those entries are 'not resolved' by the float64 engines, never a DISAGREE (this
    printed 'not resolved' in the table above a DISAGREE blaming both engines)."""
    code, point = run_json(capsys, expr, at)
    assert code == 0 and point["ok"] and point["disagreeing"] == []
    assert point["ill_conditioned"]
    assert set(point["unresolved_float64"]) == {"forward", "reverse"}
    truth = exact(expr, {k: float(v) for k, v in (kv.split("=") for kv in at.split(","))})
    finite = np.array(point["engines"]["finite"]["gradient"])
    bars = np.array(point["engines"]["finite"]["gradient_error"])
    assert np.all(np.abs(finite - truth) <= bars)
    code, out, _ = cli(capsys, expr, "--at", at)
    assert "not resolved by forward (float64 overflows or underflows" in out
    assert "DISAGREE" not in out


@pytest.mark.parametrize("expr", ["sqrt(x**2 + y**2)", "log(x**2 + y**2)"])
def test_a_point_inside_the_domain_is_not_refused_for_a_float64_underflow(capsys, expr):
    """x**2 + y**2 is 0 in float64 at x = 1e-170, y = 2e-170, but the point is inside the
    domain: this exited 2 with 'its argument x**2 + y**2 = 0 must be > 0'. A point truly
    outside the domain is still refused."""
    code, point = run_json(capsys, expr, "x=1e-170,y=2e-170")
    assert code == 0 and point["ok"] and point["disagreeing"] == []
    assert point["ill_conditioned"]
    code, _, err = cli(capsys, expr, "--at", "x=0,y=0")
    assert code == 2 and "must be > 0" in err


def test_a_float64_engine_wrong_where_float64_suffices_is_still_blamed():
    """The 'not resolved' escape needs an engine whose extended-precision rerun is finite
    where its float64 value is not: a finite wrong value at an ill-conditioned point is
    judged against its rounding bar as before."""
    from diffcheck import compare
    from diffcheck.compare import Rounding
    ref = {"jacobian": np.array([[1.0]])}
    values = {"symbolic": ref, "forward": {"jacobian": np.array([[np.nan]])}}
    errors = {"symbolic": {}, "forward": {}}
    scales = {"jacobian": np.zeros((1, 1))}
    finite_bar = Rounding({"jacobian": np.array([[1e-3]])}, precise=("symbolic",))
    verdict = compare.judge(values, errors, scales, None, None, "symbolic", rounding=finite_bar)
    assert verdict.disagreeing == ["forward"] and not verdict.unresolved
    inf_bar = Rounding({"jacobian": np.array([[1e-3]])}, precise=("symbolic",),
                       extra={"forward": {"jacobian": np.array([[np.inf]])}})
    verdict = compare.judge(values, errors, scales, None, None, "symbolic", rounding=inf_bar)
    assert verdict.ok and verdict.unresolved == [("forward", "jacobian", (0, 0))]
