"""Cold start of ``diffcheck expr`` against ``python -c "import sympy"``.

Goal: ratio <= 1.5 (JAX, SciPy and matplotlib are not imported by the expr command).
Run: ``python benchmarks/bench_startup.py [repeats] [--no-cache]``; the machine's load moves
both timings, so the three commands are interleaved.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

EXPR = ["expr", "x**2*y + (x+y)**2", "--at", "x=1,y=2"]
# the functions and notation added for everyday input must not pull in SciPy or JAX either
EVERYDAY = ["expr", "2·θ² + lgamma(y) + max(θ, y) + sec(θ) + floor(y)*θ", "--at",
            "θ=pi/5,y=1/3"]


# Bytecode is cached in a private directory, as an installed package has it: SymPy's is in
# site-packages, and diffcheck's must not be recompiled on every run just because the
# environment sets PYTHONDONTWRITEBYTECODE (``--no-cache`` measures that case too).
CACHE = tempfile.mkdtemp(prefix="diffcheck-pycache-")
ENV = {**os.environ, "PYTHONPYCACHEPREFIX": CACHE}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)


def timed(cmd: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t0)
    return times


def heavy_modules(argv: list[str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from diffcheck.cli import main; "
         f"main({argv!r}); print(sorted(m for m in ('jax', 'scipy', 'matplotlib') "
         "if m in sys.modules))"], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--no-cache"]
    if "--no-cache" in sys.argv:  # (the prefix would hide SymPy's cached bytecode too)
        ENV.pop("PYTHONPYCACHEPREFIX")
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    repeats = int(args[0]) if args else 7
    timed([sys.executable, "-m", "diffcheck", *EVERYDAY], 1)  # compiles (and caches) once
    base, ours, everyday = [], [], []
    for _ in range(repeats):  # interleaved, so load on a shared machine hits all three alike
        base += timed([sys.executable, "-c", "import sympy"], 1)
        ours += timed([sys.executable, "-m", "diffcheck", *EXPR], 1)
        everyday += timed([sys.executable, "-m", "diffcheck", *EVERYDAY], 1)
    b, o, e = (statistics.median(t) for t in (base, ours, everyday))
    print(f"python -c 'import sympy'      median {b * 1000:7.1f} ms  (min {min(base)*1000:.1f})")
    print(f"diffcheck expr (check, 4 eng) median {o * 1000:7.1f} ms  (min {min(ours)*1000:.1f})")
    print(f"  everyday notation and rows  median {e * 1000:7.1f} ms  "
          f"(min {min(everyday)*1000:.1f})")
    print(f"ratio diffcheck/sympy-import: {o / b:.2f}, everyday {e / b:.2f}  (goal <= 1.5)")
    print(f"heavy modules imported by the expr command: {heavy_modules(EXPR)}, "
          f"everyday: {heavy_modules(EVERYDAY)}")


if __name__ == "__main__":
    main()
