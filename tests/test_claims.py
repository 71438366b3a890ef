"""Claimed derivatives: ``diffcheck expr F --claim G [--claim-hessian H]`` and
``dc.check_expression(F, claim=G, claim_hessian=H)``.

Every verdict (proved, agrees, partly, wrong) and every diagnosis (transposed, sign,
missing-chain-factor, constant-factor, missing-term, extra-term) through the library and the
CLI; the JSON contract; exit statuses; bad shapes and variables; exact decimals and tiny
differences; Hypothesis properties (rewritten true derivatives are never wrong, perturbed ones
never right).
"""

from __future__ import annotations

import json
import threading
import time

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffcheck as dc
from diffcheck import strategies as dst
from diffcheck.claims.budget import Budget
from diffcheck.claims.reading import parse_exact
from diffcheck.cli import main

ENTRY_KEYS = {"index", "name", "claimed", "true", "verdict", "counterexample", "diagnosis"}


def entries(report) -> list:
    return [e for c in report.claims for e in c.entries]


def only(report):
    (e,) = entries(report)
    return e


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["expr", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, err = cli(capsys, *argv, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def sympy_value(text: str, at: dict[str, float]) -> sympy.Float:
    """Independent evaluation: SymPy evalf at 50 digits, exact point, exact decimals."""
    subs = {sympy.Symbol(k, real=True): sympy.Rational(v) for k, v in at.items()}
    return parse_exact(text).evalf(50, subs=subs)


def true_value(f: str, var: str, at: dict[str, float]) -> sympy.Float:
    subs = {sympy.Symbol(k, real=True): sympy.Rational(v) for k, v in at.items()}
    return sympy.diff(parse_exact(f), sympy.Symbol(var, real=True)).evalf(50, subs=subs)


# -- verdicts -----------------------------------------------------------------------------------
def test_proved_gradient_written_differently_from_sympy():
    r = dc.check_expression("x**2*y + (x+y)**2", claim="[2*x*y + 2*(x+y), x**2 + 2*(x+y)]")
    assert r.ok and [e.verdict for e in entries(r)] == ["proved", "proved"]
    assert r.claims[0].kind == "gradient"
    assert entries(r)[0].true == "2*x*y + 2*x + 2*y"  # the symbolic engine's formula


def test_proved_needs_an_identity():
    e = only(dc.check_expression("sin(x)*cos(x)", claim="cos(2*x)"))
    assert e.verdict == "proved" and "simplifies to 0" in e.how


def test_agrees_when_equal_everywhere_but_not_provable():
    # d/dx sqrt(x**2 + 2x + 1) = (x+1)/|x+1| = sign(x+1): SymPy cannot show it
    r = dc.check_expression("sqrt(x**2 + 2*x + 1)", claim="sign(x + 1)")
    e = only(r)
    assert r.ok and e.verdict == "agrees" and e.counterexample is None and e.diagnosis is None


def test_partly_says_where_it_holds():
    r = dc.check_expression("sqrt(x**2)", claim="1")
    e = only(r)
    assert not r.ok and e.verdict == "partly" and e.region == "x > 0"
    ce = e.counterexample
    assert ce["at"]["x"] < 0 and ce["claimed"] == 1.0 and ce["true"] == -1.0
    assert "it holds for x > 0" in str(r) and "it holds for x > 0" in e.diagnosis.text


@pytest.mark.parametrize("f, claim, region", [
    ("abs(x - 1)", "1", "x > 1"),
    ("asin(sin(x))", "1", "cos(x) > 0"),
    ("x*abs(x)", "2*x", "x > 0"),
    ("log(abs(x))", "1/abs(x)", "x > 0"),
])
def test_partly_regions(f, claim, region):
    e = only(dc.check_expression(f, claim=claim))
    assert e.verdict == "partly" and e.region == region


def test_partly_needs_a_region_not_isolated_points():
    # x**2/2 has derivative x; the claim x**2 agrees only at x = 0 and x = 1
    e = only(dc.check_expression("x**3/3", claim="x", at=["x=1", "x=0"]))
    assert e.verdict == "wrong"


def test_wrong_with_counterexample_re_verified_at_50_digits():
    r = dc.check_expression("x*y*z", wrt="x,y", claim="[y*z, x]")
    e = entries(r)[1]
    assert e.verdict == "wrong" and not r.ok
    at = e.counterexample["at"]
    assert set(at) == {"x", "y", "z"}  # every variable of F, also those not differentiated
    c, t = sympy_value("x", at), true_value("x*y*z", "y", at)
    assert abs(c - t) > 1e-10
    assert e.counterexample["claimed"] == pytest.approx(float(c), rel=1e-15)
    assert e.counterexample["true"] == pytest.approx(float(t), rel=1e-15)


def test_user_points_are_added_and_preferred_as_counterexamples():
    e = only(dc.check_expression("x**3", claim="x**2", at="x=2.5"))
    assert e.counterexample["at"] == {"x": 2.5}
    assert e.counterexample["claimed"] == 6.25 and e.counterexample["true"] == 18.75


def test_counterexample_is_readable_when_possible():
    e = only(dc.check_expression("exp(x)*sin(x)", claim="exp(x)*cos(x)"))
    assert e.counterexample["at"] == {"x": 1.0}


# -- precision -----------------------------------------------------------------------------------
@pytest.mark.parametrize("claim", ["0.9999*x", "x + 1e-9*x**3", "x + 1e-30*x", "x*(1 + 1e-40)"])
def test_tiny_differences_are_wrong(claim):
    e = only(dc.check_expression("x**2/2", claim=claim))
    assert e.verdict == "wrong"
    at = e.counterexample["at"]
    assert sympy_value(claim, at) != true_value("x**2/2", "x", at)


@pytest.mark.parametrize("f, claim", [
    ("x**2/2", "x*(1 + 10**-50)"),  # was partly (holds at some points by rounding)
    ("x**2", "2*x + 10**-60*x**3"),  # was agrees: the 50-digit gap hid the difference
    ("exp(x)", "exp(x)*(1 + 10**-70)"),
    ("sin(x)", "cos(x) + 10**-75*sin(x)"),
])
def test_differences_beyond_the_first_digits_are_wrong_everywhere(f, claim):
    """A difference that 50 digits cannot see and 80 digits barely see is found with more
    digits at every point: wrong, never agrees nor partly."""
    e = only(dc.check_expression(f, claim=claim))
    assert e.verdict == "wrong"
    at = e.counterexample["at"]
    subs = {sympy.Symbol(k, real=True): sympy.Rational(v) for k, v in at.items()}
    x = sympy.Symbol("x", real=True)
    assert (parse_exact(claim) - sympy.diff(parse_exact(f), x)).evalf(150, subs=subs) != 0


@pytest.mark.parametrize("f, claim, at, kind", [
    # exp(-900) is tiny beside x**2 = 900, yet exact to its last digits: it was taken for 0
    # ("both 0 to the working precision"), so the claim held at x = 30 and was "partly"
    ("exp(-x**2)", "-2*x*exp(-x**2)*(1 + 1e-10)", "x=30", "constant-factor"),
    # values of 1e-200: was "agrees", then diagnosed "sign" (1e-200 taken for -1e-200)
    ("1e-200*x**2", "2e-200*x*(1 + 1e-10)", None, "constant-factor"),
    ("1e-200*x**2", "-2e-200*x", None, "sign"),
])
def test_tiny_values_are_compared_relative_to_themselves(f, claim, at, kind):
    e = only(dc.check_expression(f, claim=claim, at=at))
    assert e.verdict == "wrong" and e.diagnosis.kind == kind
    ce = e.counterexample  # a point where float64 shows the two values apart
    assert ce["claimed"] != ce["true"]
    assert sympy_value(claim, ce["at"]) != true_value(f, "x", ce["at"])


def test_decimals_mean_the_decimals_they_spell():
    assert only(dc.check_expression("2.1*x**3", claim="6.3*x**2")).verdict == "proved"
    r = dc.check_expression("(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2",
                            claim_hessian="[[10*x1**4 - 25.2*x1**2 + 8, 1], [1, 48*x2**2 - 8]]")
    assert r.ok and {e.verdict for e in entries(r)} == {"proved"}
    assert r.claims[0].kind == "hessian" and r.hessian  # --claim-hessian alone implies it


def test_right_claim_whose_float64_evaluation_cancels_still_agrees():
    claim = "((x + 1e10)**2 - (x - 1e10)**2)/4e10"
    with np.errstate(all="ignore"):
        x = np.float64(0.3)
        float_value = ((x + 1e10) ** 2 - (x - 1e10) ** 2) / 4e10
    assert abs(float_value - x) > 1e-8  # float64 cannot see this is right
    assert only(dc.check_expression("x**2/2", claim=claim)).verdict in ("proved", "agrees")


def test_cancellation_of_huge_terms_is_resolved_with_more_digits():
    claim = "2*x + (x+1)**300*(x-1)**300 - (x**2-1)**300"
    e = only(dc.check_expression("x**2", claim=claim))
    assert e.verdict in ("proved", "agrees")


# -- diagnoses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("f, claim, kind, words", [
    ("sin(x**2)", "cos(x**2)", "missing-chain-factor",
     "you dropped the chain-rule factor d/dx(x**2) = 2*x of sin(x**2)"),
    ("x**3 + sin(x**2)", "3*x**2 + cos(x**2)", "missing-chain-factor", "d/dx(x**2) = 2*x"),
    ("(x**2 + 1)**3", "3*(x**2 + 1)**2", "missing-chain-factor", "d/dx(x**2 + 1) = 2*x"),
    ("exp(3*x)", "exp(3*x)", "missing-chain-factor", "d/dx(3*x) = 3"),
    ("x**3", "x**2", "constant-factor", "1/3 times"),
    ("x", "0.9999", "constant-factor", "0.9999 times"),
    # a factor near 1 shows its deviation (was "1.00000000000000 times")
    ("exp(-1/x**2)", "2*exp(-1/x**2)/x**3*(1 + 1e-15)", "constant-factor", "(1 + 1.0e-15) times"),
    ("x**2", "2*x*(1 - 10**-12)", "constant-factor", "(1 - 1.0e-12) times"),
    ("cos(x)", "sin(x)", "sign", "-1 times the true derivative -sin(x)"),
    ("exp(-x)", "exp(-x)", "sign", "-1 times"),  # sign beats a chain factor -1
    ("x*sin(x)", "x*cos(x)", "missing-term", "product-rule term sin(x)"),
    ("sin(x)/x", "cos(x)/x", "missing-term", "quotient-rule term -sin(x)/x**2"),
    ("x**2 + 3*x", "2*x", "missing-term", "sum-rule term 3"),
    ("x**2", "2*x + 1", "extra-term", "the term 1 should not be there"),
    ("2.1*x**3", "6.3*x**2 + 1e-9*x**3", "extra-term", "1.0e-9*x**3"),
    # a varying exponent: the power rule alone, or the exponential rule alone (no diagnosis)
    ("x**x", "x*x**(x-1)", "missing-term",
     "exponential-rule term x**x*log(x) is missing (the one from differentiating the exponent"),
    ("x**sin(x)", "x**sin(x)*cos(x)*log(x)", "missing-term",
     "power-rule term x**sin(x)*sin(x)/x is missing (the one from differentiating the base"),
])
def test_diagnoses(f, claim, kind, words):
    e = only(dc.check_expression(f, claim=claim))
    assert e.verdict == "wrong" and e.diagnosis.kind == kind
    assert words in e.diagnosis.text


