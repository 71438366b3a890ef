r"""``fit``: minibatch training loops where one epoch is one ``lax.scan``.

Sampling (lecture notes, "how to pick data k"): ``"replacement"`` draws every minibatch
index uniformly with replacement; ``"shuffle"`` visits each example once per epoch in a fresh
random order (without replacement; the ``N mod batch_size`` leftovers of an epoch are skipped).
Epoch ``e`` visits ``P(A_e(0)), P(A_e(1)), …`` where ``P`` is one random permutation drawn per
``fit`` call (a keyed swap-or-not bijection, O(N) elementwise work, no sort) and
``A_e(x) = (a_e x + b_e) mod N`` a random affine bijection drawn per epoch (``gcd(a_e, N) = 1``):
a fresh order every epoch for O(batch) work per step, where ``jax.random.permutation`` (a sort
of N keys) would cost more than the whole epoch.

``devices=`` shards each minibatch across devices (data parallel with ``jax.sharding``): the
parameters are replicated, XLA all-reduces the gradient, and the trajectory is the
single-device one up to the order of floating-point sums.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffcheck.optim.first_order import apply_updates
from diffcheck.optim.schedules import average_init, average_update

SAMPLINGS = ("shuffle", "replacement")
_ROUNDS = 12


class FitHistory(NamedTuple):
    """``loss[e, i]``: minibatch loss at step ``i`` of epoch ``e`` (before that step's update)."""

    loss: jax.Array

    @property
    def epoch_loss(self) -> jax.Array:
        """Mean minibatch loss of each epoch."""
        return self.loss.mean(axis=-1)


def _mix(v: jax.Array, k: jax.Array) -> jax.Array:
    v = (v ^ k) * jnp.uint32(0x9E3779B1)
    v = v ^ (v >> 16)
    v = v * jnp.uint32(0x85EBCA6B)
    return v ^ (v >> 13)


class _PermKey(NamedTuple):
    shifts: jax.Array  # (rounds,) in [0, n)
    salts: jax.Array  # (rounds,) uint32


def _perm_key(key: jax.Array, n: int) -> _PermKey:
    k1, k2 = jax.random.split(key)
    shifts = jax.random.randint(k1, (_ROUNDS,), 0, n, dtype=jnp.int32).astype(jnp.uint32)
    return _PermKey(shifts, jax.random.bits(k2, (_ROUNDS,), jnp.uint32))


def _permute(pk: _PermKey, pos: jax.Array, n: int) -> jax.Array:
    """Image of positions ``pos`` under the keyed swap-or-not bijection of ``[0, n)``."""
    x = pos.astype(jnp.uint32)
    n32 = jnp.uint32(n)
    for r in range(_ROUNDS):
        k = pk.shifts[r]
        partner = jnp.where(x <= k, k - x, k + n32 - x)  # (K - x) mod n: an involution
        flip = (_mix(jnp.maximum(x, partner), pk.salts[r]) >> 7) & jnp.uint32(1)
        x = jnp.where(flip == 1, partner, x)
    return x.astype(jnp.int32)


def _multipliers(n: int) -> np.ndarray:
    """Multipliers ``a`` coprime with ``n`` and small enough that ``a * x`` fits in uint32."""
    top = max(2, min(1 << 16, (2**32 - 1) // max(n, 1)))
    a = np.arange(1, top, dtype=np.int64)
    return a[np.gcd(a, n) == 1].astype(np.uint32)


def _affine_key(key: jax.Array, n: int) -> jax.Array:
    table = jnp.asarray(_multipliers(n))
    k1, k2 = jax.random.split(key)
    a = table[jax.random.randint(k1, (), 0, table.shape[0])]
    return jnp.stack([a, jax.random.randint(k2, (), 0, n).astype(jnp.uint32)])


def _affine(ak: jax.Array, pos: jax.Array, n: int) -> jax.Array:
    """``(a * pos + b) mod n``: a bijection of ``[0, n)`` because ``gcd(a, n) = 1``."""
    n32 = jnp.uint32(n)
    y = (ak[0] * pos.astype(jnp.uint32)) % n32 + ak[1]
    return jnp.where(y >= n32, y - n32, y).astype(jnp.int32)


def random_permutation(key: jax.Array, n: int) -> jax.Array:
    """A keyed pseudo-random permutation of ``0..n-1`` in O(n) elementwise work, no sort.

    Swap-or-not shuffle (Hoang, Morris & Rogaway 2012): each of the rounds pairs ``x`` with
    ``(K_r - x) mod n`` and swaps the pair when a keyed hash bit of the pair is set; each round
    is an involution, so the composition is a bijection of ``[0, n)`` for any ``n``. ``fit``
    evaluates it only at each minibatch's positions, so shuffling costs no O(n) pass.

    Example:
        >>> import jax, numpy as np
        >>> p = random_permutation(jax.random.key(0), 10)
        >>> sorted(np.asarray(p).tolist()) == list(range(10))
        True
    """
    return _permute(_perm_key(key, n), jnp.arange(n), n)


@functools.partial(jax.jit, static_argnames=("loss", "update", "batch_size", "epochs",
                                             "sampling", "devices", "average", "unroll"))
def _fit(params, opt_state, data, key, *, loss, update, batch_size, epochs, sampling, devices,
         average, unroll):
    n = data[0].shape[0]
    steps = n // batch_size
    constrain = lambda b: b  # noqa: E731
    if devices is not None:
        mesh = jax.sharding.Mesh(np.array(devices), ("data",))
        batch_sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        constrain = lambda b: jax.lax.with_sharding_constraint(b, batch_sh)  # noqa: E731
        params = jax.lax.with_sharding_constraint(params, repl)
    value_and_grad = jax.value_and_grad(loss)

    def step(carry, xs):
        p, s, avg, data, ak = carry
        i, idx = xs
        if sampling == "shuffle":
            idx = _affine(ak, i * batch_size + jnp.arange(batch_size, dtype=jnp.int32), n)
            idx = jnp.take(base, idx, mode="clip")
        batch = constrain(tuple(jnp.take(a, idx, axis=0, mode="clip") for a in data))
        value, grads = value_and_grad(p, batch)
        updates, s = update(grads, s, p)
        p = apply_updates(p, updates)
        if average:
            avg = average_update(avg, p)
        return (p, s, avg, data, ak), value

    def epoch(carry, e):
        key_e = jax.random.fold_in(key, e)
        if sampling == "replacement":
            idx = jax.random.randint(key_e, (steps, batch_size), 0, n, dtype=jnp.int32)
        else:
            idx = None
        carry = (*carry, _affine_key(key_e, n))
        carry, losses = lax.scan(step, carry, (jnp.arange(steps), idx), unroll=unroll)
        return carry[:4], losses

    shuffle = sampling == "shuffle"
    base = random_permutation(jax.random.fold_in(key, 2**31 - 1), n) if shuffle else None
    avg = average_init(params) if average else None
    (params, opt_state, avg, _), losses = lax.scan(epoch, (params, opt_state, avg, data),
                                                   jnp.arange(epochs))
    return (avg.mean if average else params), opt_state, losses


def fit(
    loss: Callable[[Any, tuple], jax.Array],
    params: Any,
    data: Sequence[jax.Array],
    optimizer: Any,
    *,
    batch_size: int,
    epochs: int,
    sampling: str = "shuffle",
    key: jax.Array,
    devices: Sequence[Any] | None = None,
    average: bool = False,
    unroll: int = 1,
    check: bool = False,
) -> tuple[Any, FitHistory]:
    r"""Minibatch training: ``epochs`` passes of ``optimizer`` over ``data``, fused in one jit.

    Each step takes a minibatch ``batch = tuple(a[idx] for a in data)``, computes
    ``loss(params, batch)`` and its gradient, and applies ``optimizer.update``. Any optax
    ``GradientTransformation`` works as well as ``diffcheck.optim``'s.

    Args:
        loss: ``loss(params, batch) -> scalar`` (a mean over the minibatch).
        params: initial parameters (a pytree).
        data: a tuple of arrays sharing their first axis ``N``.
        optimizer: an ``(init, update)`` transformation (``adam(1e-3)``, ``optax.sgd(…)``).
        batch_size: examples per step; ``N // batch_size`` steps per epoch.
        epochs: number of epochs.
        sampling: ``"shuffle"`` (without replacement, new order each epoch) or
            ``"replacement"``.
        key: a ``jax.random`` key.
        devices: shard each minibatch over these devices (``batch_size`` must be divisible by
            their number); ``None`` runs on the default device.
        average: return the Polyak–Ruppert average of the iterates instead of the last one.
        unroll: ``lax.scan`` unroll factor of the inner loop.
        check: before training, verify the gradient of ``loss`` at ``params`` on the first
            batch of ``data`` (its first ``batch_size`` examples) with
            :func:`diffcheck.check_grads` (reverse mode); a wrong one raises
            :class:`diffcheck.DerivativeError`. A ``UsageError`` inside jit/vmap.

    Returns:
        ``(params, history)`` with ``history.loss`` of shape ``(epochs, N // batch_size)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from diffcheck.optim import fit, sgd
        >>> X = jnp.arange(8.0)[:, None]; y = 3.0 * X[:, 0]
        >>> loss = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
        >>> w, hist = fit(loss, jnp.zeros(1), (X, y), sgd(0.02), batch_size=4, epochs=50,
        ...               key=jax.random.key(0))
        >>> round(float(w[0]), 3)
        3.0
    """
    from diffcheck.errors import UsageError

    data = tuple(jnp.asarray(a) for a in data)
    if not data or any(a.ndim == 0 for a in data):
        raise UsageError("data must be a non-empty tuple of arrays with a leading sample axis")
    n = data[0].shape[0]
    if any(a.shape[0] != n for a in data):
        raise UsageError(f"data arrays must share their first axis; got {[a.shape for a in data]}")
    if sampling not in SAMPLINGS:
        raise UsageError(f"sampling must be 'shuffle' or 'replacement', got {sampling!r}")
    if not 1 <= int(batch_size) <= n or int(epochs) < 0:
        raise UsageError(f"need 1 <= batch_size <= N = {n} and epochs >= 0")
    if devices is not None:
        devices = tuple(devices)
        if not devices or int(batch_size) % len(devices):
            raise UsageError(f"batch_size {batch_size} must be divisible by the number of "
                             f"devices ({len(devices)})")
    if check:  # verified gradients feed the optimizer
        from diffcheck.jaxcheck import verify

        batch = tuple(a[:int(batch_size)] for a in data)
        verify(loss, params, (batch,), mode="rev", what="loss", caller="fit")
    params_out, _, losses = _fit(params, optimizer.init(params), data, key, loss=loss,
                                 update=optimizer.update, batch_size=int(batch_size),
                                 epochs=int(epochs), sampling=sampling, devices=devices,
                                 average=bool(average), unroll=int(unroll))
    return params_out, FitHistory(losses)
