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
_RNG2 = np.random.default_rng(5)  # inputs of the rows added later (RNG's draws stay as they were)
X33 = _RNG2.normal(size=(3, 3)) * 0.3 + 2.0 * np.eye(3)  # well-conditioned, not symmetric
X23Z = X23.copy()
X23Z[0, 1] = 0.0  # one exact zero
X4ZZ = X4.copy()
X4ZZ[[1, 3]] = 0.0  # two exact zeros: the gradient of prod is zero, its Hessian is not

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
    "ellipsis_index": (lambda x: np.sum(x[..., 1] ** 3) + np.sum(x[None, ..., ::2] * x[0, ...][:2]),
                       X23, True),
    "prod_zero": (lambda x: np.prod(x) + np.sum(np.prod(x, axis=0) ** 2) +
                  np.sum(np.prod(x, axis=1, keepdims=True) * x), X23Z, True),
    "prod_two_zeros": (lambda x: np.prod(x) + np.prod(x[:3]) * 2.0 + np.prod(x.reshape(2, 2), 1)
                       @ np.array([1.0, -1.0]), X4ZZ, True),
    "cumprod": (lambda x: np.sum(np.cumprod(x, axis=1) ** 2) + np.cumprod(x) @ np.arange(6.0),
                X23Z, True),
    "cumprod_two_zeros": (lambda x: np.sum(np.cumprod(x[::-1]) ** 2) + np.sum(np.cumprod(x)),
                          X4ZZ, True),
    "multiply_reduce_accumulate": (lambda x: np.sum(np.multiply.reduce(x, axis=1) ** 2) +
                                   np.sum(np.multiply.accumulate(x, axis=0) ** 3), X23, True),
    "sort": (lambda x: np.sum(np.sort(x, axis=0)[0] ** 3) + np.sort(x, axis=None) @
             np.arange(6.0) + np.sum(np.sort(x) * B33[:2]), X23, False),
    "take_along_axis": (lambda x: np.sum(np.take_along_axis(x, np.array([[2, 0, 0]]), axis=1) ** 2
                                         * x[:, :1]), X23, True),
    "repeat_tile": (lambda x: np.sum(np.repeat(x, [2, 1], axis=0) ** 2 * np.tile(x[0], (3, 1))) +
                    np.sum(np.repeat(x, 2) * np.tile(x, 2).ravel()), X23, True),
    "pad_constant": (lambda x: np.sum(np.pad(x, ((1, 0), (0, 2)), constant_values=0.5) ** 2 *
                                      np.arange(15.0).reshape(3, 5)) + np.sum(np.pad(x, 1) ** 3),
                     X23, True),
    "pad_gathers": (lambda x: np.sum(np.pad(x, ((2, 1), (1, 2)), mode="reflect") ** 2 * 0.5) +
                    np.sum(np.pad(x, 1, mode="edge") ** 3) +
                    np.sum(np.pad(x, ((0, 3), (4, 0)), mode="wrap") ** 2 *
                           np.pad(x, ((0, 3), (4, 0)), mode="symmetric")), X23, True),
    "diag_diagonal_trace": (lambda x: np.sum(np.diag(x, 1) ** 2) + np.sum(np.diag(x[1], -1) ** 3 @
                                                                          np.arange(4.0)) +
                            np.sum(np.diagonal(x.reshape(3, 2), 0, 1, 0) ** 3) + np.trace(x, 1) +
                            np.trace(x.reshape(1, 2, 3) ** 2, 0, 2, 1).sum(), X23, True),
    "triu_tril": (lambda x: np.sum(np.triu(x) ** 2 + np.tril(x, 1) ** 3) +
                  np.sum(np.tril(x[0], -1) @ x[1]), X23, True),
    "tensordot_kron": (lambda x: np.sum(np.tensordot(x, A34[:, :3], axes=([1], [1])) ** 2) +
                       np.tensordot(x, x ** 2) + np.sum(np.kron(x, x[:, :2]) ** 2) +
                       np.sum(np.kron(B33[0], x)), X23, True),
    "einsum_ellipsis": (lambda x: np.sum(np.einsum("...ij,jk->...ik", x.reshape(1, 2, 3), B33) ** 2)
                        + np.einsum("...i,...i", x, x).sum() +
                        np.sum(np.einsum("i...->...", x) ** 3), X23, True),
    "inv_det": (lambda x: np.sum(np.linalg.inv(x) ** 2) + np.linalg.det(x) +
                np.sum(np.linalg.det(x[None, :2, :2] * x[:, :1, None])), X33, True),
    "solve": (lambda x: np.sum(np.linalg.solve(x, B33[0]) ** 2) + np.sum(np.linalg.solve(x, x.T)) +
              np.sum(np.linalg.solve(B33 @ B33.T + np.eye(3), x) ** 3), X33, True),
    "slogdet": (lambda x: np.linalg.slogdet(x)[1] * 2.0 + np.linalg.slogdet(-x).sign +
                np.sum(np.linalg.slogdet(x[None, :2, :2] * x[:, :1, None]).logabsdet), X33, False),
    "cholesky": (lambda x: np.sum(np.log(np.diag(np.linalg.cholesky(x @ x.T + np.eye(3))))) +
                 np.sum(np.linalg.cholesky(x + x.T, upper=True) ** 2), X33, False),
    "matrix_power_multi_dot": (lambda x: np.sum(np.linalg.matrix_power(x, 3)) +
                               np.sum(np.linalg.matrix_power(x, -1)) +
                               np.linalg.multi_dot([x[0], x, B33, x[:, 1]]), X33, True),
    "norm_orders": (lambda x: np.linalg.norm(x, np.inf) + np.linalg.norm(x, 1) +
                    np.sum(np.linalg.norm(x, 3, axis=0)) + np.linalg.norm(x[0], -np.inf) +
                    np.linalg.norm(x[1], np.inf) + np.linalg.norm(x, -1) +
                    np.sum(np.linalg.vector_norm(x, axis=1, ord=0.5)) +
                    np.linalg.matrix_norm(x, ord=-np.inf), X23, False),
    "roll": (lambda x: np.sum(np.roll(x, 1) * x ** 2) + np.sum(np.roll(x, (1, -2), axis=(0, 1)) *
                                                               np.arange(6.0).reshape(2, 3)),
             X23, True),
    "append_split_column_stack": (lambda x: np.sum(np.append(x, x[:1] ** 2, axis=0) ** 2) +
                                  np.sum(np.append(x[0], 2.0) ** 3) +
                                  np.sum(np.split(x, 3, axis=1)[1] * np.array_split(x, 2)[1]) +
                                  np.sum(np.column_stack([x[0], x[1]]) ** 3), X23, True),
    "cross": (lambda x: np.sum(np.cross(x, x[::-1] ** 2) ** 2) +
              np.sum(np.cross(x.T, B33[0], axisa=0) * B33[1]), X23, True),
    "trapezoid_average": (lambda x: np.sum(np.trapezoid(x ** 2, x=x[0], axis=1)) +
                          np.trapezoid(x[0], dx=0.5) +
                          np.sum(np.average(x, axis=1, weights=B33[0] ** 2)) +
                          np.average(x, weights=x ** 2), X23, True),
    # functions autograd's tests use (issue 14); sp is scipy.special, imported on first use
    "deg2rad_rad2deg": (lambda x: np.sum(np.sin(np.deg2rad(x * 50)) * np.rad2deg(x) +
                                         np.radians(x) * np.degrees(x) ** 2), X4, False),
    "remainder_fmod": (lambda x: np.sum(np.remainder(x * 3, 0.7) ** 2 + np.mod(x, -0.4) +
                                        np.fmod(-x * 2, 0.3) ** 3), X23, False),
    "fmax_fmin": (lambda x: np.sum(np.fmax(x, x[::-1] * 1.1) ** 2 * np.fmin(x, 1.0) +
                                   np.fmax(x, np.nan)), X4, False),
    "logaddexp2": (lambda x: np.sum(np.logaddexp2(x, x[::-1] ** 2) * x), X4, False),
    "sinc": (lambda x: np.sum(np.sinc(x * 2) ** 2) + np.sinc(x[0] * 0), X4, True),
    "nan_to_num": (lambda x: np.sum(np.sin(np.nan_to_num(x + np.array([0.0, np.nan, np.inf,
                                                                      -np.inf])))), X4, False),
    "real_imag": (lambda x: np.sum(np.real(x) ** 2 + np.imag(x) + np.real_if_close(x) * x +
                                   np.angle(x - 1.0)), X4, False),
    "flipud_fliplr_rot90": (lambda x: np.sum(np.flipud(x) * A34[:2, :3] + np.fliplr(x) ** 2) +
                            np.sum(np.rot90(x) ** 2 @ B33[:2, :2]) +
                            np.sum(np.rot90(x, -1) * np.rot90(x, 3)) + np.sum(np.rot90(x, 2) * x),
                            X23, True),
    "hsplit_vsplit_dsplit": (lambda x: np.sum(np.hsplit(x, 3)[2] ** 2 * np.vsplit(x, 2)[1][:, :1])
                             + np.sum(np.dsplit(x.reshape(1, 2, 3), [1])[1] ** 3) +
                             np.sum(np.hsplit(x[0], [2])[0] ** 2), X23, True),
    "rollaxis_atleast": (lambda x: np.sum(np.rollaxis(x.reshape(1, 2, 3), 2) ** 2 *
                                          np.arange(6.0).reshape(3, 1, 2)) +
                         np.sum(np.atleast_3d(x) ** 3) + np.sum(np.atleast_2d(x[0]) ** 2) +
                         np.sum(np.atleast_1d(x[0, 0]) * x), X23, True),
    "partition": (lambda x: np.sum(np.partition(x, 1, axis=1)[:, :2] ** 2) +
                  np.partition(x.ravel(), 3)[3] * 2.0, X23, False),
    "gradient": (lambda x: np.sum(np.gradient(x)[1] ** 2) + np.sum(np.gradient(x, 0.5, axis=0) *
                                                                   x) +
                 np.sum(np.gradient(x[0], edge_order=2) ** 3), X23, True),
    "einsum_diag_interleaved": (lambda x: np.einsum("ii", x) + np.sum(np.einsum("ii->i", x) ** 2)
                                + np.sum(np.einsum(x, [0, 1], B33, [1, 2], [0, 2]) ** 2) +
                                np.einsum("iij->j", x[None] * x[:, None] + 0 * x[:, :, None]
                                          ).sum(), X33, True),
    "dot_nd": (lambda x: np.sum(np.dot(x.reshape(1, 3, 3), B33) ** 2) +
               np.sum(np.dot(B33[:2], x.reshape(3, 3, 1)[..., 0]) ** 2) +
               np.sum(np.dot(x.reshape(3, 1, 3), B33[0]) ** 2), X33, True),
    "linspace": (lambda x: np.sum(np.linspace(x[0], x[1], 5) ** 2) +
                 np.sum(np.linspace(x[:2], x[2:], 3, endpoint=False, axis=1) ** 3), X4, True),
    "select": (lambda x: np.sum(np.select([x < 0.8, x > 1.2], [x ** 2, np.sin(x)], x * 3)), X4,
               False),
    "std_one_entry": (lambda x: np.std(x[:1]) + np.sum(np.std(x.reshape(1, 4), axis=0)) +
                      np.var(x[2:3]), X4, False),
}

