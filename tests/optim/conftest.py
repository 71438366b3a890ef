"""Test setup for diffcheck.optim: float64 on (the other modules' tests use NumPy, not JAX)."""

import pathlib
import sys

import jax

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

jax.config.update("jax_enable_x64", True)
