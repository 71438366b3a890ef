"""Bad and hostile input: never code execution, never a traceback, always quick.

Every case must end in a DiffcheckError (exit status 2 with one paragraph on stderr) or a
real result, within a time bound. A sentinel file proves nothing in the input ran.
"""

import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import diffcheck as dc
from diffcheck.cli import main
from diffcheck.errors import DiffcheckError, DomainError, ParseError, UsageError


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "input text was executed"


def injections(path):
    p = str(path)
    return [
        f"__import__('os').system('touch {p}')",
        "__import__(os).system(touch)",
        f"open('{p}', 'w')",
        f"exec(\"open('{p}','w')\")",
        f"eval(\"open('{p}','w')\")",
        "x.__class__.__bases__[0].__subclasses__()",
        "().__class__",
        "lambda: 1",
        "[c for c in x]",
        "x if y else z",
        "x = 3",
        f"x; import os; os.system('touch {p}')",
        "import os",
        "x < y",
        "x == y",
        "Symbol('x')",
        "Integral(x, x)",
        "sympify('x')",
        "factorial(10**8)",
        "globals()",
        "x @ y",
        "x % y",
        "x // y",
        "~x",
        "x and y",
        "not x",
        "{x: 1}",
        "x[0]",
        "f'{x}'",
        "`x`",
        "$x",
        "x\\\ny",
        # the same through the notation pasted from notes
        "θ.__class__",
        "π.real",
        "x²; import os",
        f"√(open('{p}', 'w'))",
        "gamma.__call__",
        "log(x, __import__)",
        "max(x, lambda: 1)",
    ]


def test_code_injection_is_rejected_and_nothing_runs(sentinel, capsys):
    for text in injections(sentinel):
        with pytest.raises(ParseError):
            dc.parse(text)
        code = main(["expr", text])
        err = capsys.readouterr().err
        assert code == 2, text
        assert err.startswith("diffcheck: error:") and "Traceback" not in err, text


RESOURCE_ATTACKS = [
    ("9**9**9**9", "too large"),
    ("x**(9**9**9)", "too large"),
    ("99**9999", "digits"),
    ("x**100001", "exponent"),
    ("factorial(10**8)", "too large"),
    ("(" * 3000 + "x" + ")" * 3000, "nesting is deeper"),
    ("sin(" * 3000 + "x" + ")" * 3000, "nesting is deeper"),
    ("+".join(f"x{i}" for i in range(200_000)), "tokens"),
    ("1e999", "overflows float64"),
    ("1" * 5000, "digits"),
    ("x\x00y", "0x00"),
    ("x" * 3_000_000, "characters long"),
    ("lgamma(10**8)", "too large"),
    ("polygamma(0, 10**6)", "too large"),
    ("gamma(99999999/2)", "too large"),
    ("polygamma(10**6, x)", "from 0 to 30"),
    ("max(" + ", ".join(f"x{i}" for i in range(100)) + ")", "2 to 64 arguments"),
    ("log(x, 0)", "base > 0"),
    ("x" + "²" * 5000, "superscript exponent of 5,000 characters"),
    ("x" + "⁻" * 1_000_000, "superscript exponent"),
    ("x" + "²+x" * 200_000, "tokens"),
    ("√" * 50 + "x", "in parentheses"),
    ("θ" * 3_000_000, "characters long"),
]


def _short_id(v: str) -> str:
    return v if len(v) < 30 else f"{v[:12]}...({len(v)} chars)"


@pytest.mark.parametrize("text, limit", RESOURCE_ATTACKS, ids=_short_id)
def test_resource_attacks_fail_fast_naming_the_limit(text, limit):
    t0 = time.perf_counter()
    with pytest.raises(ParseError, match=limit):
        dc.check_expression(text)
    assert time.perf_counter() - t0 < 10


