"""Pytrees of parameters in the NumPy checks: flattening, layouts, names by path.

Plain NumPy throughout; one test checks JAX's tree utilities agree on order and paths, and one
(in a subprocess) that a dict-of-arrays check never imports JAX.
"""

import subprocess
import sys
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import diffcheck as dc
from diffcheck.pytree import Flat, Layout, flatten, is_tree

Norm = namedtuple("Norm", "mean scale")


def model(params):
    """A two-layer model on fixed data: params {'W1': (3, 2), 'b1': (2,), 'w2': (2,)}."""
    X = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 0.1], [1.0, 1.0, -1.0]])
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.sum((h @ params["w2"] - 1.0) ** 2)


def model_grad(params):
    X = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 0.1], [1.0, 1.0, -1.0]])
    h = np.tanh(X @ params["W1"] + params["b1"])
    r = 2 * (h @ params["w2"] - 1.0)
    dz = np.outer(r, params["w2"]) * (1 - h ** 2)
    return {"W1": X.T @ dz, "b1": dz.sum(0), "w2": h.T @ r}


PARAMS = {"W1": np.array([[0.1, -0.3], [0.4, 0.2], [-0.5, 0.6]]), "b1": np.array([0.05, -0.1]),
          "w2": np.array([0.7, -0.4])}


# -- flattening ------------------------------------------------------------------------------

def test_is_tree_tells_containers_from_arrays():
    assert not is_tree([1.0, 2.0]) and not is_tree(np.zeros(3)) and not is_tree(2.0)
    assert not is_tree([np.zeros(2), np.ones(2)])  # one rectangular array
    assert is_tree({"a": 1.0}) and is_tree([np.zeros((2, 2)), np.zeros(2)])
    assert is_tree(Norm(np.zeros(2), 1.0)) and is_tree([(np.zeros(2), 1.0)])


def test_flatten_orders_and_names_like_jax():
    tree = {"b": [np.zeros(2), (1.0, np.ones((2, 1)))], "a": Norm(np.zeros(3), None),
            "c": OrderedDict([("z", 1.0), ("y", 2.0)])}
    paths, leaves, rebuild = flatten(tree)
    assert paths == ["['a'].mean", "['b'][0]", "['b'][1][0]", "['b'][1][1]", "['c']['z']",
                     "['c']['y']"]
    back = rebuild(list(range(len(leaves))))
    assert back["a"] == Norm(0, None) and back["b"] == [1, (2, 3)] and \
        list(back["c"].items()) == [("z", 4), ("y", 5)]
    jtu = pytest.importorskip("jax").tree_util
    pairs, _ = jtu.tree_flatten_with_path(tree)
    assert [jtu.keystr(p) for p, _ in pairs] == paths


def test_flat_ravel_unravel_and_names():
    flat = Flat.of(PARAMS)
    v = flat.ravel(PARAMS, name="x")
    assert v.shape == (10,) and flat.name(1, "params") == "params['W1'][0, 1]"
    assert flat.name(7, "p") == "p['b1'][1]" and flat.span(0, 6, "p") == "p['W1']"
    back = flat.unravel(v)
    assert all(np.array_equal(back[k], PARAMS[k]) for k in PARAMS)
    with pytest.raises(dc.ShapeError, match="Missing: \\['w2'\\]"):
        flat.ravel({"W1": PARAMS["W1"], "b1": PARAMS["b1"]})
    with pytest.raises(dc.ShapeError, match="has shape"):
        flat.ravel({**PARAMS, "b1": np.zeros(3)})


def test_layouts_follow_jacrev_and_hessian():
    flat = Flat.of({"u": np.zeros(2), "v": 0.0})
    jac = Layout("jacobian", flat, f_shape=(3,), root="x")
    M = np.arange(9.0).reshape(3, 3)
    tree = jac.layout(M)
    assert tree["u"].shape == (3, 2) and tree["v"].shape == (3,)
    assert np.array_equal(jac.matrix(tree), M) and jac.name(2, 1) == "f[2] wrt x['u'][1]"
    hess = Layout("hessian", flat, root="x")
    H = np.arange(9.0).reshape(3, 3)
    nested = hess.layout(H)
    assert nested["u"]["v"].shape == (2,) and nested["v"]["u"].shape == (2,)
    assert np.array_equal(hess.matrix(nested), H) and hess.name(2, 0) == "x['v'], x['u'][0]"


# -- the checks ------------------------------------------------------------------------------

def test_dict_params_gradient_passes_and_keeps_the_layout():
    r = dc.check_gradient(model, model_grad, PARAMS)
    assert r.ok, str(r)
    assert set(r.reference) == set(PARAMS) and r.reference["W1"].shape == (3, 2)
    assert "pytree" in str(r) and "params" in str(r)


