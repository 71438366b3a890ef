"""Products and linear algebra: matmul, dot, inner, vdot, outer, einsum, tensordot, kron,
and the ``np.linalg`` rows (inv, solve, det, slogdet, cholesky) with the functions composed
from them (multi_dot, matrix_power, norms).
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from .core import (
    _k,
    _lead,
    _log_conjugating,
    _row,
    _shape,
    align,
    getitem,
    register,
    strip,
    unbroadcast,
)

# -- matmul, dot, einsum ---------------------------------------------------------------------

def _promote(a: Any, b: Any) -> tuple[Any, Any]:
    """1-D operands as matrices: a row vector on the left, a column vector on the right."""
    if len(_shape(a)) == 1:
        a = np.reshape(a, (1, _shape(a)[0]))
    if len(_shape(b)) == 1:
        b = np.reshape(b, (_shape(b)[0], 1))
    return a, b


def _tangent_matrix(t: Any, x: Any, left: bool, ndim: int) -> Any:
    s = _shape(x)
    if len(s) == 1:
        t = np.reshape(t, (_k(t), 1, s[0]) if left else (_k(t), s[0], 1))
    return _lead(t, ndim)


def _matmul_jvp(primals, tangents, out, **_):
    a, b = _promote(*primals)
    nd = max(len(_shape(a)), len(_shape(b)))
    ta, tb = tangents
    total = None
    if ta is not None:
        total = np.matmul(_tangent_matrix(ta, primals[0], True, nd), b)
    if tb is not None:
        term = np.matmul(a, _tangent_matrix(tb, primals[1], False, nd))
        total = term if total is None else total + term
    k = _k(ta if ta is not None else tb)
    return np.reshape(total, (k, *_shape(out)))


def _matmul_vjp(primals, out, g, **_):
    a0, b0 = primals
    a, b = _promote(a0, b0)
    gm = np.reshape(g, _shape(np.matmul(strip(a), strip(b))))
    ga = np.matmul(gm, np.swapaxes(b, -1, -2))
    gb = np.matmul(np.swapaxes(a, -1, -2), gm)
    ga = np.reshape(unbroadcast(ga, _shape(a)), _shape(a0))
    gb = np.reshape(unbroadcast(gb, _shape(b)), _shape(b0))
    return ga, gb


matmul_p = _row("matmul", np.matmul, _matmul_jvp, _matmul_vjp)


@register((np.matmul, "__call__"), np.matmul)
def _matmul(a, b, **kwargs):
    if kwargs:
        raise UnsupportedError(f"np.matmul with {', '.join(kwargs)} is not supported")
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        raise UnsupportedError("np.matmul of a scalar: use * instead")
    return matmul_p(a, b)


@register(np.dot)
def _dot(a, b, out=None):
    if out is not None:
        raise UnsupportedError("np.dot(..., out=...) cannot carry derivatives")
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return a * b
    if na <= 2 and nb <= 2:
        return matmul_p(a, b)
    # N-D: a sum over the last axis of a and the second-to-last of b (the last if 1-D)
    return _tensordot(a, b, axes=([na - 1], [max(nb - 2, 0)]))


@register(np.inner)
def _inner(a, b):
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        return a * b
    if len(_shape(a)) <= 1 and len(_shape(b)) <= 1:
        return _dot(a, b)
    return np.matmul(a, np.swapaxes(b, -1, -2)) if len(_shape(b)) >= 2 else \
        np.matmul(a, b)


@register(np.vdot)
def _vdot(a, b):
    _log_conjugating("vdot")
    return _dot(np.reshape(a, (-1,)), np.reshape(b, (-1,)))


@register(np.outer)
def _outer(a, b, out=None):
    a, b = np.reshape(a, (-1, 1)), np.reshape(b, (1, -1))
    return a * b


def _parse_einsum(subscripts: str, nargs: int) -> tuple[list[str], str]:
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise UnsupportedError("np.einsum with '...' is not supported; write the axes out")
    if "->" in spec:
        ins, outs = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        outs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = ins.split(",")
    if len(inputs) != nargs:
        raise UnsupportedError("np.einsum: subscripts do not match the number of operands")
    return inputs, outs


def _free_letter(used: str) -> str:
    return next(c for c in string.ascii_letters if c not in used)


def _einsum_jvp(primals, tangents, out, *, spec):
    inputs, outs = _parse_einsum(spec, len(primals))
    z = _free_letter(spec)
    total = None
    for i, t in enumerate(tangents):
        if t is None:
            continue
        terms = [z + s if j == i else s for j, s in enumerate(inputs)]
        ops = [t if j == i else p for j, p in enumerate(primals)]
        term = einsum_p(*ops, spec=",".join(terms) + "->" + z + outs)
        total = term if total is None else total + term
    return total


def _einsum_vjp(primals, out, g, *, spec):
    inputs, outs = _parse_einsum(spec, len(primals))
    bars = []
    for i, target in enumerate(inputs):
        others = [s for j, s in enumerate(inputs) if j != i]
        avail = set(outs).union(*others) if others else set(outs)
        kept = "".join(c for c in target if c in avail)
        ops = [g] + [p for j, p in enumerate(primals) if j != i]
        bar = einsum_p(*ops, spec=",".join([outs, *others]) + "->" + kept)
        shape = _shape(primals[i])
        bshape = tuple(shape[target.index(c)] if c in kept else 1 for c in target)
        bars.append(np.broadcast_to(np.reshape(bar, bshape), shape))
    return tuple(bars)


einsum_p = _row("einsum", lambda *ops, spec: np.einsum(spec, *ops), _einsum_jvp, _einsum_vjp)


def _expand_ellipsis(spec: str, shapes: list[tuple[int, ...]]) -> str:
    """``...`` written out with unused letters (right-aligned broadcast axes), explicit."""
    ins, arrow, outs = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise UnsupportedError("np.einsum: subscripts do not match the number of operands")
    counts = []
    for term, shape in zip(terms, shapes, strict=True):
        n = len(shape) - (len(term) - 3) if "..." in term else 0
        if n < 0 or term.replace("...", "").count("."):
            raise ValueError(f"np.einsum: subscripts {term!r} do not fit an operand of "
                             f"shape {shape}")
        counts.append(n)
    free = [c for c in string.ascii_letters if c not in spec]
    m = max(counts)
    if m > len(free):
        raise UnsupportedError("np.einsum: too many axes under '...'")
    ell = "".join(free[:m])
    terms = [t.replace("...", ell[m - n:]) for t, n in zip(terms, counts, strict=True)]
    if arrow:
        if "..." not in outs and m:
            raise ValueError("np.einsum: the output has no '...' for the broadcast axes")
        outs = outs.replace("...", ell)
    else:
        letters = ins.replace(",", "").replace(".", "")
        outs = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ",".join(terms) + "->" + outs


def _broadcast_labels(terms: list[str], operands: tuple) -> list:
    """Operands broadcast where a label has length 1 in one and n > 1 in another (NumPy's
    einsum broadcasts those; the rules need equal lengths)."""
    sizes: dict[str, int] = {}
    for term, op in zip(terms, operands, strict=True):
        for c, n in zip(term, _shape(op), strict=False):
            if n != 1:
                sizes[c] = n
    out = []
    for term, op in zip(terms, operands, strict=True):
        shape = _shape(op)
        target = tuple(sizes.get(c, 1) if n == 1 else n
                       for c, n in zip(term, shape, strict=False))
        out.append(np.broadcast_to(op, target) if len(term) == len(shape) and
                   target != shape else op)
    return out


def _interleaved(args: tuple) -> tuple[str, list]:
    """``einsum(op0, sublist0, op1, sublist1, ..., [sublistout])`` as a subscripts string."""
    args = list(args)
    out = args.pop() if len(args) % 2 else None

    def letters(sub: Any) -> str:
        return "".join("..." if s is Ellipsis else string.ascii_letters[int(s)] for s in sub)

    spec = ",".join(letters(sub) for sub in args[1::2])
    return (spec if out is None else spec + "->" + letters(out)), args[0::2]


def _diagonals(term: str, op: Any) -> tuple[str, Any]:
    """A term with a repeated index (``ii``, ``iij``): the operand's diagonal over those
    axes, the index kept once (first axis), like NumPy's einsum does."""
    while len(set(term)) != len(term):
        c = next(c for c in term if term.count(c) > 1)
        at = [i for i, d in enumerate(term) if d == c]
        rest = [i for i in range(len(term)) if i not in at]
        op = _transpose_to(op, at + rest)
        n = _shape(op)[0]
        ar = np.arange(n)
        op = getitem(op, (ar,) * len(at))
        term = c + "".join(term[i] for i in rest)
    return term, op