def test_constants_sympy_would_compute_digit_by_digit_finish_quickly():
    # SymPy's floor(exp(exp(exp(3)))) and Max of many arguments run for minutes
    t0 = time.perf_counter()
    with pytest.raises(DomainError, match="overflows float64"):
        dc.check_expression("x + floor(exp(exp(exp(3))))", points=1)
    assert dc.check_expression("x*ceil(exp(pi))", points=1).ok
    assert dc.check_expression("max(" + ", ".join(f"x{i}*x" for i in range(64)) + ")",
                               points=1).ok
    assert dc.check_expression("max(max(max(max(x, y), x*y), y**2), 1) + min(x, y, 2)",
                               points=2, hessian=True).ok
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize("value, needle", [
    ("9**9**9", "too large"),
    ("factorial(10**8)", "too large"),
    ("(" * 300 + "1" + ")" * 300, "nesting is deeper"),
    ("+".join(["1"] * 200_000), "tokens"),
    ("exp(exp(exp(3)))", "finite"),
    ("floor(exp(exp(exp(3))))", "finite"),
    ("__import__('os')", "unexpected character"),
    ("x", "uses the variable x"),
], ids=lambda v: v if len(v) < 30 else f"{v[:12]}...({len(v)} chars)")
def test_constant_point_values_are_safe_and_fast(value, needle, sentinel):
    t0 = time.perf_counter()
    with pytest.raises(DiffcheckError, match=re.escape(needle)):
        dc.check_expression("x", at={"x": value})
    with pytest.raises(DiffcheckError, match=re.escape(needle)):
        dc.check_expression("x", at=f"x={value}")
    assert time.perf_counter() - t0 < 10


def test_deep_unary_chain_and_big_but_legal_input_finish():
    t0 = time.perf_counter()
    assert dc.check_expression("-" * 3001 + "x", at="x=1").ok
    assert dc.check_expression("+".join(["x"] * 50_000), at="x=1").ok
    assert time.perf_counter() - t0 < 30


@pytest.mark.parametrize("text, column", [
    ("", 0), ("   ", 3), ("(x + y", 0), ("x + y)", 5), ("x +", 3), ("* x", 0),
    ("x ** ", 5), ("sin()", 4), ("log(x,)", 6), ("[x, y", 0), ("[]", 1), ("x,y", 1),
    ("2x", 1), ("sinx(x)", 0),
])
def test_malformed_text_shows_a_caret(text, column):
    with pytest.raises(ParseError) as info:
        dc.parse(text)
    assert info.value.column == column
    lines = str(info.value).splitlines()
    assert lines[-1].strip() == "^" and lines[-1].index("^") - 2 == column


@pytest.mark.parametrize("text, at, error, needle", [
    ("x + y", "x=abc,y=1", UsageError, "not a number"),
    ("x + y", "x=1", UsageError, "no value for y"),
    ("x + y", "x=1,y=2,w=3", UsageError, "w, which is not a variable"),
    ("x + y", "x=nan,y=1", UsageError, "finite"),
    ("x + y", "x=inf,y=1", UsageError, "finite"),
    ("x + y", "x=1,y=2,x=3", UsageError, "twice"),
    ("x + y", "x1,y", UsageError, "name=value"),
    ("log(x)", "x=-1", DomainError, "log(x) is undefined"),
    ("sqrt(x)", "x=-4", DomainError, "sqrt(x) is undefined"),
    ("1/x", "x=0", DomainError, "1/x is undefined"),
    ("x + log(y - 3)", "x=1,y=2", DomainError, "log(y - 3)"),
    ("exp(exp(exp(x)))", "x=10", DomainError, "overflows float64"),
])
def test_bad_points(text, at, error, needle):
    with pytest.raises(error, match=needle.replace("(", r"\(").replace(")", r"\)")):
        dc.check_expression(text, at=at)


@pytest.mark.parametrize("argv, needle", [
    (["--engines", "symbolic,magic"], "unknown engine magic"),
    (["--engines", "finite"], "at least two engines"),
    (["--rtol", "-1"], "rtol must be"),
    (["--atol", "-0.5"], "atol must be"),
    (["--points", "0"], "points must be"),
    (["--points", "-3"], "points must be"),
    (["--seed", "-1"], "seed must be"),
    (["--wrt", "x,x"], "named twice"),
    (["--wrt", "x;rm"], "not a variable name"),
])
def test_bad_options_exit_two(argv, needle, capsys):
    code = main(["expr", "x*y", *argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_undefined_everywhere_is_a_clear_error():
    with pytest.raises(DomainError, match="could not find"):
        dc.check_expression("log(-x**2 - 1)")


# -- fuzzing: random text from the parser's alphabet and grammar fragments -----------------
FRAGMENTS = ["x", "y", "z1", "2", "0.5", "1e3", "pi", "E", "+", "-", "*", "/", "**", "^",
             "(", ")", ",", "[", "]", "sin(", "log(", "sqrt(", "atan2(", "exp(", "abs(",
             "sigmoid(", "acosh(", " ", "__", ".", "'", "9**9", "1/0", "foo(",
             "sec(", "cot(", "log10(", "max(", "min(", "relu(", "floor(", "ceil(", "gamma(",
             "lgamma(", "factorial(", "polygamma(", "e", "θ", "π", "·", "×", "−", "²", "⁻¹",
             "√(", "√", "10**8"]
ALPHABET = "xyz0123456789+-*/^()[],. eEpisnqrtaclogb_'\"\\\x00θλπ·×−²³⁻√"


@settings(max_examples=80, deadline=None)
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=40),
                 st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join)))