#: scipy.special rows: name -> (f, x); one case per row of primitives.scipy_special_rows
SCIPY_CASES = {
    "expit": (lambda x: np.sum(_sp().expit(x * 2) ** 2), X4),
    "log_expit": (lambda x: np.sum(_sp().log_expit(x - 1.0) * x), X4),
    "erf": (lambda x: np.sum(_sp().erf(x) * x ** 2), X4),
    "erfc": (lambda x: np.sum(_sp().erfc(x - 0.5) ** 2), X4),
    "gammaln": (lambda x: np.sum(_sp().gammaln(x * 3)), X4),
    "digamma": (lambda x: np.sum(_sp().digamma(x + 0.3) ** 2 + _sp().psi(x)), X4),
    "zeta": (lambda x: np.sum(_sp().zeta(3.0, x) * x), X4),
    "xlogy": (lambda x: np.sum(_sp().xlogy(x, x[::-1] + 0.5) + _sp().xlogy(0.0, x)), X4),
    "xlog1py": (lambda x: np.sum(_sp().xlog1py(x ** 2, x - 0.2)), X4),
    "logsumexp": (lambda x: _sp().logsumexp(x) + np.sum(_sp().logsumexp(
        x.reshape(2, 2), axis=1, b=np.array([1.0, 2.0]))), X4),
    "softmax_log_softmax": (lambda x: np.sum(_sp().softmax(x.reshape(2, 2), axis=0) * B33[:2, :2])
                            + np.sum(_sp().log_softmax(x) ** 2), X4),
}


