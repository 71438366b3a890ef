"""Cold start of ``diffcheck expr`` against ``python -c "import sympy"``.

Goal: ratio <= 1.5 (JAX, SciPy and matplotlib are not imported by the expr command).
Run: ``python benchmarks/bench_startup.py [repeats]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

EXPR = ["expr", "x**2*y + (x+y)**2", "--at", "x=1,y=2"]


def timed(cmd: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    base = timed([sys.executable, "-c", "import sympy"], repeats)
    ours = timed([sys.executable, "-m", "diffcheck", *EXPR], repeats)
    modules = subprocess.run(
        [sys.executable, "-c", "import sys; from diffcheck.cli import main; "
         f"main({EXPR!r}); print(sorted(m for m in ('jax', 'scipy', 'matplotlib') "
         "if m in sys.modules))"], capture_output=True, text=True, check=True).stdout
    b, o = statistics.median(base), statistics.median(ours)
    print(f"python -c 'import sympy'      median {b * 1000:7.1f} ms  (min {min(base)*1000:.1f})")
    print(f"diffcheck expr (check, 4 eng) median {o * 1000:7.1f} ms  (min {min(ours)*1000:.1f})")
    print(f"ratio diffcheck/sympy-import: {o / b:.2f}  (goal <= 1.5)")
    print(f"heavy modules imported by the expr command: {modules.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