def test_extra_term_from_a_variable_held_constant():
    r = dc.check_expression("x**2*y", claim="[2*x*y + x**2, x**2]")
    e = entries(r)[0]
    assert e.diagnosis.kind == "extra-term" and e.verdict == "wrong"
    assert entries(r)[1].verdict == "proved"


def test_transposed_jacobian():
    r = dc.check_expression("[2*x1 + x2**2, -x1**2 + 3*x2]", claim="[[2, -2*x1], [2*x2, 3]]")
    verdicts = {tuple(e.index): e for e in entries(r)}
    assert verdicts[(0, 0)].verdict == verdicts[(1, 1)].verdict == "proved"
    for ij in ((0, 1), (1, 0)):
        assert verdicts[ij].verdict == "wrong" and verdicts[ij].diagnosis.kind == "transposed"
    assert "the true df2/dx1 = -2*x1" in verdicts[(0, 1)].diagnosis.text


def test_hessian_constant_factor_off_diagonal():
    r = dc.check_expression("x**2*y", claim_hessian="[[2*y, x], [x, 0]]")
    bad = [e for e in entries(r) if e.verdict == "wrong"]
    assert [e.name for e in bad] == ["d2f/dxdy", "d2f/dydx"]
    assert all(e.diagnosis.kind == "constant-factor" for e in bad)


