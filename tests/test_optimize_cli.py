"""``diffcheck optimize``: check first, refuse on disagreement, then minimise with JAX."""

import dataclasses
import json

import numpy as np
import pytest

from diffcheck import primitives
from diffcheck.cli import main

ROSENBROCK = "(1-x)**2 + 100*(y-x**2)**2"


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("method", ["lbfgs", "newton"])
def test_verified_rosenbrock_converges(method, capsys):
    code, out, err = run(["optimize", ROSENBROCK, "--x0", "x=-1.2,y=1", "--method", method,
                          "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["check"]["ok"] and len(doc["check"]["points"]) == 4
    res = doc["result"]
    assert res["success"] and res["gnorm"] <= 1e-5
    assert res["x"] == pytest.approx({"x": 1.0, "y": 1.0}, abs=1e-6)
    assert doc["history"][0]["f"] == pytest.approx(24.2)
    assert len(doc["history"]) == res["nit"] + 1
    if method == "newton":
        assert "hessian" in doc["check"]["symbolic"]


def test_text_output_has_the_iteration_table_and_stop_reason(capsys):
    code, out, _ = run(["optimize", "(x-3)**2 + (y+1)**2", "--x0", "x=0,y=0",
                        "--method", "gd"], capsys)
    assert code == 0
    assert "gradient check: all 4 engines agree" in out
    assert "||g||" in out and "converged:" in out and "x=3" in out


def test_refuses_when_derivatives_disagree(capsys, monkeypatch):
    bad = dataclasses.replace(primitives.ROWS["mul"],
                              partials=(lambda x, y, out: y, lambda x, y, out: 2 * x))
    monkeypatch.setitem(primitives.ROWS, "mul", bad)
    monkeypatch.setitem(primitives.UFUNC_ROWS, np.multiply, bad)
    code, out, _ = run(["optimize", ROSENBROCK, "--x0", "x=-1.2,y=1"], capsys)
    assert code == 1 and "refusing to optimise" in out


@pytest.mark.parametrize("argv, needle", [
    (["optimize", "[x, y]", "--x0", "x=1,y=1"], "scalar objective"),
    (["optimize", "x**2"], "required"),
    (["optimize", "log(x)", "--x0", "x=-1"], "log(x) is undefined"),
    (["optimize", "x**2", "--x0", "x=1", "--tol", "-1"], "--tol must be"),
    (["optimize", "x**2", "--x0", "x=1", "--method", "magic"], "invalid choice"),
])
def test_bad_input_exits_two(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
