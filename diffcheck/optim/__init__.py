"""JAX optimizer core of diffcheck.

* :func:`minimize` (``gd``, ``newton``, ``newton-damped``, ``newton-trust``, ``bfgs``,
  ``lbfgs``; Armijo or strong Wolfe line search, or a trust region) and :func:`root` (Newton):
  one ``lax.while_loop`` each, jittable and ``vmap``-able, returning an
  :class:`OptimizeResult` with SciPy's field names.
* :mod:`~diffcheck.optim.problems`: the Moré–Garbow–Hillstrom test problems.
* :func:`enable_compilation_cache`: JAX's persistent compilation cache, opt-in.
* First-order transformations in optax's shape: :func:`sgd`, :func:`adagrad`, :func:`rmsprop`,
  :func:`adadelta`, :func:`adam`, :func:`adamw`, :func:`chain`, :func:`apply_updates`, schedules
  and iterate averaging.
* :func:`fit`: fused minibatch epochs (``lax.scan``), shuffling or sampling with replacement,
  optional data-parallel sharding.

Importing this module does not enable float64; pass float64 arrays under
``jax.enable_x64()`` (or set ``jax_enable_x64``) to solve in double precision.
"""

from diffcheck.optim import problems
from diffcheck.optim.compilation import default_cache_dir, enable_compilation_cache
from diffcheck.optim.first_order import (
    GradientTransformation,
    adadelta,
    adagrad,
    adam,
    adamw,
    add_decayed_weights,
    apply_updates,
    chain,
    identity,
    rmsprop,
    scale,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    sgd,
    trace,
)
from diffcheck.optim.fit import FitHistory, fit, random_permutation
from diffcheck.optim.minimize import METHODS, minimize
from diffcheck.optim.result import (
    History,
    OptimizeResult,
    RootResult,
    format_iterations,
    observed_order,
)
from diffcheck.optim.root import root
from diffcheck.optim.schedules import (
    AverageState,
    average_init,
    average_update,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    robbins_monro,
)

__all__ = [
    "METHODS", "AverageState", "FitHistory", "GradientTransformation", "History",
    "OptimizeResult", "RootResult", "adadelta", "adagrad", "adam", "adamw",
    "add_decayed_weights", "apply_updates", "average_init", "average_update", "chain",
    "constant_schedule", "cosine_decay_schedule", "default_cache_dir",
    "enable_compilation_cache", "exponential_decay", "fit",
    "format_iterations", "identity", "minimize", "observed_order", "problems",
    "random_permutation",
    "rmsprop", "robbins_monro", "root", "scale", "scale_by_adadelta", "scale_by_adam",
    "scale_by_learning_rate", "scale_by_rms", "scale_by_rss", "scale_by_schedule", "sgd",
    "trace",
]