def test_partly_carries_the_diagnosis_of_where_it_fails():
    e = only(dc.check_expression("sqrt(x**2)", claim="1"))
    assert e.diagnosis.kind == "sign"


def test_no_diagnosis_when_none_fits():
    e = only(dc.check_expression("x**3", claim="3*x**3"))
    assert e.verdict == "wrong" and e.diagnosis is None
    e = entries(dc.check_expression("x**n", claim="[x**n*log(x), 0]"))[1]  # d/dx: not a
    assert e.verdict == "wrong" and e.diagnosis is None  # "missing power-rule term" (all of it)
    e = entries(dc.check_expression("x**y", claim="[y*x**(y-1), 0]"))[1]  # d/dy
    assert e.verdict == "wrong" and e.diagnosis is None


@pytest.mark.parametrize("f, claim, kind", [
    ("x**2", "2*x*sqrt(x-5)", None),  # defined only for x >= 5: was "0.69 times the true"
    ("x**2", "2*x + sqrt(x-5)", "extra-term"),
    ("x**2", "3*x*sqrt(x-5)/sqrt(x-5)", "constant-factor"),
])
def test_diagnosis_of_a_claim_defined_on_part_of_the_domain_fits_several_points(
        f, claim, kind):
    """One failing point where the claim is defined fits any constant factor: a diagnosis
    needs several (points near it are added when the sample has too few)."""
    e = only(dc.check_expression(f, claim=claim))
    assert e.verdict == "wrong"
    assert (e.diagnosis.kind if e.diagnosis else None) == kind


