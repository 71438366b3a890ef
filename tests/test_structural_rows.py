"""One test per structural row (sum, matmul, reshape, indexing, ...): forward (jvp) and
reverse (vjp) are adjoint to each other, <J v, w> = <v, J^T w>, and agree with finite
differences, which never read the table."""

import numpy as np
import pytest

import diffcheck as dc
from diffcheck.engines.numpy_ops import STRUCTURAL_ROWS

RNG = np.random.default_rng(3)
A = RNG.normal(size=(4, 3))
X = RNG.normal(size=(3, 4))
ZERO = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])

# row -> a function of a (3, 4) array whose value passes through that row
CASES = {
    "astype": lambda x: x.astype(np.float64) * 2.0,
    "broadcast_to": lambda x: np.broadcast_to(x[0], (2, 4)) * 1.5,
    "concatenate": lambda x: np.concatenate([x, x[:1] ** 2], axis=0),
    "cumsum": lambda x: np.cumsum(x ** 2, axis=1),
    "einsum": lambda x: np.einsum("ij,jk->ik", x, A),
    "getitem": lambda x: x[[0, 2], 1:3] * x[1, 0],
    "matmul": lambda x: x @ A,
    "max": lambda x: np.max(x + np.arange(12.0).reshape(3, 4), axis=1),
    "min": lambda x: np.min(x - np.arange(12.0).reshape(3, 4), axis=0),
    "reshape": lambda x: np.reshape(x, (6, 2)) ** 2,
    "scatter_add": lambda x: _scatter(x),
    "setitem": lambda x: _setitem(x),
    "sum": lambda x: np.sum(x ** 2, axis=0, keepdims=True),
    "transpose": lambda x: np.transpose(x) * np.arange(3.0),
    "where": lambda x: np.where(np.arange(12).reshape(3, 4) % 2 == 0, x, x ** 2),
    # zeros in x: the rules multiply the other entries, they never divide by x
    "prod": lambda x: np.prod(x * ZERO, axis=1),
    "cumprod": lambda x: np.cumprod(x * ZERO, axis=1),
    "inv": lambda x: np.linalg.inv(x[:, :3] + 3 * np.eye(3)),
    "solve": lambda x: np.linalg.solve(x[:, 1:] + 3 * np.eye(3), x),
    "det": lambda x: np.linalg.det(x.reshape(3, 2, 2)),
    "slogdet": lambda x: np.linalg.slogdet(x[:, 1:] + 3 * np.eye(3)).logabsdet,
    "cholesky": lambda x: np.linalg.cholesky(x[:, :3] @ x[:, :3].T + np.eye(3)),
}


def _scatter(x):
    # scatter_add is the pullback of fancy indexing: repeated rows accumulate their cotangents
    return np.sum(x[[0, 0, 2]], axis=0) * x[1]


def _setitem(x):
    # writes into a traced value and into an array made inside f: a slice, a repeated fancy
    # index (NumPy keeps the last write), a broadcast scalar, an augmented assignment
    y = x.copy()
    y[0, 1:3] = x[1, :2] ** 2
    y[[2, 2], [0, 0]] = x[0, :2] * 3.0
    out = np.zeros((2, 4))
    out[1] = x[2] * x[0]
    out[0, ::2] += x[1, 1]
    out[:, 1] -= 1.0
    return np.concatenate([y, out]) * np.arange(1.0, 5.0)


def test_every_structural_row_has_a_case():
    assert set(CASES) == set(STRUCTURAL_ROWS)


@pytest.mark.parametrize("name", sorted(STRUCTURAL_ROWS))
def test_structural_row(name):
    f = CASES[name]
    J_fwd = dc.jacobian(f, X, mode="forward")
    J_rev = dc.jacobian(f, X, mode="reverse")
    J_fd = dc.jacobian(f, X, mode="finite")
    out_shape = np.shape(f(X))
    assert J_fwd.shape == out_shape + X.shape
    np.testing.assert_allclose(J_fwd, J_rev, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(J_rev, J_fd, rtol=1e-7, atol=1e-8)
    # adjointness with random directions: <J v, w> == <v, J^T w>
    v, w = RNG.normal(size=X.shape), RNG.normal(size=out_shape)
    Jv = np.tensordot(J_fwd, v, axes=X.ndim)
    JTw = np.tensordot(w, J_rev, axes=len(out_shape))
    assert np.vdot(Jv, w) == pytest.approx(np.vdot(v, JTw), rel=1e-12, abs=1e-12)
