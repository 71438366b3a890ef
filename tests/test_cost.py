"""Forward vs reverse mode: operation counts, timings, the sweep and the ``cost`` CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffcheck import cost
from diffcheck.cli import main
from diffcheck.errors import UsageError
from diffcheck.primitives import ROWS
from diffcheck.program import Node, Program

SUM_200 = " + ".join(f"sin(x{i})*x{i + 1}" for i in range(200))
EXP_60 = "[" + ", ".join(f"exp(t*{k})*sin(t)" for k in range(1, 61)) + "]"


def sum_family(n: int) -> str:
    return " + ".join(f"sin(x{i})*x{i + 1}" for i in range(n))


def exp_family(m: int) -> str:
    return "[" + ", ".join(f"exp(t*{k})*sin(t)" for k in range(1, m + 1)) + "]"


# -- the two Done-when examples -------------------------------------------------------------
def test_scalar_of_201_inputs_reverse_is_cheap():
    c = cost.count_text(SUM_200)
    assert (c.inputs, c.outputs) == (201, 1)
    assert c.reverse / c.function <= 4  # the cheap-gradient principle
    assert c.forward / c.function >= 50
    assert c.recommended == "reverse"


def test_vector_of_60_outputs_forward_is_cheap():
    c = cost.count_text(EXP_60)
    assert (c.inputs, c.outputs) == (1, 60)
    assert c.forward / c.function <= 4
    assert c.reverse / c.function >= 15
    assert c.recommended == "forward"


# -- the model ------------------------------------------------------------------------------
def test_counts_by_hand():
    # nodes: x, y, mul(x, y) [1 flop, partials y, x], sin(x) [10 flops, partial cos: 10]
    c = cost.count_text("[x*y, sin(x)]")
    assert (c.function, c.partials) == (11, 10)
    assert c.tangent == 3 + 1  # mul: 2 multiplies + 1 add; sin: 1 multiply
    assert c.adjoint == 2 + 1 + 1  # the same multiplies, + 1 add where x's two uses meet
    assert (c.forward, c.reverse) == (11 + 10 + 2 * 4, 11 + 10 + 2 * 4)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_one_operation_per_row(name):
    row = ROWS[name]
    inputs = [f"x{i}" for i in range(row.arity)]
    nodes = [Node("input", name=v) for v in inputs] + [Node(name, tuple(range(row.arity)))]
    c = cost.count(Program(inputs, nodes, [row.arity]))
    muls = sum(cost.edge_flops(row, i) for i in range(row.arity))
    assert c.function == row.flops
    assert c.partials == cost.partial_flops(row) <= row.flops
    assert c.tangent == muls + row.arity - 1  # fan-in: adds in forward mode
    assert c.adjoint == muls  # distinct inputs: no adjoints meet
    assert c.forward == row.flops + c.partials + row.arity * c.tangent


def test_constants_carry_no_derivative_work():
    c = cost.count_text("2*x")  # mul(const, x): one multiply per direction, no add
    assert (c.function, c.partials, c.tangent, c.adjoint) == (1, 0, 1, 1)


def grows_linearly(sizes: list[int], ratios: list[float]) -> bool:
    """Increasing, with the same increment per unit of size at both ends (within 10%)."""
    first = (ratios[1] - ratios[0]) / (sizes[1] - sizes[0])
    last = (ratios[-1] - ratios[-2]) / (sizes[-1] - sizes[-2])
    return first > 0 and abs(last / first - 1) < 0.1


def test_forward_grows_with_n_reverse_does_not():
    sizes = [5, 10, 20, 40]
    counts = [cost.count_text(sum_family(n)) for n in sizes]
    fwd = [c.forward / c.function for c in counts]
    rev = [c.reverse / c.function for c in counts]
    assert grows_linearly(sizes, fwd)
    assert max(rev) <= 4 and max(rev) - min(rev) < 0.2
    assert all(c.recommended == "reverse" for c in counts)


def test_mirror_image_for_many_outputs():
    sizes = [5, 10, 20, 40]
    counts = [cost.count_text(exp_family(m)) for m in sizes]
    fwd = [c.forward / c.function for c in counts]
    rev = [c.reverse / c.function for c in counts]
    assert grows_linearly(sizes, rev)
    assert max(fwd) <= 4 and max(fwd) - min(fwd) < 0.2
    assert all(c.recommended == "forward" for c in counts)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_network_crossover_at_n_equals_m(k):
    assert cost.count(cost.network(k, 2 * k)).recommended == "forward"
    assert cost.count(cost.network(2 * k, k)).recommended == "reverse"
    square = cost.count(cost.network(k, k))
    assert square.forward == square.reverse


_ROWS_BY_ARITY = {a: sorted(n for n, r in ROWS.items() if r.arity == a) for a in (1, 2)}


@st.composite
def programs(draw):
    """Random straight-line programs over the rule table (values are never computed)."""
    n = draw(st.integers(1, 6))
    nodes = [Node("input", name=f"x{i}") for i in range(n)] + [Node("const", value=2.0)]
    for _ in range(draw(st.integers(1, 40))):
        arity = draw(st.sampled_from([1, 2]))
        op = draw(st.sampled_from(_ROWS_BY_ARITY[arity]))
        args = tuple(draw(st.integers(0, len(nodes) - 1)) for _ in range(arity))
        nodes.append(Node(op, args))
    outs = draw(st.lists(st.integers(n + 1, len(nodes) - 1), min_size=1, max_size=5))
    return Program([f"x{i}" for i in range(n)], nodes, outs)


@settings(max_examples=60, deadline=None)
@given(programs())
def test_model_invariants(prog):
    c = cost.count(prog)
    assert c.forward == c.function + c.partials + c.inputs * c.tangent
    assert c.reverse == c.function + c.partials + c.outputs * c.adjoint
    assert 0 <= c.partials <= c.function
    if c.outputs == 1:  # cheap gradient, worst cases of the model
        kinks = any(nd.op in ("maximum", "minimum") for nd in prog.nodes)
        assert c.reverse <= (6 if kinks else 5) * c.function
    assert c.recommended == ("forward" if c.forward <= c.reverse else "reverse")


def test_slopes_of_the_counted_sweep():
    rows = {key: [] for key in ("vary_n", "vary_m")}
    for s in (4, 8, 16, 32, 64):
        for key, (n, m) in (("vary_n", (s, 8)), ("vary_m", (8, s))):
            ops = cost.count(cost.network(n, m)).to_dict()
            rows[key].append({"n": n, "m": m, "ops": ops, "seconds": ops})
    fits = cost.slopes({"fixed": 8, **rows})
    assert 0.8 < fits["vary_n"]["ops forward"] < 1.1 and abs(fits["vary_n"]["ops reverse"]) < 0.1
    assert 0.8 < fits["vary_m"]["ops reverse"] < 1.1 and abs(fits["vary_m"]["ops forward"]) < 0.1


# -- timings --------------------------------------------------------------------------------
def test_measure_runs_the_engines():
    prog = cost.network(3, 2)
    t = cost.measure(prog, np.zeros((4, 3)), repeat=1, min_time=0.0)
    assert set(t) == {"function", "forward", "reverse"}
    assert all(v > 0 for v in t.values())


def test_measure_jax():
    pytest.importorskip("jax")
    t = cost.measure_jax(cost.network(2, 2, depth=2), np.zeros((4, 2)), repeat=1, min_time=0.0)
    assert set(t) == {"compile", *cost.JAX_KEYS} and all(v > 0 for v in t.values())


def test_small_sweep_has_rows_and_slopes():
    s = cost.sweep(sizes=(1, 2, 4), fixed=2, points=4, repeat=1, min_time=0.0, jax=False)
    assert [(r["n"], r["m"]) for r in s["vary_n"]] == [(1, 2), (2, 2), (4, 2)]
    assert [(r["n"], r["m"]) for r in s["vary_m"]] == [(2, 1), (2, 2), (2, 4)]
    assert {"ops forward", "time reverse"} <= set(s["slopes"]["vary_n"])


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"needs matplotlib.*pip install"):
        cost.plot_sweep({"fixed": 1, "points": 1, "vary_n": [], "vary_m": []}, "x.png")


def test_cli_sweep_without_matplotlib_fails_before_running(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["cost", "--sweep", "--sizes", "1,2"]) == 2
    assert "matplotlib" in capsys.readouterr().err


# -- the CLI --------------------------------------------------------------------------------
def test_cli_json_contract(capsys):
    assert main(["cost", "sin(x)*y + x*y", "--json", "--points", "2", "--repeat", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["inputs"], doc["outputs"]) == (2, 1)
    assert set(doc["ops"]) == set(doc["seconds"]) == {"function", "forward", "reverse"}
    assert all(isinstance(v, int) for v in doc["ops"].values())
    assert all(isinstance(v, float) and v > 0 for v in doc["seconds"].values())
    assert doc["recommended"] == "reverse" and "jax" not in doc


def test_cli_json_with_jax(capsys):
    pytest.importorskip("jax")
    assert main(["cost", "[exp(t), t*exp(2*t)]", "--json", "--jax", "--points", "2",
                 "--repeat", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recommended"] == "forward" and set(cost.JAX_KEYS) <= set(doc["jax"])


def test_cli_text_is_a_table(capsys):
    assert main(["cost", "x**2*y", "--points", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "f: R^2 -> R^1" in out and "recommended:" in out
    assert all(word in out for word in ("function", "forward", "reverse", "ops/f"))


def test_cli_sweep_json_without_plot(capsys):
    argv = ["cost", "--sweep", "--no-plot", "--no-jax", "--sizes", "1,2", "--fixed", "2",
            "--points", "2", "--repeat", "1", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["vary_n"]) == len(doc["vary_m"]) == 2


@pytest.mark.parametrize("argv, word", [
    (["cost", "sin(x"], ""),
    (["cost"], "give an expression"),
    (["cost", "2 + 3"], "no variables"),
    (["cost", "x", "--sweep"], "not both"),
    (["cost", "x", "--points", "0"], "points"),
    (["cost", "--sweep", "--sizes", "a,b", "--no-plot"], "--sizes"),
])
def test_cli_bad_input_exit_2(capsys, argv, word):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffcheck: error:") and word in err and "Traceback" not in err


def test_command_modules_import_light():
    import subprocess

    code = ("import sys, diffcheck.cost, diffcheck.commands.cost, diffcheck.commands.chain; "
            "print(sorted(m for m in ('jax', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