def _sp():
    import scipy.special

    return scipy.special


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


@pytest.mark.parametrize("f", [
    lambda x: np.sum(np.exp(x) * x),
    lambda x: np.prod(x) + np.sum(np.cumprod(x, axis=1) ** 2) + np.sum(np.sort(x, axis=0) * x),
    lambda x: np.sum(np.pad(x, 1, mode="reflect") ** 2) + np.sum(np.pad(x, 1, constant_values=2)),
    lambda x: np.sum(np.einsum("...ij,...jk->...ik", x, x)) + np.sum(np.tile(np.triu(x), 2)),
    lambda x: np.sum(np.linalg.inv(x)) + np.linalg.det(x) + np.sum(np.linalg.solve(x, x.T)),
    lambda x: np.linalg.slogdet(x)[1] + np.sum(np.linalg.cholesky(
        x @ x.T + np.eye(3, dtype=np.float32))),
])
def test_float32_stays_float32_in_reverse_mode(f):
    g = dc.gradient(f, X33.astype(np.float32))
    assert g.dtype == np.float32


@pytest.mark.parametrize("call, name", [
    (lambda x: np.sum(np.linalg.eigh(x @ x.T)[0]), "np.linalg.eigh"),
    (lambda x: np.sum(np.linalg.svd(x)[1]), "np.linalg.svd"),
    (lambda x: np.sum(np.convolve(x[0], x[1])), "np.convolve"),
    (lambda x: np.sum(np.arccos(x, dtype=np.float64)), "arccos"),
    (lambda x: np.sum(np.pad(x, 1, mode="linear_ramp")), "mode='linear_ramp'"),
    (lambda x: np.sum(np.pad(x, 1, mode="reflect", reflect_type="odd")), "reflect_type='odd'"),
    (lambda x: np.linalg.norm(x, "nuc"), "ord='nuc'"),
    (lambda x: np.linalg.norm(x, 2), "ord=2 of a matrix"),
    (lambda x: np.sum(np.prod(x, where=x > 0)), "np.prod with out= or where="),
])
def test_unsupported_function_is_named(call, name):
    with pytest.raises(UnsupportedError, match=name):
        dc.gradient(call, X23 / 2, mode="reverse")


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_value_is_numpys_value(name):
    from diffcheck.engines.numpy_ops import strip
    from diffcheck.engines.reverse import Tape

    f, x, _ = CASES[name]
    np.testing.assert_allclose(strip(f(Tape().var(x))), f(x), rtol=1e-14, atol=1e-15)


