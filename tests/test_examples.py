"""Every script in examples/ runs and prints the lecture notes' numbers.

Each example has ``main() -> dict`` of its key numbers; the scripts run in this process
(``runpy``), so JAX is imported and configured once.
"""

import math
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, capsys) -> tuple[dict, str]:
    result = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")["main"]()
    return result, capsys.readouterr().out


def test_every_example_is_tested():
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts <= tested, f"examples without a test: {sorted(scripts - tested)}"


def test_quadratic_form_hessian(capsys):
    r, out = run("quadratic_form_hessian", capsys)
    assert r["ok"] and r["gradient"] == [10.0, 14.0]
    assert r["hessian"] == [[6.0, 2.0], [2.0, 6.0]] and r["hessian_is_2A"]
    assert "H = [[6.0, 2.0], [2.0, 6.0]]" in out


def test_jacobian_at_2_1(capsys):
    r, out = run("jacobian_at_2_1", capsys)
    assert r["ok"] and r["jacobian"] == [[2.0, 2.0], [-4.0, 3.0], [4.0, 8.0]]
    assert r["formulas"] == [["2", "2*x2"], ["-2*x1", "3"], ["4*x2", "4*x1"]]
    assert r["value"] == [5.0, -1.0, 8.0]


def test_six_hump_camel_hessian(capsys):
    r, out = run("six_hump_camel_hessian", capsys)
    assert r["ok"] and r["hessian"] == [[8.0, 1.0], [1.0, 40.0]]
    assert "symmetric: True" in out


def test_newton_x2_minus_9(capsys):
    r, out = run("newton_x2_minus_9", capsys)
    xs = r["iterates"]
    assert r["derivative_ok"] and xs[:3] == [1.0, 5.0, 3.4] and xs[-1] == 3.0
    # the notes' error recursion: x_{k+1} - 3 = (x_k - 3)**2 / (2 x_k)
    for e_next, pred in zip(r["errors"][1:6], r["predicted"][:5], strict=True):
        assert e_next == pytest.approx(pred, rel=1e-6, abs=1e-15)
    assert abs(r["errors"][5]) < 2e-9  # correct digits double: 2, 0.4, 2e-2, 9e-5, 1.4e-9
    assert r["root"] == 3.0 and r["root_nit"] == 6
    assert "1.397e-09" in out


def test_backprop_trace(capsys):
    r, out = run("backprop_trace", capsys)
    assert r["ok"]
    auto, backprop, graph = r["adjoints"]
    assert auto["x"] == pytest.approx(r["hand"]["x"], rel=1e-14)
    assert auto["c"] == pytest.approx(r["hand"]["c"], rel=1e-14)
    assert (backprop["w1"], backprop["w2"]) == (93.0, 27.0)
    assert (graph["x"], graph["y"]) == (2 * 1 * 2 + 2 * 3, 1 + 2 * 3)
    assert r["definitions"][0][1:] == ["a = x**2", "b = exp(a)", "c = a + b", "d = sqrt(c)",
                                       "e = cos(c)", "f = d + e"]
    assert "∂f/∂d = e = 14" in out


def test_matrix_identities(capsys):
    r, out = run("matrix_identities", capsys)
    for name in ("x^T A x", "b^T A x", "x^T A^T A x"):
        assert r[name]["ok"] and r[name]["max_abs_error"] < 1e-9, name
    assert r["x^T A x"]["closed_form"] == [-8.0, 13.5, -16.0]
    assert r["b^T A x"]["closed_form"] == [-1.0, 20.0, 2.0]
    assert r["x^T A^T A x"]["closed_form"] == [36.0, -116.0, 20.0]
    assert r["2Ax_is_right"] is False


def test_steepest_descent_vs_newton(capsys):
    r, out = run("steepest_descent_vs_newton", capsys)
    assert r["checked"] and r["newton_success"]
    assert r["x"] == pytest.approx([-math.log(2) / 2, 0.0], abs=1e-9)
    assert r["gd_ratio"] == pytest.approx(r["predicted_ratio"], rel=1e-3)  # linear rate
    assert r["gd_order"] == pytest.approx(1.0, abs=0.01)
    assert r["newton_orders"][-1] == pytest.approx(2.0, abs=0.1)  # quadratic
    assert r["newton_nit"] <= 10 and r["gd_errors"][-1] > 1e-9