def test_dict_params_wrong_entry_is_named_by_path():
    def wrong(p):
        g = model_grad(p)
        g["W1"][2, 1] *= 1.001
        return g
    r = dc.check_gradient(model, wrong, PARAMS)
    assert not r.ok and r.worst_index == "params['W1'][2, 1]"
    assert r.worst[0].index == "params['W1'][2, 1]" and "params['W1'][2, 1]" in str(r)
    with pytest.raises(AssertionError, match=r"params\['W1'\]\[2, 1\]"):
        dc.assert_gradient(model, wrong, PARAMS)


def test_list_of_layer_tuples():
    layers = [(np.array([[0.5, -0.2], [0.1, 0.3]]), np.array([0.1, 0.0])),
              (np.array([[0.7], [-0.6]]), np.array([0.2]))]
    x = np.array([1.0, -2.0])

    def f(layers):
        h = x
        for W, b in layers:
            h = np.tanh(h @ W + b)
        return np.sum(h)

    def g(layers):
        grads = [dc.gradient(lambda W: f([(W, layers[0][1]), layers[1]]), layers[0][0])]
        return grads  # wrong structure on purpose
    r = dc.check_gradient(f, lambda L: [tuple(dc.gradient(
        lambda a, i=i, j=j: f(_replace(L, i, j, a)), L[i][j]) for j in range(2))
        for i in range(2)], layers)
    assert r.ok and r.worst_index.startswith("layers[")
    with pytest.raises(dc.ShapeError, match="pytree of 1 arrays"):
        dc.check_gradient(f, g, layers)


def _replace(layers, i, j, a):
    out = [list(p) for p in layers]
    out[i][j] = a
    return [tuple(p) for p in out]


def test_namedtuple_jacobian_and_hessian():
    p = Norm(np.array([0.3, -0.5]), 1.7)

    def f(p):
        return np.stack([np.sum(p.mean ** 2) * p.scale, np.sin(p.scale) + p.mean[0]])

    def jac(p):
        return Norm(np.array([[2 * p.mean[0] * p.scale, 2 * p.mean[1] * p.scale],
                              [1.0, 0.0]]),
                    np.array([np.sum(p.mean ** 2), np.cos(p.scale)]))
    assert dc.check_jacobian(f, jac, p).ok
    bad = lambda p: jac(p)._replace(scale=np.array([np.sum(p.mean ** 2), 0.0]))  # noqa: E731
    r = dc.check_jacobian(f, bad, p)
    assert not r.ok and r.worst_index == "f[1] wrt p.scale"

    def s(p):
        return np.sum(p.mean ** 2) * p.scale

    def hess(p):
        m, c = p.mean, p.scale
        return Norm(Norm(2 * c * np.eye(2), 2 * m), Norm(2 * m, 0.0))
    assert dc.check_hessian(s, hess, p).ok
    r = dc.check_hessian(s, lambda p: Norm(hess(p).mean, Norm(2 * p.mean, 1.0)), p)
    assert not r.ok and r.worst_index == "p.scale, p.scale"


def test_plain_numpy_dict_check_does_not_import_jax():
    code = ("import sys, numpy as np, diffcheck as dc\n"
            "p = {'a': np.array([1.0, 2.0]), 'b': 3.0}\n"
            "f = lambda p: np.sum(p['a'] ** 2) * p['b']\n"
            "g = lambda p: {'a': 2 * p['a'] * p['b'], 'b': np.sum(p['a'] ** 2)}\n"
            "assert dc.check_gradient(f, g, p).ok\n"
            "assert not dc.check_gradient(f, lambda p: {**g(p), 'b': 1.0}, p).ok\n"
            "print('jax' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_derivatives_and_taylor_test_at_a_pytree():
    p = {"w": np.array([0.3, -0.5]), "s": 1.7}
    f = lambda p: np.sum(p["w"] ** 2) * p["s"]  # noqa: E731
    g = dc.gradient(f, p)
    assert np.allclose(g["w"], 2 * p["w"] * p["s"]) and np.isclose(g["s"], 0.34)
    J = dc.jacobian(lambda p: np.stack([p["w"][0] * p["s"], p["s"]]), p)
    assert J["w"].shape == (2, 2) and J["s"].tolist() == [0.3, 1.0]
    H = dc.hessian(f, p)
    assert np.allclose(H["w"]["w"], 3.4 * np.eye(2)) and np.allclose(H["s"]["w"], [0.6, -1.0])
    assert dc.taylor_test(f, lambda p: dc.gradient(f, p), p, lambda p: dc.hessian(f, p)).ok
    assert not dc.taylor_test(f, lambda p: {"w": 2 * p["w"], "s": np.sum(p["w"] ** 2)}, p).ok
