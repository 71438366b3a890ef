"""NumPy code as people write it, traced: writes into arrays (``a[i] = v``, ``a[idx] -= 1``,
``out=``), ``np.array``/``np.asarray``/``np.stack`` of traced values, nested passes.

Each case is differentiated by reverse and forward mode and compared with finite
differences, which only evaluate f (no tracing), so a wrong write rule is caught.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffcheck as dc
from diffcheck.engines.forward import Dual
from diffcheck.engines.numpy_ops.inplace import BoundArray, TracedArray, tracing_scope
from diffcheck.engines.reverse import Tape, backward
from diffcheck.errors import UnsupportedError

RNG = np.random.default_rng(14)
X = RNG.normal(size=(5, 4))
Y = np.array([0, 2, 1, 2, 0])


# -- the patterns ---------------------------------------------------------------------

def rows_loop(w):
    out = np.zeros(5)
    for i in range(5):
        out[i] = X[i] @ w
    return out


def softmax_loss_and_grad(W):
    """CS231n style: the loss and its gradient in one function, `dscores[range(N), y] -= 1`."""
    scores = X @ W
    scores = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(5), Y])) / 5 + 0.1 * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(5), Y] -= 1
    dscores /= 5
    dW = X.T @ dscores + 0.2 * W
    return loss, dW


def vector_from_list(v):
    return np.array([v[0] ** 2 + v[1], np.sin(v[0]) * v[1]])


def asarray_first(v):
    v = np.asarray(v, dtype=float)
    return np.sum(v ** 3) + v[0] * v[1]


def naive_conv(x):
    """A naive 1-D convolution with a bias row, written with a double loop into np.zeros."""
    k = np.array([0.5, -1.0, 2.0])
    out = np.zeros((2, 3))
    for r in range(2):
        for i in range(3):
            out[r, i] = np.sum(x[r, i:i + 3] * k)
        out[r] += 0.1 * r
    return np.sum(out ** 2)


def max_pool(x):
    out = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            out[i][j] = np.max(x[2 * i:2 * i + 2, 2 * j:2 * j + 2])
    return np.sum(out * np.array([[1.0, 2.0], [3.0, 4.0]]))


def row_views(x):
    out = np.zeros((3, 2))
    for i in range(3):
        row = out[i]
        row[0] = x[i] ** 2
        row[1] += x[i]
    return out.ravel() @ np.arange(1.0, 7.0)


CASES = {
    "rows_loop": (rows_loop, RNG.normal(size=4)),
    "softmax_loss": (lambda W: softmax_loss_and_grad(W)[0], RNG.normal(size=(4, 3))),
    "vector_from_list": (vector_from_list, np.array([0.7, -1.3])),
    "asarray_first": (asarray_first, np.array([0.5, 1.5, -0.2])),
    "naive_conv": (naive_conv, RNG.normal(size=(2, 5))),
    "max_pool": (max_pool, RNG.permutation(16).reshape(4, 4) * 0.1),
    "row_views": (row_views, RNG.normal(size=3)),
    "stack_list_of_lists": (lambda v: np.stack([[v[0], v[1] * v[0]], [1.0, np.exp(v[1])]]),
                            np.array([0.3, 0.8])),
    "out_argument": (lambda x: _out_argument(x), RNG.normal(size=3)),
}


def _write_into_input(x):
    x[1] = x[0] * x[2]  # the traced pass's own handle on the input is left alone
    x += 1.0
    return np.sum(x ** 2)


def test_writes_into_the_input_are_traced():
    # (finite differences cannot be the reference: f overwrites the array it is given)
    x = np.array([0.5, -1.0, 2.0, 0.3])
    g = 2 * (x + 1)
    g[0] += 2 * (x[0] * x[2] + 1) * x[2]
    g[1] = 0.0  # x[1] is overwritten
    g[2] += 2 * (x[0] * x[2] + 1) * x[0]
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(_write_into_input, x.copy(), mode=mode), g,
                                   rtol=1e-14, err_msg=mode)


def _out_argument(x):
    buf = np.empty(3)
    np.multiply(x, x, out=buf)
    np.add(buf, np.sin(x), out=buf)
    return buf


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_like_numpy(name):
    f, x = CASES[name]
    fd = dc.jacobian(f, x.copy(), mode="finite")
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.jacobian(f, x.copy(), mode=mode), fd, rtol=1e-7,
                                   atol=1e-8, err_msg=mode)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hessians_of_writes(name):
    f, x = CASES[name]
    if np.ndim(f(x.copy())):
        f0 = f
        f = lambda x: np.sum(f0(x) * np.arange(1.0, 1.0 + np.size(f0(x))).reshape(  # noqa
            np.shape(f0(x))))
    H = dc.hessian(f, x.copy(), mode="reverse")
    np.testing.assert_allclose(dc.hessian(f, x.copy(), mode="forward"), H, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(dc.hessian(f, x.copy(), mode="finite"), H, rtol=1e-5,
                               atol=1e-5)


def test_check_gradient_traces_the_loop_and_catches_a_bug():
    w = RNG.normal(size=4)
    f = lambda w: np.sum(rows_loop(w) ** 2)  # noqa: E731
    right = dc.check_gradient(f, lambda w: 2 * X.T @ (X @ w), w)
    assert right.ok and "reverse-mode" in right.method, str(right)
    wrong = dc.check_gradient(f, lambda w: 2 * X.T @ (X @ w) * np.array([1, 1, 1, 1.001]), w)
    assert not wrong.ok and "reverse-mode" in wrong.method


def test_loss_with_its_own_gradient_is_checked_by_ad_and_a_bug_is_localised():
    W = RNG.normal(size=(4, 3))
    loss = lambda W: softmax_loss_and_grad(W)[0]  # noqa: E731
    grad = lambda W: softmax_loss_and_grad(W)[1]  # noqa: E731
    res = dc.check_gradient(loss, grad, W)
    assert res.ok and "reverse-mode" in res.method, str(res)

    def buggy(W):  # the classic bug: the regularisation gradient without its factor 2
        return grad(W) - 0.1 * W

    bad = dc.check_gradient(loss, buggy, W)  # localisation re-runs f in forward mode
    assert not bad.ok and "reverse-mode" in bad.method
    assert "forward" in str(bad)


def test_jacobian_check_of_a_vector_built_with_np_array():
    v = np.array([0.7, -1.3])

    def jac(v):
        return np.array([[2 * v[0], 1.0], [np.cos(v[0]) * v[1], np.sin(v[0])]])

    res = dc.check_jacobian(vector_from_list, jac, v)
    assert res.ok and "AD" in res.method and "finite" not in res.method, str(res)
    assert not dc.check_jacobian(vector_from_list, lambda v: jac(v).T, v).ok


def test_asarray_at_the_top_is_traced():
    x = np.array([0.5, 1.5, -0.2])
    grad = lambda x: 3 * x ** 2 + np.array([x[1], x[0], 0.0])  # noqa: E731
    res = dc.check_gradient(asarray_first, grad, x)
    assert res.ok and "reverse-mode" in res.method, str(res)


# -- semantics of writes ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda x: Dual(x, np.eye(x.size).reshape((x.size, *x.shape)), 99),
    lambda x: Tape().var(x),
], ids=["dual", "var"])
def test_aliases_see_a_write_and_copies_do_not(make):
    x = make(np.arange(3.0))
    alias, copy = x, x.copy()
    alias[0] = 7.0
    alias += 1.0
    assert x.val.tolist() == [8.0, 2.0, 3.0]
    assert copy.val.tolist() == [0.0, 1.0, 2.0]
    assert np.copy(x) is not x


def test_duplicate_fancy_index_keeps_numpys_last_write():
    def f(x):
        y = np.zeros(3)
        y[[0, 0, 2]] = x
        return y

    x = np.array([1.0, 2.0, 3.0])
    with tracing_scope():
        assert f(x).tolist() == [2.0, 0.0, 3.0]  # NumPy's own result
    for mode in ("reverse", "forward"):
        np.testing.assert_array_equal(dc.jacobian(f, x, mode=mode),
                                      [[0, 1, 0], [0, 0, 0], [0, 0, 1]])


def test_augmented_fancy_assignment_adds_once_like_numpy():
    def f(x):
        y = x.copy()
        y[[1, 1]] += x[0]  # NumPy adds once, not twice
        return y

    np.testing.assert_array_equal(dc.jacobian(f, np.ones(2), mode="reverse"),
                                  [[1, 0], [1, 1]])


def test_reverse_tape_keeps_no_copies_of_big_written_arrays():
    tape = Tape()
    x = tape.var(np.ones(10_000))
    y = x.copy()
    for i in range(20):
        y[i] = x[i] * 2.0
    for links in tape.entries:
        for _, kind, payload, _ in links:
            if kind == "vjp":
                cells = [c.cell_contents for c in payload.__closure__ or ()]
                held = [a for c in cells if isinstance(c, list) for a in c]
                held += [c for c in cells if isinstance(c, np.ndarray)]
                assert all(not isinstance(a, np.ndarray) or a.size < 4096 or
                           a.strides == (0,) for a in held)
    assert backward(y, np.ones(10_000))[x.index][:3].tolist() == [2.0, 2.0, 2.0]


# -- what cannot work is named ----------------------------------------------------------------

OUTSIDE = np.zeros(3)


@pytest.mark.parametrize("f, match", [
    (lambda x: _into(OUTSIDE, x), "setting an array element|made before f"),
    (lambda x: _into_reshaped(x), "view of an array made by reshape"),
    (lambda x: _into_int(x), "dtype int64"),
    (lambda x: np.sum(np.add(x, 1.0, out=OUTSIDE)), "made before f was called"),
])
def test_untraceable_writes_raise_clear_errors(f, match):
    with pytest.raises((UnsupportedError, ValueError), match=match):
        dc.gradient(f, np.ones(3), mode="reverse")


def _into(a, x):
    a[0] = x[0]
    return np.sum(a)


def _into_reshaped(x):
    a = np.zeros((3, 1)).reshape(3)
    a[0] = x[0]
    return np.sum(a)


def _into_int(x):
    a = np.zeros(3, dtype=np.int64)
    a[0] = x[0]
    return np.sum(a)


def test_scope_restores_numpy_and_plain_code_sees_plain_arrays():
    with tracing_scope():
        with tracing_scope():  # re-entrant
            inner = np.zeros(2)
        assert type(np.ones(2)) is TracedArray
    assert type(inner) is TracedArray and type(np.zeros(2)) is np.ndarray
    assert np.zeros is np._core.numeric.zeros and np.array is np._core.multiarray.array


def test_bound_array_stands_for_its_value():
    tape = Tape()
    x = tape.var(np.array([1.0, 2.0]))
    with tracing_scope():
        a = np.zeros(2)
        a[1] = x[0] * 3.0
    assert type(a) is BoundArray
    s = a.sum() + np.sum(a * a) + a.dot(a) + a[1]
    assert float(s.val) == 3.0 + 9.0 + 9.0 + 3.0
    assert backward(s, 1.0)[x.index].tolist() == [3.0 + 18.0 + 18.0 + 3.0, 0.0]
    with pytest.raises(UnsupportedError, match="float"):
        float(a[1])


# -- ndarray methods of plain arrays given traced values --------------------------------------

def _softmax_parts(W, X, y):
    scores = X.dot(W)
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    return p, -np.log(p[np.arange(len(y)), y]).mean()


def test_x_dot_w_float32_softmax_classifier_bug_is_caught_by_ad():
    """3073 features x 10 classes (30 730 parameters) in float32, written with X.dot(W): the
    check traces it (reverse mode is the reference) and a 0.19% error in one class's column
    of the gradient is found."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3073)).astype(np.float32)
    y = rng.integers(0, 10, size=40)
    W = (rng.normal(size=(3073, 10)) * 1e-3).astype(np.float32)

    def loss(W):
        return _softmax_parts(W, X, y)[1]

    def grad(W):
        p, _ = _softmax_parts(W, X, y)
        p[np.arange(len(y)), y] -= 1
        return X.T.dot(p) / len(y)

    right = dc.check_gradient(loss, grad, W)
    assert right.ok and "reverse-mode" in right.method, str(right)
    wrong = dc.check_gradient(loss, lambda W: grad(W) * np.where(np.arange(10) == 3, 1.0019,
                                                                   1.0).astype(np.float32), W)
    assert not wrong.ok and "reverse-mode" in wrong.method, str(wrong)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_x_dot_of_a_traced_value_and_of_an_array_written_in_f(mode):
    A = RNG.normal(size=(3, 4))

    def f(w):
        h = np.zeros(4)
        h[:] = np.tanh(w)
        return A.dot(h) + A.dot(w) * 2.0

    w = RNG.normal(size=4)
    np.testing.assert_allclose(dc.jacobian(f, w, mode=mode), dc.jacobian(f, w, mode="finite"),
                               rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(dc.hessian(lambda w: np.sum(f(w) ** 2), w, mode=mode),
                               dc.hessian(lambda w: np.sum(f(w) ** 2), w, mode="finite"),
                               rtol=1e-5, atol=1e-5)


def test_methods_that_cannot_be_traced_say_what_to_write():
    x = np.arange(3.0)
    with pytest.raises(UnsupportedError, match="write x @ w"):
        dc.gradient(lambda w: x.dot(w), np.ones(3))
    with pytest.raises(UnsupportedError, match="ndarray.put"):
        dc.gradient(lambda w: np.sum(x.copy().put([0], w[:1]) or x), np.ones(3))


def test_docs_list_of_supported_functions_is_up_to_date():
    """docs/numpy.md's list is generated (python -m diffcheck.engines.numpy_ops.listing
    docs/numpy.md rewrites it)."""
    from pathlib import Path

    from diffcheck.engines.numpy_ops.listing import markdown

    text = (Path(__file__).parent.parent / "docs" / "numpy.md").read_text(encoding="utf-8")
    assert markdown() in text


def test_numpy_functions_of_lists_holding_traced_values():
    def f(x):
        return np.std([x[0], x[0] + 2]) + np.mean((x[0], x[1] * 3)) + np.var([x[1], 1.0])

    x = np.array([0.0, 0.5])
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.gradient(f, x, mode=mode), [0.5, 1.25], rtol=1e-14)
    assert np.mean is np._core.fromnumeric.mean  # restored after the pass


def test_augmented_write_into_a_fresh_array_by_fancy_index_is_traced():
    """``a = np.zeros(5); a[[0, 2, 2, 4]] += w`` reads a fancy-indexed copy (whose .base is
    NumPy's buffer, not a user array), adds in place, writes back: it used to be refused as
    'a write into a view made by reshape' and fell back to finite differences."""
    def f(w):
        a = np.zeros(5)
        a[[0, 2, 2, 4]] += w[:4]
        b = a[[4, 0]]
        b *= w[4]  # a copy: the write stays in it
        return np.sum(a ** 2) + np.sum(b)

    x = np.arange(1.0, 6.0)
    want = dc.jacobian(f, x, mode="finite")
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(dc.jacobian(f, x, mode=mode), want, rtol=1e-8)
    res = dc.check_gradient(f, lambda w: dc.gradient(f, w, mode="finite"), x)
    assert res.ok and "reverse" in res.method and not res.notes
