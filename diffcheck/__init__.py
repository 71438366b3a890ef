"""diffcheck: are your derivatives right? Then optimise with them.

>>> import diffcheck as dc
>>> dc.check_expression("x**2*y + (x+y)**2", at="x=1,y=2").ok
True

``dc.optim`` (JAX) and other heavy parts load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .check import check_expression
from .errors import (
    DerivativeError,
    DiffcheckError,
    DomainError,
    ParseError,
    ShapeError,
    UnsupportedError,
    UsageError,
)
from .parse import parse
from .program import Program

__version__ = "0.1.0"

# name -> module that defines it; loaded on first attribute access
_LAZY = {
    "optim": "diffcheck.optim",
    "strategies": "diffcheck.strategies",
    "trace": "diffcheck.trace",
    "cost": "diffcheck.cost",
    "check_gradient": "diffcheck.numpy_check",
    "check_jacobian": "diffcheck.numpy_check",
    "check_hessian": "diffcheck.numpy_check",
    "assert_gradient": "diffcheck.numpy_check",
    "assert_jacobian": "diffcheck.numpy_check",
    "assert_hessian": "diffcheck.numpy_check",
    "gradient": "diffcheck.numpy_check",
    "jacobian": "diffcheck.numpy_check",
    "hessian": "diffcheck.numpy_check",
    "taylor_test": "diffcheck.numpy_check",
    "supported_numpy": "diffcheck.engines.numpy_ops",
    "check_grads": "diffcheck.jaxcheck",  # JAX: imported on first use only
    "assert_grads": "diffcheck.jaxcheck",
}

__all__ = [
    "DerivativeError", "DiffcheckError", "DomainError", "ParseError", "ShapeError",
    "UnsupportedError", "UsageError", "Program", "check_expression", "parse", *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'diffcheck' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
