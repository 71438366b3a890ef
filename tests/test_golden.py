"""The seeds' worked examples, through the CLI (golden text and JSON files) and the library.

Regenerate the golden files after an intended output change with
``DIFFCHECK_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the diff.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import diffcheck as dc
from diffcheck.cli import main

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DIFFCHECK_UPDATE_GOLDEN") == "1"

# name -> (CLI arguments, the numbers the lecture notes give)
CASES = {
    "quadratic_form": (["3*x**2 + 2*x*y + 3*y**2", "--at", "x=1,y=2", "--hessian"],
                       {"gradient": [10, 14], "hessian": [[6, 2], [2, 6]]}),
    "lecture_gd": (["x**2*y + (x+y)**2", "--at", "x=1,y=2"],
                   {"gradient": [2 * 1 * 2 + 2 * 3, 1 + 2 * 3]}),
    "backprop": (["(x1 + w1)**2*(x1*w1 + x2*w2)", "--wrt", "w1,w2",
                  "--at", "x1=1,w1=2,x2=3,w2=4"],
                 # a = x1+w1 = 3, d = a**2 = 9, e = x1*w1 + x2*w2 = 14:
                 # df/dw1 = 2ae + d*x1 = 93, df/dw2 = d*x2 = 27
                 {"gradient": [2 * 3 * 14 + 9 * 1, 9 * 3]}),
    "autodiff_illustration": (["sqrt(x**2+exp(x**2))+cos(x**2+exp(x**2))", "--at", "x=1"],
                              {"gradient": [(2 + 2 * math.e) * (1 / (2 * math.sqrt(1 + math.e))
                                                                - math.sin(1 + math.e))]}),
    "log_sqrt": (["log(sqrt(x))", "--at", "x=2"], {"gradient": [1 / (2 * 2)]}),
    "gradient_x2y_plus_y": (["x**2*y + y", "--at", "x=2,y=3"], {"gradient": [12, 5]}),
    "jacobian_r2_r3": (["[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]", "--at", "x1=2,x2=1"],
                       {"jacobian": [[2, 2], [-4, 3], [4, 8]]}),
    "six_hump_camel": (["(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2",
                        "--at", "x1=0,x2=1", "--hessian"],
                       {"hessian": [[8, 1], [1, 40]]}),
    # f(g, h) = g**2*h + h with g = 3x, h = x**2: df/dx = 36x**3 + 2x
    "multivariate_chain_rule": (["(3*x)**2*x**2 + x**2", "--at", "x=2"],
                                {"gradient": [36 * 8 + 4]}),
}

# The notes' table of derivatives of common functions, at x = 0.7 (a = 3)
X0 = 0.7
TABLE = {
    "constant": ("3", "0", 0.0),
    "identity": ("x", "1", 1.0),
    "linear": ("3*x", "3", 3.0),
    "square": ("x**2", "2*x", 2 * X0),
    "power": ("x**3.5", "3.5*x**2.5", 3.5 * X0**2.5),
    "exponential": ("3**x", "3**x*log(3)", math.log(3) * 3**X0),
    "log": ("log(x)", "1/x", 1 / X0),
    "log_base": ("log(x, 3)", "1/(x*log(3))", 1 / (X0 * math.log(3))),
    "sin": ("sin(x)", "cos(x)", math.cos(X0)),
    "cos": ("cos(x)", "-sin(x)", -math.sin(X0)),
    "tan": ("tan(x)", "tan(x)**2 + 1", 1 / math.cos(X0) ** 2),
}


def _cli(argv, capsys):
    code = main(["expr", *argv])
    out = capsys.readouterr()
    assert out.err == ""
    return code, out.out


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {path}; run with DIFFCHECK_UPDATE_GOLDEN=1")
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path}"


def _numbers(doc: dict, want: dict) -> None:
    engines = doc["points"][0]["engines"]
    for kind, expected in want.items():
        for engine, values in engines.items():
            got = np.array(values[kind], dtype=float)
            tol = 1e-9 if engine != "finite" else 1e-6
            np.testing.assert_allclose(got, np.array(expected, float), rtol=tol, atol=tol,
                                       err_msg=f"{engine} {kind}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_example_cli_text_and_json(name, capsys):
    argv, want = CASES[name]
    code, text = _cli(argv, capsys)
    assert code == 0, text
    _golden(f"{name}.txt", text)
    code, out = _cli([*argv, "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    _numbers(doc, want)
    _golden(f"{name}.json", out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_example_library_gives_the_cli_document(name, capsys):
    argv, want = CASES[name]
    opts = {"at": argv[argv.index("--at") + 1], "hessian": "--hessian" in argv}
    if "--wrt" in argv:
        opts["wrt"] = argv[argv.index("--wrt") + 1]
    report = dc.check_expression(argv[0], **opts)
    assert report.ok and bool(report)
    _, out = _cli([*argv, "--json"], capsys)
    assert report.to_dict() == json.loads(out)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_derivative_table_of_common_functions(name):
    text, formula, value = TABLE[name]
    report = dc.check_expression(text, at={"x": X0}, wrt="x")
    doc = report.to_dict()
    assert report.ok
    assert doc["symbolic"]["gradient"] == [formula]
    for engine, res in doc["points"][0]["engines"].items():
        assert res["gradient"][0] == pytest.approx(value, rel=1e-9, abs=1e-12), engine
