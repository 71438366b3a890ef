"""Every supported NumPy operation, differentiated by each engine and compared.

Forward and reverse mode (exact) must agree with each other to rounding and with
finite differences (Richardson) to their error estimate; the complex step joins where the
code is analytic; Hessians (forward over reverse, forward over forward) against
finite differences too.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffcheck as dc
from diffcheck.engines.numpy_ops import supported_numpy
from diffcheck.errors import UnsupportedError

RNG = np.random.default_rng(1)
X23 = RNG.uniform(0.5, 1.5, (2, 3))
X4 = RNG.uniform(0.5, 1.5, 4)
A34 = RNG.normal(size=(3, 4))
B33 = RNG.normal(size=(3, 3))

# name -> (f, x, analytic); each f maps an array to a scalar
CASES = {
    "ufuncs": (lambda x: np.sum(np.exp(x) * np.log(x) + np.sqrt(x) / np.tanh(x)), X23, True),
    "log1p_expm1": (lambda x: np.sum(np.log1p(x) * np.expm1(x) - x ** 2.5), X4, True),
    "trig": (lambda x: np.sum(np.sin(x) * np.cos(x) + np.arctan(x) - np.arcsinh(x)), X4, True),
    "square_recip": (lambda x: np.sum(np.square(x) + np.reciprocal(x) + np.log2(x)), X4, True),
    "logaddexp_hypot": (lambda x: np.sum(np.logaddexp(x, 2 * x) + np.hypot(x, 1.0)), X4,
                        False),
    "add_reduce": (lambda x: np.add.reduce(np.add.reduce(x ** 2)), X23, True),
    "sum_axis": (lambda x: np.sum(np.sum(x ** 3, axis=1) ** 2), X23, True),
    "sum_keepdims": (lambda x: np.sum(x / np.sum(x, axis=0, keepdims=True) * x), X23, True),
    "sum_neg_axis": (lambda x: np.sum(x.sum(axis=-1) ** 2), X23, True),
    "mean_var_std": (lambda x: np.mean(x, axis=0) @ np.var(x, axis=0) + np.std(x) +
                     x.var(ddof=1), X23, False),
    "max_min": (lambda x: np.sum(np.max(x, axis=1) ** 2) + x.min() * np.amax(x), X23, False),
    "max_keepdims": (lambda x: np.sum(np.exp(x - np.max(x, axis=1, keepdims=True))), X23,
                     False),
    "matmul": (lambda x: np.sum((A34.T @ x.T) ** 2), X23.T @ np.ones((2, 1)) @ np.ones((1, 3)),
               True),
    "matmul_left": (lambda x: np.sum(np.tanh(x @ A34)), X23, True),
    "matvec": (lambda x: np.sum(np.sin(A34 @ x)), X4, True),
    "vecmat_dot": (lambda x: np.dot(x, B33 @ x) + x.dot(x), X4[:3], True),
    "matmul_both": (lambda x: np.sum((x @ x.T) ** 2), X23, True),
    "batch_matmul": (lambda x: np.sum(np.matmul(x.reshape(2, 1, 3), B33) ** 2), X23, True),
    "outer": (lambda x: np.sum(np.outer(x, x[::-1]) ** 2), X4, True),
    "einsum": (lambda x: np.einsum("ij,jk,ik->", x, A34[:, :3].T @ A34[:, :3], x), X23, True),
    "einsum_implicit": (lambda x: np.sum(np.einsum("ij,kj", x, x) ** 2), X23, True),
    "einsum_reduce": (lambda x: np.sum(np.einsum("ij->j", x ** 2) ** 2), X23, True),
    "reshape_T": (lambda x: np.sum(x.reshape(3, 2).T * x ** 2), X23, True),
    "transpose_swap": (lambda x: np.sum(np.swapaxes(x[None], 0, 2).squeeze() @ np.ones(2) *
                                        np.transpose(x).ravel()[:3]), X23, True),
    "expand_squeeze": (lambda x: np.sum(np.squeeze(np.expand_dims(x, 0), axis=0) ** 3), X23,
                       True),
    "concat_stack": (lambda x: np.sum(np.concatenate([x, x ** 2], axis=1) @ np.ones(6) *
                                      np.stack([x[0], x[1]], axis=1).sum(axis=1)[:2]), X23,
                     True),
    "hstack_vstack": (lambda x: np.sum(np.vstack([x, x]) ** 2) + np.sum(np.hstack([x, x])),
                      X23, True),
    "where": (lambda x: np.sum(np.where(x > 1.0, x ** 2, np.sin(x))), X23, False),
    "where_const": (lambda x: np.sum(np.where(x > 1.0, x, 0.0) ** 2), X23, False),
    "clip": (lambda x: np.sum(np.clip(x, 0.7, 1.3) ** 2 + x), X23, False),
    "abs_max_min": (lambda x: np.sum(np.abs(x - 1) + np.maximum(x, 1.0) * np.minimum(x, 1.2)),
                    X23, False),
    "basic_index": (lambda x: np.sum(x[1, :] ** 2 * x[0]) + x[0, 1] * x[-1, -1], X23, True),
    "slices": (lambda x: np.sum(x[:, 1:] * x[:, :-1]) + np.sum(x[::-1] ** 3), X23, True),
    "fancy_index": (lambda x: np.sum(x[[0, 1, 1], [2, 0, 0]] ** 2), X23, True),
    "bool_index": (lambda x: np.sum(x[x > 1.0] ** 3), X23, False),
    "take_rows": (lambda x: np.sum(x[np.arange(2), [1, 2]] * np.take(x, [0, 0, 2], axis=1).sum()),
                  X23, True),
    "flip_diff_cumsum": (lambda x: np.sum(np.diff(x, axis=1) ** 2) +
                         np.sum(np.flip(x, axis=0) * x) + np.sum(np.cumsum(x, axis=1) ** 2),
                         X23, True),
    "like_astype": (lambda x: np.sum(x.astype(np.float64) * np.ones_like(x) +
                                     np.zeros_like(x)), X23, False),
    "norm_trace": (lambda x: np.linalg.norm(x) + np.trace(x[:, :2] @ x[:, :2].T), X23, False),
    "broadcast": (lambda x: np.sum(np.broadcast_to(x[0], (4, 3)) * x[1]), X23, True),
    "scalar_x": (lambda x: np.sin(x) * x ** 3, np.array(0.7), True),
}


def _reference_grad(f, x):
    return dc.gradient(f, x, mode="finite")


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_modes_agree(name):
    f, x, analytic = CASES[name]
    rev = dc.gradient(f, x, mode="reverse")
    fwd = dc.gradient(f, x, mode="forward")
    fd = _reference_grad(f, x)
    assert rev.shape == x.shape
    np.testing.assert_allclose(fwd, rev, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rev, fd, rtol=1e-7, atol=1e-7)
    if analytic:
        np.testing.assert_allclose(dc.gradient(f, x, mode="complex"), rev, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hessian_modes_agree(name):
    f, x, _ = CASES[name]
    rev = dc.hessian(f, x, mode="reverse")
    fwd = dc.hessian(f, x, mode="forward")
    fd = dc.hessian(f, x, mode="finite")
    assert rev.shape == x.shape + x.shape
    np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rev, fd, rtol=1e-5, atol=1e-5)


def test_jacobian_modes_agree_on_matrix_output():
    def f(x):
        return np.tanh(A34.T @ x) * x[0, 0]

    x = RNG.normal(size=(3, 2))
    J = dc.jacobian(f, x, mode="reverse")
    assert J.shape == (4, 2, 3, 2)
    np.testing.assert_allclose(dc.jacobian(f, x, mode="forward"), J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dc.jacobian(f, x, mode="finite"), J, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dc.jacobian(f, x, mode="complex"), J, rtol=1e-12, atol=1e-14)


def test_float32_stays_float32_in_reverse_mode():
    x = X23.astype(np.float32)
    g = dc.gradient(lambda x: np.sum(np.exp(x) * x), x)
    assert g.dtype == np.float32


@pytest.mark.parametrize("call, name", [
    (lambda x: np.sum(np.sort(x)), "np.sort"),
    (lambda x: np.sum(np.linalg.inv(x @ x.T)), "inv"),
    (lambda x: np.sum(np.prod(x)), "np.prod"),
    (lambda x: np.sum(np.arccos(x, dtype=np.float64)), "arccos"),
])
def test_unsupported_function_is_named(call, name):
    with pytest.raises(UnsupportedError, match=name):
        dc.gradient(call, X23 / 2, mode="reverse")


def test_asarray_of_traced_value_is_a_clear_error():
    with pytest.raises(UnsupportedError, match="asarray"):
        dc.gradient(lambda x: np.sum(np.asarray(x)), X4)


@pytest.mark.parametrize("f", [lambda x: np.sum(np.abs(x)), lambda x: np.var(x),
                               lambda x: np.linalg.norm(x)])
def test_complex_mode_refuses_non_analytic_code(f):
    with pytest.raises(UnsupportedError, match="complex step needs analytic"):
        dc.gradient(f, X4, mode="complex")


def test_unknown_mode():
    with pytest.raises(dc.UsageError, match="mode"):
        dc.gradient(np.sum, X4, mode="sideways")


def test_supported_numpy_lists_the_registry():
    names = supported_numpy()
    for n in ("sum", "mean", "matmul", "einsum", "concatenate", "where", "getitem", "add.reduce"):
        assert n in names


# -- the backward walk: signed and absolute adjoints in one walk, arrays reused in place ------

def _walks(f, x, **kw):
    """Signed and absolute adjoints of every tape entry: two walks and one combined walk."""
    from diffcheck.engines.reverse import Tape, backward

    tape = Tape()
    y = f(tape.var(x))
    seed = np.ones(np.shape(y.val))
    signed = backward(y, seed, **kw)
    absolute = backward(y, seed, absolute=True, **kw)
    both = backward(y, seed, both=True, **kw)
    again = backward(y, seed, **kw)  # the tape is not spent without consume=True
    assert np.array_equal(seed, np.ones_like(seed))  # the seed is never written
    return signed, absolute, both, again


def _same_lists(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert (u is None) == (v is None)
        if u is not None:
            assert np.shape(u) == np.shape(v) and np.array_equal(u, v), (u, v)


BIG = RNG.uniform(0.5, 1.5, 5000)
# cases whose adjoints are big enough to be reused in place, with the patterns that must
# not be: an operand used twice, g passed on unchanged (add, sub) before a product, a
# broadcast, a structural pullback, a value that is also a user's constant
BIG_CASES = {
    "twice": lambda x: np.sum(x * x + np.sin(x) * x),
    "sub_same": lambda x: np.sum((2 * x - x) * np.exp(x)),
    "pass_then_product": lambda x: np.sum(np.tanh(x) - np.tanh(x) * x),
    "broadcast": lambda x: np.sum(x.reshape(50, 100) * BIG[:100] + x.reshape(50, 100)[:, :1]),
    "structural": lambda x: np.sum(np.where(x > 1.0, x ** 2, np.log(x))[::2] * x[1::2]),
    "user_constant": lambda x: np.sum(BIG * x) + np.sum(np.log1p(x * x)) * 0.5,
    "mean_exp": lambda x: 0.5 * np.sum((np.tanh(x) * BIG - 1.0) ** 2) + np.mean(np.exp(-x)),
}


@pytest.mark.parametrize("name", sorted(BIG_CASES) + sorted(CASES))
@pytest.mark.parametrize("keep", [False, True])
def test_one_walk_gives_the_numbers_of_two_walks(name, keep):
    f, x = (BIG_CASES[name], BIG) if name in BIG_CASES else CASES[name][:2]
    kw = {"keep": {0}} if keep else {}
    signed, absolute, (s1, a1), again = _walks(f, np.asarray(x, dtype=float), **kw)
    _same_lists(signed, s1)
    _same_lists(absolute, a1)
    _same_lists(signed, again)


@pytest.mark.parametrize("name", sorted(BIG_CASES) + sorted(CASES))
def test_in_place_reuse_changes_no_number(name, monkeypatch):
    """Every adjoint (kept or returned) is the same with and without arrays reused in place
    (REUSE_MIN 0: even the small cases reuse), and matches forward mode."""
    from diffcheck.engines import reverse
    from diffcheck.numpy_check import _vjp_rows

    f, x = (BIG_CASES[name], BIG) if name in BIG_CASES else CASES[name][:2]
    x = np.asarray(x, dtype=float)
    out = {}
    for reuse in (10 ** 12, 0):
        monkeypatch.setattr(reverse, "REUSE_MIN", reuse)
        walks = []
        for kw in ({"keep": {0}}, {}):
            signed, absolute, both, again = _walks(f, x, **kw)
            walks += [signed, absolute, *both, again]
        out[reuse] = (walks, list(_vjp_rows(f, x, absolute=True)) + [dc.gradient(f, x)])
    for a, b in zip(out[10 ** 12][0], out[0][0], strict=True):
        _same_lists(a, b)
    _same_lists(out[10 ** 12][1], out[0][1])
    np.testing.assert_allclose(out[0][1][-1], dc.gradient(f, x, mode="forward"), rtol=1e-12,
                               atol=1e-12)


def test_absolute_adjoints_bound_the_signed_ones_and_jacobian_rows_agree():
    from diffcheck.numpy_check import _vjp_rows

    def f(x):
        return np.stack([np.sum(x * np.sin(x)), np.sum(x[:10] - np.cos(x[:10]) * x[:10])])

    _, rows, scale = _vjp_rows(f, BIG, absolute=True)
    _, rows2 = _vjp_rows(f, BIG)
    assert np.array_equal(rows, rows2) and rows.shape == (2, BIG.size)
    assert np.all(scale >= np.abs(rows))
    np.testing.assert_allclose(rows, dc.jacobian(f, BIG, mode="forward"), rtol=1e-12,
                               atol=1e-12)
