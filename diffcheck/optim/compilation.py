"""Compilation settings of the optimizer core: the persistent cache and XLA options.

A solve is one XLA program per problem (objective, shapes, method, static options), compiled
on its first call. Two things shorten that first call:

* :func:`enable_compilation_cache` switches on JAX's persistent compilation cache, so a later
  process that solves the same problem loads the compiled program from disk instead of
  compiling it again. The ``diffcheck optimize`` command turns it on; the library leaves it to
  the caller (it writes to disk). The directory is :func:`default_cache_dir` unless given.
* :func:`compiler_options`: on a CPU the solvers are compiled with XLA's classic loop emitter
  (``xla_cpu_use_fusion_emitters=False``), which compiles a solve in about half the time and
  runs it as fast or faster (measured in ``benchmarks/bench_optim.py``); inside
  :func:`fast_compile` (used by the command line for its one-off small solves) with LLVM's
  optimisation level 0 and one code-generation unit, which halves the compile time again at
  the price of slower arithmetic (irrelevant for a few dozen iterations on two variables,
  not for batches). Otherwise with optimisation level 1, which compiles a fifth faster than
  the default level and runs L-BFGS on n = 1000 as fast.

Other backends get JAX's defaults. The options change how XLA generates code, not the
algorithm: results agree to rounding (a long, chaotic run such as gradient descent on
Rosenbrock's valley can still take a different number of iterations).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterator
from pathlib import Path

_FAST = contextvars.ContextVar("diffcheck_fast_compile", default=False)


def default_cache_dir() -> Path:
    """Where :func:`enable_compilation_cache` puts compiled programs by default.

    ``$DIFFCHECK_CACHE_DIR`` if set, else the user's cache directory: ``$XDG_CACHE_HOME`` or
    ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows, with
    ``diffcheck/jax`` appended.

    Example:
        >>> default_cache_dir().parts[-2:]
        ('diffcheck', 'jax')
    """
    if os.environ.get("DIFFCHECK_CACHE_DIR"):
        return Path(os.environ["DIFFCHECK_CACHE_DIR"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "diffcheck" / "jax"


def cache_disabled() -> bool:
    """True when ``$DIFFCHECK_CACHE`` is ``0``, ``off``, ``no`` or ``false`` (the test suite
    sets it, so that tests never write to the user's cache)."""
    return os.environ.get("DIFFCHECK_CACHE", "").strip().lower() in {"0", "off", "no", "false"}


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache for this process.

    Every program compiled afterwards (however short its compile) is stored under ``path``
    (default :func:`default_cache_dir`), and later processes load it instead of compiling.
    Returns the directory, or ``None`` when ``$DIFFCHECK_CACHE`` disables caching.

    Example:
        >>> import os, tempfile
        >>> os.environ["DIFFCHECK_CACHE"] = "off"
        >>> enable_compilation_cache(tempfile.mkdtemp()) is None
        True
        >>> del os.environ["DIFFCHECK_CACHE"]
    """
    if cache_disabled():
        return None
    import jax

    directory = Path(path).expanduser() if path is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


@contextlib.contextmanager
def fast_compile() -> Iterator[None]:
    """Compile the solves started inside this block for a short first call (see the module
    docstring): for one-off small problems, not for batches or large ``n``."""
    token = _FAST.set(True)
    try:
        yield
    finally:
        _FAST.reset(token)


def compiler_options() -> tuple[tuple[str, object], ...]:
    """XLA options for the solvers' ``jax.jit`` on the default backend (a hashable tuple)."""
    import jax

    if jax.default_backend() != "cpu":
        return ()
    if _FAST.get():
        return (("xla_cpu_use_fusion_emitters", False), ("xla_backend_optimization_level", 0),
                ("xla_llvm_disable_expensive_passes", True),
                ("xla_cpu_parallel_codegen_split_count", 1))
    return (("xla_cpu_use_fusion_emitters", False), ("xla_backend_optimization_level", 1))