def _transpose_to(op: Any, order: list[int]) -> Any:
    return op if order == sorted(order) else np.transpose(op, order)


@register(np.einsum)
def _einsum(*operands, **kwargs):
    subscripts, operands = (operands[0], list(operands[1:])) if isinstance(operands[0], str) \
        else _interleaved(operands)
    kwargs.pop("optimize", None)
    if kwargs:
        raise UnsupportedError(f"np.einsum with {', '.join(kwargs)} is not supported")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        spec = _expand_ellipsis(spec, [_shape(op) for op in operands])
    inputs, outs = _parse_einsum(spec, len(operands))
    if any(len(set(t)) != len(t) for t in inputs):
        pairs = [_diagonals(t, op) for t, op in zip(inputs, operands, strict=True)]
        inputs, operands = [t for t, _ in pairs], [op for _, op in pairs]
        spec = ",".join(inputs) + "->" + outs
    return einsum_p(*_broadcast_labels(inputs, operands), spec=spec)


@register(np.tensordot)
def _tensordot(a, b, axes=2):
    na, nb = len(_shape(a)), len(_shape(b))
    if np.ndim(axes) == 0:
        n = int(axes)
        ax_a, ax_b = list(range(na - n, na)), list(range(n))
    else:
        ax_a, ax_b = ([int(i)] if np.ndim(i) == 0 else [int(j) for j in i] for i in axes)
        ax_a, ax_b = [i % na for i in ax_a], [i % nb for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise ValueError("shape-mismatch for sum")
    sa, sb = string.ascii_letters[:na], list(string.ascii_letters[na:na + nb])
    for i, j in zip(ax_a, ax_b, strict=True):
        sb[j] = sa[i]
    outs = [sa[i] for i in range(na) if i not in ax_a] + \
        [sb[j] for j in range(nb) if j not in ax_b]
    return einsum_p(a, b, spec=f"{sa},{''.join(sb)}->{''.join(outs)}")


@register(np.kron)
def _kron(a, b):
    sa, sb = _shape(a), _shape(b)
    d = max(len(sa), len(sb))
    sa, sb = (1,) * (d - len(sa)) + tuple(sa), (1,) * (d - len(sb)) + tuple(sb)
    a2 = np.reshape(a, tuple(v for n in sa for v in (n, 1)))
    b2 = np.reshape(b, tuple(v for n in sb for v in (1, n)))
    return np.reshape(a2 * b2, tuple(m * n for m, n in zip(sa, sb, strict=True)))



# -- linear algebra --------------------------------------------------------------------------
#
# Rows for inv, solve, det, slogdet and cholesky, on stacks of matrices (..., n, n) like
# NumPy. Their rules call np.linalg and matmul again, so they run on duals (Hessians) and,
# with transposes rather than conjugates, on the complex step. det and slogdet differentiate
# through the inverse: the matrix must be invertible.

def _mT(x: Any) -> Any:  # noqa: N802
    return np.swapaxes(x, -1, -2)


def _inv_jvp(primals, tangents, out, **_):
    return -np.matmul(np.matmul(out, tangents[0]), out)


def _inv_vjp(primals, out, g, **_):
    out_t = _mT(out)
    return (-np.matmul(np.matmul(out_t, g), out_t),)


inv_p = _row("inv", np.linalg.inv, _inv_jvp, _inv_vjp)


@register(np.linalg.inv)
def _inv(a):
    return inv_p(a)


def _solve_jvp(primals, tangents, out, **_):
    (a, b), (ta, tb) = primals, tangents
    nd = len(_shape(out))
    rhs = None if tb is None else align(tb, _shape(b), nd)
    if ta is not None:
        term = np.matmul(align(ta, _shape(a), nd), out)
        rhs = -term if rhs is None else rhs - term
    k = _k(rhs)
    return np.broadcast_to(np.linalg.solve(a, rhs), (k, *_shape(out)))


def _solve_vjp(primals, out, g, **_):
    a, b = primals
    gb = np.linalg.solve(_mT(a), g)
    return unbroadcast(-np.matmul(gb, _mT(out)), _shape(a)), unbroadcast(gb, _shape(b))


#: x = solve(a, b) for a stack of matrices b (..., n, m); a 1-D b is made a column first
solve_p = _row("solve", np.linalg.solve, _solve_jvp, _solve_vjp)


@register(np.linalg.solve)
def _solve(a, b):
    if len(_shape(b)) == 1:  # NumPy >= 2: a vector only when b is exactly 1-D
        x = solve_p(a, np.reshape(b, (_shape(b)[0], 1)))
        return np.reshape(x, _shape(x)[:-1])
    return solve_p(a, b)


def _inv_t(a: Any) -> Any:
    """``inv(a).T``: the derivative of log|det a|."""
    try:
        return _mT(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        raise UnsupportedError(
            "np.linalg.det/slogdet of a singular matrix: diffcheck differentiates them through "
            "the inverse (d det A = det A tr(A^-1 dA)), which does not exist here; check at a "
            "non-singular point (or the check uses finite differences as its reference)"
        ) from None


def _logdet_jvp(primals, tangents, out, **_):
    return np.sum(_inv_t(primals[0]) * tangents[0], axis=(-2, -1))


def _logdet_vjp(primals, out, g, **_):
    return (np.reshape(g, _shape(out) + (1, 1)) * _inv_t(primals[0]),)


det_p = _row("det", np.linalg.det,
             lambda p, t, out, **_: out * _logdet_jvp(p, t, out),
             lambda p, out, g, **_: _logdet_vjp(p, out, g * out))

#: the log|det| half of slogdet (its sign is piecewise constant)
slogdet_p = _row("slogdet", lambda a: np.linalg.slogdet(a)[1], _logdet_jvp, _logdet_vjp)

_SlogdetResult = type(np.linalg.slogdet(np.eye(1)))


@register(np.linalg.det)
def _det(a):
    return det_p(a)


@register(np.linalg.slogdet)
def _slogdet(a):
    _log_conjugating("linalg.slogdet")  # log|det| of a complex matrix is not analytic
    sign = np.linalg.slogdet(strip(a))[0]
    logabsdet = slogdet_p(a)
    return (sign, logabsdet) if _SlogdetResult is tuple else _SlogdetResult(sign, logabsdet)


def _chol_masks(out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower triangle, strictly lower triangle, and the lower triangle with the diagonal
    halved (Phi in Murray 2016, arXiv:1602.07527), in the dtype of the factor ``out``."""
    n, dtype = _shape(out)[-1], np.result_type(strip(out), np.float16)
    low = np.tri(n, dtype=dtype)
    strict = np.tri(n, k=-1, dtype=dtype)
    return low, strict, low - np.eye(n, dtype=dtype) * dtype.type(0.5)


def _cholesky_jvp(primals, tangents, out, **_):
    # NumPy reads the lower triangle only: da -> s = tril(da) + tril(da, -1).T, then
    # dL = L Phi(L^-1 s L^-T)
    low, strict, phi = _chol_masks(out)
    t = tangents[0]
    sym = t * low + _mT(t * strict)
    y = np.linalg.solve(out, sym)
    z = _mT(np.linalg.solve(out, _mT(y)))
    return np.matmul(out, z * phi)


def _cholesky_vjp(primals, out, g, **_):
    # the transpose of the jvp, step by step
    low, strict, phi = _chol_masks(out)
    out_t = _mT(out)
    p = np.matmul(out_t, g) * phi
    q = np.linalg.solve(out_t, p)
    m = _mT(np.linalg.solve(out_t, _mT(q)))
    return (m * low + _mT(m) * strict,)


cholesky_p = _row("cholesky", np.linalg.cholesky, _cholesky_jvp, _cholesky_vjp)


@register(np.linalg.cholesky)
def _cholesky(a, /, *, upper=False):
    _log_conjugating("linalg.cholesky")  # complex input means a Hermitian factorisation
    if upper:  # NumPy reads the upper triangle: the transpose of the lower factor of a.T
        return _mT(cholesky_p(_mT(a)))
    return cholesky_p(a)


@register(np.linalg.multi_dot)
def _multi_dot(arrays, *, out=None):
    if out is not None:
        raise UnsupportedError("np.linalg.multi_dot(..., out=...) cannot carry derivatives")
    arrays = list(arrays)
    y = arrays[0]
    for a in arrays[1:]:
        y = np.matmul(y, a)
    return y


@register(np.linalg.matrix_power)
def _matrix_power(a, n):
    n = int(n)
    if n < 0:
        a, n = np.linalg.inv(a), -n
    shape = _shape(a)
    if n == 0:
        return np.broadcast_to(np.eye(shape[-1], dtype=np.result_type(strip(a), np.float16)),
                               shape).copy()
    y, base = None, a
    while n:  # binary powering, like NumPy
        if n & 1:
            y = base if y is None else np.matmul(y, base)
        n >>= 1
        if n:
            base = np.matmul(base, base)
    return y


def _vector_norm(x: Any, ord: Any, axis: Any, keepdims: bool) -> Any:  # noqa: A002
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return np.max(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(np.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:  # a count: piecewise constant, no derivative
        xv = strip(x)
        return np.sum(xv != 0, axis=axis, keepdims=keepdims).astype(np.real(xv).dtype)
    if ord == 1:
        return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
    p = float(ord)
    return np.power(np.sum(np.power(np.abs(x), p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, int], keepdims: bool) -> Any:  # noqa: A002
    row, col = axes
    if ord is None or ord == "fro":
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        sums = np.sum(np.abs(x), axis=inner, keepdims=True)
        y = (np.max if ord > 0 else np.min)(sums, axis=outer, keepdims=True)
        return y if keepdims else np.squeeze(y, axis=axes)
    if ord in ("nuc", 2, -2):
        raise UnsupportedError(f"np.linalg.norm with ord={ord!r} of a matrix needs singular "
                               "values, which diffcheck does not differentiate; use 'fro', "
                               "1, -1, inf or -inf")
    raise ValueError("Invalid norm order for matrices.")


@register(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    _log_conjugating("linalg.norm")
    nd = len(_shape(x))
    if axis is None and ord is None:
        y = np.sqrt(np.sum(x * x))
        return np.reshape(y, (1,) * nd) if keepdims else y
    axes = tuple(range(nd)) if axis is None else \
        (int(axis),) if np.ndim(axis) == 0 else tuple(int(a) for a in axis)
    axes = tuple(a % nd for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


if hasattr(np.linalg, "vector_norm"):  # NumPy >= 2
    @register(np.linalg.vector_norm)
    def _vector_norm_api(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
        _log_conjugating("linalg.vector_norm")
        nd = len(_shape(x))
        if axis is None:
            y = _vector_norm(np.reshape(x, (-1,)), ord, 0, False)
            return np.reshape(y, (1,) * nd) if keepdims else y
        return _vector_norm(x, ord, axis, keepdims)

    @register(np.linalg.matrix_norm)
    def _matrix_norm_api(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
        _log_conjugating("linalg.matrix_norm")
        nd = len(_shape(x))
        return _matrix_norm(x, ord, (nd - 2, nd - 1), keepdims)