def test_sgd_step_sizes(capsys):
    r, out = run("sgd_step_sizes", capsys)
    for name in ("constant h", "h/(k+1)"):
        gap, bound = np.array(r[name]["gap"]), np.array(r[name]["bound"])
        assert np.all(gap <= bound), name  # the notes' bound holds
        assert np.all(np.diff(gap) < 0), name  # and the averaged iterate improves
    const = r["constant h"]["bound"]
    assert const[-1] == pytest.approx(r["limit"] + r["R"] ** 2 / (2 * 0.5 * 1000), rel=1e-9)
    assert r["limit"] == 0.25


def test_adam_family(capsys):
    r, out = run("adam_family", capsys)
    assert set(r) == {"sgd", "sgd momentum", "sgd nesterov", "adagrad", "rmsprop", "adadelta",
                      "adam", "adamw"}
    for name, v in r.items():
        assert v["final"] < 1e-5, name
        if v["optax_diff"] is not None:
            assert v["optax_diff"] < 1e-12, name


def test_mlp_batchnorm(capsys):
    r, out = run("mlp_batchnorm", capsys)
    # initialisation: Xavier keeps tanh unsaturated, He keeps the ReLU variance near 1
    assert r["tanh_saturated_xavier"] < 0.01 < 0.5 < r["tanh_saturated_normal"]
    assert 0.2 < r["var_relu_he"] < 5 and r["var_relu_normal"] > 1e20
    # the hand-written batch-norm backward is right; the constant-statistics bug is caught
    assert r["bn_right_ok"] and r["layer_ok"] and not r["bn_bug_ok"]
    assert r["bn_bug_rel_error"] > 0.05
    # training with fit reduces the loss by a large factor
    assert r["loss_after"] < r["loss_before"] / 10
    assert r["epoch_loss"][-1] < r["epoch_loss"][0]
    assert "check_gradient bn_bug: WRONG" in out
    # the failure printed after "layer: OK" says it is the intended one, on the same line
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert failed and all("meant to fail" in line for line in failed), failed


def test_claims_from_the_notes(capsys):
    r, out = run("claims_from_the_notes", capsys)
    for name in ("Jacobian R2 -> R3", "six-hump camel Hessian", "computational graph",
                 "backpropagation", "multivariate chain rule", "AD illustration"):
        assert r[name]["ok"] and set(r[name]["verdicts"]) == {"proved"}, name
    assert r["J(2, 1)"] == [[2.0, 2.0], [-4.0, 3.0], [4.0, 8.0]]
    assert r["H(0, 1)"] == [[8.0, 1.0], [1.0, 40.0]]
    slip = r["AD illustration, da/dx forgotten"]
    assert slip["verdicts"] == ["wrong"] and slip["diagnoses"] == ["missing-chain-factor"]
    assert slip["counterexamples"][0]["at"] == {"x": 1.0}
    transposed = r["Jacobian written transposed"]
    assert transposed["verdicts"] == ["proved", "wrong", "wrong", "proved"]
    assert transposed["diagnoses"] == ["transposed", "transposed"]
    assert "d/dx(x**2) = 2*x wherever x**2 is inside" in out


def test_jax_custom_rules(capsys):
    r, out = run("jax_custom_rules", capsys)
    assert r["softplus"]["ok"] and r["gelu"]["ok"]
    assert not r["softplus_bug"]["ok"] and r["softplus_bug"]["failed_modes"] == ["VJP"]
    assert r["softplus_bug"]["worst"].startswith("args[0][")
    assert not r["gelu_bug"]["ok"] and r["gelu_bug"]["jax"] == "passes"  # jax.test_util misses it
    assert r["logsumexp"]["ok"] and r["logsumexp"]["jax"] == "fails"  # ... and flags this one
    assert not r["logsumexp_bug"]["ok"]
    assert r["minimize_refused"] and "is wrong" in out
