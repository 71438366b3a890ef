"""Result types of the optimizer core: :class:`OptimizeResult`, :class:`History`, status codes.

Everything here is a JAX pytree of arrays so that a whole solve can cross ``jax.jit`` and
``jax.vmap``; human-readable text (``message``, :func:`format_iterations`) is derived afterwards.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

SUCCESS = 0
MAXITER = 1
LINESEARCH_FAILED = 2
NONFINITE = 3
STAGNATION = 4
SINGULAR = 5
SADDLE = 6
LOCAL_MINIMUM = 7
UNBOUNDED = 8
DEGENERATE = 9

NAMES = {SUCCESS: "SUCCESS", MAXITER: "MAXITER", LINESEARCH_FAILED: "LINESEARCH_FAILED",
         NONFINITE: "NONFINITE", STAGNATION: "STAGNATION", SINGULAR: "SINGULAR",
         SADDLE: "SADDLE", LOCAL_MINIMUM: "LOCAL_MINIMUM", UNBOUNDED: "UNBOUNDED",
         DEGENERATE: "DEGENERATE"}

MESSAGES = {
    SUCCESS: "Optimization terminated successfully: the gradient norm is at most tol.",
    MAXITER: "Maximum number of iterations reached before the gradient norm fell below tol.",
    LINESEARCH_FAILED: (
        "Line search failed: no step decreased the objective (the search along the "
        "steepest-descent direction, or the trust region, shrank to nothing), and finite "
        "differences of the objective along the gradient contradict it (is the gradient "
        "consistent with the function? a kink or a wrong custom derivative does this)."
    ),
    NONFINITE: "The objective, gradient or Hessian is NaN or infinite at the current point.",
    STAGNATION: (
        "Stopped on stagnation: no further decrease is possible at this floating-point "
        "precision (the gradient agrees with the function, but the decrease it promises is "
        "below rounding), and the gradient norm is still above tol (loosen tol or use float64)."
    ),
    SINGULAR: (
        "The Hessian (Jacobian for root) is singular: the Newton step is undefined "
        "(method='newton-damped' or 'newton-trust' handle singular and indefinite Hessians)."
    ),
    SADDLE: (
        "Converged to a stationary point with negative curvature (a saddle or a maximum, not "
        "a minimum); restart from a perturbed point (method='newton-trust' leaves such points "
        "along the direction of negative curvature)."
    ),
    LOCAL_MINIMUM: (
        "Converged to a local minimum whose value is above the given lower bound f_lower: "
        "a stationary point that is not the global minimum."
    ),
    UNBOUNDED: (
        "The objective appears unbounded below: it fell more than 1/eps times its starting "
        "scale below its starting value (or an iterate became infinite) along the search "
        "direction; the problem has no minimum there (check the model, or add a bound or a "
        "regularising term)."
    ),
    DEGENERATE: (
        "The gradient norm is at most tol, but the Hessian there is singular to working "
        "precision (after scaling its diagonal to one): a flat region, a degenerate "
        "stationary point or a minimum at infinity, not a certified local minimum (pass "
        "f_lower if the value reached is known to be optimal)."
    ),
}

ROOT_MESSAGES = {
    **MESSAGES,
    SUCCESS: "The root was found: the residual norm ||f(x)|| is at most tol.",
    MAXITER: "Maximum number of iterations reached before ||f(x)|| fell below tol.",
    STAGNATION: (
        "Stopped on stagnation: ||f(x)|| no longer decreases at this floating-point precision "
        "but is still above tol."
    ),
    SINGULAR: "The Jacobian is singular: the Newton step is undefined.",
}


class History(NamedTuple):
    """Per-iteration record of a solve, fixed size so that it jits.

    Row ``k`` describes iterate ``x_k`` (row 0 is the starting point); rows past ``nit`` are NaN.

    Attributes:
        f: objective value ``f(x_k)`` (for ``root``: ``||F(x_k)||² / 2``), shape ``(maxiter + 1,)``.
        gnorm: ``||∇f(x_k)||₂`` (for ``root``: ``||F(x_k)||₂``).
        step: ``||x_k − x_{k−1}||₂`` (NaN in row 0).
        x: the flattened iterates, shape ``(maxiter + 1, n)``.
    """

    f: Any
    gnorm: Any
    step: Any
    x: Any


class OptimizeResult(NamedTuple):
    """Outcome of :func:`minimize` or :func:`root`, with SciPy's field names.

    A NamedTuple of arrays, hence a JAX pytree: it can be returned from ``jax.jit`` and batched
    by ``jax.vmap``. ``message`` is a property computed from the integer ``status``.

    Attributes:
        x: the final iterate (same pytree structure as ``x0``).
        fun: the objective at ``x`` (for ``root``: the residual ``F(x)``).
        jac: the gradient at ``x`` (for ``root``: the Jacobian ``J(x)``).
        nit: number of iterations.
        nfev: number of function evaluations (each together with its gradient).
        njev: number of gradient (Jacobian) evaluations.
        nhev: number of Hessian evaluations (Newton methods; gd, BFGS and L-BFGS count the one
            that certifies their answer).
        success: ``status == 0``: the gradient norm is at most ``tol`` and no defect was detected.
        status: an integer, see ``MESSAGES``.
        history: a :class:`History` when requested, else ``None``.
    """

    x: Any
    fun: Any
    jac: Any
    nit: Any
    nfev: Any
    njev: Any
    nhev: Any
    success: Any
    status: Any
    history: History | None = None

    _messages = MESSAGES

    @property
    def message(self) -> str | list:
        """The explanation of ``status`` (a nested list of strings for a batched result)."""
        table = self._messages
        status = np.asarray(self.status)
        if status.ndim == 0:
            return table.get(int(status), f"unknown status {int(status)}")
        return np.vectorize(lambda s: table.get(int(s), f"unknown status {s}"), otypes=[object])(
            status
        ).tolist()


class RootResult(OptimizeResult):
    """:class:`OptimizeResult` of :func:`root`: ``fun`` is ``F(x)``, ``jac`` is ``J(x)``."""

    _messages = ROOT_MESSAGES


def format_iterations(history: History | OptimizeResult, *, every: int | None = 1,
                      head: int = 5, tail: int = 5) -> str:
    """Render an iteration table ``k, f, ||g||, step`` from a recorded history.

    Args:
        history: a :class:`History`, or an :class:`OptimizeResult` from
            ``minimize(..., history=True)``.
        every: ``1`` (default) prints every row; ``K > 1`` prints the first ``head`` rows,
            every K-th and the last ``tail``, a ``...`` line where rows are left out and a
            summary line; ``None`` chooses K (1, 2 or 5 times a power of ten) so that about
            twenty rows are shown.
        head, tail: rows always shown at the start and at the end when rows are left out.

    Returns:
        The table as text.

    Example:
        >>> import jax.numpy as jnp
        >>> from diffcheck.optim import minimize, format_iterations
        >>> res = minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(2), method="newton",
        ...                history=True)
        >>> print(format_iterations(res).splitlines()[0])
            k              f         ||g||          step
    """
    if isinstance(history, OptimizeResult):
        if history.history is None:
            raise _usage_error("the result has no history: call minimize(..., history=True)")
        history = history.history
    f, g, s = (np.asarray(a, dtype=float) for a in (history.f, history.gnorm, history.step))
    if f.ndim != 1:
        raise _usage_error("format_iterations takes one (not a batched) history")
    if every is not None and every < 1:
        raise _usage_error(f"every must be at least 1, got {every}")
    rows = int(np.sum(~(np.isnan(f) & np.isnan(g))))
    every = _auto_every(rows) if every is None else every
    shown = [k for k in range(rows) if every == 1 or k < head or k >= rows - tail or k % every == 0]
    lines = [f"{'k':>5} {'f':>14} {'||g||':>13} {'step':>13}"]
    for prev, k in zip([-1, *shown], shown, strict=False):
        if k > prev + 1:
            lines.append(f"{'...':>5}")
        step = "" if np.isnan(s[k]) else f"{s[k]:13.4e}"
        lines.append(f"{k:5d} {f[k]:14.7e} {g[k]:13.4e} {step:>13}")
    if len(shown) < rows:
        lines.append(f"({len(shown)} of {rows} rows: the first {head}, every {_ordinal(every)} "
                     f"and the last {tail})")
    return "\n".join(lines)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _auto_every(rows: int, target: int = 20) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that shows at most ``target`` rows in between."""
    if rows <= target + 10:
        return 1
    step = 1
    while rows / step > target:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def observed_order(errors: Any) -> np.ndarray:
    """Observed order of convergence ``q_k = log(e_{k+1}/e_k) / log(e_k/e_{k−1})``.

    ``q ≈ 1`` is linear, ``q ≈ 2`` quadratic (Newton) convergence. Zero errors are dropped.

    Example:
        >>> import numpy as np
        >>> observed_order(np.array([1e-1, 1e-2, 1e-4, 1e-8])).round(3).tolist()
        [2.0, 2.0]
    """
    e = np.asarray(errors, dtype=float)
    e = e[np.isfinite(e) & (e > 0)]
    if e.size < 3:
        return np.zeros(0)
    r = np.log(e[1:] / e[:-1])
    return r[1:] / r[:-1]


def _usage_error(message: str) -> Exception:
    from diffcheck.errors import UsageError

    return UsageError(message)