def test_fuzz_never_crashes_never_hangs(text):
    t0 = time.perf_counter()
    try:
        report = dc.check_expression(text, points=1)
    except DiffcheckError:
        pass
    else:
        # a real result: the engines must agree on whatever parsed
        assert report.ok, str(report)
    assert time.perf_counter() - t0 < 20


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=20).map("".join))
@example("--")
def test_fuzz_cli_exit_codes(text):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["expr", text, "--points", "1"])
        except SystemExit as exc:  # argparse's own errors ("--" ends the options) exit 2
            code = exc.code
    assert code in (0, 2), (text, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().startswith("diffcheck: error:")


def test_nested_constants_are_computed_in_float64_quickly():
    # SymPy's arbitrary-precision evalf of such constants could run for minutes
    t0 = time.perf_counter()
    r = dc.check_expression("x + atan(log(abs(sin(3)*2 + sqrt(5)))) * acosh(3)**E"
                            " - atan2(log(7), cos(pi/7)**sqrt(2))", points=2)
    assert r.ok and time.perf_counter() - t0 < 5
    with pytest.raises(DomainError, match=r"atanh\(2\): its argument 2 must satisfy"):
        dc.check_expression("x - atanh(2)")


def test_unreadable_stdin_is_bad_input(capsys):
    code = main(["expr", "-"])  # pytest's captured stdin cannot be read
    err = capsys.readouterr().err
    assert code == 2 and "standard input could not be read" in err


# -- the same attacks through a claimed derivative (--claim, --claim-hessian) ------------------
def test_code_injection_through_a_claim_is_rejected_and_nothing_runs(sentinel, capsys):
    for text in injections(sentinel):
        for argv in (["x", "--claim", text], ["x*y", "--claim", f"[{text}, x]"],
                     ["x", "--claim-hessian", text]):
            code = main(["expr", *argv])
            err = capsys.readouterr().err
            assert code == 2, argv
            assert err.startswith("diffcheck: error:") and "Traceback" not in err, argv


@pytest.mark.parametrize("text, limit", RESOURCE_ATTACKS, ids=_short_id)
def test_resource_attacks_through_a_claim_fail_fast_naming_the_limit(text, limit):
    for f, claim in (("x", {"claim": text}), ("x*y", {"claim": f"[y, {text}]"}),
                     ("x*y", {"claim_hessian": f"[[0, 1], [1, {text}]]"})):
        t0 = time.perf_counter()
        with pytest.raises(ParseError, match=limit):
            dc.check_expression(f, **claim)
        assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("f, claim", [
    ("x", "-" * 3001 + "x"),
    ("x", "+".join(["x"] * 50_000)),
    ("x", "sin(" * 99 + "x" + ")" * 99),
    ("x**2", "(x+1)**10000"),
    ("x", "exp(exp(exp(exp(exp(x)))))"),
    ("x", "sin(exp(exp(exp(x))))"),
    ("x", "x**x**x**x**x**x**x"),
    ("x**2", "2*x + (x+1)**2000*(x-1)**2000 - (x**2-1)**2000"),  # right, needs 700 digits
    ("x**2", "2*x + " + " + ".join(f"(sin({k}*x)**2 + cos({k}*x)**2 - 1)" for k in range(40))),
    ("x*y", "[y*(x+y)**500/(x+y)**500, x + (x-y)**200 - (y-x)**200]"),
], ids=lambda v: v if len(v) < 30 else f"{v[:20]}...({len(v)} chars)")
def test_legal_but_heavy_claims_end(f, claim):
    t0 = time.perf_counter()
    report = dc.check_expression(f, claim=claim, points=1)
    assert report.claims and time.perf_counter() - t0 < 30


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=20).map("".join))
def test_fuzz_claims_never_crash(text):
    import contextlib
    import io

    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["expr", "x*y", f"--claim=[{text}, x]", "--points", "1"])
    assert code in (0, 1, 2), (text, err.getvalue())
    assert "Traceback" not in err.getvalue() and time.perf_counter() - t0 < 20
