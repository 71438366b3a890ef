"""Evaluation traces and computational graphs (diffcheck.trace) against the lecture notes."""

import dataclasses
import json
import math
import os
import stat

import numpy as np
import pytest

import diffcheck.trace as trace_mod
from diffcheck import primitives
from diffcheck.cli import main
from diffcheck.errors import UsageError
from diffcheck.trace import evaluation_trace

AUTODIFF = "sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))"
BACKPROP = "(x1 + w1)**2*(x1*w1 + x2*w2)"


def test_autodiff_illustration_matches_the_notes():
    t = evaluation_trace(AUTODIFF, "x=1")
    assert [r.definition for r in t.rows] == [
        "input", "a = x**2", "b = exp(a)", "c = a + b", "d = sqrt(c)", "e = cos(c)",
        "f = d + e"]
    c = 1 + math.e
    # the notes' local partials
    assert t.row("a").partials[0].formula == "2*x"
    assert t.row("b").partials[0].formula == "exp(a)"
    assert t.row("d").partials[0].formula == "1/(2*sqrt(c))"
    assert t.row("e").partials[0].formula == "-sin(c)"
    assert t.row("d").partials[0].value == pytest.approx(1 / (2 * math.sqrt(c)))
    # reverse: df/dc = dd/dc + de/dc, df/da = df/dc (db/da + 1), df/dx = df/da * 2x
    df_dc = 1 / (2 * math.sqrt(c)) - math.sin(c)
    assert t.row("c").adjoint[0] == pytest.approx(df_dc, rel=1e-14)
    assert t.row("a").adjoint[0] == pytest.approx(df_dc * (math.e + 1), rel=1e-14)
    assert t.row("x").adjoint[0] == pytest.approx(df_dc * (math.e + 1) * 2, rel=1e-14)
    # forward along x ends at the same number
    assert t.row("f").tangent == pytest.approx(t.row("x").adjoint[0], rel=1e-14)
    assert t.ok


def test_backprop_example_matches_the_notes():
    t = evaluation_trace(BACKPROP, "x1=1,w1=2,x2=3,w2=4", wrt="w1,w2")
    inner = [r.definition for r in t.rows if r.op != "input"]
    assert inner == ["a = w1 + x1", "b = w1*x1", "c = w2*x2", "d = a**2", "e = b + c",
                     "f = d*e"]
    a, d, e = 3.0, 9.0, 14.0
    vals = {r.node: r.value for r in t.rows}
    assert (vals["a"], vals["b"], vals["c"], vals["d"], vals["e"], vals["f"]) == \
        (a, 2.0, 12.0, d, e, 126.0)
    adj = {r.node: r.adjoint[0] for r in t.rows}
    assert adj["e"] == d and adj["d"] == e  # df/de = d, df/dd = e
    assert adj["b"] == d and adj["c"] == d  # df/db = df/dc = d
    assert adj["a"] == 2 * a * e  # df/da = 2a*e
    assert adj["w1"] == 2 * a * e + d * 1  # 2ae + d*x1 = 93
    assert adj["x1"] == 2 * a * e + d * 2  # 2ae + d*w1
    assert adj["w2"] == d * 3  # d*x2 = 27
    # forward propagation along w1: da/dw1 = 1, db/dw1 = x1, dc/dw1 = 0, dd/dw1 = 2a
    tan = {r.node: r.tangent for r in t.rows}
    assert (tan["a"], tan["b"], tan["c"], tan["d"], tan["f"]) == (1.0, 1.0, 0.0, 6.0, 93.0)
    assert [p.formula for p in t.row("f").partials] == ["e", "d"]


def test_direction_option_and_weights():
    t = evaluation_trace(BACKPROP, "x1=1,w1=2,x2=3,w2=4", wrt="w1,w2", direction="w2")
    assert t.row("f").tangent == 27.0
    t = evaluation_trace("x*y", "x=2,y=3", direction="x=1,y=-1")
    assert t.row("f").tangent == 3.0 - 2.0
    with pytest.raises(UsageError):
        evaluation_trace("x*y", "x=2,y=3", direction="z")