# -- shapes and bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("f, claim, hessian, needle", [
    ("x*y", "2*x", None, "give its gradient as a bracketed list of 2"),
    ("x*y", "[y]", None, "has 1 entry but F has 2 variables"),
    ("x*y", "[[y, x], [1, 0]]", None, "F is a scalar function"),
    ("[x, y]", "[1, 1]", None, "give its Jacobian as 2 bracketed rows"),
    ("[x1, x2, x1*x2]", "[[1, 0, x2], [0, 1, x1]]", None, "It looks transposed"),
    ("[x, y]", None, "[[0, 0], [0, 0]]", "--claim-hessian needs a scalar F"),
    ("x*y", None, "[[0, 1]]", "the claimed Hessian is 1 row of 2 entries"),
    ("x**2", "2*z", None, "the claim uses z, which is not a variable of F"),
    ("x**2", "2*x + z - z", None, "the claim uses z, which is not a variable of F"),
    ("x*y", "[y + oo - oo, x]", None, "the claim uses oo, which is not a variable of F"),
    ("3", "0", None, "F has no variables"),
])
def test_bad_shapes_and_variables_are_usage_errors(f, claim, hessian, needle):
    with pytest.raises(dc.UsageError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        dc.check_expression(f, claim=claim, claim_hessian=hessian)


@pytest.mark.parametrize("claim, column, message", [
    ("2*x +", 5, "expression ends too early"),
    ("[2*x, 3*]", 8, "expression ends too early"),
    ("[[1, 2], [3 4]]", 12, "expected an operator but found '4'"),
    ("[x, , y]", 4, "an entry is missing"),
    ("[x, y", 0, "'[' is never closed"),
    ("[x, y] z", 7, "unexpected 'z' after the list"),
    ("[x, y + [z]]", 8, "may only be a whole entry"),
    ("[[[x]]]", 2, "at most two levels deep"),
])
def test_claim_parse_errors_point_at_the_column(claim, column, message):
    with pytest.raises(dc.ParseError) as info:
        dc.check_expression("x*y", claim=claim)
    assert info.value.column == column and message in str(info.value)
    assert str(info.value).splitlines()[-1].index("^") - 2 == column


def test_bad_claim_exits_two_with_one_paragraph(capsys):
    code, out, err = cli(capsys, "x*y", "--claim", "[y]")
    assert code == 2 and out == "" and err.startswith("diffcheck: error:")
    assert "Traceback" not in err
    code, out, err = cli(capsys, "x**2", "--claim", "2*z")
    assert code == 2 and "z, which is not a variable of F" in err


@pytest.mark.parametrize("claim, constant", [
    ("2*x + log(0)", "zoo"),
    ("2*x + sqrt(-1)", "I"),
    ("2*x*(-8)**(1/3)", "(-1)**(1/3)"),
    ("[y, x + log(-1)]", "I*pi"),
])
def test_claim_with_a_constant_that_is_not_a_finite_real_number_exits_two(
        capsys, claim, constant):
    """As in EXPR ('constant zoo is not a finite real number'), not 'WRONG, claimed
    undefined' (exit 1)."""
    f = "x*y" if claim.startswith("[") else "x**2"
    code, out, err = cli(capsys, f, "--claim", claim)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"the claim's constant {constant} (in " in err and "not a finite real" in err


def test_bad_claim_fails_before_the_engines_run(monkeypatch):
    import diffcheck.check as check

    monkeypatch.setattr(check, "run_engines", lambda *a: pytest.fail("engines ran"))
    with pytest.raises(dc.UsageError):
        dc.check_expression("x*y", claim="[y]")


# -- CLI and JSON -------------------------------------------------------------------------------
def test_cli_json_contract(capsys):
    code, doc = cli_json(capsys, "x**2*y + y", "--claim", "[2*x*y, x**2]", "--at", "x=1,y=2")
    assert code == 1 and doc["ok"] is False
    (claim,) = doc["claims"]
    assert set(claim) == {"kind", "ok", "entries"} and claim["kind"] == "gradient"
    assert claim["ok"] is False
    right, wrong = claim["entries"]
    assert set(right) == set(wrong) == ENTRY_KEYS
    assert right == {"index": [0], "name": "df/dx", "claimed": "2*x*y", "true": "2*x*y",
                     "verdict": "proved", "counterexample": None, "diagnosis": None}
    assert wrong["verdict"] == "wrong" and wrong["index"] == [1] and wrong["name"] == "df/dy"
    assert wrong["counterexample"] == {"at": {"x": 1.0, "y": 2.0}, "claimed": 1.0, "true": 2.0}
    assert wrong["diagnosis"]["kind"] == "missing-term" and wrong["diagnosis"]["text"]


def test_cli_exit_zero_when_the_claim_is_right(capsys):
    code, doc = cli_json(capsys, "[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]",
                         "--claim", "[[2, 2*x2], [-2*x1, 3], [4*x2, 4*x1]]", "--at", "x1=2,x2=1")
    assert code == 0 and doc["ok"] is True
    (claim,) = doc["claims"]
    assert claim["kind"] == "jacobian" and claim["ok"] is True
    assert [e["index"] for e in claim["entries"]] == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0],
                                                       [2, 1]]
    assert claim["entries"][3]["name"] == "df2/dx2"


