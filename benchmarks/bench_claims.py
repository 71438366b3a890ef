"""How long a right claim of the lecture notes' size takes to answer.

Run: ``python benchmarks/bench_claims.py`` (``--repeats N``, default 3). For each claim:

* ``cli s``: the whole ``python -m diffcheck expr F --claim G`` in a fresh process (imports,
  parsing, the four engines, the claim check), best of the repeats; ``cli s, no claim``: the
  same command without the claim (mostly Python's and SymPy's start-up);
* ``check s``: ``dc.check_expression(F, claim=G)`` in this process, best of the repeats;
* ``claim s``: the part of that spent on the claim (``check s`` minus the same check without
  a claim).

The target is under 2 s for the whole command. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import diffcheck as dc  # noqa: E402

CASES = [
    ("gradient, notes", "x**2*y + (x+y)**2", ["--claim", "[2*x*y + 2*(x+y), x**2 + 2*(x+y)]"]),
    ("Jacobian R2->R3", "[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]",
     ["--claim", "[[2, 2*x2], [-2*x1, 3], [4*x2, 4*x1]]"]),
    ("camel Hessian", "(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2",
     ["--claim-hessian", "[[10*x1**4 - 25.2*x1**2 + 8, 1], [1, 48*x2**2 - 8]]"]),
    ("backprop, --wrt", "(x1 + w1)**2*(x1*w1 + x2*w2)",
     ["--wrt", "w1,w2", "--claim", "[2*(x1 + w1)*(x1*w1 + x2*w2) + (x1 + w1)**2*x1, "
                                   "(x1 + w1)**2*x2]"]),
    ("AD illustration", "sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))",
     ["--claim", "(1/(2*sqrt(x**2 + exp(x**2))) - sin(x**2 + exp(x**2)))*(exp(x**2) + 1)*2*x"]),
    ("not provable", "sqrt(x**2 + 2*x + 1)", ["--claim", "sign(x + 1)"]),
]


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def kwargs(argv: list[str]) -> dict:
    names = {"--claim": "claim", "--claim-hessian": "claim_hessian", "--wrt": "wrt"}
    return {names[argv[i]]: argv[i + 1] for i in range(0, len(argv), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = [("claim", "verdicts", "cli s", "cli s, no claim", "check s", "claim s")]
    worst = 0.0
    for name, f, extra in CASES:
        cmd = [sys.executable, "-m", "diffcheck", "expr", f, *extra]
        cli = best(lambda c=cmd: subprocess.run(c, env=env, capture_output=True, check=False),
                   args.repeats)
        bare = [a for a in extra if a.startswith("--wrt")] + \
            [extra[i + 1] for i, a in enumerate(extra) if a == "--wrt"]
        cmd0 = [sys.executable, "-m", "diffcheck", "expr", f, *bare]
        cli0 = best(lambda c=cmd0: subprocess.run(c, env=env, capture_output=True, check=False),
                    args.repeats)
        kw = kwargs(extra)
        check = best(lambda f=f, kw=kw: dc.check_expression(f, **kw), args.repeats)
        plain_kw = {k: v for k, v in kw.items() if k == "wrt"}
        plain_kw["hessian"] = "claim_hessian" in kw
        plain = best(lambda f=f, kw=plain_kw: dc.check_expression(f, **kw), args.repeats)
        report = dc.check_expression(f, **kw)
        verdicts = ",".join(sorted({e.verdict for c in report.claims for e in c.entries}))
        rows.append((name, verdicts, f"{cli:.2f}", f"{cli0:.2f}", f"{check:.2f}",
                     f"{check - plain:.2f}"))
        worst = max(worst, cli)
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"\nslowest whole command: {worst:.2f} s (target < 2 s; timings vary with load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