def test_vector_function_has_one_adjoint_column_per_output():
    t = evaluation_trace("[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]", "x1=2,x2=1")
    assert t.outputs == ["f1", "f2", "f3"]
    assert [r.adjoint for r in t.rows[:2]] == [[2.0, -4.0, 4.0], [2.0, 3.0, 8.0]]
    d = t.to_dict()
    assert d["rows"][0]["adjoint"] == [2.0, -4.0, 4.0]


def test_outputs_that_are_inputs_or_constants():
    t = evaluation_trace("[x, 2, x*y]", "x=2,y=3")
    assert t.outputs == ["f1", "f2", "f3"]
    assert t.row("f1").definition == "f1 = x" and t.row("f2").value == 2.0
    assert t.row("x").adjoint == [1.0, 0.0, 3.0]
    assert t.ok


def test_names_avoid_inputs_and_f():
    t = evaluation_trace("sin(a)*cos(b) + exp(c)", "a=0.1,b=0.2,c=0.3")
    names = [r.node for r in t.rows]
    assert len(set(names)) == len(names) and names[-1] == "f"
    assert names[:3] == ["a", "b", "c"]


def test_long_programs_get_numbered_names():
    expr = " + ".join(f"sin({k}*x)" for k in range(1, 30))
    t = evaluation_trace(expr, "x=0.3")
    assert t.ok and any(r.node.startswith("t") for r in t.rows)


@pytest.fixture
def broken_cos(monkeypatch):
    good = primitives.ROWS["cos"]
    bad = dataclasses.replace(good, partials=(lambda x, out: np.sin(x),))
    monkeypatch.setitem(primitives.ROWS, "cos", bad)


def test_a_wrong_rule_row_is_pinpointed(broken_cos):
    t = evaluation_trace(AUTODIFF, "x=1")
    assert not t.ok
    assert t.first_mismatch["node"] == "e" and t.first_mismatch["kind"] == "partial"
    assert "'cos' row" in t.first_mismatch["message"]
    assert t.row("e").problems == ["partial", "tangent"]
    assert "adjoint" in t.row("c").problems and t.row("d").ok
    text = str(t)
    assert "<- first mismatch" in text and "MISMATCH at node e" in text
    assert 'fillcolor="#ffdddd"' in t.to_dot()