def test_cli_partly_and_agrees_exit_statuses(capsys):
    code, doc = cli_json(capsys, "sqrt(x**2)", "--claim", "1")
    assert code == 1 and doc["claims"][0]["entries"][0]["verdict"] == "partly"
    code, doc = cli_json(capsys, "sqrt(x**2 + 2*x + 1)", "--claim", "sign(x + 1)")
    assert code == 0 and doc["claims"][0]["entries"][0]["verdict"] == "agrees"


def test_cli_derivative_and_hessian_claims_together(capsys):
    code, doc = cli_json(capsys, "x**3", "--claim", "3*x**2", "--claim-hessian", "[[6*x]]")
    assert code == 0 and [c["kind"] for c in doc["claims"]] == ["derivative", "hessian"]
    assert doc["claims"][1]["entries"][0]["index"] == [0, 0]
    assert "hessian" in doc["symbolic"]


def test_cli_claim_starting_with_minus(capsys):
    code, doc = cli_json(capsys, "cos(x)", "--claim", "-sin(x)")
    assert code == 0 and doc["claims"][0]["entries"][0]["claimed"] == "-sin(x)"


def test_cli_wrt_order(capsys):
    code, doc = cli_json(capsys, "x**2*y", "--wrt", "y,x", "--claim", "[x**2, 2*x*y]")
    assert code == 0 and [e["name"] for e in doc["claims"][0]["entries"]] == ["df/dy", "df/dx"]


