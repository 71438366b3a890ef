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


@pytest.mark.parametrize("method", ["lbfgs", "newton", "newton-trust"])
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
    if method.startswith("newton"):
        assert "hessian" in doc["check"]["symbolic"]
    assert res["status_name"] == "SUCCESS" and res["unbounded_direction"] is None


def test_text_output_has_the_iteration_table_and_stop_reason(capsys):
    code, out, _ = run(["optimize", "(x-3)**2 + (y+1)**2", "--x0", "x=0,y=0",
                        "--method", "gd"], capsys)
    assert code == 0
    assert "gradient check: all 4 engines agree" in out
    assert "||g||" in out and "converged:" in out and "x=3" in out


def test_a_name_the_start_gives_is_a_variable(capsys):
    """``e`` is Euler's number unless --x0 names it, as with --at in ``diffcheck expr``."""
    code, out, _ = run(["optimize", "(x-2)**2 + (e-3)**2", "--x0", "x=0,e=0", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["result"]["x"] == pytest.approx({"x": 2.0, "e": 3.0}, abs=1e-6)
    code, out, _ = run(["optimize", "(x-e)**2", "--x0", "x=0", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["result"]["x"]["x"] == pytest.approx(np.e, abs=1e-6)


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
    (["optimize", "x**2", "--x0", "x=1", "--every", "0"], "--every must be"),
    (["optimize", "x**2", "--x0", "x=1", "--every", "2", "--all"], "exclude each other"),
    (["optimize", "x**2", "--x0", "x=1", "--method", "newton-trust", "--linesearch", "wolfe"],
     "does not apply to newton-trust"),
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


@pytest.mark.parametrize("argv, needle", [
    (["optimize", "x**2 + y**2", "--x0", "x=1,z=0"], "--x0 names z"),
    (["optimize", "x**2 + y**2", "--x0", "x=1"], "--x0 gives no value for y"),
    (["optimize", "log(x) + y**2", "--x0", "x=-1,y=0"], "log(x) is undefined"),
])
def test_errors_about_the_start_name_x0(argv, needle, capsys):
    """The shared point parser's messages said --at, an option optimize does not have."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "--at" not in err


ROSEN_GD_200 = ["optimize", ROSENBROCK, "--x0", "x=-1.2,y=1", "--method", "gd",
                "--maxiter", "200"]


def table_rows(out):
    return [line for line in out.splitlines() if line[:5].strip().isdigit()]


def test_long_runs_print_a_digest_of_the_iterations(capsys):
    """Every iteration was printed (5 907 lines for gd on Rosenbrock)."""
    code, out, _ = run(ROSEN_GD_200, capsys)
    rows = [int(line.split()[0]) for line in table_rows(out)]
    assert code == 1 and len(rows) < 30
    assert rows[:5] == [0, 1, 2, 3, 4] and rows[-5:] == [196, 197, 198, 199, 200]
    assert f"({len(rows)} of 201 rows: the first 5, every 20th and the last 5)" in out
    assert "  ..." in out
    code, out, _ = run(ROSEN_GD_200 + ["--every", "50"], capsys)
    assert [int(line.split()[0]) for line in table_rows(out)] == [
        0, 1, 2, 3, 4, 50, 100, 150, 196, 197, 198, 199, 200]
    code, out, _ = run(ROSEN_GD_200 + ["--all"], capsys)
    assert len(table_rows(out)) == 201 and "rows:" not in out


def test_f_lower_reports_a_local_minimum(capsys):
    argv = ["optimize", "x**4 - 4*x**2 + x", "--x0", "x=1", "--f-lower", "-5.5"]
    code, out, _ = run(argv, capsys)
    assert code == 1 and "NOT converged (LOCAL_MINIMUM)" in out and "x=1.346997" in out
    code, out, _ = run(["optimize", "(x-1)**2 + (y-2)**2", "--x0", "x=0,y=0", "--f-lower", "0"],
                       capsys)
    assert code == 0 and "converged:" in out


def test_unbounded_objective(capsys):
    """x^2 - y^2 ended at f = -1e308, ||g|| = inf with "Line search failed ... is the gradient
    consistent with the function?"."""
    argv = ["optimize", "x**2 - y**2", "--x0", "x=1,y=1e-3", "--method", "bfgs"]
    code, out, _ = run(argv, capsys)
    assert code == 1 and "NOT converged (UNBOUNDED)" in out
    assert "unbounded below along (x=" in out and "Line search failed" not in out
    code, out, _ = run(argv + ["--json"], capsys)
    res = json.loads(out)["result"]
    assert res["status_name"] == "UNBOUNDED" and abs(res["unbounded_direction"]["y"]) > 0.99


def test_the_compilation_cache_is_written_and_reused(tmp_path):
    """The command turns on JAX's persistent cache (off in this test suite unless a test, like
    this one, asks for it): the first run writes the compiled solver, the second loads it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DIFFCHECK_CACHE": "on", "DIFFCHECK_CACHE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "diffcheck", "optimize", "(x-3)**2 + (y+1)**2", "--x0",
           "x=0,y=0", "--json"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries, first.stderr
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert json.loads(second.stdout)["result"] == json.loads(first.stdout)["result"]
    assert sorted(p.name for p in tmp_path.iterdir()) == entries  # nothing new compiled