# -- end to end: check_gradient on code that uses the linear-algebra and product rows ---------

Y53 = _RNG2.normal(size=(5, 3))


def _gauss_nll(A):
    """Negative log-likelihood of the rows of Y53 under N(0, A A^T + I), up to a constant."""
    S = A @ A.T + np.eye(3)
    _, logdet = np.linalg.slogdet(S)
    return 0.5 * len(Y53) * logdet + 0.5 * np.sum(Y53.T * np.linalg.solve(S, Y53.T))


def _gauss_nll_chol(A):
    L = np.linalg.cholesky(A @ A.T + np.eye(3))
    z = np.linalg.solve(L, Y53.T)
    return len(Y53) * np.sum(np.log(np.diag(L))) + 0.5 * np.sum(z * z)


def _gauss_nll_grad(A):
    Si = np.linalg.inv(A @ A.T + np.eye(3))
    return (len(Y53) * Si - Si @ Y53.T @ Y53 @ Si) @ A


@pytest.mark.parametrize("f", [_gauss_nll, _gauss_nll_chol])
def test_check_gradient_of_a_gaussian_log_likelihood(f):
    A = _RNG2.normal(size=(3, 3))
    assert f(A) == pytest.approx(_gauss_nll(A), rel=1e-12)
    res = dc.check_gradient(f, _gauss_nll_grad, A)
    assert res.ok, str(res)
    assert "finite differences" in res.witness  # slogdet/cholesky: no complex step
    assert not dc.check_gradient(f, lambda A: _gauss_nll_grad(A.T), A).ok


