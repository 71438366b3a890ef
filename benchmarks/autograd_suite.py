"""autograd's own NumPy tests, run against diffcheck's forward and reverse engines.

Run: ``python benchmarks/autograd_suite.py [-v]``. Downloads autograd's source distribution
(``pip download --no-deps --no-binary :all: autograd``) into a temporary folder, and runs its
``test_numpy.py``, ``test_systematic.py``, ``test_scalar_ops.py`` and ``test_binary_ops.py``
with pytest, the ``autograd`` package replaced by a shim:

* ``autograd.numpy`` is NumPy itself (diffcheck traces plain NumPy code);
* ``check_grads(fun, argnum, modes, order)(*args)`` checks, for each argument in ``argnum``,
  the Jacobian by forward mode (``modes`` has ``"fwd"``) and by reverse mode (``"rev"``)
  against finite differences (``dc.jacobian(..., mode=...)``), and with ``order=2`` the
  Hessian of a random projection of the output by forward over forward and forward over
  reverse, times a random vector, against Richardson differences of the reverse-mode
  gradient along that vector; checks with complex inputs or outputs are counted apart
  (diffcheck differentiates real functions) and not run;
* ``grad``/``value_and_grad`` are ``dc.gradient(..., mode="reverse")``.

It prints the number of real-valued checks, how many pass, and each failure with its
reason. Nothing from autograd is kept in the repository.
"""

from __future__ import annotations

import glob
import itertools
import os
import subprocess
import sys
import tarfile
import tempfile
import traceback
import types
from collections import Counter

import numpy as np

import diffcheck as dc
from diffcheck.numpy_check import directional_difference

FILES = ("test_numpy.py", "test_systematic.py", "test_scalar_ops.py", "test_binary_ops.py")
#: tests of autograd's own API, which NumPy does not have (np.make_diagonal): not counted
AUTOGRAD_ONLY = ("test_make_diagonal", "test_diagonal")
RTOL, ATOL = 1e-5, 1e-6  # finite differences (Richardson) are far more accurate than this
HESS_RTOL, HESS_ATOL = 1e-4, 1e-5


class Tally:
    """Outcomes of the real-valued checks: (test, description) -> None or the error."""

    def __init__(self) -> None:
        self.results: list[tuple[str, str, str | None]] = []
        self.complex = 0
        self.test = "?"

    def record(self, what: str, error: str | None) -> None:
        self.results.append((self.test, what, error))


TALLY = Tally()


def _is_complex(*values) -> bool:
    return any(_is_complex(*v) if isinstance(v, list | tuple) else np.iscomplexobj(v)
               for v in values)


def _float_arg(x):
    return np.asarray(x, dtype=float) if np.ndim(x) else float(x)


def _one_argument(fun, args, kwargs, i, j=None):
    """``fun`` as a function of argument ``i`` (of its element ``j`` when it is a list or
    tuple of arrays, as autograd differentiates containers)."""
    def f(x):
        full = list(args)
        if j is None:
            full[i] = x
        else:
            part = list(args[i])
            part[j] = x
            full[i] = type(args[i])(part)
        y = fun(*full, **kwargs)
        if isinstance(y, list | tuple):  # several outputs (split, gradient): one vector
            return np.concatenate([np.ravel(v) for v in y])
        return y
    return f


def _small_step(f, x, h=1e-6):
    """autograd's own reference: central differences with one small step."""
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(x.shape)
        cols.append(np.ravel((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)))
    y = np.asarray(f(x))
    return np.stack(cols, axis=-1).reshape(y.shape + x.shape) if cols else \
        np.zeros(y.shape + x.shape)