def test_text_report_one_line_per_entry_then_the_engines(capsys):
    code, out, _ = cli(capsys, "sin(x**2)*y", "--claim", "[cos(x**2)*y, sin(x**2)]")
    lines = out.splitlines()
    start = lines.index("claimed gradient:")
    assert lines[start + 1].startswith("  df/dx = cos(x**2)*y") and "WRONG at x=" in lines[
        start + 1] and "missing-chain-factor: you dropped the chain-rule factor" in lines[
        start + 1]
    assert lines[start + 2].startswith("  df/dy = sin(x**2)") and "proved" in lines[start + 2]
    assert lines.index("symbolic gradient:") > start + 2  # then the usual engine table
    assert lines[-2].startswith("OK: all 4 engines agree")
    assert lines[-1] == "CLAIM WRONG: df/dx is wrong (1 of 2 claimed entries right)."
    assert code == 1


def test_no_claims_key_without_a_claim(capsys):
    code, doc = cli_json(capsys, "x*y", "--at", "x=1,y=2")
    assert code == 0 and "claims" not in doc


def test_trace_is_unaffected_by_a_claim(capsys):
    code, out, _ = cli(capsys, "x**2*y", "--at", "x=1,y=2", "--trace")
    code2, out2, _ = cli(capsys, "x**2*y", "--at", "x=1,y=2", "--trace", "--claim",
                         "[2*x*y, x**2]")
    assert code == code2 == 0
    trace = out[out.index("\n\n", out.index("OK: all")):]
    assert trace in out2


# -- library --------------------------------------------------------------------------------------
def test_check_gradient_with_text_routes_to_the_claim_check():
    v = np.array([1.0, 2.0, 3.0])
    r = dc.check_gradient("x*y*z", "[y*z, x*z, x*y]", v)
    assert r.ok and bool(r) and [e.verdict for e in entries(r)] == ["proved"] * 3
    assert not dc.check_gradient("x*y*z", "[y*z, x*z, x]", v).ok
    with pytest.raises(AssertionError, match="WRONG"):
        dc.assert_gradient("x*y*z", "[y*z, x*z, x]", v)
    assert dc.check_jacobian("[x*y, x + y]", "[[y, x], [1, 1]]", "x=1,y=2").ok
    assert dc.check_hessian("x**2*y", "[[2*y, 2*x], [2*x, 0]]", {"x": 1, "y": 2}).ok
    with pytest.raises(dc.UsageError, match="give the claim as text too"):
        dc.check_gradient("x*y", lambda x: x, v[:2])


def test_claims_as_sympy_objects_and_lists_of_text():
    x, y = sympy.symbols("x y")
    r = dc.check_expression("x**2*y", claim=[2 * x * y, x**2])
    assert r.ok and [e.claimed for e in entries(r)] == ["2*x*y", "x**2"]
    r = dc.check_expression(x**2 * y, claim=["2*x*y", "x**2"], claim_hessian=sympy.Matrix(
        [[2 * y, 2 * x], [2 * x, 0]]))
    assert r.ok and len(entries(r)) == 6


def test_right_claims_are_quick_and_budgets_hold_off_the_main_thread():
    out = {}

    def work():
        t0 = time.perf_counter()
        out["verdict"] = only(dc.check_expression(
            "x**2", claim="2*x + (x+1)**300*(x-1)**300 - (x**2-1)**300")).verdict
        out["seconds"] = time.perf_counter() - t0
        out["proved"] = only(dc.check_expression("sin(x)*cos(x)", claim="cos(2*x)")).verdict
        out["diagnosis"] = only(dc.check_expression("sin(x**2)", claim="cos(x**2)")).diagnosis

    t = threading.Thread(target=work)  # no timer signal there: size limits bound the work
    t.start()
    t.join()
    assert out["verdict"] in ("proved", "agrees") and out["seconds"] < 20
    assert out["proved"] == "proved" and out["diagnosis"].kind == "missing-chain-factor"


