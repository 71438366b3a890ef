"""The CLI contract: options, exit codes, JSON on stdout, one-paragraph errors, no traceback."""

import json
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