def _compare(name: str, got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> None:
    if got.shape != ref.shape:
        raise AssertionError(f"{name}: shape {got.shape}, finite differences {ref.shape}")
    if not np.allclose(got, ref, rtol=rtol, atol=atol, equal_nan=False):
        err = np.max(np.abs(got - ref))
        raise AssertionError(f"{name} differs from finite differences by {err:.3g}")


def _check_one(f, x, modes, order) -> None:
    """Each mode's Jacobian against Richardson differences; where they disagree (their
    steps straddle a kink: sort, min, partition), against autograd's own small-step
    differences (rtol 1e-4)."""
    x = np.asarray(x, dtype=float)
    size = np.size(f(x))
    ref = dc.jacobian(f, x, mode="finite") if size else np.zeros(np.shape(f(x)) + x.shape)
    for mode, name in (("forward", "fwd"), ("reverse", "rev")):
        if name in modes:
            J = dc.jacobian(f, x, mode=mode)
            try:
                _compare(f"{mode} Jacobian", J, ref, RTOL, ATOL)
            except AssertionError:
                _compare(f"{mode} Jacobian (small steps)", J, _small_step(f, x), 1e-4, 1e-6)
    if order > 1 and size:  # second order: Hessian-vector products of a random projection
        rng = np.random.default_rng(0)
        w, v = rng.normal(size=np.shape(f(x))), rng.normal(size=x.shape)
        s = lambda z: np.sum(f(z) * w)  # noqa: E731
        g = lambda z: dc.gradient(s, z, mode="reverse")  # noqa: E731
        href = directional_difference(g, x, v).value  # differences of the AD gradient
        scale = max(1.0, float(np.max(np.abs(href))))
        for mode, name in (("forward", "fwd"), ("reverse", "rev")):
            if name in modes:
                H = dc.hessian(s, x, mode=mode)
                Hv = np.tensordot(H, v, axes=x.ndim) if x.ndim else H * v
                try:
                    _compare(f"{mode} Hessian", Hv, href, HESS_RTOL, HESS_ATOL * scale)
                except AssertionError:  # Richardson's steps straddled a kink of g
                    h = 1e-6
                    small = (g(x + h * v) - g(x - h * v)) / (2 * h)
                    _compare(f"{mode} Hessian (small steps)", Hv, small, 1e-4, 1e-6 * scale)


def check_grads(fun, argnum=0, modes=("fwd", "rev"), order=2):
    """autograd's ``check_grads(fun, argnum, modes, order)(*args, **kwargs)``."""
    def run(*args, **kwargs):
        nums = argnum if isinstance(argnum, tuple | list) else (argnum,)
        if _is_complex(*args) or _is_complex(fun(*args, **kwargs)):
            TALLY.complex += 1
            return
        for i in nums:
            parts = range(len(args[i])) if isinstance(args[i], list | tuple) else [None]
            for j in parts:
                f = _one_argument(fun, args, kwargs, i, j)
                x = args[i] if j is None else args[i][j]
                what = f"{getattr(fun, '__name__', 'fun')} arg {i}" \
                       f"{'' if j is None else f'[{j}]'} at shape {np.shape(x)} {kwargs or ''}"
                try:
                    _check_one(f, _float_arg(x), modes, order)
                except Exception as exc:  # noqa: BLE001
                    TALLY.record(what, f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
                else:
                    TALLY.record(what, None)
    return run


def combo_check(fun, *args, **kwargs):
    """autograd's ``combo_check``: check_grads over every combination of arguments."""
    def run(*arg_lists, **kwarg_lists):
        pairs = [[(k, v) for v in vs] for k, vs in kwarg_lists.items()]
        for combo in itertools.product(*arg_lists):
            for kw in itertools.product(*pairs):
                check_grads(fun, *args, **kwargs)(*combo, **dict(kw))
    return run


def grad(fun, argnum=0):
    """autograd's ``grad``: reverse mode."""
    def g(*args, **kwargs):
        f = _one_argument(fun, args, kwargs, argnum)
        x = _float_arg(args[argnum])
        try:
            out = dc.gradient(f, np.asarray(x, dtype=float), mode="reverse")
        except Exception as exc:
            TALLY.record(f"grad of {getattr(fun, '__name__', 'fun')}",
                         f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
            raise
        TALLY.record(f"grad of {getattr(fun, '__name__', 'fun')}", None)
        return out if np.ndim(x) else float(out)
    return g


def value_and_grad(fun, argnum=0):
    return lambda *args, **kw: (fun(*args, **kw), grad(fun, argnum)(*args, **kw))


def install_shim() -> None:
    """``autograd``, ``autograd.numpy``, ``autograd.test_util`` as modules over NumPy."""
    pkg = types.ModuleType("autograd")
    pkg.grad, pkg.value_and_grad = grad, value_and_grad
    pkg.numpy = np
    util = types.ModuleType("autograd.test_util")
    util.check_grads, util.combo_check = check_grads, combo_check
    pkg.test_util = util
    sys.modules.update({"autograd": pkg, "autograd.numpy": np, "autograd.numpy.random":
                        np.random, "autograd.test_util": util})


def fetch(folder: str) -> str:
    """autograd's test folder from its source distribution, downloaded into ``folder``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                    ":all:", "autograd", "-d", folder, "-q"], check=True)
    archive = glob.glob(os.path.join(folder, "autograd-*.tar.gz"))[0]
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name]
        tar.extractall(folder, members=members, filter="data")
    return glob.glob(os.path.join(folder, "autograd-*", "tests"))[0]


class _Plugin:
    def pytest_runtest_setup(self, item):
        TALLY.test = item.nodeid.split("/")[-1]

    def pytest_runtest_makereport(self, item, call):
        if call.when == "call" and call.excinfo is not None and not any(
                r[0] == TALLY.test for r in TALLY.results):
            err = call.excinfo.value
            TALLY.results.append((TALLY.test, "test", f"{type(err).__name__}: {err}"
                                  .splitlines()[0][:200]))


def main() -> None:
    import pytest

    verbose = "-v" in sys.argv
    install_shim()
    with tempfile.TemporaryDirectory() as folder:
        tests = fetch(folder)
        sys.path.insert(0, tests)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        pytest.main(["-q", "-p", "no:cacheprovider", "-x" if "-x" in sys.argv else "-q",
                     "-W", "ignore", "-k", " and ".join(f"not {t}" for t in AUTOGRAD_ONLY),
                     *[os.path.join(tests, f) for f in FILES]], plugins=[_Plugin()])
    total = len(TALLY.results)
    failed = [r for r in TALLY.results if r[2] is not None]
    print(f"\nreal-valued checks: {total}, passed {total - len(failed)} "
          f"({100 * (total - len(failed)) / max(total, 1):.1f}%), failed {len(failed)}; "
          f"complex-valued checks skipped: {TALLY.complex}; tests of autograd-only API "
          f"skipped: {', '.join(AUTOGRAD_ONLY)}")
    by_test = Counter(r[0] for r in failed)
    for test, n in sorted(by_test.items()):
        first = next(r for r in failed if r[0] == test)
        print(f"  {test}: {n} failed, e.g. {first[1]}: {first[2]}")
    if verbose:
        for r in failed:
            print(" ", *r)


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