def test_budget_abandons_a_long_step():
    t0 = time.perf_counter()
    done, value = Budget(5.0).run(lambda: sympy.expand((sympy.Symbol("a") + 1) ** 4000), 0.2)
    assert not done and value is None and time.perf_counter() - t0 < 2


# -- properties -----------------------------------------------------------------------------------
def _identities(e: sympy.Expr, which: int) -> sympy.Expr:
    """Rewrite a derivative by true identities, as a person writing it by hand might."""
    half = sympy.Rational(1, 2)
    rules = [
        lambda e: e.replace(sympy.sin, lambda a: 2 * sympy.sin(a * half) * sympy.cos(a * half)),
        lambda e: e.replace(sympy.cos, lambda a: 1 - 2 * sympy.sin(a * half) ** 2),
        lambda e: e.replace(sympy.exp, lambda a: sympy.exp(a * half) ** 2),
        lambda e: e.replace(sympy.tanh, lambda a: (sympy.exp(2 * a) - 1) / (sympy.exp(2 * a) + 1)),
        lambda e: sympy.expand(e),
        lambda e: sympy.together(e),
        lambda e: e * (sympy.sin(sympy.Symbol("x", real=True)) ** 2 +
                       sympy.cos(sympy.Symbol("x", real=True)) ** 2),
    ]
    return rules[which % len(rules)](e)


@settings(max_examples=25, deadline=None)
@given(dst.expressions(("x", "y"), max_depth=2), st.integers(0, 6), st.booleans())
def test_rewritten_true_derivatives_are_never_wrong(expr, which, as_text):
    f = parse_exact(expr.text)
    claim = [_identities(sympy.diff(f, sympy.Symbol(v, real=True)), which) for v in "xy"]
    given_claim = "[" + ", ".join(map(str, claim)) + "]" if as_text else claim
    r = dc.check_expression(expr.text, claim=given_claim, wrt="x,y", points=1)
    assert all(e.verdict in ("proved", "agrees") for e in entries(r)), str(r)


PERTURBATIONS = st.tuples(st.sampled_from(["term", "factor"]),
                          st.sampled_from(["1e-9", "1e-6", "3", "-0.5", "1e-30"]),
                          st.sampled_from(["1", "x", "y**3", "sin(x)", "exp(y)"]))


@settings(max_examples=25, deadline=None)
@given(dst.expressions(("x", "y"), max_depth=2), PERTURBATIONS, st.integers(0, 1))
def test_perturbed_derivatives_are_never_right(expr, perturbation, which):
    how, c, m = perturbation
    var = sympy.Symbol("xy"[which], real=True)
    true = sympy.diff(parse_exact(expr.text), var)
    assume(not _vanishes(true))
    bump = parse_exact(f"{c}*{m}")
    wrong = true + bump if how == "term" else true * (1 + bump)
    claim = [sympy.diff(parse_exact(expr.text), sympy.Symbol(v, real=True)) for v in "xy"]
    claim[which] = wrong
    r = dc.check_expression(expr.text, claim=claim, wrt="x,y", points=1)
    assert entries(r)[which].verdict in ("wrong", "partly"), str(r)
    assert not r.ok


def _vanishes(e: sympy.Expr) -> bool:
    """Zero at a few points (then a perturbing factor changes nothing there)."""
    x, y = sympy.symbols("x y", real=True)
    with mpmath.workdps(30):
        return any(abs(e.evalf(30, subs={x: a, y: b})) < 1e-20
                   for a, b in ((0.3, -0.7), (1.1, 0.4), (-1.3, 1.7)))


def test_names_declared_by_at_are_variables_in_the_claim_too():
    # e is Euler's number unless --at/--wrt names it; then F and the claim both read it
    # as a variable (df/de = x**2, not 0)
    r = dc.check_expression("e*x**2", at="e=0.5,x=2", claim="[x**2, 2*e*x]")
    assert r.ok and [e["verdict"] for e in r.to_dict()["claims"][0]["entries"]] == \
        ["proved", "proved"]
    r = dc.check_expression("e^x", at="x=1", claim="e^x")
    assert r.ok
