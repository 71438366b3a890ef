"""The CLI contract: options, exit codes, JSON on stdout, one-paragraph errors, no traceback."""

import json
import re
import subprocess
import sys

import pytest

from diffcheck.cli import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ok_exit_zero_and_json(capsys):
    code, out, err = run(["expr", "x**2*y + (x+y)**2", "--json", "--points", "2"], capsys)
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["ok"] and len(doc["points"]) == 2


def test_disagreement_exits_one(capsys, monkeypatch):
    import dataclasses

    import numpy as np

    from diffcheck import primitives

    bad = dataclasses.replace(primitives.ROWS["cos"], partials=(lambda x, out: np.sin(x),))
    monkeypatch.setitem(primitives.ROWS, "cos", bad)
    monkeypatch.setitem(primitives.UFUNC_ROWS, np.cos, bad)
    code, out, err = run(["expr", "cos(x)", "--at", "x=0.4"], capsys)
    assert code == 1 and "DISAGREE" in out


def test_leading_minus_expression_is_not_an_option(capsys):
    code, out, _ = run(["expr", "-x**2", "--at", "x=3", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["points"][0]["engines"]["forward"]["gradient"] == [-6.0]


@pytest.mark.parametrize("argv, needle", [
    (["expr", "x +"], "ends too early"),
    (["expr", "foo(x)"], "unknown function 'foo'"),
    (["expr", "log(x)", "--at", "x=-1"], "log(x) is undefined"),
    (["expr", "x", "--engines", "nope"], "unknown engine nope"),
    (["expr", "x", "--points", "0"], "points must be"),
    (["expr", "x", "--rtol", "-1"], "rtol must be"),
    (["expr", "x", "--points", "two"], "invalid int value"),
    (["expr", "x", "--bogus"], "unrecognized arguments"),
    (["expr"], "required"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_input_exits_two_with_one_paragraph(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    out = capsys.readouterr()
    assert info.value.code == 2
    assert needle in out.err
    assert "Traceback" not in out.err and out.out == ""


def test_debug_shows_the_traceback():
    from diffcheck.errors import ParseError

    with pytest.raises(ParseError):
        main(["expr", "x +", "--debug"])


def test_python_dash_m_and_no_traceback_in_a_real_process():
    ok = subprocess.run([sys.executable, "-m", "diffcheck", "expr", "x*y", "--at", "x=1,y=2"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "OK: all 4 engines agree" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "diffcheck", "expr", "sin(", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("diffcheck: error:") and bad.stdout == ""


def test_cli_start_does_not_import_heavy_libraries():
    code = ("import sys; from diffcheck.cli import main; "
            "rc = main(['expr', 'x**2*y', '--at', 'x=1,y=2']); "
            "heavy = [m for m in ('jax', 'scipy', 'matplotlib') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


# -- the CLI as people type (issue 17) ------------------------------------------------------
def run_json(argv, capsys):
    code, out, err = run([*argv, "--json"], capsys)
    return code, (json.loads(out) if out else None), err


def test_e_is_eulers_number_not_a_second_variable(capsys):
    code, doc, _ = run_json(["expr", "e^x", "--at", "x=1"], capsys)
    assert code == 0 and doc["variables"] == ["x"]
    assert doc["symbolic"]["gradient"] == ["exp(x)"]
    assert doc["points"][0]["engines"]["reverse"]["gradient"] == pytest.approx([2.718281828459045])
    # named in --at (or --wrt), e is a variable
    code, doc, _ = run_json(["expr", "e^x", "--at", "e=2,x=3"], capsys)
    assert code == 0 and doc["variables"] == ["e", "x"]
    assert doc["points"][0]["engines"]["forward"]["gradient"] == pytest.approx(
        [3 * 2**2, 8 * 0.6931471805599453])
    code, doc, _ = run_json(["expr", "e*x", "--wrt", "e"], capsys)
    assert code == 0 and doc["variables"] == ["e"]


def test_unicode_from_notes_end_to_end(capsys):
    code, doc, _ = run_json(["expr", "2·θ² − √(λ)·π + α×λ", "--at", "θ=1,λ=4,α=0.5"], capsys)
    assert code == 0 and doc["variables"] == ["α", "θ", "λ"]
    assert doc["points"][0]["engines"]["reverse"]["gradient"] == pytest.approx(
        [4.0, 4.0, -3.141592653589793 / 4 + 0.5])
    code, doc, _ = run_json(["expr", "θ*x", "--wrt", "θ", "--at", "θ=2,x=3"], capsys)
    assert code == 0 and doc["variables"] == ["θ"]


@pytest.mark.parametrize("at, value", [
    ("t=pi", 3.141592653589793), ("t=π/4", 0.7853981633974483), ("t=1/3", 1 / 3),
    ("t=sqrt(2)", 2**0.5), ("t=-e", -2.718281828459045), ("t=log(8, 2)", 3.0),
    ("t=atan2(1, 2)", 0.4636476090008061), ("t=2**-3", 0.125), ("t=1e-3", 1e-3),
])
def test_at_values_may_be_constant_expressions(at, value, capsys):
    code, doc, _ = run_json(["expr", "sin(t)", "--at", at], capsys)
    assert code == 0 and doc["points"][0]["at"]["t"] == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("at, needle", [
    ("x=y", "'y' uses the variable y"),
    ("x=1+", "cannot read the value of x"),
    ("x=sqrt(-1)", "points must be finite"),
    ("x=exp(1000)", "points must be finite"),
    ("x=9**9**9", "too large"),
    ("x=factorial(10**8)", "too large"),
    ("x=[1, 2]", "is a list"),
    ("x=__import__('os')", "unexpected character"),
])
def test_bad_constant_values_are_bad_input(at, needle, capsys):
    code, out, err = run(["expr", "x", "--at", at], capsys)
    assert code == 2 and needle in err and "Traceback" not in err and out == ""


def test_a_variable_that_cancels_is_still_a_variable(capsys):
    code, doc, _ = run_json(["expr", "x - x + y", "--at", "x=1,y=2"], capsys)
    assert code == 0 and doc["variables"] == ["x", "y"]
    assert doc["symbolic"]["gradient"] == ["0", "1"]
    for engine in ("symbolic", "forward", "reverse"):
        assert doc["points"][0]["engines"][engine]["gradient"] == [0.0, 1.0]
    code, doc, _ = run_json(["expr", "[x*0 + y, y]", "--points", "2"], capsys)
    assert code == 0 and doc["variables"] == ["x", "y"]


@pytest.mark.parametrize("expr, at, says, not_says", [
    ("log(t-5)", "t=1", "log(t - 5) is undefined (or not differentiable) at t=1: its argument "
                        "t - 5 = -4 must be > 0", "needs x"),
    ("x*log(1-y)", "x=1,y=2", "log(1 - y) is undefined (or not differentiable) at x=1, y=2: its "
                              "argument 1 - y = -1 must be > 0", "x > 0"),
    ("sqrt(x - 2*y)", "x=1,y=1", "its argument x - 2*y = -1 must be > 0", "needs x"),
    ("asin(x/4)", "x=5", "its argument x/4 = 1.25 must satisfy -1 < x/4 < 1", "needs x"),
    ("1/(x - 1) + y", "x=1,y=0", "1/(x - 1) is undefined (or not differentiable) at x=1, y=0: "
                                 "its denominator x - 1 = 0 must be != 0", "div needs"),
    ("x**y", "x=-2,y=2", "here x = -2", "base"),
    ("floor(x)", "x=2", "its argument x = 2 must be a non-integer", "needs x"),
    ("gamma(x + 1)", "x=-1", "its argument x + 1 = 0 must be other than 0, -1, -2", "needs x"),
    ("max(x, y)", "x=1,y=1", "it needs x != y (max has a kink where they tie); here x = 1, y = 1",
     "maximum"),
])
def test_domain_errors_name_the_subexpression_and_its_value(expr, at, says, not_says, capsys):
    code, out, err = run(["expr", expr, "--at", at], capsys)
    flat = " ".join(err.split())
    assert code == 2 and says in flat and not_says not in flat, flat


def test_domain_error_of_random_points_names_the_subexpression(capsys):
    code, out, err = run(["expr", "log(-x**2 - 1) + y"], capsys)
    flat = " ".join(err.split())
    assert code == 2 and "log(-x**2 - 1): its argument -x**2 - 1 = " in flat


FUNCTION_CASES = {  # one expression per rule-table function, in its domain
    "sec": "sec(x)*y", "csc": "csc(x) + y", "cot": "cot(x*y)", "log10": "log10(x**2 + y)",
    "log2": "log2(1 + x**2)*y", "log": "log(x**2 + 1, y**2 + 2)", "max": "max(x, y, x*y)",
    "min": "min(x**2, y)", "relu": "relu(x - y)*x", "floor": "floor(x)*y + x",
    "ceil": "ceil(y)*x**2", "gamma": "gamma(x + 3)*y", "lgamma": "lgamma(x**2 + 1) + y",
    "factorial": "factorial(x + 2)*y", "polygamma": "polygamma(1, x**2 + 1)*y",
    "heaviside": "heaviside(x)*x*y",
}


@pytest.mark.parametrize("name", sorted(FUNCTION_CASES))
def test_functions_people_write_daily_check_out(name, capsys):
    code, doc, err = run_json(["expr", FUNCTION_CASES[name], "--hessian", "--points", "3",
                               "--seed", "1"], capsys)
    assert code == 0 and doc["ok"], err


def test_gamma_as_a_variable_needs_a_declaration(capsys):
    code, out, err = run(["expr", "gamma*x**2"], capsys)
    assert code == 2 and "'gamma' is a function" in err and "--at or --wrt" in err
    code, doc, _ = run_json(["expr", "gamma*x**2", "--at", "gamma=0.5,x=2"], capsys)
    assert code == 0 and doc["variables"] == ["gamma", "x"]


def test_help_lists_every_function_of_the_rule_table(capsys):
    from diffcheck.parse import function_names

    with pytest.raises(SystemExit):
        main(["expr", "--help"])
    flat = " ".join(capsys.readouterr().out.split())
    assert ", ".join(function_names()) in flat
    assert {"sec", "log10", "relu", "lgamma", "factorial", "ceil"} <= set(function_names())


def test_docs_cli_synopsis_and_function_list_are_generated_from_the_code():
    """docs/cli.md shows what the parsers and the rule table say (regenerate with
    `python scripts/make_cli_docs.py`)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_cli_docs",
                                                  root / "scripts" / "make_cli_docs.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    page = (root / "docs" / "cli.md").read_text()
    assert script.fill(page) == page, "docs/cli.md is stale: run python scripts/make_cli_docs.py"
    for option in ("--direction", "--debug", "--graph", "diffcheck optimize", "diffcheck cost",
                   "diffcheck chain"):
        assert option in page.split("<!-- /synopsis -->")[0], option


def _readme() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_command_lines_run(capsys):
    """Every `diffcheck ...` line of README's bash blocks runs with exit status 0, or the one
    its comment names ("exit 1: ..."); the JAX line is left to the JAX engine's own tests (it
    compiles)."""
    import shlex

    lines = [line.partition("#")[::2] for block in
             re.findall(r"```bash\n(.*?)```", _readme(), re.S) for line in block.splitlines()]
    commands = [(c.strip(), comment) for c, comment in lines
                if c.strip().startswith("diffcheck ") and "--engines all" not in c]
    assert any(c.startswith("diffcheck cost ") for c, _ in commands)
    for command, comment in commands:
        expected = re.search(r"exit (\d)", comment)
        code = main(shlex.split(command)[1:])
        err = capsys.readouterr().err
        assert code == (int(expected[1]) if expected else 0), (command, err)


def test_readme_says_how_long_the_suite_takes_and_how_to_run_a_subset():
    from pathlib import Path

    text = " ".join(_readme().split())
    assert "about 5 minutes on 2 cores" in text
    subset = re.search(r"`pytest ((?:tests/\S+\.py ?)+)`", text)
    assert subset is not None
    root = Path(__file__).resolve().parent.parent
    assert all((root / f).exists() for f in subset.group(1).split())


def test_cost_docs_sweep_sizes_are_the_default_sizes():
    """docs/cost.md's sweep tables, `diffcheck cost --help`, cost.sweep() and the script that
    writes the page use the same sizes."""
    from pathlib import Path

    from diffcheck import cost
    from diffcheck.cli import build_parser

    root = Path(__file__).resolve().parent.parent
    sub = build_parser()._subparsers._group_actions[0].choices["cost"]
    cli_default = next(a.default for a in sub._actions if a.dest == "sizes")
    assert cli_default == ",".join(map(str, cost.SIZES))
    assert f"(default {cli_default})" in sub.format_help().replace("\n", " ").replace("  ", " ")
    assert "SWEEP_SIZES = cost.SIZES" in (root / "scripts" / "make_cost_docs.py").read_text()
    page = (root / "docs" / "cost.md").read_text()
    table = page.split("m = 16, n grows")[1].split("log-log")[0]
    n_column = [int(line.split()[0]) for line in table.splitlines()[2:] if line.strip()]
    assert tuple(n_column) == cost.SIZES
    assert f"--sizes {cli_default}" in page
    assert "grows the other through " + ", ".join(map(str, cost.SIZES)) + "," in \
        " ".join(page.split())