def _prod_grad(x):
    """The product of the other entries: no division, right at zeros."""
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


@pytest.mark.parametrize("x", [np.array([2.0, 0.0, 3.0, -1.5]), np.array([2.0, 0.0, 3.0, 0.0]),
                               X4])
def test_prod_at_zeros_is_exact(x):
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(np.prod, x, mode=mode), _prod_grad(x),
                                   rtol=1e-15, atol=0)
    H = np.array([[np.prod(np.delete(x, [i, j])) if i != j else 0.0 for j in range(4)]
                  for i in range(4)])
    np.testing.assert_allclose(dc.hessian(np.prod, x), H, rtol=1e-15, atol=0)
    np.testing.assert_allclose(dc.hessian(np.prod, x, mode="forward"), H, rtol=1e-15, atol=0)
    assert dc.check_gradient(np.prod, _prod_grad, x).ok
    if np.count_nonzero(x == 0) == 1:  # the usual prod(x) / x is wrong at a single zero
        assert not dc.check_gradient(
            np.prod, lambda x: np.prod(x) / np.where(x == 0, 1.0, x), x).ok


def test_check_gradient_of_cumprod_and_sort():
    x = np.array([0.5, 0.0, 2.0, 1.5, -0.7])

    def f(x):  # survival-style cumulative products, then a trimmed sum
        return np.sum(np.cumprod(1.0 - 0.3 * x)) + np.sum(np.sort(x)[1:-1] ** 2)

    def grad(x):
        q = 1.0 - 0.3 * x
        g = np.array([-0.3 * sum(np.prod(np.delete(q[:j + 1], i)) for j in range(i, 5))
                      for i in range(5)])
        order = np.argsort(x)
        g[order[1:-1]] += 2 * x[order[1:-1]]
        return g

    assert dc.check_gradient(f, grad, x).ok
    assert not dc.check_gradient(f, lambda x: grad(x) * np.array([1, 1, 1, 1, 0.9]), x).ok


def test_sort_at_a_tie_is_reported_as_a_kink():
    w = np.array([1.0, 2.0, 3.0])
    res = dc.check_gradient(lambda x: np.sort(x) @ w, lambda x: np.array([3.0, 2.0, 1.0]),
                            np.array([1.0, 1.0, 0.5]))
    assert res.ok and "kink of np.sort" in res.kink


def test_einsum_ellipsis_must_reach_the_output():
    with pytest.raises(ValueError, match=r"no '\.\.\.'"):
        dc.gradient(lambda x: np.sum(np.einsum("...i,...i->i", x, x)), X23)


def test_asarray_of_traced_value_passes_it_through():
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(lambda x: np.sum(np.asarray(x) ** 2), X4,
                                               mode=mode), 2 * X4, rtol=1e-15)


@pytest.mark.parametrize("f", [lambda x: np.sum(np.abs(x)), lambda x: np.var(x),
                               lambda x: np.linalg.norm(x), lambda x: np.sum(np.sort(x) * x),
                               lambda x: np.linalg.slogdet(np.diag(x))[1],
                               lambda x: np.sum(np.linalg.cholesky(np.diag(x)))])
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