def test_cli_trace_text_and_json(capsys, broken_cos):
    assert main(["expr", AUTODIFF, "--at", "x=1", "--trace"]) == 1
    out = capsys.readouterr().out
    assert "e = cos(c)" in out and "<- first mismatch" in out
    assert main(["expr", AUTODIFF, "--at", "x=1", "--trace", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["trace"][0]["first_mismatch"]["node"] == "e"


def test_cli_trace_json_backprop(capsys):
    assert main(["expr", BACKPROP, "--wrt", "w1,w2", "--at", "x1=1,w1=2,x2=3,w2=4",
                 "--trace", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (tr,) = doc["trace"]
    rows = {r["node"]: r for r in tr["rows"]}
    assert rows["w1"]["adjoint"] == 93.0 and rows["w2"]["adjoint"] == 27.0
    assert rows["d"]["definition"] == "d = a**2"
    assert rows["d"]["partials"] == [{"wrt": "a", "formula": "2*a", "value": 6.0,
                                      "symbolic_formula": "2*a", "symbolic": 6.0, "ok": True}]
    assert tr["ok"] and tr["first_mismatch"] is None and tr["direction"] == {"w1": 1.0}


def test_cli_trace_at_random_points(capsys):
    assert main(["expr", "x*y + sin(x)", "--points", "2", "--trace", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["trace"]) == 2
    assert [t["at"] for t in doc["trace"]] == [p["at"] for p in doc["points"]]


def test_graph_dot(tmp_path, capsys):
    path = tmp_path / "g.dot"
    assert main(["expr", BACKPROP, "--wrt", "w1,w2", "--at", "x1=1,w1=2,x2=3,w2=4",
                 "--graph", str(path)]) == 0
    dot = path.read_text(encoding="utf-8")
    assert dot.startswith("digraph diffcheck {") and dot.rstrip().endswith("}")
    assert '"f" [label="f = d*e\\nmul\\nvalue 126\\n∂f/∂f = 1"' in dot
    assert '"w1" [label="w1\\ninput\\nvalue 2\\n∂f/∂w1 = 93"' in dot
    assert '"a" -> "d" [label="∂d/∂a = 6"];' in dot
    assert "wrote the computational graph" in capsys.readouterr().err


def test_graph_svg_without_graphviz(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trace_mod.shutil, "which", lambda name: None)
    path = tmp_path / "g.svg"
    assert main(["expr", "x*y", "--at", "x=2,y=3", "--graph", str(path)]) == 0
    err = capsys.readouterr().err
    assert "Graphviz's 'dot' program is not installed" in err
    assert not path.exists() and (tmp_path / "g.dot").exists()


def test_graph_svg_with_graphviz(tmp_path, monkeypatch):
    fake = tmp_path / "dot"  # stands in for Graphviz: records its arguments and input
    fake.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n"
                    "cat > \"$(dirname \"$0\")/input\"\necho '<svg/>' > \"$3\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "g.svg"
    msg = trace_mod.write_graph(evaluation_trace("x*y", "x=2,y=3"), out)
    assert msg.startswith("wrote") and out.read_text().strip() == "<svg/>"
    assert (tmp_path / "args").read_text().split()[:2] == ["-Tsvg", "-o"]
    assert (tmp_path / "input").read_text().startswith("digraph")


def test_graph_unknown_format_is_a_usage_error(tmp_path, capsys):
    assert main(["expr", "x*y", "--at", "x=2,y=3", "--graph", str(tmp_path / "g.txt")]) == 2
    assert "unknown format '.txt'" in capsys.readouterr().err


def test_every_rule_row_used_by_programs_agrees_with_sympy():
    from diffcheck.primitives import ROW_LIST

    exprs = ["x**3 - x/y + 1/y", "log(x) + sqrt(y) + tan(x) + atan(y)", "asin(x/4) + acos(y/4)",
             "sinh(x) + cosh(y) + tanh(x*y)", "asinh(x) + acosh(y + 1) + atanh(x/4)",
             "erf(x) + abs(x - y) + sigmoid(x) + softplus(y)", "atan2(y, x) + x**y", "-x*y",
             "sec(x) + csc(y) + cot(x*y)", "log10(x) + log2(y) + log(x, y)",
             "max(x, y) + min(x, 2*y) + relu(x - y)", "floor(x)*y + ceil(y)*x + sign(x)",
             "gamma(x) + lgamma(y) + factorial(x*y)", "polygamma(1, x) + heaviside(x - y)",
             "exp(x)*sin(y)*cos(x)"]
    used = set()
    for e in exprs:
        t = evaluation_trace(e, "x=0.7,y=1.3")
        assert t.ok, (e, t.first_mismatch)
        assert all(p.symbolic is not None for r in t.rows for p in r.partials), e
        used |= {r.op for r in t.rows}
    # every row a Program can hold (a SymPy head, or a lowering: sub, div, neg, relu) is covered
    # (dirac appears only in second derivatives)
    held = {r.name for r in ROW_LIST if r.sympy is not None} | {"sub", "div", "neg", "relu"}
    assert held - {"dirac"} <= used


def test_constant_subexpressions_carry_no_tangent_or_adjoint():
    # log10(x) is log(x)/log(10): the node log(10) is constant, as a literal is
    t = evaluation_trace("log10(x) + x*sin(2)", "x=0.7")
    assert t.ok, t.first_mismatch