def test_det_of_a_singular_matrix_is_checked_against_finite_differences():
    """det's rule goes through the inverse; at a singular matrix the check says so and uses
    finite differences, where the right gradient (the adjugate, transposed) passes."""
    s = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    cof = np.array([[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])  # cofactors of s
    with pytest.raises(UnsupportedError, match="singular"):
        dc.gradient(np.linalg.det, s, mode="reverse")
    right = dc.check_gradient(np.linalg.det, lambda a: cof, s)
    assert right.ok and "singular" in str(right) and "finite differences" in right.method
    assert not dc.check_gradient(np.linalg.det, lambda a: cof.T, s).ok


@pytest.mark.parametrize("f", [
    lambda x: np.multiply.reduce(x, initial=2.0),
    lambda x: np.add.reduce(x * x, 0, None, None, False, 5.0),
    lambda x: np.maximum.reduce(x, initial=2.5),
    lambda x: np.sum(np.add.accumulate(x ** 2, 0, np.float32)),
    lambda x: np.sum(np.multiply.accumulate(x, axis=0)),
], ids=["multiply.reduce", "add.reduce", "maximum.reduce", "add.accumulate", "multiply.accumulate"])
def test_ufunc_methods_pass_every_argument_on(f):
    x = np.array([1.0, 2.0, 3.0])
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(f, x, mode=mode), dc.gradient(f, x, mode="finite"),
                                   rtol=1e-7, atol=1e-7)


OUT3 = np.empty(3)


@pytest.mark.parametrize("f", [
    lambda x: np.multiply.reduce(x, where=np.array([True, False, True])),
    lambda x: np.add.reduce(x, where=np.array([True, False, True])),
    lambda x: np.cumsum(x, out=np.empty(3)),
    lambda x: np.add.accumulate(x, out=OUT3),
], ids=["multiply.reduce-where", "add.reduce-where", "cumsum-out", "add.accumulate-out"])
def test_ufunc_methods_refuse_where_and_out(f):
    """out= into an array made before f runs: it cannot hold a traced value."""
    with pytest.raises(UnsupportedError, match="cannot carry derivatives"):
        dc.gradient(f, np.array([1.0, 2.0, 3.0]), mode="reverse")


# -- scipy.special --------------------------------------------------------------------------

def test_every_scipy_row_has_a_case():
    from diffcheck.primitives import scipy_special_rows

    assert {r.name for r in scipy_special_rows(_sp())} <= set(SCIPY_CASES)


@pytest.mark.parametrize("name", sorted(SCIPY_CASES))
def test_scipy_special_rows(name):
    """Plain values, duals (forward, forward over forward) and the tape (reverse, forward
    over reverse) against finite differences, which only evaluate SciPy."""
    from diffcheck.engines.numpy_ops import strip, trace_call
    from diffcheck.engines.reverse import Tape

    f, x = SCIPY_CASES[name]
    np.testing.assert_allclose(strip(trace_call(f, Tape().var(x))), f(x), rtol=1e-14)
    fd = dc.gradient(f, x, mode="finite")
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(f, x, mode=mode), fd, rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(dc.hessian(f, x, mode=mode), dc.hessian(f, x, mode="finite"),
                                   rtol=1e-5, atol=1e-5)


def test_scipy_import_style_and_check_report():
    from scipy.special import expit, logsumexp  # names bound before the check runs

    def loss(w):
        return logsumexp(w) + np.sum(expit(w))

    def grad(w):
        e = np.exp(w - np.max(w))
        return e / np.sum(e) + expit(w) * (1 - expit(w))

    w = np.array([0.3, -1.2, 2.0])
    res = dc.check_gradient(loss, grad, w)
    assert res.ok and "reverse-mode" in res.method, str(res)
    assert not dc.check_gradient(loss, lambda w: grad(w) * 1.001, w).ok


def test_import_diffcheck_does_not_import_scipy():
    import subprocess
    import sys

    code = ("import sys, numpy as np, diffcheck as dc; dc.gradient(lambda x: np.sum(x ** 2), "
            "np.ones(2)); print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
